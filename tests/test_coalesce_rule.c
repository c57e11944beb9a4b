/*
 * test_coalesce_rule — a worker that keeps up never holds its output; one busy for at
 * least TW_COALESCE_ON_PCT of a sample holds each flush for as long as the last one took,
 * at most the cap; it stays loaded until its CPU share falls below TW_COALESCE_OFF_PCT;
 * a cap of 0 never holds; a sample not yet over decides nothing; demand is read from
 * schedstat's text as run + wait time, and anything else is refused; a sample whose clock
 * went back (the fall-back from demand to CPU time) decides nothing; a full send, or a
 * queue at an eighth of the connection's bound, is never held.
 */
#include <criterion/criterion.h>

#include "tickwire/coalesce.h"

#define S TW_COALESCE_SAMPLE_US

/* One sample of S µs wall time during which the thread ran pct % of it. */
static void run_sample(tw_coalesce *c, uint64_t *now, uint64_t *cpu, unsigned pct)
{
        *now += S;
        *cpu += (uint64_t)S * 10u * pct;
        cr_assert(tw_coalesce_sample_due(c, *now));
        tw_coalesce_sample(c, *now, *cpu);
}

Test(coalesce_rule, idle_worker_flushes_every_turn)
{
        tw_coalesce c;
        uint64_t now = 1000000, cpu = 5000;

        tw_coalesce_init(&c, 20000, now, cpu);
        run_sample(&c, &now, &cpu, TW_COALESCE_ON_PCT - 1);
        cr_assert_not(c.loaded);
        tw_coalesce_flushed(&c, now, 8000);
        cr_assert_eq(tw_coalesce_wait_us(&c, now + 8000), 0);
}

Test(coalesce_rule, loaded_worker_waits_as_long_as_its_last_flush_took)
{
        tw_coalesce c;
        uint64_t now = 1000000, cpu = 0;

        tw_coalesce_init(&c, 20000, now, cpu);
        run_sample(&c, &now, &cpu, TW_COALESCE_ON_PCT);
        cr_assert(c.loaded);
        tw_coalesce_flushed(&c, now, 3000); /* done at now + 3000 */
        cr_assert_eq(tw_coalesce_wait_us(&c, now + 3000), 3000);
        cr_assert_eq(tw_coalesce_wait_us(&c, now + 5999), 1);
        cr_assert_eq(tw_coalesce_wait_us(&c, now + 6000), 0);
}

Test(coalesce_rule, hold_is_capped)
{
        tw_coalesce c;
        uint64_t now = 1000000, cpu = 0;

        tw_coalesce_init(&c, 20000, now, cpu);
        run_sample(&c, &now, &cpu, 100);
        tw_coalesce_flushed(&c, now, 90000); /* a 90 ms flush holds 20 ms, not 90 */
        cr_assert_eq(tw_coalesce_wait_us(&c, now + 90000), 20000);
        cr_assert_eq(tw_coalesce_wait_us(&c, now + 110000), 0);
}

Test(coalesce_rule, hysteresis_between_on_and_off)
{
        tw_coalesce c;
        uint64_t now = 1000000, cpu = 0;

        tw_coalesce_init(&c, 20000, now, cpu);
        run_sample(&c, &now, &cpu, 95);
        cr_assert(c.loaded);
        run_sample(&c, &now, &cpu, TW_COALESCE_OFF_PCT); /* coalescing made room: stays */
        cr_assert(c.loaded);
        run_sample(&c, &now, &cpu, TW_COALESCE_OFF_PCT - 1);
        cr_assert_not(c.loaded);
        tw_coalesce_flushed(&c, now, 5000);
        cr_assert_eq(tw_coalesce_wait_us(&c, now + 5000), 0);
        run_sample(&c, &now, &cpu, TW_COALESCE_ON_PCT - 1); /* between: stays off */
        cr_assert_not(c.loaded);
}

Test(coalesce_rule, zero_cap_never_holds)
{
        tw_coalesce c;
        uint64_t now = 1000000, cpu = 0;

        tw_coalesce_init(&c, 0, now, cpu);
        cr_assert_not(tw_coalesce_sample_due(&c, now + 10 * S));
        c.loaded = true; /* even if it were loaded */
        tw_coalesce_flushed(&c, now, 5000);
        cr_assert_eq(tw_coalesce_wait_us(&c, now), 0);
}

Test(coalesce_rule, sample_not_over_decides_nothing)
{
        tw_coalesce c;
        uint64_t now = 1000000, cpu = 0;

        tw_coalesce_init(&c, 20000, now, cpu);
        cr_assert_not(tw_coalesce_sample_due(&c, now + S - 1));
        cr_assert(tw_coalesce_sample_due(&c, now + S));
}

Test(coalesce_rule, demand_is_run_plus_wait_time)
{
        const char line[] = "343241963 162527 39\n";
        uint64_t d = 0;

        cr_assert(tw_coalesce_demand_parse(line, sizeof(line) - 1, &d));
        cr_assert_eq(d, 343241963u + 162527u);
}

Test(coalesce_rule, demand_rejects_what_is_not_two_numbers)
{
        uint64_t d = 7;

        cr_assert_not(tw_coalesce_demand_parse("", 0, &d));
        cr_assert_not(tw_coalesce_demand_parse("12", 2, &d));     /* one number */
        cr_assert_not(tw_coalesce_demand_parse("12 x 3", 6, &d)); /* not a number */
        cr_assert_not(tw_coalesce_demand_parse("1 2", 2, &d));    /* cut by len */
        cr_assert_not(tw_coalesce_demand_parse("99999999999999999999 1", 22, &d)); /* > 2^64 */
        cr_assert_eq(d, 7);
}

Test(coalesce_rule, a_clock_that_goes_back_decides_nothing)
{
        tw_coalesce c;
        uint64_t now = 1000000;

        /* Demand (run + wait) is ahead of the CPU clock it falls back to: the sample that
         * spans the switch must not read as 100 % busy. */
        tw_coalesce_init(&c, 20000, now, 900000000);
        now += S;
        tw_coalesce_sample(&c, now, 5000);
        cr_assert_not(c.loaded);
        now += S;
        tw_coalesce_sample(&c, now, 5000 + (uint64_t)S * 10u * 10u); /* then 10 % busy */
        cr_assert_not(c.loaded);
}

Test(coalesce_rule, a_full_send_or_an_eighth_of_the_bound_is_not_held)
{
        const uint64_t bound = 64 * 1024;

        cr_assert_not(tw_coalesce_sends_now(1, 1000, bound));
        cr_assert_not(tw_coalesce_sends_now(TW_COALESCE_FULL_SEND - 1, bound / 8 - 1, bound));
        cr_assert(tw_coalesce_sends_now(TW_COALESCE_FULL_SEND, 100, bound));
        /* 20 ms held at 2.7 MB/s is 54 KB: most of a 64 KiB bound before the client reads */
        cr_assert(tw_coalesce_sends_now(4, bound / 8, bound));
}
