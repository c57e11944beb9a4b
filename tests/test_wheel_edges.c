/*
 * test_wheel_edges — the timing wheel's corner cases, one behaviour per test: deadlines
 * on now, in the past, on and around every level boundary and beyond the top level;
 * jumps of 10^9 ticks and more; callbacks that re-arm themselves (also for <= now), cancel
 * the timer due next in the same tick, or add new timers; cancel of an unarmed timer;
 * next_expiry never late and useful enough to drive an event loop.
 */
#include <criterion/criterion.h>
#include <inttypes.h>

#include "tickwire/wheel.h"

#define NREC 4096

struct etimer {
        tw_timer node;
        int id;
        uint64_t period;       /* re-arm for now + period when > 0 */
        int rearm_now;         /* re-arm for <= now this many more times */
        struct etimer *victim; /* cancelled by this timer's callback */
        struct etimer *spawn;  /* armed by this timer's callback for now + spawn_in */
        uint64_t spawn_in;
};

static struct {
        int id[NREC];      /* fire log: which timer */
        uint64_t at[NREC]; /* and w->now when it fired */
        size_t n;
} rec;

static void on_fire(tw_wheel *w, tw_timer *t, void *ctx)
{
        struct etimer *e = tw_container_of(t, struct etimer, node);

        cr_assert_lt(rec.n, NREC);
        rec.id[rec.n] = e->id;
        rec.at[rec.n] = w->now;
        rec.n++;
        cr_assert(!tw_timer_armed(t), "firing timer must be unlinked before its callback");
        if (e->victim != NULL)
                tw_wheel_cancel(w, &e->victim->node);
        if (e->spawn != NULL)
                tw_wheel_add(w, &e->spawn->node, w->now + e->spawn_in);
        if (e->rearm_now > 0) {
                e->rearm_now--;
                tw_wheel_add(w, t, w->now - (e->rearm_now & 1)); /* now, or the tick before */
        } else if (e->period > 0) {
                tw_wheel_add(w, t, w->now + e->period);
        }
}

static void setup(tw_wheel *w, uint64_t now, struct etimer *e, int n)
{
        rec.n = 0;
        tw_wheel_init(w, now, on_fire, NULL);
        for (int i = 0; i < n; i++) {
                memset(&e[i], 0, sizeof(e[i]));
                tw_timer_init(&e[i].node);
                e[i].id = i;
        }
}

/* Advances one tick at a time from w->now to `until`; returns the fires seen. */
static size_t tick_to(tw_wheel *w, uint64_t until)
{
        size_t before = rec.n;

        while (w->now < until)
                tw_wheel_advance(w, w->now + 1);
        return rec.n - before;
}

Test(wheel_edges, timer_is_16_bytes)
{
        cr_assert_leq(sizeof(tw_timer), 32);
        cr_assert_eq(sizeof(tw_timer), 16);
}

Test(wheel_edges, deadline_now_fires_at_next_advance_even_without_moving)
{
        tw_wheel w;
        struct etimer e[1];

        setup(&w, 1000, e, 1);
        tw_wheel_add(&w, &e[0].node, 1000);
        cr_assert_eq(tw_wheel_next_expiry(&w), 0, "due now: next_expiry must be 0");
        cr_assert_eq(tw_wheel_advance(&w, 1000), 1);
        cr_assert_eq(rec.at[0], 1000);
        cr_assert_eq(w.armed, 0);
        cr_assert_eq(tw_wheel_next_expiry(&w), UINT64_MAX);
        tw_wheel_free(&w);
}

Test(wheel_edges, past_deadline_is_clamped_to_now)
{
        tw_wheel w;
        struct etimer e[2];

        setup(&w, 5000, e, 2);
        tw_wheel_add(&w, &e[0].node, 10);
        tw_wheel_add(&w, &e[1].node, 4999);
        cr_assert_eq(e[0].node.expires, 5000);
        cr_assert_eq(tw_wheel_next_expiry(&w), 0);
        cr_assert_eq(tw_wheel_advance(&w, 5010), 2);
        cr_assert_eq(rec.at[0], 5000, "a clamped timer fires at the tick it was clamped to");
        cr_assert_eq(rec.at[1], 5000);
        tw_wheel_free(&w);
}

