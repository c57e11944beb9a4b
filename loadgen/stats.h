/*
 * stats — what the loadgen counts while it runs: per-thread counters the progress line
 * reads from another thread, a log-linear latency histogram, and exact sample lists for
 * the few things that need every value (detection latencies, for the CDF).
 *
 * Owns: lg_counters, lg_hist, lg_samples. Each thread writes only its own (single
 * writer, relaxed atomics, as in tickwire/metrics.h); main merges them after the join.
 * Must not touch: sockets, rings, the report format.
 */
#ifndef LG_STATS_H
#define LG_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "tickwire/metrics.h" /* tw_counter, TW_ADD/TW_INC/TW_GET */

enum lg_fail {
        LG_FAIL_REFUSED,  /* ECONNREFUSED */
        LG_FAIL_RESET,    /* ECONNRESET / EPIPE / EOF before the 101 */
        LG_FAIL_TIMEOUT,  /* connect or handshake past --connect-timeout, ETIMEDOUT */
        LG_FAIL_STATUS,   /* an answer other than 101 */
        LG_FAIL_PROTOCOL, /* bad Sec-WebSocket-Accept, garbage, bad frames */
        LG_FAIL_ADDR,     /* no local address/port left (EADDRNOTAVAIL, EADDRINUSE) */
        LG_FAIL_SOCKET,   /* socket()/bind()/fixed table: local resources */
        LG_FAIL_OTHER,
        LG_FAIL__COUNT
};

extern const char *const lg_fail_names[LG_FAIL__COUNT];

/* Live counters of one thread. */
typedef struct lg_counters {
        tw_counter attempts;          /* connects started, including reconnects */
        tw_counter established;       /* 101s received, including reconnects */
        tw_counter established_first; /* 101s received on a first attempt */
        tw_counter failed;            /* attempts that failed, any reason */
        tw_counter failed_first;      /* first attempts that failed */
        tw_counter fail[LG_FAIL__COUNT];
        tw_counter status_503;        /* of LG_FAIL_STATUS: the server's limit answer */
        tw_counter open;              /* sessions open now, not closing (gauge) */
        tw_counter silent;            /* clients gone silent */
        tw_counter detected;          /* silent clients whose drop we saw (app) */
        tw_counter false_disconnects; /* healthy clients the server dropped */
        tw_counter server_dead;       /* sessions we ended: --server-timeout of silence */
        tw_counter server_closes;     /* Close frames from the server */
        tw_counter reconnects;        /* sessions re-established after a drop */
        tw_counter drops;             /* sessions the server ended (storm) */
        tw_counter msgs_received;     /* complete data messages */
        tw_counter pings_received;    /* server protocol Pings */
        tw_counter pongs_sent;
        tw_counter app_pings_sent;
        tw_counter hb_bytes;       /* heartbeat bytes, both ways, after the 101 */
        tw_counter hb_frames;      /* heartbeat frames, both ways */
        tw_counter closes_sent;    /* graceful: our Close 1000 */
        tw_counter close_echoes;   /* graceful: the server's echo */
        tw_counter close_timeouts; /* graceful: no echo in time */
        tw_counter aborted;        /* abort: RSTs sent */
        tw_counter gaps;           /* topic seq jumps seen by reading subscribers */
        tw_counter done_first;     /* first attempts resolved (open or failed) */
        /* pub/sub */
        tw_counter topic_msgs;   /* {"type":"message"} received by reading subscribers */
        tw_counter lost;         /* seqs missing in those jumps */
        tw_counter duplicates;   /* seqs seen again, or going backwards, in one epoch */
        tw_counter subscribed;   /* subscribe acknowledgements */
        tw_counter resumes;      /* resubscribes with "since" (storm) */
        tw_counter unrecovered;  /* ... answered "recovered":false */
        tw_counter resume_gaps;  /* jumps in the first message after a resume */
        tw_counter resume_lost;  /* seqs missing there */
        tw_counter pub_sent;     /* publishes written */
        tw_counter pub_acked;    /* 200 {"seq":S} or {"type":"published"} */
        tw_counter pub_errors;   /* any other answer */
        tw_counter pub_skipped;  /* due but not sent: too many unanswered */
        tw_counter proto_errors; /* {"type":"error"} from the server */
        /* slow: the subscribers that stopped reading */
        tw_counter slow_paused;  /* stopped reading */
        tw_counter slow_resumed; /* read again */
        tw_counter slow_msgs;    /* topic messages they read after resuming */
        tw_counter slow_jumps;   /* seq jumps in what they read (conflation) */
        tw_counter slow_lost;    /* seqs missing there */
        tw_counter slow_1013;    /* Close 1013 (disconnect policy) */
        tw_counter slow_dropped; /* server ended the session (FIN/RST, other Close) */
} lg_counters;

/* Log-linear histogram: 32 sub-buckets per power of two (about 3 % resolution) over
 * 0 .. 2^40 units. Merge by adding. */
#define LG_HIST_SUB  32
#define LG_HIST_EXP  36
#define LG_HIST_SIZE (LG_HIST_SUB * (LG_HIST_EXP + 1))

typedef struct lg_hist {
        uint64_t count;
        uint64_t max;
        uint64_t min;
        uint64_t b[LG_HIST_SIZE];
} lg_hist;

void lg_hist_init(lg_hist *h);
void lg_hist_add(lg_hist *h, uint64_t v);
void lg_hist_merge(lg_hist *into, const lg_hist *h);
/* The value at quantile q (0..1): the upper edge of its bucket, capped at max. */
uint64_t lg_hist_quantile(const lg_hist *h, double q);

/* A growable list of double samples (exact percentiles, CSV). */
typedef struct lg_samples {
        double *v;
        size_t n, cap;
} lg_samples;

int lg_samples_add(lg_samples *s, double v);
int lg_samples_merge(lg_samples *into, const lg_samples *s);
void lg_samples_sort(lg_samples *s);
/* Nearest-rank quantile of a sorted list; 0 when empty. */
double lg_samples_quantile(const lg_samples *s, double q);
void lg_samples_free(lg_samples *s);

#endif
