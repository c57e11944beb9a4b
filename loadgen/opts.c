/*
 * The loadgen command line. Every flag is one entry of opts[] below (name, kind, bounds,
 * help), walked by the server's own flags module (tickwire/flags.h): "--flag value" or
 * "--flag=value", the same units (tw_parse_duration_ms, tw_parse_size, tw_parse_listen)
 * so "30s" means the same thing on both sides of a test, and the same messages. --help
 * is printed from the same table.
 */
#include "opts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <float.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tickwire/config.h"
#include "tickwire/flags.h"

enum lg_opt_id {
        O_TARGET,
        O_PATH,
        O_CONNECTIONS,
        O_SOURCES,
        O_CONNECT_RATE,
        O_CONNECT_TIMEOUT,
        O_THREADS,
        O_SCENARIO,
        O_DURATION,
        O_SILENT_AT,
        O_FRACTION,
        O_RESUME_AT,
        O_SERVER_PID,
        O_SLOW_RCVBUF,
        O_SILENCE,
        O_CLOSE_TIMEOUT,
        O_NO_JITTER,
        O_BACKOFF_BASE,
        O_BACKOFF_CAP,
        O_TOPICS,
        O_ZIPF,
        O_PUBLISHERS,
        O_PUBLISH_RATE,
        O_PAYLOAD,
        O_BURST,
        O_PUBLISH_VIA,
        O_PUBLISH_TOKEN,
        O_TLS,
        O_INSECURE,
        O_CA,
        O_SNI,
        O_PING_INTERVAL,
        O_NO_APP_PING,
        O_NO_PONG,
        O_SERVER_TIMEOUT,
        O_SRV_PING,
        O_SRV_IDLE,
        O_SRV_TICK,
        O_SERVER_LOG,
        O_JSON,
        O_CSV,
        O_QUIET,
        O_SEED,
        O_HELP,
};

static const char *const silence_names[] = {"app", "power", NULL}; /* enum lg_silence */
static const char *const via_names[] = {"http", "ws", NULL};       /* enum lg_publish_via */
static const char *const scenario_list[] = {"idle",  "silent", "abort", "graceful",
                                            "storm", "market", "slow",  NULL};

#define DUR(min_)               .kind = TW_FLAG_DURATION, .arg = "DUR", .min = (min_)
#define COUNT(arg_, min_, max_) .kind = TW_FLAG_COUNT, .arg = (arg_), .min = (min_), .max = (max_)
#define REAL(arg_, lo, hi)      .kind = TW_FLAG_REAL, .arg = (arg_), .rmin = (lo), .rmax = (hi)

/* The defaults in [brackets] are part of the help text: they are written once here and
 * set in defaults() below. */