Test(wheel_edges, advance_backwards_moves_nothing)
{
        tw_wheel w;
        struct etimer e[1];

        setup(&w, 100, e, 1);
        tw_wheel_add(&w, &e[0].node, 101);
        cr_assert_eq(tw_wheel_advance(&w, 50), 0);
        cr_assert_eq(w.now, 100);
        cr_assert_eq(tw_wheel_advance(&w, 101), 1);
        tw_wheel_free(&w);
}

/* Every level boundary (level 0's reach of 8,192 ticks, the upper slot widths 4,096 and
 * 2^19, the upper rings' reach of 255 slots, and the old wheel's 64, 2^18 and 2^24) and
 * +-1, from starting points on, just before and just after boundaries of every level:
 * the timer must not fire at deadline - 1 and must fire at the deadline, with w->now ==
 * deadline in its callback. */
Test(wheel_edges, level_boundaries_exact, .timeout = 10)
{
        static const uint64_t spans[] = {
            64,         4096,       8192,     262144,          524288,          254 * 4096,
            255 * 4096, 256 * 4096, 16777216, 254 * 524288ULL, 255 * 524288ULL, 256 * 524288ULL};
        static const uint64_t starts[] = {
            0,      1,        63,       64,       65,        4095,
            4096,   8191,     8192,     262143,   262144,    524287,
            524288, 16777215, 16777216, 33554431, 123456789, UINT64_C(1) << 40};

        for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
                for (size_t l = 0; l < sizeof(spans) / sizeof(spans[0]); l++) {
                        for (int delta = -1; delta <= 1; delta++) {
                                tw_wheel w;
                                struct etimer e[1];
                                uint64_t start = starts[s];
                                uint64_t deadline = start + spans[l] + (uint64_t)delta;

                                setup(&w, start, e, 1);
                                tw_wheel_add(&w, &e[0].node, deadline);
                                cr_assert_eq(tw_wheel_advance(&w, deadline - 2), 0);
                                cr_assert_eq(tw_wheel_advance(&w, deadline - 1), 0,
                                             "start %" PRIu64 " deadline %" PRIu64
                                             ": fired a tick early",
                                             start, deadline);
                                cr_assert_eq(tw_wheel_advance(&w, deadline), 1,
                                             "start %" PRIu64 " deadline %" PRIu64
                                             ": not fired on time",
                                             start, deadline);
                                cr_assert_eq(rec.at[0], deadline);
                                tw_wheel_free(&w);
                        }
                }
        }
}

/* The same boundaries when the loop advances every single tick (levels 0-2; level 3 by
 * ticking only the last stretch, after a jump that must not fire it). */
Test(wheel_edges, level_boundaries_ticked_every_tick, .timeout = 20)
{
        static const uint64_t spans[] = {1,    2,    63,   64,     65,     4095,   4096,   4097,
                                         8191, 8192, 8193, 262143, 262144, 262145, 524288, 1040384};

        for (size_t i = 0; i < sizeof(spans) / sizeof(spans[0]); i++) {
                for (uint64_t start = 0; start < 130; start += 37) {
                        tw_wheel w;
                        struct etimer e[1];

                        setup(&w, start, e, 1);
                        tw_wheel_add(&w, &e[0].node, start + spans[i]);
                        while (rec.n == 0)
                                tw_wheel_advance(&w, w.now + 1);
                        cr_assert_eq(rec.at[0], start + spans[i], "span %" PRIu64 " start %" PRIu64,
                                     spans[i], start);
                        cr_assert_eq(w.now, start + spans[i], "fired in the wrong advance");
                        tw_wheel_free(&w);
                }
        }
        for (int delta = -1; delta <= 1; delta++) {
                tw_wheel w;
                struct etimer e[1];
                uint64_t deadline = 7 + 16777216 + (uint64_t)delta;

                setup(&w, 7, e, 1);
                tw_wheel_add(&w, &e[0].node, deadline);
                cr_assert_eq(tw_wheel_advance(&w, deadline - 300000), 0);
                cr_assert_eq(tick_to(&w, deadline - 1), 0);
                cr_assert_eq(tick_to(&w, deadline), 1);
                cr_assert_eq(rec.at[0], deadline);
                tw_wheel_free(&w);
        }
}

