/*
 * The workers. Each runs one loop over its own io_uring ring:
 *
 *   submit pending SQEs and wait (one io_uring_enter) with a timeout from the wheel
 *   → dispatch every completion on its (kind, slot, generation) tag
 *   → advance the timing wheel to now (handshake, heartbeat, close deadlines)
 *   → flush: one sendmsg per connection with queued output, not already sending (under
 *     load, every other turn or so: see maybe_flush)
 *   → give consumed receive buffers back to the kernel
 *
 * What a completion means for a connection is decided above: every event goes through
 * the worker's tw_loop_ops (conn.c), and this file calls no module above it.
 *
 * Connections are direct descriptors (multishot accept into a sparse fixed-file table),
 * so a worker holds up to a table's worth of them whatever the process fd limit is.
 *
 * Cleanup of a connection happens exactly once: tw_worker_terminate() moves it to DEAD
 * (a second call is a no-op), cancels everything in flight on its descriptor and closes
 * it; the slot is reused only when the last in-flight request has completed, and the
 * generation in every completion tag keeps a late completion from touching the next
 * occupant of the slot.
 */
#include "tickwire/loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <liburing.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tickwire/coalesce.h"
#include "tickwire/demo.h"
#include "tickwire/iplimit.h"
#include "tickwire/ring.h"

#define TW_RING_ENTRIES 1024
#define TW_RECV_BUFS    256  /* per worker: the kernel touches them all in turn, */
#define TW_RECV_BUF_SZ  2048 /* so this is a fixed 512 KiB, not a per-connection cost */
#define TW_IOV_MAX      1024 /* frames coalesced into one sendmsg (UIO_MAXIOV) */
#define TW_IOV_ARENA    4096 /* iovecs prepared per submit: 64 KiB per worker */
#define TW_MSG_ARENA    256  /* sendmsgs prepared per submit */
#define TW_SLOT_RESERVE 64   /* slots past the limit, to answer 503 instead of dropping */

enum { TW_LOGGED_TABLE = 1, TW_LOGGED_LIMIT = 2, TW_LOGGED_NOMEM = 4, TW_LOGGED_PER_IP = 8 };

/* loop.h and conn.h say what an idle connection costs: keep them true. */
_Static_assert(sizeof(tw_conn) == 72, "tw_conn changed size: update loop.h and conn.h");
_Static_assert(TW_COALESCE_FULL_SEND == TW_IOV_MAX, "a full send is what one sendmsg carries");

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
        TW_K_IO, /* a module's own descriptor (tw_worker_io_*): slot = handler, gen = tag */
};

/* Single accepts in flight per listener when peers are counted per address. */
#define TW_ACCEPT_ADDR 8

/* Where a single accept writes its peer's address. */
struct tw_peer {
        struct sockaddr_storage addr;
        socklen_t len;
};

/* A mailbox: a mutex-protected vector swapped out whole when its worker reads it. */
struct tw_post {
        uint64_t key;
        tw_frame *f; /* a reference owned by the mailbox */
};

struct tw_mailbox {
        pthread_mutex_t mu;
        struct tw_post *v; /* posts in arrival order */
        uint32_t n, cap;
        struct tw_post *spare; /* the vector read last time, reused */
        uint32_t spare_cap;
        _Atomic int woken; /* a wake is in flight or the mailbox is non-empty */
} __attribute__((aligned(64)));

/* A module's handler for operations on descriptors it owns, and the one timeout it may
 * have pending (the timespec must outlive the submission). */
struct tw_io {
        tw_io_fn fn;
        void *arg;
        struct __kernel_timespec ts;
};

struct tw_worker {
        struct io_uring ring;
        struct tw_mailbox *mbox; /* cross-worker posts (own cache lines) */
        tw_shared *sh;
        const tw_loop_ops *ops;
        unsigned id;
        _Atomic int ring_fd; /* for MSG_RING wake-ups from other threads */
        int schedstat_fd;    /* this thread's /proc schedstat, for the coalescing gate */
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

        uint32_t *dirty; /* slots with output to flush */
        uint32_t ndirty, dirty_cap;
        tw_coalesce coalesce;   /* whether this turn's flush happens or waits */
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
        struct tw_demo *demo;       /* worker 0 with --demo: the synthetic feed */
        struct tw_io io[TW_IO_MAX]; /* handlers of modules' own descriptors */
        unsigned nio;
};

static void log_once(tw_worker *w, uint32_t what, const char *msg)
{
        if (w->logged & what)
                return;
        w->logged |= what;
        fprintf(stderr, "tickwire: worker %u: %s (logged once; see tickwire_limit_hits_total)\n",
                w->id, msg);
}

/* ---- timers ---- */

static uint64_t ticks_of(const tw_worker *w, uint64_t at_ms)
{
        uint64_t tick = w->sh->cfg.tick_ms;

        /* Round up: a deadline may be late by a tick, never early. */
        return (at_ms + tick - 1) / tick;
}

void tw_worker_arm(tw_worker *w, tw_conn *c, uint64_t at_ms)
{
        /* A dead connection keeps no deadline: its node is wiped when the slot frees. */
        if (c->state == TW_CONN_DEAD || c->state == TW_CONN_FREE)
                return;
        if (tw_wheel_add(&w->wheel, &c->timer, ticks_of(w, at_ms)) < 0) {
                /* A connection without a deadline could outlive its peer: end it. */
                log_once(w, TW_LOGGED_NOMEM, "out of memory for a timer");
                TW_INC(w->metrics.limit_hits);
                tw_worker_terminate(w, c, TW_WS_CLOSE_INTERNAL);
        }
}

static void log_detect(tw_worker *w, tw_conn *c, int fd)
{
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        char host[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;

        if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
                if (ss.ss_family == AF_INET) {
                        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
                        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
                        port = ntohs(s4->sin_port);
                } else if (ss.ss_family == AF_INET6) {
                        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
                        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
                        port = ntohs(s6->sin6_port);
                }
        }
        fprintf(stderr, "tickwire: detect peer=%s%s%s:%u age_ms=%u worker=%u\n",
                strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", port,
                (unsigned)c->detect_age * 10u, w->id);
}

