/*
 * test_wheel_arrays — the mechanisms behind the array-backed wheel: dead entries left by
 * lazy cancel and re-arm (never fired, bounded by compaction), callbacks that cancel and
 * re-add entries of the very slot being fired, upper slots moved down a share per advance
 * (never all at once when ticking, and still exact when the loop jumps in the middle of
 * that), and slot arrays reused without allocation in the steady state.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdlib.h>

#include "tickwire/wheel.h"

#define N 20000

struct at {
        tw_timer node;
        uint32_t id;
        uint32_t fired;
        uint64_t want; /* the deadline the test expects it to fire at */
};

static struct at T[N];
static uint64_t rng = 88172645463325252ull;
static size_t fires;
static int mode; /* what callbacks do */

static uint64_t rnd(void)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

static void on_fire(tw_wheel *w, tw_timer *t, void *ctx)
{
        struct at *a = tw_container_of(t, struct at, node);

        cr_assert_eq(w->now, a->want, "timer %u for %" PRIu64 " fired at %" PRIu64, a->id, a->want,
                     w->now);
        cr_assert_eq(a->fired, 0, "timer %u fired twice", a->id);
        a->fired = 1;
        fires++;
        if (mode == 1) {
                /* cancel up to three other timers due this very tick, found by deadline:
                 * some sit below this one in the array, some were swapped around */
                for (int k = 0; k < 3; k++) {
                        struct at *o = &T[rnd() % N];

                        if (tw_timer_armed(&o->node) && o->want == w->now) {
                                tw_wheel_cancel(w, &o->node);
                                o->want = UINT64_MAX; /* must never fire now */
                        }
                }
                /* and sometimes bring back one that was cancelled, for this tick */
                struct at *b = &T[rnd() % N];

                if (!tw_timer_armed(&b->node) && !b->fired && rnd() % 4 == 0) {
                        b->want = w->now;
                        tw_wheel_add(w, &b->node, w->now);
                }
        }
}

static void start(tw_wheel *w, uint64_t now, int m)
{
        tw_wheel_init(w, now, on_fire, NULL);
        for (uint32_t i = 0; i < N; i++) {
                tw_timer_init(&T[i].node);
                T[i].id = i;
                T[i].fired = 0;
                T[i].want = UINT64_MAX;
        }
        fires = 0;
        mode = m;
}

static void arm(tw_wheel *w, uint32_t i, uint64_t at)
{
        T[i].want = at < w->now ? w->now : at;
        cr_assert_eq(tw_wheel_add(w, &T[i].node, at), 0);
}

/* Every timer due in a handful of ticks; each callback cancels others of the same tick
 * and re-adds cancelled ones for now. Nothing cancelled fires, everything else fires. */
Test(wheel_arrays, callbacks_cancel_and_readd_in_the_slot_being_fired)
{
        tw_wheel w;

        start(&w, 1000, 1);
        for (uint32_t i = 0; i < N; i++)
                arm(&w, i, 1001 + i % 5);
        tw_wheel_advance(&w, 2000);
        for (uint32_t i = 0; i < N; i++)
                cr_assert(T[i].fired || T[i].want == UINT64_MAX, "timer %u lost", i);
        cr_assert_eq(w.armed, 0);
        for (size_t i = 0; i <= TW_WHEEL_SLOTS; i++)
                cr_assert_eq(w.slots[i].len, 0, "slot %zu keeps %u entries", i, w.slots[i].len);
        tw_wheel_free(&w);
}

/* Re-arming back and forth between two far slots leaves a dead entry each time; the
 * arrays must not grow with them (compaction), and only the last deadline fires. */
Test(wheel_arrays, dead_entries_are_bounded_and_never_fire)
{
        tw_wheel w;

        start(&w, 0, 0);
        for (uint32_t i = 0; i < 1000; i++)
                arm(&w, i, 100000);
        size_t before = tw_wheel_heap_bytes(&w);
        for (int round = 0; round < 200; round++)
                for (uint32_t i = 0; i < 1000; i++)
                        arm(&w, i, round % 2 ? 100000 : 200000);
        cr_assert_leq(tw_wheel_heap_bytes(&w), 4 * before + 4096,
                      "arrays grew from %zu to %zu bytes for 1000 timers", before,
                      tw_wheel_heap_bytes(&w));
        for (uint32_t i = 0; i < 1000; i++) {
                if (i % 3 == 0) {
                        tw_wheel_cancel(&w, &T[i].node);
                        T[i].want = UINT64_MAX;
                }
        }
        tw_wheel_advance(&w, 300000);
        cr_assert_eq(fires, 1000 - 334);
        cr_assert_eq(w.armed, 0);
        tw_wheel_free(&w);
}

/* An upper slot of 20,000 timers: advanced every tick, no single advance may move more
 * than its proportional share (plus rounding); everything fires exactly on time. */