static const tw_flag opts[] = {
    {.name = "target",
     .id = O_TARGET,
     .kind = TW_FLAG_CUSTOM,
     .arg = "ADDR",
     .group = "Connections",
     .help = "server address, or a list A,B,...: client i takes the (i mod n)-th;\n"
             "storm moves a dropped client to the next [127.0.0.1:8080]"},
    {.name = "path",
     .id = O_PATH,
     .kind = TW_FLAG_CUSTOM,
     .arg = "PATH",
     .help = "WebSocket resource [/ws]"},
    {.name = "connections",
     .id = O_CONNECTIONS,
     COUNT("N", 1, UINT32_MAX),
     .help = "clients to open [1000]"},
    {.name = "sources",
     .id = O_SOURCES,
     .kind = TW_FLAG_CUSTOM,
     .arg = "A-B",
     .help = "local addresses to spread over, e.g.\n"
             "127.0.0.1-127.0.0.40 (IP_BIND_ADDRESS_NO_PORT) [kernel's]"},
    {.name = "connect-rate",
     .id = O_CONNECT_RATE,
     REAL("R", 0, DBL_MAX),
     .help = "new connections per second [20000]"},
    {.name = "connect-timeout",
     .id = O_CONNECT_TIMEOUT,
     DUR(1),
     .help = "connect + 101 deadline, then 'timeout' [10s]"},
    {.name = "threads",
     .id = O_THREADS,
     COUNT("N", 0, 1024),
     .help = "rings/threads; raised when N * 19,900 < connections\n[online CPUs]"},
    {.name = "scenario",
     .id = O_SCENARIO,
     .kind = TW_FLAG_ENUM,
     .arg = "S",
     .choices = scenario_list,
     .what = "scenario",
     .group = "Scenario",
     .help = "idle|market|silent|abort|graceful|storm|slow [idle]"},
    {.name = "duration",
     .id = O_DURATION,
     DUR(1),
     .help = "whole run, from the first connect [60s]"},
    {.name = "silent-at",
     .id = O_SILENT_AT,
     DUR(0),
     .help = "when the event hits (silent, abort, graceful, slow)\n[10s]"},
    {.name = "silent-fraction",
     .id = O_FRACTION,
     REAL("F", 0, 1),
     .help = "share of clients it hits [0.1; abort/graceful: 1]"},
    {.name = "slow-fraction",
     .id = O_FRACTION,
     REAL("F", 0, 1),
     .help = "slow: the same, for subscribers that stop reading"},
    {.name = "resume-at",
     .id = O_RESUME_AT,
     DUR(1),
     .help = "slow: when the slow subscribers read again (what\n"
             "they find is reported) [duration - 3s]"},
    {.name = "server-pid",
     .id = O_SERVER_PID,
     COUNT("PID", 1, INT32_MAX),
     .help = "slow: sample the server's VmRSS from /proc/PID"},
    {.name = "slow-rcvbuf",
     .id = O_SLOW_RCVBUF,
     .kind = TW_FLAG_SIZE,
     .arg = "SIZE",
     .max = 1u << 30,
     .help = "slow: SO_RCVBUF of the slow clients, so the server's\n"
             "bound is reached in seconds, not minutes; 0 = the\n"
             "kernel's autotuning (up to MiBs) [16KiB]"},
    {.name = "silence",
     .id = O_SILENCE,
     .kind = TW_FLAG_ENUM,
     .arg = "app|power",
     .choices = silence_names,
     .what = "mode",
     .help = "app: stop talking and reading, kernel still ACKs;\n"
             "power: also drop every packet (BPF filter) [app]"},
    {.name = "close-timeout",
     .id = O_CLOSE_TIMEOUT,
     DUR(1),
     .help = "graceful: wait this long for the Close echo [2s]"},
    {.name = "no-jitter",
     .id = O_NO_JITTER,
     .kind = TW_FLAG_SWITCH,
     .help = "storm: plain exponential backoff, no full jitter"},
    {.name = "backoff-base",
     .id = O_BACKOFF_BASE,
     DUR(1),
     .help = "storm: first backoff step [1s]"},
    {.name = "backoff-cap", .id = O_BACKOFF_CAP, DUR(1), .help = "storm: backoff ceiling [30s]"},
    {.name = "topics",
     .id = O_TOPICS,
     COUNT("N", 1, UINT32_MAX),
     .group = "Pub/sub (market, slow; storm too when --topics is given: it resubscribes with\n"
              "\"since\" after each reconnect and counts what the resume lost)",
     .help = "topics lg.0 .. lg.N-1 [100]"},
    {.name = "zipf",
     .id = O_ZIPF,
     REAL("S", 0, 10),
     .help = "subscriber i takes topic k with probability\n~ 1/(k+1)^S (one topic each) [1.0]"},
    {.name = "publishers",
     .id = O_PUBLISHERS,
     COUNT("K", 0, 10000),
     .help = "publishing connections, extra to --connections [1]"},
    {.name = "publish-rate",
     .id = O_PUBLISH_RATE,
     REAL("R", 0, DBL_MAX),
     .help = "messages/s over all publishers; each publisher goes\n"
             "round-robin over its share of the topics [10000]"},
    {.name = "payload",
     .id = O_PAYLOAD,
     COUNT("B", 0, 1u << 16),
     .help = "bytes of each published value\n{\"t\":<send time us>,\"p\":\"xx..\"} [64]"},
    {.name = "burst",
     .id = O_BURST,
     COUNT("N", 0, 100000),
     .help = "messages per publisher per tick: the tick is N/rate\n"
             "(timers have 1 ms grain) [0: rate/1000, at least 1]"},
    {.name = "publish-via",
     .id = O_PUBLISH_VIA,
     .kind = TW_FLAG_ENUM,
     .arg = "http|ws",
     .choices = via_names,
     .what = "way",
     .help = "POST /publish on keep-alive connections, or\n"
             "{\"type\":\"publish\"} over WebSocket [http]"},
    {.name = "publish-token",
     .id = O_PUBLISH_TOKEN,
     .kind = TW_FLAG_CUSTOM,
     .arg = "T",
     .help = "sent as 'Authorization: Bearer T'"},
    {.name = "tls",
     .id = O_TLS,
     .kind = TW_FLAG_SWITCH,
     .group = "TLS",
     .help = "wss://: wolfSSL, ciphertext through the ring"},
    {.name = "insecure",
     .id = O_INSECURE,
     .kind = TW_FLAG_SWITCH,
     .help = "accept any server certificate"},
    {.name = "ca",
     .id = O_CA,
     .kind = TW_FLAG_STRING,
     .arg = "FILE",
     .help = "PEM CA(s) to verify the server [system store]"},
    {.name = "sni",
     .id = O_SNI,
     .kind = TW_FLAG_STRING,
     .arg = "NAME",
     .help = "server name to send and verify [none]"},
    {.name = "ping-interval",
     .id = O_PING_INTERVAL,
     DUR(1),
     .group = "Heartbeat (client side)",
     .help = "app ping {\"type\":\"ping\",\"time\":T} period [30s]"},
    {.name = "no-app-ping",
     .id = O_NO_APP_PING,
     .kind = TW_FLAG_SWITCH,
     .help = "do not send app pings"},
    {.name = "no-pong",
     .id = O_NO_PONG,
     .kind = TW_FLAG_SWITCH,
     .help = "do not answer server Pings"},
    {.name = "server-timeout",
     .id = O_SERVER_TIMEOUT,
     DUR(1),
     .help = "a client that hears nothing from the server for DUR\n"
             "counts it dead and closes ('server_dead'); storm\n"
             "then reconnects [off]"},
    {.name = "server-ping-interval",
     .id = O_SRV_PING,
     DUR(1),
     .group = "Server settings (for the expected detection window; read from --server-log's\n"
              "'listening' line when not given)",
     .help = ""},
    {.name = "server-idle-timeout", .id = O_SRV_IDLE, DUR(1), .help = ""},
    {.name = "server-tick", .id = O_SRV_TICK, DUR(1), .help = "[10ms]"},
    {.name = "server-log",
     .id = O_SERVER_LOG,
     .kind = TW_FLAG_STRING,
     .arg = "FILE",
     .help = "the server's stderr: 'detect' lines (power mode)"},
    {.name = "json",
     .id = O_JSON,
     .kind = TW_FLAG_STRING,
     .arg = "FILE",
     .group = "Report",
     .help = "JSON report (DESIGN 7 fields and extras)"},
    {.name = "csv",
     .id = O_CSV,
     .kind = TW_FLAG_STRING,
     .arg = "FILE",
     .help = "per-event samples: event,conn,t_ms,value_ms"},
    {.name = "quiet", .id = O_QUIET, .kind = TW_FLAG_SWITCH, .help = "no live progress on stderr"},
    {.name = "seed", .id = O_SEED, .kind = TW_FLAG_CUSTOM, .arg = "N", .help = "PRNG seed [time]"},
    {.name = "help", .id = O_HELP, .kind = TW_FLAG_HELP, .help = "this text"},
};
#define NOPTS (sizeof opts / sizeof opts[0])

