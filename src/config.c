/*
 * config — turns the command line and an optional --config file into a struct tw_config,
 * and prints --help.
 *
 * Every flag lives in one table (opts[] below) that drives the argv parser, the file
 * parser and the usage text alike, so a flag cannot be accepted but undocumented or the
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

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
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
        O_HELP,
};

struct opt {
        const char *name; /* without the leading "--"; the file uses the same names */
        enum opt_id id;
        const char *arg;   /* metavar in --help; NULL for a flag that takes no value */
        const char *group; /* non-NULL starts a new heading in --help */
        const char *help;
};

static const struct opt opts[] = {
    {"listen", O_LISTEN, "ADDR", "Listening",
     "repeatable (up to 4); port 0 = any free; see TLS below"},
    {"tls-listen", O_TLS_LISTEN, "ADDR", NULL,
     "as --listen, serving TLS; --listen then stays plain"},
    {"workers", O_WORKERS, "N", NULL, "worker threads, one io_uring each; 0 = online CPUs"},
    {"ping-interval", O_PING, "DUR", "Heartbeat", "quiet this long: the server sends a Ping"},
    {"idle-timeout", O_IDLE, "DUR", NULL, "silent this long: dead (must exceed ping interval)"},
    {"heartbeat-profile", O_PROFILE, "P", NULL,
     "im 15s/45s, game 5s/15s, market 15s/60s, iot 2m/6m (ping/idle)"},
    {"tick", O_TICK, "DUR", NULL, "timing wheel resolution (at most the ping interval)"},
    {"tcp-user-timeout", O_TCP_UTO, "on|off", NULL,
     "TCP_USER_TIMEOUT = idle timeout on accepted sockets"},
    {"handshake-timeout", O_HANDSHAKE, "DUR", "Timeouts", "accept (and TLS) to 101"},
    {"close-timeout", O_CLOSE, "DUR", NULL, "wait for the peer's Close after ours"},
    {"drain-timeout", O_DRAIN, "DUR", NULL, "on SIGTERM, wait this long for Close replies"},
    {"reconnect-spread", O_SPREAD, "DUR", NULL, "retry_ms hint spread in 1001 Going Away"},
    {"max-connections", O_MAX_CONN, "N", "Limits", "whole server; 0 = only the tables limit"},
    {"max-connections-per-ip", O_MAX_CONN_IP, "N", NULL, "per client address; 0 or off = no limit"},
    {"max-message", O_MAX_MSG, "SIZE", NULL, "inbound message size (over it: close 1009)"},
    {"max-message-rate", O_MAX_RATE, "N/s", NULL, "inbound messages per second per connection"},
    {"max-queue", O_MAX_QUEUE, "SIZE", NULL, "queued outbound bytes per connection"},
    {"max-subscriptions", O_MAX_SUBS, "N", NULL, "topics per connection"},
    {"max-topics", O_MAX_TOPICS, "N", NULL, "topics the whole server keeps"},
    {"max-history-bytes", O_MAX_HIST_BYTES, "SIZE", NULL,
     "all topic histories together; oldest go first"},
    {"slow-consumer", O_SLOW, "POLICY", "Fan-out",
     "conflate (keep the newest per topic) or disconnect (1013)"},
    {"history", O_HISTORY, "N", NULL, "messages kept per topic for resume (since)"},
    {"tls-cert", O_TLS_CERT, "FILE", "TLS and auth",
     "PEM certificate chain (TLS on --listen unless --tls-listen)"},
    {"tls-key", O_TLS_KEY, "FILE", NULL, "PEM private key"},
    {"jwt-secret", O_JWT, "S", NULL, "HMAC-SHA256 secret for ?token= / Bearer JWTs"},
    {"jwt-audience", O_JWT_AUD, "S", NULL, "JWTs must carry this aud (needs --jwt-secret)"},
    {"jwt-issuer", O_JWT_ISS, "S", NULL, "JWTs must carry this iss (needs --jwt-secret)"},
    {"token-grace", O_TOKEN_GRACE, "DUR", NULL,
     "keep a connection this long after its JWT expires"},
    {"publish-token", O_PUB_TOKEN, "T", NULL, "bearer token required to publish"},
    {"allowed-origin", O_ORIGIN, "PATTERN", NULL, "another site whose pages may connect"},
    {"demo", O_DEMO, NULL, "Other", "publish a synthetic market feed (for the demo page)"},
    {"config", O_CONFIG, "FILE", NULL, "read flags from FILE (format below)"},
    {"help", O_HELP, NULL, NULL, "print this text and exit (also -h)"},
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
        tw_config *c;
        char *err;
        size_t errlen;
        const char *file; /* NULL while reading argv */
        unsigned line;
        unsigned seg;        /* bumped whenever the source of flags changes */
        unsigned listen_seg; /* source whose entries fill c->listen; UINT_MAX = defaults */
        unsigned origin_seg; /* likewise for c->origins */
        int profile;         /* index into profiles[], -1 = none given */
        bool ping_set, idle_set;
        uint64_t ping_ms, idle_ms;
};

