/*
 * The client engine. Each thread runs one loop over its own ring, the same shape as the
 * server's worker:
 *
 *   submit and wait (one io_uring_enter) with a timeout from the wheel, the ramp and the
 *   stop poll
 *   → dispatch every completion on its (kind, slot, generation) tag
 *   → advance the wheel (connect deadlines, app pings, close waits, backoffs)
 *   → start the connections the ramp says are due, apply the scenario event when due
 *   → give consumed receive buffers back
 *
 * A connection's slot in the fixed-file table is its index in the thread's table, for
 * its whole life; a reconnect reuses it with a new generation (tw_table from libtickwire:
 * a completion for an earlier attempt resolves to nothing). Cleanup runs once: a
 * terminated connection cancels what is in flight and closes its slot, and is reused or
 * retired only when its last request has completed.
 *
 * Silent clients stop reading too: their multishot recv is cancelled, so the server's
 * Pings pile up unread in the socket, as they would on a frozen client. An app-silent
 * client still notices the server's FIN or RST through a poll for POLLRDHUP/POLLHUP/
 * POLLERR, which reads nothing. A power-silent client gets a drop-everything BPF filter
 * through a regular fd installed from its slot for the moment (FIXED_FD_INSTALL).
 */
#include "engine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "market.h"
#include "scenario.h"
#include "tickwire/http.h"

#define LG_RING_ENTRIES 2048
#define LG_RECV_BUFS    1024
#define LG_RECV_BUF_SZ  2048
#define LG_HS_MAX       2048 /* a 101 head larger than this is a protocol failure */
/* Attempts in flight per thread. On one box the connect rate is bound by CPU, not by
 * latency, so more in flight only adds queueing: at 1024 the handshake p50 was ~45 ms, past
 * the 40 ms delayed-ACK timer (one more ACK per connection) with 2048 half-made sockets
 * going cold in cache; 128 keeps it at ~4 ms for the same or a better rate. */
#define LG_CONNECTING_MAX 128
#define LG_START_BATCH    256 /* connections started per loop turn at most */
#define LG_POLL_MS        50  /* the loop looks at the stop flag at least this often */
#define LG_MAX_MESSAGE    (16u << 20)
#define LG_PORT_LO        10000 /* client ports: [LG_PORT_LO, LG_PORT_LO + LG_PORTS) */
#define LG_PORTS          55000
#define LG_BIND_TRIES     64 /* pairs tried in a row before EADDRINUSE counts as a failure */

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* Completion kinds (the top byte of user_data). */
enum {
        LG_K_CONNECT = 1,
        LG_K_RECV,
        LG_K_SEND,
        LG_K_POLL,
        LG_K_INSTALL,
        LG_K_CLOSE,
        LG_K_IGNORE,
        /* Steps of the connect chain: they post only when they fail. */
        LG_K_SOCKET,
        LG_K_SOCKOPT,
        LG_K_SOFTOPT,
        LG_K_BIND,
};

/* Option values the connect chain points at: the kernel reads them when the linked
 * setsockopt runs, after the loop turn that queued it, so they cannot live on a stack. */
static const int lg_one = 1;
static const struct linger lg_linger0 = {.l_onoff = 1, .l_linger = 0};

const char *const lg_event_names[LG_EV__COUNT] = {
    "established", "failed", "detection",       "false_disconnect", "reconnect",
    "close_echo",  "silent", "power_detection", "server_dead",
};

struct lg_hs {
        char key[25]; /* Sec-WebSocket-Key we sent */
        uint16_t len; /* response bytes buffered */
        char buf[LG_HS_MAX];
};

struct lg_out {
        uint8_t *fly; /* bytes handed to the kernel; must not move until the send completes */
        uint32_t fly_len, fly_off;
        uint8_t *fill; /* bytes queued behind it */
        uint32_t fill_len, fill_cap;
};

/* ---- small helpers ---- */

static uint64_t rnd(lg_thread *t)
{
        uint64_t x = t->rng;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        t->rng = x;
        return x;
}

static uint32_t slot_of(const lg_thread *t, const lg_conn *c)
{
        return (uint32_t)(c - t->conns);
}

static uint64_t ud_of(const lg_thread *t, const lg_conn *c, uint8_t kind)
{
        return tw_table_ud(&t->slots, kind, slot_of(t, c));
}

/* The connection a completion belongs to; NULL when it was for an earlier attempt. */
static lg_conn *conn_of(lg_thread *t, uint64_t ud)
{
        int64_t slot = tw_table_resolve(&t->slots, ud);

        return slot < 0 ? NULL : &t->conns[slot];
}

static void arm(lg_thread *t, lg_conn *c, uint64_t at_us)
{
        /* Round up to the next 1 ms tick: never early. */
        tw_wheel_add(&t->wheel, &c->timer, (at_us + 999) / 1000);
}

static void event(lg_thread *t, enum lg_event_kind kind, uint32_t id, double value_ms)
{
        if (!t->eng->o->csv_path && kind != LG_EV_DETECTION)
                return;
        if (t->nevents == t->events_cap) {
                size_t cap = t->events_cap ? t->events_cap * 2 : 1024;
                lg_event *e = realloc(t->events, cap * sizeof(*e));

                if (!e)
                        return; /* the CSV loses a row; the figures do not */
                t->events = e;
                t->events_cap = cap;
        }
        t->events[t->nevents++] =
            (lg_event){(float)(t->now_us / 1000.0), (float)value_ms, id, (uint8_t)kind};
}

/* ---- output ---- */

static void out_free(lg_conn *c)
{
        if (!c->out)
                return;
        free(c->out->fly);
        free(c->out->fill);
        free(c->out);
        c->out = NULL;
}

static void send_fly(lg_thread *t, lg_conn *c)
{
        struct lg_out *o = c->out;
        struct io_uring_sqe *sqe = tw_ring_sqe(&t->ring);

        io_uring_prep_send(sqe, (int)slot_of(t, c), o->fly + o->fly_off, o->fly_len - o->fly_off,
                           MSG_NOSIGNAL);
        sqe->flags |= IOSQE_FIXED_FILE;
        io_uring_sqe_set_data64(sqe, ud_of(t, c, LG_K_SEND));
        c->flags |= LG_CF_SEND;
        c->inflight++;
}

/* Room for n more bytes at the end of the fill buffer; NULL when out of memory. */
static uint8_t *out_reserve(lg_conn *c, size_t n)
{
        struct lg_out *o = c->out;

        if (!o) {
                o = c->out = calloc(1, sizeof(*o));
                if (!o)
                        return NULL;
        }
        if (o->fill_len + n > o->fill_cap) {
                uint32_t cap = o->fill_cap ? o->fill_cap : 256;
                uint8_t *b;

                while (cap < o->fill_len + n)
                        cap *= 2;
                b = realloc(o->fill, cap);
                if (!b)
                        return NULL;
                o->fill = b;
                o->fill_cap = cap;
        }
        return o->fill + o->fill_len;
}

/* Bytes as they go on the wire (ciphertext under TLS). */
static int out_append(lg_conn *c, const void *p, size_t n)
{
        uint8_t *dst = out_reserve(c, n);

        if (!dst)
                return -ENOMEM;
        memcpy(dst, p, n);
        c->out->fill_len += (uint32_t)n;
        return 0;
}

void lg_conn_flush(lg_thread *t, lg_conn *c)
{
        struct lg_out *o = c->out;

        if (!o || !o->fill_len || (c->flags & LG_CF_SEND) || c->state == LG_DEAD ||
            c->state == LG_DONE || c->state == LG_IDLE)
                return;
        free(o->fly);
        o->fly = o->fill;
        o->fly_len = o->fill_len;
        o->fly_off = 0;
        o->fill = NULL;
        o->fill_len = o->fill_cap = 0;
        send_fly(t, c);
}

/* wolfSSL's output (records, handshake flights): queued like plain bytes. */
static int tls_out(void *arg, const uint8_t *p, size_t n)
{
        return out_append(arg, p, n);
}

static int tls_write(lg_thread *t, lg_conn *c, const void *p, size_t n)
{
        WOLFSSL *ssl = t->ssl[slot_of(t, c)];
        tw_tls_io io = {.out = tls_out, .arg = c};
        int r;

        if (!ssl || !wolfSSL_is_init_finished(ssl))
                return -ENOTCONN;
        tw_tls_bind(ssl, &io);
        r = wolfSSL_write(ssl, p, (int)n);
        tw_tls_bind(ssl, NULL);
        return r == (int)n ? 0 : -EIO;
}

int lg_conn_queue(lg_thread *t, lg_conn *c, const void *p, size_t n)
{
        if (t->ssl)
                return tls_write(t, c, p, n);
        return out_append(c, p, n);
}

