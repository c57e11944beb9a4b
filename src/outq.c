/*
 * A connection's send queue: a power-of-two ring of frame references with a byte count,
 * the offset already sent of the head, and how many entries the send in flight covers.
 * ~24 bytes plus 8 per slot, allocated when the first frame is queued and freed when the
 * last one is sent, so an idle connection owns none.
 */
#include "tickwire/outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct tw_outq {
        uint64_t bytes; /* queued, not yet sent */
        uint32_t head, count, cap;
        uint32_t off;     /* bytes of q[head] already sent */
        uint32_t sending; /* entries from head covered by the send in flight: pinned */
        tw_frame *q[];    /* ring of cap entries */
};

static tw_outq *grow(tw_outq *o)
{
        uint32_t cap = o ? o->cap * 2 : 4;
        tw_outq *n = malloc(sizeof(*n) + cap * sizeof(n->q[0]));

        if (!n)
                return NULL;
        if (o) {
                *n = *o;
                for (uint32_t i = 0; i < o->count; i++)
                        n->q[i] = o->q[(o->head + i) & (o->cap - 1)];
                free(o);
        } else {
                memset(n, 0, sizeof(*n));
        }
        n->head = 0;
        n->cap = cap;
        return n;
}

int tw_outq_push(tw_outq **q, tw_frame *f)
{
        tw_outq *o = *q;

        if (!o || o->count == o->cap) {
                o = grow(o);
                if (!o)
                        return -ENOMEM;
                *q = o;
        }
        o->q[(o->head + o->count) & (o->cap - 1)] = f;
        o->count++;
        o->bytes += f->len;
        return 0;
}

uint64_t tw_outq_bytes(const tw_outq *q)
{
        return q ? q->bytes : 0;
}

uint32_t tw_outq_frames(const tw_outq *q)
{
        return q ? q->count : 0;
}

bool tw_outq_sending(const tw_outq *q)
{
        return q && q->sending;
}

size_t tw_outq_prepare(tw_outq *o, struct iovec *iov, size_t max)
{
        size_t n;

        if (!o || o->count == 0 || o->sending)
                return 0;
        n = o->count < max ? o->count : max;
        for (size_t i = 0; i < n; i++) {
                tw_frame *f = o->q[(o->head + i) & (o->cap - 1)];
                size_t skip = i == 0 ? o->off : 0;

                iov[i].iov_base = f->data + skip;
                iov[i].iov_len = f->len - skip;
        }
        o->sending = (uint32_t)n;
        return n;
}

uint64_t tw_outq_complete(tw_outq **q, size_t sent, tw_frame_batch *rel)
{
        tw_outq *o = *q;
        uint64_t left;

        if (!o)
                return 0;
        o->sending = 0;
        if (sent > o->bytes)
                sent = (size_t)o->bytes; /* cannot happen: the kernel sends what we gave */
        o->bytes -= sent;
        while (sent > 0 && o->count > 0) {
                tw_frame *f = o->q[o->head];
                size_t avail = f->len - o->off;

                if (sent < avail) {
                        o->off += (uint32_t)sent;
                        break;
                }
                sent -= avail;
                o->off = 0;
                o->head = (o->head + 1) & (o->cap - 1);
                o->count--;
                if (rel)
                        tw_frame_batch_unref(rel, f);
                else
                        tw_frame_unref(f);
        }
        left = o->bytes;
        if (o->count == 0) {
                free(o);
                *q = NULL;
        }
        return left;
}

/* Entries nothing may touch: those the send in flight covers, or a partly sent head. */
static uint32_t pinned(const tw_outq *o, uint64_t *bytes)
{
        uint32_t n = o->sending ? o->sending : (o->off ? 1 : 0);

        *bytes = 0;
        for (uint32_t i = 0; i < n; i++)
                *bytes += o->q[(o->head + i) & (o->cap - 1)]->len;
        *bytes -= n ? o->off : 0;
        return n;
}

uint64_t tw_outq_unpinned_bytes(const tw_outq *o)
{
        uint64_t b;

        if (!o)
                return 0;
        pinned(o, &b);
        return o->bytes - b;
}

int64_t tw_outq_conflate(tw_outq *o, bool all)
{
        uint64_t b;

        if (!o)
                return 0;
        return tw_conflate(o->q, o->cap, &o->head, &o->count, pinned(o, &b), all, &o->bytes);
}

void tw_outq_free(tw_outq **q)
{
        tw_outq *o = *q;

        if (!o)
                return;
        for (uint32_t i = 0; i < o->count; i++)
                tw_frame_unref(o->q[(o->head + i) & (o->cap - 1)]);
        free(o);
        *q = NULL;
}

/* ---- the conflation rule ---- */

/* Inserts id (non-zero) into an open-addressing set; false when it was there. */
static bool seen_insert(uint64_t *set, uint32_t mask, uint64_t id)
{
        uint32_t i = (uint32_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & mask;

        while (set[i]) {
                if (set[i] == id)
                        return false;
                i = (i + 1) & mask;
        }
        set[i] = id;
        return true;
}

int64_t tw_conflate(tw_frame **q, uint32_t cap, uint32_t *head, uint32_t *count, uint32_t keep,
                    bool all, uint64_t *bytes)
{
        uint32_t n = *count, h = *head, j = n, mask = 0;
        uint64_t *seen = NULL;
        int64_t dropped = 0;

        if (keep >= n)
                return 0;
        if (!all) {
                uint32_t sz = 16;

                while (sz < 2 * (n - keep))
                        sz <<= 1;
                seen = calloc(sz, sizeof(*seen));
                if (!seen)
                        return -ENOMEM;
                mask = sz - 1;
        }
        /* Newest first, so the first of each topic met is the one kept; survivors are
         * packed towards the tail in their original order. */
        for (uint32_t i = n; i-- > keep;) {
                tw_frame *f = q[(h + i) % cap];
                bool drop = all || (f->topic_id && !seen_insert(seen, mask, f->topic_id));

                if (drop) {
                        dropped += f->topic_id != 0;
                        *bytes -= f->len;
                        tw_frame_unref(f);
                } else {
                        q[(h + --j) % cap] = f;
                }
        }
        for (uint32_t i = keep; i-- > 0;)
                q[(h + --j) % cap] = q[(h + i) % cap];
        *head = (h + j) % cap;
        *count = n - j;
        free(seen);
        return dropped;
}