/* The peer has been silent past idle_timeout: it is gone (power cut, cable, NAT). */
void tw_worker_expire(tw_worker *w, tw_conn *c, uint64_t age_ms)
{
        struct io_uring_sqe *sqe;

        TW_INC(w->metrics.heartbeat_timeouts);
        tw_histogram_observe(&w->metrics.detection, age_ms * 1000u);
        c->detect_age = (uint16_t)(age_ms / 10u > 65535u ? 65535u : age_ms / 10u);
        /* Read the peer address for the detect line through a temporary regular fd,
         * linked ahead of the close so the socket is still there. Rare path. The three
         * SQEs (install, cancel, close) are one chain: reserved together. */
        tw_ring_reserve(&w->ring, 3);
        sqe = tw_ring_sqe(&w->ring);
        tw_prep_fixed_fd_install(sqe, c->fd);
        sqe->flags |= IOSQE_IO_HARDLINK;
        io_uring_sqe_set_data64(sqe, tw_ud(TW_K_PEER, (uint32_t)(c - w->conns), c->gen));
        c->inflight++;
        tw_worker_terminate(w, c, TW_WS_CLOSE_ABNORMAL);
}

static void on_timer(tw_wheel *wh, tw_timer *t, void *ctx)
{
        tw_worker *w = ctx;

        w->ops->timer(w, tw_container_of(t, tw_conn, timer));
}

/* ---- slots ---- */

static tw_conn *slot_alloc(tw_worker *w)
{
        tw_conn *c;

        if (w->free_head >= 0) {
                c = &w->conns[w->free_head];
                w->free_head = c->fd;
        } else if (w->hiwater < w->nslots) {
                c = &w->conns[w->hiwater++];
        } else {
                return NULL;
        }
        w->live++;
        return c;
}

static void slot_release(tw_worker *w, tw_conn *c)
{
        uint32_t gen = c->gen + 1;

        w->ops->release(c); /* only here: terminate may run inside a wolfSSL callback */
        memset(c, 0, sizeof(*c));
        c->gen = gen;
        c->state = TW_CONN_FREE;
        c->fd = w->free_head;
        w->free_head = (int32_t)(c - w->conns);
        w->live--;
}

static void maybe_release(tw_worker *w, tw_conn *c)
{
        if (c->state == TW_CONN_DEAD && c->inflight == 0)
                slot_release(w, c);
}

static uint32_t slot_of(const tw_worker *w, const tw_conn *c)
{
        return (uint32_t)(c - w->conns);
}

/* ---- I/O requests ---- */

static void arm_recv(tw_worker *w, tw_conn *c)
{
        struct io_uring_sqe *sqe = tw_ring_sqe(&w->ring);

        tw_prep_recv_multishot(sqe, c->fd, w->bufs.bgid);
        io_uring_sqe_set_data64(sqe, tw_ud(TW_K_RECV, slot_of(w, c), c->gen));
        c->flags |= TW_CF_RECV;
        c->inflight++;
}

/* Arms what listener i is missing: one multishot accept, or — when connections are
 * counted per address, which needs each peer's address — TW_ACCEPT_ADDR single accepts,
 * each writing into its own slot of w->peer (a multishot accept would reuse one). */
static void arm_accept(tw_worker *w, unsigned i)
{
        unsigned n = w->sh->iplimit ? TW_ACCEPT_ADDR : 1;

        for (unsigned k = 0; k < n; k++) {
                struct io_uring_sqe *sqe;

                if (w->armed[i] & (1u << k))
                        continue;
                sqe = tw_ring_sqe(&w->ring);
                if (w->sh->iplimit) {
                        struct tw_peer *p = &w->peer[i * TW_ACCEPT_ADDR + k];

                        p->len = sizeof(p->addr);
                        io_uring_prep_accept_direct(sqe, w->listen_fd[i],
                                                    (struct sockaddr *)&p->addr, &p->len, 0,
                                                    IORING_FILE_INDEX_ALLOC - 1);
                } else {
                        io_uring_prep_multishot_accept_direct(sqe, w->listen_fd[i], NULL, NULL, 0);
                }
                io_uring_sqe_set_data64(sqe, tw_ud(TW_K_ACCEPT, i | k << 8, 0));
                w->armed[i] |= 1u << k;
        }
}

static bool all_armed(const tw_worker *w, unsigned i)
{
        return w->armed[i] == (w->sh->iplimit ? (1u << TW_ACCEPT_ADDR) - 1 : 1u);
}

/* Cancels everything in flight on c's descriptor (the recv, a send blocked on a peer that
 * never drains its window), then closes it: one hard-linked pair, reserved together so a
 * full SQ cannot split it. */
static void close_fd(tw_worker *w, tw_conn *c)
{
        struct io_uring_sqe *sqe;

        tw_ring_reserve(&w->ring, 2);
        sqe = tw_ring_sqe(&w->ring);
        tw_prep_cancel_fixed_fd(sqe, c->fd);
        sqe->flags |= IOSQE_IO_HARDLINK | IOSQE_CQE_SKIP_SUCCESS;
        io_uring_sqe_set_data64(sqe, tw_ud(TW_K_CANCEL, slot_of(w, c), c->gen));
        sqe = tw_ring_sqe(&w->ring);
        io_uring_prep_close_direct(sqe, (unsigned)c->fd);
        io_uring_sqe_set_data64(sqe, tw_ud(TW_K_CLOSE, slot_of(w, c), c->gen));
        c->inflight++;
}