/* One hour at 10 ms = 360,000 ticks (level 1), and beyond: 2^24 ticks +- 1 from an
 * unaligned start (level 2), 2^27 +- 1 (the edge of level 2's reach), then 2^30, 2^40 and
 * near the end of time (overflow). */
Test(wheel_edges, overflow_deadlines_exact, .timeout = 10)
{
        const uint64_t start = 987654;
        const uint64_t ahead[] = {360000,
                                  16777216 - 987654 - 1,
                                  16777216 - 987654,
                                  16777216,
                                  16777217,
                                  (UINT64_C(1) << 27) - 1,
                                  UINT64_C(1) << 27,
                                  (UINT64_C(1) << 27) + 1,
                                  UINT64_C(1) << 30,
                                  UINT64_C(1) << 40,
                                  UINT64_MAX - 987654 - 5};

        for (size_t i = 0; i < sizeof(ahead) / sizeof(ahead[0]); i++) {
                tw_wheel w;
                struct etimer e[1];
                uint64_t deadline = start + ahead[i];

                setup(&w, start, e, 1);
                tw_wheel_add(&w, &e[0].node, deadline);
                cr_assert_eq(tw_wheel_advance(&w, deadline / 2), 0);
                cr_assert_eq(tw_wheel_advance(&w, deadline - 1), 0,
                             "deadline %" PRIu64 " fired early", deadline);
                cr_assert_eq(w.armed, 1);
                cr_assert_eq(tw_wheel_advance(&w, deadline), 1, "deadline %" PRIu64 " lost",
                             deadline);
                cr_assert_eq(rec.at[0], deadline);
                tw_wheel_free(&w);
        }
}

/* An event loop that sleeps exactly next_expiry ticks each time must wake in the tick
 * of the deadline, after few wake-ups (one per level cascade, plus overflow blocks). */
Test(wheel_edges, next_expiry_drives_a_loop_to_the_exact_tick, .timeout = 10)
{
        const uint64_t ahead[] = {1,      63,     64,       100,    4096,     5000,
                                  262144, 300000, 16777216, 360000, 40000000, UINT64_C(1) << 33};

        for (size_t i = 0; i < sizeof(ahead) / sizeof(ahead[0]); i++) {
                tw_wheel w;
                struct etimer e[1];
                uint64_t deadline = 4242 + ahead[i];
                int wakeups = 0;

                setup(&w, 4242, e, 1);
                tw_wheel_add(&w, &e[0].node, deadline);
                while (rec.n == 0) {
                        uint64_t ne = tw_wheel_next_expiry(&w);

                        cr_assert_neq(ne, UINT64_MAX);
                        cr_assert_geq(ne, 1, "0 while nothing is due would spin the loop");
                        cr_assert_leq(w.now + ne, deadline, "next_expiry is late");
                        tw_wheel_advance(&w, w.now + ne);
                        wakeups++;
                }
                cr_assert_eq(rec.at[0], deadline);
                cr_assert_eq(w.now, deadline, "woke after the deadline");
                /* 3 levels and the overflow re-filing: a handful of wake-ups, whatever the
                 * distance. (The old bound allowed one per 2^24-tick block.) */
                cr_assert_leq(wakeups, ahead[i] >= (UINT64_C(1) << 30) ? 600 : 8,
                              "%d wake-ups for %" PRIu64 " ticks", wakeups, ahead[i]);
                tw_wheel_free(&w);
        }
}

