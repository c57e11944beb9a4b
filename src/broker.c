/*
 * The Redis client: two connections, one state.
 *
 * Each connection has an output buffer that commands are appended to and a second one
 * that the kernel is sending (swapped when a send completes: a buffer is never grown
 * while a send reads it), a fixed receive buffer fed to a hiredis reader, and one recv
 * in flight. The command connection's replies come in the order of the commands, so
 * callbacks wait in a FIFO with the time each command was queued (the round trip).
 *
 * Either connection failing takes the broker down as a whole: both sockets are closed
 * (their operations cancelled), every waiting callback gets NULL, `down` is reported,
 * and a timeout brings the next attempt: 50 ms, doubling to 2 s, with full jitter. A
 * connection's completions carry its incarnation in the tag, so those of a socket that
 * was closed are recognised and dropped.
 */
#include "tickwire/broker.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "tickwire/metrics.h"
#include "tickwire/ring.h"

#define RECV_BUF    (64 * 1024)
#define BACKOFF_MIN 50
#define BACKOFF_MAX 2000
#define ID_TTL_S    "300" /* DESIGN 5: a repeated publish id is recognised for 5 minutes */

/* KEYS: meta, hist[, id]. ARGV: data, maxlen, channel, id ttl, epoch if new, PUBLISH or
 * SPUBLISH. Returns {seq, epoch, duplicate}. */
static const char SCRIPT_PUBLISH[] =
    "local meta, hist, idk = KEYS[1], KEYS[2], KEYS[3]\n"
    "if idk then\n"
    "  local s = redis.call('GET', idk)\n"
    "  if s then return {tonumber(s), redis.call('HGET', meta, 'epoch') or '', 1} end\n"
    "end\n"
    "local e = redis.call('HGET', meta, 'epoch')\n"
    "if not e then e = ARGV[5]; redis.call('HSET', meta, 'epoch', e) end\n"
    "local s = redis.call('HINCRBY', meta, 'seq', 1)\n"
    "redis.call('XADD', hist, 'MAXLEN', ARGV[2], s .. '-0', 'd', ARGV[1])\n"
    "if idk then redis.call('SET', idk, s, 'EX', ARGV[4]) end\n"
    "redis.call(ARGV[6], ARGV[3], e .. ' ' .. s .. ' ' .. ARGV[1])\n"
    "return {s, e, 0}\n";

/* KEYS: meta, hist. ARGV: first seq wanted, epoch if new, count. Returns
 * {epoch, seq, XRANGE from that seq}. Creates the epoch, so a topic subscribed to before
 * its first publish has one too. */
static const char SCRIPT_LOAD[] =
    "local e = redis.call('HGET', KEYS[1], 'epoch')\n"
    "if not e then e = ARGV[2]; redis.call('HSET', KEYS[1], 'epoch', e, 'seq', 0) end\n"
    "local s = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')\n"
    "return {e, s, redis.call('XRANGE', KEYS[2], ARGV[1] .. '-0', '+', 'COUNT', ARGV[3])}\n";

const char *const tw_broker_scripts[TW_SCRIPT__COUNT] = {SCRIPT_PUBLISH, SCRIPT_LOAD};

enum { CONN_CMD, CONN_SUB, NCONN };
enum link_state { L_DOWN, L_CONNECTING, L_UP };
enum { OP_CONNECT, OP_RECV, OP_SEND, OP_TIMER }; /* tag = op | conn << 4 | incarnation << 8 */

struct buf {
        char *p;
        size_t n, cap;
};

struct link {
        int fd;
        uint8_t state;
        bool sending;
        uint32_t inc; /* incarnation: tags of older sockets are dropped */
        struct buf out, flight;
        size_t flight_off;
        redisReader *rd;
        char *rbuf;
};

struct waiter {
        tw_broker_reply_fn fn;
        void *arg;
        uint64_t t_us;
};

