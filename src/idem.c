/*
 * The recent-ids table: entries in a power-of-two ring in publish order (oldest at tail),
 * and an index of 2x as many slots holding ring positions + 1 (0 = empty), probed
 * linearly from the id's hash and kept tight by backward-shift deletion. Forgetting is
 * always from the tail, so the ring never has holes.
 */
#include "tickwire/idem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TW_IDEM_MIN 16

struct entry {
        uint64_t seq;
        uint64_t time_ms;
        uint8_t len;
        char id[TW_IDEM_ID_MAX];
};

struct tw_idem {
        struct entry *ring;
        uint32_t cap;     /* ring entries; the index has 2 * cap slots */
        uint32_t tail, n; /* oldest entry, entries held */
        uint32_t *index;  /* ring position + 1, or 0 */
};

static uint32_t hash_id(tw_span id)
{
        uint32_t x = 2166136261u;

        for (size_t i = 0; i < id.n; i++)
                x = (x ^ (uint8_t)id.p[i]) * 16777619u;
        return x;
}

static bool same(const struct entry *e, tw_span id)
{
        return e->len == id.n && memcmp(e->id, id.p, id.n) == 0;
}

/* The index slot holding id, or the empty slot where it would go. */
static uint32_t slot_of(const tw_idem *m, tw_span id)
{
        uint32_t mask = 2 * m->cap - 1, i = hash_id(id) & mask;

        while (m->index[i] && !same(&m->ring[m->index[i] - 1], id))
                i = (i + 1) & mask;
        return i;
}

bool tw_idem_find(const tw_idem *m, tw_span id, uint64_t now_ms, uint64_t oldest, uint64_t *seq)
{
        const struct entry *e;
        uint32_t i;

        if (!m || !m->n || id.n == 0 || id.n > TW_IDEM_ID_MAX)
                return false;
        i = slot_of(m, id);
        if (!m->index[i])
                return false;
        e = &m->ring[m->index[i] - 1];
        if (e->seq < oldest && now_ms - e->time_ms >= TW_IDEM_TTL_MS)
                return false; /* forgotten in all but memory: drops lazily */
        *seq = e->seq;
        return true;
}

/* Drops the oldest entry. */
static void drop_tail(tw_idem *m)
{
        struct entry *e = &m->ring[m->tail];
        uint32_t mask = 2 * m->cap - 1, i = slot_of(m, (tw_span){e->id, e->len}), j;

        /* Backward shift: pull up every later entry of the probe run that may sit at i. */
        for (j = (i + 1) & mask; m->index[j]; j = (j + 1) & mask) {
                const struct entry *x = &m->ring[m->index[j] - 1];
                uint32_t home = hash_id((tw_span){x->id, x->len}) & mask;

                if (((j - home) & mask) >= ((j - i) & mask)) {
                        m->index[i] = m->index[j];
                        i = j;
                }
        }
        m->index[i] = 0;
        m->tail = (m->tail + 1) & (m->cap - 1);
        m->n--;
}

static void index_put(tw_idem *m, uint32_t pos)
{
        const struct entry *e = &m->ring[pos];

        m->index[slot_of(m, (tw_span){e->id, e->len})] = pos + 1;
}

/* Moves the entries into arrays of cap slots (cap >= n, a power of two, or 0 when n is). */
static int resize(tw_idem *m, uint32_t cap)
{
        struct entry *ring = cap ? malloc(cap * sizeof(*ring)) : NULL;
        uint32_t *index = cap ? calloc(2 * cap, sizeof(*index)) : NULL;

        if (cap && (!ring || !index)) {
                free(ring);
                free(index);
                return -ENOMEM;
        }
        for (uint32_t k = 0; k < m->n; k++)
                ring[k] = m->ring[(m->tail + k) & (m->cap - 1)];
        free(m->ring);
        free(m->index);
        m->ring = ring;
        m->index = index;
        m->cap = cap;
        m->tail = 0;
        for (uint32_t k = 0; k < m->n; k++)
                index_put(m, k);
        return 0;
}

int tw_idem_add(tw_idem **pm, tw_span id, uint64_t seq, uint64_t now_ms, uint64_t oldest)
{
        tw_idem *m = *pm;
        struct entry *e;
        uint32_t pos;

        if (id.n == 0 || id.n > TW_IDEM_ID_MAX)
                return -EINVAL;
        if (!m && !(m = *pm = calloc(1, sizeof(*m))))
                return -ENOMEM;
        while (m->n && m->ring[m->tail].seq < oldest &&
               now_ms - m->ring[m->tail].time_ms >= TW_IDEM_TTL_MS)
                drop_tail(m);
        if (m->n == m->cap &&
            (m->cap == TW_IDEM_MAX || resize(m, m->cap ? m->cap * 2 : TW_IDEM_MIN) < 0)) {
                if (m->cap == 0)
                        return -ENOMEM;
                drop_tail(m); /* full: the oldest id is forgotten early */
        }
        pos = (m->tail + m->n) & (m->cap - 1);
        e = &m->ring[pos];
        e->seq = seq;
        e->time_ms = now_ms;
        e->len = (uint8_t)id.n;
        memcpy(e->id, id.p, id.n);
        m->n++;
        index_put(m, pos);
        return 0;
}

uint64_t tw_idem_trim(tw_idem *m, uint64_t oldest)
{
        uint64_t before = tw_idem_bytes(m);
        uint32_t cap;

        if (!m)
                return 0;
        while (m->n && m->ring[m->tail].seq < oldest)
                drop_tail(m);
        /* Give memory back: the smallest power of two holding what is left (none when
         * empty), if that is at most a quarter of what is held. */
        for (cap = m->n ? TW_IDEM_MIN : 0; cap && cap < m->n; cap *= 2)
                ;
        if (cap * 4 <= m->cap)
                resize(m, cap); /* out of memory: keep the larger arrays */
        return before - tw_idem_bytes(m);
}

uint64_t tw_idem_bytes(const tw_idem *m)
{
        /* What it holds, not what it may grow to: the arrays only double when full. */
        return m ? sizeof(*m) + (uint64_t)m->cap * (sizeof(struct entry) + 2 * sizeof(uint32_t))
                 : 0;
}

uint32_t tw_idem_count(const tw_idem *m)
{
        return m ? m->n : 0;
}

void tw_idem_free(tw_idem *m)
{
        if (!m)
                return;
        free(m->ring);
        free(m->index);
        free(m);
}
