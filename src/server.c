/*
 * The workers. Each runs one loop over its own io_uring ring:
 *
 *   submit pending SQEs and wait (one io_uring_enter) with a timeout from the wheel
 *   → dispatch every completion on its (kind, slot, generation) tag
 *   → advance the timing wheel to now (handshake, heartbeat, close deadlines)
 *   → flush: one sendmsg per connection with queued output, not already sending
 *   → give consumed receive buffers back to the kernel
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
#include "tickwire/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tickwire/demo.h"
#include "tickwire/iplimit.h"
#include "tickwire/tls.h"
#include "tickwire/topic.h"

#define TW_RING_ENTRIES 1024
#define TW_RECV_BUFS    256  /* per worker: the kernel touches them all in turn, */
#define TW_RECV_BUF_SZ  2048 /* so this is a fixed 512 KiB, not a per-connection cost */
#define TW_IOV_MAX      1024 /* frames coalesced into one sendmsg (UIO_MAXIOV) */
#define TW_IOV_ARENA    4096 /* iovecs prepared per submit: 64 KiB per worker */
#define TW_MSG_ARENA    256  /* sendmsgs prepared per submit */
#define TW_SLOT_RESERVE 64   /* slots past the limit, to answer 503 instead of dropping */

enum { TW_LOGGED_TABLE = 1, TW_LOGGED_LIMIT = 2, TW_LOGGED_NOMEM = 4, TW_LOGGED_PER_IP = 8 };

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
        uint64_t tick = w->srv->cfg.tick_ms;

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
static void heartbeat_expired(tw_worker *w, tw_conn *c, uint64_t age_ms)
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

static void heartbeat(tw_worker *w, tw_conn *c)
{
        const tw_config *cfg = &w->srv->cfg;
        uint64_t seen = tw_worker_time_of(w, c->last_seen);
        uint64_t age = w->now_ms - seen, next, token;

        if (age >= cfg->idle_timeout_ms) {
                heartbeat_expired(w, c, age);
                return;
        }
        if (age >= cfg->ping_interval_ms && !(c->flags & TW_CF_PING)) {
                tw_frame *ping = tw_frame_ws(TW_WS_OP_PING, NULL, 0);

                c->flags |= TW_CF_PING;
                TW_INC(w->metrics.pings_sent);
                if (ping && tw_conn_send(w, c, ping) < 0)
                        return;
        }
        /* Lazy re-arm: inbound frames only stored last_seen; the next deadline follows
         * from it — or the session's token, if it expires sooner. With a Ping out, the
         * Pong only stores last_seen too, so look again one interval from now: the next
         * Ping is due one interval after that Pong (DESIGN 3), not at the idle deadline. */
        next = seen + cfg->ping_interval_ms;
        if (c->flags & TW_CF_PING) {
                next = w->now_ms + cfg->ping_interval_ms;
                if (seen + cfg->idle_timeout_ms < next)
                        next = seen + cfg->idle_timeout_ms;
        }
        token = tw_conn_token_due(w, c);
        if (c->state != TW_CONN_OPEN)
                return;
        tw_worker_arm(w, c, token && token < next ? token : next);
}