Test(wheel_edges, next_expiry_exact_on_level_zero_and_early_above)
{
        tw_wheel w;
        struct etimer e[3];

        setup(&w, 10, e, 3);
        cr_assert_eq(tw_wheel_next_expiry(&w), UINT64_MAX);
        tw_wheel_add(&w, &e[0].node, 50000); /* level 1 */
        uint64_t ne = tw_wheel_next_expiry(&w);
        cr_assert(ne >= 1 && ne <= 49990, "next_expiry %" PRIu64, ne);
        tw_wheel_add(&w, &e[1].node, 40);
        cr_assert_eq(tw_wheel_next_expiry(&w), 30, "level 0 deadlines are exact");
        tw_wheel_add(&w, &e[2].node, 11);
        cr_assert_eq(tw_wheel_next_expiry(&w), 1);
        tw_wheel_cancel(&w, &e[2].node);
        tw_wheel_cancel(&w, &e[1].node);
        ne = tw_wheel_next_expiry(&w);
        cr_assert(ne >= 1 && ne <= 49990, "next_expiry %" PRIu64 " after cancels", ne);
        tw_wheel_cancel(&w, &e[0].node);
        cr_assert_eq(tw_wheel_next_expiry(&w), UINT64_MAX);
        for (size_t i = 0; i < sizeof(w.occupied) / sizeof(w.occupied[0]); i++)
                cr_assert_eq(w.occupied[i], 0, "bitmap word %zu not cleared by cancel", i);
        tw_wheel_free(&w);
}

Test(wheel_edges, cancel_unarmed_is_a_noop)
{
        tw_wheel w;
        struct etimer e[2];

        setup(&w, 0, e, 2);
        tw_wheel_cancel(&w, &e[0].node);
        cr_assert_eq(w.armed, 0);
        tw_wheel_add(&w, &e[1].node, 5);
        tw_wheel_cancel(&w, &e[0].node);
        tw_wheel_cancel(&w, &e[1].node);
        tw_wheel_cancel(&w, &e[1].node);
        cr_assert_eq(w.armed, 0);
        cr_assert(!tw_timer_armed(&e[1].node));
        cr_assert_eq(tw_wheel_advance(&w, 100), 0);
        tw_wheel_free(&w);
}

Test(wheel_edges, rearm_moves_the_deadline_and_fires_once)
{
        tw_wheel w;
        struct etimer e[1];

        setup(&w, 0, e, 1);
        tw_wheel_add(&w, &e[0].node, 50000);
        tw_wheel_add(&w, &e[0].node, 70); /* earlier, other level */
        tw_wheel_add(&w, &e[0].node, 300000);
        tw_wheel_add(&w, &e[0].node, 100);
        cr_assert_eq(w.armed, 1);
        cr_assert_eq(tw_wheel_advance(&w, 99), 0);
        cr_assert_eq(tw_wheel_advance(&w, 400000), 1);
        cr_assert_eq(rec.at[0], 100);
        tw_wheel_free(&w);
}

/* Timers at T, T+1, T+100, T+70000 and far beyond, all passed in one advance: they must
 * fire in deadline order, each seeing its own deadline as w->now. */
Test(wheel_edges, one_jump_fires_in_deadline_order, .timeout = 10)
{
        tw_wheel w;
        struct etimer e[6];
        const uint64_t d[6] = {UINT64_C(1) << 35, 70500, 500, 501, 600, 50000000};

        setup(&w, 400, e, 6);
        for (int i = 0; i < 6; i++)
                tw_wheel_add(&w, &e[i].node, d[i]);
        cr_assert_eq(tw_wheel_advance(&w, UINT64_C(1) << 36), 6);
        const int order[6] = {2, 3, 4, 1, 5, 0};
        for (int i = 0; i < 6; i++) {
                cr_assert_eq(rec.id[i], order[i], "fire %d was timer %d", i, rec.id[i]);
                cr_assert_eq(rec.at[i], d[order[i]]);
        }
        tw_wheel_free(&w);
}

