/*
 * TLS for the workers: wolfSSL over memory callbacks.
 *
 * The ring receives ciphertext into a provided buffer; tw_tls_conn_on_data() points the
 * object's read callback at it and calls wolfSSL_accept() (until the handshake is done),
 * then wolfSSL_read() until wolfSSL asks for more input, so every byte of the buffer is
 * consumed before it goes back to the kernel (wolfSSL keeps partial records itself). Each
 * decrypted record goes to tw_conn_on_data(), the plain connection's code, unchanged.
 *
 * Output: tw_conn_send() on a TLS connection comes here; wolfSSL_write() encrypts and its
 * write callback copies each record into a new frame queued raw (tw_conn_send_raw, never
 * back through tw_conn_send), so ciphertext leaves through the same sendmsg path.
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

#include "tickwire/metrics.h"
#include "tickwire/loop.h"

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

/* ---- server connections ---- */

struct conn_io {
        tw_tls_io io;
        struct tw_worker *w;
        tw_conn *c;
};

/* wolfSSL's output: one frame per call (a record, or a flight of handshake records). */
static int conn_out(void *arg, const uint8_t *p, size_t n)
{
        struct conn_io *cio = arg;
        tw_frame *f;

        if (cio->c->state == TW_CONN_DEAD || cio->c->state == TW_CONN_FREE)
                return -EPIPE;
        f = tw_frame_copy(p, n);
        if (!f) {
                TW_INC(tw_worker_metrics(cio->w)->limit_hits);
                tw_worker_terminate(cio->w, cio->c, TW_WS_CLOSE_INTERNAL);
                return -ENOMEM;
        }
        return tw_conn_send_raw(cio->w, cio->c, f);
}

static void conn_io_init(struct conn_io *cio, struct tw_worker *w, tw_conn *c, const uint8_t *in,
                         size_t len)
{
        cio->io = (tw_tls_io){.in = in, .in_len = len, .out = conn_out, .arg = cio};
        cio->w = w;
        cio->c = c;
}

int tw_tls_conn_start(struct tw_worker *w, tw_conn *c)
{
        tw_ext *e = tw_conn_ext(c);

        /* The server context already carries the I/O callbacks. */
        if (!e || !(e->tls = wolfSSL_new(tw_worker_tls_ctx(w))))
                return -ENOMEM;
        c->flags |= TW_CF_TLS;
        return 0;
}

void tw_tls_conn_free(tw_conn *c)
{
        if (c->ext && c->ext->tls) {
                wolfSSL_free(c->ext->tls);
                c->ext->tls = NULL;
                c->flags &= ~TW_CF_TLS;
        }
}

/* Input is still wanted in these states (LINGER: our last bytes are going out). */
static bool reading(const tw_conn *c)
{
        return c->state == TW_CONN_HTTP || c->state == TW_CONN_OPEN || c->state == TW_CONN_CLOSING;
}

static void handshake_failed(struct tw_worker *w, tw_conn *c)
{
        TW_INC(tw_worker_metrics(w)->handshake_failures[TW_HS_TLS]);
        if (c->state == TW_CONN_DEAD)
                return;
        if (c->out)
                tw_conn_linger(w, c); /* wolfSSL queued an alert: let it out, then close */
        else
                tw_worker_terminate(w, c, 0);
}

