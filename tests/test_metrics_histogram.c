/*
 * Detection histogram and close slots: the bounds table is sorted and spans 10 ms to
 * 10 min, an observation lands in the first bucket whose bound it does not exceed (le),
 * and every close code maps to its own slot or to "other".
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "tickwire/metrics.h"

Test(metrics_histogram, bounds_sorted_10ms_to_10min)
{
        cr_expect_eq(tw_detect_bounds[0], 0.01);
        cr_expect_eq(tw_detect_bounds[TW_DETECT_BUCKETS - 1], 600.0);
        for (size_t i = 1; i < TW_DETECT_BUCKETS; i++)
                cr_expect_gt(tw_detect_bounds[i], tw_detect_bounds[i - 1], "bound %zu", i);
        /* the default's and the im, game, market profiles' idle timeouts are bounds */
        const double idle[] = {15, 45, 60, 90};
        for (size_t k = 0; k < sizeof idle / sizeof idle[0]; k++) {
                bool found = false;
                for (size_t i = 0; i < TW_DETECT_BUCKETS; i++)
                        found |= tw_detect_bounds[i] == idle[k];
                cr_expect(found, "%g is not a bound", idle[k]);
        }
}

/* Index of the one bucket a single observation of `usec` lands in. */
static size_t bucket_of(uint64_t usec)
{
        tw_histogram h;
        memset(&h, 0, sizeof h);
        tw_histogram_observe(&h, usec);
        size_t hit = SIZE_MAX;
        for (size_t i = 0; i <= TW_DETECT_BUCKETS; i++)
                if (TW_GET(h.bucket[i])) {
                        cr_assert_eq(hit, SIZE_MAX, "two buckets hit for %lu", (unsigned long)usec);
                        cr_assert_eq(TW_GET(h.bucket[i]), 1);
                        hit = i;
                }
        cr_assert_eq(TW_GET(h.count), 1);
        cr_assert_eq(TW_GET(h.sum_us), usec);
        return hit;
}

Test(metrics_histogram, observe_picks_le_bucket)
{
        cr_expect_eq(bucket_of(0), 0);
        cr_expect_eq(bucket_of(10000), 0); /* exactly 0.01 s: le="0.01" */
        cr_expect_eq(bucket_of(10001), 1);
        cr_expect_eq(bucket_of(25000), 1);
        cr_expect_eq(bucket_of(999999), 6); /* le="1" */
        cr_expect_eq(bucket_of(1000000), 6);
        cr_expect_eq(bucket_of(90000000), 16);                 /* le="90" */
        cr_expect_eq(bucket_of(90010000), 17);                 /* 90.01 s: le="120" */
        cr_expect_eq(bucket_of(600000000), 19);                /* le="600" */
        cr_expect_eq(bucket_of(600000001), TW_DETECT_BUCKETS); /* +Inf */
        cr_expect_eq(bucket_of(UINT64_MAX), TW_DETECT_BUCKETS);
}

Test(metrics_histogram, every_bound_is_inclusive)
{
        for (size_t i = 0; i < TW_DETECT_BUCKETS; i++) {
                uint64_t us = (uint64_t)llround(tw_detect_bounds[i] * 1e6);
                cr_expect_eq(bucket_of(us), i, "bound %g", tw_detect_bounds[i]);
                cr_expect_eq(bucket_of(us + 1), i + 1, "just over %g", tw_detect_bounds[i]);
        }
}

Test(metrics_histogram, accumulates)
{
        tw_histogram h;
        memset(&h, 0, sizeof h);
        tw_histogram_observe(&h, 5000);
        tw_histogram_observe(&h, 5000);
        tw_histogram_observe(&h, 2000000);
        cr_expect_eq(TW_GET(h.bucket[0]), 2);
        cr_expect_eq(TW_GET(h.bucket[7]), 1);
        cr_expect_eq(TW_GET(h.count), 3);
        cr_expect_eq(TW_GET(h.sum_us), 2010000);
}

Test(metrics_histogram, close_slots)
{
        static const struct {
                uint16_t code;
                enum tw_close_slot slot;
        } map[] = {
            {1000, TW_CL_1000},   {1001, TW_CL_1001},  {1002, TW_CL_1002},  {1003, TW_CL_1003},
            {1005, TW_CL_1005},   {1006, TW_CL_1006},  {1007, TW_CL_1007},  {1008, TW_CL_1008},
            {1009, TW_CL_1009},   {1010, TW_CL_1010},  {1011, TW_CL_1011},  {1013, TW_CL_1013},
            {0, TW_CL_OTHER},     {999, TW_CL_OTHER},  {1004, TW_CL_OTHER}, {1012, TW_CL_OTHER},
            {1014, TW_CL_OTHER},  {1015, TW_CL_OTHER}, {3000, TW_CL_OTHER}, {4999, TW_CL_OTHER},
            {65535, TW_CL_OTHER},
        };
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
                cr_expect_eq(tw_close_slot_of(map[i].code), map[i].slot, "code %u", map[i].code);
}

Test(metrics_histogram, close_slots_distinct)
{
        bool seen[TW_CL__COUNT] = {0};
        for (uint32_t code = 0; code <= 65535; code++) {
                enum tw_close_slot s = tw_close_slot_of((uint16_t)code);
                cr_assert_lt((unsigned)s, TW_CL__COUNT);
                if (s != TW_CL_OTHER) {
                        cr_expect_not(seen[s], "slot %d reached twice (code %u)", s, code);
                        seen[s] = true;
                }
        }
        for (int s = 0; s < TW_CL_OTHER; s++)
                cr_expect(seen[s], "slot %d unreachable", s);
}