struct tw_broker {
        tw_worker *w;
        int io; /* handler id */
        tw_broker_events ev;
        void *arg;
        struct sockaddr_storage addr;
        socklen_t addrlen;
        uint16_t db;
        struct link l[NCONN];
        struct waiter *q; /* FIFO ring of callbacks on the command connection */
        uint32_t qhead, qn, qcap;
        _Atomic int up;
        bool reported_down;
        uint64_t backoff_ms;
        uint64_t rng;
        char sha[TW_SCRIPT__COUNT][41];
};

static uint64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint32_t tag(int op, int k, uint32_t inc)
{
        return (uint32_t)op | (uint32_t)k << 4 | inc << 8;
}

static int buf_put(struct buf *b, const void *p, size_t n)
{
        if (b->n + n > b->cap) {
                size_t cap = b->cap ? b->cap : 4096;
                char *q;

                while (cap < b->n + n)
                        cap *= 2;
                q = realloc(b->p, cap);
                if (!q)
                        return -ENOMEM;
                b->p = q;
                b->cap = cap;
        }
        memcpy(b->p + b->n, p, n);
        b->n += n;
        return 0;
}

static void sha1_hex(const char *text, char out[41])
{
        unsigned char h[20];

        wc_ShaHash((const unsigned char *)text, (unsigned)strlen(text), h);
        for (int i = 0; i < 20; i++)
                snprintf(out + 2 * i, 3, "%02x", h[i]);
}

tw_broker *tw_broker_new(const tw_config *cfg, const tw_broker_events *ev, void *arg)
{
        tw_broker *b = calloc(1, sizeof(*b));
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
        char port[8];
        int rc;

        if (!b)
                return NULL;
        snprintf(port, sizeof port, "%u", cfg->broker.hosts[0].port);
        rc = getaddrinfo(cfg->broker.hosts[0].host, port, &hints, &ai);
        if (rc != 0 || !ai) {
                fprintf(stderr, "tickwire: --broker: cannot resolve %s: %s\n",
                        cfg->broker.hosts[0].host, gai_strerror(rc));
                free(b);
                return NULL;
        }
        memcpy(&b->addr, ai->ai_addr, ai->ai_addrlen);
        b->addrlen = ai->ai_addrlen;
        freeaddrinfo(ai);
        b->db = cfg->broker.db;
        b->ev = *ev;
        b->arg = arg;
        b->rng = now_us() | 1;
        for (int k = 0; k < NCONN; k++)
                b->l[k].fd = -1;
        for (int i = 0; i < TW_SCRIPT__COUNT; i++)
                sha1_hex(tw_broker_scripts[i], b->sha[i]);
        return b;
}

bool tw_broker_is_up(const tw_broker *b)
{
        return b && atomic_load_explicit(&b->up, memory_order_acquire);
}

/* ---- sending ---- */

static void link_flush(tw_broker *b, int k)
{
        struct link *l = &b->l[k];
        struct buf t;

        if (l->sending || l->state == L_DOWN || l->fd < 0)
                return;
        if (l->flight_off == l->flight.n) {
                if (l->out.n == 0)
                        return;
                t = l->flight;
                l->flight = l->out;
                l->out = t;
                l->out.n = 0;
                l->flight_off = 0;
        }
        l->sending = true;
        tw_worker_io_send(b->w, b->io, tag(OP_SEND, k, l->inc), l->fd, l->flight.p + l->flight_off,
                          l->flight.n - l->flight_off);
}

static int link_put(tw_broker *b, int k, int argc, const char **argv, const size_t *lens)
{
        char *cmd;
        int n = redisFormatCommandArgv(&cmd, argc, argv, lens);
        int rc;

        if (n < 0)
                return -ENOMEM;
        rc = buf_put(&b->l[k].out, cmd, (size_t)n);
        free(cmd);
        return rc;
}

static int waiter_push(tw_broker *b, tw_broker_reply_fn fn, void *arg)
{
        if (b->qn == b->qcap) {
                uint32_t cap = b->qcap ? b->qcap * 2 : 64;
                struct waiter *q = malloc(cap * sizeof(*q));

                if (!q)
                        return -ENOMEM;
                for (uint32_t i = 0; i < b->qn; i++)
                        q[i] = b->q[(b->qhead + i) % b->qcap];
                free(b->q);
                b->q = q;
                b->qcap = cap;
                b->qhead = 0;
        }
        b->q[(b->qhead + b->qn++) % b->qcap] = (struct waiter){fn, arg, now_us()};
        return 0;
}

