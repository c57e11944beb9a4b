/*
 * test_idem_recent — the recent publish ids of a topic: an id is found with its seq while
 * its message is in the history or younger than the TTL, and not after both have passed;
 * the table forgets the oldest when full; trimming to the history forgets what left it and
 * gives memory back; thousands of ids (index wrap-around, backward-shift deletion) stay
 * exact against a model.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "tickwire/idem.h"

static tw_span sp(const char *s)
{
        return (tw_span){s, strlen(s)};
}

Test(idem, found_while_in_history_or_young)
{
        tw_idem *m = NULL;
        uint64_t seq = 0;

        cr_assert_not(tw_idem_find(m, sp("a"), 0, 1, &seq));
        cr_assert_eq(tw_idem_add(&m, sp("a"), 7, 1000, 1), 0);
        cr_assert(tw_idem_find(m, sp("a"), 1000, 1, &seq));
        cr_assert_eq(seq, 7);
        cr_assert_not(tw_idem_find(m, sp("b"), 1000, 1, &seq));
        /* Out of the history but young: still found. */
        cr_assert(tw_idem_find(m, sp("a"), 1000 + TW_IDEM_TTL_MS - 1, 100, &seq));
        /* In the history but old: still found. */
        cr_assert(tw_idem_find(m, sp("a"), 1000 + 10 * TW_IDEM_TTL_MS, 7, &seq));
        /* Neither: forgotten. */
        cr_assert_not(tw_idem_find(m, sp("a"), 1000 + TW_IDEM_TTL_MS, 8, &seq));
        tw_idem_free(m);
}

Test(idem, full_table_forgets_the_oldest)
{
        tw_idem *m = NULL;
        char id[16];
        uint64_t seq;

        for (uint32_t i = 0; i < TW_IDEM_MAX + 10; i++) {
                snprintf(id, sizeof(id), "id-%u", i);
                cr_assert_eq(tw_idem_add(&m, sp(id), i + 1, 0, 1), 0);
        }
        cr_assert_eq(tw_idem_count(m), TW_IDEM_MAX);
        for (uint32_t i = 0; i < TW_IDEM_MAX + 10; i++) {
                snprintf(id, sizeof(id), "id-%u", i);
                cr_assert_eq(tw_idem_find(m, sp(id), 0, 1, &seq), i >= 10, "id %u", i);
                if (i >= 10)
                        cr_assert_eq(seq, i + 1);
        }
        tw_idem_free(m);
}

Test(idem, trim_to_history_forgets_and_shrinks)
{
        tw_idem *m = NULL;
        char id[16];
        uint64_t seq, before;

        for (uint32_t i = 1; i <= 1000; i++) {
                snprintf(id, sizeof(id), "x%u", i);
                cr_assert_eq(tw_idem_add(&m, sp(id), i, 0, 1), 0);
        }
        before = tw_idem_bytes(m);
        cr_assert_gt(tw_idem_trim(m, 991), 0, "memory given back");
        cr_assert_lt(tw_idem_bytes(m), before);
        cr_assert_eq(tw_idem_count(m), 10);
        cr_assert_not(tw_idem_find(m, sp("x990"), 0, 991, &seq));
        cr_assert(tw_idem_find(m, sp("x991"), 0, 991, &seq));
        cr_assert_eq(seq, 991);
        cr_assert_gt(tw_idem_trim(m, 5000), 0);
        cr_assert_eq(tw_idem_count(m), 0);
        cr_assert_lt(tw_idem_bytes(m), 64, "an empty table keeps no arrays");
        tw_idem_free(m);
}

Test(idem, adding_expires_what_is_gone)
{
        tw_idem *m = NULL;
        uint64_t seq;

        cr_assert_eq(tw_idem_add(&m, sp("old"), 1, 0, 1), 0);
        cr_assert_eq(tw_idem_add(&m, sp("new"), 50, TW_IDEM_TTL_MS + 5, 40), 0);
        cr_assert_eq(tw_idem_count(m), 1, "the old one left history and the TTL: dropped");
        cr_assert(tw_idem_find(m, sp("new"), TW_IDEM_TTL_MS + 5, 40, &seq));
        tw_idem_free(m);
}

/* Random adds and trims against a model of which ids are held. */
Test(idem, model_check)
{
        enum { IDS = 3000 };
        static uint64_t held[IDS]; /* seq + 1 while held, else 0 */
        tw_idem *m = NULL;
        uint32_t x = 12345, next = 1, oldest = 1;
        char id[16];
        uint64_t seq;

        for (int step = 0; step < 20000; step++) {
                x ^= x << 13, x ^= x >> 17, x ^= x << 5;
                uint32_t k = x % IDS;

                snprintf(id, sizeof(id), "k%u", k);
                if (x % 97 == 0) {
                        oldest = next > 200 ? next - 200 : 1;
                        tw_idem_trim(m, oldest);
                        for (int i = 0; i < IDS; i++)
                                if (held[i] && held[i] - 1 < oldest)
                                        held[i] = 0;
                        continue;
                }
                bool found = tw_idem_find(m, sp(id), 0, oldest, &seq);

                cr_assert_eq(found, held[k] != 0, "step %d id %u", step, k);
                if (found) {
                        cr_assert_eq(seq, held[k] - 1);
                        continue;
                }
                cr_assert_eq(tw_idem_add(&m, sp(id), next, 0, oldest), 0);
                held[k] = next + 1;
                next++;
        }
        tw_idem_free(m);
}
