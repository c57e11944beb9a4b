/*
 * config — turns the command line and an optional --config file into a struct tw_config,
 * and prints --help.
 *
 * Every flag lives in one table (opts[] below) that drives the argv parser, the file
 * parser and the usage text alike (the walk, value syntax and messages are the flags
 * module's, shared with the loadgen), so a flag cannot be accepted but undocumented or the
 * other way round; the defaults shown by --help are formatted from tw_config_defaults()
 * itself rather than written twice.
 *
 * Sources are applied in the order they appear: argv left to right, and a --config FILE
 * as if its lines stood where --config was written. So the file overrides the defaults
 * and anything before it, and flags after it override the file. Two things are not
 * order-dependent: a heartbeat profile is applied first and explicit
 * --ping-interval/--idle-timeout win over it wherever they appear, and the cross-flag
 * checks (tick <= ping < idle, TLS pairing, which listeners serve TLS, JWT claims that
 * need a secret) run once at the end on the final values.
 *
 * TLS listeners: --tls-listen entries always serve TLS. When --tls-cert/--tls-key are
 * given and the final listen list holds no --tls-listen entry, the --listen entries (the
 * default one included) serve TLS too: a user who gave a certificate asked for TLS, and
 * serving plaintext instead would fail silently and unsafely. "Final list" matters when
 * sources override each other: a --listen on the command line replaces a file's whole
 * list, its --tls-listen entries with it, and the rule is then applied to what is left.
 *
 * Unit decisions (also printed by --help):
 *   - durations: ms, s, m, or a bare number of seconds; a decimal fraction is accepted
 *     when it comes to whole milliseconds ("1.5s", "0.25" = 250 ms, but not "0.1ms");
 *     negative, empty, overflowing and unit-less garbage are refused. The config caps
 *     every duration at 24 h, so later arithmetic (ms to ns, TCP_USER_TIMEOUT's 32-bit
 *     milliseconds, wheel ticks) can never overflow.
 *   - sizes: bytes, B, KiB, MiB, GiB (binary). "KB"/"MB"/"GB" are refused rather than
 *     guessed at: half the world reads them as 1000, half as 1024.
 *   - listen: numeric addresses only (no name resolution: this module touches no
 *     sockets or resolvers); IPv6 in brackets; ":PORT" means 0.0.0.0.
 */
#include "tickwire/config.h"
#include "tickwire/flags.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DURATION_MS (24ull * 3600 * 1000) /* see the file comment */
#define MAX_WORKERS     1024u
#define MAX_MSG_RATE    1000000u /* messages/s: far above any client, still a bound */
#define FILE_LINE_MAX   1024     /* longer than any value we keep (strings[] is 512) */

enum opt_id {
        O_LISTEN,
        O_TLS_LISTEN,
        O_WORKERS,
        O_PING,
        O_IDLE,
        O_PROFILE,
        O_TICK,
        O_TCP_UTO,
        O_HANDSHAKE,
        O_CLOSE,
        O_DRAIN,
        O_SPREAD,
        O_MAX_CONN,
        O_MAX_CONN_IP,
        O_MAX_MSG,
        O_MAX_RATE,
        O_MAX_QUEUE,
        O_COALESCE,
        O_MAX_SUBS,
        O_MAX_TOPICS,
        O_MAX_HIST_BYTES,
        O_SLOW,
        O_HISTORY,
        O_TLS_CERT,
        O_TLS_KEY,
        O_JWT,
        O_JWT_AUD,
        O_JWT_ISS,
        O_TOKEN_GRACE,
        O_PUB_TOKEN,
        O_CONFIG,
        O_ORIGIN,
        O_DEMO,
        O_BROKER,
        O_NODE_ID,
        O_HELP,
};

static const char *const profile_names[] = {"im", "game", "market", "iot", NULL};
static const char *const on_off[] = {"on", "off", NULL};
static const char *const slow_names[] = {"conflate", "disconnect", NULL}; /* enum order */

#define DUR(min_)         .kind = TW_FLAG_DURATION, .arg = "DUR", .min = (min_), .max = MAX_DURATION_MS
#define COUNT(min_, max_) .kind = TW_FLAG_COUNT, .arg = "N", .min = (min_), .max = (max_)
#define SIZE              .kind = TW_FLAG_SIZE, .arg = "SIZE", .min = 1
#define TEXT(arg_)        .kind = TW_FLAG_STRING, .arg = (arg_), .min = 1

