/*
 * The demo feed: prices in integer cents walking by a few basis points a step, symbols
 * picked at random so the busy and quiet ones mix, one message every 1000/TW_DEMO_RATE ms.
 */
#include "tickwire/demo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const symbols[] = {
    "AAPL", "MSFT", "GOOG", "AMZN", "META", "NVDA", "TSLA", "JPM", "V",   "MA",
    "UNH",  "HD",   "PG",   "KO",   "PEP",  "XOM",  "CVX",  "WMT", "DIS", "NFLX",
    "ADBE", "CRM",  "ORCL", "INTC", "AMD",  "QCOM", "CSCO", "IBM", "BA",  "CAT",
    "GS",   "MS",   "BAC",  "C",    "NKE",  "MCD",  "SBUX", "T",   "VZ",  "PFE",
};
#define NSYM (sizeof(symbols) / sizeof(symbols[0]))

struct tw_demo {
        uint64_t rng;
        uint64_t next_us; /* due time of the next message (monotonic) */
        int64_t cents[NSYM];
        int64_t open[NSYM]; /* the first price: chg is relative to it */
};

static uint64_t next_rand(tw_demo *d)
{
        uint64_t x = d->rng;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return d->rng = x;
}

tw_demo *tw_demo_new(uint64_t seed, uint64_t now_ms)
{
        tw_demo *d = calloc(1, sizeof(*d));

        if (!d)
                return NULL;
        d->rng = seed | 1;
        d->next_us = now_ms * 1000;
        for (size_t i = 0; i < NSYM; i++)
                d->cents[i] = d->open[i] = 2000 + (int64_t)(next_rand(d) % 48000); /* $20-500 */
        return d;
}

void tw_demo_free(tw_demo *d)
{
        free(d);
}

void tw_demo_index(const tw_demo *d, tw_demo_msg *out)
{
        size_t n = 0;

        (void)d;
        out->topic = TW_DEMO_INDEX;
        n += (size_t)snprintf(out->data, sizeof(out->data), "{\"symbols\":[");
        for (size_t i = 0; i < NSYM && n < sizeof(out->data); i++)
                n += (size_t)snprintf(out->data + n, sizeof(out->data) - n, "%s\"%s\"",
                                      i ? "," : "", symbols[i]);
        if (n < sizeof(out->data))
                n += (size_t)snprintf(out->data + n, sizeof(out->data) - n, "]}");
        out->len = n < sizeof(out->data) ? n : 0;
}

static void step(tw_demo *d, int64_t wall_ms, tw_demo_msg *m)
{
        size_t i = next_rand(d) % NSYM;
        /* A move of -10..+10 basis points, never below a dollar. */
        int64_t bp = (int64_t)(next_rand(d) % 21) - 10;
        int64_t c = d->cents[i] + d->cents[i] * bp / 10000;
        int64_t chg;
        int n;

        d->cents[i] = c < 100 ? 100 : c;
        chg = d->cents[i] - d->open[i];
        n = snprintf(
            m->data, sizeof(m->data), "{\"px\":%lld.%02lld,\"chg\":%s%lld.%02lld,\"ts\":%lld}",
            (long long)(d->cents[i] / 100), (long long)(d->cents[i] % 100), chg < 0 ? "-" : "",
            (long long)(llabs(chg) / 100), (long long)(llabs(chg) % 100), (long long)wall_ms);
        m->topic = symbols[i];
        m->len = n > 0 && (size_t)n < sizeof(m->data) ? (size_t)n : 0;
}

size_t tw_demo_due(tw_demo *d, uint64_t now_ms, int64_t wall_ms, tw_demo_msg *out, size_t max)
{
        const uint64_t every_us = 1000000 / TW_DEMO_RATE, now_us = now_ms * 1000;
        size_t n = 0;

        while (n < max && d->next_us <= now_us) {
                step(d, wall_ms, &out[n++]);
                d->next_us += every_us;
        }
        if (d->next_us < now_us)
                d->next_us = now_us; /* fell behind: skip, keep the rate */
        return n;
}

uint64_t tw_demo_next(const tw_demo *d)
{
        return (d->next_us + 999) / 1000;
}
