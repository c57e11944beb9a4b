/*
 * Shared helpers for the ws codec tests and the fuzz harness: build frames, run the
 * reader over a byte stream cut into chunks, and turn its events into a canonical log.
 *
 * The log is what "the same result whatever the split" means: every data byte is
 * recorded on its own ('D', byte), so how a message was chunked is invisible, while
 * message starts ('S', opcode), ends ('E'), control frames ('C', opcode, len, payload)
 * and the error ('X', code) are kept in order. Each chunk is copied into its own heap
 * buffer of exactly its size, as a fresh recv would give it, so reading past a chunk is
 * caught by ASan. No Criterion here, so the fuzz harness can use it too.
 */
#ifndef TEST_WS_HELPERS_H
#define TEST_WS_HELPERS_H

#include "tickwire/ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tlog {
        uint8_t *p;
        size_t n, cap;
        int events;      /* events reported, NONE excluded */
        int errors;      /* ERROR events (at most 1 by construction) */
        uint16_t code;   /* the ERROR's close code, 0 if none */
        const char *bad; /* first broken reader contract, NULL if none */
} tlog;

static inline void tlog_put(tlog *l, const void *p, size_t n)
{
        if (l->n + n > l->cap) {
                l->cap = (l->n + n) * 2 + 64;
                l->p = realloc(l->p, l->cap);
                if (!l->p)
                        abort();
        }
        memcpy(l->p + l->n, p, n);
        l->n += n;
}

static inline void tlog_byte(tlog *l, uint8_t b)
{
        tlog_put(l, &b, 1);
}

static inline void tlog_free(tlog *l)
{
        free(l->p);
        memset(l, 0, sizeof(*l));
}

static inline bool tlog_eq(const tlog *a, const tlog *b)
{
        return a->n == b->n && a->code == b->code && (a->n == 0 || !memcmp(a->p, b->p, a->n));
}

/* Renders a log for a failure message (truncated; static buffer, one of two in turn). */
static inline const char *tlog_str(const tlog *l)
{
        static char bufs[2][512];
        static int which;
        char *out = bufs[which++ & 1];
        size_t o = 0;

        out[0] = 0;
        for (size_t i = 0; i < l->n && o + 16 < 512; i++) {
                uint8_t t = l->p[i];
                if (t == 'D' && i + 1 < l->n) {
                        uint8_t b = l->p[++i];
                        o += (size_t)snprintf(out + o, 512 - o,
                                              b >= 0x20 && b < 0x7f ? "%c" : "\\x%02x", b);
                } else if (t == 'S' && i + 1 < l->n) {
                        o += (size_t)snprintf(out + o, 512 - o, "[S%u]", l->p[++i]);
                } else if (t == 'E') {
                        o += (size_t)snprintf(out + o, 512 - o, "[E]");
                } else if (t == 'C' && i + 2 < l->n) {
                        size_t len = l->p[i + 2];
                        o += (size_t)snprintf(out + o, 512 - o, "[C%u:%zu]", l->p[i + 1], len);
                        i += 2 + len;
                } else if (t == 'X' && i + 2 < l->n) {
                        o += (size_t)snprintf(out + o, 512 - o, "[X%u]",
                                              (unsigned)(l->p[i + 1] << 8 | l->p[i + 2]));
                        i += 2;
                } else {
                        o += (size_t)snprintf(out + o, 512 - o, "?");
                }
        }
        return out;
}

