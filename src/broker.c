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
 *
 * Redis Cluster (redis-cluster://): the broker first asks a seed for CLUSTER SLOTS, then
 * keeps a command and a pub/sub connection to every master and the map slot -> master. A
 * topic's keys and channel share the hash tag {T}, so one slot, one master: its commands,
 * its SSUBSCRIBE and (inside the script) its SPUBLISH all go there. A MOVED reply means
 * the map is stale: the broker goes down and comes back with a fresh map (the command is
 * failed; its caller sees `unavailable` or backfills, as for any loss).
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

/* KEYS: meta, hist. ARGV: first seq wanted (0: the newest `count`), epoch if new, count.
 * Returns {epoch, seq, entries in seq order}. Creates the epoch, so a topic subscribed to
 * before its first publish has one too. */
static const char SCRIPT_LOAD[] =
    "local e = redis.call('HGET', KEYS[1], 'epoch')\n"
    "if not e then e = ARGV[2]; redis.call('HSET', KEYS[1], 'epoch', e, 'seq', 0) end\n"
    "local s = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')\n"
    "local r\n"
    "if ARGV[1] == '0' then\n"
    "  r = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[3])\n"
    "  local n = #r\n"
    "  for i = 1, math.floor(n / 2) do r[i], r[n - i + 1] = r[n - i + 1], r[i] end\n"
    "else\n"
    "  r = redis.call('XRANGE', KEYS[2], ARGV[1] .. '-0', '+', 'COUNT', ARGV[3])\n"
    "end\n"
    "return {e, s, r}\n";

const char *const tw_broker_scripts[TW_SCRIPT__COUNT] = {SCRIPT_PUBLISH, SCRIPT_LOAD};

enum { CONN_CMD, CONN_SUB, NCONN };
enum link_state { L_DOWN, L_CONNECTING, L_UP };
/* tag = op | link << 3 | incarnation << 8; link = shard * NCONN + connection */
enum { OP_CONNECT, OP_RECV, OP_SEND, OP_TIMER };
#define MAX_SHARDS 16
#define NSLOTS     16384

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

/* One Redis server: the standalone one, the cluster seed while the map is fetched, or a
 * cluster master. */
struct shard {
        struct sockaddr_storage addr;
        socklen_t addrlen;
        struct link l[NCONN];
        struct waiter *q; /* FIFO ring of callbacks on the command connection */
        uint32_t qhead, qn, qcap;
};

struct tw_broker {
        tw_worker *w;
        int io; /* handler id */
        tw_broker_events ev;
        void *arg;
        bool cluster;
        bool mapped; /* cluster: the slot map is known and the masters are the shards */
        uint16_t db;
        struct sockaddr_storage seed[TW_BROKER_MAX_HOSTS];
        socklen_t seedlen[TW_BROKER_MAX_HOSTS];
        unsigned nseeds, next_seed;
        struct shard sh[MAX_SHARDS];
        unsigned nshards;
        uint8_t *slot_shard; /* [NSLOTS], cluster */
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

static uint32_t tag(int op, unsigned link, uint32_t inc)
{
        return (uint32_t)op | (uint32_t)link << 3 | inc << 8;
}

/* ---- Redis Cluster's key slots ---- */

/* CRC16-CCITT (XMODEM), the checksum Redis Cluster maps keys with. */
static uint16_t crc16(const char *p, size_t n)
{
        uint16_t crc = 0;

        for (size_t i = 0; i < n; i++) {
                crc ^= (uint16_t)((uint8_t)p[i] << 8);
                for (int b = 0; b < 8; b++)
                        crc = crc & 0x8000 ? (uint16_t)(crc << 1 ^ 0x1021) : (uint16_t)(crc << 1);
        }
        return crc;
}

unsigned tw_broker_slot(tw_span key)
{
        const char *open = memchr(key.p, '{', key.n), *close;

        if (open) {
                close = memchr(open + 1, '}', key.n - (size_t)(open + 1 - key.p));
                if (close && close > open + 1)
                        return crc16(open + 1, (size_t)(close - open - 1)) & (NSLOTS - 1);
        }
        return crc16(key.p, key.n) & (NSLOTS - 1);
}

/* The shard a key's commands go to. */
static struct shard *shard_of(tw_broker *b, tw_span key)
{
        if (!b->cluster || !b->mapped)
                return &b->sh[0];
        return &b->sh[b->slot_shard[tw_broker_slot(key)]];
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

        if (!b)
                return NULL;
        for (unsigned i = 0; i < cfg->broker.nhosts; i++) {
                struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
                char port[8];
                int rc;

                snprintf(port, sizeof port, "%u", cfg->broker.hosts[i].port);
                rc = getaddrinfo(cfg->broker.hosts[i].host, port, &hints, &ai);
                if (rc != 0 || !ai) {
                        fprintf(stderr, "tickwire: --broker: cannot resolve %s: %s\n",
                                cfg->broker.hosts[i].host, gai_strerror(rc));
                        free(b);
                        return NULL;
                }
                memcpy(&b->seed[i], ai->ai_addr, ai->ai_addrlen);
                b->seedlen[i] = ai->ai_addrlen;
                freeaddrinfo(ai);
        }
        b->nseeds = cfg->broker.nhosts;
        b->cluster = cfg->broker.kind == TW_BROKER_CLUSTER;
        if (b->cluster && !(b->slot_shard = calloc(NSLOTS, 1))) {
                free(b);
                return NULL;
        }
        b->db = cfg->broker.db;
        b->ev = *ev;
        b->arg = arg;
        b->rng = now_us() | 1;
        for (unsigned i = 0; i < MAX_SHARDS; i++)
                for (int k = 0; k < NCONN; k++)
                        b->sh[i].l[k].fd = -1;
        for (int i = 0; i < TW_SCRIPT__COUNT; i++)
                sha1_hex(tw_broker_scripts[i], b->sha[i]);
        return b;
}

bool tw_broker_is_up(const tw_broker *b)
{
        return b && atomic_load_explicit(&b->up, memory_order_acquire);
}

/* ---- sending ---- */

static struct link *link_at(tw_broker *b, unsigned li)
{
        return &b->sh[li / NCONN].l[li % NCONN];
}

static void link_flush(tw_broker *b, unsigned li)
{
        struct link *l = link_at(b, li);
        struct buf t;

        if (l->sending || l->state != L_UP || l->fd < 0)
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
        tw_worker_io_send(b->w, b->io, tag(OP_SEND, li, l->inc), l->fd, l->flight.p + l->flight_off,
                          l->flight.n - l->flight_off);
}

static int link_put(struct link *l, int argc, const char **argv, const size_t *lens)
{
        char *cmd;
        int n = redisFormatCommandArgv(&cmd, argc, argv, lens);
        int rc;

        if (n < 0)
                return -ENOMEM;
        rc = buf_put(&l->out, cmd, (size_t)n);
        free(cmd);
        return rc;
}

static int waiter_push(struct shard *s, tw_broker_reply_fn fn, void *arg)
{
        if (s->qn == s->qcap) {
                uint32_t cap = s->qcap ? s->qcap * 2 : 64;
                struct waiter *q = malloc(cap * sizeof(*q));

                if (!q)
                        return -ENOMEM;
                for (uint32_t i = 0; i < s->qn; i++)
                        q[i] = s->q[(s->qhead + i) % s->qcap];
                free(s->q);
                s->q = q;
                s->qcap = cap;
                s->qhead = 0;
        }
        s->q[(s->qhead + s->qn++) % s->qcap] = (struct waiter){fn, arg, now_us()};
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

static int command_on(tw_broker *b, struct shard *s, int argc, const char **argv,
                      const size_t *lens, tw_broker_reply_fn fn, void *arg)
{
        struct link *l = &s->l[CONN_CMD];
        size_t before = l->out.n;

        if (link_put(l, argc, argv, lens) < 0)
                return -ENOMEM;
        if (waiter_push(s, fn, arg) < 0) {
                l->out.n = before;
                return -ENOMEM;
        }
        link_flush(b, (unsigned)(s - b->sh) * NCONN + CONN_CMD);
        return 0;
}

int tw_broker_command(tw_broker *b, int argc, const char **argv, const size_t *lens,
                      tw_broker_reply_fn fn, void *arg)
{
        if (!tw_broker_is_up(b))
                return -ENOTCONN;
        /* The first key names the shard (argv[1]: most commands' key). */
        return command_on(b, shard_of(b, (tw_span){argv[argc > 1], lens[argc > 1]}), argc, argv,
                          lens, fn, arg);
}

int tw_broker_script(tw_broker *b, enum tw_broker_script which, int nkeys, int nargs,
                     const char **argv, const size_t *lens, tw_broker_reply_fn fn, void *arg)
{
        int argc = 3 + nkeys + nargs;
        const char *a[argc];
        size_t n[argc];
        char nk[12];

        if (!tw_broker_is_up(b))
                return -ENOTCONN;
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
        return command_on(b, shard_of(b, (tw_span){argv[0], lens[0]}), argc, a, n, fn, arg);
}

const char *tw_broker_publish_verb(const tw_broker *b)
{
        return b->cluster ? "SPUBLISH" : "PUBLISH";
}

static void sub_command(tw_broker *b, bool on, tw_span channel)
{
        const char *verb =
            b->cluster ? (on ? "SSUBSCRIBE" : "SUNSUBSCRIBE") : (on ? "SUBSCRIBE" : "UNSUBSCRIBE");
        const char *a[2] = {verb, channel.p};
        size_t n[2] = {strlen(verb), channel.n};
        struct shard *s;

        if (!tw_broker_is_up(b))
                return;
        s = shard_of(b, channel);
        if (s->l[CONN_SUB].state == L_UP && link_put(&s->l[CONN_SUB], 2, a, n) == 0)
                link_flush(b, (unsigned)(s - b->sh) * NCONN + CONN_SUB);
}

void tw_broker_subscribe(tw_broker *b, tw_span channel)
{
        sub_command(b, true, channel);
}

void tw_broker_unsubscribe(tw_broker *b, tw_span channel)
{
        sub_command(b, false, channel);
}

/* ---- connection life ---- */

static void link_close(tw_broker *b, struct link *l)
{
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

static bool all_down(const tw_broker *b)
{
        for (unsigned i = 0; i < b->nshards; i++)
                for (int k = 0; k < NCONN; k++)
                        if (b->sh[i].l[k].state != L_DOWN)
                                return false;
        return true;
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

static void fail_waiters(tw_broker *b, struct shard *s)
{
        while (s->qn) {
                struct waiter wt = s->q[s->qhead];

                s->qhead = (s->qhead + 1) % s->qcap;
                s->qn--;
                wt.fn(b->w, wt.arg, NULL);
        }
}

/* Takes the broker down: every link closed, waiters failed, `down` told once. A cluster
 * forgets its map: the next attempt asks a seed again. */
static void fail(tw_broker *b, const char *why)
{
        bool was_up = atomic_exchange_explicit(&b->up, 0, memory_order_acq_rel);

        if (all_down(b))
                return; /* already down, a retry is scheduled */
        if (was_up || !b->reported_down)
                fprintf(stderr, "tickwire: broker: %s; reconnecting\n", why);
        for (unsigned i = 0; i < b->nshards; i++)
                for (int k = 0; k < NCONN; k++)
                        link_close(b, &b->sh[i].l[k]);
        for (unsigned i = 0; i < b->nshards; i++)
                fail_waiters(b, &b->sh[i]);
        b->mapped = false;
        if (was_up || !b->reported_down) {
                b->reported_down = true;
                if (was_up)
                        TW_DEC(tw_worker_metrics(b->w)->broker_up);
                if (b->ev.down)
                        b->ev.down(b->w, b->arg);
        }
        schedule_retry(b);
}

static void link_connect(tw_broker *b, unsigned li)
{
        struct shard *s = &b->sh[li / NCONN];
        struct link *l = link_at(b, li);

        l->fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
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
        tw_worker_io_connect(b->w, b->io, tag(OP_CONNECT, li, l->inc), l->fd,
                             (const struct sockaddr *)&s->addr, s->addrlen);
}

/* Standalone: shard 0 is the server. Cluster without a map: shard 0 is a seed (tried in
 * turn) and only its command link is used, for CLUSTER SLOTS. */
static void try_connect(tw_broker *b)
{
        if (!b->cluster || b->mapped) {
                for (unsigned i = 0; i < b->nshards; i++)
                        for (int k = 0; k < NCONN; k++)
                                link_connect(b, i * NCONN + (unsigned)k);
                return;
        }
        b->nshards = 1;
        b->sh[0].addr = b->seed[b->next_seed];
        b->sh[0].addrlen = b->seedlen[b->next_seed];
        b->next_seed = (b->next_seed + 1) % b->nseeds;
        link_connect(b, CONN_CMD);
}

static void on_slots(tw_worker *w, void *arg, struct redisReply *r);

/* Every link of every shard is up: select the database, load the scripts (their replies
 * are ignored: a failure shows in the first EVALSHA), then we are up. */
static void all_ready(tw_broker *b)
{
        for (unsigned i = 0; i < b->nshards; i++) {
                struct shard *s = &b->sh[i];

                if (b->db) {
                        char db[8];
                        const char *a[2] = {"SELECT", db};
                        size_t n[2] = {6, 0};

                        n[1] = (size_t)snprintf(db, sizeof db, "%u", b->db);
                        command_on(b, s, 2, a, n, ignore_reply, NULL);
                        link_put(&s->l[CONN_SUB], 2, a, n); /* its +OK is read as a non-push */
                        link_flush(b, i * NCONN + CONN_SUB);
                }
                for (int k = 0; k < TW_SCRIPT__COUNT; k++) {
                        const char *a[3] = {"SCRIPT", "LOAD", tw_broker_scripts[k]};
                        size_t n[3] = {6, 4, strlen(tw_broker_scripts[k])};

                        command_on(b, s, 3, a, n, ignore_reply, NULL);
                }
        }
        b->backoff_ms = 0;
        b->reported_down = false;
        atomic_store_explicit(&b->up, 1, memory_order_release);
        TW_INC(tw_worker_metrics(b->w)->broker_up);
        fprintf(stderr, "tickwire: broker: connected (%u shard%s)\n", b->nshards,
                b->nshards == 1 ? "" : "s");
        if (b->ev.up)
                b->ev.up(b->w, b->arg);
}

static void link_ready(tw_broker *b, unsigned li)
{
        struct link *l = link_at(b, li);

        l->state = L_UP;
        tw_worker_io_recv(b->w, b->io, tag(OP_RECV, li, l->inc), l->fd, l->rbuf, RECV_BUF);
        if (b->cluster && !b->mapped) { /* the seed: ask for the map */
                const char *a[2] = {"CLUSTER", "SLOTS"};
                size_t n[2] = {7, 5};

                command_on(b, &b->sh[0], 2, a, n, on_slots, b);
                return;
        }
        for (unsigned i = 0; i < b->nshards; i++)
                for (int k = 0; k < NCONN; k++)
                        if (b->sh[i].l[k].state != L_UP)
                                return;
        all_ready(b);
}

/* The seed's CLUSTER SLOTS: [[start, end, [host, port, ...], replicas...], ...]. The
 * masters become the shards and every link is opened again. */
static void on_slots(tw_worker *w, void *arg, struct redisReply *r)
{
        tw_broker *b = arg;
        struct shard sh[MAX_SHARDS];
        unsigned n = 0, covered = 0;

        (void)w;
        if (!r || r->type != REDIS_REPLY_ARRAY) {
                if (r)
                        fail(b, "CLUSTER SLOTS failed (is it a cluster?)");
                return;
        }
        memset(sh, 0, sizeof sh);
        for (size_t i = 0; i < r->elements; i++) {
                const redisReply *e = r->element[i], *m;
                struct addrinfo *ai = NULL;
                char host[64], port[8];
                unsigned k;

                if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
                    e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2)
                        continue;
                m = e->element[2];
                snprintf(host, sizeof host, "%.*s", (int)m->element[0]->len, m->element[0]->str);
                snprintf(port, sizeof port, "%lld", m->element[1]->integer);
                /* An IP address (the map's own form): resolving it does not block. */
                if (getaddrinfo(
                        host[0] ? host : "127.0.0.1", port,
                        &(struct addrinfo){.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST},
                        &ai) != 0 ||
                    !ai)
                        continue;
                for (k = 0; k < n; k++)
                        if (sh[k].addrlen == ai->ai_addrlen &&
                            !memcmp(&sh[k].addr, ai->ai_addr, ai->ai_addrlen))
                                break;
                if (k == n && n < MAX_SHARDS) {
                        memcpy(&sh[n].addr, ai->ai_addr, ai->ai_addrlen);
                        sh[n++].addrlen = ai->ai_addrlen;
                }
                freeaddrinfo(ai);
                if (k >= n)
                        continue;
                for (long long s = e->element[0]->integer; s <= e->element[1]->integer; s++)
                        if (s >= 0 && s < NSLOTS) {
                                b->slot_shard[s] = (uint8_t)k;
                                covered++;
                        }
        }
        if (n == 0 || covered < NSLOTS) {
                fail(b, "the cluster does not cover every slot yet");
                return;
        }
        /* Close the seed link (its reply is being read: after this callback, on_recv sees
         * the incarnation change and stops), then open every master's links. */
        link_close(b, &b->sh[0].l[CONN_CMD]);
        for (unsigned i = 0; i < n; i++) {
                b->sh[i].addr = sh[i].addr;
                b->sh[i].addrlen = sh[i].addrlen;
        }
        b->nshards = n;
        b->mapped = true;
        try_connect(b);
}

/* ---- replies ---- */

static void on_reply(tw_broker *b, struct shard *s, struct redisReply *r)
{
        struct waiter wt;

        if (s->qn == 0) {
                fail(b, "a reply nobody asked for");
                return;
        }
        wt = s->q[s->qhead];
        s->qhead = (s->qhead + 1) % s->qcap;
        s->qn--;
        if (r->type == REDIS_REPLY_ERROR &&
            (!strncmp(r->str, "MOVED ", 6) || !strncmp(r->str, "ASK ", 4) ||
             !strncmp(r->str, "CLUSTERDOWN", 11))) {
                /* The map is stale (or the cluster is changing): this command fails like
                 * any lost one, and the broker comes back with a fresh map. */
                wt.fn(b->w, wt.arg, NULL);
                fail(b, r->str);
                return;
        }
        if (wt.fn != ignore_reply && wt.fn != on_slots)
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

static void on_recv(tw_broker *b, unsigned li, int res)
{
        struct link *l = link_at(b, li);
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
                if (li % NCONN == CONN_CMD)
                        on_reply(b, &b->sh[li / NCONN], reply);
                else
                        on_push(b, reply);
                freeReplyObject(reply);
                if (l->inc != inc)
                        return; /* a callback closed this link */
        }
        tw_worker_io_recv(b->w, b->io, tag(OP_RECV, li, l->inc), l->fd, l->rbuf, RECV_BUF);
}

static void on_io(tw_worker *w, void *arg, uint32_t t, int res)
{
        tw_broker *b = arg;
        int op = (int)(t & 7);
        unsigned li = (t >> 3) & 31;
        uint32_t inc = t >> 8;
        struct link *l;

        (void)w;
        if (op == OP_TIMER) {
                if (all_down(b)) {
                        TW_INC(tw_worker_metrics(b->w)->broker_reconnects);
                        try_connect(b);
                }
                return;
        }
        if (li >= b->nshards * NCONN)
                return;
        l = link_at(b, li);
        if (inc != (l->inc & 0xffffffu) || l->state == L_DOWN)
                return; /* a closed socket's completion */
        switch (op) {
        case OP_CONNECT:
                if (res < 0)
                        fail(b, strerror(-res));
                else
                        link_ready(b, li);
                break;
        case OP_RECV:
                on_recv(b, li, res);
                break;
        case OP_SEND:
                l->sending = false;
                if (res <= 0) {
                        fail(b, res == 0 ? "send wrote nothing" : strerror(-res));
                        break;
                }
                l->flight_off += (size_t)res;
                link_flush(b, li);
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
        if (!b->cluster) {
                b->nshards = 1;
                b->sh[0].addr = b->seed[0];
                b->sh[0].addrlen = b->seedlen[0];
        }
        try_connect(b);
}

void tw_broker_free(tw_broker *b)
{
        if (!b)
                return;
        for (unsigned i = 0; i < MAX_SHARDS; i++) {
                for (int k = 0; k < NCONN; k++) {
                        struct link *l = &b->sh[i].l[k];

                        if (l->fd >= 0)
                                close(l->fd);
                        if (l->rd)
                                redisReaderFree(l->rd);
                        free(l->rbuf);
                        free(l->out.p);
                        free(l->flight.p);
                }
                free(b->sh[i].q);
        }
        free(b->slot_shard);
        free(b);
}
