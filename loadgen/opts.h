/*
 * opts — tickwire-loadgen's settings and the command line that fills them.
 *
 * Owns: struct lg_opts, its defaults, --help. Must not touch: sockets, threads, the
 * report. Parsing never exits: it returns a status and one line naming the bad flag, and
 * main decides (exit 2).
 */
#ifndef LG_OPTS_H
#define LG_OPTS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LG_MAX_SOURCES 256
#define LG_MAX_TARGETS 64 /* --target A,B,...: a client's target index fits a byte */

enum lg_scenario {
        LG_SC_IDLE,
        LG_SC_SILENT,
        LG_SC_ABORT,
        LG_SC_GRACEFUL,
        LG_SC_STORM,
        LG_SC_MARKET, /* pub/sub: Zipf subscribers, paced publishers, e2e latency */
        LG_SC_SLOW,   /* market, and some subscribers stop reading at --silent-at */
};

enum lg_silence { LG_SILENCE_APP, LG_SILENCE_POWER };

enum lg_publish_via { LG_PUB_HTTP, LG_PUB_WS };

typedef struct lg_opts {
        /* --target A[,B...]: client i connects to targets[i % ntargets] */
        struct sockaddr_in targets[LG_MAX_TARGETS];
        char target_texts[LG_MAX_TARGETS][64]; /* each "host:port", for Host: */
        unsigned ntargets;                     /* >= 1 */

        struct sockaddr_in target;              /* the first target (probes, the report) */
        char target_text[64];                   /* its "host:port" */
        const char *path;                       /* --path: the WebSocket resource [/ws] */
        uint32_t connections;                   /* --connections */
        struct in_addr sources[LG_MAX_SOURCES]; /* --sources: local addresses to bind */
        unsigned nsources;                      /* 0: let the kernel pick */
        double connect_rate;                    /* --connect-rate, new connections per second */
        unsigned threads;                       /* --threads: rings; 0 = online CPUs */
        enum lg_scenario scenario;              /* --scenario */
        uint64_t duration_ms;                   /* --duration: whole run, from the first connect */
        uint64_t ping_interval_ms;              /* --ping-interval: client app ping period */
        bool pong;                              /* answer server Pings (--no-pong) */
        bool app_ping;                          /* send {"type":"ping"} (--no-app-ping) */
        uint64_t server_timeout_ms;             /* --server-timeout: server dead; 0 = off */
        double fraction;                        /* --silent-fraction: clients the event hits */
        bool fraction_set;                      /* given explicitly */
        uint64_t event_at_ms;                   /* --silent-at: when the event happens */
        enum lg_silence silence;                /* --silence app|power */
        uint64_t connect_timeout_ms;            /* --connect-timeout: connect + 101 */
        uint64_t close_timeout_ms;              /* --close-timeout: graceful, wait for the echo */
        bool jitter;                            /* storm backoff with full jitter (--no-jitter) */
        uint64_t backoff_base_ms;               /* --backoff-base [1s] */
        uint64_t backoff_cap_ms;                /* --backoff-cap [30s] */
        uint64_t srv_ping_ms, srv_idle_ms;      /* --server-ping-interval/--server-idle-timeout */
        uint64_t srv_tick_ms;                   /* --server-tick [10ms] */
        bool srv_ping_set, srv_idle_set;
        const char *server_log; /* --server-log: the server's stderr, for detect
                                   lines and its heartbeat settings */
        const char *json_path;  /* --json */
        const char *csv_path;   /* --csv */
        bool quiet;             /* --quiet: no live progress */
        uint64_t seed;          /* --seed: PRNG seed (masks, keys, jitter) */
        /* pub/sub (market, slow; storm when --topics is given) */
        uint32_t topics;             /* --topics: lg.0 .. lg.N-1 */
        bool topics_set;             /* given explicitly (turns pub/sub on for storm) */
        double zipf_s;               /* --zipf: subscription popularity exponent [1] */
        uint32_t publishers;         /* --publishers: publishing connections [1] */
        double publish_rate;         /* --publish-rate: messages/s, all publishers */
        uint32_t payload;            /* --payload: bytes of each published JSON value */
        uint32_t burst;              /* --burst: messages per publisher tick; 0 = auto */
        enum lg_publish_via pub_via; /* --publish-via http|ws [http] */
        const char *publish_token;   /* --publish-token: Bearer for /publish or the 101 */
        uint64_t resume_at_ms;       /* slow: when slow clients read again; 0 = auto */
        uint32_t slow_rcvbuf;        /* slow: SO_RCVBUF of the slow clients; 0 = kernel's */
        int server_pid;              /* --server-pid: the server's RSS is sampled */
        /* TLS */
        bool tls;            /* --tls: wss:// (wolfSSL over the ring) */
        bool insecure;       /* --insecure: accept any certificate */
        const char *ca_file; /* --ca: PEM to verify the server with [system store] */
        const char *sni;     /* --sni: server name sent and verified [none] */
} lg_opts;

/* The scenario publishes and subscribes (market, slow, and storm with --topics). */
bool lg_opts_pubsub(const lg_opts *o);

/* Parses argv over the defaults. Returns 0, 1 when --help was printed to `out`, or
 * -EINVAL with one line naming the flag in err. */
int lg_opts_parse(lg_opts *o, int argc, char **argv, FILE *out, char *err, size_t errlen);

void lg_opts_usage(FILE *out);

const char *lg_scenario_name(enum lg_scenario s);

#endif