/* A suspended process: now jumps by 10^9 ticks (~116 days at 10 ms), then by 2^62. Done
 * tick by tick this would take minutes; the timeout turns that into a failure. */
Test(wheel_edges, huge_jumps_are_fast_and_lose_nothing, .timeout = 5)
{
        static struct etimer e[3000];
        tw_wheel w;
        uint64_t x = 88172645463325252ull;

        setup(&w, 12345, e, 3000);
        for (int i = 0; i < 3000; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                /* a third within the levels, a third in overflow, a third past 10^9 */
                uint64_t span = i % 3 == 0 ? 1u << 24 : i % 3 == 1 ? 1u << 29 : 3000000000u;
                tw_wheel_add(&w, &e[i].node, 12345 + 1 + x % span);
        }
        uint64_t target = 12345 + 1000000000;
        size_t due = 0;
        for (int i = 0; i < 3000; i++)
                due += e[i].node.expires <= target;
        cr_assert_eq(tw_wheel_advance(&w, target), due);
        for (size_t i = 1; i < rec.n; i++)
                cr_assert_leq(rec.at[i - 1], rec.at[i], "out of order");
        for (size_t i = 0; i < rec.n; i++)
                cr_assert_eq(rec.at[i], e[rec.id[i]].node.expires);
        cr_assert_eq(w.armed, 3000 - due);
        cr_assert_eq(tw_wheel_advance(&w, UINT64_C(1) << 62), 3000 - due);
        cr_assert_eq(w.armed, 0);
        cr_assert_eq(w.now, UINT64_C(1) << 62);
        /* and an empty wheel jumps for free */
        cr_assert_eq(tw_wheel_advance(&w, UINT64_C(1) << 63), 0);
        tw_wheel_free(&w);
}

Test(wheel_edges, periodic_rearm_from_callback_inside_one_jump)
{
        tw_wheel w;
        struct etimer e[1];

        setup(&w, 0, e, 1);
        e[0].period = 100;
        tw_wheel_add(&w, &e[0].node, 100);
        cr_assert_eq(tw_wheel_advance(&w, 1050), 10);
        for (size_t i = 0; i < rec.n; i++)
                cr_assert_eq(rec.at[i], 100 * (i + 1));
        cr_assert_eq(e[0].node.expires, 1100);
        cr_assert(tw_timer_armed(&e[0].node));
        tw_wheel_free(&w);
}

Test(wheel_edges, rearm_for_now_inside_callback_fires_in_same_advance)
{
        tw_wheel w;
        struct etimer e[1];

        setup(&w, 0, e, 1);
        e[0].rearm_now = 3; /* for now, the tick before (clamped), now */
        tw_wheel_add(&w, &e[0].node, 64);
        cr_assert_eq(tw_wheel_advance(&w, 64), 4);
        for (size_t i = 0; i < 4; i++)
                cr_assert_eq(rec.at[i], 64);
        cr_assert_eq(w.armed, 0);
        cr_assert_eq(tw_wheel_next_expiry(&w), UINT64_MAX);
        tw_wheel_free(&w);
}

/* Two timers due in the same tick: whichever fires first cancels the other, which must
 * then not fire (this is the "next node of a detached list" trap). */
Test(wheel_edges, callback_cancels_the_next_timer_in_the_same_tick)
{
        for (int n = 2; n <= 5; n++) {
                tw_wheel w;
                struct etimer e[5];

                setup(&w, 3, e, n);
                for (int i = 0; i < n; i++) {
                        e[i].victim = &e[(i + 1) % n];
                        tw_wheel_add(&w, &e[i].node, 200);
                }
                size_t fired = tw_wheel_advance(&w, 300);

                cr_assert_eq(fired, rec.n);
                cr_assert_eq(w.armed, 0);
                /* A timer fires iff no timer that fired before it cancelled it. */
                bool fired_at[5] = {false};
                for (size_t p = 0; p < rec.n; p++) {
                        int id = rec.id[p];

                        cr_assert(!fired_at[id], "timer %d fired twice", id);
                        cr_assert(!fired_at[(id + n - 1) % n],
                                  "n %d: timer %d fired after its canceller", n, id);
                        fired_at[id] = true;
                }
                for (int i = 0; i < n; i++)
                        cr_assert(fired_at[i] || fired_at[(i + n - 1) % n],
                                  "n %d: timer %d neither fired nor was cancelled", n, i);
                if (n == 2)
                        cr_assert_eq(fired, 1);
                tw_wheel_free(&w);
        }
}

