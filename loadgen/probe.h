/*
 * probe — what the loadgen learns from the server itself, out of band: its /metrics
 * (the connections gauge, the detection histogram) over a plain blocking HTTP GET, and
 * its stderr log (the 'listening' line with its heartbeat settings, and one 'detect'
 * line per connection it dropped for silence), tailed while the run goes on.
 *
 * Owns: the scrape and the log reader. Must not touch: the engine's connections (it
 * runs on main's thread only), the report format.
 */
#ifndef LG_PROBE_H
#define LG_PROBE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LG_PROBE_BUCKETS 24

typedef struct lg_scrape {
        bool ok;
        double connections;        /* tickwire_connections (includes the scrape itself) */
        double accepted;           /* tickwire_connections_accepted_total */
        double heartbeat_timeouts; /* tickwire_heartbeat_timeouts_total */
        double det_count, det_sum; /* tickwire_detection_seconds_{count,sum} */
        unsigned nbuckets;
        double le[LG_PROBE_BUCKETS];  /* upper bounds, seconds (+Inf as INFINITY) */
        double cum[LG_PROBE_BUCKETS]; /* cumulative counts */
} lg_scrape;

/* GET /metrics from target, 2 s deadline. Returns 0 (s->ok) or a negative errno. */
int lg_probe_scrape(const struct sockaddr_in *target, lg_scrape *s);

typedef struct lg_detect_line {
        uint32_t addr;   /* peer IPv4, network order */
        uint16_t port;   /* peer port */
        uint32_t age_ms; /* the server's now - last_seen */
        double seen_ms;  /* run clock when the loadgen read the line */
} lg_detect_line;

typedef struct lg_log {
        int fd;
        char part[512]; /* an incomplete last line */
        size_t plen;
        bool initial; /* reading what was there before the run: skip its detects */
        bool have_settings;
        uint64_t ping_ms, idle_ms; /* from "listening on ... (N workers, ping Xms, idle Yms)" */
        lg_detect_line *lines;
        size_t n, cap;
} lg_log;

/* Opens the log and reads what is already there (for the settings). */
int lg_log_open(lg_log *l, const char *path);
/* Reads lines appended since the last call; detect lines get seen_ms = now_ms. */
void lg_log_poll(lg_log *l, double now_ms);
void lg_log_close(lg_log *l);

#endif