/* ---- unit parsers ---- */

struct unit {
        const char *suffix;
        uint64_t scale;
};

static const struct unit duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"", 1000}, {NULL, 0}};
static const struct unit size_units[] = {
    {"", 1}, {"B", 1}, {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}, {NULL, 0}};

static bool is_digit(char ch)
{
        return ch >= '0' && ch <= '9';
}

/* "<digits>[.<digits>]<suffix>" scaled by the suffix's unit. Integer arithmetic only, so
 * "0.3s" is exactly 300 and never 299.99999; a fraction finer than the base unit is an
 * error rather than silently rounded. */
static int parse_scaled(const char *s, const struct unit *units, uint64_t *out)
{
        uint64_t whole = 0, frac = 0, fscale = 1;
        const char *p = s;

        if (!s || !is_digit(*p))
                return -EINVAL;
        for (; is_digit(*p); p++)
                if (__builtin_mul_overflow(whole, 10, &whole) ||
                    __builtin_add_overflow(whole, (uint64_t)(*p - '0'), &whole))
                        return -EINVAL;
        if (*p == '.') {
                p++;
                if (!is_digit(*p))
                        return -EINVAL;
                for (; is_digit(*p); p++) {
                        if (fscale == 1000000000) /* 9 digits is plenty */
                                return -EINVAL;
                        frac = frac * 10 + (uint64_t)(*p - '0');
                        fscale *= 10;
                }
        }
        const struct unit *u = units;
        while (u->suffix && strcmp(p, u->suffix) != 0)
                u++;
        if (!u->suffix)
                return -EINVAL;

        uint64_t v, f = frac * u->scale; /* < 1e9 * 2^30: cannot overflow */
        if (f % fscale != 0)
                return -EINVAL;
        if (__builtin_mul_overflow(whole, u->scale, &v) ||
            __builtin_add_overflow(v, f / fscale, &v))
                return -EINVAL;
        *out = v;
        return 0;
}

int tw_parse_duration_ms(const char *s, uint64_t *ms)
{
        return parse_scaled(s, duration_units, ms);
}

