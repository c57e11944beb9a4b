/*
 * report — the end of a run as numbers: the summary table on stdout, the JSON report
 * (exactly the DESIGN 7 fields, plus extras in their own keys) and the CSV of per-event
 * samples.
 *
 * Owns: struct lg_summary and the three output formats. Must not touch: the engine or
 * the server (main fills the summary from them).
 */
#ifndef LG_REPORT_H
#define LG_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "engine.h"
#include "opts.h"
#include "stats.h"

typedef struct lg_summary {
        const lg_opts *o;
        unsigned threads;
        double elapsed_s;
        lg_counters c; /* totals */

        double rate_per_s; /* first connects / time to resolve them all */
        double ramp_s;
        lg_hist latency_us;   /* app ping round trips */
        lg_hist handshake_us; /* connect + 101 */
        lg_hist close_us;     /* graceful Close round trips */
        double msgs_per_s;

        const char *detect_source; /* "client" (app), "server_log", "server_histogram", "none" */
        lg_samples detect_ms;      /* sorted */
        lg_samples observed_ms;    /* power + log: line read time - silent time, sorted */
        bool have_expected;
        double exp_min, exp_max;
        uint64_t outside;
        uint64_t silent;      /* clients that went silent */
        uint64_t hits;        /* clients the event was meant to hit */
        uint64_t unmatched;   /* detect lines for peers that were not silent */
        lg_samples dead_ms;   /* --server-timeout: the server's silence at each verdict, sorted */
        double start_unix_ms; /* wall clock of the run clock's zero (CSV t_ms + this) */

        bool have_gauge;
        double gauge_baseline, gauge_expected, gauge_final;
        double gauge_return_ms;              /* < 0: never returned while we watched */
        double srv_det_count, srv_det_sum_s; /* histogram deltas over the run */
        double srv_timeouts;

        double first_drop_ms, all_back_ms; /* storm; < 0: n/a */
        /* Per target (o->ntargets); reported only for a list of more than one, so a
         * single-target report stays as it was. */
        uint64_t tgt_est[LG_MAX_TARGETS];   /* 101s, reconnects included */
        uint64_t tgt_open[LG_MAX_TARGETS];  /* sessions open at the end */
        uint64_t tgt_moved[LG_MAX_TARGETS]; /* reconnects that came from another target */
        double peak_accept_per_s;

        double hb_bytes_per_conn_s; /* WebSocket heartbeat bytes, both ways */
        double hb_wire_per_conn_s;  /* + TCP/IP headers and a bare ACK per frame */
        double conn_seconds;

        long rss_kib, hwm_kib;

        /* pub/sub */
        bool pubsub;
        lg_hist e2e_us;      /* publish timestamp to delivery, reading subscribers */
        double pub_window_s; /* from the publish start to the end */
        double pub_per_s;    /* publishes acknowledged per second */
        long srv_rss_base_kib, srv_rss_max_kib, srv_rss_end_kib; /* --server-pid; 0: none */
        const double *srv_rss; /* pairs (t_s, kib), one a second */
        size_t srv_rss_n;
        uint32_t slow_clients; /* planned: --slow-fraction of --connections */
} lg_summary;

void lg_report_table(FILE *out, const lg_summary *s);
int lg_report_json(const char *path, const lg_summary *s);
/* rows: every thread's events, in any order. */
int lg_report_csv(const char *path, const lg_event *rows, size_t n);

#endif
