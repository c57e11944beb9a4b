/*
 * metrics — the detection-latency histogram, the close-code slots, and the Prometheus
 * text exposition (format 0.0.4) of every worker's counters summed.
 *
 * Workers only ever store to their own struct tw_metrics; this file only loads (relaxed)
 * from all of them, so a scrape takes no lock and never stalls a worker. The loads of one
 * scrape are not a snapshot: counters move while we read. Where Prometheus requires
 * consistency inside one series family it is built from the values we read, not read
 * twice: a histogram's _count is the running total of its buckets, so `le="+Inf"` and
 * _count always agree and the buckets are always cumulative.
 *
 * Rendering goes through a bounded writer that keeps counting after the buffer is full,
 * so a caller whose buffer was too small learns the exact size to retry with.
 */
#include "tickwire/metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

/* Detection latency is now - last_seen when idle_timeout fires, so observations sit just
 * above the configured idle timeout: 15 s (game), 45 s (im), 60 s (market), 90 s
 * (default), 360 s (iot) all fall on or between bounds here, and the sub-second bounds
 * serve the short timeouts used in tests. */
const double tw_detect_bounds[TW_DETECT_BUCKETS] = {
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 15, 20, 30, 45, 60, 90, 120, 300, 600,
};

/* The same bounds in microseconds, so observe() compares integers and an observation of
 * exactly a bound lands in that bound's bucket (le is "less than or equal"). */
static const uint64_t detect_bounds_us[TW_DETECT_BUCKETS] = {
    10000,    25000,    50000,    100000,    250000,    500000,    1000000,
    2000000,  3000000,  5000000,  10000000,  15000000,  20000000,  30000000,
    45000000, 60000000, 90000000, 120000000, 300000000, 600000000,
};

enum tw_close_slot tw_close_slot_of(uint16_t code)
{
        switch (code) {
        case 1000:
                return TW_CL_1000;
        case 1001:
                return TW_CL_1001;
        case 1002:
                return TW_CL_1002;
        case 1003:
                return TW_CL_1003;
        case 1005:
                return TW_CL_1005;
        case 1006:
                return TW_CL_1006;
        case 1007:
                return TW_CL_1007;
        case 1008:
                return TW_CL_1008;
        case 1009:
                return TW_CL_1009;
        case 1010:
                return TW_CL_1010;
        case 1011:
                return TW_CL_1011;
        case 1013:
                return TW_CL_1013;
        default:
                return TW_CL_OTHER;
        }
}

static void observe(tw_histogram *h, const uint64_t *bounds_us, uint64_t usec)
{
        size_t i = 0;

        while (i < TW_DETECT_BUCKETS && usec > bounds_us[i])
                i++;
        TW_INC(h->bucket[i]);
        TW_INC(h->count);
        TW_ADD(h->sum_us, usec);
}

void tw_histogram_observe(tw_histogram *h, uint64_t usec)
{
        observe(h, detect_bounds_us, usec);
}

const double tw_rtt_bounds[TW_DETECT_BUCKETS] = {
    0.00005, 0.0001, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003,
    0.005,   0.0075, 0.01,   0.02,   0.05,   0.1,     0.25,  0.5,    1,     5,
};

static const uint64_t rtt_bounds_us[TW_DETECT_BUCKETS] = {
    50,   100,  200,   300,   500,   750,    1000,   1500,   2000,    3000,
    5000, 7500, 10000, 20000, 50000, 100000, 250000, 500000, 1000000, 5000000,
};

void tw_histogram_observe_rtt(tw_histogram *h, uint64_t usec)
{
        observe(h, rtt_bounds_us, usec);
}

/* ---- rendering ---- */

static const char *const hs_reasons[] = {
    "bad_request", "not_upgrade", "too_large", "not_found", "timeout",
    "limit",       "auth",        "tls",       "closed",    "origin",
};
_Static_assert(sizeof hs_reasons / sizeof hs_reasons[0] == TW_HS__COUNT, "hs_reasons");

static const char *const close_codes[] = {
    "1000", "1001", "1002", "1003", "1005", "1006",  "1007",
    "1008", "1009", "1010", "1011", "1013", "other",
};
_Static_assert(sizeof close_codes / sizeof close_codes[0] == TW_CL__COUNT, "close_codes");