static inline void tlog_event(tlog *l, const tw_ws_event *ev)
{
        switch (ev->kind) {
        case TW_WS_EV_DATA:
                if (ev->msg_start) {
                        tlog_byte(l, 'S');
                        tlog_byte(l, ev->opcode);
                }
                for (size_t i = 0; i < ev->len; i++) {
                        tlog_byte(l, 'D');
                        tlog_byte(l, ev->data[i]);
                }
                if (ev->msg_end)
                        tlog_byte(l, 'E');
                break;
        case TW_WS_EV_CONTROL:
                tlog_byte(l, 'C');
                tlog_byte(l, ev->opcode);
                tlog_byte(l, (uint8_t)ev->len);
                tlog_put(l, ev->data, ev->len);
                break;
        case TW_WS_EV_ERROR:
                tlog_byte(l, 'X');
                tlog_byte(l, (uint8_t)(ev->close_code >> 8));
                tlog_byte(l, (uint8_t)ev->close_code);
                break;
        default:
                break;
        }
}

/* Feeds one chunk (copied to its own buffer) until it is used up or an error. Checks the
 * contract on the way: NONE only when everything was consumed, never more than given,
 * DATA pointing into the chunk, a failed reader staying failed. Returns false after an
 * error. */
static inline bool tlog_feed(tw_ws_reader *r, const uint8_t *chunk, size_t n, tlog *l)
{
        uint8_t *buf = malloc(n ? n : 1);
        size_t off = 0;

        if (!buf)
                abort();
        if (n)
                memcpy(buf, chunk, n);
        for (;;) {
                tw_ws_event ev;
                size_t used = tw_ws_read(r, buf + off, n - off, &ev);
                if (used > n - off && !l->bad)
                        l->bad = "consumed more than given";
                off += used;
                if (ev.kind == TW_WS_EV_NONE) {
                        if (off != n && !l->bad)
                                l->bad = "NONE before the input was used up";
                        break;
                }
                l->events++;
                if (ev.kind == TW_WS_EV_DATA && ev.len &&
                    (ev.data < buf || ev.data + ev.len > buf + off) && !l->bad)
                        l->bad = "DATA outside the consumed input";
                if (ev.kind == TW_WS_EV_DATA && !ev.len && ev.opcode != TW_WS_OP_TEXT &&
                    ev.opcode != TW_WS_OP_BINARY && !l->bad)
                        l->bad = "DATA with a bad opcode";
                tlog_event(l, &ev);
                if (ev.kind == TW_WS_EV_ERROR) {
                        tw_ws_event again;
                        l->errors++;
                        l->code = ev.close_code;
                        if ((tw_ws_read(r, buf + off, n - off, &again) != 0 ||
                             again.kind != TW_WS_EV_ERROR || again.close_code != ev.close_code) &&
                            !l->bad)
                                l->bad = "reader did not stay failed";
                        free(buf);
                        return false;
                }
        }
        free(buf);
        return true;
}

/* Runs a fresh reader over s[0..n) cut at the sorted positions cuts[0..ncuts). */
static inline tlog tlog_run_cuts(bool server, uint64_t max, const uint8_t *s, size_t n,
                                 const size_t *cuts, size_t ncuts)
{
        tw_ws_reader r;
        tlog l = {0};
        size_t prev = 0;

        tw_ws_reader_init(&r, server, max);
        for (size_t i = 0; i <= ncuts; i++) {
                size_t end = i < ncuts ? cuts[i] : n;
                if (!tlog_feed(&r, s + prev, end - prev, &l))
                        return l;
                prev = end;
        }
        return l;
}

static inline tlog tlog_run(bool server, uint64_t max, const uint8_t *s, size_t n)
{
        return tlog_run_cuts(server, max, s, n, NULL, 0);
}

static inline tlog tlog_run_bytewise(bool server, uint64_t max, const uint8_t *s, size_t n)
{
        tw_ws_reader r;
        tlog l = {0};

        tw_ws_reader_init(&r, server, max);
        for (size_t i = 0; i < n; i++)
                if (!tlog_feed(&r, s + i, 1, &l))
                        break;
        return l;
}

/* Replays s all at once, byte by byte, cut once at every position, and (for short
 * streams) cut twice at every pair of positions; every run must produce the same log and
 * keep the reader contract. Returns NULL when all agree, else a description (static). The
 * all-at-once log is left in *ref for the caller's own checks. */