/* A masked client frame, queued. */
static int queue_frame(lg_thread *t, lg_conn *c, uint8_t opcode, const void *payload, size_t n)
{
        uint8_t small[TW_WS_MAX_HEADER + 256], *buf = small;
        uint64_t r = rnd(t);
        uint8_t mask[4] = {(uint8_t)r, (uint8_t)(r >> 8), (uint8_t)(r >> 16), (uint8_t)(r >> 24)};
        size_t h;
        int ret;

        if (!t->ssl) {
                /* Build straight into the output buffer: no copy of a large payload. */
                buf = out_reserve(c, TW_WS_MAX_HEADER + n);
                if (!buf)
                        return -ENOMEM;
        } else if (n > 256 && !(buf = malloc(TW_WS_MAX_HEADER + n))) {
                return -ENOMEM;
        }
        h = tw_ws_header_build(buf, opcode, true, n, mask);
        if (n)
                memcpy(buf + h, payload, n);
        tw_ws_mask(buf + h, n, mask, 0);
        if (!t->ssl) {
                c->out->fill_len += (uint32_t)(h + n);
                return 0;
        }
        ret = tls_write(t, c, buf, h + n);
        if (buf != small)
                free(buf);
        return ret;
}

int lg_conn_queue_text(lg_thread *t, lg_conn *c, const void *p, size_t n)
{
        return queue_frame(t, c, TW_WS_OP_TEXT, p, n);
}

void lg_conn_arm(lg_thread *t, lg_conn *c, uint64_t at_us)
{
        arm(t, c, at_us);
}

/* Heartbeat and close frames: queued and sent at once. */
static int send_frame(lg_thread *t, lg_conn *c, uint8_t opcode, const void *payload, size_t n)
{
        int ret;

        TW_INC(t->c.hb_frames);
        TW_ADD(t->c.hb_bytes, (n < 126 ? 6 : 8) + n);
        ret = queue_frame(t, c, opcode, payload, n);
        lg_conn_flush(t, c);
        return ret;
}

/* ---- lifecycle ---- */

static void arm_recv(lg_thread *t, lg_conn *c)
{
        struct io_uring_sqe *sqe = tw_ring_sqe(&t->ring);

        tw_prep_recv_multishot(sqe, (int)slot_of(t, c), t->bufs.bgid);
        io_uring_sqe_set_data64(sqe, ud_of(t, c, LG_K_RECV));
        c->flags |= LG_CF_RECV;
        c->inflight++;
}

static void release_parts(lg_conn *c)
{
        free(c->hs);
        c->hs = NULL;
        free(c->rd);
        c->rd = NULL;
        if (c->out && !(c->flags & LG_CF_SEND))
                out_free(c);
}

/* The next (source address, port) pair of this thread to bind. Choosing the port here
 * instead of in connect() matters at scale: the kernel's ephemeral search scans the
 * port range for a free 4-tuple on every connect, O(connections) each, which measured as
 * half the loadgen's CPU at 15k connections. Threads take interleaved pairs; a pair still
 * in use (a listener on it: the server's own port) is skipped. */
static struct sockaddr_in next_source(lg_thread *t, const lg_conn *c)
{
        const lg_opts *o = t->eng->o;
        const unsigned nsrc = o->nsources ? o->nsources : 1;
        const struct sockaddr_in *dst = &o->targets[c->tgt];
        uint64_t k = t->idx + t->port_cursor++ * t->eng->nthreads;
        struct sockaddr_in src = {.sin_family = AF_INET};

        src.sin_addr = o->nsources ? o->sources[k % nsrc] : dst->sin_addr;
        src.sin_port = htons((uint16_t)(LG_PORT_LO + (k / nsrc) % LG_PORTS));
        return src;
}

static int bind_source(lg_thread *t, const lg_conn *c, int fd)
{
        int one = 1;

        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        for (int tries = 0; tries < LG_BIND_TRIES; tries++) {
                struct sockaddr_in src = next_source(t, c);

                if (bind(fd, (struct sockaddr *)&src, sizeof(src)) == 0)
                        return 0;
                if (errno != EADDRINUSE)
                        return -errno;
        }
        return -EADDRINUSE;
}

static void start_connect(lg_thread *t, lg_conn *c);

/* Called when a DEAD connection has nothing in flight: reuse or retire the slot. */
static void maybe_release(lg_thread *t, lg_conn *c)
{
        const lg_opts *o = t->eng->o;
        uint64_t delay_ms;

        if (c->state != LG_DEAD || c->inflight)
                return;
        out_free(c);
        if (t->ssl && t->ssl[slot_of(t, c)]) {
                /* Only now: a terminate may have run inside a wolfSSL callback. */
                wolfSSL_free(t->ssl[slot_of(t, c)]);
                t->ssl[slot_of(t, c)] = NULL;
        }
        if (t->subs || (c->flags & LG_CF_PUB))
                lg_market_conn_reset(t, c);
        if (!(c->flags & LG_CF_REOPEN) || atomic_load(&t->eng->stop)) {
                c->state = LG_DONE;
                return;
        }
        c->flags &= ~LG_CF_REOPEN;
        c->state = LG_IDLE;
        /* storm over several targets: a node that failed us is probably gone, so the
         * next attempt goes to the next one (its clients spread over the others). */
        if (o->scenario == LG_SC_STORM)
                c->tgt = (uint8_t)((c->tgt + 1u) % o->ntargets);
        if (c->hint_ms != UINT32_MAX) {
                delay_ms = c->hint_ms;
                c->hint_ms = UINT32_MAX;
        } else {
                delay_ms = lg_scenario_backoff_ms(o, c->attempt, rnd(t));
                if (c->attempt < 30)
                        c->attempt++;
        }
        arm(t, c, t->now_us + delay_ms * 1000);
}

/* Ends the connection now: cancel everything on the slot, close it. Idempotent. */
static void terminate(lg_thread *t, lg_conn *c, bool reopen)
{
        struct io_uring_sqe *sqe;

        if (c->state == LG_DEAD || c->state == LG_DONE || c->state == LG_IDLE)
                return;
        if (c->state == LG_CONNECTING || c->state == LG_HANDSHAKE)
                t->connecting--;
        if ((c->state == LG_OPEN || c->state == LG_PAUSED) && !(c->flags & LG_CF_PUB))
                TW_DEC(t->c.open);
        c->state = LG_DEAD;
        if (reopen)
                c->flags |= LG_CF_REOPEN;
        tw_wheel_cancel(&t->wheel, &c->timer);
        release_parts(c);
        tw_ring_reserve(&t->ring, 2); /* the hard link must not be split across submits */
        if (c->inflight) {
                sqe = tw_ring_sqe(&t->ring);
                tw_prep_cancel_fixed_fd(sqe, (int)slot_of(t, c));
                sqe->flags |= IOSQE_IO_HARDLINK | IOSQE_CQE_SKIP_SUCCESS;
                io_uring_sqe_set_data64(sqe, tw_ud(LG_K_IGNORE, 0, 0));
        }
        sqe = tw_ring_sqe(&t->ring);
        io_uring_prep_close_direct(sqe, slot_of(t, c));
        io_uring_sqe_set_data64(sqe, ud_of(t, c, LG_K_CLOSE));
        c->inflight++;
}

static enum lg_fail fail_of(int err)
{
        switch (err) {
        case -ECONNREFUSED:
                return LG_FAIL_REFUSED;
        case -ECONNRESET:
        case -EPIPE:
        case -ECONNABORTED:
                return LG_FAIL_RESET;
        case -ETIMEDOUT:
        case -ECANCELED:
                return LG_FAIL_TIMEOUT;
        case -EADDRNOTAVAIL:
        case -EADDRINUSE:
                return LG_FAIL_ADDR;
        case -EPROTO:
                return LG_FAIL_PROTOCOL;
        case -EMFILE:
        case -ENFILE:
        case -ENOBUFS:
        case -ENOMEM:
        case -EBADF:
                return LG_FAIL_SOCKET;
        default:
                return LG_FAIL_OTHER;
        }
}

/* A connect or handshake attempt failed: count it, and back off (storm) or give up. */
static void attempt_failed(lg_thread *t, lg_conn *c, enum lg_fail why)
{
        bool pub = c->flags & LG_CF_PUB;
        bool reopen = (pub || lg_scenario_reconnects(t->eng->o)) && !atomic_load(&t->eng->stop);

        /* Publishers always come back and are not among --connections: only the reason
         * is counted for them. */
        TW_INC(t->c.fail[why]);
        if (!pub)
                TW_INC(t->c.failed);
        if (!pub && !(c->flags & LG_CF_EVER) && c->attempt == 0) {
                TW_INC(t->c.failed_first);
                TW_INC(t->c.done_first);
                t->last_first_us = t->now_us;
        }
        event(t, LG_EV_FAILED, c->id, why);
        if (c->state == LG_IDLE) {
                /* Never got a slot: nothing to cancel or close. */
                c->state = LG_DEAD;
                if (reopen)
                        c->flags |= LG_CF_REOPEN;
                maybe_release(t, c);
                return;
        }
        terminate(t, c, reopen);
        maybe_release(t, c);
}

