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

enum lg_scenario {
        LG_SC_IDLE,
        LG_SC_SILENT,
        LG_SC_ABORT,
        LG_SC_GRACEFUL,
        LG_SC_STORM,
        LG_SC_MARKET, /* not implemented here: pub/sub lands separately (see scenario.c) */
        LG_SC_SLOW,   /* idem */
};

enum lg_silence { LG_SILENCE_APP, LG_SILENCE_POWER };

typedef struct lg_opts {
        struct sockaddr_in target;              /* --target */
        char target_text[64];                   /* "host:port", for Host: and the report */
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
        /* market / slow: parsed so command lines from DESIGN 7 are accepted. */
        uint32_t topics;
        double publish_rate;
        uint32_t payload;
        bool tls;
} lg_opts;

/* Parses argv over the defaults. Returns 0, 1 when --help was printed to `out`, or
 * -EINVAL with one line naming the flag in err. */
int lg_opts_parse(lg_opts *o, int argc, char **argv, FILE *out, char *err, size_t errlen);

void lg_opts_usage(FILE *out);

const char *lg_scenario_name(enum lg_scenario s);

#endif
