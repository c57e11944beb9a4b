/*
 * The slot/generation table: a fresh table's slots come out lowest first, freed ones last
 * in first out, a completion tagged for a
 * slot's earlier life (put back, taken again, renewed) no longer resolves, the kind
 * travels in the tag untouched, and the table refuses to overfill.
 */
#include <criterion/criterion.h>
#include <errno.h>

#include "tickwire/ring.h"
#include "tickwire/table.h"

Test(table_generations, fresh_table_hands_out_slots_in_order)
{
        tw_table t;

        cr_assert_eq(tw_table_init(&t, 4), 0);
        for (int64_t k = 0; k < 4; k++)
                cr_expect_eq(tw_table_take(&t), k);
        cr_expect_eq(tw_table_take(&t), -ENOSPC);
        tw_table_free(&t);
}

Test(table_generations, bad_sizes)
{
        tw_table t;

        cr_expect_eq(tw_table_init(&t, 0), -EINVAL);
        cr_expect_eq(tw_table_init(&t, TW_TABLE_MAX_SLOTS + 1), -EINVAL);
        tw_table_free(&t); /* harmless on a table that failed to init */
}

Test(table_generations, resolve_live_and_stale)
{
        tw_table t;

        cr_assert_eq(tw_table_init(&t, 8), 0);
        int64_t a = tw_table_take(&t), b = tw_table_take(&t);
        uint64_t ua = tw_table_ud(&t, 7, (uint32_t)a), ub = tw_table_ud(&t, 9, (uint32_t)b);

        cr_expect_eq(tw_ud_kind(ua), 7);
        cr_expect_eq(tw_ud_kind(ub), 9);
        cr_expect_eq(tw_table_resolve(&t, ua), a);
        cr_expect_eq(tw_table_resolve(&t, ub), b);

        /* Renewed: the old tag is stale, a new one resolves. */
        tw_table_renew(&t, (uint32_t)a);
        cr_expect_eq(tw_table_resolve(&t, ua), -ESTALE);
        uint64_t ua2 = tw_table_ud(&t, 7, (uint32_t)a);
        cr_expect_eq(tw_table_resolve(&t, ua2), a);

        /* Put back and taken again (the same slot: last in, first out): still stale. */
        tw_table_put(&t, (uint32_t)a);
        cr_expect_eq(tw_table_resolve(&t, ua2), -ESTALE);
        cr_expect_eq(tw_table_take(&t), a);
        cr_expect_eq(tw_table_resolve(&t, ua2), -ESTALE);
        cr_expect_eq(tw_table_resolve(&t, ub), b);

        /* Out of range, and the "no slot" tag. */
        cr_expect_eq(tw_table_resolve(&t, tw_ud(7, 8, tw_ud_gen(ub))), -ESTALE);
        cr_expect_eq(tw_table_resolve(&t, tw_ud(7, 0, 0)), -ESTALE);
        tw_table_free(&t);
}

Test(table_generations, generation_skips_zero_when_it_wraps)
{
        tw_table t;

        cr_assert_eq(tw_table_init(&t, 1), 0);
        cr_assert_eq(tw_table_take(&t), 0);
        t.gen[0] = UINT32_MAX; /* as after 2^32 - 2 renewals */
        uint64_t old = tw_table_ud(&t, 1, 0);
        cr_expect_eq(tw_table_renew(&t, 0), 1);
        cr_expect_eq(tw_table_resolve(&t, old), -ESTALE);
        cr_expect_eq(tw_table_resolve(&t, tw_ud(1, 0, 0)), -ESTALE);
        tw_table_free(&t);
}

Test(table_generations, put_and_take_reuse_the_last_freed)
{
        tw_table t;

        cr_assert_eq(tw_table_init(&t, 3), 0);
        for (int i = 0; i < 3; i++)
                (void)tw_table_take(&t);
        tw_table_put(&t, 2);
        tw_table_put(&t, 0);
        cr_expect_eq(tw_table_take(&t), 0); /* the last one put */
        cr_expect_eq(tw_table_take(&t), 2);
        cr_expect_eq(tw_table_take(&t), -ENOSPC);
        tw_table_free(&t);
}
