/*
 * Scenario rules. Kept free of state so the engine threads can call them from anywhere
 * and the tests can reason about them: the same id is always hit or not, whichever
 * thread owns it.
 */
#include "scenario.h"

#include <stdlib.h>
#include <string.h>

bool lg_scenario_has_event(const lg_opts *o)
{
        return o->scenario == LG_SC_SILENT || o->scenario == LG_SC_ABORT ||
               o->scenario == LG_SC_GRACEFUL || o->scenario == LG_SC_SLOW;
}

/* The fraction in millionths, so the rule below is exact integer arithmetic. */
static uint64_t ppm(const lg_opts *o)
{
        return (uint64_t)(o->fraction * 1e6 + 0.5);
}

bool lg_scenario_hits(const lg_opts *o, uint32_t id)
{
        uint64_t f = ppm(o);

        if (!lg_scenario_has_event(o))
                return false;
        /* A Bresenham step: id is hit when the running share crosses an integer. */
        return ((uint64_t)(id + 1) * f) / 1000000u > ((uint64_t)id * f) / 1000000u;
}

uint32_t lg_scenario_hit_count(const lg_opts *o, uint32_t n)
{
        if (!lg_scenario_has_event(o))
                return 0;
        return (uint32_t)(((uint64_t)n * ppm(o)) / 1000000u);
}

bool lg_scenario_reconnects(const lg_opts *o)
{
        return o->scenario == LG_SC_STORM;
}

uint64_t lg_scenario_backoff_ms(const lg_opts *o, unsigned attempt, uint64_t r)
{
        uint64_t d = o->backoff_base_ms;

        for (unsigned i = 0; i < attempt && d < o->backoff_cap_ms; i++)
                d *= 2;
        if (d > o->backoff_cap_ms)
                d = o->backoff_cap_ms;
        if (o->jitter)
                d = d ? r % d : 0;
        return d;
}

bool lg_scenario_retry_hint(const uint8_t *reason, size_t len, uint64_t *ms)
{
        static const char key[] = "\"retry_ms\"";
        const uint8_t *p = memmem(reason, len, key, sizeof(key) - 1);
        const uint8_t *end = reason + len;
        uint64_t v = 0;
        bool digits = false;

        if (!p)
                return false;
        p += sizeof(key) - 1;
        while (p < end && (*p == ' ' || *p == ':'))
                p++;
        while (p < end && *p >= '0' && *p <= '9' && v < 86400000u) {
                v = v * 10 + (uint64_t)(*p++ - '0');
                digits = true;
        }
        if (!digits)
                return false;
        *ms = v;
        return true;
}

bool lg_scenario_expected(uint64_t ping_ms, uint64_t idle_ms, uint64_t tick_ms, double *min_ms,
                          double *max_ms)
{
        if (!ping_ms || !idle_ms || idle_ms <= ping_ms)
                return false;
        *min_ms = (double)(idle_ms - ping_ms);
        *max_ms = (double)(idle_ms + tick_ms + 50);
        return true;
}