static void on_timer(tw_wheel *wh, tw_timer *t, void *ctx)
{
        tw_worker *w = ctx;
        tw_conn *c = tw_container_of(t, tw_conn, timer);

        switch (c->state) {
        case TW_CONN_HTTP:
                if (c->flags & TW_CF_SESSION)
                        break;
                if (!(c->flags & TW_CF_SERVED))
                        TW_INC(w->metrics.handshake_failures[TW_HS_TIMEOUT]);
                tw_worker_terminate(w, c, 0);
                break;
        case TW_CONN_OPEN:
                heartbeat(w, c);
                break;
        case TW_CONN_CLOSING:
        case TW_CONN_LINGER:
                tw_worker_terminate(w, c, c->close_code);
                break;
        default:
                break;
        }
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

        tw_conn_release_buffers(c);
        tw_tls_conn_free(c); /* only here: terminate may run inside a wolfSSL callback */
        tw_conn_free_ext(c);
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
        unsigned n = w->srv->iplimit ? TW_ACCEPT_ADDR : 1;

        for (unsigned k = 0; k < n; k++) {
                struct io_uring_sqe *sqe;

                if (w->armed[i] & (1u << k))
                        continue;
                sqe = tw_ring_sqe(&w->ring);
                if (w->srv->iplimit) {
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
        return w->armed[i] == (w->srv->iplimit ? (1u << TW_ACCEPT_ADDR) - 1 : 1u);
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
                atomic_fetch_sub_explicit(&w->srv->connections, 1, memory_order_relaxed);
        } else {
                w->rejected--;
        }
        if (c->ip >= 0) {
                tw_iplimit_release(w->srv->iplimit, c->ip);
                c->ip = -1;
        }
        tw_topic_conn_gone(w, c);
        tw_conn_release_buffers(c);
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
        return w->draining ? w->drain_deadline_ms : w->now_ms + w->srv->cfg.close_timeout_ms;
}

void tw_worker_mark_dirty(tw_worker *w, tw_conn *c)
{
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

/* ---- completions ---- */

/* Counts c against its address's limit (single accepts only: they carry the address).
 * False when the address is over it. */
static bool admit_peer(tw_worker *w, tw_conn *c, unsigned li, unsigned k)
{
        int32_t idx;

        if (!w->srv->iplimit)
                return true;
        idx = tw_iplimit_acquire(w->srv->iplimit,
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
        const tw_config *cfg = &w->srv->cfg;
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

        total = atomic_fetch_add_explicit(&w->srv->connections, 1, memory_order_relaxed) + 1;
        w->admitted++;
        if (w->admitted > w->admit_max || (cfg->max_connections && total > cfg->max_connections) ||
            !admit_peer(w, c, li, k)) {
                w->admitted--;
                atomic_fetch_sub_explicit(&w->srv->connections, 1, memory_order_relaxed);
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
        if (cfg->listen[li].tls && tw_tls_conn_start(w, c) < 0) {
                log_once(w, TW_LOGGED_NOMEM, "out of memory for a TLS session");
                TW_INC(w->metrics.limit_hits);
                tw_worker_terminate(w, c, 0);
                return;
        }
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
                if (c->flags & TW_CF_TLS)
                        tw_tls_conn_on_data(w, c, tw_bufring_buf(&w->bufs, bid), (size_t)res);
                else
                        tw_conn_on_data(w, c, tw_bufring_buf(&w->bufs, bid), (size_t)res);
        }
        if (has_buf)
                tw_bufring_recycle(&w->bufs, bid);
        if (res == 0) {
                c->flags |= TW_CF_EOF;
                tw_conn_on_eof(w, c);
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
                                tw_worker_mark_dirty(w, c);
                        tw_conn_on_sent(w, c, sent, left);
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
                tw_topic_drain_inbox(w);
                break;
        default:
                break;
        }
}

/* ---- drain ---- */

static void start_drain(tw_worker *w)
{
        const tw_config *cfg = &w->srv->cfg;
        char reason[48];

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

                if (c->state == TW_CONN_OPEN) {
                        uint64_t r = tw_worker_random(w, cfg->reconnect_spread_ms);
                        int n = snprintf(reason, sizeof(reason), "{\"retry_ms\":%llu}",
                                         (unsigned long long)r);

                        tw_conn_close(w, c, TW_WS_CLOSE_GOING_AWAY, reason, (size_t)n);
                } else if (c->state == TW_CONN_HTTP) {
                        /* Keep-alive clients (health checkers) may ask again and see
                         * 503; they are closed at the drain deadline at the latest. */
                        tw_worker_arm(w, c, w->drain_deadline_ms);
                }
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

void tw_worker_opened(tw_worker *w, tw_conn *c)
{
        c->state = TW_CONN_OPEN;
        c->flags |= TW_CF_SESSION;
        c->last_seen = (uint32_t)w->now_ms;
        tw_worker_arm(w, c, w->now_ms + w->srv->cfg.ping_interval_ms);
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
        bool dup;

        for (size_t i = 0; i < n; i++)
                if (m[i].len)
                        tw_topic_publish(w, (tw_span){m[i].topic, strlen(m[i].topic)},
                                         (tw_span){m[i].data, m[i].len}, (tw_span){"", 0}, &dup);
}

static int demo_start(tw_worker *w)
{
        tw_demo_msg index;
        bool dup;

        w->demo = tw_demo_new(w->rng, w->now_ms);
        if (!w->demo)
                return -ENOMEM;
        tw_demo_index(w->demo, &index);
        if (index.len)
                tw_topic_publish(w, (tw_span){index.topic, strlen(index.topic)},
                                 (tw_span){index.data, index.len}, (tw_span){"", 0}, &dup);
        return 0;
}

/* ---- the loop ---- */

static int worker_setup(tw_worker *w)
{
        const tw_config *cfg = &w->srv->cfg;
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
        if (w->srv->iplimit)
                w->peer = calloc(TW_MAX_LISTEN * TW_ACCEPT_ADDR, sizeof(*w->peer));
        if (!w->msg || !w->iov || (w->srv->iplimit && !w->peer))
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
        uint64_t tick = w->srv->cfg.tick_ms;
        uint64_t wake_ms = UINT64_MAX, delta;

        if ((w->draining || w->accept_retry_ms) && ticks > 1)
                ticks = 1;
        if (ticks != UINT64_MAX)
                wake_ms = (w->wheel.now + ticks) * tick;
        if (w->demo && tw_demo_next(w->demo) < wake_ms)
                wake_ms = tw_demo_next(w->demo);
        *has = wake_ms != UINT64_MAX;
        if (!*has)
                return;
        delta = wake_ms > w->now_ms ? wake_ms - w->now_ms : 0;
        ts->tv_sec = (long long)(delta / 1000);
        ts->tv_nsec = (long long)(delta % 1000) * 1000000;
}

/* A worker's setup result: tw_server_start() waits for every worker's. */
static void report_started(tw_server *srv, int ret)
{
        pthread_mutex_lock(&srv->start_mu);
        srv->started++;
        if (ret < 0 && srv->start_err == 0)
                srv->start_err = ret;
        pthread_cond_broadcast(&srv->start_cv);
        pthread_mutex_unlock(&srv->start_mu);
}

static void *worker_main(void *arg)
{
        tw_worker *w = arg;
        tw_server *srv = w->srv;

        int err = worker_setup(w);

        report_started(srv, err);
        if (err < 0) {
                fprintf(stderr, "tickwire: worker %u failed to start\n", w->id);
                return NULL; /* tw_server_start() sees it and fails */
        }
        for (;;) {
                struct __kernel_timespec ts;
                struct io_uring_cqe *cqe;
                unsigned head, seen = 0;
                bool has_ts;
                int ret;

                /* Checked before sleeping too: a drain may begin before this worker's ring
                 * fd was published for the wake-up. */
                if (!w->draining && atomic_load_explicit(&srv->draining, memory_order_seq_cst))
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

                tw_wheel_advance(&w->wheel, w->now_ms / srv->cfg.tick_ms);
                if (w->demo && !w->draining)
                        demo_turn(w);
                tw_topic_drain_inbox(w); /* own posts; others' if their wake is still due */
                flush_dirty(w);
                tw_frame_batch_flush(&w->release);
                tw_bufring_publish(&w->bufs);

                if (!w->draining && w->accept_retry_ms && w->now_ms >= w->accept_retry_ms)
                        w->accept_retry_ms = 0;
                for (unsigned i = 0; !w->draining && !w->accept_retry_ms && i < srv->cfg.nlisten;
                     i++)
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
        tw_tls_thread_done();
        return NULL;
}

/* ---- start / drain / join ---- */

static int open_listener(const tw_listen *l, uint16_t port, uint64_t user_timeout_ms,
                         uint16_t *bound)
{
        struct sockaddr_storage ss = l->addr;
        int one = 1, fd;
        unsigned uto = (unsigned)user_timeout_ms;

        if (ss.ss_family == AF_INET)
                ((struct sockaddr_in *)&ss)->sin_port = htons(port);
        else
                ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        /* Inherited by accepted sockets: unacknowledged data cannot keep a dead peer
         * alive longer than the heartbeat would. */
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, sizeof(uto));
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (ss.ss_family == AF_INET6)
                setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&ss, l->addrlen) < 0 || listen(fd, 4096) < 0) {
                int err = -errno;
                close(fd);
                return err;
        }
        if (bound) {
                socklen_t len = sizeof(ss);
                getsockname(fd, (struct sockaddr *)&ss, &len);
                *bound = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                       : ((struct sockaddr_in6 *)&ss)->sin6_port);
        }
        return fd;
}

/* Whether another process already serves this address. Our listeners share theirs with
 * SO_REUSEPORT, which would also let a second server join the first's group and split
 * new connections between two servers with separate topics and seqs: a socket bound
 * without SO_REUSEPORT fails where anyone is listening. */
static bool served_elsewhere(const tw_listen *l)
{
        int one = 1, fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool busy;

        if (fd < 0)
                return false;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)); /* TIME_WAIT is fine */
        if (l->addr.ss_family == AF_INET6)
                setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        busy = bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) < 0 && errno == EADDRINUSE;
        close(fd);
        return busy;
}

