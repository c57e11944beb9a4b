/*
 * The loadgen command line. Flags take "--flag value" or "--flag=value", like the
 * server's. Units come from the server's own parsers (tw_parse_duration_ms,
 * tw_parse_listen) so "30s" means the same thing on both sides of a test.
 */
#include "opts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tickwire/config.h"

static const char *const scenario_names[] = {"idle",  "silent", "abort", "graceful",
                                             "storm", "market", "slow"};

const char *lg_scenario_name(enum lg_scenario s)
{
        return scenario_names[s];
}

void lg_opts_usage(FILE *out)
{
        fputs(
            "Usage: tickwire-loadgen --target HOST:PORT --connections N [flags]\n"
            "\n"
            "Opens many WebSocket clients over io_uring (one ring per thread, direct\n"
            "descriptors), plays a scenario, and reports connect rate, failures, latency\n"
            "and how long the server takes to notice silent clients.\n"
            "Flags take \"--flag value\" or \"--flag=value\".\n"
            "\n"
            "Connections:\n"
            "  --target ADDR            server address [127.0.0.1:8080]\n"
            "  --path PATH              WebSocket resource [/ws]\n"
            "  --connections N          clients to open [1000]\n"
            "  --sources A-B            local addresses to spread over, e.g.\n"
            "                           127.0.0.1-127.0.0.40 (IP_BIND_ADDRESS_NO_PORT) [kernel's]\n"
            "  --connect-rate R         new connections per second [20000]\n"
            "  --connect-timeout DUR    connect + 101 deadline, then 'timeout' [10s]\n"
            "  --threads N              rings/threads; raised when N * 19,900 < connections\n"
            "                           [online CPUs]\n"
            "\n"
            "Scenario:\n"
            "  --scenario S             idle|market|silent|abort|graceful|storm|slow [idle]\n"
            "  --duration DUR           whole run, from the first connect [60s]\n"
            "  --silent-at DUR          when the event hits (silent, abort, graceful, slow)\n"
            "                           [10s]\n"
            "  --silent-fraction F      share of clients it hits [0.1; abort/graceful: 1]\n"
            "  --slow-fraction F        slow: the same, for subscribers that stop reading\n"
            "  --resume-at DUR          slow: when the slow subscribers read again (what\n"
            "                           they find is reported) [duration - 3s]\n"
            "  --server-pid PID         slow: sample the server's VmRSS from /proc/PID\n"
            "  --slow-rcvbuf SIZE       slow: SO_RCVBUF of the slow clients, so the server's\n"
            "                           bound is reached in seconds, not minutes; 0 = the\n"
            "                           kernel's autotuning (up to MiBs) [16KiB]\n"
            "  --silence app|power      app: stop talking and reading, kernel still ACKs;\n"
            "                           power: also drop every packet (BPF filter) [app]\n"
            "  --close-timeout DUR      graceful: wait this long for the Close echo [2s]\n"
            "  --no-jitter              storm: plain exponential backoff, no full jitter\n"
            "  --backoff-base DUR       storm: first backoff step [1s]\n"
            "  --backoff-cap DUR        storm: backoff ceiling [30s]\n"
            "\n"
            "Pub/sub (market, slow; storm too when --topics is given: it resubscribes with\n"
            "\"since\" after each reconnect and counts what the resume lost):\n"
            "  --topics N               topics lg.0 .. lg.N-1 [100]\n"
            "  --zipf S                 subscriber i takes topic k with probability\n"
            "                           ~ 1/(k+1)^S (one topic each) [1.0]\n"
            "  --publishers K           publishing connections, extra to --connections [1]\n"
            "  --publish-rate R         messages/s over all publishers; each publisher goes\n"
            "                           round-robin over its share of the topics [10000]\n"
            "  --payload B              bytes of each published value\n"
            "                           {\"t\":<send time us>,\"p\":\"xx..\"} [64]\n"
            "  --burst N                messages per publisher per tick: the tick is N/rate\n"
            "                           (timers have 1 ms grain) [0: rate/1000, at least 1]\n"
            "  --publish-via http|ws    POST /publish on keep-alive connections, or\n"
            "                           {\"type\":\"publish\"} over WebSocket [http]\n"
            "  --publish-token T        sent as 'Authorization: Bearer T'\n"
            "\n"
            "TLS:\n"
            "  --tls                    wss://: wolfSSL, ciphertext through the ring\n"
            "  --insecure               accept any server certificate\n"
            "  --ca FILE                PEM CA(s) to verify the server [system store]\n"
            "  --sni NAME               server name to send and verify [none]\n"
            "\n"
            "Heartbeat (client side):\n"
            "  --ping-interval DUR      app ping {\"type\":\"ping\",\"time\":T} period [30s]\n"
            "  --no-app-ping            do not send app pings\n"
            "  --no-pong                do not answer server Pings\n"
            "\n"
            "Server settings (for the expected detection window; read from --server-log's\n"
            "'listening' line when not given):\n"
            "  --server-ping-interval DUR\n"
            "  --server-idle-timeout DUR\n"
            "  --server-tick DUR        [10ms]\n"
            "  --server-log FILE        the server's stderr: 'detect' lines (power mode)\n"
            "\n"
            "Report:\n"
            "  --json FILE              JSON report (DESIGN 7 fields and extras)\n"
            "  --csv FILE               per-event samples: event,conn,t_ms,value_ms\n"
            "  --quiet                  no live progress on stderr\n"
            "  --seed N                 PRNG seed [time]\n"
            "  --help                   this text\n",
            out);
}

