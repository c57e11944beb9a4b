/*
 * test_outq_send — a send queue driven the way the worker drives it (tw_outq_prepare,
 * then tw_outq_complete with what the kernel took): partial sends resume mid-frame and
 * never skip or repeat a byte; the in-flight window covers at most `max` entries, only one
 * send is in flight at a time, and the queue frees itself when empty; conflation through
 * the queue leaves the entries in flight and a partly sent head alone (the pins), and
 * bytes and references are accounted exactly throughout.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "tickwire/outq.h"

/* A frame of len bytes, each byte = tag + its index (so any offset is recognisable). */
static tw_frame *mk(uint8_t tag, uint32_t len, uint64_t topic)
{
        tw_frame *f = tw_frame_alloc(len);

        cr_assert(f);
        for (uint32_t i = 0; i < len; i++)
                f->data[i] = (uint8_t)(tag + i);
        f->topic_id = topic;
        return f;
}

/* Pushes f and keeps a reference of our own, so its release can be seen in refs. */
static tw_frame *push(tw_outq **q, tw_frame *f)
{
        tw_frame_ref(f);
        cr_assert_eq(tw_outq_push(q, f), 0);
        return f;
}

static uint32_t refs(tw_frame *f)
{
        return atomic_load(&f->refs);
}

/* Copies what iov[0..n) describes into out, as sendmsg would; returns the byte count. */
static size_t gather(const struct iovec *iov, size_t n, uint8_t *out)
{
        size_t k = 0;

        for (size_t i = 0; i < n; i++) {
                memcpy(out + k, iov[i].iov_base, iov[i].iov_len);
                k += iov[i].iov_len;
        }
        return k;
}

Test(outq_send, empty_queue_is_null_and_prepares_nothing)
{
        tw_outq *q = NULL;
        struct iovec iov[4];

        cr_assert_eq(tw_outq_bytes(q), 0);
        cr_assert(!tw_outq_sending(q));
        cr_assert_eq(tw_outq_prepare(q, iov, 4), 0);
        cr_assert_eq(tw_outq_complete(&q, 0, NULL), 0);
        cr_assert_eq(tw_outq_unpinned_bytes(q), 0);
        cr_assert_eq(tw_outq_conflate(q, true), 0);
        tw_outq_free(&q); /* NULL: a no-op */
}

Test(outq_send, partial_sends_resume_mid_frame)
{
        tw_outq *q = NULL;
        tw_frame *a = push(&q, mk(0, 100, 0)), *b = push(&q, mk(100, 50, 0));
        uint8_t wire[150], want[150];
        size_t got = 0;
        struct iovec iov[8];

        memcpy(want, a->data, 100);
        memcpy(want + 100, b->data, 50);
        cr_assert_eq(tw_outq_bytes(q), 150);
        /* The kernel takes 30, then 80 (ending inside b), then the rest. */
        static const size_t takes[] = {30, 80, 40};
        for (size_t t = 0; t < 3; t++) {
                uint8_t buf[150];
                size_t n = tw_outq_prepare(q, iov, 8), len = gather(iov, n, buf);

                cr_assert_gt(n, 0);
                cr_assert_eq(len, 150 - got, "the send offers exactly what is left");
                cr_assert(tw_outq_sending(q));
                memcpy(wire + got, buf, takes[t]);
                got += takes[t];
                cr_assert_eq(tw_outq_complete(&q, takes[t], NULL), 150 - got);
                if (t == 0)
                        cr_assert_eq(refs(a), 2, "a partly sent frame stays queued");
                if (t == 1) {
                        cr_assert_eq(refs(a), 1, "a fully sent frame is released");
                        cr_assert_eq(refs(b), 2);
                }
        }
        cr_assert_eq(memcmp(wire, want, 150), 0, "no byte skipped or repeated");
        cr_assert_null(q, "an empty queue frees itself");
        cr_assert_eq(refs(b), 1);
        tw_frame_unref(a);
        tw_frame_unref(b);
}

Test(outq_send, failed_send_keeps_everything)
{
        tw_outq *q = NULL;
        tw_frame *a = push(&q, mk(0, 10, 0));
        struct iovec iov[2];

        cr_assert_eq(tw_outq_prepare(q, iov, 2), 1);
        cr_assert_eq(tw_outq_complete(&q, 0, NULL), 10, "an error or cancel sends nothing");
        cr_assert_not_null(q);
        cr_assert(!tw_outq_sending(q), "the window is closed again");
        cr_assert_eq(tw_outq_prepare(q, iov, 2), 1, "and the same bytes go out again");
        cr_assert_eq(iov[0].iov_base, a->data);
        cr_assert_eq(iov[0].iov_len, 10);
        cr_assert_eq(tw_outq_complete(&q, 10, NULL), 0);
        cr_assert_null(q);
        tw_frame_unref(a);
}