const char *lg_scenario_name(enum lg_scenario s)
{
        return scenario_list[s];
}

void lg_opts_usage(FILE *out)
{
        fputs("Usage: tickwire-loadgen --target HOST:PORT --connections N [flags]\n"
              "\n"
              "Opens many WebSocket clients over io_uring (one ring per thread, direct\n"
              "descriptors), plays a scenario, and reports connect rate, failures, latency\n"
              "and how long the server takes to notice silent clients.\n"
              "Flags take \"--flag value\" or \"--flag=value\".\n",
              out);
        tw_flags_usage(out, opts, NOPTS, 24, NULL, NULL);
}

static void defaults(lg_opts *o)
{
        memset(o, 0, sizeof(*o));
        o->target.sin_family = AF_INET;
        o->target.sin_port = htons(8080);
        o->target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        strcpy(o->target_text, "127.0.0.1:8080");
        o->targets[0] = o->target;
        strcpy(o->target_texts[0], o->target_text);
        o->ntargets = 1;
        o->path = "/ws";
        o->connections = 1000;
        o->connect_rate = 20000;
        o->scenario = LG_SC_IDLE;
        o->duration_ms = 60000;
        o->ping_interval_ms = 30000;
        o->pong = true;
        o->app_ping = true;
        o->fraction = 0.1;
        o->event_at_ms = 10000;
        o->silence = LG_SILENCE_APP;
        o->connect_timeout_ms = 10000;
        o->close_timeout_ms = 2000;
        o->jitter = true;
        o->backoff_base_ms = 1000;
        o->backoff_cap_ms = 30000;
        o->srv_tick_ms = 10;
        o->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;
        o->topics = 100;
        o->publish_rate = 10000;
        o->payload = 64;
        o->zipf_s = 1.0;
        o->publishers = 1;
        o->pub_via = LG_PUB_HTTP;
        o->slow_rcvbuf = 16384;
}