void tw_tls_conn_on_data(struct tw_worker *w, tw_conn *c, const uint8_t *buf, size_t len)
{
        uint8_t plain[16384]; /* the largest TLS record's plaintext */
        struct conn_io cio;
        WOLFSSL *ssl = c->ext->tls;
        int n;

        if (!reading(c))
                return;
        conn_io_init(&cio, w, c, buf, len);
        if (!wolfSSL_is_init_finished(ssl)) {
                tw_tls_bind(ssl, &cio.io);
                n = wolfSSL_accept(ssl);
                if (n != WOLFSSL_SUCCESS) {
                        if (wolfSSL_get_error(ssl, n) != WOLFSSL_ERROR_WANT_READ)
                                handshake_failed(w, c);
                        return;
                }
                /* Handshake secrets and randoms are done with (the session ticket has
                 * been sent): ~5.5 KB less per idle connection. */
                wolfSSL_FreeArrays(ssl);
        }
        /* Application data may follow the client's Finished in the same buffer. */
        while (reading(c)) {
                int e;

                tw_tls_bind(ssl, &cio.io);
                n = wolfSSL_read(ssl, plain, sizeof(plain));
                if (n > 0) {
                        tw_conn_on_data(w, c, plain, (size_t)n);
                        continue;
                }
                e = wolfSSL_get_error(ssl, n);
                if (e == WOLFSSL_ERROR_WANT_READ)
                        break;
                if (e == WOLFSSL_ERROR_ZERO_RETURN) {
                        /* close_notify: the peer is done sending, as a TCP FIN says. */
                        tw_conn_on_eof(w, c);
                        break;
                }
                /* Bad record MAC, a fatal alert...: the stream is unusable, like an RST. */
                tw_worker_terminate(w, c, TW_WS_CLOSE_ABNORMAL);
                break;
        }
        tw_tls_bind(ssl, NULL); /* cio goes out of scope */
}

/* Over --max-queue: queued ciphertext cannot be conflated (dropping a record breaks the
 * stream), so `conflate` drops the newest topic message instead — the subscriber still
 * sees the seq jump and resumes with `since` — and anything else, or `disconnect`,
 * closes with 1013. */
static int over_bound(struct tw_worker *w, tw_conn *c, tw_frame *f)
{
        bool topic = f->topic_id != 0;

        c->flags |= TW_CF_LOSSY;
        tw_frame_unref(f);
        if (topic)
                TW_INC(tw_worker_metrics(w)->messages_dropped);
        if (topic && tw_worker_cfg(w)->slow_consumer == TW_SLOW_CONFLATE) {
                TW_INC(tw_worker_metrics(w)->slow_consumer[TW_SLOW_CONFLATE]);
                return 0;
        }
        TW_INC(tw_worker_metrics(w)->slow_consumer[TW_SLOW_DISCONNECT]);
        tw_conn_close(w, c, TW_WS_CLOSE_TRY_AGAIN, "slow consumer", 13);
        return -ENOBUFS;
}

int tw_tls_conn_send(struct tw_worker *w, tw_conn *c, tw_frame *f)
{
        struct conn_io cio;
        WOLFSSL *ssl = c->ext->tls;
        int n;

        if (c->state == TW_CONN_OPEN && !(c->flags & TW_CF_CLOSE_SENT) &&
            tw_conn_queued(c) + f->len > tw_worker_cfg(w)->max_queue)
                return over_bound(w, c, f);
        if (!wolfSSL_is_init_finished(ssl) || f->len == 0) {
                /* Nothing is sent before the handshake is done (we only answer input). */
                n = f->len ? -ENOTCONN : 0;
                tw_frame_unref(f);
                return n;
        }
        conn_io_init(&cio, w, c, NULL, 0);
        tw_tls_bind(ssl, &cio.io);
        n = wolfSSL_write(ssl, f->data, (int)f->len);
        n = n == (int)f->len ? 0 : -EIO;
        tw_frame_unref(f);
        tw_tls_bind(ssl, NULL); /* still ours: freed only with the slot */
        if (c->state == TW_CONN_DEAD)
                return -EPIPE;
        if (n < 0)
                tw_worker_terminate(w, c, TW_WS_CLOSE_INTERNAL);
        return n;
}

void tw_tls_conn_close_notify(struct tw_worker *w, tw_conn *c)
{
        struct conn_io cio;

        WOLFSSL *ssl = c->ext ? c->ext->tls : NULL;

        if (!ssl || !wolfSSL_is_init_finished(ssl))
                return;
        conn_io_init(&cio, w, c, NULL, 0);
        tw_tls_bind(ssl, &cio.io);
        wolfSSL_shutdown(ssl); /* sends close_notify; we do not wait for theirs */
        tw_tls_bind(ssl, NULL);
}
