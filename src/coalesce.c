/* coalesce — see include/tickwire/coalesce.h. */
#include "tickwire/coalesce.h"

void tw_coalesce_init(tw_coalesce *c, uint64_t cap_us, uint64_t now_us, uint64_t cpu_ns)
{
        c->cap_us = cap_us;
        c->sample_us = now_us;
        c->sample_ns = cpu_ns;
        c->flush_at_us = 0;
        c->loaded = false;
}

bool tw_coalesce_sample_due(const tw_coalesce *c, uint64_t now_us)
{
        return c->cap_us && now_us - c->sample_us >= TW_COALESCE_SAMPLE_US;
}

void tw_coalesce_sample(tw_coalesce *c, uint64_t now_us, uint64_t cpu_ns)
{
        uint64_t wall = now_us - c->sample_us;
        uint64_t pct;

        if (!wall)
                return;
        if (cpu_ns < c->sample_ns) { /* the clock changed (demand fell back): start over */
                c->sample_us = now_us;
                c->sample_ns = cpu_ns;
                return;
        }
        pct = (cpu_ns - c->sample_ns) / 10u / wall; /* ns·100 / (µs·1000) */
        if (!c->loaded && pct >= TW_COALESCE_ON_PCT)
                c->loaded = true;
        else if (c->loaded && pct < TW_COALESCE_OFF_PCT)
                c->loaded = false;
        c->sample_us = now_us;
        c->sample_ns = cpu_ns;
}

uint64_t tw_coalesce_wait_us(const tw_coalesce *c, uint64_t now_us)
{
        if (!c->cap_us || !c->loaded || now_us >= c->flush_at_us)
                return 0;
        return c->flush_at_us - now_us;
}

void tw_coalesce_flushed(tw_coalesce *c, uint64_t t0_us, uint64_t cost_us)
{
        c->flush_at_us = t0_us + cost_us + (cost_us < c->cap_us ? cost_us : c->cap_us);
}

bool tw_coalesce_sends_now(uint32_t frames, uint64_t bytes, uint64_t max_queue)
{
        return frames >= TW_COALESCE_FULL_SEND || bytes >= max_queue / 8;
}

/* One decimal number at *p (advanced past it), after any spaces; false if none. */
static bool number(const char **p, const char *end, uint64_t *v)
{
        const char *s = *p;
        uint64_t n = 0;

        while (s < end && *s == ' ')
                s++;
        if (s == end || *s < '0' || *s > '9')
                return false;
        for (; s < end && *s >= '0' && *s <= '9'; s++) {
                if (n > (UINT64_MAX - 9) / 10)
                        return false;
                n = n * 10 + (uint64_t)(*s - '0');
        }
        *p = s;
        *v = n;
        return true;
}

bool tw_coalesce_demand_parse(const char *buf, size_t len, uint64_t *demand_ns)
{
        const char *p = buf, *end = buf + len;
        uint64_t run, wait;

        if (!number(&p, end, &run) || !number(&p, end, &wait) || run > UINT64_MAX - wait)
                return false;
        *demand_ns = run + wait;
        return true;
}
