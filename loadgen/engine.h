/*
 * engine — the client side of many WebSocket connections: one thread, one io_uring ring,
 * one sparse fixed-file table, one provided-buffer ring and one timing wheel per thread.
 * Each connection is a direct descriptor, made straight into its fixed slot by one linked
 * SQE chain (socket, setsockopt, bind to an explicit source pair, connect) that needs no
 * system call of its own; kernels without IORING_OP_BIND get a normal fd set up
 * synchronously, registered into the slot and closed. Either way the process fd limit
 * bounds only sockets in the making, not connections. connect/send/recv/poll then run on
 * the slot.
 *
 * Owns: threads, rings, struct lg_conn and its lazily allocated parts (handshake state,
 * frame reader, output), the per-thread stats. Must not touch: the report format, the
 * server's /metrics or log (main and probe do that), the scenario rules (asks scenario).
 */
#ifndef LG_ENGINE_H
#define LG_ENGINE_H

#include <liburing.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "market.h"
#include "opts.h"
#include "stats.h"
#include "tickwire/ring.h"
#include "tickwire/table.h"
#include "tickwire/tls.h"
#include "tickwire/wheel.h"
#include "tickwire/ws.h"

/* Most connections one ring holds: the fixed-file table is capped at RLIMIT_NOFILE
 * (20,000 here) and a few normal fds must stay free for sockets in the making. */
#define LG_MAX_PER_THREAD 19900

enum lg_conn_state {
        LG_IDLE = 0,   /* not started, or waiting out a reconnect backoff */
        LG_CONNECTING, /* connect in flight */
        LG_HANDSHAKE,  /* upgrade request sent, waiting for the 101 */
        LG_OPEN,       /* WebSocket session, heartbeating */
        LG_SILENT,     /* gone quiet on purpose (scenario silent) */
        LG_PAUSED,     /* open, but stopped reading (scenario slow); still app-pings */
        LG_CLOSING,    /* Close sent or received; waiting for the server's FIN */
        LG_DEAD,       /* terminated; requests still in flight */
        LG_DONE,       /* finished for this run */
};

enum lg_conn_flag {
        LG_CF_RECV = 1 << 0,   /* multishot recv armed */
        LG_CF_SEND = 1 << 1,   /* a send is in flight */
        LG_CF_HIT = 1 << 2,    /* the scenario event hits this client */
        LG_CF_ECHO = 1 << 3,   /* graceful: the server's Close echo arrived */
        LG_CF_REOPEN = 1 << 4, /* after DEAD: reconnect instead of DONE */
        LG_CF_EVER = 1 << 5,   /* has been open at least once */
        LG_CF_PEERCL = 1 << 6, /* the server sent Close first (drain, restart) */
        LG_CF_PUB = 1 << 7,    /* a publisher (pub/sub), not one of --connections */
};

struct lg_hs;  /* handshake: the key and the response head so far */
struct lg_out; /* output bytes, one buffer in flight and one filling */

typedef struct lg_conn {
        tw_timer timer;     /* connect/handshake deadline, app ping, close wait, backoff */
        struct lg_hs *hs;   /* NULL once open */
        struct lg_out *out; /* NULL when nothing is queued */
        tw_ws_reader *rd;   /* NULL unless a frame is split across reads */
        uint64_t t_us;      /* run clock: attempt start, then the event moment */
        uint32_t id;        /* global client number: the scenario's hit rule keys on it */
        uint32_t hint_ms;   /* retry_ms from the server's Close, UINT32_MAX for none */
        uint32_t rx_ms;     /* open: run clock (ms) of the last bytes from the server */
        uint32_t ping_ms;   /* open: run clock (ms) the next app ping is due */
        uint8_t state;      /* enum lg_conn_state */
        uint8_t flags;      /* enum lg_conn_flag */
        uint8_t inflight;   /* requests in flight on the slot */
        uint8_t attempt;    /* reconnect attempts since the last session */
        uint8_t tgt;        /* index in o->targets this client connects to */
        uint8_t sess_tgt;   /* the target of its last session (storm: moved when != tgt) */
} lg_conn;

/* A power-silent client, for matching the server's detect lines after the run. */
typedef struct lg_power_rec {
        uint32_t addr; /* local IPv4 address, network order */
        uint16_t port; /* local port, host order */
        uint32_t id;
        double silent_ms; /* run clock */
} lg_power_rec;

/* One CSV row. */
enum lg_event_kind {
        LG_EV_ESTABLISHED, /* value: connect + handshake time */
        LG_EV_FAILED,      /* value: reason index (enum lg_fail) */
        LG_EV_DETECTION,   /* value: detection latency (app silence) */
        LG_EV_FALSE_DISCONNECT,
        LG_EV_RECONNECT,       /* value: time since the drop */
        LG_EV_CLOSE_ECHO,      /* value: Close round trip */
        LG_EV_SILENT,          /* the client went silent */
        LG_EV_POWER_DETECTION, /* value: server's age_ms from its detect line */
        LG_EV_SERVER_DEAD,     /* value: silence of the server (--server-timeout) */
        LG_EV__COUNT
};
extern const char *const lg_event_names[LG_EV__COUNT];

typedef struct lg_event {
        float t_ms;
        float value_ms;
        uint32_t id;
        uint8_t kind;
} lg_event;