void tw_worker_terminate(tw_worker *w, tw_conn *c, uint16_t code)
{
        if (c->state == TW_CONN_DEAD || c->state == TW_CONN_FREE)
                return;
        c->state = TW_CONN_DEAD;
        tw_wheel_cancel(&w->wheel, &c->timer);
        if (c->flags & TW_CF_SESSION) {
                TW_INC(w->metrics.closes[tw_close_slot_of(code ? code : TW_WS_CLOSE_ABNORMAL)]);
        }
        TW_DEC(w->metrics.connections);
        if (!(c->flags & TW_CF_REJECT)) {
                w->admitted--;
                atomic_fetch_sub_explicit(&w->sh->connections, 1, memory_order_relaxed);
        } else {
                w->rejected--;
        }
        if (c->ip >= 0) {
                tw_iplimit_release(w->sh->iplimit, c->ip);
                c->ip = -1;
        }
        w->ops->gone(w, c);
        /* A shutdown runs in the kernel's worker pool and resolves the fixed descriptor
         * only when it gets there: closing now would let it hit the next connection given
         * the same table slot. Its completion closes instead (on_shutdown). */
        if (!(c->flags & TW_CF_SHUT_PENDING))
                close_fd(w, c);
}

void tw_worker_shutdown(tw_worker *w, tw_conn *c)
{
        struct io_uring_sqe *sqe = tw_ring_sqe(&w->ring);

        io_uring_prep_shutdown(sqe, c->fd, SHUT_WR);
        sqe->flags |= IOSQE_FIXED_FILE;
        io_uring_sqe_set_data64(sqe, tw_ud(TW_K_SHUTDOWN, slot_of(w, c), c->gen));
        c->flags |= TW_CF_SHUT_PENDING;
        c->inflight++;
}

uint64_t tw_worker_close_deadline(const tw_worker *w)
{
        /* A drain gives every client until its deadline to answer our 1001. */
        return w->draining ? w->drain_deadline_ms : w->now_ms + w->sh->cfg.close_timeout_ms;
}

static void flush_one(tw_worker *w, tw_conn *c);

void tw_worker_mark_dirty(tw_worker *w, tw_conn *c)
{
        /* A held worker still sends a full or eighth-of-bound queue at once (coalesce.h); if a
         * send is in flight, nothing here: its completion comes back through this. */
        if (w->coalesce.loaded && c->out &&
            tw_coalesce_sends_now(tw_outq_frames(c->out), tw_outq_bytes(c->out),
                                  w->sh->cfg.max_queue))
                flush_one(w, c);
        if (c->flags & TW_CF_DIRTY)
                return;
        if (w->ndirty == w->dirty_cap) {
                uint32_t cap = w->dirty_cap ? w->dirty_cap * 2 : 1024;
                uint32_t *d = realloc(w->dirty, cap * sizeof(*d));

                if (!d) {
                        log_once(w, TW_LOGGED_NOMEM, "out of memory for the flush list");
                        TW_INC(w->metrics.limit_hits);
                        tw_worker_terminate(w, c, TW_WS_CLOSE_INTERNAL);
                        return;
                }
                w->dirty = d;
                w->dirty_cap = cap;
        }
        c->flags |= TW_CF_DIRTY;
        w->dirty[w->ndirty++] = slot_of(w, c);
}

/* A free msghdr and room for TW_IOV_MAX iovecs from this turn's arena (a send uses only
 * what its queue needs). When it is used up, the pending SQEs are submitted — which is
 * when the kernel consumes their vectors — and the arena starts over. Never reallocated:
 * queued SQEs point into it. A backlog deeper than 64 frames goes out in one sendmsg
 * rather than one per loop turn, each waiting for the previous one's completion. */
static struct msghdr *msg_take(tw_worker *w, struct iovec **iov)
{
        if (w->nmsg == TW_MSG_ARENA || w->niov + TW_IOV_MAX > TW_IOV_ARENA) {
                io_uring_submit(&w->ring);
                w->nmsg = 0;
                w->niov = 0;
        }
        *iov = &w->iov[w->niov];
        return &w->msg[w->nmsg];
}

static void flush_one(tw_worker *w, tw_conn *c)
{
        struct io_uring_sqe *sqe;
        struct msghdr *msg;
        struct iovec *iov;
        size_t n;

        if (c->state == TW_CONN_DEAD || c->state == TW_CONN_FREE || (c->flags & TW_CF_SEND) ||
            !c->out)
                return;
        msg = msg_take(w, &iov);
        n = tw_outq_prepare(c->out, iov, TW_IOV_MAX);
        if (!n)
                return;
        w->nmsg++;
        w->niov += (uint32_t)n;
        memset(msg, 0, sizeof(*msg));
        msg->msg_iov = iov;
        msg->msg_iovlen = n;
        TW_INC(w->metrics.sends);
        TW_ADD(w->metrics.send_frames, (uint64_t)n);
        sqe = tw_ring_sqe(&w->ring);
        io_uring_prep_sendmsg(sqe, c->fd, msg, MSG_NOSIGNAL);
        sqe->flags |= IOSQE_FIXED_FILE;
        io_uring_sqe_set_data64(sqe, tw_ud(TW_K_SEND, slot_of(w, c), c->gen));
        c->flags |= TW_CF_SEND;
        c->inflight++;
}

static void flush_dirty(tw_worker *w)
{
        for (uint32_t i = 0; i < w->ndirty; i++) {
                tw_conn *c = &w->conns[w->dirty[i]];

                c->flags &= ~TW_CF_DIRTY;
                flush_one(w, c);
        }
        w->ndirty = 0;
}

static uint64_t thread_cpu_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* This thread's demand for CPU: the time it ran plus the time it was runnable but waited
 * for a core (/proc/thread-self/schedstat), so a worker sharing cores with others counts
 * as loaded when it would be busy given the core. Falls back to its CPU clock. */