int tw_parse_size(const char *s, uint64_t *bytes)
{
        return parse_scaled(s, size_units, bytes);
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

/* ---- formatting for messages and --help ---- */

static const char *fmt_duration(uint64_t ms, char *buf, size_t cap)
{
        if (ms != 0 && ms % 60000 == 0)
                snprintf(buf, cap, "%" PRIu64 "m", ms / 60000);
        else if (ms % 1000 == 0)
                snprintf(buf, cap, "%" PRIu64 "s", ms / 1000);
        else
                snprintf(buf, cap, "%" PRIu64 "ms", ms);
        return buf;
}

static const char *fmt_size(uint64_t n, char *buf, size_t cap)
{
        static const char *const names[] = {"GiB", "MiB", "KiB"};
        for (int i = 0; i < 3; i++) {
                uint64_t unit = 1ull << (30 - 10 * i);
                if (n != 0 && n % unit == 0) {
                        snprintf(buf, cap, "%" PRIu64 "%s", n / unit, names[i]);
                        return buf;
                }
        }
        snprintf(buf, cap, "%" PRIu64, n);
        return buf;
}

/* ---- error reporting ---- */

/* Writes one line into err: "FILE:LINE: " when reading a config file, then the message. */
static int seterr(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int seterr(struct parser *p, const char *fmt, ...)
{
        char msg[384];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (p->err && p->errlen) {
                if (p->file)
                        snprintf(p->err, p->errlen, "%s:%u: %s", p->file, p->line, msg);
                else
                        snprintf(p->err, p->errlen, "%s", msg);
        }
        return -EINVAL;
}

/* An error about one flag: "--name: ..." on the command line, "name: ..." in a file,
 * where the user wrote it without dashes. */
static int fail(struct parser *p, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct parser *p, const char *name, const char *fmt, ...)
{
        char msg[320];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        return seterr(p, "%s%s: %s", p->file ? "" : "--", name, msg);
}

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
        c->slow_consumer = TW_SLOW_CONFLATE;
        c->history = 1024;
        c->max_subscriptions = 1024;
        c->max_topics = 100000;
        c->max_history_bytes = 256ull << 20;
        c->max_message_rate = 0;
        c->max_connections_per_ip = 0;
        c->token_grace_ms = 10000;
}

static const struct opt *find_opt(const char *name, size_t len)
{
        for (size_t i = 0; i < NOPTS; i++)
                if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0)
                        return &opts[i];
        return NULL;
}

static int set_duration(struct parser *p, const struct opt *o, const char *v, bool nonzero,
                        uint64_t *dst)
{
        uint64_t ms;
        if (tw_parse_duration_ms(v, &ms) != 0)
                return fail(p, o->name, "invalid duration '%s' (use ms, s or m)", v);
        if (nonzero && ms == 0)
                return fail(p, o->name, "must be greater than 0");
        if (ms > MAX_DURATION_MS)
                return fail(p, o->name, "'%s' is over the limit of 24h", v);
        *dst = ms;
        return 0;
}

static int set_size(struct parser *p, const struct opt *o, const char *v, uint64_t *dst)
{
        uint64_t n;
        if (tw_parse_size(v, &n) != 0)
                return fail(p, o->name, "invalid size '%s' (use bytes, KiB, MiB or GiB)", v);
        if (n == 0)
                return fail(p, o->name, "must be greater than 0");
        *dst = n;
        return 0;
}

static int set_count(struct parser *p, const struct opt *o, const char *v, uint64_t min,
                     uint64_t max, uint32_t *dst)
{
        uint64_t n;
        if (parse_u64(v, &n) != 0)
                return fail(p, o->name, "invalid number '%s'", v);
        if (n < min)
                return fail(p, o->name, "must be at least %" PRIu64, min);
        if (n > max)
                return fail(p, o->name, "%s is over the limit of %" PRIu64, v, max);
        *dst = (uint32_t)n;
        return 0;
}

/* A count where 0 means "no limit", which may also be written "off". */
static int set_limit(struct parser *p, const struct opt *o, const char *v, uint64_t max,
                     uint32_t *dst)
{
        if (strcmp(v, "off") == 0) {
                *dst = 0;
                return 0;
        }
        return set_count(p, o, v, 0, max, dst);
}

/* "N/s" or a bare N (also per second); 0 or "off" turns the limit off. No other unit
 * is accepted, so none is ever guessed at. */