static void defaults(lg_opts *o)
{
        memset(o, 0, sizeof(*o));
        o->target.sin_family = AF_INET;
        o->target.sin_port = htons(8080);
        o->target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        strcpy(o->target_text, "127.0.0.1:8080");
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

static int parse_u32(const char *s, uint32_t *v)
{
        char *end;
        unsigned long long x;

        if (!*s || *s == '-')
                return -EINVAL;
        errno = 0;
        x = strtoull(s, &end, 10);
        if (errno || *end || x > UINT32_MAX)
                return -EINVAL;
        *v = (uint32_t)x;
        return 0;
}

static int parse_double(const char *s, double *v)
{
        char *end;

        errno = 0;
        *v = strtod(s, &end);
        if (errno || *end || end == s || !isfinite(*v))
                return -EINVAL;
        return 0;
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

static int parse_target(const char *s, lg_opts *o)
{
        tw_listen l;

        if (tw_parse_listen(s, &l) < 0 || l.addr.ss_family != AF_INET)
                return -EINVAL;
        memcpy(&o->target, &l.addr, sizeof(o->target));
        if (o->target.sin_port == 0)
                return -EINVAL;
        tw_listen_format(&l, o->target_text, sizeof(o->target_text));
        return 0;
}

static int parse_scenario(const char *s, lg_opts *o)
{
        for (size_t i = 0; i < sizeof(scenario_names) / sizeof(scenario_names[0]); i++) {
                if (strcmp(s, scenario_names[i]) == 0) {
                        o->scenario = (enum lg_scenario)i;
                        return 0;
                }
        }
        return -EINVAL;
}

enum { F_BOOL, F_VALUE };

/* One flag with a value: returns 0, or -EINVAL when the value is bad. */
static int apply(lg_opts *o, const char *f, const char *v)
{
        uint64_t ms;

        if (!strcmp(f, "target"))
                return parse_target(v, o);
        if (!strcmp(f, "path")) {
                if (v[0] != '/')
                        return -EINVAL;
                o->path = v;
                return 0;
        }
        if (!strcmp(f, "connections"))
                return parse_u32(v, &o->connections) < 0 || o->connections == 0 ? -EINVAL : 0;
        if (!strcmp(f, "sources"))
                return parse_sources(v, o);
        if (!strcmp(f, "connect-rate"))
                return parse_double(v, &o->connect_rate) < 0 || o->connect_rate <= 0 ? -EINVAL : 0;
        if (!strcmp(f, "threads")) {
                uint32_t n;
                if (parse_u32(v, &n) < 0 || n > 1024)
                        return -EINVAL;
                o->threads = n;
                return 0;
        }
        if (!strcmp(f, "scenario"))
                return parse_scenario(v, o);
        if (!strcmp(f, "silence")) {
                if (!strcmp(v, "app"))
                        o->silence = LG_SILENCE_APP;
                else if (!strcmp(v, "power"))
                        o->silence = LG_SILENCE_POWER;
                else
                        return -EINVAL;
                return 0;
        }
        if (!strcmp(f, "silent-fraction") || !strcmp(f, "slow-fraction")) {
                if (parse_double(v, &o->fraction) < 0 || o->fraction < 0 || o->fraction > 1)
                        return -EINVAL;
                o->fraction_set = true;
                return 0;
        }
        if (!strcmp(f, "topics")) {
                o->topics_set = true;
                return parse_u32(v, &o->topics) < 0 || o->topics == 0 ? -EINVAL : 0;
        }
        if (!strcmp(f, "zipf"))
                return parse_double(v, &o->zipf_s) < 0 || o->zipf_s < 0 || o->zipf_s > 10 ? -EINVAL
                                                                                          : 0;
        if (!strcmp(f, "publishers"))
                return parse_u32(v, &o->publishers) < 0 || o->publishers > 10000 ? -EINVAL : 0;
        if (!strcmp(f, "burst"))
                return parse_u32(v, &o->burst) < 0 || o->burst > 100000 ? -EINVAL : 0;
        if (!strcmp(f, "publish-via")) {
                if (!strcmp(v, "http"))
                        o->pub_via = LG_PUB_HTTP;
                else if (!strcmp(v, "ws"))
                        o->pub_via = LG_PUB_WS;
                else
                        return -EINVAL;
                return 0;
        }
        if (!strcmp(f, "publish-token")) {
                if (!*v || strpbrk(v, "\r\n"))
                        return -EINVAL;
                o->publish_token = v;
                return 0;
        }
        if (!strcmp(f, "server-pid")) {
                uint32_t pid;
                if (parse_u32(v, &pid) < 0 || pid == 0 || pid > INT32_MAX)
                        return -EINVAL;
                o->server_pid = (int)pid;
                return 0;
        }
        if (!strcmp(f, "slow-rcvbuf")) {
                uint64_t b;
                if (tw_parse_size(v, &b) < 0 || b > (1u << 30))
                        return -EINVAL;
                o->slow_rcvbuf = (uint32_t)b;
                return 0;
        }
        if (!strcmp(f, "ca")) {
                o->ca_file = v;
                return 0;
        }
        if (!strcmp(f, "sni")) {
                o->sni = v;
                return 0;
        }
        if (!strcmp(f, "payload"))
                return parse_u32(v, &o->payload) < 0 || o->payload > (1u << 16) ? -EINVAL : 0;
        if (!strcmp(f, "publish-rate"))
                return parse_double(v, &o->publish_rate) < 0 || o->publish_rate < 0 ? -EINVAL : 0;
        if (!strcmp(f, "seed")) {
                char *end;
                errno = 0;
                o->seed = strtoull(v, &end, 0);
                return errno || *end || end == v ? -EINVAL : 0;
        }
        if (!strcmp(f, "server-log")) {
                o->server_log = v;
                return 0;
        }
        if (!strcmp(f, "json")) {
                o->json_path = v;
                return 0;
        }
        if (!strcmp(f, "csv")) {
                o->csv_path = v;
                return 0;
        }

        /* Everything else is a duration. */
        if (tw_parse_duration_ms(v, &ms) < 0)
                return -EINVAL;
        if (!strcmp(f, "duration"))
                o->duration_ms = ms;
        else if (!strcmp(f, "ping-interval"))
                o->ping_interval_ms = ms;
        else if (!strcmp(f, "silent-at"))
                o->event_at_ms = ms;
        else if (!strcmp(f, "resume-at"))
                o->resume_at_ms = ms;
        else if (!strcmp(f, "connect-timeout"))
                o->connect_timeout_ms = ms;
        else if (!strcmp(f, "close-timeout"))
                o->close_timeout_ms = ms;
        else if (!strcmp(f, "backoff-base"))
                o->backoff_base_ms = ms;
        else if (!strcmp(f, "backoff-cap"))
                o->backoff_cap_ms = ms;
        else if (!strcmp(f, "server-ping-interval")) {
                o->srv_ping_ms = ms;
                o->srv_ping_set = true;
        } else if (!strcmp(f, "server-idle-timeout")) {
                o->srv_idle_ms = ms;
                o->srv_idle_set = true;
        } else if (!strcmp(f, "server-tick"))
                o->srv_tick_ms = ms;
        else
                return -ENOENT;
        if (ms == 0 && (strcmp(f, "silent-at") != 0))
                return -EINVAL;
        return 0;
}

static const char *const bool_flags[] = {"no-pong", "no-app-ping", "no-jitter", "quiet",
                                         "tls",     "insecure",    NULL};
static const char *const value_flags[] = {"target",
                                          "path",
                                          "connections",
                                          "sources",
                                          "connect-rate",
                                          "threads",
                                          "scenario",
                                          "silence",
                                          "silent-fraction",
                                          "slow-fraction",
                                          "resume-at",
                                          "server-pid",
                                          "slow-rcvbuf",
                                          "zipf",
                                          "publishers",
                                          "burst",
                                          "publish-via",
                                          "publish-token",
                                          "ca",
                                          "sni",
                                          "topics",
                                          "payload",
                                          "publish-rate",
                                          "seed",
                                          "server-log",
                                          "json",
                                          "csv",
                                          "duration",
                                          "ping-interval",
                                          "silent-at",
                                          "connect-timeout",
                                          "close-timeout",
                                          "backoff-base",
                                          "backoff-cap",
                                          "server-ping-interval",
                                          "server-idle-timeout",
                                          "server-tick",
                                          NULL};

static bool in_list(const char *const *list, const char *f)
{
        for (; *list; list++)
                if (!strcmp(*list, f))
                        return true;
        return false;
}

int lg_opts_parse(lg_opts *o, int argc, char **argv, FILE *out, char *err, size_t errlen)
{
        defaults(o);
        for (int i = 1; i < argc; i++) {
                const char *arg = argv[i];
                char name[64];
                const char *eq, *val;
                size_t n;

                if (strncmp(arg, "--", 2) != 0) {
                        snprintf(err, errlen, "unexpected argument '%s'", arg);
                        return -EINVAL;
                }
                arg += 2;
                eq = strchr(arg, '=');
                n = eq ? (size_t)(eq - arg) : strlen(arg);
                if (n >= sizeof(name)) {
                        snprintf(err, errlen, "unknown flag --%.40s", arg);
                        return -EINVAL;
                }
                memcpy(name, arg, n);
                name[n] = 0;
                if (!strcmp(name, "help")) {
                        lg_opts_usage(out);
                        return 1;
                }
                if (in_list(bool_flags, name)) {
                        if (eq) {
                                snprintf(err, errlen, "--%s takes no value", name);
                                return -EINVAL;
                        }
                        if (!strcmp(name, "no-pong"))
                                o->pong = false;
                        else if (!strcmp(name, "no-app-ping"))
                                o->app_ping = false;
                        else if (!strcmp(name, "no-jitter"))
                                o->jitter = false;
                        else if (!strcmp(name, "quiet"))
                                o->quiet = true;
                        else if (!strcmp(name, "insecure"))
                                o->insecure = true;
                        else
                                o->tls = true;
                        continue;
                }
                if (!in_list(value_flags, name)) {
                        snprintf(err, errlen, "unknown flag --%s", name);
                        return -EINVAL;
                }
                if (eq) {
                        val = eq + 1;
                } else if (i + 1 < argc) {
                        val = argv[++i];
                } else {
                        snprintf(err, errlen, "--%s needs a value", name);
                        return -EINVAL;
                }
                if (apply(o, name, val) < 0) {
                        snprintf(err, errlen, "--%s: bad value '%s'", name, val);
                        return -EINVAL;
                }
        }
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