static uint64_t thread_demand_ns(tw_worker *w)
{
        char buf[96];
        uint64_t demand;
        ssize_t n;

        if (w->schedstat_fd >= 0) {
                if ((n = pread(w->schedstat_fd, buf, sizeof(buf), 0)) > 0 &&
                    tw_coalesce_demand_parse(buf, (size_t)n, &demand))
                        return demand;
                close(w->schedstat_fd); /* for good: the gate must not mix the two clocks */
                w->schedstat_fd = -1;
        }
        return thread_cpu_ns();
}

/* The turn's flush, unless the worker is loaded and its output is held for coalescing
 * (coalesce.h). A held flush is timed: the sends are submitted and run at once. */
static void maybe_flush(tw_worker *w)
{
        uint64_t t0;

        if (!w->coalesce.cap_us) {
                flush_dirty(w); /* sent with the next submit, as every turn */
                return;
        }
        t0 = tw_now_us();
        if (tw_coalesce_sample_due(&w->coalesce, t0))
                tw_coalesce_sample(&w->coalesce, t0, thread_demand_ns(w));
        if (!w->coalesce.loaded || w->draining) {
                flush_dirty(w);
                return;
        }
        if (!w->ndirty || tw_coalesce_wait_us(&w->coalesce, t0))
                return;
        flush_dirty(w);
        io_uring_submit(&w->ring);
        w->nmsg = 0; /* submitted: the kernel has consumed the vectors */
        w->niov = 0;
        tw_coalesce_flushed(&w->coalesce, t0, tw_now_us() - t0);
}

/* ---- completions ---- */

/* Counts c against its address's limit (single accepts only: they carry the address).
 * False when the address is over it. */
static bool admit_peer(tw_worker *w, tw_conn *c, unsigned li, unsigned k)
{
        int32_t idx;

        if (!w->sh->iplimit)
                return true;
        idx = tw_iplimit_acquire(w->sh->iplimit,
                                 (const struct sockaddr *)&w->peer[li * TW_ACCEPT_ADDR + k].addr);
        if (idx == -EBUSY) {
                log_once(w, TW_LOGGED_PER_IP,
                         "connections per address limit reached: answering 503");
                return false;
        }
        c->ip = idx; /* < 0 when not countable (out of memory): let it in uncounted */
        return true;
}

static void on_accept(tw_worker *w, unsigned tag, int res, uint32_t cflags)
{
        const tw_config *cfg = &w->sh->cfg;
        unsigned li = tag & 0xff, k = tag >> 8;
        tw_conn *c;
        uint32_t total;

        if (!(cflags & IORING_CQE_F_MORE))
                w->armed[li] &= ~(1u << k);
        if (res < 0) {
                if (res == -ENFILE || res == -EMFILE) {
                        log_once(w, TW_LOGGED_TABLE, "fixed-file table full: refusing connections");
                        TW_INC(w->metrics.limit_hits);
                        TW_INC(w->metrics.handshake_failures[TW_HS_LIMIT]);
                        w->accept_retry_ms = w->now_ms + 100;
                }
                return;
        }
        c = slot_alloc(w);
        if (!c) {
                /* Cannot happen while the table and slots are the same size; close. */
                struct io_uring_sqe *sqe = tw_ring_sqe(&w->ring);

                io_uring_prep_close_direct(sqe, (unsigned)res);
                io_uring_sqe_set_data64(sqe, tw_ud(TW_K_IGNORE, 0, 0));
                return;
        }
        tw_timer_init(&c->timer);
        c->fd = res;
        c->ip = -1;
        c->state = TW_CONN_HTTP;
        c->flags = 0;
        c->inflight = 0;
        c->last_seen = (uint32_t)w->now_ms;
        TW_INC(w->metrics.accepted);
        TW_INC(w->metrics.connections);

        total = atomic_fetch_add_explicit(&w->sh->connections, 1, memory_order_relaxed) + 1;
        w->admitted++;
        if (w->admitted > w->admit_max || (cfg->max_connections && total > cfg->max_connections) ||
            !admit_peer(w, c, li, k)) {
                w->admitted--;
                atomic_fetch_sub_explicit(&w->sh->connections, 1, memory_order_relaxed);
                c->flags |= TW_CF_REJECT;
                w->rejected++;
                TW_INC(w->metrics.limit_hits);
                log_once(w, TW_LOGGED_LIMIT, "connection limit reached: answering 503");
                if (w->rejected > TW_SLOT_RESERVE) {
                        /* Past the reserve too: no answer, just the close. */
                        TW_INC(w->metrics.handshake_failures[TW_HS_LIMIT]);
                        tw_worker_terminate(w, c, 0);
                        return;
                }
        }
        /* One deadline covers the TLS handshake and the HTTP upgrade. Arming can fail
         * (no memory for the timer) and end the connection: nothing more to start then. */
        tw_worker_arm(w, c, w->now_ms + cfg->handshake_timeout_ms);
        if (c->state != TW_CONN_HTTP)
                return;
        w->ops->accepted(w, c, li);
        if (c->state != TW_CONN_DEAD)
                arm_recv(w, c);
}

static tw_conn *conn_of(tw_worker *w, uint64_t ud)
{
        uint32_t slot = tw_ud_slot(ud);
        tw_conn *c;

        if (slot >= w->hiwater)
                return NULL;
        c = &w->conns[slot];
        if (c->gen != tw_ud_gen(ud) || c->state == TW_CONN_FREE)
                return NULL;
        return c;
}

