/*
 * test_history_window — a topic's history ring: empty, filling while it grows from its
 * first small allocation, eviction of the oldest once at the cap, a cap that is not a
 * power of two, a cap of one, and that every frame reference is released exactly once
 * (counted through the frames' refcounts).
 */
#include <criterion/criterion.h>

#include "tickwire/history.h"

static tw_frame *mk(uint64_t seq)
{
        tw_frame *f = tw_frame_alloc(8);

        cr_assert(f);
        f->seq = seq;
        return f;
}

Test(history, empty)
{
        tw_history h = {.max = 8};

        cr_assert_eq(tw_history_oldest(&h), 1);
        cr_assert_null(tw_history_get(&h, 0));
        cr_assert_null(tw_history_get(&h, 1));
        tw_history_free(&h);
}

static void check_window(const tw_history *h, uint64_t last, uint32_t max)
{
        uint64_t oldest = last > max ? last - max + 1 : 1;

        cr_assert_eq(h->last, last);
        cr_assert_eq(tw_history_oldest(h), oldest);
        cr_assert_null(tw_history_get(h, oldest - 1));
        cr_assert_null(tw_history_get(h, last + 1));
        for (uint64_t s = oldest; s <= last; s++) {
                tw_frame *f = tw_history_get(h, s);

                cr_assert(f, "seq %llu missing", (unsigned long long)s);
                cr_assert_eq(f->seq, s);
        }
}

static void fill(uint32_t max, uint64_t total)
{
        tw_history h = {.max = max};
        tw_frame *keep[64];

        for (uint64_t s = 1; s <= total; s++) {
                tw_frame *f = mk(s);

                /* An extra reference on the first frames shows when the ring drops its own. */
                if (s <= 64)
                        keep[s - 1] = tw_frame_ref(f);
                uint64_t freed;
                cr_assert_eq(tw_history_push(&h, f, &freed), 0);
                check_window(&h, s, max);
                cr_assert_leq(h.cap, max);
        }
        for (uint64_t s = 1; s <= total && s <= 64; s++) {
                uint32_t want = s + max > total ? 2 : 1; /* still held by the ring? */

                cr_assert_eq(atomic_load(&keep[s - 1]->refs), want, "seq %llu",
                             (unsigned long long)s);
        }
        tw_history_free(&h);
        for (uint64_t s = 1; s <= total && s <= 64; s++) {
                cr_assert_eq(atomic_load(&keep[s - 1]->refs), 1);
                tw_frame_unref(keep[s - 1]);
        }
}

Test(history, grows_then_evicts)
{
        fill(1024, 3000);
}

Test(history, odd_cap)
{
        fill(37, 500);
}

Test(history, cap_one)
{
        fill(1, 50);
}

Test(history, partial_fill_then_free)
{
        fill(100, 20);
}