/* A command whose reply nobody waits for (SELECT, SCRIPT LOAD) still takes its place
 * in the FIFO. */
static void ignore_reply(tw_worker *w, void *arg, struct redisReply *r)
{
        (void)w;
        (void)arg;
        (void)r;
}

static int command_raw(tw_broker *b, int argc, const char **argv, const size_t *lens,
                       tw_broker_reply_fn fn, void *arg)
{
        size_t before = b->l[CONN_CMD].out.n;

        if (link_put(b, CONN_CMD, argc, argv, lens) < 0)
                return -ENOMEM;
        if (waiter_push(b, fn, arg) < 0) {
                b->l[CONN_CMD].out.n = before;
                return -ENOMEM;
        }
        link_flush(b, CONN_CMD);
        return 0;
}

int tw_broker_command(tw_broker *b, int argc, const char **argv, const size_t *lens,
                      tw_broker_reply_fn fn, void *arg)
{
        if (!tw_broker_is_up(b))
                return -ENOTCONN;
        return command_raw(b, argc, argv, lens, fn, arg);
}

int tw_broker_script(tw_broker *b, enum tw_broker_script which, int nkeys, int nargs,
                     const char **argv, const size_t *lens, tw_broker_reply_fn fn, void *arg)
{
        int argc = 3 + nkeys + nargs;
        const char *a[argc];
        size_t n[argc];
        char nk[12];

        snprintf(nk, sizeof nk, "%d", nkeys);
        a[0] = "EVALSHA";
        n[0] = 7;
        a[1] = b->sha[which];
        n[1] = 40;
        a[2] = nk;
        n[2] = strlen(nk);
        for (int i = 0; i < nkeys + nargs; i++) {
                a[3 + i] = argv[i];
                n[3 + i] = lens[i];
        }
        return tw_broker_command(b, argc, a, n, fn, arg);
}

static void sub_command(tw_broker *b, const char *verb, tw_span channel)
{
        const char *a[2] = {verb, channel.p};
        size_t n[2] = {strlen(verb), channel.n};

        if (b->l[CONN_SUB].state != L_UP || !tw_broker_is_up(b))
                return;
        if (link_put(b, CONN_SUB, 2, a, n) == 0)
                link_flush(b, CONN_SUB);
}

void tw_broker_subscribe(tw_broker *b, tw_span channel)
{
        sub_command(b, "SUBSCRIBE", channel);
}

void tw_broker_unsubscribe(tw_broker *b, tw_span channel)
{
        sub_command(b, "UNSUBSCRIBE", channel);
}

/* ---- connection life ---- */

static void link_close(tw_broker *b, int k)
{
        struct link *l = &b->l[k];

        if (l->fd >= 0) {
                tw_worker_io_cancel_fd(b->w, l->fd);
                /* The cancel is queued before the close in the same submission; the
                 * kernel holds its own file reference for requests still running. */
                close(l->fd);
        }
        l->fd = -1;
        l->state = L_DOWN;
        l->sending = false;
        l->inc++;
        l->out.n = 0;
        l->flight.n = 0;
        l->flight_off = 0;
        if (l->rd)
                redisReaderFree(l->rd);
        l->rd = NULL;
}

static void schedule_retry(tw_broker *b)
{
        uint64_t d;

        b->backoff_ms = b->backoff_ms ? b->backoff_ms * 2 : BACKOFF_MIN;
        if (b->backoff_ms > BACKOFF_MAX)
                b->backoff_ms = BACKOFF_MAX;
        b->rng ^= b->rng << 13;
        b->rng ^= b->rng >> 7;
        b->rng ^= b->rng << 17;
        d = BACKOFF_MIN / 2 + b->rng % b->backoff_ms; /* full jitter, never a busy loop */
        tw_worker_io_timeout(b->w, b->io, tag(OP_TIMER, 0, 0), d);
}