static int set_rate(struct parser *p, const struct opt *o, const char *v, uint32_t *dst)
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
static int set_string(struct parser *p, const struct opt *o, const char *v, unsigned slot,
                      const char **dst)
{
        if (!*v)
                return fail(p, o->name, "must not be empty");
        if (!p->file) {
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

static int add_listen(struct parser *p, const struct opt *o, const char *v)
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
static int add_origin(struct parser *p, const struct opt *o, const char *v)
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

static int apply(struct parser *p, const struct opt *o, const char *v)
{
        tw_config *c = p->c;
        int rc;

        switch (o->id) {
        case O_LISTEN:
        case O_TLS_LISTEN:
                return add_listen(p, o, v);
        case O_WORKERS:
                return set_count(p, o, v, 0, MAX_WORKERS, &c->workers);
        case O_PING:
                rc = set_duration(p, o, v, true, &p->ping_ms);
                p->ping_set |= rc == 0;
                return rc;
        case O_IDLE:
                rc = set_duration(p, o, v, true, &p->idle_ms);
                p->idle_set |= rc == 0;
                return rc;
        case O_PROFILE:
                for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++)
                        if (strcmp(v, profiles[i].name) == 0) {
                                p->profile = (int)i;
                                return 0;
                        }
                return fail(p, o->name, "unknown profile '%s' (use im, game, market or iot)", v);
        case O_TICK:
                return set_duration(p, o, v, true, &c->tick_ms);
        case O_TCP_UTO:
                /* Off only so bench/detect can show what the heartbeat alone achieves. */
                if (strcmp(v, "on") == 0)
                        c->tcp_user_timeout = true;
                else if (strcmp(v, "off") == 0)
                        c->tcp_user_timeout = false;
                else
                        return fail(p, o->name, "use on or off, not '%s'", v);
                return 0;
        case O_HANDSHAKE:
                return set_duration(p, o, v, true, &c->handshake_timeout_ms);
        case O_CLOSE:
                return set_duration(p, o, v, false, &c->close_timeout_ms);
        case O_DRAIN:
                return set_duration(p, o, v, false, &c->drain_timeout_ms);
        case O_SPREAD:
                return set_duration(p, o, v, false, &c->reconnect_spread_ms);
        case O_MAX_CONN:
                return set_count(p, o, v, 0, UINT32_MAX, &c->max_connections);
        case O_MAX_CONN_IP:
                return set_limit(p, o, v, UINT32_MAX, &c->max_connections_per_ip);
        case O_MAX_MSG:
                return set_size(p, o, v, &c->max_message);
        case O_MAX_RATE:
                return set_rate(p, o, v, &c->max_message_rate);
        case O_MAX_QUEUE:
                return set_size(p, o, v, &c->max_queue);
        case O_MAX_SUBS:
                return set_count(p, o, v, 1, UINT32_MAX, &c->max_subscriptions);
        case O_MAX_TOPICS:
                return set_count(p, o, v, 1, UINT32_MAX, &c->max_topics);
        case O_MAX_HIST_BYTES:
                return set_size(p, o, v, &c->max_history_bytes);
        case O_SLOW:
                if (strcmp(v, "conflate") == 0)
                        c->slow_consumer = TW_SLOW_CONFLATE;
                else if (strcmp(v, "disconnect") == 0)
                        c->slow_consumer = TW_SLOW_DISCONNECT;
                else
                        return fail(p, o->name, "unknown policy '%s' (use conflate or disconnect)",
                                    v);
                return 0;
        case O_HISTORY:
                return set_count(p, o, v, 1, UINT32_MAX, &c->history);
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
                return set_duration(p, o, v, false, &c->token_grace_ms);
        case O_PUB_TOKEN:
                return set_string(p, o, v, 3, &c->publish_token);
        case O_CONFIG:
                if (p->file)
                        return fail(p, o->name, "not allowed inside a config file");
                return load_file(p, v);
        case O_ORIGIN:
                return add_origin(p, o, v);
        case O_DEMO:
                c->demo = true;
                return 0;
        case O_HELP:
                break;
        }
        return fail(p, o->name, "takes no value");
}

/* ---- the config file ---- */

static bool is_blank(char ch)
{
        return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* One line: "name value" or "name = value"; '#' starts a comment only as the first
 * non-blank character, because a secret may well contain '#'. */
static int file_line(struct parser *p, char *s)
{
        char *end = s + strlen(s);

        while (end > s && is_blank(end[-1]))
                *--end = '\0';
        while (is_blank(*s))
                s++;
        if (*s == '\0' || *s == '#')
                return 0;
        if (s[0] == '-' && s[1] == '-') /* tolerate a pasted command-line flag */
                s += 2;

        const char *key = s;
        while (*s && !is_blank(*s) && *s != '=')
                s++;
        size_t klen = (size_t)(s - key);
        while (is_blank(*s))
                s++;
        if (*s == '=')
                for (s++; is_blank(*s); s++)
                        ;

        if (klen == 0)
                return seterr(p, "expected 'flag value' or 'flag = value'");
        const struct opt *o = find_opt(key, klen);
        if (!o || o->id == O_HELP)
                return seterr(p, "%.*s: unknown setting (see --help)", (int)klen, key);
        if (!o->arg) /* a switch: its name alone */
                return *s ? fail(p, o->name, "takes no value") : apply(p, o, NULL);
        if (*s == '\0')
                return fail(p, o->name, "missing value");
        return apply(p, o, s);
}

static int load_file(struct parser *p, const char *path)
{
        char buf[FILE_LINE_MAX];
        int rc = 0;
        FILE *f = fopen(path, "r");

        if (!f)
                return fail(p, "config", "cannot open '%s': %s", path, strerror(errno));
        p->file = path;
        p->line = 0;
        p->seg++;
        while (fgets(buf, sizeof buf, f)) {
                p->line++;
                size_t n = strlen(buf);
                if (n == sizeof buf - 1 && buf[n - 1] != '\n') {
                        int next = getc(f); /* a full buffer may also be the last line */
                        if (next != EOF) {
                                rc = seterr(p, "line too long (at most %d bytes)",
                                            FILE_LINE_MAX - 2);
                                break;
                        }
                }
                if ((rc = file_line(p, buf)) != 0)
                        break;
        }
        if (rc == 0 && ferror(f))
                rc = seterr(p, "read error");
        fclose(f);
        p->file = NULL;
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
        struct parser p = {.c = c,
                           .err = err,
                           .errlen = errlen,
                           .listen_seg = UINT_MAX,
                           .origin_seg = UINT_MAX,
                           .profile = -1};

        tw_config_defaults(c);
        if (err && errlen)
                err[0] = '\0';
        for (int i = 1; i < argc; i++) {
                const char *arg = argv[i], *v;
                int rc;

                if (strcmp(arg, "-h") == 0) {
                        tw_config_usage(out ? out : stdout);
                        return 1;
                }
                if (strncmp(arg, "--", 2) != 0)
                        return seterr(&p,
                                      "'%s': unexpected argument (flags start with --; see "
                                      "--help)",
                                      arg);
                const char *name = arg + 2, *eq = strchr(name, '=');
                size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
                const struct opt *o = find_opt(name, nlen);
                if (!o)
                        return seterr(&p, "--%.*s: unknown flag (see --help)", (int)nlen, name);
                if (o->id == O_HELP) {
                        if (eq)
                                return fail(&p, o->name, "takes no value");
                        tw_config_usage(out ? out : stdout);
                        return 1;
                }
                if (!o->arg) { /* a switch */
                        if (eq)
                                return fail(&p, o->name, "takes no value");
                        if ((rc = apply(&p, o, NULL)) != 0)
                                return rc;
                        continue;
                }
                /* "--flag value": a following "--word" is the next flag, not a value
                 * (use --flag=--value for a value that really starts with dashes). */
                if (eq)
                        v = eq + 1;
                else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                        v = argv[++i];
                else
                        return fail(&p, o->name, "missing value");
                if ((rc = apply(&p, o, v)) != 0)
                        return rc;
        }
        return finish(&p);
}

/* ---- --help ---- */

static const char *fmt_default(enum opt_id id, const tw_config *d, char *buf, size_t cap)
{
        switch (id) {
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
        char def[64], left[40];

        tw_config_defaults(&d);
        fprintf(out, "Usage: tickwire [flags]\n"
                     "\n"
                     "A WebSocket push server with heartbeat-based dead-peer detection.\n"
                     "Flags take \"--flag value\" or \"--flag=value\".\n");
        for (size_t i = 0; i < NOPTS; i++) {
                const struct opt *o = &opts[i];
                const char *dv = fmt_default(o->id, &d, def, sizeof def);

                if (o->group)
                        fprintf(out, "\n%s:\n", o->group);
                snprintf(left, sizeof left, "--%s%s%s", o->name, o->arg ? " " : "",
                         o->arg ? o->arg : "");
                if (dv)
                        fprintf(out, "  %-26s %s [%s]\n", left, o->help, dv);
                else
                        fprintf(out, "  %-26s %s\n", left, o->help);
        }
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
