/*
 * fuzz_history — libFuzzer harness for a topic's history and the `since` replay cursors
 * that stream from it (include/tickwire/history.h). The input is a program: pushes of
 * frames of chosen sizes, trims to byte bounds (what --max-history-bytes does), cursors
 * started at chosen `since` values and reads with chosen budgets. Invariants:
 *  - the window: n <= max, seqs (last - n, last] each held with the right frame, bytes
 *    equal to the sum of the costs held;
 *  - a read returns consecutive seqs starting at the cursor's position, never more bytes
 *    than the budget (except the one frame a reader with nothing queued always gets),
 *    at most `max`, and says CAUGHT_UP exactly when the cursor passed the newest seq;
 *  - OVERRUN only when the history dropped the cursor's next seq: nothing is read, the
 *    cursor moves to the oldest held and is incomplete from then on;
 *  - truthfulness: a cursor still `complete` has delivered exactly since+1 .. next-1,
 *    each once, in order — the property `"recovered":true` rests on;
 *  - every reference is released (LeakSanitizer, and ASan on a frame freed early).
 *
 * Build and run: see README.md "Fuzzing" (cmake -DTW_FUZZ=ON -DCMAKE_C_COMPILER=clang).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tickwire/history.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                                                  \
        do {                                                                                       \
                fprintf(stderr, "fuzz_history: " __VA_ARGS__);                                     \
                fputc('\n', stderr);                                                               \
                abort();                                                                           \
        } while (0)

#define CURSORS  4
#define MAX_READ 8
#define MAX_SEQS 4096 /* delivered seqs remembered per cursor */

struct reader {
        bool live;
        tw_cursor c;
        uint64_t since;
        uint64_t got[MAX_SEQS];
        size_t ngot;
};

struct input {
        const uint8_t *p;
        size_t n;
};

static uint8_t take(struct input *in)
{
        if (!in->n)
                return 0;
        in->n--;
        return *in->p++;
}

static void check_window(const tw_history *h)
{
        uint64_t bytes = 0;

        if (h->n > h->max || h->n > h->cap)
                FAIL("holds %u of max %u (cap %u)", h->n, h->max, h->cap);
        if (tw_history_oldest(h) != h->last - h->n + 1)
                FAIL("oldest %llu for last %llu n %u", (unsigned long long)tw_history_oldest(h),
                     (unsigned long long)h->last, h->n);
        for (uint64_t s = tw_history_oldest(h); s <= h->last; s++) {
                tw_frame *f = tw_history_get(h, s);

                if (!f || f->seq != s)
                        FAIL("seq %llu not held as itself", (unsigned long long)s);
                bytes += tw_history_cost(f);
        }
        if (bytes != h->bytes)
                FAIL("bytes %llu, frames add up to %llu", (unsigned long long)h->bytes,
                     (unsigned long long)bytes);
        if (tw_history_get(h, tw_history_oldest(h) - 1) || tw_history_get(h, h->last + 1))
                FAIL("a seq outside the window is held");
}

static void check_truth(const struct reader *r)
{
        if (!r->c.complete)
                return;
        if (r->ngot != r->c.next - r->since - 1)
                FAIL("complete cursor at %llu since %llu delivered %zu",
                     (unsigned long long)r->c.next, (unsigned long long)r->since, r->ngot);
        for (size_t i = 0; i < r->ngot; i++)
                if (r->got[i] != r->since + 1 + i)
                        FAIL("complete cursor delivered %llu at position %zu (since %llu)",
                             (unsigned long long)r->got[i], i, (unsigned long long)r->since);
}

static void do_read(const tw_history *h, struct reader *r, struct input *in)
{
        uint64_t budget = (uint64_t)take(in) * 16, before = r->c.next, bytes = 0;
        bool first_free = take(in) & 1, was_behind;
        size_t max = 1 + take(in) % MAX_READ, n;
        enum tw_cursor_state st;
        tw_frame *out[MAX_READ];

        was_behind = r->c.next <= h->last && r->c.next < tw_history_oldest(h);
        n = tw_cursor_read(h, &r->c, budget, first_free, out, max, &st);
        if (st == TW_CURSOR_OVERRUN) {
                if (!was_behind || n || r->c.next != tw_history_oldest(h) || r->c.complete)
                        FAIL("overrun: behind %d, read %zu, next %llu", was_behind, n,
                             (unsigned long long)r->c.next);
                return;
        }
        if (was_behind)
                FAIL("read from a dropped seq without an overrun");
        if (n > max || r->c.next != before + n)
                FAIL("read %zu (max %zu), cursor %llu -> %llu", n, max, (unsigned long long)before,
                     (unsigned long long)r->c.next);
        for (size_t i = 0; i < n; i++) {
                if (out[i]->seq != before + i)
                        FAIL("read seq %llu at %zu, wanted %llu", (unsigned long long)out[i]->seq,
                             i, (unsigned long long)(before + i));
                bytes += out[i]->len;
                if (r->ngot < MAX_SEQS) {
                        if (r->ngot && out[i]->seq <= r->got[r->ngot - 1])
                                FAIL("seq %llu delivered after %llu",
                                     (unsigned long long)out[i]->seq,
                                     (unsigned long long)r->got[r->ngot - 1]);
                        r->got[r->ngot++] = out[i]->seq;
                } else {
                        r->c.complete = false; /* beyond what we remember: stop judging */
                }
                tw_frame_unref(out[i]);
        }
        if (bytes > budget && !(first_free && n == 1))
                FAIL("%llu bytes read against a budget of %llu", (unsigned long long)bytes,
                     (unsigned long long)budget);
        if ((st == TW_CURSOR_CAUGHT_UP) != (r->c.next > h->last))
                FAIL("caught_up %d with next %llu, last %llu", st == TW_CURSOR_CAUGHT_UP,
                     (unsigned long long)r->c.next, (unsigned long long)h->last);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct input in = {data, size};
        static struct reader rd[CURSORS];
        tw_history h = {.max = 1 + take(&in) % 64};

        memset(rd, 0, sizeof(rd));
        while (in.n) {
                uint8_t op = take(&in);
                struct reader *r = &rd[(op >> 4) % CURSORS];

                switch (op & 3) {
                case 0: { /* publish */
                        tw_frame *f = tw_frame_alloc(take(&in));
                        uint64_t freed;

                        if (!f)
                                abort();
                        f->seq = h.last + 1;
                        if (tw_history_push(&h, f, &freed) < 0)
                                FAIL("push failed");
                        break;
                }
                case 1: /* the byte bound */
                        tw_history_trim(&h, (uint64_t)take(&in) * 64);
                        break;
                case 2: { /* subscribe with since */
                        uint8_t back = take(&in);

                        r->since = back > h.last ? 0 : h.last - back;
                        r->c = tw_cursor_start(&h, r->since);
                        r->ngot = 0;
                        r->live = true;
                        if (r->c.complete && r->c.next != r->since + 1)
                                FAIL("a complete cursor that does not start after since");
                        break;
                }
                case 3:
                        if (r->live)
                                do_read(&h, r, &in);
                        break;
                }
                check_window(&h);
                for (int k = 0; k < CURSORS; k++)
                        if (rd[k].live)
                                check_truth(&rd[k]);
        }
        tw_history_free(&h);
        return 0;
}