/* A callback cancels a timer due one tick later, in the same advance. */
Test(wheel_edges, callback_cancels_a_later_timer_in_the_same_advance)
{
        tw_wheel w;
        struct etimer e[2];

        setup(&w, 0, e, 2);
        e[0].victim = &e[1];
        tw_wheel_add(&w, &e[0].node, 4095);
        tw_wheel_add(&w, &e[1].node, 4096);
        cr_assert_eq(tw_wheel_advance(&w, 10000), 1);
        cr_assert_eq(rec.id[0], 0);
        cr_assert(!tw_timer_armed(&e[1].node));
        tw_wheel_free(&w);
}

Test(wheel_edges, callback_adds_new_timers)
{
        tw_wheel w;
        struct etimer e[4];

        setup(&w, 0, e, 4);
        e[0].spawn = &e[1];
        e[0].spawn_in = 0; /* due in this very tick */
        e[1].spawn = &e[2];
        e[1].spawn_in = 1; /* the next tick, still inside this advance */
        e[2].spawn = &e[3];
        e[2].spawn_in = 5000; /* beyond this advance */
        tw_wheel_add(&w, &e[0].node, 10);
        cr_assert_eq(tw_wheel_advance(&w, 20), 3);
        cr_assert_eq(rec.id[0], 0);
        cr_assert_eq(rec.at[0], 10);
        cr_assert_eq(rec.id[1], 1);
        cr_assert_eq(rec.at[1], 10);
        cr_assert_eq(rec.id[2], 2);
        cr_assert_eq(rec.at[2], 11);
        cr_assert(tw_timer_armed(&e[3].node));
        cr_assert_eq(e[3].node.expires, 5011);
        cr_assert_eq(tw_wheel_advance(&w, 5010), 0);
        cr_assert_eq(tw_wheel_advance(&w, 5011), 1);
        tw_wheel_free(&w);
}

/* The owner-side pattern from the header: last_seen is a plain store; the callback
 * re-arms for last_seen + timeout while the peer is still heard from. */
struct conn {
        uint64_t last_seen;
        tw_timer timer;
        uint64_t dead_at;
};

static void on_heartbeat(tw_wheel *w, tw_timer *t, void *ctx)
{
        struct conn *c = tw_container_of(t, struct conn, timer);
        const uint64_t timeout = *(const uint64_t *)ctx;

        if (w->now - c->last_seen >= timeout)
                c->dead_at = w->now;
        else
                tw_wheel_add(w, t, c->last_seen + timeout);
}

Test(wheel_edges, lazy_last_seen_rearm_detects_silence_exactly)
{
        uint64_t timeout = 9000; /* 90 s at 10 ms */
        tw_wheel w;
        struct conn c = {.last_seen = 0, .dead_at = 0};

        tw_wheel_init(&w, 0, on_heartbeat, &timeout);
        tw_timer_init(&c.timer);
        tw_wheel_add(&w, &c.timer, c.last_seen + timeout);
        for (uint64_t now = 1; now <= 50000; now++) {
                if (now % 700 == 0 && now < 30000)
                        c.last_seen = now; /* a frame arrived: a store, no wheel call */
                tw_wheel_advance(&w, now);
                if (c.dead_at)
                        break;
        }
        cr_assert_eq(c.dead_at, 29400 + timeout, "silent since 29400, dead at %" PRIu64, c.dead_at);
        tw_wheel_free(&w);
}
