/*
 * conn — one client connection as its worker sees it, and what happens to the bytes it
 * sends: the HTTP request (upgrade, /healthz, /metrics, /publish), then WebSocket frames,
 * control frames, the close handshake and app messages.
 *
 * Owns: struct tw_conn and its lazily allocated parts (partial input, send queue). Each
 * connection lives and dies on the worker that accepted it; nothing here is shared or
 * locked. Must not touch: other workers' connections, the ring's submission details
 * (it asks the worker to send, flush and terminate).
 *
 * An idle open connection is the 72-byte struct below and nothing else: partial input
 * and queued output are allocated only while they exist. A TLS connection adds its
 * wolfSSL object (tls.c); a plain one pays only the NULL pointer.
 */
#ifndef TICKWIRE_CONN_H
#define TICKWIRE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <sys/socket.h>

#include "tickwire/frame.h"
#include "tickwire/outq.h"
#include "tickwire/wheel.h"
#include "tickwire/ws.h"

/* Close code for a session whose token expired without a refresh (DESIGN 5). */
#define TW_CLOSE_TOKEN_EXPIRED 4001

enum tw_conn_state {
        TW_CONN_FREE = 0, /* slot unused */
        TW_CONN_HTTP,     /* reading HTTP requests (upgrade or endpoints) */
        TW_CONN_OPEN,     /* WebSocket session */
        TW_CONN_CLOSING,  /* we queued Close; waiting for theirs (close timeout) */
        TW_CONN_LINGER,   /* last bytes queued: send them all, shut our side, discard input
                             until their FIN (or the close timeout), then close */
        TW_CONN_DEAD,     /* terminated; waiting for in-flight requests to finish */
};

enum tw_conn_flag {
        TW_CF_RECV = 1 << 0,      /* multishot recv armed */
        TW_CF_SEND = 1 << 1,      /* a send is in flight */
        TW_CF_PING = 1 << 2,      /* we pinged and have heard nothing since */
        TW_CF_DIRTY = 1 << 3,     /* on the worker's flush list */
        TW_CF_PUBLISHER = 1 << 4, /* presented the publish token */
        TW_CF_REJECT = 1 << 5,    /* over a limit: answer the request with 503 */
        TW_CF_SESSION = 1 << 6,   /* reached OPEN: counts as a WebSocket close at the end */
        TW_CF_EOF = 1 << 7,       /* peer shut its side down */
        TW_CF_CLOSE_SENT = 1 << 8,
        TW_CF_SERVED = 1 << 9,  /* answered an HTTP request: not a failed handshake */
        TW_CF_SHUT = 1 << 10,   /* LINGER: everything is sent and our write side shut down */
        TW_CF_REPLAY = 1 << 11, /* a `since` replay streams from history (topic.c) */
        TW_CF_LOSSY = 1 << 12,  /* the slow-consumer rule dropped output since the replay began */
        TW_CF_SHUT_PENDING = 1 << 13,  /* the shutdown request has not completed: the
                                          descriptor must not be closed yet */
        TW_CF_TLS = 1 << 14,           /* ext->tls is set: output is encrypted */
        TW_CF_TOKEN_EXPIRED = 1 << 15, /* told token_expired: closes at the grace deadline */
};

struct tw_worker;
struct tw_rx;    /* partial input: HTTP head/body, or a reader + message being assembled */
struct tw_subs;  /* topic subscriptions */
struct tw_grant; /* what the session's JWT grants (auth) */
struct WOLFSSL;  /* wolfSSL's connection object */

/* What only some connections have, allocated on first need and freed with the slot, so
 * a plain idle connection pays one pointer for all of it. Each part belongs to the module
 * named beside it. */
typedef struct tw_ext {
        struct WOLFSSL *tls;    /* tls.c: the TLS session (TW_CF_TLS) */
        struct tw_subs *subs;   /* topic.c: subscriptions */
        struct tw_grant *grant; /* conn.c (auth): the token's claims; NULL = no JWT */
        uint64_t token_due_ms;  /* worker time the token expires (or, once told, its grace
                                   ends: TW_CF_TOKEN_EXPIRED); 0 = never */
} tw_ext;