bool lg_opts_pubsub(const lg_opts *o)
{
        return o->scenario == LG_SC_MARKET || o->scenario == LG_SC_SLOW ||
               (o->scenario == LG_SC_STORM && o->topics_set);
}

/* "127.0.0.1-127.0.0.40" or a single address. */
static int parse_sources(const char *s, lg_opts *o)
{
        char a[64], b[64];
        const char *dash = strchr(s, '-');
        struct in_addr lo, hi;
        uint32_t l, h;

        if (dash) {
                if ((size_t)(dash - s) >= sizeof(a) || strlen(dash + 1) >= sizeof(b))
                        return -EINVAL;
                memcpy(a, s, (size_t)(dash - s));
                a[dash - s] = 0;
                strcpy(b, dash + 1);
        } else {
                if (strlen(s) >= sizeof(a))
                        return -EINVAL;
                strcpy(a, s);
                strcpy(b, s);
        }
        if (inet_pton(AF_INET, a, &lo) != 1 || inet_pton(AF_INET, b, &hi) != 1)
                return -EINVAL;
        l = ntohl(lo.s_addr);
        h = ntohl(hi.s_addr);
        if (h < l || h - l >= LG_MAX_SOURCES)
                return -EINVAL;
        o->nsources = 0;
        for (uint32_t x = l; x <= h; x++)
                o->sources[o->nsources++].s_addr = htonl(x);
        return 0;
}

static int parse_one_target(const char *s, struct sockaddr_in *sa, char *text, size_t cap)
{
        tw_listen l;

        if (tw_parse_listen(s, &l) < 0 || l.addr.ss_family != AF_INET)
                return -EINVAL;
        memcpy(sa, &l.addr, sizeof(*sa));
        if (sa->sin_port == 0)
                return -EINVAL;
        tw_listen_format(&l, text, cap);
        return 0;
}

