/*
 * loop — a worker's event loop and what it offers the modules above it (conn, tls,
 * endpoints, topic): terminate a connection, arm its deadline, mark it for flushing, the
 * worker's clock, config, metrics and scratch reader, sending through the connection
 * layer, (slot, generation) handles, and per-worker mailboxes for cross-worker posts
 * (woken with IORING_OP_MSG_RING). One thread, one io_uring ring, one fixed-file table,
 * one buffer ring and one timing wheel per worker.
 *
 * Owns: the worker (opaque: defined in loop.c only), its ring and the requests on it,
 * the slot table of connection records below and slot reuse, completions and their
 * dispatch, the flush of queued output, timers, the mailboxes, the per-worker part of a
 * drain. Must not touch: what a connection's bytes mean or what state follows from them.
 * It reports every event through tw_loop_ops (conn.c, wired by server.c) and calls no
 * module above it; only conn changes a connection's state, except the loop's own three:
 * FREE (slot unused), HTTP (just accepted) and DEAD (terminated).
 *
 * The connection record (tw_conn) lives here because the slot table is made of it. An
 * idle open connection is the 72-byte record and nothing else (checked in loop.c).
 */
#ifndef TICKWIRE_LOOP_H
#define TICKWIRE_LOOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tickwire/config.h"
#include "tickwire/metrics.h"
#include "tickwire/outq.h"
#include "tickwire/span.h"
#include "tickwire/wheel.h"
#include "tickwire/ws.h"

typedef struct tw_worker tw_worker;

/* ---- the connection record ---- */

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
        TW_CF_WAIT = 1 << 16,          /* HTTP: an answer comes later (tw_worker_answer); the
                                          requests behind it wait */
        TW_CF_WAIT_CLOSE = 1 << 17,    /* ... and the request asked for Connection: close */
};

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

/* Who writes what: the loop — timer (through tw_worker_arm), fd, gen, inflight, ip,
 * detect_age, the RECV/SEND/DIRTY/SHUT_PENDING/REJECT/EOF flags, state FREE/HTTP/DEAD; topic
 * — REPLAY/LOSSY and ext->subs; conn — everything else. */
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

/* ---- what the modules above handle: every event on a connection goes here ---- */

typedef struct tw_loop_ops {
        /* Accepted on listener `li`: c is HTTP under its handshake deadline. The recv is
         * armed afterwards unless c was terminated. */
        void (*accepted)(tw_worker *w, tw_conn *c, unsigned li);
        /* Bytes received (buf is the worker's receive buffer and may be modified). */
        void (*data)(tw_worker *w, tw_conn *c, uint8_t *buf, size_t len);
        /* The peer shut its sending side (TW_CF_EOF already set). */
        void (*eof)(tw_worker *w, tw_conn *c);
        /* A send completed: `sent` bytes went out, `left` are still queued. */
        void (*sent)(tw_worker *w, tw_conn *c, size_t sent, uint64_t left);
        /* c's deadline came. */
        void (*timer)(tw_worker *w, tw_conn *c);
        /* c was terminated: let go of what it holds beyond the slot (subscriptions,
         * buffers). The descriptor closes right after. */
        void (*gone)(tw_worker *w, tw_conn *c);
        /* c's slot is being freed: the last in-flight request has completed. */
        void (*release)(tw_conn *c);
        /* The drain began: c is asked to go (called for each slot in use). */
        void (*drain)(tw_worker *w, tw_conn *c);
        /* Queues f for c (takes the reference): 0 or a negative errno (tw_conn_send). */
        int (*send)(tw_worker *w, tw_conn *c, tw_frame *f);
        /* A topic message for subscriber c: -1 when c takes none (not open; f untouched),
         * else f is queued (reference taken) and the result is 1 if that ended c. */
        int (*deliver)(tw_worker *w, tw_conn *c, tw_frame *f);
        /* One post taken from this worker's mailbox, with the mailbox's reference. */
        void (*mailbox)(tw_worker *w, uint64_t key, tw_frame *f);
        /* The deferred answer to c's HTTP request (TW_CF_WAIT): a JSON body, and the
         * request's allowed Origin (or empty) for CORS. */
        void (*answer)(tw_worker *w, tw_conn *c, int status, tw_span origin, const char *body,
                       size_t len);
        /* The worker's thread is about to run its loop (set-up is done). May be NULL. */
        void (*started)(tw_worker *w);
        /* --demo: publish one synthetic message. */
        void (*publish)(tw_worker *w, const char *topic, const char *data, size_t len);
} tw_loop_ops;

