/*
 * metrics — per-worker counters and histograms, and their Prometheus text exposition.
 *
 * Owns: struct tw_metrics. Each worker writes only its own (single writer, relaxed
 * atomic stores: a plain mov on x86, no lock prefix); a scrape on any thread reads every
 * worker's with relaxed loads and sums them. Must not touch: sockets, connections.
 */
#ifndef TICKWIRE_METRICS_H
#define TICKWIRE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef _Atomic uint64_t tw_counter;

/* Single-writer increment: no read-modify-write instruction needed. */
#define TW_ADD(c, v)                                                                               \
        atomic_store_explicit(&(c), atomic_load_explicit(&(c), memory_order_relaxed) + (v),        \
                              memory_order_relaxed)
#define TW_INC(c) TW_ADD(c, 1)
#define TW_DEC(c) TW_ADD(c, (uint64_t)-1)
#define TW_GET(c) atomic_load_explicit(&(c), memory_order_relaxed)

enum tw_hs_fail {
        TW_HS_BAD_REQUEST, /* 400 */
        TW_HS_NOT_UPGRADE, /* 426 */
        TW_HS_TOO_LARGE,   /* 431 */
        TW_HS_NOT_FOUND,   /* 404 */
        TW_HS_TIMEOUT,     /* handshake timeout */
        TW_HS_LIMIT,       /* 503: connection or table limit */
        TW_HS_AUTH,        /* 401/403 */
        TW_HS_TLS,         /* TLS handshake failed */
        TW_HS_CLOSED,      /* peer went away mid-handshake */
        TW_HS_ORIGIN,      /* 403: an Origin not allowed (DESIGN 6) */
        TW_HS__COUNT
};

/* Close reasons are counted by code; these are the labels we keep. */
enum tw_close_slot {
        TW_CL_1000,
        TW_CL_1001,
        TW_CL_1002,
        TW_CL_1003,
        TW_CL_1005,
        TW_CL_1006,
        TW_CL_1007,
        TW_CL_1008,
        TW_CL_1009,
        TW_CL_1010,
        TW_CL_1011,
        TW_CL_1013,
        TW_CL_OTHER,
        TW_CL__COUNT
};

/* Histogram of detection latency (now - last_seen at termination), seconds. */
#define TW_DETECT_BUCKETS 20
extern const double tw_detect_bounds[TW_DETECT_BUCKETS]; /* upper bounds; +Inf implied */

typedef struct tw_histogram {
        tw_counter bucket[TW_DETECT_BUCKETS + 1]; /* non-cumulative; last is +Inf */
        tw_counter count;
        tw_counter sum_us; /* sum in microseconds, rendered as seconds */
} tw_histogram;

typedef struct tw_metrics {
        tw_counter connections; /* gauge: open WebSocket sessions + handshakes */
        tw_counter accepted;    /* TCP connections accepted */
        tw_counter handshake_failures[TW_HS__COUNT];
        tw_counter closes[TW_CL__COUNT];
        tw_counter heartbeat_timeouts; /* idle_timeout expired */
        tw_counter pings_sent;         /* server protocol Pings */
        tw_counter pongs_received;     /* protocol Pongs from clients */
        tw_counter messages_received;  /* complete inbound data messages */
        tw_counter messages_sent;      /* outbound data messages queued */
        tw_counter bytes_received;
        tw_counter bytes_sent;
        tw_counter sends;       /* sendmsg calls to clients */
        tw_counter send_frames; /* frames (iovecs) they carried; a partly sent one again */
        tw_counter limit_hits;  /* connection/table/memory limits hit */
        tw_counter enobufs;     /* recv buffer ring ran dry */
        tw_counter cq_overflows;
        tw_counter slow_consumer[2]; /* [TW_SLOW_CONFLATE], [TW_SLOW_DISCONNECT] */
        tw_counter messages_published;
        tw_counter messages_dropped; /* conflated away */
        /* Server-wide gauges kept as per-worker deltas: each worker adds what it created
         * and subtracts what it freed (modulo 2^64), so the sum is the total. */
        tw_counter topics;             /* live topics */
        tw_counter history_bytes;      /* bytes held in all histories */
        tw_counter history_trimmed;    /* messages dropped by --max-history-bytes */
        tw_counter replays_incomplete; /* `since` replays answered recovered:false */
        tw_counter rate_limited;       /* messages refused by --max-message-rate */
        tw_counter publish_duplicates; /* publishes answered from their id, not published */
        tw_histogram detection;
        /* --broker (DESIGN 10) */
        tw_counter broker_up;          /* gauge: 1 while the broker's connections are up */
        tw_counter broker_reconnects;  /* connection attempts after a loss */
        tw_counter broker_publishes;   /* publishes Redis sequenced for this node */
        tw_counter broker_unavailable; /* publishes and subscribes refused: broker down */
        tw_counter broker_backfills;   /* seq jumps and reconnects filled from the stream */
        tw_counter broker_resyncs;     /* topics whose subscribers were told to resync */
        tw_histogram broker_rtt;       /* command round trips */
} tw_metrics;

/* Maps a close code to its counter slot. */
enum tw_close_slot tw_close_slot_of(uint16_t code);

/* Records one detection latency. */
void tw_histogram_observe(tw_histogram *h, uint64_t usec);

/* Broker round trips: their own bounds, 50 us to 5 s. */
extern const double tw_rtt_bounds[TW_DETECT_BUCKETS];
void tw_histogram_observe_rtt(tw_histogram *h, uint64_t usec);

/* Renders the sum of n workers' metrics as Prometheus text (prefix tickwire_) into
 * out[0..cap). `draining` is exported as tickwire_draining. Returns the length written,
 * or the length needed if it exceeds cap (nothing useful is written then). snprintf's
 * rule: the text is complete and NUL-terminated iff the result is < cap, so retry with
 * result + 1 bytes; out may be NULL when cap is 0, to ask for the size. */
size_t tw_metrics_render(tw_metrics *const *workers, size_t n, int draining, char *out, size_t cap);

#endif