static const char *const slow_actions[] = {"conflate", "disconnect"};
_Static_assert(sizeof slow_actions / sizeof slow_actions[0] ==
                   sizeof((tw_metrics *)0)->slow_consumer / sizeof(tw_counter),
               "slow_actions");

/* snprintf-style writer: writes while there is room, always counts. */
struct wbuf {
        char *p;
        size_t cap;
        size_t len;
};

static void put(struct wbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct wbuf *b, const char *fmt, ...)
{
        size_t room = b->len < b->cap ? b->cap - b->len : 0;
        va_list ap;

        va_start(ap, fmt);
        int n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n > 0)
                b->len += (size_t)n;
}

/* Sum of the counter at byte offset `off` inside every worker's struct. */
static uint64_t sum(tw_metrics *const *w, size_t n, size_t off)
{
        uint64_t s = 0;

        for (size_t i = 0; i < n; i++)
                if (w[i])
                        s += TW_GET(*(tw_counter *)((char *)w[i] + off));
        return s;
}

#define OFF(field) offsetof(tw_metrics, field)

static void family(struct wbuf *b, const char *name, const char *type, const char *help)
{
        put(b, "# HELP tickwire_%s %s\n# TYPE tickwire_%s %s\n", name, help, name, type);
}

static void scalar(struct wbuf *b, tw_metrics *const *w, size_t n, const char *name,
                   const char *type, const char *help, size_t off)
{
        family(b, name, type, help);
        put(b, "tickwire_%s %" PRIu64 "\n", name, sum(w, n, off));
}

/* A counter family with one label, over an array of counters starting at `off`. */
static void labelled(struct wbuf *b, tw_metrics *const *w, size_t n, const char *name,
                     const char *help, const char *label, const char *const *values, size_t nvalues,
                     size_t off)
{
        family(b, name, "counter", help);
        for (size_t i = 0; i < nvalues; i++)
                put(b, "tickwire_%s{%s=\"%s\"} %" PRIu64 "\n", name, label, values[i],
                    sum(w, n, off + i * sizeof(tw_counter)));
}