/* The server ended a healthy session (EOF, RST, or its Close). */
static void server_dropped(lg_thread *t, lg_conn *c)
{
        if (atomic_load(&t->eng->stop))
                return;
        if (c->flags & LG_CF_PUB) {
                terminate(t, c, true);
        } else if ((c->flags & LG_CF_HIT) && t->eng->o->scenario == LG_SC_SLOW) {
                /* A slow client the server gave up on: what slow is about. One that got
                 * the server's Close (counted then, e.g. as 1013) and now its FIN was
                 * closed properly, not dropped. */
                if (!(c->flags & LG_CF_PEERCL))
                        TW_INC(t->c.slow_dropped);
                terminate(t, c, false);
        } else if (lg_scenario_reconnects(t->eng->o)) {
                uint64_t zero = 0;

                TW_INC(t->c.drops);
                atomic_compare_exchange_strong(&t->eng->first_drop_us, &zero, t->now_us + 1);
                c->attempt = 0;
                c->t_us = t->now_us; /* the drop, for the reconnect event */
                terminate(t, c, true);
        } else {
                TW_INC(t->c.false_disconnects);
                event(t, LG_EV_FALSE_DISCONNECT, c->id, 0);
                terminate(t, c, false);
        }
        maybe_release(t, c);
}

/* The socket the slow way, for kernels without IORING_OP_BIND (before 6.11): a normal fd
 * set up with system calls, registered into the slot and closed. Six system calls per
 * connection; start_chain() needs none. */
static int socket_sync(lg_thread *t, lg_conn *c)
{
        const lg_opts *o = t->eng->o;
        int fd, one = 1, ret;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -EMFILE;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof(one)); /* see start_chain */
        if ((c->flags & LG_CF_HIT) && o->scenario == LG_SC_ABORT)
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg_linger0, sizeof(lg_linger0));
        if ((c->flags & LG_CF_HIT) && o->scenario == LG_SC_SLOW && o->slow_rcvbuf)
                setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &t->slow_rcvbuf, sizeof(t->slow_rcvbuf));
        ret = bind_source(t, c, fd);
        if (ret == 0 && io_uring_register_files_update(&t->ring, slot_of(t, c), &fd, 1) < 0)
                ret = -EMFILE;
        close(fd); /* on success the slot holds the socket now */
        return ret;
}

/* A chain step that posts a completion only when it fails. */
static void chain_step(lg_thread *t, lg_conn *c, struct io_uring_sqe *sqe, uint8_t kind)
{
        sqe->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
        io_uring_sqe_set_data64(sqe, ud_of(t, c, kind));
}

/* A nice-to-have option: hard-linked, so a kernel that refuses it still connects. */
static void soft_sockopt(lg_thread *t, lg_conn *c, int level, int optname, const int *val, int len)
{
        struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);

        tw_prep_setsockopt(sqe, (int)slot_of(t, c), level, optname, val, len);
        sqe->flags |= IOSQE_IO_HARDLINK | IOSQE_CQE_SKIP_SUCCESS;
        io_uring_sqe_set_data64(sqe, ud_of(t, c, LG_K_SOFTOPT));
}

/* bind to the next (source, port) pair, then connect: the tail of the connect chain, and
 * the whole of a retry after EADDRINUSE. The caller has reserved two SQEs. */
static void queue_bind_connect(lg_thread *t, lg_conn *c)
{
        const lg_opts *o = t->eng->o;
        int slot = (int)slot_of(t, c);
        struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);
        /* One address per SQ entry: the kernel copies it when it takes the SQE, and the
         * entry is not handed out again before that. */
        struct sockaddr_in *src = &t->bind_addr[sqe - t->ring.sq.sqes];

        *src = next_source(t, c);
        tw_prep_bind(sqe, slot, (struct sockaddr *)src, sizeof(*src));
        chain_step(t, c, sqe, LG_K_BIND);
        sqe = io_uring_get_sqe(&t->ring);
        io_uring_prep_connect(sqe, slot, (struct sockaddr *)&o->targets[c->tgt],
                              sizeof(o->targets[c->tgt]));
        sqe->flags |= IOSQE_FIXED_FILE;
        io_uring_sqe_set_data64(sqe, ud_of(t, c, LG_K_CONNECT));
        c->inflight++;
}

/* The whole attempt as one linked chain straight into the slot: socket, options, bind,
 * connect. The SQEs ride the loop's one io_uring_enter with everything else, so starting
 * a connection costs no system call of its own (the synchronous path's socket, two
 * setsockopts, bind, files_update and close were most of the loadgen's time). Only the
 * connect posts on success; a failing step posts its error and cancels the rest, the
 * connect included, so the connect's completion is the one the slot waits for. */
static void start_chain(lg_thread *t, lg_conn *c)
{
        const lg_opts *o = t->eng->o;
        int slot = (int)slot_of(t, c);
        bool abort = (c->flags & LG_CF_HIT) && o->scenario == LG_SC_ABORT;
        bool slow = (c->flags & LG_CF_HIT) && o->scenario == LG_SC_SLOW && o->slow_rcvbuf;
        struct io_uring_sqe *sqe;

        tw_ring_reserve(&t->ring, 6 + abort + slow);
        sqe = io_uring_get_sqe(&t->ring);
        io_uring_prep_socket_direct(sqe, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0, (unsigned)slot,
                                    0);
        chain_step(t, c, sqe, LG_K_SOCKET);
        soft_sockopt(t, c, IPPROTO_TCP, TCP_NODELAY, &lg_one, sizeof(lg_one));
        /* On a connecting socket TCP_DEFER_ACCEPT holds back the bare ACK of the
         * handshake so it rides on the upgrade request sent microseconds later: 7 segments
         * per connection become 6 (nstat, 4000 connections), through both stacks, and the
         * server's accept finds the request already there. The kernel's work is most of
         * a connection's cost, not ours. The ACK of the 101 then leaves on the delayed-ACK
         * timer; a client that sends nothing still ACKs the handshake within 200 ms. */
        soft_sockopt(t, c, IPPROTO_TCP, TCP_DEFER_ACCEPT, &lg_one, sizeof(lg_one));
        /* Explicit pairs may meet a previous run's TIME_WAIT. */
        sqe = io_uring_get_sqe(&t->ring);
        tw_prep_setsockopt(sqe, slot, SOL_SOCKET, SO_REUSEADDR, &lg_one, sizeof(lg_one));
        chain_step(t, c, sqe, LG_K_SOCKOPT);
        if (abort) {
                /* Closing with linger 0 sends RST: the abort scenario's whole point. */
                sqe = io_uring_get_sqe(&t->ring);
                tw_prep_setsockopt(sqe, slot, SOL_SOCKET, SO_LINGER, &lg_linger0,
                                   sizeof(lg_linger0));
                chain_step(t, c, sqe, LG_K_SOCKOPT);
        }
        if (slow) {
                /* Before connect, so the window we advertise is small from the start. */
                sqe = io_uring_get_sqe(&t->ring);
                tw_prep_setsockopt(sqe, slot, SOL_SOCKET, SO_RCVBUF, &t->slow_rcvbuf,
                                   sizeof(t->slow_rcvbuf));
                chain_step(t, c, sqe, LG_K_SOCKOPT);
        }
        queue_bind_connect(t, c);
}

static void start_connect(lg_thread *t, lg_conn *c)
{
        const lg_opts *o = t->eng->o;
        struct io_uring_sqe *sqe;
        int ret;

        tw_table_renew(&t->slots, slot_of(t, c));
        c->flags &= LG_CF_HIT | LG_CF_EVER | LG_CF_PUB;
        c->inflight = 0;
        c->hint_ms = UINT32_MAX;
        c->t_us = t->now_us;
        TW_INC(t->c.attempts);

        if (t->chain) {
                start_chain(t, c);
        } else {
                ret = socket_sync(t, c);
                if (ret < 0) {
                        attempt_failed(t, c, fail_of(ret));
                        return;
                }
                sqe = tw_ring_sqe(&t->ring);
                io_uring_prep_connect(sqe, (int)slot_of(t, c),
                                      (struct sockaddr *)&o->targets[c->tgt],
                                      sizeof(o->targets[c->tgt]));
                sqe->flags |= IOSQE_FIXED_FILE;
                io_uring_sqe_set_data64(sqe, ud_of(t, c, LG_K_CONNECT));
                c->inflight++;
        }
        c->state = LG_CONNECTING;
        t->connecting++;
        arm(t, c, t->now_us + o->connect_timeout_ms * 1000);
}

/* A step of the connect chain failed (successes post nothing). The connect behind it
 * completes with -ECANCELED after this. */
static void on_chain_step(lg_thread *t, struct io_uring_cqe *cqe)
{
        lg_conn *c = conn_of(t, cqe->user_data);
        uint8_t kind = tw_ud_kind(cqe->user_data);

        /* -ECANCELED: a step behind the one that failed, which has been handled. */
        if (!c || c->state != LG_CONNECTING || cqe->res >= 0 || cqe->res == -ECANCELED ||
            kind == LG_K_SOFTOPT)
                return;
        if (kind == LG_K_BIND && cqe->res == -EADDRINUSE && t->bind_misses < LG_BIND_TRIES) {
                /* The pair is taken (by a listener: with SO_REUSEADDR nothing else
                 * conflicts). The socket is fine: bind it to the next pair. The cancelled
                 * connect still to come carries the old generation and is ignored. */
                t->bind_misses++;
                tw_table_renew(&t->slots, slot_of(t, c));
                c->inflight--;
                tw_ring_reserve(&t->ring, 2);
                queue_bind_connect(t, c);
                return;
        }
        attempt_failed(t, c, kind == LG_K_BIND ? fail_of(cqe->res) : LG_FAIL_SOCKET);
}