static int open_listeners(tw_server *srv)
{
        const tw_config *cfg = &srv->cfg;

        for (unsigned i = 0; i < cfg->nlisten; i++) {
                const tw_listen *l = &cfg->listen[i];
                uint16_t want = ntohs(l->addr.ss_family == AF_INET
                                          ? ((const struct sockaddr_in *)&l->addr)->sin_port
                                          : ((const struct sockaddr_in6 *)&l->addr)->sin6_port);
                char addr[80];
                int fd = -EADDRINUSE;

                tw_listen_format(l, addr, sizeof(addr));
                if (want && served_elsewhere(l)) {
                        fprintf(stderr,
                                "tickwire: cannot listen on %s: already in use by another "
                                "process\n",
                                addr);
                        return -EADDRINUSE;
                }
                for (unsigned k = 0; k < srv->nworkers; k++) {
                        fd = open_listener(l, k ? srv->port[i] : want,
                                           cfg->tcp_user_timeout ? cfg->idle_timeout_ms : 0,
                                           k ? NULL : &srv->port[i]);
                        if (fd < 0) {
                                fprintf(stderr, "tickwire: cannot listen on %s: %s\n", addr,
                                        strerror(-fd));
                                return fd;
                        }
                        srv->workers[k].listen_fd[i] = fd;
                }
        }
        return 0;
}

