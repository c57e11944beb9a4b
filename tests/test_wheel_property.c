/*
 * test_wheel_property — the timing wheel against a model too simple to be wrong: one
 * (armed, deadline) pair per timer, searched linearly. Thousands of random adds, cancels,
 * re-arms and advances (by 0, 1, a few ticks, across level boundaries, and by 10^9 and
 * more), with callbacks that themselves re-arm, cancel and add, must agree with the model
 * on every fire: the timer was armed, its deadline is the tick being processed and is <=
 * the advance's target, nothing armed had an earlier deadline, and after each advance
 * nothing due is left. next_expiry is checked against the model's earliest deadline after
 * every step. Seeds are fixed and printed; TW_WHEEL_SEED=n reruns one seed.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "tickwire/wheel.h"

/* Criterion's cr_assert records every passing check; this only speaks on failure. */
#define CHECK(cond, ...)                                                                           \
        do {                                                                                       \
                if (!(cond))                                                                       \
                        cr_assert_fail(__VA_ARGS__);                                               \
        } while (0)

#define MAX_TIMERS 1024

struct ptimer {
        tw_timer node;
        unsigned id;
};

struct model {
        bool armed;
        uint64_t deadline; /* as the wheel must see it: clamped to now at arming */
        unsigned dist;     /* distance class when armed: 0-3 level spans, 4 beyond */
};

/* Fires per distance class, across all runs: proof the generator reached every level. */
static unsigned long long fires_by_dist[5];

static struct {
        tw_wheel w;
        struct ptimer t[MAX_TIMERS];
        struct model m[MAX_TIMERS];
        unsigned n;         /* timers in play this run */
        size_t model_armed; /* model's count of armed timers */
        uint64_t rng;       /* xorshift64* state */
        bool in_advance;    /* fires outside advance are bugs */
        uint64_t target;    /* `now` of the advance in progress */
        size_t fired;       /* fires seen during the advance in progress */
        unsigned rearm_now; /* <= now re-arms left this advance (bounds the loop) */
        bool callback_ops;  /* callbacks may mutate the wheel */
} S;

static uint64_t rnd(void)
{
        S.rng ^= S.rng >> 12;
        S.rng ^= S.rng << 25;
        S.rng ^= S.rng >> 27;
        return S.rng * UINT64_C(2685821657736338717);
}

static uint64_t rnd_below(uint64_t n)
{
        return n ? rnd() % n : 0;
}

static void model_add(unsigned id, uint64_t expires)
{
        if (!S.m[id].armed)
                S.model_armed++;
        S.m[id].armed = true;
        S.m[id].deadline = expires < S.w.now ? S.w.now : expires;
        uint64_t d = S.m[id].deadline - S.w.now;
        S.m[id].dist = d < 64 ? 0 : d < 4096 ? 1 : d < 262144 ? 2 : d < 16777216 ? 3 : 4;
}

static void model_cancel(unsigned id)
{
        if (S.m[id].armed)
                S.model_armed--;
        S.m[id].armed = false;
}

static void do_add(unsigned id, uint64_t expires)
{
        tw_wheel_add(&S.w, &S.t[id].node, expires);
        model_add(id, expires);
        CHECK(tw_timer_armed(&S.t[id].node), "timer %u not armed after add", id);
        CHECK(S.t[id].node.expires == S.m[id].deadline,
              "timer %u: expires %" PRIu64 ", model %" PRIu64, id, S.t[id].node.expires,
              S.m[id].deadline);
}

static void do_cancel(unsigned id)
{
        tw_wheel_cancel(&S.w, &S.t[id].node);
        model_cancel(id);
        CHECK(!tw_timer_armed(&S.t[id].node), "timer %u still armed after cancel", id);
}

/* A deadline relative to now, biased towards the places a wheel gets wrong: now itself,
 * the past, one tick, slot and level boundaries, the top of level 3 and overflow. */
static uint64_t rnd_deadline(uint64_t now)
{
        static const uint64_t spans[] = {64, 4096, 262144, 16777216};

        switch (rnd_below(10)) {
        case 0:
                return now;
        case 1:
                return now - rnd_below(now < 100 ? now + 1 : 100); /* past: clamped */
        case 2:
                return now + 1 + rnd_below(3);
        case 3:
                return now + rnd_below(64);
        case 4: /* a level's span ahead, +-1 */
                return now + spans[rnd_below(4)] + rnd_below(3) - 1;
        case 5: { /* the next boundary of some level, +-1 */
                uint64_t span = spans[rnd_below(4)];
                return (now | (span - 1)) + rnd_below(3);
        }
        case 6:
                return now + rnd_below(4096);
        case 7:
                return now + rnd_below(1u << 20);
        case 8:
                return now + rnd_below(UINT64_C(1) << 26); /* often overflow */
        default:
                return now + rnd_below(UINT64_C(1) << 34); /* far overflow */
        }
}