Test(outq_send, window_bounded_by_max_and_one_send_at_a_time)
{
        tw_outq *q = NULL;
        tw_frame *f[6];
        struct iovec iov[6];

        for (int i = 0; i < 6; i++) /* past the initial ring size: it grows */
                f[i] = push(&q, mk((uint8_t)(i * 10), 10, 0));
        cr_assert_eq(tw_outq_prepare(q, iov, 4), 4, "at most max entries per send");
        for (int i = 0; i < 4; i++)
                cr_assert_eq(iov[i].iov_base, f[i]->data);
        cr_assert_eq(tw_outq_prepare(q, iov, 4), 0, "nothing while a send is in flight");
        /* Pushing during the send does not disturb the window. */
        tw_frame *g = push(&q, mk(200, 10, 0));
        cr_assert_eq(tw_outq_bytes(q), 70);
        cr_assert_eq(tw_outq_complete(&q, 40, NULL), 30);
        cr_assert_eq(tw_outq_prepare(q, iov, 4), 3);
        cr_assert_eq(iov[0].iov_base, f[4]->data);
        cr_assert_eq(iov[2].iov_base, g->data);
        cr_assert_eq(tw_outq_complete(&q, 30, NULL), 0);
        cr_assert_null(q);
        for (int i = 0; i < 6; i++) {
                cr_assert_eq(refs(f[i]), 1);
                tw_frame_unref(f[i]);
        }
        tw_frame_unref(g);
}

Test(outq_send, release_through_batch)
{
        tw_outq *q = NULL;
        tw_frame_batch rel;
        tw_frame *a = push(&q, mk(0, 10, 0));
        struct iovec iov[1];

        memset(&rel, 0, sizeof(rel));
        cr_assert_eq(tw_outq_prepare(q, iov, 1), 1);
        cr_assert_eq(tw_outq_complete(&q, 10, &rel), 0);
        cr_assert_eq(refs(a), 2, "released once per turn, not at once");
        tw_frame_batch_flush(&rel);
        cr_assert_eq(refs(a), 1);
        tw_frame_unref(a);
}

Test(outq_send, conflation_leaves_the_send_in_flight_alone)
{
        tw_outq *q = NULL;
        tw_frame *m1 = push(&q, mk(0, 10, 7)), *m2 = push(&q, mk(10, 10, 7));
        struct iovec iov[8];

        cr_assert_eq(tw_outq_prepare(q, iov, 8), 2); /* both in flight: pinned */
        tw_frame *m3 = push(&q, mk(20, 10, 7)), *m4 = push(&q, mk(30, 10, 7));
        cr_assert_eq(tw_outq_unpinned_bytes(q), 20);
        cr_assert_eq(tw_outq_conflate(q, false), 1, "only m3 goes: m4 is newer, m1/m2 pinned");
        cr_assert_eq(refs(m1), 2);
        cr_assert_eq(refs(m2), 2);
        cr_assert_eq(refs(m3), 1);
        cr_assert_eq(refs(m4), 2);
        cr_assert_eq(tw_outq_bytes(q), 30);
        cr_assert_eq(tw_outq_unpinned_bytes(q), 10);
        /* The kernel's vectors still point at m1 and m2: completing them works as usual. */
        cr_assert_eq(iov[0].iov_base, m1->data);
        cr_assert_eq(tw_outq_complete(&q, 20, NULL), 10);
        cr_assert_eq(tw_outq_prepare(q, iov, 8), 1);
        cr_assert_eq(iov[0].iov_base, m4->data);
        cr_assert_eq(tw_outq_complete(&q, 10, NULL), 0);
        cr_assert_null(q);
        tw_frame_unref(m1);
        tw_frame_unref(m2);
        tw_frame_unref(m3);
        tw_frame_unref(m4);
}

Test(outq_send, conflation_keeps_a_partly_sent_head)
{
        tw_outq *q = NULL;
        tw_frame *m1 = push(&q, mk(0, 10, 7)), *r = push(&q, mk(50, 5, 0));
        tw_frame *m2 = push(&q, mk(10, 10, 7));
        struct iovec iov[8];

        cr_assert_eq(tw_outq_prepare(q, iov, 8), 3);
        cr_assert_eq(tw_outq_complete(&q, 4, NULL), 21); /* m1 is half out */
        cr_assert(!tw_outq_sending(q));
        cr_assert_eq(tw_outq_unpinned_bytes(q), 15, "the rest of m1 is pinned");
        cr_assert_eq(tw_outq_conflate(q, true), 1, "`all` drops m2 and the reply, not m1");
        cr_assert_eq(refs(m1), 2);
        cr_assert_eq(refs(r), 1);
        cr_assert_eq(refs(m2), 1);
        cr_assert_eq(tw_outq_bytes(q), 6);
        cr_assert_eq(tw_outq_prepare(q, iov, 8), 1);
        cr_assert_eq(iov[0].iov_base, m1->data + 4, "the stream never carries half a frame");
        cr_assert_eq(iov[0].iov_len, 6);
        cr_assert_eq(tw_outq_complete(&q, 6, NULL), 0);
        cr_assert_null(q);
        tw_frame_unref(m1);
        tw_frame_unref(r);
        tw_frame_unref(m2);
}

Test(outq_send, free_releases_everything)
{
        tw_outq *q = NULL;
        tw_frame *a = push(&q, mk(0, 10, 1)), *b = push(&q, mk(0, 10, 0));

        tw_outq_free(&q);
        cr_assert_null(q);
        cr_assert_eq(refs(a), 1);
        cr_assert_eq(refs(b), 1);
        tw_frame_unref(a);
        tw_frame_unref(b);
}