/* HOST:PORT[,HOST:PORT...]; the first is also o->target, what probes and Host: use. */
static int parse_target(const char *s, lg_opts *o)
{
        char one[128];
        unsigned n = 0;

        for (const char *p = s;; p++) {
                const char *end = strchr(p, ',');
                size_t len = end ? (size_t)(end - p) : strlen(p);

                if (len == 0 || len >= sizeof(one) || n == LG_MAX_TARGETS)
                        return -EINVAL;
                memcpy(one, p, len);
                one[len] = 0;
                if (parse_one_target(one, &o->targets[n], o->target_texts[n],
                                     sizeof(o->target_texts[n])) < 0)
                        return -EINVAL;
                n++;
                if (!end)
                        break;
                p = end;
        }
        o->ntargets = n;
        o->target = o->targets[0];
        memcpy(o->target_text, o->target_texts[0], sizeof(o->target_text));
        return 0;
}

static int parse_seed(const char *s, uint64_t *v)
{
        char *end;

        errno = 0;
        *v = strtoull(s, &end, 0);
        return errno || *end || end == s ? -EINVAL : 0;
}

/* Stores one value the flags module has parsed and bounds-checked; the flags with a
 * syntax of their own are parsed here. One case per flag, hence its length. */
static int set(tw_flags *fl, const tw_flag *f, const tw_flag_value *val)
{
        lg_opts *o = fl->ctx;
        const char *v = val->text;

        switch ((enum lg_opt_id)f->id) {
        case O_TARGET:
                if (parse_target(v, o) < 0)
                        return tw_flags_fail(fl, f->name,
                                             "invalid address '%s' (IPv4 HOST:PORT, or a list "
                                             "of at most %d)",
                                             v, LG_MAX_TARGETS);
                return 0;
        case O_PATH:
                if (v[0] != '/')
                        return tw_flags_fail(fl, f->name, "'%s' does not start with '/'", v);
                o->path = v;
                return 0;
        case O_CONNECTIONS:
                o->connections = (uint32_t)val->u;
                return 0;
        case O_SOURCES:
                if (parse_sources(v, o) < 0)
                        return tw_flags_fail(fl, f->name,
                                             "invalid range '%s' (A or A-B, at most %d)", v,
                                             LG_MAX_SOURCES);
                return 0;
        case O_CONNECT_RATE:
                if (val->r <= 0)
                        return tw_flags_fail(fl, f->name, "must be greater than 0");
                o->connect_rate = val->r;
                return 0;
        case O_CONNECT_TIMEOUT:
                o->connect_timeout_ms = val->u;
                return 0;
        case O_THREADS:
                o->threads = (unsigned)val->u;
                return 0;
        case O_SCENARIO:
                o->scenario = (enum lg_scenario)val->u;
                return 0;
        case O_DURATION:
                o->duration_ms = val->u;
                return 0;
        case O_SILENT_AT:
                o->event_at_ms = val->u;
                return 0;
        case O_FRACTION:
                o->fraction = val->r;
                o->fraction_set = true;
                return 0;
        case O_RESUME_AT:
                o->resume_at_ms = val->u;
                return 0;
        case O_SERVER_PID:
                o->server_pid = (int)val->u;
                return 0;
        case O_SLOW_RCVBUF:
                o->slow_rcvbuf = (uint32_t)val->u;
                return 0;
        case O_SILENCE:
                o->silence = (enum lg_silence)val->u;
                return 0;
        case O_CLOSE_TIMEOUT:
                o->close_timeout_ms = val->u;
                return 0;
        case O_NO_JITTER:
                o->jitter = false;
                return 0;
        case O_BACKOFF_BASE:
                o->backoff_base_ms = val->u;
                return 0;
        case O_BACKOFF_CAP:
                o->backoff_cap_ms = val->u;
                return 0;
        case O_TOPICS:
                o->topics = (uint32_t)val->u;
                o->topics_set = true;
                return 0;
        case O_ZIPF:
                o->zipf_s = val->r;
                return 0;
        case O_PUBLISHERS:
                o->publishers = (uint32_t)val->u;
                return 0;
        case O_PUBLISH_RATE:
                o->publish_rate = val->r;
                return 0;
        case O_PAYLOAD:
                o->payload = (uint32_t)val->u;
                return 0;
        case O_BURST:
                o->burst = (uint32_t)val->u;
                return 0;
        case O_PUBLISH_VIA:
                o->pub_via = (enum lg_publish_via)val->u;
                return 0;
        case O_PUBLISH_TOKEN:
                if (!*v || strpbrk(v, "\r\n"))
                        return tw_flags_fail(fl, f->name, "must not be empty or hold CR or LF");
                o->publish_token = v;
                return 0;
        case O_TLS:
                o->tls = true;
                return 0;
        case O_INSECURE:
                o->insecure = true;
                return 0;
        case O_CA:
                o->ca_file = v;
                return 0;
        case O_SNI:
                o->sni = v;
                return 0;
        case O_PING_INTERVAL:
                o->ping_interval_ms = val->u;
                return 0;
        case O_NO_APP_PING:
                o->app_ping = false;
                return 0;
        case O_NO_PONG:
                o->pong = false;
                return 0;
        case O_SERVER_TIMEOUT:
                o->server_timeout_ms = val->u;
                return 0;
        case O_SRV_PING:
                o->srv_ping_ms = val->u;
                o->srv_ping_set = true;
                return 0;
        case O_SRV_IDLE:
                o->srv_idle_ms = val->u;
                o->srv_idle_set = true;
                return 0;
        case O_SRV_TICK:
                o->srv_tick_ms = val->u;
                return 0;
        case O_SERVER_LOG:
                o->server_log = v;
                return 0;
        case O_JSON:
                o->json_path = v;
                return 0;
        case O_CSV:
                o->csv_path = v;
                return 0;
        case O_QUIET:
                o->quiet = true;
                return 0;
        case O_SEED:
                if (parse_seed(v, &o->seed) < 0)
                        return tw_flags_fail(fl, f->name, "invalid number '%s'", v);
                return 0;
        case O_HELP:
                break;
        }
        return tw_flags_fail(fl, f->name, "takes no value");
}