typedef struct lg_engine lg_engine;

typedef struct lg_thread {
        lg_engine *eng;
        unsigned idx;
        pthread_t thread;
        struct io_uring ring;
        tw_bufring bufs;
        tw_wheel wheel;
        tw_ws_reader scratch; /* reader for connections that own none */
        lg_conn *conns;       /* client ids idx, idx + nthreads, ..., then publishers */
        tw_table slots;       /* conns[k] holds slot k for life; renewed per attempt */
        uint32_t nconns;      /* subscribers / clients: conns[0 .. nconns) */
        uint32_t nslots;      /* nconns + this thread's publishers */
        lg_sub *subs;         /* pub/sub: [nconns], NULL otherwise */
        lg_pub *pubs;         /* [nslots - nconns] */
        WOLFSSL **ssl;        /* --tls: [nslots], NULL otherwise */
        bool resume_done;     /* slow: the paused clients read again */
        uint32_t next_start;  /* ramp: next connection to start */
        uint32_t connecting;  /* attempts in flight (connect or handshake) */
        uint64_t now_us;      /* run clock, read once per loop turn */
        uint64_t rng;         /* xorshift64: masks, keys, jitter */
        bool event_done;
        uint64_t last_first_us; /* run clock when a first attempt last resolved */
        uint64_t port_cursor;   /* next (source, port) pair this thread binds */
        bool chain;             /* connect with one linked SQE chain (kernel 6.11+) */
        uint32_t bind_misses;   /* EADDRINUSE binds since the last connect that went through */
        struct sockaddr_in *bind_addr; /* chain: one source address per SQ entry */
        int slow_rcvbuf;               /* slow: SO_RCVBUF value the chain points at */

        lg_counters c;        /* live: read by main's progress line */
        lg_hist latency_us;   /* app ping round trips */
        lg_hist handshake_us; /* connect start to 101 */
        lg_hist close_us;     /* graceful: Close to echo */
        lg_hist e2e_us;       /* pub/sub: publish timestamp to delivery */
        lg_samples detect_ms; /* app silence detections */
        lg_samples dead_ms;   /* --server-timeout: the server's silence when judged dead */
        /* Per target (o->targets), clients only; written by this thread, read after the
         * join. */
        uint64_t est_target[LG_MAX_TARGETS];   /* 101s, reconnects included */
        uint64_t moved_target[LG_MAX_TARGETS]; /* reconnects here from another target */
        lg_power_rec *power;
        size_t npower, power_cap;
        lg_event *events;
        size_t nevents, events_cap;
        int err; /* set up failure, negative errno */
} lg_thread;

struct lg_engine {
        const lg_opts *o;
        unsigned nthreads;
        lg_thread *threads;
        uint64_t t0_us; /* tw_now_us() at start: run clock zero */
        _Atomic int stop;
        _Atomic uint64_t first_drop_us; /* storm: run clock of the first drop + 1, 0 = none */
        _Atomic uint64_t event_us;      /* run clock of the event + 1, 0 = not yet */
        _Atomic uint64_t pub_start_us;  /* run clock publishing starts + 1, 0 = not yet */
        lg_market mkt;                  /* pub/sub tables (read-only once started) */
        WOLFSSL_CTX *tls;               /* --tls client context, shared by the threads */
};

/* Picks the thread count, allocates and starts the threads. Returns 0 or a negative
 * errno (with a line on stderr). */
int lg_engine_start(lg_engine *e, const lg_opts *o);

/* Asks every thread to finish its loop; returns at once. */
void lg_engine_stop(lg_engine *e);

/* Waits for the threads. Their stats stay readable until lg_engine_free(). */
void lg_engine_join(lg_engine *e);
void lg_engine_free(lg_engine *e);

/* Live totals over all threads (relaxed reads). */
void lg_engine_sum(const lg_engine *e, lg_counters *out);

/* After the join: per target, 101s received, sessions open at the end and reconnects
 * that moved there (arrays of o->ntargets). */
void lg_engine_per_target(const lg_engine *e, uint64_t *est, uint64_t *open, uint64_t *moved);

/* Run clock, microseconds since the engine started. */
uint64_t lg_engine_now_us(const lg_engine *e);

/* ---- for the scenario modules (market.c), on the owning thread only ---- */

static inline uint32_t lg_conn_slot(const lg_thread *t, const lg_conn *c)
{
        return (uint32_t)(c - t->conns);
}
static inline lg_pub *lg_conn_pub(lg_thread *t, lg_conn *c)
{
        return &t->pubs[lg_conn_slot(t, c) - t->nconns];
}

/* Queues bytes on c (encrypted first under --tls); nothing moves until lg_conn_flush(),
 * so a burst leaves in one send. 0 or a negative errno. */
int lg_conn_queue(lg_thread *t, lg_conn *c, const void *p, size_t n);
/* Queues one masked text frame of any size. */
int lg_conn_queue_text(lg_thread *t, lg_conn *c, const void *p, size_t n);
/* Sends what is queued unless a send is in flight (its completion sends the rest). */
void lg_conn_flush(lg_thread *t, lg_conn *c);
/* Arms c's one timer for run clock at_us (1 ms grain, never early). */
void lg_conn_arm(lg_thread *t, lg_conn *c, uint64_t at_us);

#endif