/* What the workers of one server share: written before they start, then read (the
 * atomics and what the pointers lead to have their own rules). */
typedef struct tw_shared {
        tw_config cfg;
        unsigned nworkers;
        tw_worker **workers;
        const tw_loop_ops *ops;
        _Atomic int draining;         /* set by the signal thread */
        _Atomic uint32_t connections; /* admitted sessions, all workers */
        struct tw_topics *topics;     /* topic.c: topics and per-worker inboxes */
        struct WOLFSSL_CTX *tls;      /* tls.c: shared read-only by workers; NULL = no TLS */
        struct tw_iplimit *iplimit;   /* --max-connections-per-ip; NULL = off */
} tw_shared;

/* ---- the worker's life (server.c) ---- */

/* A worker of sh, not yet set up; NULL when out of memory. */
tw_worker *tw_loop_new(tw_shared *sh, unsigned id);

/* Listener i of this worker (the worker closes it). */
void tw_loop_set_listener(tw_worker *w, unsigned i, int fd);

/* Sets up the ring, buffers, slots and wheel (on the worker's thread). 0 or -errno, with
 * a line on stderr. */
int tw_loop_setup(tw_worker *w);

/* Runs the loop until the drain is over. */
void tw_loop_run(tw_worker *w);

/* The ring's descriptor for MSG_RING wake-ups; <= 0 before setup. */
int tw_loop_ring_fd(tw_worker *w);

/* Prepares sqe (on another thread's ring) as a wake-up of w: a MSG_RING that makes w
 * look at its mailbox and at the drain flag. Needs w's ring (tw_loop_ring_fd() > 0). */
struct io_uring_sqe;
void tw_loop_prep_wake(struct io_uring_sqe *sqe, tw_worker *w);

/* Frees everything the worker holds (after its thread is joined). NULL is a no-op. */
void tw_loop_free(tw_worker *w);

/* ---- what a worker offers the modules above ---- */

/* Terminates the TCP connection now (no close handshake), counting `code` as how the
 * session ended. Idempotent: cleanup runs exactly once whatever arrives afterwards. */
void tw_worker_terminate(tw_worker *w, tw_conn *c, uint16_t code);

/* Out of memory for `what` on c: counted as a limit hit, logged once, c terminated. */
void tw_worker_nomem(tw_worker *w, tw_conn *c, const char *what, uint16_t code);

/* The heartbeat found c's peer silent for age_ms: counts the detection, logs the detect
 * line with the peer's address and terminates c (1006). */
void tw_worker_expire(tw_worker *w, tw_conn *c, uint64_t age_ms);

/* Shuts down c's sending side (FIN after the last queued byte); the recv stays armed. */
void tw_worker_shutdown(tw_worker *w, tw_conn *c);

/* When a close that is waiting now should give up: close_timeout from now, or the drain
 * deadline while draining. */
uint64_t tw_worker_close_deadline(const tw_worker *w);

/* Marks c for a flush at the end of this loop turn. */
void tw_worker_mark_dirty(tw_worker *w, tw_conn *c);

/* (Re)arms c's timer for absolute worker time `at_ms`. */
void tw_worker_arm(tw_worker *w, tw_conn *c, uint64_t at_ms);

/* Worker time of a stored 32-bit timestamp (the most recent time with those bits). */
uint64_t tw_worker_time_of(const tw_worker *w, uint32_t t32);

/* Random retry hint in [0, bound) ms for a Close 1001 reason. */
uint64_t tw_worker_random(tw_worker *w, uint64_t bound);

/* The worker clock, ms: read once per loop turn. */
uint64_t tw_worker_now(const tw_worker *w);