static void on_recv(tw_worker *w, struct io_uring_cqe *cqe)
{
        tw_conn *c = conn_of(w, cqe->user_data);
        int res = cqe->res;
        bool more = cqe->flags & IORING_CQE_F_MORE;
        uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        bool has_buf = cqe->flags & IORING_CQE_F_BUFFER;

        if (c && !more) {
                c->flags &= ~TW_CF_RECV;
                c->inflight--;
        }
        if (!c || c->state == TW_CONN_DEAD) {
                if (has_buf)
                        tw_bufring_recycle(&w->bufs, bid);
                if (c)
                        maybe_release(w, c);
                return;
        }
        if (res > 0) {
                TW_ADD(w->metrics.bytes_received, (uint64_t)res);
                w->ops->data(w, c, tw_bufring_buf(&w->bufs, bid), (size_t)res);
        }
        if (has_buf)
                tw_bufring_recycle(&w->bufs, bid);
        if (res == 0) {
                c->flags |= TW_CF_EOF;
                w->ops->eof(w, c);
        } else if (res < 0 && res != -ENOBUFS) {
                /* RST, timeout (TCP_USER_TIMEOUT), ...: the peer is gone. */
                tw_worker_terminate(w, c, TW_WS_CLOSE_ABNORMAL);
        } else if (res == -ENOBUFS) {
                TW_INC(w->metrics.enobufs);
        }
        if (c->state != TW_CONN_DEAD && !(c->flags & (TW_CF_RECV | TW_CF_EOF)))
                arm_recv(w, c);
        maybe_release(w, c);
}

static void on_send(tw_worker *w, struct io_uring_cqe *cqe)
{
        tw_conn *c = conn_of(w, cqe->user_data);
        size_t sent = cqe->res > 0 ? (size_t)cqe->res : 0;
        uint64_t left;

        if (!c)
                return;
        c->flags &= ~TW_CF_SEND;
        c->inflight--;
        left = tw_outq_complete(&c->out, sent, &w->release);
        if (c->state != TW_CONN_DEAD) {
                if (cqe->res < 0) {
                        tw_worker_terminate(w, c, TW_WS_CLOSE_ABNORMAL);
                } else {
                        TW_ADD(w->metrics.bytes_sent, (uint64_t)sent);
                        if (left)
                                tw_worker_mark_dirty(w, c); /* at once if it must be */
                        w->ops->sent(w, c, sent, left);
                }
        }
        maybe_release(w, c);
}

static void on_shutdown(tw_worker *w, struct io_uring_cqe *cqe)
{
        tw_conn *c = conn_of(w, cqe->user_data);

        if (!c)
                return;
        c->inflight--;
        c->flags &= ~TW_CF_SHUT_PENDING;
        if (c->state == TW_CONN_DEAD)
                close_fd(w, c); /* terminated meanwhile: the close waited for us */
        else if (cqe->res < 0)  /* already reset: nothing left to wait for */
                tw_worker_terminate(w, c, c->close_code);
        maybe_release(w, c);
}

static void on_peer(tw_worker *w, struct io_uring_cqe *cqe)
{
        tw_conn *c = conn_of(w, cqe->user_data);

        if (!c) {
                if (cqe->res >= 0)
                        close(cqe->res);
                return;
        }
        c->inflight--;
        log_detect(w, c, cqe->res);
        if (cqe->res >= 0)
                close(cqe->res);
        maybe_release(w, c);
}

static void on_close(tw_worker *w, struct io_uring_cqe *cqe)
{
        tw_conn *c = conn_of(w, cqe->user_data);

        if (!c)
                return;
        c->inflight--;
        maybe_release(w, c);
}

/* Hands every post in w's mailbox to ops->mailbox. Cheap when empty: called once per
 * loop turn as well as on a wake-up. */
static void mailbox_read(tw_worker *w)
{
        struct tw_mailbox *mb = w->mbox;
        struct tw_post *v;
        uint32_t n, vcap;

        if (!atomic_load_explicit(&mb->woken, memory_order_relaxed))
                return;
        /* Cleared before taking the posts: a post made after this point sets it again
         * and, if it came from another worker, sends a fresh wake. */
        atomic_store_explicit(&mb->woken, 0, memory_order_seq_cst);
        pthread_mutex_lock(&mb->mu);
        v = mb->v;
        n = mb->n;
        vcap = mb->cap;
        mb->v = mb->spare; /* the spare is the reader's alone: posts never touch it */
        mb->cap = mb->spare_cap;
        mb->n = 0;
        pthread_mutex_unlock(&mb->mu);
        mb->spare = NULL;
        mb->spare_cap = 0;
        for (uint32_t i = 0; i < n; i++)
                w->ops->mailbox(w, v[i].key, v[i].f);
        mb->spare = v;
        mb->spare_cap = vcap;
}

static void dispatch(tw_worker *w, struct io_uring_cqe *cqe)
{
        switch (tw_ud_kind(cqe->user_data)) {
        case TW_K_ACCEPT:
                on_accept(w, tw_ud_slot(cqe->user_data), cqe->res, cqe->flags);
                break;
        case TW_K_RECV:
                on_recv(w, cqe);
                break;
        case TW_K_SEND:
                on_send(w, cqe);
                break;
        case TW_K_CLOSE:
                on_close(w, cqe);
                break;
        case TW_K_SHUTDOWN:
                on_shutdown(w, cqe);
                break;
        case TW_K_PEER:
                on_peer(w, cqe);
                break;
        case TW_K_WAKE:
                mailbox_read(w);
                break;
        case TW_K_IO: {
                struct tw_io *io = &w->io[tw_ud_slot(cqe->user_data)];

                io->fn(w, io->arg, tw_ud_gen(cqe->user_data), cqe->res);
                break;
        }
        default:
                break;
        }
}

/* ---- drain ---- */

static void start_drain(tw_worker *w)
{
        const tw_config *cfg = &w->sh->cfg;

        w->draining = true;
        w->drain_deadline_ms = w->now_ms + cfg->drain_timeout_ms;
        for (unsigned i = 0; i < cfg->nlisten; i++) {
                struct io_uring_sqe *sqe = tw_ring_sqe(&w->ring);

                tw_prep_cancel_fd(sqe, w->listen_fd[i]);
                io_uring_sqe_set_data64(sqe, tw_ud(TW_K_IGNORE, 0, 0));
        }
        io_uring_submit(&w->ring);
        for (unsigned i = 0; i < cfg->nlisten; i++) {
                close(w->listen_fd[i]);
                w->listen_fd[i] = -1;
        }
        for (uint32_t s = 0; s < w->hiwater; s++) {
                tw_conn *c = &w->conns[s];

                if (c->state != TW_CONN_FREE && c->state != TW_CONN_DEAD)
                        w->ops->drain(w, c);
        }
}