static uint64_t rnd_advance(uint64_t now)
{
        static const uint64_t spans[] = {64, 4096, 262144, 16777216};

        switch (rnd_below(12)) {
        case 0:
                return now; /* 0: must still drain the due slot */
        case 1:
        case 2:
        case 3:
                return now + 1;
        case 4:
        case 5:
                return now + 2 + rnd_below(62);
        case 6: { /* to just before, on, or just after a level boundary */
                uint64_t span = spans[rnd_below(4)];
                return (now | (span - 1)) + rnd_below(3);
        }
        case 7:
                return now + rnd_below(5000);
        case 8:
                return now + rnd_below(1u << 20);
        case 9:
                return now + rnd_below(UINT64_C(1) << 25);
        case 10:
                return now + 1000000000; /* suspended for ~116 days at 10 ms */
        default:
                return now + (UINT64_C(1) << 36) + rnd_below(UINT64_C(1) << 36);
        }
}

static uint64_t model_earliest(void)
{
        uint64_t min = UINT64_MAX;

        for (unsigned i = 0; i < S.n; i++)
                if (S.m[i].armed && S.m[i].deadline < min)
                        min = S.m[i].deadline;
        return min;
}

static void check_next_expiry(void)
{
        uint64_t ne = tw_wheel_next_expiry(&S.w);
        uint64_t min = model_earliest();

        if (min == UINT64_MAX) {
                CHECK(ne == UINT64_MAX, "nothing armed but next_expiry = %" PRIu64, ne);
                return;
        }
        CHECK(min >= S.w.now, "model has deadline %" PRIu64 " before now %" PRIu64, min, S.w.now);
        CHECK(ne <= min - S.w.now,
              "next_expiry %" PRIu64 " is late: earliest deadline is %" PRIu64 " ticks away", ne,
              min - S.w.now);
        /* 0 means "due now"; saying it when nothing is due would spin the event loop. */
        CHECK(min == S.w.now || ne >= 1, "next_expiry 0 with nothing due (earliest in %" PRIu64 ")",
              min - S.w.now);
}

static void on_fire(tw_wheel *w, tw_timer *t, void *ctx)
{
        struct ptimer *p = tw_container_of(t, struct ptimer, node);
        unsigned id = p->id;

        CHECK(ctx == &S, "ctx not passed through");
        CHECK(S.in_advance, "timer %u fired outside tw_wheel_advance", id);
        CHECK(S.m[id].armed, "timer %u fired but is not armed (twice, or after cancel)", id);
        CHECK(!tw_timer_armed(t), "timer %u still linked during its callback", id);
        CHECK(w->now == S.m[id].deadline, "timer %u for tick %" PRIu64 " fired at tick %" PRIu64,
              id, S.m[id].deadline, w->now);
        CHECK(w->now <= S.target, "timer %u fired at %" PRIu64 " in advance to %" PRIu64, id,
              w->now, S.target);
        CHECK(t->expires == S.m[id].deadline, "timer %u expires field changed", id);
        model_cancel(id);
        /* Deadline order: nothing still armed may be earlier than what fires now. */
        uint64_t min = model_earliest();
        CHECK(min >= w->now,
              "timer %u fired at %" PRIu64 " while a timer for %" PRIu64 " is still armed", id,
              w->now, min);
        CHECK(w->armed == S.model_armed, "armed %zu, model %zu in callback", w->armed,
              S.model_armed);
        S.fired++;
        fires_by_dist[S.m[id].dist]++;

        if (!S.callback_ops)
                return;
        switch (rnd_below(8)) {
        case 0: /* re-arm self, for later */
                do_add(id, w->now + 1 + rnd_below(rnd_below(2) ? 64 : 300000));
                break;
        case 1: /* re-arm self for <= now: must fire again in this advance */
                if (S.rearm_now > 0) {
                        S.rearm_now--;
                        do_add(id, w->now - rnd_below(2));
                }
                break;
        case 2: { /* cancel some other timer, often one due this very tick */
                unsigned other = (unsigned)rnd_below(S.n);

                for (unsigned i = 0; i < S.n; i++) {
                        unsigned j = (other + i) % S.n;

                        if (S.m[j].armed && S.m[j].deadline == w->now) {
                                other = j;
                                break;
                        }
                }
                do_cancel(other);
                break;
        }
        case 3: { /* add or re-arm another timer anywhere, including <= now */
                unsigned other = (unsigned)rnd_below(S.n);
                uint64_t d = rnd_deadline(w->now);

                if (d <= w->now) {
                        if (S.rearm_now == 0)
                                break;
                        S.rearm_now--;
                }
                do_add(other, d);
                break;
        }
        case 4:
                check_next_expiry();
                break;
        default:
                break;
        }
}

