/*
 * TLS for the workers: wolfSSL over memory callbacks.
 *
 * A byte filter: it knows neither connections nor workers. conn.c hands tw_tls_recv()
 * the ciphertext the ring received and gets plaintext back one record at a time (the
 * handshake runs first, inside the same calls), with a status saying when input is used
 * up, the peer sent close_notify, the handshake failed or the stream broke; every byte of
 * the buffer is consumed before it goes back to the kernel (wolfSSL keeps partial records
 * itself). tw_tls_send() encrypts; ciphertext wolfSSL produces, in either direction, goes
 * to the caller's out() function (conn.c queues it raw on the send queue). What any of
 * this means for the connection — its state, its limits, its close — is conn's.
 *
 * The I/O binding (struct tw_tls_io) lives on the stack of whoever calls into wolfSSL and
 * is bound before every call: handling decrypted input may itself encrypt a reply (a
 * nested call with its own binding), after which the outer loop binds its own again.
 */
#include "tickwire/tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <wolfssl/wolfcrypt/ecc.h>

/* ---- memory I/O callbacks ---- */

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
        tw_tls_io *io = ctx;
        size_t n;

        (void)ssl;
        if (!io || io->in_len == 0)
                return WOLFSSL_CBIO_ERR_WANT_READ;
        n = io->in_len < (size_t)sz ? io->in_len : (size_t)sz;
        memcpy(buf, io->in, n);
        io->in += n;
        io->in_len -= n;
        return (int)n;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
        tw_tls_io *io = ctx;

        (void)ssl;
        if (!io || !io->out || io->out(io->arg, (const uint8_t *)buf, (size_t)sz) < 0)
                return WOLFSSL_CBIO_ERR_CONN_CLOSE;
        return sz;
}

/* ---- contexts ---- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void lib_init(void)
{
        wolfSSL_Init();
}

static WOLFSSL_CTX *ctx_new(WOLFSSL_METHOD *method, char *err, size_t errlen)
{
        int groups[] = {WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1};
        WOLFSSL_CTX *ctx;

        if (!method || !(ctx = wolfSSL_CTX_new(method))) {
                snprintf(err, errlen, "TLS: out of memory");
                return NULL;
        }
        /* The Debian build also enables NULL, RC4, anon and CBC suites: list ours
         * explicitly, and refuse anything below TLS 1.2. */
        if (wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
            wolfSSL_CTX_set_cipher_list(ctx, TW_TLS_CIPHERS) != WOLFSSL_SUCCESS ||
            wolfSSL_CTX_set_groups(ctx, groups, 2) != WOLFSSL_SUCCESS) {
                snprintf(err, errlen, "TLS: cannot set the version, cipher or group policy");
                wolfSSL_CTX_free(ctx);
                return NULL;
        }
        return ctx;
}

WOLFSSL_CTX *tw_tls_server_ctx(const char *cert, const char *key, char *err, size_t errlen)
{
        WOLFSSL_CTX *ctx;

        pthread_once(&init_once, lib_init);
        ctx = ctx_new(wolfSSLv23_server_method(), err, errlen);
        if (!ctx)
                return NULL;
        if (wolfSSL_CTX_use_certificate_chain_file(ctx, cert) != WOLFSSL_SUCCESS) {
                snprintf(err, errlen, "--tls-cert: cannot load a PEM certificate chain from %s",
                         cert);
                goto fail;
        }
        if (wolfSSL_CTX_use_PrivateKey_file(ctx, key, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
                snprintf(err, errlen, "--tls-key: cannot load a PEM private key from %s", key);
                goto fail;
        }
        if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS) {
                snprintf(err, errlen, "--tls-key: %s does not match the certificate in %s", key,
                         cert);
                goto fail;
        }
        /* Tickets (TLS 1.3 and 1.2) are sealed with keys held by this one context, so
         * any worker can open a ticket another issued. */
        if (wolfSSL_CTX_UseSessionTicket(ctx) != WOLFSSL_SUCCESS) {
                snprintf(err, errlen, "TLS: cannot enable session tickets");
                goto fail;
        }
        wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
        wolfSSL_CTX_SetIORecv(ctx, io_recv);
        wolfSSL_CTX_SetIOSend(ctx, io_send);
        return ctx;
fail:
        wolfSSL_CTX_free(ctx);
        return NULL;
}