uint64_t tw_worker_random(tw_worker *w, uint64_t bound)
{
        uint64_t x = w->rng;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w->rng = x;
        return bound ? x % bound : 0;
}

/* ---- --demo ---- */

static int64_t wall_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Worker 0 publishes the synthetic feed due by now, like any publisher would. */
static void demo_turn(tw_worker *w)
{
        tw_demo_msg m[16];
        size_t n = tw_demo_due(w->demo, w->now_ms, wall_ms(), m, 16);

        for (size_t i = 0; i < n; i++)
                if (m[i].len)
                        w->ops->publish(w, m[i].topic, m[i].data, m[i].len);
}

static int demo_start(tw_worker *w)
{
        tw_demo_msg index;

        w->demo = tw_demo_new(w->rng, w->now_ms);
        if (!w->demo)
                return -ENOMEM;
        tw_demo_index(w->demo, &index);
        if (index.len)
                w->ops->publish(w, index.topic, index.data, index.len);
        return 0;
}

/* ---- the loop ---- */

int tw_loop_setup(tw_worker *w)
{
        const tw_config *cfg = &w->sh->cfg;
        struct rlimit rl;
        uint32_t files = 20000; /* this project's machines: RLIMIT_NOFILE = 20,000 */
        int ret;

        /* The kernel caps a fixed-file table at RLIMIT_NOFILE: take what the host allows
         * (slot memory is only touched as connections arrive). */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
                files = rl.rlim_cur < (1u << 20) ? (uint32_t)rl.rlim_cur : (1u << 20);
        ret = tw_ring_init(&w->ring, TW_RING_ENTRIES, files);
        if (ret < 0) {
                fprintf(stderr, "tickwire: worker %u: io_uring setup: %s\n", w->id, strerror(-ret));
                return ret;
        }
        if (!(w->ring.features & IORING_FEAT_SUBMIT_STABLE)) {
                fprintf(stderr, "tickwire: kernel too old (no IORING_FEAT_SUBMIT_STABLE)\n");
                return -ENOSYS;
        }
        w->msg = calloc(TW_MSG_ARENA, sizeof(*w->msg));
        w->iov = calloc(TW_IOV_ARENA, sizeof(*w->iov));
        if (w->sh->iplimit)
                w->peer = calloc(TW_MAX_LISTEN * TW_ACCEPT_ADDR, sizeof(*w->peer));
        if (!w->msg || !w->iov || (w->sh->iplimit && !w->peer))
                return -ENOMEM;
        atomic_store_explicit(&w->ring_fd, w->ring.ring_fd, memory_order_seq_cst);
        ret = tw_bufring_init(&w->ring, &w->bufs, 0, TW_RECV_BUFS, TW_RECV_BUF_SZ);
        if (ret < 0) {
                fprintf(stderr, "tickwire: worker %u: buffer ring: %s\n", w->id, strerror(-ret));
                return ret;
        }
        w->nslots = files;
        w->admit_max = files > TW_SLOT_RESERVE * 2 ? files - TW_SLOT_RESERVE : files / 2;
        /* A large calloc is fresh zeroed pages: untouched slots cost no memory. */
        w->conns = calloc(files, sizeof(tw_conn));
        if (!w->conns)
                return -ENOMEM;
        w->free_head = -1;
        w->epoch_ms = 0;
        w->now_ms = tw_now_ms();
        w->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)w->id << 32) ^ w->now_ms;
        tw_wheel_init(&w->wheel, ticks_of(w, w->now_ms), on_timer, w);
        tw_ws_reader_init(&w->scratch, true, cfg->max_message);
        for (unsigned i = 0; i < cfg->nlisten; i++)
                arm_accept(w, i);
        if (cfg->demo && w->id == 0)
                return demo_start(w);
        return 0;
}

static void wait_timeout(tw_worker *w, struct __kernel_timespec *ts, bool *has)
{
        uint64_t ticks = tw_wheel_next_expiry(&w->wheel);
        uint64_t tick = w->sh->cfg.tick_ms;
        uint64_t wake_ms = UINT64_MAX, delta_us = UINT64_MAX;

        if ((w->draining || w->accept_retry_ms) && ticks > 1)
                ticks = 1;
        if (ticks != UINT64_MAX)
                wake_ms = (w->wheel.now + ticks) * tick;
        if (w->demo && tw_demo_next(w->demo) < wake_ms)
                wake_ms = tw_demo_next(w->demo);
        if (wake_ms != UINT64_MAX)
                delta_us = wake_ms > w->now_ms ? (wake_ms - w->now_ms) * 1000u : 0;
        if (w->ndirty) { /* output held for coalescing: wake for its flush */
                uint64_t hold = tw_coalesce_wait_us(&w->coalesce, tw_now_us());

                if (hold < delta_us)
                        delta_us = hold;
        }
        *has = delta_us != UINT64_MAX;
        if (!*has)
                return;
        ts->tv_sec = (long long)(delta_us / 1000000u);
        ts->tv_nsec = (long long)(delta_us % 1000000u) * 1000;
}