typedef struct tw_conn {
        tw_timer timer;      /* the one deadline: handshake, heartbeat, close, linger */
        struct tw_rx *rx;    /* NULL unless input is partial */
        tw_outq *out;        /* NULL unless output is queued */
        tw_ext *ext;         /* NULL unless TLS, subscribed or authenticated */
        uint32_t last_seen;  /* worker clock, ms (wraps; compared by difference) */
        uint32_t gen;        /* bumped on reuse: stale completions are ignored */
        int32_t fd;          /* fixed-file index; next free slot while FREE */
        uint32_t tat;        /* --max-message-rate: theoretical arrival time, us (GCRA) */
        int32_t ip;          /* --max-connections-per-ip: its table entry, -1 = none */
        uint32_t flags;      /* enum tw_conn_flag */
        uint8_t state;       /* enum tw_conn_state */
        uint8_t inflight;    /* requests in flight; the slot is freed at 0 */
        uint16_t close_code; /* how the session ended, for metrics */
        uint16_t detect_age; /* unused unless detected: age in 10 ms units (logs) */
} tw_conn;

/* c's extension, allocated when it has none; NULL when out of memory. */
tw_ext *tw_conn_ext(tw_conn *c);

/* The session's token deadline (see tw_ext.token_due_ms) has come or passed: tells the
 * client `token_expired`, or closes with 4001 once the grace is over. Returns the next
 * deadline (0: none). Called by the worker from c's timer. */
uint64_t tw_conn_token_due(struct tw_worker *w, tw_conn *c);

/* Frees the extension when the slot is released (its TLS session and subscriptions are
 * gone by then; the grant goes with it). */
void tw_conn_free_ext(tw_conn *c);

struct tw_worker;

/* Bytes received on c (state HTTP, OPEN or CLOSING). buf is the worker's receive buffer
 * and may be modified (frames are unmasked in place). */
void tw_conn_on_data(struct tw_worker *w, tw_conn *c, uint8_t *buf, size_t len);

/* Output drained below --max-queue: go on with HTTP requests held back meanwhile. */
void tw_conn_resume(struct tw_worker *w, tw_conn *c);

/* The peer shut down its sending side (recv returned 0). */
void tw_conn_on_eof(struct tw_worker *w, tw_conn *c);

/* Queues a frame reference for sending (takes the caller's reference). Returns 0, or
 * -ENOMEM (the frame is released and the connection terminated). */
int tw_conn_send(struct tw_worker *w, tw_conn *c, tw_frame *f);

/* Queues bytes exactly as they go on the wire: no TLS, no --max-queue bound. tls.c
 * queues ciphertext with it. Same return values as tw_conn_send(). */
int tw_conn_send_raw(struct tw_worker *w, tw_conn *c, tw_frame *f);

/* Queues one text message (copied into a new frame); counts it as sent. */
void tw_conn_send_text(struct tw_worker *w, tw_conn *c, const void *p, size_t n);

/* Sends Close with code and reason and waits close_timeout for the peer's reply. */
void tw_conn_close(struct tw_worker *w, tw_conn *c, uint16_t code, const char *reason,
                   size_t reason_len);

/* Bytes queued and not yet sent. */
uint64_t tw_conn_queued(const tw_conn *c);

/* Frees partial input and queued output not in flight. */
void tw_conn_release_buffers(tw_conn *c);

/* A send completed: `sent` bytes went out and `left` are still queued. Goes on with what
 * waited for the queue to drain (held HTTP input, a replay, the end of a lingering close). */
void tw_conn_on_sent(struct tw_worker *w, tw_conn *c, size_t sent, uint64_t left);

/* Our last bytes are queued (an error answer, a Close, a TLS alert): the lingering close
 * of DESIGN 4 — send everything, shut our write side, read and discard until the peer's
 * FIN or --close-timeout, then close. */
void tw_conn_linger(struct tw_worker *w, tw_conn *c);

#endif