static inline const char *tlog_replay_all(bool server, uint64_t max, const uint8_t *s, size_t n,
                                          tlog *ref)
{
        static char why[160];
        tlog l;

        *ref = tlog_run(server, max, s, n);
        if (ref->bad)
                return ref->bad;
        l = tlog_run_bytewise(server, max, s, n);
        if (l.bad || !tlog_eq(&l, ref)) {
                snprintf(why, sizeof(why), "byte-by-byte differs (%s)", l.bad ? l.bad : "log");
                tlog_free(&l);
                return why;
        }
        tlog_free(&l);
        for (size_t i = 0; i <= n; i++) {
                l = tlog_run_cuts(server, max, s, n, &i, 1);
                if (l.bad || !tlog_eq(&l, ref)) {
                        snprintf(why, sizeof(why), "split at %zu differs (%s)", i,
                                 l.bad ? l.bad : "log");
                        tlog_free(&l);
                        return why;
                }
                tlog_free(&l);
        }
        if (n > 160)
                return NULL;
        for (size_t i = 0; i <= n; i++) {
                for (size_t j = i; j <= n; j++) {
                        size_t cuts[2] = {i, j};
                        l = tlog_run_cuts(server, max, s, n, cuts, 2);
                        if (l.bad || !tlog_eq(&l, ref)) {
                                snprintf(why, sizeof(why), "splits at %zu,%zu differ (%s)", i, j,
                                         l.bad ? l.bad : "log");
                                tlog_free(&l);
                                return why;
                        }
                        tlog_free(&l);
                }
        }
        return NULL;
}

/* A byte stream under construction. */
typedef struct tstream {
        uint8_t *p;
        size_t n, cap;
} tstream;

static inline void ts_put(tstream *s, const void *p, size_t n)
{
        if (s->n + n > s->cap) {
                s->cap = (s->n + n) * 2 + 64;
                s->p = realloc(s->p, s->cap);
                if (!s->p)
                        abort();
        }
        if (n)
                memcpy(s->p + s->n, p, n);
        s->n += n;
}

static inline void ts_free(tstream *s)
{
        free(s->p);
        memset(s, 0, sizeof(*s));
}

static const uint8_t tw_test_mask[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Appends a frame built with the codec's own builder; masked when `masked` (a client
 * frame). */
static inline void ts_frame(tstream *s, uint8_t op, bool fin, const void *payload, size_t len,
                            bool masked)
{
        uint8_t h[TW_WS_MAX_HEADER];
        size_t hl = tw_ws_header_build(h, op, fin, len, masked ? tw_test_mask : NULL);
        size_t at;

        ts_put(s, h, hl);
        at = s->n;
        ts_put(s, payload, len);
        if (masked)
                tw_ws_mask(s->p + at, len, tw_test_mask, 0);
}

/* Appends a client (masked) frame from a literal string. */
#define TS_C(s, op, fin, str) ts_frame((s), (op), (fin), (str), sizeof(str) - 1, true)

/* The log a well-formed run should give, built by hand. */
static inline void tl_start(tlog *l, uint8_t op)
{
        tlog_byte(l, 'S');
        tlog_byte(l, op);
}

static inline void tl_data(tlog *l, const void *p, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                tlog_byte(l, 'D');
                tlog_byte(l, ((const uint8_t *)p)[i]);
        }
}

static inline void tl_end(tlog *l)
{
        tlog_byte(l, 'E');
}

static inline void tl_control(tlog *l, uint8_t op, const void *p, size_t n)
{
        tlog_byte(l, 'C');
        tlog_byte(l, op);
        tlog_byte(l, (uint8_t)n);
        tlog_put(l, p, n);
}

static inline void tl_error(tlog *l, uint16_t code)
{
        tlog_byte(l, 'X');
        tlog_byte(l, (uint8_t)(code >> 8));
        tlog_byte(l, (uint8_t)code);
        l->code = code;
}

#endif