/* ---- handshake ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void make_key(lg_thread *t, char out[25])
{
        uint8_t raw[18];
        uint64_t a = rnd(t), b = rnd(t);

        memcpy(raw, &a, 8);
        memcpy(raw + 8, &b, 8);
        raw[16] = raw[17] = 0;
        for (int i = 0, o = 0; i < 18; i += 3, o += 4) {
                uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
                out[o] = b64[v >> 18];
                out[o + 1] = b64[(v >> 12) & 63];
                out[o + 2] = b64[(v >> 6) & 63];
                out[o + 3] = b64[v & 63];
        }
        /* 16 bytes encode to 22 characters and "==". */
        out[22] = out[23] = '=';
        out[24] = 0;
}

static bool http_publisher(const lg_thread *t, const lg_conn *c)
{
        return (c->flags & LG_CF_PUB) && t->eng->o->pub_via == LG_PUB_HTTP;
}

/* A keep-alive POST /publish connection is ready (TCP, or TCP + TLS). */
static void pub_opened(lg_thread *t, lg_conn *c)
{
        t->connecting--;
        c->state = LG_OPEN;
        c->flags |= LG_CF_EVER;
        c->attempt = 0;
        tw_wheel_cancel(&t->wheel, &c->timer);
        lg_market_pub_tick(t, c);
}

/* The transport is up (TCP, and TLS when on): ask for the upgrade. */
static void send_upgrade(lg_thread *t, lg_conn *c)
{
        const lg_opts *o = t->eng->o;
        char req[768];
        int n;

        if (http_publisher(t, c)) {
                pub_opened(t, c);
                return;
        }
        n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                     o->path, o->target_texts[c->tgt], c->hs->key,
                     (c->flags & LG_CF_PUB) && o->publish_token ? "Authorization: Bearer " : "",
                     (c->flags & LG_CF_PUB) && o->publish_token ? o->publish_token : "",
                     (c->flags & LG_CF_PUB) && o->publish_token ? "\r\n" : "");
        if (lg_conn_queue(t, c, req, (size_t)n) < 0) {
                attempt_failed(t, c, LG_FAIL_SOCKET);
                return;
        }
        lg_conn_flush(t, c);
}

/* Starts the TLS handshake: the ClientHello goes out, the rest comes with the reads. */
static int tls_start(lg_thread *t, lg_conn *c)
{
        const lg_opts *o = t->eng->o;
        tw_tls_io io = {.out = tls_out, .arg = c};
        WOLFSSL *ssl = tw_tls_new(t->eng->tls);
        int r;

        if (!ssl)
                return -ENOMEM;
        t->ssl[slot_of(t, c)] = ssl;
        if (o->sni) {
                wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, o->sni, (unsigned short)strlen(o->sni));
                if (!o->insecure)
                        wolfSSL_check_domain_name(ssl, o->sni);
        }
        tw_tls_bind(ssl, &io);
        r = wolfSSL_connect(ssl);
        tw_tls_bind(ssl, NULL);
        if (r != WOLFSSL_SUCCESS && wolfSSL_get_error(ssl, r) != WOLFSSL_ERROR_WANT_READ)
                return -EPROTO;
        lg_conn_flush(t, c);
        return 0;
}

static void on_connect(lg_thread *t, lg_conn *c, int res)
{
        c->inflight--;
        if (c->state != LG_CONNECTING) {
                maybe_release(t, c);
                return;
        }
        if (res < 0) {
                attempt_failed(t, c, fail_of(res));
                return;
        }
        t->bind_misses = 0;
        c->state = LG_HANDSHAKE;
        if (!http_publisher(t, c)) {
                c->hs = malloc(sizeof(*c->hs));
                if (!c->hs) {
                        attempt_failed(t, c, LG_FAIL_SOCKET);
                        return;
                }
                c->hs->len = 0;
                make_key(t, c->hs->key);
        }
        arm_recv(t, c);
        if (t->ssl) {
                if (tls_start(t, c) < 0)
                        attempt_failed(t, c, LG_FAIL_PROTOCOL);
                return;
        }
        send_upgrade(t, c);
}

static void app_ping(lg_thread *t, lg_conn *c)
{
        char msg[64];
        int n = snprintf(msg, sizeof(msg), "{\"type\":\"ping\",\"time\":%llu}",
                         (unsigned long long)(t->eng->t0_us + t->now_us));

        TW_INC(t->c.app_pings_sent);
        send_frame(t, c, TW_WS_OP_TEXT, msg, (size_t)n);
}

static void go_event(lg_thread *t, lg_conn *c);

/* An open client's one timer serves both halves of its heartbeat: the next app ping and
 * the moment the server's silence reaches --server-timeout. Armed for the earlier. */
static void arm_heartbeat(lg_thread *t, lg_conn *c)
{
        const lg_opts *o = t->eng->o;
        uint64_t at_ms = UINT64_MAX;

        if (o->app_ping)
                at_ms = c->ping_ms;
        if (o->server_timeout_ms && c->state == LG_OPEN &&
            (uint64_t)c->rx_ms + o->server_timeout_ms < at_ms)
                at_ms = (uint64_t)c->rx_ms + o->server_timeout_ms;
        if (at_ms != UINT64_MAX)
                arm(t, c, at_ms * 1000);
}

/* --server-timeout: nothing from the server for that long, so it is gone (its host lost
 * power, a partition, a NAT that forgot us): close, as tickwire.js does, and under storm
 * come back. Measured from the last bytes heard, the one moment a client knows. */
static void server_dead(lg_thread *t, lg_conn *c)
{
        double ms = (double)(t->now_us / 1000 - c->rx_ms);
        uint64_t zero = 0;

        TW_INC(t->c.server_dead);
        lg_samples_add(&t->dead_ms, ms);
        event(t, LG_EV_SERVER_DEAD, c->id, ms);
        if (lg_scenario_reconnects(t->eng->o) && !atomic_load(&t->eng->stop)) {
                atomic_compare_exchange_strong(&t->eng->first_drop_us, &zero, t->now_us + 1);
                c->attempt = 0;
                c->t_us = t->now_us;
                terminate(t, c, true);
        } else {
                terminate(t, c, false);
        }
        maybe_release(t, c);
}

static void opened(lg_thread *t, lg_conn *c)
{
        const lg_opts *o = t->eng->o;
        uint64_t took = t->now_us - c->t_us;

        free(c->hs);
        c->hs = NULL;
        if (c->flags & LG_CF_PUB) {
                pub_opened(t, c); /* publishing over WebSocket */
                return;
        }
        t->connecting--;
        c->state = LG_OPEN;
        TW_INC(t->c.open);
        TW_INC(t->c.established);
        lg_hist_add(&t->handshake_us, took);
        t->est_target[c->tgt]++;
        if (c->flags & LG_CF_EVER) {
                TW_INC(t->c.reconnects);
                if (c->sess_tgt != c->tgt)
                        t->moved_target[c->tgt]++;
                event(t, LG_EV_RECONNECT, c->id, took / 1000.0);
        } else {
                TW_INC(t->c.established_first);
                if (c->attempt == 0) {
                        TW_INC(t->c.done_first);
                        t->last_first_us = t->now_us;
                }
                event(t, LG_EV_ESTABLISHED, c->id, took / 1000.0);
        }
        c->flags |= LG_CF_EVER;
        c->attempt = 0;
        c->sess_tgt = c->tgt;
        tw_wheel_cancel(&t->wheel, &c->timer);
        if (t->subs)
                lg_market_on_open(t, c);
        if ((c->flags & LG_CF_HIT) && t->event_done) {
                /* Came up after the event: it hits this client now. */
                go_event(t, c);
                return;
        }
        /* The first ping at a random point of the period, so clients that came up
         * together do not ping together forever. */
        c->rx_ms = (uint32_t)(t->now_us / 1000);
        c->ping_ms = (uint32_t)((t->now_us + rnd(t) % (o->ping_interval_ms * 1000) + 1000) / 1000);
        arm_heartbeat(t, c);
}

static void frames_feed(lg_thread *t, lg_conn *c, uint8_t *buf, size_t len);

/* The server's answer to the upgrade, buffered until its head is whole and parsed by
 * tw_http_parse_response: a malformed head is a protocol failure, any status but 101 a
 * status failure, and a 101 whose Sec-WebSocket-Accept is not the one for our key a
 * protocol failure again. */
