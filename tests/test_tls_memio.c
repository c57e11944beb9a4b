/*
 * tls memory I/O: a client and a server object talk through byte buffers only, as the
 * server's ring does — fed whole flights and fed one byte at a time (wolfSSL keeps the
 * partial records), with the policy of tls.h (TLS 1.3, ChaCha20 first, X25519) and
 * ticket resumption on a second server object of the same context.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tickwire/tls.h"

static char dir[] = "/tmp/tw_tls_memio_XXXXXX";
static char cert[64], key[64];
static WOLFSSL_CTX *sctx, *cctx;

struct pipe {
        uint8_t d[1 << 16];
        size_t n;
};

/* Server output the handshake loop left undelivered (its NewSessionTicket). */
static struct pipe s2c;

static int out(void *arg, const uint8_t *p, size_t n)
{
        struct pipe *b = arg;

        cr_assert(b->n + n <= sizeof(b->d));
        memcpy(b->d + b->n, p, n);
        b->n += n;
        return 0;
}

static void setup(void)
{
        char cmd[512], err[256];

        cr_assert(mkdtemp(dir));
        snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
        snprintf(key, sizeof(key), "%s/key.pem", dir);
        snprintf(cmd, sizeof(cmd),
                 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout %s "
                 "-out %s -nodes -days 1 -subj /CN=localhost 2>/dev/null",
                 key, cert);
        cr_assert_eq(system(cmd), 0);
        sctx = tw_tls_server_ctx(cert, key, err, sizeof(err));
        cr_assert(sctx, "%s", err);
        cctx = tw_tls_client_ctx(cert, false, err, sizeof(err));
        cr_assert(cctx, "%s", err);
}

static void teardown(void)
{
        tw_tls_ctx_free(sctx);
        tw_tls_ctx_free(cctx);
        remove(cert);
        remove(key);
        remove(dir);
        tw_tls_thread_done();
}

TestSuite(tls_memio, .init = setup, .fini = teardown);

/* Runs the handshake to completion; the server gets its input `step` bytes per call.
 * What the server sends after its last step (its ticket) stays in s2c for echo(). */
static void handshake(WOLFSSL *c, WOLFSSL *s, size_t step)
{
        struct pipe c2s = {0};

        s2c.n = 0;
        for (int round = 0;
             round < 20 && !(wolfSSL_is_init_finished(c) && wolfSSL_is_init_finished(s)); round++) {
                if (!wolfSSL_is_init_finished(c)) {
                        tw_tls_io cio = {s2c.d, s2c.n, out, &c2s};

                        tw_tls_bind(c, &cio);
                        wolfSSL_connect(c);
                        cr_assert_eq(cio.in_len, 0, "client left input unread");
                        s2c.n = 0;
                }
                for (size_t off = 0; off < c2s.n; off += step) {
                        size_t k = c2s.n - off < step ? c2s.n - off : step;
                        tw_tls_io sio = {c2s.d + off, k, out, &s2c};

                        tw_tls_bind(s, &sio);
                        if (!wolfSSL_is_init_finished(s))
                                wolfSSL_accept(s);
                        cr_assert_eq(sio.in_len, 0, "server left input unread");
                }
                c2s.n = 0;
        }
        cr_assert(wolfSSL_is_init_finished(c) && wolfSSL_is_init_finished(s));
}

static WOLFSSL *client(WOLFSSL_SESSION *sess)
{
        WOLFSSL *c = tw_tls_new(cctx);

        cr_assert(c);
        wolfSSL_check_domain_name(c, "localhost");
        if (sess)
                cr_assert_eq(wolfSSL_set_session(c, sess), WOLFSSL_SUCCESS);
        return c;
}

/* Client → server application bytes, and the server's reply back. */
static void echo(WOLFSSL *c, WOLFSSL *s)
{
        struct pipe c2s = {0};
        tw_tls_io cio = {NULL, 0, out, &c2s}, sio;
        char buf[64];

        tw_tls_bind(c, &cio);
        cr_assert_eq(wolfSSL_write(c, "hello", 5), 5);
        sio = (tw_tls_io){c2s.d, c2s.n, out, &s2c};
        tw_tls_bind(s, &sio);
        cr_assert_eq(wolfSSL_read(s, buf, sizeof(buf)), 5);
        cr_assert_eq(memcmp(buf, "hello", 5), 0);
        cr_assert_eq(wolfSSL_write(s, "world", 5), 5);
        cio = (tw_tls_io){s2c.d, s2c.n, out, &c2s};
        tw_tls_bind(c, &cio);
        /* The client may first meet the server's NewSessionTicket. */
        cr_assert_eq(wolfSSL_read(c, buf, sizeof(buf)), 5);
        cr_assert_eq(memcmp(buf, "world", 5), 0);
}

Test(tls_memio, whole_flights_policy)
{
        WOLFSSL *c = client(NULL), *s = tw_tls_new(sctx);

        handshake(c, s, SIZE_MAX);
        cr_assert_str_eq(wolfSSL_get_version(s), "TLSv1.3");
        cr_assert_str_eq(wolfSSL_get_cipher_name(s), "TLS13-CHACHA20-POLY1305-SHA256");
        echo(c, s);
        wolfSSL_free(c);
        wolfSSL_free(s);
}

Test(tls_memio, byte_by_byte)
{
        WOLFSSL *c = client(NULL), *s = tw_tls_new(sctx);

        handshake(c, s, 1);
        echo(c, s);
        wolfSSL_free(c);
        wolfSSL_free(s);
}

Test(tls_memio, ticket_resumes_on_another_object)
{
        WOLFSSL *c = client(NULL), *s = tw_tls_new(sctx);
        WOLFSSL_SESSION *sess;

        handshake(c, s, SIZE_MAX);
        echo(c, s); /* delivers the ticket */
        sess = wolfSSL_get1_session(c);
        cr_assert(sess);
        wolfSSL_free(c);
        wolfSSL_free(s);

        c = client(sess);
        s = tw_tls_new(sctx);
        handshake(c, s, SIZE_MAX);
        cr_assert(wolfSSL_session_reused(c));
        echo(c, s);
        wolfSSL_SESSION_free(sess);
        wolfSSL_free(c);
        wolfSSL_free(s);
}

Test(tls_memio, bad_key_file_is_named)
{
        char err[256];

        cr_assert_null(tw_tls_server_ctx(cert, "/nonexistent.pem", err, sizeof(err)));
        cr_assert(strstr(err, "--tls-key") && strstr(err, "/nonexistent.pem"), "%s", err);
}
