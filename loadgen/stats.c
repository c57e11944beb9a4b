/*
 * Counters, histograms and sample lists. The histogram is the usual HDR layout: values
 * below LG_HIST_SUB get a bucket each, and every power of two above that is cut into
 * LG_HIST_SUB equal buckets, so the relative error stays under 1/LG_HIST_SUB whatever
 * the scale (a 30 us loopback RTT and a 3 s stall are both resolved).
 */
#include "stats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *const lg_fail_names[LG_FAIL__COUNT] = {
    "refused", "reset", "timeout", "status", "protocol", "addr", "socket", "other",
};

void lg_hist_init(lg_hist *h)
{
        memset(h, 0, sizeof(*h));
        h->min = UINT64_MAX;
}

static unsigned bucket_of(uint64_t v)
{
        unsigned e;

        if (v < LG_HIST_SUB)
                return (unsigned)v;
        e = 63u - (unsigned)__builtin_clzll(v); /* v in [2^e, 2^(e+1)) */
        e -= 4;                                 /* LG_HIST_SUB = 2^5: shift keeps 5 bits */
        if (e > LG_HIST_EXP)
                return LG_HIST_SIZE - 1;
        return e * LG_HIST_SUB + (unsigned)((v >> (e - 1)) & (LG_HIST_SUB - 1));
}

/* The largest value that lands in bucket i. */
static uint64_t bucket_top(unsigned i)
{
        unsigned e = i / LG_HIST_SUB, sub = i % LG_HIST_SUB;

        if (e == 0)
                return i;
        return ((uint64_t)(LG_HIST_SUB + sub + 1) << (e - 1)) - 1;
}

void lg_hist_add(lg_hist *h, uint64_t v)
{
        h->b[bucket_of(v)]++;
        h->count++;
        if (v > h->max)
                h->max = v;
        if (v < h->min)
                h->min = v;
}

void lg_hist_merge(lg_hist *into, const lg_hist *h)
{
        for (unsigned i = 0; i < LG_HIST_SIZE; i++)
                into->b[i] += h->b[i];
        into->count += h->count;
        if (h->max > into->max)
                into->max = h->max;
        if (h->min < into->min)
                into->min = h->min;
}

uint64_t lg_hist_quantile(const lg_hist *h, double q)
{
        uint64_t rank, seen = 0;

        if (!h->count)
                return 0;
        rank = (uint64_t)(q * (double)h->count + 0.999999);
        if (rank < 1)
                rank = 1;
        for (unsigned i = 0; i < LG_HIST_SIZE; i++) {
                seen += h->b[i];
                if (seen >= rank) {
                        uint64_t top = bucket_top(i);
                        return top > h->max ? h->max : top < h->min ? h->min : top;
                }
        }
        return h->max;
}

int lg_samples_add(lg_samples *s, double v)
{
        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 256;
                double *p = realloc(s->v, cap * sizeof(*p));

                if (!p)
                        return -ENOMEM;
                s->v = p;
                s->cap = cap;
        }
        s->v[s->n++] = v;
        return 0;
}

int lg_samples_merge(lg_samples *into, const lg_samples *s)
{
        for (size_t i = 0; i < s->n; i++)
                if (lg_samples_add(into, s->v[i]) < 0)
                        return -ENOMEM;
        return 0;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

void lg_samples_sort(lg_samples *s)
{
        if (s->n)
                qsort(s->v, s->n, sizeof(double), cmp_double);
}

double lg_samples_quantile(const lg_samples *s, double q)
{
        size_t rank;

        if (!s->n)
                return 0;
        rank = (size_t)(q * (double)s->n + 0.999999);
        if (rank < 1)
                rank = 1;
        if (rank > s->n)
                rank = s->n;
        return s->v[rank - 1];
}

void lg_samples_free(lg_samples *s)
{
        free(s->v);
        memset(s, 0, sizeof(*s));
}