static void hs_feed(lg_thread *t, lg_conn *c, uint8_t *buf, size_t len)
{
        struct lg_hs *hs = c->hs;
        tw_http_response resp;
        char accept[29];
        size_t take = len;

        if (take > (size_t)(LG_HS_MAX - hs->len))
                take = (size_t)(LG_HS_MAX - hs->len);
        memcpy(hs->buf + hs->len, buf, take);
        hs->len += (uint16_t)take;
        int r = tw_http_parse_response(hs->buf, hs->len, &resp);
        if (r == TW_HTTP_NEED_MORE) {
                if (hs->len == LG_HS_MAX)
                        attempt_failed(t, c, LG_FAIL_PROTOCOL);
                return;
        }
        if (r < 0) {
                attempt_failed(t, c, LG_FAIL_PROTOCOL);
                return;
        }
        if (resp.status != 101) {
                if (resp.status == 503)
                        TW_INC(t->c.status_503);
                attempt_failed(t, c, LG_FAIL_STATUS);
                return;
        }
        const tw_span *v = tw_http_response_header(&resp, "sec-websocket-accept");
        if (tw_ws_accept_key((tw_span){hs->key, 24}, accept) < 0 || !v || v->n != 28 ||
            memcmp(v->p, accept, 28) != 0) {
                attempt_failed(t, c, LG_FAIL_PROTOCOL);
                return;
        }
        /* Bytes after the head (buffered or not yet copied) are the first frames. */
        size_t head = (size_t)r, extra_buffered = hs->len - head;
        uint8_t tmp[LG_HS_MAX];

        memcpy(tmp, hs->buf + head, extra_buffered);
        opened(t, c);
        if (extra_buffered && c->state == LG_OPEN)
                frames_feed(t, c, tmp, extra_buffered);
        if (take < len && c->state == LG_OPEN)
                frames_feed(t, c, buf + take, len - take);
}

/* ---- frames ---- */

static void on_text(lg_thread *t, lg_conn *c, const uint8_t *p, size_t n)
{
        /* The server writes its pong exactly so: a prefix test, not a scan of every
         * topic message. */
        static const char pong[] = "{\"type\":\"pong\"", tkey[] = "\"time\":";
        const uint8_t *tp;
        uint64_t v = 0;

        (void)c;
        if (n < sizeof(pong) - 1 || memcmp(p, pong, sizeof(pong) - 1) != 0)
                return;
        TW_INC(t->c.hb_frames);
        TW_ADD(t->c.hb_bytes, 2 + n);
        tp = memmem(p, n, tkey, sizeof(tkey) - 1);
        if (!tp)
                return;
        tp += sizeof(tkey) - 1;
        while (tp < p + n && *tp >= '0' && *tp <= '9')
                v = v * 10 + (uint64_t)(*tp++ - '0');
        v -= t->eng->t0_us;
        if (v <= t->now_us)
                lg_hist_add(&t->latency_us, t->now_us - v);
}

static void on_close_frame(lg_thread *t, lg_conn *c, const uint8_t *p, size_t n)
{
        const uint8_t *reason = NULL;
        size_t rlen = 0;
        uint16_t code = TW_WS_CLOSE_NO_STATUS;
        uint64_t hint;
        uint8_t echo[2];

        if (c->flags & LG_CF_PEERCL)
                return; /* already echoed */
        TW_INC(t->c.server_closes);
        if (c->state == LG_CLOSING && !(c->flags & LG_CF_PEERCL)) {
                /* Our graceful Close came back: wait for the server's FIN (it closes TCP
                 * first, so the TIME_WAIT lands on its side, not on our ports). */
                c->flags |= LG_CF_ECHO;
                TW_INC(t->c.close_echoes);
                lg_hist_add(&t->close_us, t->now_us - c->t_us);
                event(t, LG_EV_CLOSE_ECHO, c->id, (t->now_us - c->t_us) / 1000.0);
                return;
        }
        if (tw_ws_close_parse(p, n, &code, &reason, &rlen) == 0 && reason &&
            lg_scenario_retry_hint(reason, rlen, &hint))
                c->hint_ms = hint > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)hint;
        if (code == TW_WS_CLOSE_TRY_AGAIN && (c->flags & LG_CF_HIT) &&
            t->eng->o->scenario == LG_SC_SLOW)
                TW_INC(t->c.slow_1013);
        /* Echo the code (RFC 6455 5.5.1), then wait for the server to close TCP. */
        c->flags |= LG_CF_PEERCL;
        if ((c->state == LG_OPEN || c->state == LG_PAUSED) && !(c->flags & LG_CF_PUB))
                TW_DEC(t->c.open);
        c->state = LG_CLOSING;
        if (code == TW_WS_CLOSE_NO_STATUS) {
                send_frame(t, c, TW_WS_OP_CLOSE, NULL, 0);
        } else {
                echo[0] = (uint8_t)(code >> 8);
                echo[1] = (uint8_t)code;
                send_frame(t, c, TW_WS_OP_CLOSE, echo, 2);
        }
        arm(t, c, t->now_us + t->eng->o->close_timeout_ms * 1000);
}

static void frames_feed(lg_thread *t, lg_conn *c, uint8_t *buf, size_t len)
{
        tw_ws_reader *r = c->rd;
        tw_ws_event ev;
        size_t off = 0;

        if (!r) {
                r = &t->scratch;
                tw_ws_reader_init(r, false, LG_MAX_MESSAGE);
        }
        while (off < len &&
               (c->state == LG_OPEN || c->state == LG_CLOSING || c->state == LG_PAUSED)) {
                off += tw_ws_read(r, buf + off, len - off, &ev);
                switch (ev.kind) {
                case TW_WS_EV_NONE:
                        break;
                case TW_WS_EV_DATA:
                        if (ev.msg_end)
                                TW_INC(t->c.msgs_received);
                        if (ev.opcode != TW_WS_OP_TEXT)
                                break;
                        if (t->subs || (c->flags & LG_CF_PUB))
                                lg_market_on_text(t, c, ev.data, ev.len, ev.msg_start, ev.msg_end);
                        /* Pongs are small: whole in one read. */
                        if (ev.msg_start && ev.msg_end)
                                on_text(t, c, ev.data, ev.len);
                        break;
                case TW_WS_EV_CONTROL:
                        if (ev.opcode == TW_WS_OP_PING) {
                                TW_INC(t->c.pings_received);
                                TW_INC(t->c.hb_frames);
                                TW_ADD(t->c.hb_bytes, 2 + ev.len);
                                if (t->eng->o->pong &&
                                    (c->state == LG_OPEN || c->state == LG_PAUSED)) {
                                        TW_INC(t->c.pongs_sent);
                                        send_frame(t, c, TW_WS_OP_PONG, ev.data, ev.len);
                                }
                        } else if (ev.opcode == TW_WS_OP_CLOSE) {
                                on_close_frame(t, c, ev.data, ev.len);
                        }
                        break;
                case TW_WS_EV_ERROR:
                        TW_INC(t->c.fail[LG_FAIL_PROTOCOL]);
                        if (r != &t->scratch) {
                                free(c->rd);
                                c->rd = NULL;
                        }
                        server_dropped(t, c);
                        return;
                }
        }
        /* Keep a reader only while a frame is split across reads. */
        if (r == &t->scratch) {
                if (!tw_ws_reader_idle(r) && c->state != LG_DEAD) {
                        c->rd = malloc(sizeof(*c->rd));
                        if (c->rd)
                                *c->rd = *r;
                }
        } else if (tw_ws_reader_idle(r)) {
                free(c->rd);
                c->rd = NULL;
        }
}

/* ---- the scenario event ---- */

static void go_silent(lg_thread *t, lg_conn *c)
{
        const lg_opts *o = t->eng->o;
        struct io_uring_sqe *sqe;

        c->state = LG_SILENT;
        c->t_us = t->now_us;
        TW_DEC(t->c.open);
        TW_INC(t->c.silent);
        event(t, LG_EV_SILENT, c->id, 0);
        tw_wheel_cancel(&t->wheel, &c->timer);
        /* Stop reading: whatever the server sends now stays in the socket. */
        if (c->flags & LG_CF_RECV) {
                sqe = tw_ring_sqe(&t->ring);
                io_uring_prep_cancel64(sqe, ud_of(t, c, LG_K_RECV), 0);
                io_uring_sqe_set_data64(sqe, tw_ud(LG_K_IGNORE, 0, 0));
        }
        if (c->out) {
                free(c->out->fill);
                c->out->fill = NULL;
                c->out->fill_len = c->out->fill_cap = 0;
        }
        sqe = tw_ring_sqe(&t->ring);
        if (o->silence == LG_SILENCE_POWER) {
                tw_prep_fixed_fd_install(sqe, (int)slot_of(t, c));
                io_uring_sqe_set_data64(sqe, ud_of(t, c, LG_K_INSTALL));
        } else {
                /* Notice the server's FIN or RST without reading a byte. */
                io_uring_prep_poll_add(sqe, (int)slot_of(t, c), POLLRDHUP | POLLHUP | POLLERR);
                sqe->flags |= IOSQE_FIXED_FILE;
                io_uring_sqe_set_data64(sqe, ud_of(t, c, LG_K_POLL));
        }
        c->inflight++;
}

/* slow: stop reading, as a client stuck in its own work would; the socket stays open
 * and app pings keep the session alive, so the server must choose what to do with the
 * messages it cannot deliver. */