static const tw_flag opts[] = {
    {.name = "listen",
     .id = O_LISTEN,
     .kind = TW_FLAG_CUSTOM,
     .arg = "ADDR",
     .group = "Listening",
     .help = "repeatable (up to 4); port 0 = any free; see TLS below"},
    {.name = "tls-listen",
     .id = O_TLS_LISTEN,
     .kind = TW_FLAG_CUSTOM,
     .arg = "ADDR",
     .help = "as --listen, serving TLS; --listen then stays plain"},
    {.name = "workers",
     .id = O_WORKERS,
     COUNT(0, MAX_WORKERS),
     .help = "worker threads, one io_uring each; 0 = online CPUs"},
    {.name = "ping-interval",
     .id = O_PING,
     DUR(1),
     .group = "Heartbeat",
     .help = "quiet this long: the server sends a Ping"},
    {.name = "idle-timeout",
     .id = O_IDLE,
     DUR(1),
     .help = "silent this long: dead (must exceed ping interval)"},
    {.name = "heartbeat-profile",
     .id = O_PROFILE,
     .kind = TW_FLAG_ENUM,
     .arg = "P",
     .choices = profile_names,
     .what = "profile",
     .help = "im 15s/45s, game 5s/15s, market 15s/60s, iot 2m/6m (ping/idle)"},
    {.name = "tick",
     .id = O_TICK,
     DUR(1),
     .help = "timing wheel resolution (at most the ping interval)"},
    {.name = "tcp-user-timeout",
     .id = O_TCP_UTO,
     .kind = TW_FLAG_ENUM,
     .arg = "on|off",
     .choices = on_off,
     .help = "TCP_USER_TIMEOUT = idle timeout on accepted sockets"},
    {.name = "handshake-timeout",
     .id = O_HANDSHAKE,
     DUR(1),
     .group = "Timeouts",
     .help = "accept (and TLS) to 101"},
    {.name = "close-timeout",
     .id = O_CLOSE,
     DUR(0),
     .help = "wait for the peer's Close after ours"},
    {.name = "drain-timeout",
     .id = O_DRAIN,
     DUR(0),
     .help = "on SIGTERM, wait this long for Close replies"},
    {.name = "reconnect-spread",
     .id = O_SPREAD,
     DUR(0),
     .help = "retry_ms hint spread in 1001 Going Away"},
    {.name = "max-connections",
     .id = O_MAX_CONN,
     COUNT(0, UINT32_MAX),
     .group = "Limits",
     .help = "whole server; 0 = only the tables limit"},
    {.name = "max-connections-per-ip",
     .id = O_MAX_CONN_IP,
     COUNT(0, UINT32_MAX),
     .off = true,
     .help = "per client address; 0 or off = no limit"},
    {.name = "max-message",
     .id = O_MAX_MSG,
     SIZE,
     .help = "inbound message size (over it: close 1009)"},
    {.name = "max-message-rate",
     .id = O_MAX_RATE,
     .kind = TW_FLAG_CUSTOM,
     .arg = "N/s",
     .help = "inbound messages per second per connection"},
    {.name = "max-queue", .id = O_MAX_QUEUE, SIZE, .help = "queued outbound bytes per connection"},
    {.name = "coalesce",
     .id = O_COALESCE,
     DUR(0),
     .help = "under load, hold output up to this to share sends; 0 = off"},
    {.name = "max-subscriptions",
     .id = O_MAX_SUBS,
     COUNT(1, UINT32_MAX),
     .help = "topics per connection"},
    {.name = "max-topics",
     .id = O_MAX_TOPICS,
     COUNT(1, UINT32_MAX),
     .help = "topics the whole server keeps"},
    {.name = "max-history-bytes",
     .id = O_MAX_HIST_BYTES,
     SIZE,
     .help = "all topic histories together; oldest go first"},
    {.name = "slow-consumer",
     .id = O_SLOW,
     .kind = TW_FLAG_ENUM,
     .arg = "POLICY",
     .choices = slow_names,
     .what = "policy",
     .group = "Fan-out",
     .help = "conflate (keep the newest per topic) or disconnect (1013)"},
    {.name = "history",
     .id = O_HISTORY,
     COUNT(1, UINT32_MAX),
     .help = "messages kept per topic for resume (since)"},
    {.name = "tls-cert",
     .id = O_TLS_CERT,
     TEXT("FILE"),
     .group = "TLS and auth",
     .help = "PEM certificate chain (TLS on --listen unless --tls-listen)"},
    {.name = "tls-key", .id = O_TLS_KEY, TEXT("FILE"), .help = "PEM private key"},
    {.name = "jwt-secret",
     .id = O_JWT,
     TEXT("S"),
     .help = "HMAC-SHA256 secret for ?token= / Bearer JWTs"},
    {.name = "jwt-audience",
     .id = O_JWT_AUD,
     TEXT("S"),
     .help = "JWTs must carry this aud (needs --jwt-secret)"},
    {.name = "jwt-issuer",
     .id = O_JWT_ISS,
     TEXT("S"),
     .help = "JWTs must carry this iss (needs --jwt-secret)"},
    {.name = "token-grace",
     .id = O_TOKEN_GRACE,
     DUR(0),
     .help = "keep a connection this long after its JWT expires"},
    {.name = "publish-token",
     .id = O_PUB_TOKEN,
     TEXT("T"),
     .help = "bearer token required to publish"},
    {.name = "allowed-origin",
     .id = O_ORIGIN,
     .kind = TW_FLAG_CUSTOM,
     .arg = "PATTERN",
     .help = "another site whose pages may connect"},
    {.name = "broker",
     .id = O_BROKER,
     .kind = TW_FLAG_CUSTOM,
     .arg = "URL",
     .group = "Cluster",
     .help = "redis://HOST:PORT[/DB] or redis-cluster://H:P,H:P"},
    {.name = "node-id",
     .id = O_NODE_ID,
     .kind = TW_FLAG_CUSTOM,
     .arg = "NAME",
     .help = "this node's name in logs and metrics"},
    {.name = "demo",
     .id = O_DEMO,
     .kind = TW_FLAG_SWITCH,
     .group = "Other",
     .help = "publish a synthetic market feed (for the demo page)"},
    {.name = "config",
     .id = O_CONFIG,
     .kind = TW_FLAG_CUSTOM,
     .arg = "FILE",
     .help = "read flags from FILE (format below)"},
    {.name = "help",
     .id = O_HELP,
     .kind = TW_FLAG_HELP,
     .help = "print this text and exit (also -h)"},
};
#define NOPTS (sizeof opts / sizeof opts[0])