/* Takes the broker down: both links closed, waiters failed, `down` told once. */
static void fail(tw_broker *b, const char *why)
{
        bool was_up = atomic_exchange_explicit(&b->up, 0, memory_order_acq_rel);

        if (b->l[CONN_CMD].state == L_DOWN && b->l[CONN_SUB].state == L_DOWN)
                return; /* already down, a retry is scheduled */
        if (was_up || !b->reported_down)
                fprintf(stderr, "tickwire: broker: %s; reconnecting\n", why);
        for (int k = 0; k < NCONN; k++)
                link_close(b, k);
        while (b->qn) {
                struct waiter wt = b->q[b->qhead];

                b->qhead = (b->qhead + 1) % b->qcap;
                b->qn--;
                wt.fn(b->w, wt.arg, NULL);
        }
        if (was_up || !b->reported_down) {
                b->reported_down = true;
                if (was_up)
                        TW_DEC(tw_worker_metrics(b->w)->broker_up);
                if (b->ev.down)
                        b->ev.down(b->w, b->arg);
        }
        schedule_retry(b);
}

static void link_connect(tw_broker *b, int k)
{
        struct link *l = &b->l[k];

        l->fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (l->fd < 0) {
                fail(b, "socket failed");
                return;
        }
        l->rd = redisReaderCreate();
        l->rbuf = l->rbuf ? l->rbuf : malloc(RECV_BUF);
        if (!l->rd || !l->rbuf) {
                fail(b, "out of memory");
                return;
        }
        l->state = L_CONNECTING;
        tw_worker_io_connect(b->w, b->io, tag(OP_CONNECT, k, l->inc), l->fd,
                             (const struct sockaddr *)&b->addr, b->addrlen);
}

static void try_connect(tw_broker *b)
{
        for (int k = 0; k < NCONN; k++)
                link_connect(b, k);
}

/* Both links connected: select the database, load the scripts (their replies are
 * ignored: a failure shows in the first EVALSHA), then we are up. */
static void link_ready(tw_broker *b, int k)
{
        struct link *l = &b->l[k];

        l->state = L_UP;
        tw_worker_io_recv(b->w, b->io, tag(OP_RECV, k, l->inc), l->fd, l->rbuf, RECV_BUF);
        if (b->l[CONN_CMD].state != L_UP || b->l[CONN_SUB].state != L_UP)
                return;
        if (b->db) {
                char db[8];
                const char *a[2] = {"SELECT", db};
                size_t n[2] = {6, 0};

                n[1] = (size_t)snprintf(db, sizeof db, "%u", b->db);
                command_raw(b, 2, a, n, ignore_reply, NULL);
                link_put(b, CONN_SUB, 2, a, n); /* its reply is read as a non-push */
                link_flush(b, CONN_SUB);
        }
        for (int i = 0; i < TW_SCRIPT__COUNT; i++) {
                const char *a[3] = {"SCRIPT", "LOAD", tw_broker_scripts[i]};
                size_t n[3] = {6, 4, strlen(tw_broker_scripts[i])};

                command_raw(b, 3, a, n, ignore_reply, NULL);
        }
        b->backoff_ms = 0;
        b->reported_down = false;
        atomic_store_explicit(&b->up, 1, memory_order_release);
        TW_INC(tw_worker_metrics(b->w)->broker_up);
        fprintf(stderr, "tickwire: broker: connected\n");
        if (b->ev.up)
                b->ev.up(b->w, b->arg);
}

/* ---- replies ---- */

static void on_reply(tw_broker *b, struct redisReply *r)
{
        struct waiter wt;

        if (b->qn == 0) {
                fail(b, "a reply nobody asked for");
                return;
        }
        wt = b->q[b->qhead];
        b->qhead = (b->qhead + 1) % b->qcap;
        b->qn--;
        if (wt.fn != ignore_reply)
                tw_histogram_observe_rtt(&tw_worker_metrics(b->w)->broker_rtt, now_us() - wt.t_us);
        wt.fn(b->w, wt.arg, r);
}