static void go_paused(lg_thread *t, lg_conn *c)
{
        struct io_uring_sqe *sqe;

        c->state = LG_PAUSED;
        c->t_us = t->now_us;
        TW_INC(t->c.slow_paused);
        if (t->subs)
                t->subs[slot_of(t, c)].flags |= LG_SUB_SLOW;
        if (c->flags & LG_CF_RECV) {
                sqe = tw_ring_sqe(&t->ring);
                io_uring_prep_cancel64(sqe, ud_of(t, c, LG_K_RECV), 0);
                io_uring_sqe_set_data64(sqe, tw_ud(LG_K_IGNORE, 0, 0));
        }
}

/* slow, at --resume-at: read again and see what the server kept. */
static void resume_paused(lg_thread *t)
{
        t->resume_done = true;
        for (uint32_t i = 0; i < t->nconns; i++) {
                lg_conn *c = &t->conns[i];

                if (c->state != LG_PAUSED)
                        continue;
                c->state = LG_OPEN;
                c->rx_ms = (uint32_t)(t->now_us / 1000); /* it was not listening */
                TW_INC(t->c.slow_resumed);
                if (!(c->flags & LG_CF_RECV))
                        arm_recv(t, c);
        }
}

static void go_event(lg_thread *t, lg_conn *c)
{
        const lg_opts *o = t->eng->o;
        uint8_t code[2] = {TW_WS_CLOSE_NORMAL >> 8, TW_WS_CLOSE_NORMAL & 0xff};

        switch (o->scenario) {
        case LG_SC_SILENT:
                go_silent(t, c);
                break;
        case LG_SC_SLOW:
                go_paused(t, c);
                break;
        case LG_SC_ABORT:
                /* SO_LINGER 0 was set at socket creation: closing the slot sends RST. */
                TW_INC(t->c.aborted);
                terminate(t, c, false);
                maybe_release(t, c);
                break;
        case LG_SC_GRACEFUL:
                TW_DEC(t->c.open);
                c->state = LG_CLOSING;
                c->t_us = t->now_us;
                TW_INC(t->c.closes_sent);
                send_frame(t, c, TW_WS_OP_CLOSE, code, 2);
                arm(t, c, t->now_us + o->close_timeout_ms * 1000);
                break;
        default:
                break;
        }
}

static void fire_event(lg_thread *t)
{
        uint64_t zero = 0;

        t->event_done = true;
        atomic_compare_exchange_strong(&t->eng->event_us, &zero, t->now_us + 1);
        for (uint32_t i = 0; i < t->nconns; i++) {
                lg_conn *c = &t->conns[i];

                if ((c->flags & LG_CF_HIT) && c->state == LG_OPEN)
                        go_event(t, c);
        }
}

/* ---- input ---- */

/* Plaintext from the server. Returns 0, or -1 when the stream is unusable. */
static int plain_feed(lg_thread *t, lg_conn *c, uint8_t *p, size_t n)
{
        if (http_publisher(t, c)) {
                if (c->state == LG_OPEN && !lg_market_pub_http(t, c, p, n)) {
                        TW_INC(t->c.fail[LG_FAIL_PROTOCOL]);
                        return -1;
                }
                return 0;
        }
        if (c->state == LG_HANDSHAKE)
                hs_feed(t, c, p, n);
        else
                frames_feed(t, c, p, n);
        return 0;
}

static bool reading(const lg_conn *c)
{
        return c->state == LG_HANDSHAKE || c->state == LG_OPEN || c->state == LG_CLOSING ||
               c->state == LG_PAUSED;
}

/* Ciphertext from the server: drive the handshake, then decrypt every record in the
 * buffer before it goes back to the kernel (wolfSSL keeps a partial record itself).
 * Returns 0, 1 on close_notify, -1 when the stream is unusable. */
static int tls_feed(lg_thread *t, lg_conn *c, uint8_t *buf, size_t len)
{
        uint8_t plain[16384]; /* the largest record's plaintext */
        WOLFSSL *ssl = t->ssl[slot_of(t, c)];
        tw_tls_io io = {.in = buf, .in_len = len, .out = tls_out, .arg = c};
        int n, e, ret = 0;

        if (!ssl)
                return 0;
        if (!wolfSSL_is_init_finished(ssl)) {
                tw_tls_bind(ssl, &io);
                n = wolfSSL_connect(ssl);
                tw_tls_bind(ssl, NULL);
                if (n != WOLFSSL_SUCCESS) {
                        if (wolfSSL_get_error(ssl, n) != WOLFSSL_ERROR_WANT_READ)
                                return -1; /* a bad certificate, an alert: 'protocol' */
                        lg_conn_flush(t, c);
                        return 0;
                }
                send_upgrade(t, c); /* also flushes our Finished */
        }
        while (reading(c)) {
                tw_tls_bind(ssl, &io);
                n = wolfSSL_read(ssl, plain, sizeof(plain));
                tw_tls_bind(ssl, NULL); /* feeding may encrypt (pongs): its own binding */
                if (n > 0) {
                        if (plain_feed(t, c, plain, (size_t)n) < 0) {
                                ret = -1;
                                break;
                        }
                        continue;
                }
                e = wolfSSL_get_error(ssl, n);
                if (e == WOLFSSL_ERROR_WANT_READ)
                        break;
                ret = e == WOLFSSL_ERROR_ZERO_RETURN ? 1 : -1;
                break;
        }
        lg_conn_flush(t, c);
        return ret;
}

/* ---- completions ---- */

static void on_recv(lg_thread *t, struct io_uring_cqe *cqe)
{
        lg_conn *c = conn_of(t, cqe->user_data);
        int res = cqe->res;
        bool more = cqe->flags & IORING_CQE_F_MORE;
        uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        bool has_buf = cqe->flags & IORING_CQE_F_BUFFER;

        if (c && !more) {
                c->flags &= ~LG_CF_RECV;
                c->inflight--;
        }
        /* A paused client still takes what the kernel had already handed over before
         * its recv was cancelled: dropping it would fake a gap. */
        if (!c || (c->state != LG_HANDSHAKE && c->state != LG_OPEN && c->state != LG_CLOSING &&
                   c->state != LG_PAUSED)) {
                if (has_buf)
                        tw_bufring_recycle(&t->bufs, bid);
                if (c)
                        maybe_release(t, c);
                return;
        }
        if (res > 0) {
                uint8_t *p = tw_bufring_buf(&t->bufs, bid);
                int r;

                c->rx_ms = (uint32_t)(t->now_us / 1000);
                r = t->ssl ? tls_feed(t, c, p, (size_t)res) : plain_feed(t, c, p, (size_t)res);

                if (r == 1)
                        res = 0; /* close_notify: as a FIN */
                else if (r < 0)
                        res = -EPROTO;
        }
        if (has_buf)
                tw_bufring_recycle(&t->bufs, bid);
        if (res == 0 || (res < 0 && res != -ENOBUFS && res != -ECANCELED)) {
                if (c->state == LG_HANDSHAKE)
                        attempt_failed(t, c, res == 0 ? LG_FAIL_RESET : fail_of(res));
                else if (c->state == LG_CLOSING && !(c->flags & LG_CF_PEERCL)) {
                        terminate(t, c, false); /* graceful close complete */
                        maybe_release(t, c);
                } else if (c->state == LG_OPEN || c->state == LG_CLOSING || c->state == LG_PAUSED)
                        server_dropped(t, c);
                return;
        }
        if (c->state == LG_PAUSED) {
                maybe_release(t, c);
                return;
        }
        if (!(c->flags & LG_CF_RECV) &&
            (c->state == LG_HANDSHAKE || c->state == LG_OPEN || c->state == LG_CLOSING))
                arm_recv(t, c);
        maybe_release(t, c);
}

static void on_send(lg_thread *t, struct io_uring_cqe *cqe)
{
        lg_conn *c = conn_of(t, cqe->user_data);
        struct lg_out *o;

        if (!c)
                return;
        c->flags &= ~LG_CF_SEND;
        c->inflight--;
        o = c->out;
        if (c->state == LG_DEAD || c->state == LG_DONE || !o) {
                maybe_release(t, c);
                return;
        }
        if (cqe->res < 0) {
                if (c->state == LG_HANDSHAKE || c->state == LG_CONNECTING)
                        attempt_failed(t, c, fail_of(cqe->res));
                else if (c->state == LG_OPEN || c->state == LG_CLOSING)
                        server_dropped(t, c);
                return;
        }
        o->fly_off += (uint32_t)cqe->res;
        if (o->fly_off < o->fly_len && c->state != LG_SILENT) {
                send_fly(t, c);
                return;
        }
        free(o->fly);
        o->fly = NULL;
        o->fly_len = o->fly_off = 0;
        if (o->fill_len && c->state != LG_SILENT) {
                o->fly = o->fill;
                o->fly_len = o->fill_len;
                o->fill = NULL;
                o->fill_len = o->fill_cap = 0;
                send_fly(t, c);
                return;
        }
        out_free(c);
}

