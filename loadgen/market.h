/*
 * market — the client side of pub/sub (DESIGN 5) for the market, slow and storm
 * scenarios: which topic each subscriber takes (Zipf popularity), what a publisher sends
 * and when (paced by the thread's timer wheel, in bursts), and what a subscriber makes of
 * each message (seq gaps, end-to-end latency from the timestamp in the payload).
 *
 * Topics are named lg.0 .. lg.N-1. Subscriber i takes one topic, rank k with probability
 * (1/(k+1)^s) / H(N,s) (s = --zipf, 1 by default: a few hot symbols, a long tail), drawn
 * from a hash of (seed, i) so a reconnecting client keeps its topic. Publisher j of K owns
 * topics j, j+K, j+2K, ... and goes round-robin over them, so every topic gets
 * rate/N messages per second and fan-out follows the subscriber popularity.
 *
 * A published value is {"t":T,"p":"xx..."} padded to exactly --payload bytes (never
 * shorter than {"t":T}), T the run clock in microseconds when the publisher wrote it. The
 * publisher and the subscribers share this process's clock, so now - T is the end-to-end
 * latency: publish request, server sequencing and fan-out, delivery, our own loop.
 *
 * The hot path never parses JSON: the server's envelope is fixed
 * ({"type":"message","topic":"..","seq":S,"data":D}), so a message is recognised by its
 * first bytes and "seq": and "t": are found with memmem.
 *
 * Owns: the Zipf table, struct lg_sub / lg_pub (per-connection pub/sub state, kept in
 * arrays beside the connections so idle runs pay nothing), message building and
 * scanning. Must not touch: the ring (it asks the engine to send), the report.
 */
#ifndef LG_MARKET_H
#define LG_MARKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "opts.h"

struct lg_thread;
struct lg_conn;
struct lg_engine;

#define LG_EPOCH_MAX 24 /* the server's epochs are 16 hex digits */

/* What a subscriber knows of its topic. */
typedef struct lg_sub {
        uint64_t last;            /* highest seq seen (or the subscribe's starting seq) */
        uint32_t topic;           /* topic index */
        uint8_t flags;            /* enum lg_sub_flag */
        uint8_t hlen;             /* bytes in head */
        uint8_t elen;             /* bytes in epoch; 0: none known (or too long to keep) */
        char epoch[LG_EPOCH_MAX]; /* the topic incarnation `last` belongs to */
        uint8_t *head;            /* first bytes of a message split across reads; NULL otherwise */
} lg_sub;

enum lg_sub_flag {
        LG_SUB_HAVE = 1 << 0,     /* last is meaningful */
        LG_SUB_RESUMING = 1 << 1, /* resubscribed with since, first message not seen yet */
        LG_SUB_WAIT = 1 << 2,     /* subscribe sent, no answer yet */
        LG_SUB_SLOW = 1 << 3,     /* slow: this client stopped reading at the event */
};

/* A publishing connection. */
typedef struct lg_pub {
        uint64_t base_us;    /* pacing epoch start (run clock) */
        uint64_t sent;       /* messages sent (or skipped) since base_us */
        uint32_t unanswered; /* publishes without an answer yet */
        uint32_t cursor;     /* round-robin position among this publisher's topics */
        uint32_t index;      /* publisher number, 0 .. K-1 */
        uint32_t rlen;       /* bytes in rbuf (HTTP responses so far) */
        char *rbuf;          /* HTTP: partial responses; NULL until needed */
} lg_pub;

#define LG_SUB_HEAD 160 /* a message's seq and t lie within its first 160 bytes */

/* Shared, read-only after lg_market_init: the Zipf CDF over topic ranks. */
typedef struct lg_market {
        double *cdf; /* [topics] */
        uint32_t topics;
        double rate_per_pub; /* messages/s per publisher */
        uint32_t burst;      /* messages per tick */
        uint64_t tick_us;    /* publisher timer period */
        char *pad;           /* --payload bytes of 'x': the padding source */
} lg_market;

int lg_market_init(lg_market *m, const lg_opts *o);
void lg_market_free(lg_market *m);

/* The topic subscriber `id` takes. */
uint32_t lg_market_topic_of(const lg_market *m, uint64_t seed, uint32_t id);

/* "lg.<k>" into out (>= 16 bytes); returns the length. */
size_t lg_market_topic_name(uint32_t k, char *out);

/* The published value with timestamp t_us, padded to `payload` bytes; returns its length
 * (>= payload when payload is too small for the timestamp). out needs payload + 32. */
size_t lg_market_data(const lg_market *m, char *out, uint64_t t_us, uint32_t payload);

/* What a server text message is, found without a JSON parse. */
enum lg_msg_kind {
        LG_MSG_OTHER = 0,
        LG_MSG_MESSAGE,    /* seq, t (t = UINT64_MAX when absent) */
        LG_MSG_SUBSCRIBED, /* seq, recovered (-1 absent, 0, 1), epoch */
        LG_MSG_PUBLISHED,  /* seq */
        LG_MSG_ERROR,
};
typedef struct lg_msg_view {
        enum lg_msg_kind kind;
        uint64_t seq;
        uint64_t t;
        int recovered;
        const uint8_t *epoch; /* subscribed: the "epoch" string's bytes; NULL absent */
        size_t elen;
} lg_msg_view;

void lg_market_scan(const uint8_t *p, size_t n, lg_msg_view *v);

/* Consumes complete HTTP responses from buf[0..len): adds 2xx to *ok and others to *bad;
 * returns the bytes consumed, or -1 for garbage. */
long lg_market_http_responses(const char *buf, size_t len, uint32_t *ok, uint32_t *bad);

/* ---- engine hooks (engine.c calls these) ---- */

/* Subscriber just opened (or reopened: storm resumes with since). */
void lg_market_on_open(struct lg_thread *t, struct lg_conn *c);

/* A chunk of a text message (ev flags as the frame reader gave them). */
void lg_market_on_text(struct lg_thread *t, struct lg_conn *c, const uint8_t *p, size_t n,
                       bool start, bool end);

/* A publisher's timer fired (or it just opened): publish what is due, re-arm. */
void lg_market_pub_tick(struct lg_thread *t, struct lg_conn *c);

/* HTTP bytes on a publisher's keep-alive connection. Returns false when the stream is
 * garbage (the engine then drops the connection). */
bool lg_market_pub_http(struct lg_thread *t, struct lg_conn *c, const uint8_t *p, size_t n);

/* Frees per-connection parts when a session ends. */
void lg_market_conn_reset(struct lg_thread *t, struct lg_conn *c);

#endif