/* One loop turn per iteration; the steps are listed at the top of this file. */
void tw_loop_run(tw_worker *w)
{
        const tw_config *cfg = &w->sh->cfg;

        /* On the worker's own thread: the demand read is this thread's (thread-self is
         * resolved at the open). */
        w->schedstat_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
        tw_coalesce_init(&w->coalesce, cfg->coalesce_ms * 1000u, tw_now_us(), thread_demand_ns(w));
        if (w->ops->started)
                w->ops->started(w);

        for (;;) {
                struct __kernel_timespec ts;
                struct io_uring_cqe *cqe;
                unsigned head, seen = 0;
                bool has_ts;
                int ret;

                /* Checked before sleeping too: a drain may begin before this worker's ring
                 * fd was published for the wake-up. */
                if (!w->draining && atomic_load_explicit(&w->sh->draining, memory_order_seq_cst))
                        start_drain(w);
                wait_timeout(w, &ts, &has_ts);
                ret =
                    io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, has_ts ? &ts : NULL, NULL);
                if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
                        fprintf(stderr, "tickwire: worker %u: io_uring_enter: %s\n", w->id,
                                strerror(-ret));
                }
                if (IO_URING_READ_ONCE(*w->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW)
                        TW_INC(w->metrics.cq_overflows);
                w->nmsg = 0; /* submitted: the kernel has consumed the vectors */
                w->niov = 0;
                w->now_ms = tw_now_ms();
                io_uring_for_each_cqe(&w->ring, head, cqe)
                {
                        dispatch(w, cqe);
                        seen++;
                }
                io_uring_cq_advance(&w->ring, seen);

                tw_wheel_advance(&w->wheel, w->now_ms / cfg->tick_ms);
                if (w->demo && !w->draining)
                        demo_turn(w);
                mailbox_read(w); /* own posts; others' if their wake is still due */
                maybe_flush(w);
                tw_frame_batch_flush(&w->release);
                tw_bufring_publish(&w->bufs);

                if (!w->draining && w->accept_retry_ms && w->now_ms >= w->accept_retry_ms)
                        w->accept_retry_ms = 0;
                for (unsigned i = 0; !w->draining && !w->accept_retry_ms && i < cfg->nlisten; i++)
                        if (!all_armed(w, i))
                                arm_accept(w, i);
                if (w->draining) {
                        if (w->now_ms >= w->drain_deadline_ms) {
                                for (uint32_t s = 0; s < w->hiwater; s++)
                                        tw_worker_terminate(w, &w->conns[s],
                                                            w->conns[s].close_code);
                        }
                        if (w->live == 0)
                                break;
                }
        }
        tw_frame_batch_flush(&w->release);
        io_uring_submit(&w->ring);
        if (w->schedstat_fd >= 0)
                close(w->schedstat_fd);
        w->schedstat_fd = -1;
}

/* ---- the worker's life ---- */

tw_worker *tw_loop_new(tw_shared *sh, unsigned id)
{
        tw_worker *w = calloc(1, sizeof(*w));

        if (!w)
                return NULL;
        w->mbox = aligned_alloc(64, sizeof(*w->mbox));
        if (!w->mbox) {
                free(w);
                return NULL;
        }
        memset(w->mbox, 0, sizeof(*w->mbox));
        pthread_mutex_init(&w->mbox->mu, NULL);
        w->sh = sh;
        w->ops = sh->ops;
        w->id = id;
        for (unsigned i = 0; i < TW_MAX_LISTEN; i++)
                w->listen_fd[i] = -1;
        return w;
}

void tw_loop_set_listener(tw_worker *w, unsigned i, int fd)
{
        w->listen_fd[i] = fd;
}

int tw_loop_ring_fd(tw_worker *w)
{
        return atomic_load_explicit(&w->ring_fd, memory_order_seq_cst);
}

void tw_loop_prep_wake(struct io_uring_sqe *sqe, tw_worker *w)
{
        io_uring_prep_msg_ring(sqe, tw_loop_ring_fd(w), 0, tw_ud(TW_K_WAKE, 0, 0), 0);
        io_uring_sqe_set_data64(sqe, 0);
}

void tw_loop_free(tw_worker *w)
{
        if (!w)
                return;
        for (unsigned i = 0; i < TW_MAX_LISTEN; i++)
                if (w->listen_fd[i] >= 0)
                        close(w->listen_fd[i]);
        if (w->ring.ring_fd > 0) {
                tw_bufring_free(&w->ring, &w->bufs);
                io_uring_queue_exit(&w->ring);
        }
        tw_wheel_free(&w->wheel);
        free(w->conns);
        free(w->dirty);
        free(w->iov);
        free(w->msg);
        free(w->peer);
        tw_demo_free(w->demo);
        for (uint32_t k = 0; k < w->mbox->n; k++) /* posts nobody read */
                tw_frame_unref(w->mbox->v[k].f);
        free(w->mbox->v);
        free(w->mbox->spare);
        pthread_mutex_destroy(&w->mbox->mu);
        free(w->mbox);
        free(w);
}

/* ---- accessors ---- */

uint64_t tw_worker_time_of(const tw_worker *w, uint32_t t32)
{
        return w->now_ms - (uint32_t)((uint32_t)w->now_ms - t32);
}

uint64_t tw_worker_now(const tw_worker *w)
{
        return w->now_ms;
}

const tw_config *tw_worker_cfg(const tw_worker *w)
{
        return &w->sh->cfg;
}

tw_metrics *tw_worker_metrics(tw_worker *w)
{
        return &w->metrics;
}

unsigned tw_worker_id(const tw_worker *w)
{
        return w->id;
}

unsigned tw_worker_count(const tw_worker *w)
{
        return w->sh->nworkers;
}

void tw_worker_metrics_all(tw_worker *w, tw_metrics **all)
{
        for (unsigned i = 0; i < w->sh->nworkers; i++)
                all[i] = &w->sh->workers[i]->metrics;
}

bool tw_worker_server_draining(const tw_worker *w)
{
        return atomic_load_explicit(&w->sh->draining, memory_order_relaxed);
}

tw_ws_reader *tw_worker_scratch(tw_worker *w)
{
        return &w->scratch;
}

struct tw_topics *tw_worker_topics(tw_worker *w)
{
        return w->sh->topics;
}

struct WOLFSSL_CTX *tw_worker_tls_ctx(tw_worker *w)
{
        return w->sh->tls;
}