static void on_poll(lg_thread *t, struct io_uring_cqe *cqe)
{
        lg_conn *c = conn_of(t, cqe->user_data);
        double ms;

        if (!c)
                return;
        c->inflight--;
        if (c->state == LG_SILENT && cqe->res > 0) {
                ms = (double)(t->now_us - c->t_us) / 1000.0;
                TW_INC(t->c.detected);
                lg_samples_add(&t->detect_ms, ms);
                event(t, LG_EV_DETECTION, c->id, ms);
                terminate(t, c, false);
        }
        maybe_release(t, c);
}

static void on_install(lg_thread *t, struct io_uring_cqe *cqe)
{
        lg_conn *c = conn_of(t, cqe->user_data);
        struct sock_filter drop = BPF_STMT(BPF_RET | BPF_K, 0);
        struct sock_fprog prog = {.len = 1, .filter = &drop};
        struct sockaddr_in me;
        socklen_t len = sizeof(me);
        int fd = cqe->res;

        if (!c) {
                if (fd >= 0)
                        close(fd);
                return;
        }
        c->inflight--;
        if (fd < 0 || c->state != LG_SILENT) {
                if (fd >= 0)
                        close(fd);
                if (fd < 0)
                        TW_INC(t->c.fail[LG_FAIL_SOCKET]);
                maybe_release(t, c);
                return;
        }
        /* The kernel now drops every packet for this socket before TCP sees it: no more
         * ACKs, as after a power cut. The slot keeps the socket open (closing it would
         * send a FIN the server would notice). */
        if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
                TW_INC(t->c.fail[LG_FAIL_SOCKET]);
        if (getsockname(fd, (struct sockaddr *)&me, &len) == 0) {
                if (t->npower == t->power_cap) {
                        size_t cap = t->power_cap ? t->power_cap * 2 : 256;
                        lg_power_rec *p = realloc(t->power, cap * sizeof(*p));

                        if (p) {
                                t->power = p;
                                t->power_cap = cap;
                        }
                }
                if (t->npower < t->power_cap)
                        t->power[t->npower++] = (lg_power_rec){
                            me.sin_addr.s_addr, ntohs(me.sin_port), c->id, c->t_us / 1000.0};
        }
        close(fd);
        maybe_release(t, c);
}

static void on_close(lg_thread *t, struct io_uring_cqe *cqe)
{
        lg_conn *c = conn_of(t, cqe->user_data);

        if (!c)
                return;
        c->inflight--;
        maybe_release(t, c);
}

static void dispatch(lg_thread *t, struct io_uring_cqe *cqe)
{
        lg_conn *c;

        switch (tw_ud_kind(cqe->user_data)) {
        case LG_K_CONNECT:
                c = conn_of(t, cqe->user_data);
                if (c)
                        on_connect(t, c, cqe->res);
                break;
        case LG_K_RECV:
                on_recv(t, cqe);
                break;
        case LG_K_SEND:
                on_send(t, cqe);
                break;
        case LG_K_POLL:
                on_poll(t, cqe);
                break;
        case LG_K_INSTALL:
                on_install(t, cqe);
                break;
        case LG_K_CLOSE:
                on_close(t, cqe);
                break;
        case LG_K_SOCKET:
        case LG_K_SOCKOPT:
        case LG_K_SOFTOPT:
        case LG_K_BIND:
                on_chain_step(t, cqe);
                break;
        default:
                break;
        }
}

/* ---- timers ---- */

static void on_timer(tw_wheel *wh, tw_timer *tm, void *ctx)
{
        lg_thread *t = ctx;
        lg_conn *c = tw_container_of(tm, lg_conn, timer);
        const lg_opts *o = t->eng->o;

        switch (c->state) {
        case LG_CONNECTING:
        case LG_HANDSHAKE:
                attempt_failed(t, c, LG_FAIL_TIMEOUT);
                break;
        case LG_OPEN:
        case LG_PAUSED:
                if (c->flags & LG_CF_PUB) {
                        lg_market_pub_tick(t, c);
                        break;
                }
                /* A paused client reads nothing, so it cannot judge the server. */
                if (o->server_timeout_ms && c->state == LG_OPEN &&
                    t->now_us / 1000 >= (uint64_t)c->rx_ms + o->server_timeout_ms) {
                        server_dead(t, c);
                        break;
                }
                if (o->app_ping && t->now_us / 1000 >= c->ping_ms) {
                        app_ping(t, c);
                        c->ping_ms = (uint32_t)(t->now_us / 1000 + o->ping_interval_ms);
                }
                arm_heartbeat(t, c);
                break;
        case LG_CLOSING:
                if (!(c->flags & (LG_CF_ECHO | LG_CF_PEERCL)))
                        TW_INC(t->c.close_timeouts);
                if (c->flags & LG_CF_PEERCL) {
                        server_dropped(t, c);
                } else {
                        terminate(t, c, false);
                        maybe_release(t, c);
                }
                break;
        case LG_IDLE:
                if (!atomic_load(&t->eng->stop))
                        start_connect(t, c);
                break;
        default:
                break;
        }
}

/* ---- the loop ---- */

static uint64_t ramp_due_us(const lg_thread *t, uint32_t k)
{
        const lg_engine *e = t->eng;

        /* Client id idx + k * nthreads is due at id / rate. */
        return (uint64_t)((double)(t->idx + (uint64_t)k * e->nthreads) * 1e6 / e->o->connect_rate);
}

static void ramp(lg_thread *t)
{
        unsigned started = 0;

        while (t->next_start < t->nconns && t->connecting < LG_CONNECTING_MAX &&
               started < LG_START_BATCH && ramp_due_us(t, t->next_start) <= t->now_us) {
                start_connect(t, &t->conns[t->next_start++]);
                started++;
        }
}

static int thread_setup(lg_thread *t)
{
        const lg_opts *o = t->eng->o;
        int ret;

        ret = tw_ring_init(&t->ring, LG_RING_ENTRIES, t->nslots);
        if (ret < 0) {
                fprintf(stderr, "tickwire-loadgen: thread %u: io_uring setup: %s\n", t->idx,
                        strerror(-ret));
                return ret;
        }
        ret = tw_bufring_init(&t->ring, &t->bufs, 0, LG_RECV_BUFS, LG_RECV_BUF_SZ);
        if (ret < 0) {
                fprintf(stderr, "tickwire-loadgen: thread %u: buffer ring: %s\n", t->idx,
                        strerror(-ret));
                return ret;
        }
        for (uint32_t k = 0; k < t->nconns; k++) {
                lg_conn *c = &t->conns[k];

                tw_timer_init(&c->timer);
                c->id = t->idx + k * t->eng->nthreads;
                c->tgt = c->sess_tgt = (uint8_t)(c->id % o->ntargets);
                c->hint_ms = UINT32_MAX;
                if (lg_scenario_hits(o, c->id))
                        c->flags |= LG_CF_HIT;
                if (t->subs)
                        t->subs[k].topic = lg_market_topic_of(&t->eng->mkt, o->seed, c->id);
        }
        for (uint32_t k = t->nconns; k < t->nslots; k++) {
                lg_conn *c = &t->conns[k];

                tw_timer_init(&c->timer);
                c->id = o->connections + t->pubs[k - t->nconns].index;
                c->hint_ms = UINT32_MAX;
                c->flags = LG_CF_PUB;
        }
        t->rng = o->seed ^ (0x9e3779b97f4a7c15ull * (t->idx + 1));
        if (!t->rng)
                t->rng = 1;
        /* Every run starting at the same port would meet the previous run's TIME_WAIT
         * pairs toward the same server (EADDRNOTAVAIL at connect): start where the seed
         * says, the same for every thread so they stay interleaved. */
        t->port_cursor = (o->seed * 0x9e3779b97f4a7c15ull >> 32) % LG_PORTS;
        tw_wheel_init(&t->wheel, 0, on_timer, t);
        t->slow_rcvbuf = (int)o->slow_rcvbuf;
        /* BIND (6.11) is the newest piece of the chain: with it come socket-direct (5.19)
         * and URING_CMD setsockopt (6.7). */
        t->chain = tw_ring_has_op(&t->ring, TW_IORING_OP_BIND);
        if (t->chain) {
                t->bind_addr = calloc(t->ring.sq.ring_entries, sizeof(*t->bind_addr));
                if (!t->bind_addr)
                        t->chain = false;
        }
        return 0;
}