const tw_config *tw_worker_cfg(const tw_worker *w);
tw_metrics *tw_worker_metrics(tw_worker *w);
unsigned tw_worker_id(const tw_worker *w);
unsigned tw_worker_count(const tw_worker *w);

/* Every worker's metrics (count: tw_worker_count()), for /metrics. */
void tw_worker_metrics_all(tw_worker *w, tw_metrics **all);

/* Whether the server is draining (set by the signal thread; any worker may lag). */
bool tw_worker_server_draining(const tw_worker *w);

/* A reader for connections that own none, valid until the next call on this worker. */
tw_ws_reader *tw_worker_scratch(tw_worker *w);

/* The server's shared parts that belong to modules above (opaque here). */
struct tw_topics *tw_worker_topics(tw_worker *w);
struct WOLFSSL_CTX *tw_worker_tls_ctx(tw_worker *w);

/* ---- sending, handles and the mailbox ---- */

/* c's extension (loop.h's tw_ext), allocated when it has none; NULL when out of memory. */
tw_ext *tw_ext_get(tw_conn *c);

/* Queues f for c through the connection layer (ops->send; takes the reference). */
int tw_worker_send(tw_worker *w, tw_conn *c, tw_frame *f);

/* Queues one text message (copied into a new frame) and counts it as sent; out of
 * memory terminates c. */
void tw_worker_send_text(tw_worker *w, tw_conn *c, const void *p, size_t n);

/* Delivers a topic message to the subscriber a (slot, gen) handle names: -1 when it is
 * gone or takes none (f untouched), 0 when queued (a reference taken), 1 when queued and
 * that ended the connection. */
int tw_worker_deliver(tw_worker *w, uint32_t slot, uint32_t gen, tw_frame *f);

/* Answers c's waiting HTTP request (ops->answer). */
void tw_worker_answer(tw_worker *w, tw_conn *c, int status, tw_span origin, const char *body,
                      size_t len);

/* c's slot: with c->gen, a handle that outlives c safely. */
uint32_t tw_worker_slot(const tw_worker *w, const tw_conn *c);

/* The connection a (slot, generation) handle names, or NULL when its slot was freed or
 * reused. A terminated connection (TW_CONN_DEAD) is still found until its slot frees. */
tw_conn *tw_worker_conn(tw_worker *w, uint32_t slot, uint32_t gen);

/* Posts a reference of f under `key` to worker k's mailbox, in order, and wakes k with
 * one MSG_RING from this worker's ring unless a wake is already due (this worker's own
 * mailbox needs none: it is read at the end of every turn). k hands each post to
 * ops->mailbox. 0 or -ENOMEM (nothing posted). */
int tw_worker_post(tw_worker *w, unsigned k, uint64_t key, tw_frame *f);

/* ---- descriptors a module owns (the broker's Redis sockets) ---- */

/* Driven by this worker's ring like the connections: the module queues an operation
 * with its handler id and a tag of its own, and the handler runs on this worker with the
 * completion's result (bytes, 0, or a negative errno; -ETIME for a timeout that fired).
 * The buffers must stay valid until the completion. */
#define TW_IO_MAX 4
struct sockaddr;
typedef void (*tw_io_fn)(tw_worker *w, void *arg, uint32_t tag, int res);

/* Registers a handler: its id, or -ENOSPC (TW_IO_MAX). */
int tw_worker_io_open(tw_worker *w, tw_io_fn fn, void *arg);
void tw_worker_io_recv(tw_worker *w, int id, uint32_t tag, int fd, void *buf, size_t len);
void tw_worker_io_send(tw_worker *w, int id, uint32_t tag, int fd, const void *buf, size_t len);
void tw_worker_io_connect(tw_worker *w, int id, uint32_t tag, int fd, const struct sockaddr *sa,
                          unsigned len);
/* One timeout per handler at a time (it keeps the timespec). */
void tw_worker_io_timeout(tw_worker *w, int id, uint32_t tag, uint64_t ms);
/* Cancels everything queued on fd (their completions still come, with -ECANCELED). */
void tw_worker_io_cancel_fd(tw_worker *w, int fd);

#endif