static tw_span el(const struct redisReply *r, size_t i)
{
        const struct redisReply *e = r->element[i];

        return (tw_span){e->str, e->len};
}

static void on_push(tw_broker *b, struct redisReply *r)
{
        tw_span kind;

        if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
                return; /* SELECT's +OK, or something we do not use */
        kind = el(r, 0);
        if ((kind.n == 7 && !memcmp(kind.p, "message", 7)) ||
            (kind.n == 8 && !memcmp(kind.p, "smessage", 8))) {
                if (r->element[2]->type == REDIS_REPLY_STRING && b->ev.message)
                        b->ev.message(b->w, b->arg, el(r, 1), el(r, 2));
        } else if ((kind.n == 9 && !memcmp(kind.p, "subscribe", 9)) ||
                   (kind.n == 10 && !memcmp(kind.p, "ssubscribe", 10))) {
                if (b->ev.subscribed)
                        b->ev.subscribed(b->w, b->arg, el(r, 1));
        }
}

static void on_recv(tw_broker *b, int k, int res)
{
        struct link *l = &b->l[k];
        void *reply;

        if (res <= 0) {
                fail(b, res == 0 ? "Redis closed the connection" : strerror(-res));
                return;
        }
        if (redisReaderFeed(l->rd, l->rbuf, (size_t)res) != REDIS_OK) {
                fail(b, "unreadable reply");
                return;
        }
        for (;;) {
                uint32_t inc = l->inc;

                if (redisReaderGetReply(l->rd, &reply) != REDIS_OK) {
                        fail(b, "unreadable reply");
                        return;
                }
                if (!reply)
                        break;
                if (k == CONN_CMD)
                        on_reply(b, reply);
                else
                        on_push(b, reply);
                freeReplyObject(reply);
                if (l->inc != inc)
                        return; /* a callback took the broker down */
        }
        tw_worker_io_recv(b->w, b->io, tag(OP_RECV, k, l->inc), l->fd, l->rbuf, RECV_BUF);
}

static void on_io(tw_worker *w, void *arg, uint32_t t, int res)
{
        tw_broker *b = arg;
        int op = (int)(t & 15), k = (int)((t >> 4) & 15);
        uint32_t inc = t >> 8;

        (void)w;
        if (op == OP_TIMER) {
                if (b->l[CONN_CMD].state == L_DOWN && b->l[CONN_SUB].state == L_DOWN) {
                        TW_INC(tw_worker_metrics(b->w)->broker_reconnects);
                        try_connect(b);
                }
                return;
        }
        if (k >= NCONN || (inc & 0xffffffu) != (b->l[k].inc & 0xffffffu) || b->l[k].state == L_DOWN)
                return; /* a closed socket's completion */
        switch (op) {
        case OP_CONNECT:
                if (res < 0)
                        fail(b, strerror(-res));
                else
                        link_ready(b, k);
                break;
        case OP_RECV:
                on_recv(b, k, res);
                break;
        case OP_SEND:
                b->l[k].sending = false;
                if (res <= 0) {
                        fail(b, res == 0 ? "send wrote nothing" : strerror(-res));
                        break;
                }
                b->l[k].flight_off += (size_t)res;
                link_flush(b, k);
                break;
        default:
                break;
        }
}

void tw_broker_start(tw_broker *b, tw_worker *w)
{
        b->w = w;
        b->io = tw_worker_io_open(w, on_io, b);
        if (b->io < 0) {
                fprintf(stderr, "tickwire: broker: no I/O handler left\n");
                return;
        }
        try_connect(b);
}

void tw_broker_free(tw_broker *b)
{
        if (!b)
                return;
        for (int k = 0; k < NCONN; k++) {
                if (b->l[k].fd >= 0)
                        close(b->l[k].fd);
                if (b->l[k].rd)
                        redisReaderFree(b->l[k].rd);
                free(b->l[k].rbuf);
                free(b->l[k].out.p);
                free(b->l[k].flight.p);
        }
        free(b->q);
        free(b);
}