static void *thread_main(void *arg)
{
        lg_thread *t = arg;
        lg_engine *e = t->eng;
        const lg_opts *o = e->o;
        bool has_event = lg_scenario_has_event(o);
        bool has_resume = o->scenario == LG_SC_SLOW;

        t->err = thread_setup(t);
        if (t->err < 0)
                return NULL;
        t->now_us = lg_engine_now_us(e);
        for (uint32_t k = t->nconns; k < t->nslots; k++)
                start_connect(t, &t->conns[k]);
        for (;;) {
                struct __kernel_timespec ts;
                struct io_uring_cqe *cqe;
                unsigned head, seen = 0;
                uint64_t wake_us, next;

                t->now_us = lg_engine_now_us(e);
                wake_us = t->now_us + LG_POLL_MS * 1000;
                next = tw_wheel_next_expiry(&t->wheel);
                if (next != UINT64_MAX && (t->wheel.now + next) * 1000 < wake_us)
                        wake_us = (t->wheel.now + next) * 1000;
                if (t->next_start < t->nconns && t->connecting < LG_CONNECTING_MAX &&
                    ramp_due_us(t, t->next_start) < wake_us)
                        wake_us = ramp_due_us(t, t->next_start);
                if (has_event && !t->event_done && o->event_at_ms * 1000 < wake_us)
                        wake_us = o->event_at_ms * 1000;
                if (has_resume && !t->resume_done && o->resume_at_ms * 1000 < wake_us)
                        wake_us = o->resume_at_ms * 1000;
                wake_us = wake_us > t->now_us ? wake_us - t->now_us : 0;
                ts.tv_sec = (long long)(wake_us / 1000000);
                ts.tv_nsec = (long long)(wake_us % 1000000) * 1000;
                io_uring_submit_and_wait_timeout(&t->ring, &cqe, 1, &ts, NULL);

                t->now_us = lg_engine_now_us(e);
                io_uring_for_each_cqe(&t->ring, head, cqe)
                {
                        dispatch(t, cqe);
                        seen++;
                }
                io_uring_cq_advance(&t->ring, seen);
                tw_wheel_advance(&t->wheel, t->now_us / 1000);
                if (atomic_load_explicit(&e->stop, memory_order_acquire))
                        break;
                ramp(t);
                if (has_event && !t->event_done && t->now_us >= o->event_at_ms * 1000)
                        fire_event(t);
                if (has_resume && !t->resume_done && t->now_us >= o->resume_at_ms * 1000)
                        resume_paused(t);
                tw_bufring_publish(&t->bufs);
        }
        /* Tearing the ring down closes every slot: the server sees FINs. */
        io_uring_submit(&t->ring);
        if (t->ssl)
                tw_tls_thread_done();
        return NULL;
}

/* ---- start / stop ---- */

uint64_t lg_engine_now_us(const lg_engine *e)
{
        return tw_now_us() - e->t0_us;
}

/* One thread's share of the clients and publishers, and its tables. */
static int thread_alloc(lg_engine *e, lg_thread *t, unsigned i)
{
        const lg_opts *o = e->o;
        unsigned n = e->nthreads;
        uint32_t npub = 0;

        t->eng = e;
        t->idx = i;
        t->nconns = o->connections / n + (i < o->connections % n);
        /* Publisher j lives on thread j % n. */
        if (lg_opts_pubsub(o) && o->publish_rate > 0)
                npub = o->publishers / n + (i < o->publishers % n);
        t->conns = calloc(t->nconns + npub, sizeof(lg_conn));
        if (!t->conns)
                return -ENOMEM;
        t->nslots = t->nconns + npub;
        if (tw_table_init(&t->slots, t->nslots) < 0)
                return -ENOMEM;
        /* A fresh table hands out 0, 1, 2, ...: conns[k] is slot k for the whole run. */
        for (uint32_t k = 0; k < t->nslots; k++)
                (void)tw_table_take(&t->slots);
        if (lg_opts_pubsub(o)) {
                t->subs = calloc(t->nconns ? t->nconns : 1, sizeof(lg_sub));
                t->pubs = calloc(npub ? npub : 1, sizeof(lg_pub));
                if (!t->subs || !t->pubs)
                        return -ENOMEM;
                for (uint32_t k = 0; k < npub; k++)
                        t->pubs[k].index = i + k * n;
        }
        if (o->tls && !(t->ssl = calloc(t->nslots, sizeof(WOLFSSL *))))
                return -ENOMEM;
        lg_hist_init(&t->latency_us);
        lg_hist_init(&t->handshake_us);
        lg_hist_init(&t->close_us);
        lg_hist_init(&t->e2e_us);
        return 0;
}

int lg_engine_start(lg_engine *e, const lg_opts *o)
{
        unsigned n = o->threads ? o->threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
        struct rlimit rl;
        uint32_t per_max = LG_MAX_PER_THREAD;
        int ret;

        memset(e, 0, sizeof(*e));
        e->o = o;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)per_max + 100)
                per_max = rl.rlim_cur > 200 ? (uint32_t)rl.rlim_cur - 100 : 100;
        if (n == 0)
                n = 1;
        if ((uint64_t)n * per_max < o->connections) {
                unsigned need = (unsigned)((o->connections + per_max - 1) / per_max);

                fprintf(stderr,
                        "tickwire-loadgen: %u connections need %u rings of at most %u "
                        "(fixed-file table); using %u threads\n",
                        o->connections, need, per_max, need);
                n = need;
        }
        if (n > o->connections)
                n = o->connections;
        e->nthreads = n;
        e->threads = calloc(n, sizeof(lg_thread));
        if (!e->threads)
                return -ENOMEM;
        if (lg_opts_pubsub(o) && lg_market_init(&e->mkt, o) < 0)
                return -ENOMEM;
        if (o->tls) {
                char err[256];

                e->tls = tw_tls_client_ctx(o->ca_file, o->insecure, err, sizeof(err));
                if (!e->tls) {
                        fprintf(stderr, "tickwire-loadgen: --tls: %s\n", err);
                        return -EINVAL;
                }
        }
        e->t0_us = tw_now_us();
        for (unsigned i = 0; i < n; i++)
                if ((ret = thread_alloc(e, &e->threads[i], i)) < 0)
                        return ret;
        for (unsigned i = 0; i < n; i++) {
                ret = pthread_create(&e->threads[i].thread, NULL, thread_main, &e->threads[i]);
                if (ret) {
                        fprintf(stderr, "tickwire-loadgen: pthread_create: %s\n", strerror(ret));
                        atomic_store(&e->stop, 1);
                        for (unsigned k = 0; k < i; k++)
                                pthread_join(e->threads[k].thread, NULL);
                        e->nthreads = i;
                        return -ret;
                }
        }
        return 0;
}

void lg_engine_stop(lg_engine *e)
{
        atomic_store_explicit(&e->stop, 1, memory_order_release);
}

void lg_engine_join(lg_engine *e)
{
        for (unsigned i = 0; i < e->nthreads; i++) {
                lg_thread *t = &e->threads[i];

                pthread_join(t->thread, NULL);
                if (t->err == 0) {
                        tw_bufring_free(&t->ring, &t->bufs);
                        tw_wheel_free(&t->wheel);
                        io_uring_queue_exit(&t->ring);
                }
        }
}

void lg_engine_free(lg_engine *e)
{
        for (unsigned i = 0; i < e->nthreads; i++) {
                lg_thread *t = &e->threads[i];

                for (uint32_t k = 0; k < t->nslots; k++) {
                        free(t->conns[k].hs);
                        free(t->conns[k].rd);
                        out_free(&t->conns[k]);
                        if (t->ssl && t->ssl[k])
                                wolfSSL_free(t->ssl[k]);
                        if (t->subs && k < t->nconns)
                                free(t->subs[k].head);
                        if (t->pubs && k >= t->nconns)
                                free(t->pubs[k - t->nconns].rbuf);
                }
                free(t->conns);
                tw_table_free(&t->slots);
                free(t->subs);
                free(t->pubs);
                free(t->ssl);
                free(t->power);
                free(t->events);
                free(t->bind_addr);
                lg_samples_free(&t->detect_ms);
                lg_samples_free(&t->dead_ms);
        }
        free(e->threads);
        e->threads = NULL;
        lg_market_free(&e->mkt);
        tw_tls_ctx_free(e->tls);
        e->tls = NULL;
}

void lg_engine_per_target(const lg_engine *e, uint64_t *est, uint64_t *open, uint64_t *moved)
{
        unsigned n = e->o->ntargets;

        memset(est, 0, n * sizeof(*est));
        memset(open, 0, n * sizeof(*open));
        memset(moved, 0, n * sizeof(*moved));
        for (unsigned i = 0; i < e->nthreads; i++) {
                const lg_thread *t = &e->threads[i];

                for (unsigned k = 0; k < n; k++) {
                        est[k] += t->est_target[k];
                        moved[k] += t->moved_target[k];
                }
                for (uint32_t k = 0; k < t->nconns; k++)
                        if (t->conns[k].state == LG_OPEN || t->conns[k].state == LG_PAUSED)
                                open[t->conns[k].tgt]++;
        }
}

void lg_engine_sum(const lg_engine *e, lg_counters *out)
{
        tw_counter *dst = (tw_counter *)out;
        size_t n = sizeof(*out) / sizeof(tw_counter);

        memset(out, 0, sizeof(*out));
        for (unsigned i = 0; i < e->nthreads; i++) {
                const tw_counter *src = (const tw_counter *)&e->threads[i].c;

                for (size_t k = 0; k < n; k++)
                        atomic_store_explicit(
                            &dst[k],
                            atomic_load_explicit(&dst[k], memory_order_relaxed) +
                                atomic_load_explicit(&src[k], memory_order_relaxed),
                            memory_order_relaxed);
        }
}
