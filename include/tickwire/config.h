/*
 * config — the server's settings: defaults, heartbeat profiles, the command line and the
 * --config file, and the unit parsers for durations and sizes.
 *
 * Owns: struct tw_config and the text that fills it. Must not touch: sockets, threads;
 * it never exits the process (the caller decides, with the message it gets back).
 */
#ifndef TICKWIRE_CONFIG_H
#define TICKWIRE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "tickwire/flags.h" /* tw_parse_duration_ms, tw_parse_size */

#define TW_MAX_LISTEN  4
#define TW_MAX_ORIGINS 16

enum tw_slow_policy { TW_SLOW_CONFLATE = 0, TW_SLOW_DISCONNECT = 1 };

typedef struct tw_listen {
        struct sockaddr_storage addr; /* IPv4 or IPv6; port 0 = pick a free one */
        socklen_t addrlen;
        bool tls; /* serves TLS (needs tls_cert/tls_key); see tw_config.listen */
} tw_listen;

/* Which listeners serve TLS (set by tw_config_parse, read by the server): every
 * --tls-listen entry; and when --tls-cert/--tls-key are given but the final list has no
 * --tls-listen entry, every --listen entry too (the default 127.0.0.1:8080 included), so
 * asking for TLS never silently yields plaintext. With a --tls-listen, --listen stays
 * plain and both run side by side. */
enum tw_broker_kind { TW_BROKER_NONE = 0, TW_BROKER_REDIS, TW_BROKER_CLUSTER };

#define TW_BROKER_MAX_HOSTS 8

/* Where the cluster's Redis is (DESIGN 10). */
typedef struct tw_broker_cfg {
        uint8_t kind; /* enum tw_broker_kind */
        uint8_t nhosts;
        uint16_t db; /* SELECT, standalone only */
        struct {
                char host[64];
                uint16_t port;
        } hosts[TW_BROKER_MAX_HOSTS];
} tw_broker_cfg;

typedef struct tw_config {
        tw_listen listen[TW_MAX_LISTEN]; /* --listen (repeatable), --tls-listen */
        unsigned nlisten;
        unsigned workers;                /* 0 = online CPUs */
        uint64_t ping_interval_ms;       /* quiet this long: server sends Ping */
        uint64_t idle_timeout_ms;        /* silent this long: connection is dead */
        uint64_t tick_ms;                /* timing wheel resolution */
        bool tcp_user_timeout;           /* TCP_USER_TIMEOUT = idle_timeout_ms on accepted
                                            sockets (--tcp-user-timeout on|off, default on) */
        uint64_t handshake_timeout_ms;   /* accept to 101 (and TLS handshake) */
        uint64_t close_timeout_ms;       /* our Close sent: wait this long for theirs */
        uint64_t drain_timeout_ms;       /* shutdown: wait this long for Close replies */
        uint64_t reconnect_spread_ms;    /* retry_ms hint spread in 1001 reasons */
        uint32_t max_connections;        /* whole server; 0 = limited only by the tables */
        uint32_t max_connections_per_ip; /* open connections per client address; 0 = off */
        uint64_t max_message;            /* bytes per inbound message (1009) */
        uint32_t max_message_rate;       /* inbound messages/s per connection; 0 = off */
        uint64_t max_queue;              /* queued outbound bytes per connection */
        uint64_t coalesce_ms;            /* longest a loaded worker holds output; 0 = off */
        enum tw_slow_policy slow_consumer;
        uint32_t history;           /* messages kept per topic for resume */
        uint32_t max_subscriptions; /* per connection */
        uint32_t max_topics;        /* whole server, >= 1 */
        uint64_t max_history_bytes; /* whole server, all topic histories together */
        const char *tls_cert;       /* PEM paths; NULL = no TLS */
        const char *tls_key;
        const char *jwt_secret;    /* HMAC-SHA256 secret for ?token= JWTs; NULL = open */
        const char *jwt_audience;  /* required "aud"; NULL = not checked (needs jwt_secret) */
        const char *jwt_issuer;    /* required "iss"; NULL = not checked (needs jwt_secret) */
        uint64_t token_grace_ms;   /* open connection kept this long past its JWT's exp */
        const char *publish_token; /* bearer token for publishing; NULL = anyone */
        char origins[TW_MAX_ORIGINS][256]; /* --allowed-origin patterns (copied) */
        unsigned norigins;
        bool demo;            /* --demo: worker 0 publishes a synthetic market feed */
        tw_broker_cfg broker; /* --broker; kind TW_BROKER_NONE = a node of its own */
        char node_id[64];     /* --node-id (default: hostname-pid, filled by main) */
        char strings[6][512]; /* storage for values read from --config */
} tw_config;

/* Parses a --broker URL: redis://HOST:PORT[/DB] or redis-cluster://HOST:PORT,HOST:PORT,...
 * (at most TW_BROKER_MAX_HOSTS seeds). 0, or -1 with a reason in err. Pure. */
int tw_config_parse_broker(const char *url, tw_broker_cfg *out, char *err, size_t cap);

/* Fills the documented defaults (127.0.0.1:8080, 30 s / 90 s, tick 10 ms, ...). */
void tw_config_defaults(tw_config *c);

/* Parses argv (argv[0] is skipped) over the defaults. A heartbeat profile is applied
 * first and explicit --ping-interval/--idle-timeout override it, whatever their order.
 * Returns 0 on success, 1 when --help was asked for (usage printed to `out`), or
 * -EINVAL with one line naming the flag in err.
 * It starts by calling tw_config_defaults(c). Sources apply in order: a --config file acts
 * where it stands (it overrides earlier flags, later flags override it); its errors read
 * "FILE:LINE: flag: ...". String values from argv point into argv; those from a file
 * point into c->strings, so a copy of *c keeps pointing into the original. */
int tw_config_parse(tw_config *c, int argc, char **argv, FILE *out, char *err, size_t errlen);

/* "127.0.0.1:8080", "[::1]:8080", ":8080" (all v4). Returns 0 or -EINVAL. */
int tw_parse_listen(const char *s, tw_listen *l);

/* Writes "host:port" of l into out. */
void tw_listen_format(const tw_listen *l, char *out, size_t cap);

void tw_config_usage(FILE *out);

#endif
