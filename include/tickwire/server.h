/*
 * server — the workers: one thread, one io_uring ring, one SO_REUSEPORT listener per
 * listen address, one fixed-file table, one buffer ring and one timing wheel each. A
 * connection is accepted (as a direct descriptor) and served to the end by one worker.
 *
 * Owns: threads, listeners, rings, the loop, completions and their dispatch, the
 * connection table and slot reuse, timers, drain. Must not touch: protocol parsing (conn,
 * ws, http, proto do that) or another worker's connections (talk to a worker through its
 * inbox and a MSG_RING wake-up).
 */
#ifndef TICKWIRE_SERVER_H
#define TICKWIRE_SERVER_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tickwire/config.h"
#include "tickwire/conn.h"
#include "tickwire/metrics.h"
#include "tickwire/ring.h"
#include "tickwire/wheel.h"
#include "tickwire/ws.h"

/* Completion kinds (the top byte of user_data). */
enum tw_kind {
        TW_K_ACCEPT = 1, /* slot = listener index */
        TW_K_RECV,
        TW_K_SEND,
        TW_K_CLOSE,
        TW_K_CANCEL,
        TW_K_SHUTDOWN, /* shutdown(SHUT_WR) of a lingering close */
        TW_K_PEER,     /* fixed fd installed to read the peer address for a detect line */
        TW_K_WAKE,     /* MSG_RING from another thread: look at the inbox / drain flag */
        TW_K_IGNORE,
};

typedef struct tw_server tw_server;

/* Single accepts in flight per listener when peers are counted per address. */
#define TW_ACCEPT_ADDR 8

/* Where a single accept writes its peer's address. */
struct tw_peer {
        struct sockaddr_storage addr;
        socklen_t len;
};

typedef struct tw_worker {
        struct io_uring ring;
        tw_server *srv;
        unsigned id;
        _Atomic int ring_fd; /* for MSG_RING wake-ups from other threads */
        int listen_fd[TW_MAX_LISTEN];
        uint8_t armed[TW_MAX_LISTEN]; /* accepts armed per listener, a bit each */
        struct tw_peer *peer;         /* [TW_MAX_LISTEN][TW_ACCEPT_ADDR], with iplimit */
        uint64_t accept_retry_ms;     /* re-arm accept after a table-full pause */

        tw_bufring bufs;
        tw_wheel wheel;
        uint64_t epoch_ms; /* worker clock zero */
        uint64_t now_ms;   /* worker clock, read once per loop turn */

        tw_conn *conns;     /* slot table; pages are touched only as slots are used */
        uint32_t nslots;    /* = fixed-file table size */
        uint32_t hiwater;   /* slots [0, hiwater) have been used at least once */
        int32_t free_head;  /* free list through conn.fd, -1 = empty */
        uint32_t live;      /* slots not FREE */
        uint32_t admitted;  /* sessions counted against the limits */
        uint32_t rejected;  /* held over a limit, to be answered 503 (TW_CF_REJECT) */
        uint32_t admit_max; /* nslots minus a reserve kept for 503 answers */

        uint32_t *dirty; /* slots with output to flush this turn */
        uint32_t ndirty, dirty_cap;
        struct iovec *iov;      /* this turn's sendmsg vectors: the kernel has consumed them */
        struct msghdr *msg;     /* once submitted (IORING_FEAT_SUBMIT_STABLE) */
        uint32_t nmsg, niov;    /* msghdrs and iovecs of the arena in use */
        tw_frame_batch release; /* frames sent this turn, released once per frame */

        tw_ws_reader scratch; /* reader for connections that own none */
        uint64_t rng;         /* xorshift state: reconnect hints */
        bool draining;
        uint64_t drain_deadline_ms;
        uint32_t logged; /* limits already logged once */

        tw_metrics metrics;
        pthread_t thread;
        bool running;         /* thread created (joined by tw_server_join) */
        struct tw_demo *demo; /* worker 0 with --demo: the synthetic feed */
} tw_worker;

struct tw_server {
        tw_config cfg;
        unsigned nworkers;
        tw_worker *workers;
        _Atomic int draining;         /* set by the signal thread */
        _Atomic uint32_t connections; /* admitted sessions, all workers */
        struct io_uring msg_ring;     /* the main thread's ring, to wake workers */
        struct tw_topics *topics;     /* topic.c: topics and per-worker inboxes */
        struct WOLFSSL_CTX *tls;      /* tls.c: shared read-only by workers; NULL = no TLS */
        struct tw_iplimit *iplimit;   /* --max-connections-per-ip; NULL = off */
        uint16_t port[TW_MAX_LISTEN]; /* bound ports (port 0 resolved) */
        pthread_mutex_t start_mu;     /* workers report their setup here */
        pthread_cond_t start_cv;
        unsigned started; /* workers that have reported */
        int start_err;    /* the first setup failure, or 0 */
};

/* Creates listeners (resolving port 0 once for all workers) and starts the workers, each
 * setting up its own ring. Returns 0 once all of them run, or a negative errno with a
 * message on stderr, everything released (-EADDRINUSE: another process serves a listen
 * address; -EINVAL: the TLS certificate or key cannot be used). */
int tw_server_start(tw_server *srv, const tw_config *cfg);

/* Begins the drain: stop accepting, Close 1001 to everyone. Callable from any thread. */
void tw_server_drain(tw_server *srv);

/* Waits for every worker to finish and frees everything. */
void tw_server_join(tw_server *srv);

/* ---- used by conn.c ---- */

/* Terminates the TCP connection now (no close handshake), counting `code` as how the
 * session ended. Idempotent: cleanup runs exactly once whatever arrives afterwards. */
void tw_worker_terminate(tw_worker *w, tw_conn *c, uint16_t code);

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
static inline uint64_t tw_worker_time_of(const tw_worker *w, uint32_t t32)
{
        return w->now_ms - (uint32_t)((uint32_t)w->now_ms - t32);
}

/* Moves c to OPEN: counts the session, arms the heartbeat. */
void tw_worker_opened(tw_worker *w, tw_conn *c);

/* Random retry hint in [0, spread) ms for a Close 1001 reason. */
uint64_t tw_worker_random(tw_worker *w, uint64_t bound);

#endif