/* Checks that involve more than one flag, and defaults that depend on the scenario. */
static int finish(lg_opts *o, char *err, size_t errlen)
{
        if (!o->fraction_set && (o->scenario == LG_SC_ABORT || o->scenario == LG_SC_GRACEFUL))
                o->fraction = 1.0;
        if (o->srv_ping_set && o->srv_idle_set && o->srv_idle_ms <= o->srv_ping_ms) {
                snprintf(err, errlen, "--server-idle-timeout: must exceed --server-ping-interval");
                return -EINVAL;
        }
        if ((o->insecure || o->ca_file || o->sni) && !o->tls) {
                snprintf(err, errlen, "--insecure/--ca/--sni: only with --tls");
                return -EINVAL;
        }
        if (o->scenario == LG_SC_SLOW) {
                if (!o->fraction_set)
                        o->fraction = 0.1;
                if (!o->resume_at_ms)
                        o->resume_at_ms =
                            o->duration_ms > 6000 ? o->duration_ms - 3000 : o->duration_ms / 2;
                if (o->resume_at_ms <= o->event_at_ms || o->resume_at_ms >= o->duration_ms) {
                        snprintf(err, errlen,
                                 "--resume-at: must fall after --silent-at and before the end "
                                 "of --duration");
                        return -EINVAL;
                }
        }
        if (lg_opts_pubsub(o) && o->publishers > 0 && o->topics < o->publishers) {
                snprintf(err, errlen, "--publishers: at most --topics (each owns its topics)");
                return -EINVAL;
        }
        return 0;
}

int lg_opts_parse(lg_opts *o, int argc, char **argv, FILE *out, char *err, size_t errlen)
{
        tw_flags fl = {.tab = opts, .n = NOPTS, .set = set, .ctx = o, .err = err, .errlen = errlen};

        defaults(o);
        int rc = tw_flags_parse_argv(&fl, argc, argv);
        if (rc == 1)
                lg_opts_usage(out);
        return rc != 0 ? rc : finish(o, err, errlen);
}
