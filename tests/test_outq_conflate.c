/*
 * test_outq_conflate — the slow-consumer rule over a send queue ring: the newest pending
 * message per topic survives, non-topic frames (replies, control) always survive, order
 * is kept, the pinned head (in flight) is never touched even when it holds older messages
 * of the same topic, the ring wraps, `all` empties everything but the pinned part, and
 * bytes and references are accounted exactly.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "tickwire/outq.h"

#define CAP 16

static tw_frame *mk(uint32_t topic, uint64_t seq, uint32_t len)
{
        tw_frame *f = tw_frame_alloc(len);

        cr_assert(f);
        f->topic_id = topic;
        f->seq = seq;
        return f;
}

/* A queue of (topic, seq) pairs starting at ring index head; every frame gets a spare
 * reference kept in `all` so freed-vs-kept can be checked through refcounts. */
struct q {
        tw_frame *ring[CAP];
        tw_frame *all[CAP];
        uint32_t head, count, n;
        uint64_t bytes;
};

static void build(struct q *q, uint32_t head, const uint32_t (*spec)[2], uint32_t n)
{
        memset(q, 0, sizeof(*q));
        q->head = head;
        for (uint32_t i = 0; i < n; i++) {
                tw_frame *f = mk(spec[i][0], spec[i][1], 10 + i);

                q->all[i] = tw_frame_ref(f);
                q->ring[(head + i) % CAP] = f;
                q->bytes += f->len;
        }
        q->count = q->n = n;
}

/* Asserts the queue now holds exactly the frames at spec indexes `want`, in order. */
static void expect(struct q *q, const uint32_t *want, uint32_t nwant)
{
        uint64_t bytes = 0;
        uint32_t k = 0;

        cr_assert_eq(q->count, nwant);
        for (uint32_t i = 0; i < q->n; i++) {
                bool kept = k < nwant && want[k] == i;

                if (kept) {
                        cr_assert_eq(q->ring[(q->head + k) % CAP], q->all[i], "position %u", k);
                        bytes += q->all[i]->len;
                        k++;
                }
                cr_assert_eq(atomic_load(&q->all[i]->refs), kept ? 2 : 1, "frame %u", i);
        }
        cr_assert_eq(q->bytes, bytes);
        for (uint32_t i = 0; i < q->count; i++)
                tw_frame_unref(q->ring[(q->head + i) % CAP]);
        for (uint32_t i = 0; i < q->n; i++)
                tw_frame_unref(q->all[i]);
}

Test(conflate, newest_per_topic_in_order)
{
        static const uint32_t spec[][2] = {{1, 1}, {2, 1}, {0, 0}, {1, 2}, {2, 2}, {1, 3}, {3, 1}};
        static const uint32_t want[] = {2, 4, 5, 6};
        struct q q;

        build(&q, 0, spec, 7);
        cr_assert_eq(tw_conflate(q.ring, CAP, &q.head, &q.count, 0, false, &q.bytes), 3);
        expect(&q, want, 4);
}

Test(conflate, pinned_head_untouched_and_wraps)
{
        static const uint32_t spec[][2] = {{1, 1}, {1, 2}, {1, 3}, {0, 0}, {1, 4}, {1, 5}};
        static const uint32_t want[] = {0, 1, 3, 5};
        struct q q;

        build(&q, 13, spec, 6); /* ring indexes 13,14,15,0,1,2 */
        cr_assert_eq(tw_conflate(q.ring, CAP, &q.head, &q.count, 2, false, &q.bytes), 2);
        expect(&q, want, 4);
}

Test(conflate, nothing_to_drop)
{
        static const uint32_t spec[][2] = {{1, 1}, {2, 1}, {0, 0}, {3, 7}};
        static const uint32_t want[] = {0, 1, 2, 3};
        struct q q;

        build(&q, 5, spec, 4);
        cr_assert_eq(tw_conflate(q.ring, CAP, &q.head, &q.count, 0, false, &q.bytes), 0);
        expect(&q, want, 4);
}

Test(conflate, keep_covers_all)
{
        static const uint32_t spec[][2] = {{1, 1}, {1, 2}};
        static const uint32_t want[] = {0, 1};
        struct q q;

        build(&q, 0, spec, 2);
        cr_assert_eq(tw_conflate(q.ring, CAP, &q.head, &q.count, 2, false, &q.bytes), 0);
        expect(&q, want, 2);
}

Test(conflate, all_drops_everything_not_pinned)
{
        static const uint32_t spec[][2] = {{1, 1}, {1, 2}, {0, 0}, {2, 1}, {1, 3}};
        static const uint32_t want[] = {0};
        struct q q;

        build(&q, 14, spec, 5);
        cr_assert_eq(tw_conflate(q.ring, CAP, &q.head, &q.count, 1, true, &q.bytes), 3);
        expect(&q, want, 1);
}

Test(conflate, many_topics_random)
{
        /* Property: survivors = non-topic frames + the last of each topic, in order. */
        srand(7);
        for (int round = 0; round < 2000; round++) {
                uint32_t spec[CAP][2], want[CAP], nwant = 0;
                uint32_t n = (uint32_t)(rand() % CAP) + 1, keep = (uint32_t)rand() % (n + 1);
                struct q q;

                for (uint32_t i = 0; i < n; i++) {
                        spec[i][0] = (uint32_t)(rand() % 5); /* 0 = not a topic message */
                        spec[i][1] = i + 1;
                }
                for (uint32_t i = 0; i < n; i++) {
                        bool later = false;

                        for (uint32_t j = i + 1; j < n && spec[i][0]; j++)
                                later |= spec[j][0] == spec[i][0];
                        if (i < keep || !later)
                                want[nwant++] = i;
                }
                build(&q, (uint32_t)rand() % CAP, (const uint32_t(*)[2])spec, n);
                cr_assert_eq(tw_conflate(q.ring, CAP, &q.head, &q.count, keep, false, &q.bytes),
                             (int64_t)(n - nwant));
                expect(&q, want, nwant);
        }
}