static void histogram(struct wbuf *b, tw_metrics *const *w, size_t n, const char *name,
                      const char *help, const double *bounds, size_t boff, size_t soff)
{
        uint64_t cum = 0;

        family(b, name, "histogram", help);
        for (size_t i = 0; i < TW_DETECT_BUCKETS; i++) {
                cum += sum(w, n, boff + i * sizeof(tw_counter));
                put(b, "tickwire_%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, bounds[i], cum);
        }
        cum += sum(w, n, boff + TW_DETECT_BUCKETS * sizeof(tw_counter));
        put(b, "tickwire_%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
        /* Seconds printed from integer microseconds: exact, no float rounding. */
        uint64_t us = sum(w, n, soff);
        put(b, "tickwire_%s_sum %" PRIu64 ".%06" PRIu64 "\n", name, us / 1000000, us % 1000000);
        put(b, "tickwire_%s_count %" PRIu64 "\n", name, cum);
}

size_t tw_metrics_render(tw_metrics *const *workers, size_t n, int draining, char *out, size_t cap)
{
        struct wbuf b = {.p = out, .cap = out ? cap : 0, .len = 0};
        tw_metrics *const *w = workers;

        if (b.cap)
                out[0] = '\0';
        scalar(&b, w, n, "connections", "gauge",
               "Open WebSocket sessions and handshakes in progress.", OFF(connections));
        scalar(&b, w, n, "connections_accepted_total", "counter", "TCP connections accepted.",
               OFF(accepted));
        labelled(&b, w, n, "handshake_failures_total", "Handshakes that did not reach 101.",
                 "reason", hs_reasons, TW_HS__COUNT, OFF(handshake_failures));
        labelled(&b, w, n, "closes_total", "WebSocket sessions closed, by close code.", "code",
                 close_codes, TW_CL__COUNT, OFF(closes));
        scalar(&b, w, n, "heartbeat_timeouts_total", "counter",
               "Connections terminated because the idle timeout expired.", OFF(heartbeat_timeouts));
        scalar(&b, w, n, "pings_sent_total", "counter", "Protocol Pings sent by the server.",
               OFF(pings_sent));
        scalar(&b, w, n, "pongs_received_total", "counter", "Protocol Pongs received.",
               OFF(pongs_received));
        histogram(&b, w, n, "detection_seconds",
                  "Time from a dead connection's last inbound frame to its termination.",
                  tw_detect_bounds, OFF(detection.bucket), OFF(detection.sum_us));
        scalar(&b, w, n, "messages_received_total", "counter", "Complete inbound data messages.",
               OFF(messages_received));
        scalar(&b, w, n, "messages_sent_total", "counter", "Outbound data messages queued.",
               OFF(messages_sent));
        scalar(&b, w, n, "bytes_received_total", "counter", "Bytes read from clients.",
               OFF(bytes_received));
        scalar(&b, w, n, "bytes_sent_total", "counter", "Bytes written to clients.",
               OFF(bytes_sent));
        scalar(&b, w, n, "sends_total", "counter",
               "Sends (sendmsg) to clients; per messages_sent_total: sends per message.",
               OFF(sends));
        scalar(&b, w, n, "send_frames_total", "counter",
               "Frames those sends carried (a partly sent frame counts again when resent).",
               OFF(send_frames));
        scalar(&b, w, n, "limit_hits_total", "counter", "Connection, table or memory limits hit.",
               OFF(limit_hits));
        scalar(&b, w, n, "recv_enobufs_total", "counter", "Times the receive buffer ring ran dry.",
               OFF(enobufs));
        scalar(&b, w, n, "cq_overflows_total", "counter", "io_uring completion queue overflows.",
               OFF(cq_overflows));
        labelled(&b, w, n, "slow_consumer_total",
                 "Slow-consumer policy actions (queue over --max-queue).", "action", slow_actions,
                 2, OFF(slow_consumer));
        scalar(&b, w, n, "messages_published_total", "counter", "Messages published to topics.",
               OFF(messages_published));
        scalar(&b, w, n, "messages_dropped_total", "counter",
               "Queued messages conflated away for slow consumers.", OFF(messages_dropped));
        scalar(&b, w, n, "topics", "gauge", "Topics held (subscribed to, or with history).",
               OFF(topics));
        scalar(&b, w, n, "history_bytes", "gauge",
               "Bytes held in all topic histories (bounded by --max-history-bytes).",
               OFF(history_bytes));
        scalar(&b, w, n, "history_trimmed_total", "counter",
               "History messages dropped to stay under --max-history-bytes.", OFF(history_trimmed));
        scalar(&b, w, n, "replays_incomplete_total", "counter",
               "since-replays that could not deliver everything (recovered:false).",
               OFF(replays_incomplete));
        scalar(&b, w, n, "rate_limited_total", "counter",
               "Inbound messages and Pings refused by --max-message-rate.", OFF(rate_limited));
        scalar(&b, w, n, "publish_duplicates_total", "counter",
               "Publishes repeating a remembered id: answered, not published again.",
               OFF(publish_duplicates));
        scalar(&b, w, n, "broker_up", "gauge", "1 while the cluster broker (Redis) is connected.",
               OFF(broker_up));
        scalar(&b, w, n, "broker_reconnects_total", "counter",
               "Connection attempts to the broker after a loss.", OFF(broker_reconnects));
        scalar(&b, w, n, "broker_publishes_total", "counter",
               "Publishes through this node that Redis sequenced.", OFF(broker_publishes));
        scalar(&b, w, n, "broker_unavailable_total", "counter",
               "Publishes and first subscribes refused while the broker was down.",
               OFF(broker_unavailable));
        scalar(&b, w, n, "broker_backfills_total", "counter",
               "Seq jumps and reconnects filled in from the topic's stream.",
               OFF(broker_backfills));
        scalar(&b, w, n, "broker_resyncs_total", "counter",
               "Topics whose subscribers were told to resync (history lost in Redis).",
               OFF(broker_resyncs));
        histogram(&b, w, n, "broker_rtt_seconds", "Round trips of commands to the broker.",
                  tw_rtt_bounds, OFF(broker_rtt.bucket), OFF(broker_rtt.sum_us));
        family(&b, "draining", "gauge", "1 while shutting down, else 0.");
        put(&b, "tickwire_draining %d\n", draining ? 1 : 0);
        family(&b, "workers", "gauge", "Worker threads.");
        put(&b, "tickwire_workers %zu\n", n);
        return b.len;
}