struct profile {
        const char *name;
        uint64_t ping_ms, idle_ms;
};

static const struct profile profiles[] = {
    {"im", 15000, 45000},
    {"game", 5000, 15000},
    {"market", 15000, 60000},
    {"iot", 120000, 360000},
};

/* Parser state that must outlive one flag: where we are (for messages), which source
 * the current listen list came from, and what was given explicitly. */
struct parser {
        tw_flags fl; /* the walk; fl.file is non-NULL while reading a --config file */
        tw_config *c;
        unsigned seg;        /* bumped whenever the source of flags changes */
        unsigned listen_seg; /* source whose entries fill c->listen; UINT_MAX = defaults */
        unsigned origin_seg; /* likewise for c->origins */
        int profile;         /* index into profiles[], -1 = none given */
        bool ping_set, idle_set;
        uint64_t ping_ms, idle_ms;
};

/* ---- unit parsers: tw_parse_duration_ms and tw_parse_size live in flags ---- */

static bool is_digit(char ch)
{
        return ch >= '0' && ch <= '9';
}

static int parse_u64(const char *s, uint64_t *out)
{
        uint64_t v = 0;

        if (!s || !*s)
                return -EINVAL;
        for (; *s; s++)
                if (!is_digit(*s) || __builtin_mul_overflow(v, 10, &v) ||
                    __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
                        return -EINVAL;
        *out = v;
        return 0;
}

/* ---- listen addresses ---- */

static int parse_listen(const char *s, tw_listen *l, const char **why)
{
        const char *host, *port;
        size_t hlen;
        bool v6 = false;
        char buf[INET6_ADDRSTRLEN];
        uint64_t pnum;

        memset(l, 0, sizeof *l);
        *why = "expected HOST:PORT, [IPv6]:PORT or :PORT";
        if (!s || !*s)
                return -EINVAL;
        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close)
                        return -EINVAL;
                if (close[1] != ':') {
                        *why = "expected :PORT after ']'";
                        return -EINVAL;
                }
                host = s + 1;
                hlen = (size_t)(close - host);
                port = close + 2;
                v6 = true;
        } else {
                const char *colon = strrchr(s, ':');
                if (!colon) {
                        *why = "missing :PORT";
                        return -EINVAL;
                }
                if (memchr(s, ':', (size_t)(colon - s))) {
                        *why = "put IPv6 addresses in brackets, e.g. [::1]:8080";
                        return -EINVAL;
                }
                host = s;
                hlen = (size_t)(colon - s);
                port = colon + 1;
        }

        if (strlen(port) > 5 || parse_u64(port, &pnum) != 0 || pnum > 65535) {
                *why = "port must be a number from 0 to 65535";
                return -EINVAL;
        }
        if (hlen >= sizeof buf || (v6 && hlen == 0)) {
                *why = "invalid host";
                return -EINVAL;
        }
        memcpy(buf, host, hlen);
        buf[hlen] = '\0';

        if (v6) {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *)&l->addr;
                if (inet_pton(AF_INET6, buf, &a->sin6_addr) != 1) {
                        *why = "invalid IPv6 address";
                        return -EINVAL;
                }
                a->sin6_family = AF_INET6;
                a->sin6_port = htons((uint16_t)pnum);
                l->addrlen = sizeof *a;
        } else {
                struct sockaddr_in *a = (struct sockaddr_in *)&l->addr;
                if (hlen == 0)
                        a->sin_addr.s_addr = htonl(INADDR_ANY);
                else if (inet_pton(AF_INET, buf, &a->sin_addr) != 1) {
                        *why = "invalid IPv4 address (host names are not resolved)";
                        return -EINVAL;
                }
                a->sin_family = AF_INET;
                a->sin_port = htons((uint16_t)pnum);
                l->addrlen = sizeof *a;
        }
        return 0;
}