WOLFSSL_CTX *tw_tls_client_ctx(const char *ca_file, bool insecure, char *err, size_t errlen)
{
        WOLFSSL_CTX *ctx;

        pthread_once(&init_once, lib_init);
        ctx = ctx_new(wolfSSLv23_client_method(), err, errlen);
        if (!ctx)
                return NULL;
        wolfSSL_CTX_UseSessionTicket(ctx);
        if (insecure) {
                wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
                return ctx;
        }
        if ((ca_file ? wolfSSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                     : wolfSSL_CTX_load_system_CA_certs(ctx)) != WOLFSSL_SUCCESS) {
                snprintf(err, errlen, "TLS: cannot load CA certificates from %s",
                         ca_file ? ca_file : "the system store");
                wolfSSL_CTX_free(ctx);
                return NULL;
        }
        wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, NULL);
        return ctx;
}

void tw_tls_ctx_free(WOLFSSL_CTX *ctx)
{
        if (ctx)
                wolfSSL_CTX_free(ctx);
}

void tw_tls_thread_done(void)
{
#ifdef FP_ECC
        wc_ecc_fp_free();
#endif
}

WOLFSSL *tw_tls_new(WOLFSSL_CTX *ctx)
{
        WOLFSSL *ssl = wolfSSL_new(ctx);

        if (!ssl)
                return NULL;
        wolfSSL_SSLSetIORecv(ssl, io_recv);
        wolfSSL_SSLSetIOSend(ssl, io_send);
        tw_tls_bind(ssl, NULL);
        return ssl;
}

/* ---- the byte filter (server side) ---- */

WOLFSSL *tw_tls_server_new(WOLFSSL_CTX *ctx)
{
        return wolfSSL_new(ctx); /* the server context already carries the I/O callbacks */
}

void tw_tls_free(WOLFSSL *ssl)
{
        if (ssl)
                wolfSSL_free(ssl);
}

bool tw_tls_ready(WOLFSSL *ssl)
{
        return wolfSSL_is_init_finished(ssl);
}

tw_tls_status tw_tls_recv(WOLFSSL *ssl, tw_tls_io *io, uint8_t *plain, size_t cap, size_t *n)
{
        tw_tls_status st;
        int r, e;

        *n = 0;
        tw_tls_bind(ssl, io);
        if (!wolfSSL_is_init_finished(ssl)) {
                r = wolfSSL_accept(ssl);
                if (r != WOLFSSL_SUCCESS) {
                        e = wolfSSL_get_error(ssl, r);
                        st = e == WOLFSSL_ERROR_WANT_READ ? TW_TLS_WANT : TW_TLS_FAILED;
                } else {
                        /* Handshake secrets and randoms are done with (the session ticket
                         * has been sent): ~5.5 KB less per idle connection. */
                        wolfSSL_FreeArrays(ssl);
                        st = TW_TLS_DATA; /* no bytes yet: the caller asks again */
                }
                tw_tls_bind(ssl, NULL); /* io belongs to the caller's stack */
                return st;
        }
        r = wolfSSL_read(ssl, plain, (int)cap);
        if (r > 0) {
                *n = (size_t)r;
                st = TW_TLS_DATA;
        } else {
                e = wolfSSL_get_error(ssl, r);
                if (e == WOLFSSL_ERROR_WANT_READ)
                        st = TW_TLS_WANT;
                else if (e == WOLFSSL_ERROR_ZERO_RETURN)
                        st = TW_TLS_EOF; /* close_notify: the peer is done sending */
                else
                        st = TW_TLS_BROKEN; /* bad record MAC, a fatal alert... */
        }
        tw_tls_bind(ssl, NULL);
        return st;
}

int tw_tls_send(WOLFSSL *ssl, tw_tls_io *io, const uint8_t *p, size_t n)
{
        int r;

        if (!wolfSSL_is_init_finished(ssl))
                return n ? -ENOTCONN : 0; /* nothing is sent before the handshake is done */
        if (n == 0)
                return 0;
        tw_tls_bind(ssl, io);
        r = wolfSSL_write(ssl, p, (int)n);
        tw_tls_bind(ssl, NULL);
        return r == (int)n ? 0 : -EIO;
}

void tw_tls_close_notify(WOLFSSL *ssl, tw_tls_io *io)
{
        if (!ssl || !wolfSSL_is_init_finished(ssl))
                return;
        tw_tls_bind(ssl, io);
        wolfSSL_shutdown(ssl); /* sends close_notify; we do not wait for theirs */
        tw_tls_bind(ssl, NULL);
}
