/*
 * A topic's history: a ring indexed by seq modulo its capacity, grown by doubling from a
 * few slots up to --history, so a quiet topic costs little and a busy one never moves its
 * frames more than log2(--history) times. Replay cursors read it by seq.
 */
#include "tickwire/history.h"

#include <errno.h>
#include <stdlib.h>

#define TW_HISTORY_MIN 16 /* first allocation, in slots */

static int grow(tw_history *h)
{
        uint32_t cap = h->cap ? h->cap * 2 : TW_HISTORY_MIN;
        tw_frame **v;

        if (cap > h->max)
                cap = h->max;
        v = calloc(cap, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (uint64_t s = h->last - h->n + 1; h->n && s <= h->last; s++)
                v[s % cap] = h->v[s % h->cap];
        free(h->v);
        h->v = v;
        h->cap = cap;
        return 0;
}

/* Drops the oldest message held; returns its cost. */
static uint64_t drop_oldest(tw_history *h)
{
        tw_frame *f = h->v[tw_history_oldest(h) % h->cap];
        uint64_t cost = tw_history_cost(f);

        h->v[tw_history_oldest(h) % h->cap] = NULL;
        h->n--;
        h->bytes -= cost;
        tw_frame_unref(f);
        return cost;
}

int tw_history_push(tw_history *h, tw_frame *f, uint64_t *freed)
{
        uint64_t seq = h->last + 1;

        *freed = 0;
        if (h->n == h->cap && h->cap < h->max && grow(h) < 0)
                return -ENOMEM;
        if (h->cap == 0)
                return -ENOMEM; /* max == 0: nothing can be held */
        if (h->n == h->cap)
                *freed = drop_oldest(h); /* the oldest shares the new one's slot */
        h->v[seq % h->cap] = f;
        h->n++;
        h->bytes += tw_history_cost(f);
        h->last = seq;
        return 0;
}

tw_frame *tw_history_get(const tw_history *h, uint64_t seq)
{
        if (seq == 0 || seq > h->last || seq < tw_history_oldest(h))
                return NULL;
        return h->v[seq % h->cap];
}

uint64_t tw_history_oldest(const tw_history *h)
{
        return h->last - h->n + 1;
}

uint64_t tw_history_trim(tw_history *h, uint64_t max_bytes)
{
        uint64_t freed = 0;

        while (h->n && h->bytes > max_bytes)
                freed += drop_oldest(h);
        return freed;
}

void tw_history_free(tw_history *h)
{
        while (h->n)
                drop_oldest(h);
        free(h->v);
        h->v = NULL;
        h->cap = 0;
}

tw_cursor tw_cursor_start(const tw_history *h, uint64_t since)
{
        uint64_t oldest = tw_history_oldest(h);
        tw_cursor c = {since + 1, true};

        if (since < h->last && c.next < oldest) {
                c.next = oldest;
                c.complete = false;
        }
        return c;
}

size_t tw_cursor_read(const tw_history *h, tw_cursor *c, uint64_t budget, bool first_free,
                      tw_frame **out, size_t max, enum tw_cursor_state *st)
{
        uint64_t bytes = 0;
        size_t n = 0;

        if (c->next <= h->last && c->next < tw_history_oldest(h)) {
                c->next = tw_history_oldest(h);
                c->complete = false;
                *st = TW_CURSOR_OVERRUN;
                return 0;
        }
        while (n < max && c->next <= h->last) {
                tw_frame *f = h->v[c->next % h->cap];

                if (bytes + f->len > budget && !(first_free && n == 0))
                        break;
                bytes += f->len;
                out[n++] = tw_frame_ref(f);
                c->next++;
        }
        *st = c->next > h->last ? TW_CURSOR_CAUGHT_UP : TW_CURSOR_MORE;
        return n;
}