int tw_server_start(tw_server *srv, const tw_config *cfg)
{
        unsigned created = 0;
        int ret;

        memset(srv, 0, sizeof(*srv));
        srv->cfg = *cfg;
        srv->nworkers = cfg->workers ? cfg->workers : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
        if (srv->nworkers == 0)
                srv->nworkers = 1;
        pthread_mutex_init(&srv->start_mu, NULL);
        pthread_cond_init(&srv->start_cv, NULL);
        srv->workers = calloc(srv->nworkers, sizeof(tw_worker));
        if (!srv->workers)
                return -ENOMEM;
        for (unsigned k = 0; k < srv->nworkers; k++) {
                srv->workers[k].srv = srv;
                srv->workers[k].id = k;
                for (unsigned i = 0; i < TW_MAX_LISTEN; i++)
                        srv->workers[k].listen_fd[i] = -1;
        }
        ret = io_uring_queue_init(8, &srv->msg_ring, 0);
        if (ret < 0)
                goto fail;
        ret = tw_topic_init(srv);
        if (ret < 0)
                goto fail;
        if (cfg->max_connections_per_ip &&
            !(srv->iplimit = tw_iplimit_new(cfg->max_connections_per_ip))) {
                ret = -ENOMEM;
                goto fail;
        }
        for (unsigned i = 0; i < cfg->nlisten && !srv->tls; i++) {
                char err[256];

                if (!cfg->listen[i].tls)
                        continue;
                srv->tls = tw_tls_server_ctx(cfg->tls_cert, cfg->tls_key, err, sizeof(err));
                if (!srv->tls) {
                        fprintf(stderr, "tickwire: %s\n", err);
                        ret = -EINVAL;
                        goto fail;
                }
        }
        ret = open_listeners(srv);
        if (ret < 0)
                goto fail;
        for (; created < srv->nworkers; created++) {
                tw_worker *w = &srv->workers[created];

                ret = -pthread_create(&w->thread, NULL, worker_main, w);
                if (ret < 0)
                        break;
                w->running = true;
        }
        /* Every worker reports whether it could set up its ring; one that could not
         * fails the start as a whole, and the others are drained and joined. */
        pthread_mutex_lock(&srv->start_mu);
        while (srv->started < created)
                pthread_cond_wait(&srv->start_cv, &srv->start_mu);
        if (ret == 0)
                ret = srv->start_err;
        pthread_mutex_unlock(&srv->start_mu);
        if (ret == 0)
                return 0;
        tw_server_drain(srv);
fail:
        tw_server_join(srv);
        return ret;
}

void tw_server_drain(tw_server *srv)
{
        atomic_store_explicit(&srv->draining, 1, memory_order_seq_cst);
        for (unsigned k = 0; k < srv->nworkers; k++) {
                int fd = atomic_load_explicit(&srv->workers[k].ring_fd, memory_order_seq_cst);
                struct io_uring_sqe *sqe;

                if (fd <= 0)
                        continue; /* not started yet: it will see the flag */
                sqe = tw_ring_sqe(&srv->msg_ring);
                io_uring_prep_msg_ring(sqe, fd, 0, tw_ud(TW_K_WAKE, 0, 0), 0);
                io_uring_sqe_set_data64(sqe, 0);
        }
        io_uring_submit(&srv->msg_ring);
}

void tw_server_join(tw_server *srv)
{
        for (unsigned k = 0; srv->workers && k < srv->nworkers; k++) {
                tw_worker *w = &srv->workers[k];

                if (w->running)
                        pthread_join(w->thread, NULL);
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
        }
        if (srv->msg_ring.ring_fd > 0)
                io_uring_queue_exit(&srv->msg_ring);
        tw_topic_free(srv);
        tw_tls_ctx_free(srv->tls);
        tw_iplimit_free(srv->iplimit);
        free(srv->workers);
        srv->workers = NULL;
        pthread_cond_destroy(&srv->start_cv);
        pthread_mutex_destroy(&srv->start_mu);
}
