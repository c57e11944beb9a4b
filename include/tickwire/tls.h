/*
 * tls — TLS with wolfSSL, driven by our own I/O: wolfSSL never touches a socket.
 * Ciphertext received by the ring is handed to wolfSSL through a memory read callback;
 * ciphertext wolfSSL produces goes to a caller-supplied function (for the server: a new
 * frame on the connection's send queue, flushed by the same sendmsg path as plain bytes).
 *
 * Owns: the one WOLFSSL_CTX of a server (built before the workers start, then only read,
 * so every worker shares its certificate and its session-ticket keys: a ticket issued by
 * one worker resumes on another), and what happens inside each WOLFSSL object. The
 * pointer to a connection's object is kept by conn (tw_ext.tls). Must not touch: sockets,
 * the ring, connections or workers: this is a byte filter (ciphertext in, plaintext out;
 * plaintext in, ciphertext out) returning a status, and conn decides what follows.
 *
 * Which listeners: those with tw_listen.tls set, which the config decides (DESIGN 7):
 * --tls-listen entries serve TLS; --tls-cert/--tls-key without any --tls-listen make the
 * --listen addresses (the default 127.0.0.1:8080 included) serve TLS; with --tls-listen
 * also given, --listen stays plain, so plain and TLS run side by side (e.g. --listen
 * 127.0.0.1:8080 --tls-listen 127.0.0.1:8443).
 *
 * Policy (both sides): TLS 1.2 minimum; ciphers TLS13-CHACHA20-POLY1305 first (this
 * wolfSSL build has no AES-NI), then TLS 1.3 AES-GCM, then ECDHE ChaCha20/AES-GCM for
 * TLS 1.2 — never NULL, RC4, anon, CBC or static RSA, which the Debian build also carries;
 * groups X25519 then P-256; session tickets on.
 */
#ifndef TICKWIRE_TLS_H
#define TICKWIRE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

/* The cipher list both contexts use, in preference order (wolfSSL names). */
#define TW_TLS_CIPHERS                                                                             \
        "TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"          \
        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                               \
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"

/* ---- contexts ---- */

/* A server context from PEM files (certificate chain, private key), with the policy
 * above, the memory I/O callbacks and session tickets. NULL on failure, with one line
 * (naming the file) in err. */
WOLFSSL_CTX *tw_tls_server_ctx(const char *cert, const char *key, char *err, size_t errlen);

/* A client context with the same policy (for the load generator and benchmarks). The
 * peer is verified against ca_file (PEM; NULL = the system store) unless `insecure`.
 * Its objects use wolfSSL's socket I/O unless made with tw_tls_new(). */
WOLFSSL_CTX *tw_tls_client_ctx(const char *ca_file, bool insecure, char *err, size_t errlen);

void tw_tls_ctx_free(WOLFSSL_CTX *ctx);

/* Frees the calling thread's wolfCrypt caches: this build keeps a per-thread ECC
 * fixed-point table (~0.8 MB once the thread has signed). Each worker calls it on exit. */
void tw_tls_thread_done(void);

/* ---- memory I/O (any side) ---- */

/* What one call into wolfSSL may read and where its output goes. Bound to the object
 * right before each call (tw_tls_bind): the read callback serves in[0..in_len) and
 * answers WANT_READ when it is used up; the write callback passes ciphertext to out(),
 * which returns 0 or a negative errno (the connection is then broken). */
typedef struct tw_tls_io {
        const uint8_t *in; /* ciphertext not yet handed to wolfSSL */
        size_t in_len;
        int (*out)(void *arg, const uint8_t *p, size_t n);
        void *arg;
} tw_tls_io;

/* A new object of ctx using the memory I/O callbacks; NULL when out of memory. */
WOLFSSL *tw_tls_new(WOLFSSL_CTX *ctx);

static inline void tw_tls_bind(WOLFSSL *ssl, tw_tls_io *io)
{
        wolfSSL_SetIOReadCtx(ssl, io);
        wolfSSL_SetIOWriteCtx(ssl, io);
}

/* ---- the byte filter, server side (conn.c) ---- */

/* What a call into the filter came to. */
typedef enum tw_tls_status {
        TW_TLS_DATA,   /* *n bytes of plaintext (0 right after the handshake): call again */
        TW_TLS_WANT,   /* the input is used up: wait for more ciphertext */
        TW_TLS_EOF,    /* the peer's close_notify: it is done sending, as a TCP FIN says */
        TW_TLS_FAILED, /* the handshake failed (wolfSSL may have queued an alert via out) */
        TW_TLS_BROKEN, /* bad record MAC, a fatal alert...: unusable, like an RST */
} tw_tls_status;

/* A new server-side object of ctx (which carries the memory I/O callbacks); NULL when
 * out of memory. */
WOLFSSL *tw_tls_server_new(WOLFSSL_CTX *ctx);

/* Frees an object (NULL is a no-op). */
void tw_tls_free(WOLFSSL *ssl);

/* Whether the handshake is done. */
bool tw_tls_ready(WOLFSSL *ssl);

/* Ciphertext in io->in (advanced as wolfSSL takes it) → plaintext in plain[0..*n):
 * drives the handshake first (its replies go to io->out), then decrypts one record per
 * call. Binds io for the call only: the caller may encrypt between calls. */
tw_tls_status tw_tls_recv(WOLFSSL *ssl, tw_tls_io *io, uint8_t *plain, size_t cap, size_t *n);

/* Plaintext p[0..n) → ciphertext records to io->out. 0; -ENOTCONN before the handshake
 * is done (nothing sent); -EIO when wolfSSL or out() failed. */
int tw_tls_send(WOLFSSL *ssl, tw_tls_io *io, const uint8_t *p, size_t n);

/* Our close_notify to io->out (nothing before the handshake is done or without ssl). */
void tw_tls_close_notify(WOLFSSL *ssl, tw_tls_io *io);

#endif