Test(wheel_arrays, upper_slot_moves_down_a_share_per_tick, .timeout = 20)
{
        tw_wheel w;
        const uint64_t t0 = 3 * 4096 + 17; /* level 1 slot width: 4,096 */

        start(&w, t0, 0);
        for (uint32_t i = 0; i < N; i++)
                arm(&w, i, t0 + 9000 + rnd() % 4000);
        uint32_t worst = 0;
        for (uint64_t now = t0 + 1; now <= t0 + 13000; now++) {
                uint64_t on_upper = 0;

                for (size_t s = TW_WHEEL_L0_SLOTS; s < TW_WHEEL_SLOTS; s++)
                        on_upper += w.slots[s].len;
                tw_wheel_advance(&w, now);
                uint64_t after = 0;
                for (size_t s = TW_WHEEL_L0_SLOTS; s < TW_WHEEL_SLOTS; s++)
                        after += w.slots[s].len;
                if (on_upper - after > worst)
                        worst = (uint32_t)(on_upper - after);
        }
        cr_assert_eq(fires, N);
        /* 20,000 spread over two 4,096-tick slots: about 5 per tick, never thousands */
        cr_assert_leq(worst, 2 * N / 4096 + 4, "one advance moved %u timers down", worst);
        tw_wheel_free(&w);
}

/* Tick into the middle of the stretch where upper slots are being moved down, cancel some
 * of the moved and unmoved timers, then jump far: all the rest fire exactly, in order. */
Test(wheel_arrays, jump_in_the_middle_of_moving_down, .timeout = 20)
{
        tw_wheel w;
        const uint64_t t0 = 999;

        for (int variant = 0; variant < 3; variant++) {
                start(&w, t0, 0);
                for (uint32_t i = 0; i < N; i++) {
                        uint64_t span = variant == 0   ? 20000
                                        : variant == 1 ? 2000000
                                                       : UINT64_C(1) << 28;
                        arm(&w, i, t0 + 1 + rnd() % span);
                }
                uint64_t mid = t0 + 6000 + (uint64_t)variant * 1000;
                for (uint64_t now = t0 + 1; now <= mid; now++)
                        tw_wheel_advance(&w, now);
                for (uint32_t i = 0; i < N; i += 7) {
                        if (tw_timer_armed(&T[i].node)) {
                                tw_wheel_cancel(&w, &T[i].node);
                                T[i].want = UINT64_MAX;
                        }
                }
                tw_wheel_advance(&w, UINT64_C(1) << 40);
                for (uint32_t i = 0; i < N; i++)
                        cr_assert_eq(T[i].fired, T[i].want != UINT64_MAX, "variant %d timer %u",
                                     variant, i);
                cr_assert_eq(w.armed, 0);
                tw_wheel_free(&w);
        }
}

/* The same load revolution after revolution: once the arrays have grown, nothing is
 * allocated (the bytes held stay put). */
Test(wheel_arrays, steady_state_reuses_the_arrays, .timeout = 20)
{
        tw_wheel w;
        size_t held[4];

        start(&w, 0, 0);
        for (int rev = 0; rev < 4; rev++) {
                uint64_t base = (uint64_t)rev * TW_WHEEL_L0_SLOTS;

                tw_wheel_advance(&w, base);
                for (uint32_t i = 0; i < N; i++) {
                        T[i].fired = 0;
                        arm(&w, i, base + 3000 + i % 5000);
                }
                held[rev] = tw_wheel_heap_bytes(&w);
                tw_wheel_advance(&w, base + 8000);
        }
        cr_assert_eq(held[1], held[0]);
        cr_assert_eq(held[3], held[0]);
        tw_wheel_free(&w);
        cr_assert_eq(tw_wheel_heap_bytes(&w), 0);
}

/* A loop that sleeps by next_expiry wakes while a big upper slot is due to move down, so
 * it moves in batches; and it still wakes in the exact tick of every deadline. */
Test(wheel_arrays, next_expiry_paces_moving_down, .timeout = 20)
{
        tw_wheel w;
        const uint64_t t0 = 5;

        start(&w, t0, 0);
        for (uint32_t i = 0; i < N; i++)
                arm(&w, i, t0 + 12000 + i % 3); /* one level-1 slot */
        int wakeups = 0;
        while (fires < N) {
                uint64_t ne = tw_wheel_next_expiry(&w);

                cr_assert_neq(ne, UINT64_MAX);
                cr_assert_geq(ne, 1);
                tw_wheel_advance(&w, w.now + ne);
                wakeups++;
        }
        cr_assert_eq(w.now, t0 + 12002);
        cr_assert_geq(wakeups, N / 512, "moved %d timers in %d wake-ups", N, wakeups);
        cr_assert_leq(wakeups, 4 * N / 256 + 16);
        tw_wheel_free(&w);
}
