/*
 * out — a bounded appender for building replies in a caller's buffer without snprintf:
 * a reply that fills the buffer exactly needs no spare byte for a NUL, and one that does
 * not fit is marked short (the caller then reports 0 / "need more room") instead of being
 * cut. Header-only; used by the http and proto reply writers.
 */
#ifndef TICKWIRE_OUT_H
#define TICKWIRE_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct tw_out {
        char *p;
        size_t cap;
        size_t n;    /* bytes written */
        bool short_; /* something did not fit: the result is unusable */
} tw_out;

static inline void tw_out_put(tw_out *o, const char *s, size_t n)
{
        if (o->short_ || n > o->cap - o->n) {
                o->short_ = true;
                return;
        }
        memcpy(o->p + o->n, s, n);
        o->n += n;
}

static inline void tw_out_str(tw_out *o, const char *s)
{
        tw_out_put(o, s, strlen(s));
}

/* The written length, or 0 when anything did not fit. */
static inline size_t tw_out_len(const tw_out *o)
{
        return o->short_ ? 0 : o->n;
}

#endif