static void do_advance(uint64_t target)
{
        S.in_advance = true;
        S.target = target;
        S.fired = 0;
        S.rearm_now = 64;
        size_t ret = tw_wheel_advance(&S.w, target);
        S.in_advance = false;

        CHECK(ret == S.fired, "advance returned %zu, callbacks saw %zu", ret, S.fired);
        CHECK(S.w.now == target, "now %" PRIu64 " after advance to %" PRIu64, S.w.now, target);
        for (unsigned i = 0; i < S.n; i++)
                CHECK(!S.m[i].armed || S.m[i].deadline > target,
                      "timer %u for tick %" PRIu64 " did not fire in advance to %" PRIu64, i,
                      S.m[i].deadline, target);
}

static void run(uint64_t seed, unsigned ntimers, unsigned steps, bool callback_ops)
{
        memset(&S, 0, sizeof(S));
        S.rng = seed * UINT64_C(0x9E3779B97F4A7C15) + 1;
        S.n = ntimers;
        S.callback_ops = callback_ops;
        for (unsigned i = 0; i < S.n; i++) {
                tw_timer_init(&S.t[i].node);
                S.t[i].id = i;
        }
        uint64_t start = rnd_below(2) ? 0 : rnd_below(UINT64_C(1) << 40);
        tw_wheel_init(&S.w, start, on_fire, &S);
        fprintf(stderr, "wheel property: seed %" PRIu64 " timers %u steps %u callback_ops %d\n",
                seed, ntimers, steps, callback_ops);

        for (unsigned step = 0; step < steps; step++) {
                unsigned id = (unsigned)rnd_below(S.n);
                uint64_t r = rnd_below(100);

                if (r < 45) {
                        do_add(id, rnd_deadline(S.w.now)); /* add, or re-arm if armed */
                } else if (r < 60) {
                        do_cancel(id); /* half the time a no-op on an unarmed timer */
                } else {
                        do_advance(rnd_advance(S.w.now));
                }
                CHECK(S.w.armed == S.model_armed, "seed %" PRIu64 " step %u: armed %zu, model %zu",
                      seed, step, S.w.armed, S.model_armed);
                check_next_expiry();
        }
        /* Drain: everything left must fire by the latest deadline. */
        uint64_t last = 0;
        for (unsigned i = 0; i < S.n; i++)
                if (S.m[i].armed && S.m[i].deadline > last)
                        last = S.m[i].deadline;
        S.callback_ops = false;
        if (last > S.w.now)
                do_advance(last);
        else
                do_advance(S.w.now);
        CHECK(S.w.armed == 0 && S.model_armed == 0, "left armed: %zu", S.w.armed);
        for (size_t i = 0; i < sizeof(S.w.occupied) / sizeof(S.w.occupied[0]); i++)
                CHECK(S.w.occupied[i] == 0, "bitmap word %zu %#" PRIx64 " with nothing armed", i,
                      S.w.occupied[i]);
        for (size_t i = 0; i <= TW_WHEEL_SLOTS; i++)
                CHECK(S.w.slots[i].len == 0, "slot %zu holds %u with nothing armed", i,
                      S.w.slots[i].len);
        CHECK(S.w.slots[TW_WHEEL_SLOTS].len == 0, "overflow array not empty");
        tw_wheel_free(&S.w);
}

static void run_seeds(unsigned ntimers, unsigned steps, bool callback_ops)
{
        const char *env = getenv("TW_WHEEL_SEED");

        if (env != NULL) {
                run(strtoull(env, NULL, 0), ntimers, steps, callback_ops);
                return;
        }
        memset(fires_by_dist, 0, sizeof(fires_by_dist));
        for (uint64_t seed = 1; seed <= 6; seed++)
                run(seed, ntimers, steps, callback_ops);
        fprintf(stderr,
                "wheel property: fires checked by distance when armed: <64 %llu, <4096 %llu, "
                "<2^18 %llu, <2^24 %llu, overflow %llu\n",
                fires_by_dist[0], fires_by_dist[1], fires_by_dist[2], fires_by_dist[3],
                fires_by_dist[4]);
        for (unsigned i = 0; i < 5; i++)
                CHECK(fires_by_dist[i] >= 100, "too few fires from distance class %u", i);
}

Test(wheel_property, few_timers_crowded_slots, .timeout = 60)
{
        run_seeds(16, 50000, false);
}

Test(wheel_property, many_timers, .timeout = 60)
{
        run_seeds(MAX_TIMERS, 30000, false);
}

Test(wheel_property, callbacks_mutate_the_wheel, .timeout = 60)
{
        run_seeds(64, 50000, true);
}

Test(wheel_property, callbacks_mutate_many_timers, .timeout = 60)
{
        run_seeds(MAX_TIMERS, 30000, true);
}