int tw_parse_listen(const char *s, tw_listen *l)
{
        const char *why;
        return parse_listen(s, l, &why);
}

void tw_listen_format(const tw_listen *l, char *out, size_t cap)
{
        char host[INET6_ADDRSTRLEN];

        if (!out || cap == 0)
                return;
        if (l->addr.ss_family == AF_INET) {
                const struct sockaddr_in *a = (const struct sockaddr_in *)&l->addr;
                inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
                snprintf(out, cap, "%s:%u", host, (unsigned)ntohs(a->sin_port));
        } else if (l->addr.ss_family == AF_INET6) {
                const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&l->addr;
                inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
                snprintf(out, cap, "[%s]:%u", host, (unsigned)ntohs(a->sin6_port));
        } else {
                snprintf(out, cap, "?");
        }
}

static bool same_listen(const tw_listen *a, const tw_listen *b)
{
        if (a->addr.ss_family != b->addr.ss_family)
                return false;
        if (a->addr.ss_family == AF_INET) {
                const struct sockaddr_in *x = (const void *)&a->addr, *y = (const void *)&b->addr;
                return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
        }
        const struct sockaddr_in6 *x = (const void *)&a->addr, *y = (const void *)&b->addr;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

static unsigned listen_port(const tw_listen *l)
{
        if (l->addr.ss_family == AF_INET)
                return ntohs(((const struct sockaddr_in *)&l->addr)->sin_port);
        return ntohs(((const struct sockaddr_in6 *)&l->addr)->sin6_port);
}

/* ---- error reporting ---- */

/* Messages go through the flags module, which knows whether a file is being read. */
#define seterr(p, ...)     tw_flags_error(&(p)->fl, __VA_ARGS__)
#define fail(p, name, ...) tw_flags_fail(&(p)->fl, (name), __VA_ARGS__)
#define fmt_duration       tw_flags_fmt_duration
#define fmt_size           tw_flags_fmt_size

/* ---- defaults and applying one flag ---- */

void tw_config_defaults(tw_config *c)
{
        memset(c, 0, sizeof *c);
        struct sockaddr_in *a = (struct sockaddr_in *)&c->listen[0].addr;
        a->sin_family = AF_INET;
        a->sin_port = htons(8080);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        c->listen[0].addrlen = sizeof *a;
        c->nlisten = 1;
        c->workers = 0;
        c->ping_interval_ms = 30000;
        c->idle_timeout_ms = 90000;
        c->tick_ms = 10;
        c->tcp_user_timeout = true;
        c->handshake_timeout_ms = 5000;
        c->close_timeout_ms = 2000;
        c->drain_timeout_ms = 5000;
        c->reconnect_spread_ms = 5000;
        c->max_connections = 0;
        c->max_message = 1ull << 20;
        c->max_queue = 4ull << 20;
        c->coalesce_ms = 20;
        c->slow_consumer = TW_SLOW_CONFLATE;
        c->history = 1024;
        c->max_subscriptions = 1024;
        c->max_topics = 100000;
        c->max_history_bytes = 256ull << 20;
        c->max_message_rate = 0;
        c->max_connections_per_ip = 0;
        c->token_grace_ms = 10000;
}

/* "N/s" or a bare N (also per second); 0 or "off" turns the limit off. No other unit
 * is accepted, so none is ever guessed at. */
static int set_rate(struct parser *p, const tw_flag *o, const char *v, uint32_t *dst)
{
        size_t n = strlen(v);
        uint64_t r = 0;

        if (strcmp(v, "off") == 0) {
                *dst = 0;
                return 0;
        }
        if (n > 2 && strcmp(v + n - 2, "/s") == 0)
                n -= 2;
        if (n == 0)
                return fail(p, o->name, "invalid rate '%s' (use N/s, N or off)", v);
        for (size_t i = 0; i < n; i++) {
                if (!is_digit(v[i]))
                        return fail(p, o->name, "invalid rate '%s' (use N/s, N or off)", v);
                if (r <= MAX_MSG_RATE) /* past the limit, only look for garbage */
                        r = r * 10 + (uint64_t)(v[i] - '0');
        }
        if (r > MAX_MSG_RATE)
                return fail(p, o->name, "'%s' is over the limit of %u/s", v, MAX_MSG_RATE);
        *dst = (uint32_t)r;
        return 0;
}

/* Values from argv can be kept by pointer (argv outlives the config); values from a
 * file live in a line buffer, so they are copied into c->strings[], one slot per flag. */
static int set_string(struct parser *p, const tw_flag *o, const char *v, unsigned slot,
                      const char **dst)
{
        if (!*v)
                return fail(p, o->name, "must not be empty");
        if (!p->fl.file) {
                *dst = v;
                return 0;
        }
        size_t n = strlen(v), cap = sizeof p->c->strings[0];
        if (slot >= sizeof p->c->strings / sizeof p->c->strings[0] || n >= cap)
                return fail(p, o->name, "value too long (at most %zu bytes)", cap - 1);
        memcpy(p->c->strings[slot], v, n + 1);
        *dst = p->c->strings[slot];
        return 0;
}

static int add_listen(struct parser *p, const tw_flag *o, const char *v)
{
        tw_config *c = p->c;
        tw_listen l;
        const char *why;
        char a[64];

        if (parse_listen(v, &l, &why) != 0)
                return fail(p, o->name, "invalid address '%s': %s", v, why);
        l.tls = o->id == O_TLS_LISTEN;
        /* The first address from a source replaces the list it inherited (the default,
         * or the file's when overriding on the command line); later ones add to it. */
        if (p->listen_seg != p->seg) {
                c->nlisten = 0;
                p->listen_seg = p->seg;
        }
        if (c->nlisten == TW_MAX_LISTEN)
                return fail(p, o->name, "at most %d addresses", TW_MAX_LISTEN);
        for (unsigned i = 0; i < c->nlisten; i++)
                if (listen_port(&l) != 0 && same_listen(&l, &c->listen[i])) {
                        tw_listen_format(&l, a, sizeof a);
                        return fail(p, o->name, "%s is already listed", a);
                }
        c->listen[c->nlisten++] = l;
        return 0;
}

static int load_file(struct parser *p, const char *path);

/* --allowed-origin: a pattern kept in c->origins[] (copied, since a file's line buffer
 * goes away). Like --listen, the first pattern from a source replaces the inherited list. */
static int add_origin(struct parser *p, const tw_flag *o, const char *v)
{
        tw_config *c = p->c;
        size_t n = strlen(v);

        if (!*v)
                return fail(p, o->name, "must not be empty");
        if (n >= sizeof c->origins[0])
                return fail(p, o->name, "pattern too long (at most %zu bytes)",
                            sizeof c->origins[0] - 1);
        if (p->origin_seg != p->seg) {
                c->norigins = 0;
                p->origin_seg = p->seg;
        }
        if (c->norigins == TW_MAX_ORIGINS)
                return fail(p, o->name, "at most %d patterns", TW_MAX_ORIGINS);
        memcpy(c->origins[c->norigins++], v, n + 1);
        return 0;
}

static bool tw_name_chars_ok(const char *v)
{
        for (; *v; v++)
                if (!isalnum((unsigned char)*v) && !strchr("._:-", *v))
                        return false;
        return true;
}

int tw_config_parse_broker(const char *url, tw_broker_cfg *out, char *err, size_t cap)
{
        tw_broker_cfg b = {0};
        const char *p;

        if (!strncmp(url, "redis://", 8)) {
                b.kind = TW_BROKER_REDIS;
                p = url + 8;
        } else if (!strncmp(url, "redis-cluster://", 16)) {
                b.kind = TW_BROKER_CLUSTER;
                p = url + 16;
        } else {
                snprintf(err, cap, "must start with redis:// or redis-cluster://");
                return -1;
        }
        for (;;) {
                const char *colon = strchr(p, ':'), *end = p + strcspn(p, ",/");
                char *stop;
                unsigned long port;

                if (b.nhosts == TW_BROKER_MAX_HOSTS) {
                        snprintf(err, cap, "at most %d hosts", TW_BROKER_MAX_HOSTS);
                        return -1;
                }
                if (!colon || colon >= end || colon == p ||
                    (size_t)(colon - p) >= sizeof b.hosts[0].host) {
                        snprintf(err, cap, "each host must be HOST:PORT");
                        return -1;
                }
                port = strtoul(colon + 1, &stop, 10);
                if (stop != end || port == 0 || port > 65535) {
                        snprintf(err, cap, "bad port in '%.*s'", (int)(end - p), p);
                        return -1;
                }
                memcpy(b.hosts[b.nhosts].host, p, (size_t)(colon - p));
                b.hosts[b.nhosts++].port = (uint16_t)port;
                p = end;
                if (*p != ',')
                        break;
                p++;
                if (b.kind == TW_BROKER_REDIS) {
                        snprintf(err, cap, "redis:// takes one host (redis-cluster:// many)");
                        return -1;
                }
        }
        if (*p == '/') {
                char *stop;
                unsigned long db = strtoul(p + 1, &stop, 10);

                if (b.kind == TW_BROKER_CLUSTER || stop == p + 1 || *stop || db > 15) {
                        snprintf(err, cap, "the database must be /0 to /15 (redis:// only)");
                        return -1;
                }
                b.db = (uint16_t)db;
        } else if (*p) {
                snprintf(err, cap, "unexpected '%s'", p);
                return -1;
        }
        *out = b;
        return 0;
}

/* Stores one value the flags module has parsed and bounds-checked. One case per flag,
 * hence its length. */
static int set(tw_flags *fl, const tw_flag *o, const tw_flag_value *val)
{
        struct parser *p = fl->ctx;
        tw_config *c = p->c;
        const char *v = val->text;

        switch (o->id) {
        case O_LISTEN:
        case O_TLS_LISTEN:
                return add_listen(p, o, v);
        case O_WORKERS:
                c->workers = (unsigned)val->u;
                return 0;
        case O_PING:
                p->ping_ms = val->u;
                p->ping_set = true;
                return 0;
        case O_IDLE:
                p->idle_ms = val->u;
                p->idle_set = true;
                return 0;
        case O_PROFILE:
                p->profile = (int)val->u;
                return 0;
        case O_TICK:
                c->tick_ms = val->u;
                return 0;
        case O_TCP_UTO:
                /* Off only so bench/detect can show what the heartbeat alone achieves. */
                c->tcp_user_timeout = val->u == 0;
                return 0;
        case O_HANDSHAKE:
                c->handshake_timeout_ms = val->u;
                return 0;
        case O_CLOSE:
                c->close_timeout_ms = val->u;
                return 0;
        case O_DRAIN:
                c->drain_timeout_ms = val->u;
                return 0;
        case O_SPREAD:
                c->reconnect_spread_ms = val->u;
                return 0;
        case O_MAX_CONN:
                c->max_connections = (uint32_t)val->u;
                return 0;
        case O_MAX_CONN_IP:
                c->max_connections_per_ip = (uint32_t)val->u;
                return 0;
        case O_MAX_MSG:
                c->max_message = val->u;
                return 0;
        case O_MAX_RATE:
                return set_rate(p, o, v, &c->max_message_rate);
        case O_MAX_QUEUE:
                c->max_queue = val->u;
                return 0;
        case O_COALESCE:
                c->coalesce_ms = val->u;
                return 0;
        case O_MAX_SUBS:
                c->max_subscriptions = (uint32_t)val->u;
                return 0;
        case O_MAX_TOPICS:
                c->max_topics = (uint32_t)val->u;
                return 0;
        case O_MAX_HIST_BYTES:
                c->max_history_bytes = val->u;
                return 0;
        case O_SLOW:
                c->slow_consumer = val->u ? TW_SLOW_DISCONNECT : TW_SLOW_CONFLATE;
                return 0;
        case O_HISTORY:
                c->history = (uint32_t)val->u;
                return 0;
        case O_TLS_CERT:
                return set_string(p, o, v, 0, &c->tls_cert);
        case O_TLS_KEY:
                return set_string(p, o, v, 1, &c->tls_key);
        case O_JWT:
                return set_string(p, o, v, 2, &c->jwt_secret);
        case O_JWT_AUD:
                return set_string(p, o, v, 4, &c->jwt_audience);
        case O_JWT_ISS:
                return set_string(p, o, v, 5, &c->jwt_issuer);
        case O_TOKEN_GRACE:
                c->token_grace_ms = val->u;
                return 0;
        case O_PUB_TOKEN:
                return set_string(p, o, v, 3, &c->publish_token);
        case O_CONFIG:
                if (p->fl.file)
                        return fail(p, o->name, "not allowed inside a config file");
                return load_file(p, v);
        case O_ORIGIN:
                return add_origin(p, o, v);
        case O_DEMO:
                c->demo = true;
                return 0;
        case O_BROKER: {
                char why[128];

                if (tw_config_parse_broker(v, &c->broker, why, sizeof why) < 0)
                        return fail(p, o->name, "%s", why);
                return 0;
        }
        case O_NODE_ID:
                if (!*v || strlen(v) >= sizeof c->node_id || !tw_name_chars_ok(v))
                        return fail(p, o->name, "must be 1-63 of [A-Za-z0-9._:-]");
                memcpy(c->node_id, v, strlen(v) + 1);
                return 0;
        case O_HELP:
                break;
        }
        return fail(p, o->name, "takes no value");
}

/* ---- the config file ---- */

static int load_file(struct parser *p, const char *path)
{
        char buf[FILE_LINE_MAX];
        int rc = 0;
        FILE *f = fopen(path, "r");

        if (!f)
                return fail(p, "config", "cannot open '%s': %s", path, strerror(errno));
        p->fl.file = path;
        p->fl.line = 0;
        p->seg++;
        while (fgets(buf, sizeof buf, f)) {
                p->fl.line++;
                size_t n = strlen(buf);
                if (n == sizeof buf - 1 && buf[n - 1] != '\n') {
                        int next = getc(f); /* a full buffer may also be the last line */
                        if (next != EOF) {
                                rc = seterr(p, "line too long (at most %d bytes)",
                                            FILE_LINE_MAX - 2);
                                break;
                        }
                }
                if ((rc = tw_flags_parse_line(&p->fl, buf)) != 0)
                        break;
        }
        if (rc == 0 && ferror(f))
                rc = seterr(p, "read error");
        fclose(f);
        p->fl.file = NULL;
        p->seg++;
        return rc;
}

/* ---- the command line ---- */

/* Checks that involve more than one flag, on the final values. */
static int finish(struct parser *p)
{
        tw_config *c = p->c;
        char a[32], b[32], addr[64];

        if (p->profile >= 0) {
                c->ping_interval_ms = profiles[p->profile].ping_ms;
                c->idle_timeout_ms = profiles[p->profile].idle_ms;
        }
        if (p->ping_set)
                c->ping_interval_ms = p->ping_ms;
        if (p->idle_set)
                c->idle_timeout_ms = p->idle_ms;

        if (c->tick_ms > c->ping_interval_ms)
                return seterr(p, "--tick: %s is longer than the ping interval (%s)",
                              fmt_duration(c->tick_ms, a, sizeof a),
                              fmt_duration(c->ping_interval_ms, b, sizeof b));
        if (c->idle_timeout_ms <= c->ping_interval_ms)
                return seterr(p, "--idle-timeout: %s must be greater than the ping interval (%s)",
                              fmt_duration(c->idle_timeout_ms, a, sizeof a),
                              fmt_duration(c->ping_interval_ms, b, sizeof b));
        if (c->tls_cert && !c->tls_key)
                return seterr(p, "--tls-cert: given without --tls-key");
        if (c->tls_key && !c->tls_cert)
                return seterr(p, "--tls-key: given without --tls-cert");
        bool any_tls = false;
        for (unsigned i = 0; i < c->nlisten; i++) {
                if (c->listen[i].tls && !c->tls_cert) {
                        tw_listen_format(&c->listen[i], addr, sizeof addr);
                        return seterr(p, "--tls-listen: %s needs --tls-cert and --tls-key", addr);
                }
                any_tls |= c->listen[i].tls;
        }
        /* A certificate and no --tls-listen: the --listen addresses serve TLS (see the
         * file comment), rather than loading the certificate and serving plaintext. */
        if (c->tls_cert && !any_tls)
                for (unsigned i = 0; i < c->nlisten; i++)
                        c->listen[i].tls = true;
        /* Without a secret no token is read, so a required claim would be ignored. */
        if (c->jwt_audience && !c->jwt_secret)
                return seterr(p, "--jwt-audience: given without --jwt-secret");
        if (c->jwt_issuer && !c->jwt_secret)
                return seterr(p, "--jwt-issuer: given without --jwt-secret");
        return 0;
}

int tw_config_parse(tw_config *c, int argc, char **argv, FILE *out, char *err, size_t errlen)
{
        struct parser p = {.fl = {.tab = opts,
                                  .n = NOPTS,
                                  .set = set,
                                  .err = err,
                                  .errlen = errlen,
                                  .short_help = true},
                           .c = c,
                           .listen_seg = UINT_MAX,
                           .origin_seg = UINT_MAX,
                           .profile = -1};

        p.fl.ctx = &p;
        tw_config_defaults(c);
        int rc = tw_flags_parse_argv(&p.fl, argc, argv);
        if (rc == 1)
                tw_config_usage(out ? out : stdout);
        return rc != 0 ? rc : finish(&p);
}

/* ---- --help ---- */

/* The default --help shows for a flag, from tw_config_defaults() itself. One case per
 * flag, hence its length. */
static const char *fmt_default(const tw_flag *f, const void *ctx, char *buf, size_t cap)
{
        const tw_config *d = ctx;

        switch ((enum opt_id)f->id) {
        case O_LISTEN:
                tw_listen_format(&d->listen[0], buf, cap);
                return buf;
        case O_WORKERS:
                snprintf(buf, cap, "%u", d->workers);
                return buf;
        case O_PING:
                return fmt_duration(d->ping_interval_ms, buf, cap);
        case O_IDLE:
                return fmt_duration(d->idle_timeout_ms, buf, cap);
        case O_TICK:
                return fmt_duration(d->tick_ms, buf, cap);
        case O_TCP_UTO:
                return d->tcp_user_timeout ? "on" : "off";
        case O_HANDSHAKE:
                return fmt_duration(d->handshake_timeout_ms, buf, cap);
        case O_CLOSE:
                return fmt_duration(d->close_timeout_ms, buf, cap);
        case O_DRAIN:
                return fmt_duration(d->drain_timeout_ms, buf, cap);
        case O_SPREAD:
                return fmt_duration(d->reconnect_spread_ms, buf, cap);
        case O_MAX_CONN:
                snprintf(buf, cap, "%" PRIu32, d->max_connections);
                return buf;
        case O_MAX_CONN_IP:
                if (d->max_connections_per_ip == 0)
                        return "off";
                snprintf(buf, cap, "%" PRIu32, d->max_connections_per_ip);
                return buf;
        case O_MAX_MSG:
                return fmt_size(d->max_message, buf, cap);
        case O_MAX_RATE:
                if (d->max_message_rate == 0)
                        return "off";
                snprintf(buf, cap, "%" PRIu32 "/s", d->max_message_rate);
                return buf;
        case O_MAX_TOPICS:
                snprintf(buf, cap, "%" PRIu32, d->max_topics);
                return buf;
        case O_MAX_HIST_BYTES:
                return fmt_size(d->max_history_bytes, buf, cap);
        case O_MAX_QUEUE:
                return fmt_size(d->max_queue, buf, cap);
        case O_COALESCE:
                return fmt_duration(d->coalesce_ms, buf, cap);
        case O_MAX_SUBS:
                snprintf(buf, cap, "%" PRIu32, d->max_subscriptions);
                return buf;
        case O_SLOW:
                return d->slow_consumer == TW_SLOW_DISCONNECT ? "disconnect" : "conflate";
        case O_HISTORY:
                snprintf(buf, cap, "%" PRIu32, d->history);
                return buf;
        case O_JWT:
        case O_PUB_TOKEN:
                return "none: open";
        case O_JWT_AUD:
        case O_JWT_ISS:
                return "none: not checked";
        case O_TOKEN_GRACE:
                return fmt_duration(d->token_grace_ms, buf, cap);
        case O_ORIGIN:
                return "same-origin only";
        case O_DEMO:
                return "off";
        case O_BROKER:
                return "none: standalone";
        case O_NODE_ID:
                return "hostname-pid";
        case O_TLS_LISTEN:
        case O_PROFILE:
        case O_TLS_CERT:
        case O_TLS_KEY:
                return "none";
        case O_CONFIG:
        case O_HELP:
                break;
        }
        return NULL;
}

void tw_config_usage(FILE *out)
{
        tw_config d;

        tw_config_defaults(&d);
        fprintf(out, "Usage: tickwire [flags]\n"
                     "\n"
                     "A WebSocket push server with heartbeat-based dead-peer detection.\n"
                     "Flags take \"--flag value\" or \"--flag=value\".\n");
        tw_flags_usage(out, opts, NOPTS, 26, fmt_default, &d);
        fprintf(out,
                "\n"
                "DUR: 250ms, 30s, 2m or a bare number of seconds; a fraction is fine when it\n"
                "  comes to whole milliseconds (1.5s, 0.25); at most 24h.\n"
                "SIZE: bytes, or with KiB, MiB, GiB (binary: 1KiB = 1024); KB/MB are refused\n"
                "  as ambiguous.\n"
                "ADDR: 127.0.0.1:8080, [::1]:8080, :8080 (= 0.0.0.0:8080); numeric only. The\n"
                "  first --listen/--tls-listen replaces the default address.\n"
                "TLS: with --tls-cert/--tls-key and no --tls-listen, the --listen addresses\n"
                "  (the default one too) serve TLS; with a --tls-listen, --listen stays plain.\n"
                "N/s: messages per second, \"N/s\" or a bare N; 0 or off = no limit.\n"
                "PATTERN: an Origin like https://app.example.com, where * stands for one or\n"
                "  more DNS labels (https://*.example.com); without \"://\" it is matched\n"
                "  against host[:port] alone; * by itself allows every origin (a warning).\n"
                "  Repeatable (up to 16). Pages served by this server itself always may.\n"
                "Config file: one \"flag value\" or \"flag = value\" per line, flag names without\n"
                "  the dashes; '#' at the start of a line is a comment. The file takes effect\n"
                "  where --config stands: flags after it override it, flags before it do not.\n"
                "  A switch (demo) stands alone on its line.\n"
                "  --ping-interval/--idle-timeout override --heartbeat-profile in any order.\n");
}