void tw_worker_nomem(tw_worker *w, tw_conn *c, const char *what, uint16_t code)
{
        if (!(w->logged & TW_LOGGED_NOMEM)) {
                char msg[96];

                snprintf(msg, sizeof(msg), "out of memory for %s", what);
                log_once(w, TW_LOGGED_NOMEM, msg);
        }
        TW_INC(w->metrics.limit_hits);
        tw_worker_terminate(w, c, code);
}

/* ---- handles and the mailbox ---- */

uint32_t tw_worker_slot(const tw_worker *w, const tw_conn *c)
{
        return slot_of(w, c);
}

tw_conn *tw_worker_conn(tw_worker *w, uint32_t slot, uint32_t gen)
{
        tw_conn *c;

        if (slot >= w->hiwater)
                return NULL;
        c = &w->conns[slot];
        if (c->gen != gen || c->state == TW_CONN_FREE)
                return NULL;
        return c;
}

tw_ext *tw_ext_get(tw_conn *c)
{
        if (!c->ext)
                c->ext = calloc(1, sizeof(*c->ext));
        return c->ext;
}

int tw_worker_send(tw_worker *w, tw_conn *c, tw_frame *f)
{
        return w->ops->send(w, c, f);
}

void tw_worker_send_text(tw_worker *w, tw_conn *c, const void *p, size_t n)
{
        tw_frame *f = tw_frame_ws(TW_WS_OP_TEXT, p, n);

        if (!f) {
                tw_worker_terminate(w, c, TW_WS_CLOSE_INTERNAL);
                return;
        }
        TW_INC(w->metrics.messages_sent);
        w->ops->send(w, c, f);
}

int tw_worker_deliver(tw_worker *w, uint32_t slot, uint32_t gen, tw_frame *f)
{
        tw_conn *c = tw_worker_conn(w, slot, gen);

        return c ? w->ops->deliver(w, c, f) : -1;
}

void tw_worker_answer(tw_worker *w, tw_conn *c, int status, tw_span origin, const char *body,
                      size_t len)
{
        if (w->ops->answer)
                w->ops->answer(w, c, status, origin, body, len);
}

int tw_worker_post(tw_worker *w, unsigned k, uint64_t key, tw_frame *f)
{
        struct tw_mailbox *mb = w->sh->workers[k]->mbox;
        int fd;

        pthread_mutex_lock(&mb->mu);
        if (mb->n == mb->cap) {
                uint32_t cap = mb->cap ? mb->cap * 2 : 64;
                struct tw_post *v = realloc(mb->v, cap * sizeof(*v));

                if (!v) {
                        pthread_mutex_unlock(&mb->mu);
                        return -ENOMEM;
                }
                mb->v = v;
                mb->cap = cap;
        }
        mb->v[mb->n++] = (struct tw_post){key, tw_frame_ref(f)};
        pthread_mutex_unlock(&mb->mu);

        /* The first post since the target last read wakes it; later ones ride on that
         * wake. Our own mailbox needs no wake: it is read at the end of this turn. */
        if (atomic_exchange_explicit(&mb->woken, 1, memory_order_seq_cst) || k == w->id)
                return 0;
        fd = atomic_load_explicit(&w->sh->workers[k]->ring_fd, memory_order_acquire);
        if (fd > 0) {
                struct io_uring_sqe *sqe = tw_ring_sqe(&w->ring);

                io_uring_prep_msg_ring(sqe, fd, 0, tw_ud(TW_K_WAKE, 0, 0), 0);
                io_uring_sqe_set_data64(sqe, tw_ud(TW_K_IGNORE, 0, 0));
        }
        return 0;
}

/* ---- modules' own descriptors ---- */

int tw_worker_io_open(tw_worker *w, tw_io_fn fn, void *arg)
{
        if (w->nio == TW_IO_MAX)
                return -ENOSPC;
        w->io[w->nio] = (struct tw_io){.fn = fn, .arg = arg};
        return (int)w->nio++;
}

static void io_tag(struct io_uring_sqe *sqe, int id, uint32_t tag)
{
        io_uring_sqe_set_data64(sqe, tw_ud(TW_K_IO, (uint32_t)id, tag));
}

void tw_worker_io_recv(tw_worker *w, int id, uint32_t tag, int fd, void *buf, size_t len)
{
        struct io_uring_sqe *sqe = tw_ring_sqe(&w->ring);

        io_uring_prep_recv(sqe, fd, buf, len, 0);
        io_tag(sqe, id, tag);
}

void tw_worker_io_send(tw_worker *w, int id, uint32_t tag, int fd, const void *buf, size_t len)
{
        struct io_uring_sqe *sqe = tw_ring_sqe(&w->ring);

        io_uring_prep_send(sqe, fd, buf, len, MSG_NOSIGNAL);
        io_tag(sqe, id, tag);
}

void tw_worker_io_connect(tw_worker *w, int id, uint32_t tag, int fd, const struct sockaddr *sa,
                          unsigned len)
{
        struct io_uring_sqe *sqe = tw_ring_sqe(&w->ring);

        io_uring_prep_connect(sqe, fd, sa, len);
        io_tag(sqe, id, tag);
}

void tw_worker_io_timeout(tw_worker *w, int id, uint32_t tag, uint64_t ms)
{
        struct io_uring_sqe *sqe = tw_ring_sqe(&w->ring);
        struct tw_io *io = &w->io[id];

        io->ts.tv_sec = (long long)(ms / 1000);
        io->ts.tv_nsec = (long long)(ms % 1000) * 1000000;
        io_uring_prep_timeout(sqe, &io->ts, 0, 0);
        io_tag(sqe, id, tag);
}

void tw_worker_io_cancel_fd(tw_worker *w, int fd)
{
        struct io_uring_sqe *sqe = tw_ring_sqe(&w->ring);

        io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(sqe, tw_ud(TW_K_IGNORE, 0, 0));
}
