/*
 * table — slots and generations (see table.h). The free slots are a stack so take and
 * put are O(1); it is filled highest first so that a fresh table hands out 0, 1, 2, ...,
 * which callers with one slot per preassigned object (the loadgen's clients) rely on.
 *
 * A free slot's generation is moved on when it is put back, so it never equals a value
 * handed out in its taken life; take moves it on again. Generations skip 0 when they
 * wrap: 0 is the "no slot" tag.
 */
#include "tickwire/table.h"

#include <errno.h>
#include <stdlib.h>

#include "tickwire/ring.h" /* tw_ud */

static uint32_t next_gen(uint32_t g)
{
        return g + 1 ? g + 1 : 1;
}

int tw_table_init(tw_table *t, uint32_t cap)
{
        t->gen = NULL;
        t->free = NULL;
        t->nfree = t->cap = 0;
        if (cap == 0 || cap > TW_TABLE_MAX_SLOTS)
                return -EINVAL;
        t->gen = calloc(cap, sizeof(*t->gen));
        t->free = malloc(cap * sizeof(*t->free));
        if (!t->gen || !t->free) {
                tw_table_free(t);
                return -ENOMEM;
        }
        for (uint32_t i = 0; i < cap; i++) {
                t->gen[i] = 1;
                t->free[i] = cap - 1 - i;
        }
        t->nfree = t->cap = cap;
        return 0;
}

void tw_table_free(tw_table *t)
{
        free(t->gen);
        free(t->free);
        t->gen = t->free = NULL;
        t->nfree = t->cap = 0;
}

int64_t tw_table_take(tw_table *t)
{
        if (t->nfree == 0)
                return -ENOSPC;
        uint32_t slot = t->free[--t->nfree];
        t->gen[slot] = next_gen(t->gen[slot]);
        return slot;
}

void tw_table_put(tw_table *t, uint32_t slot)
{
        t->gen[slot] = next_gen(t->gen[slot]);
        t->free[t->nfree++] = slot;
}

uint32_t tw_table_renew(tw_table *t, uint32_t slot)
{
        t->gen[slot] = next_gen(t->gen[slot]);
        return t->gen[slot];
}

uint64_t tw_table_ud(const tw_table *t, uint8_t kind, uint32_t slot)
{
        return tw_ud(kind, slot, t->gen[slot]);
}

int64_t tw_table_resolve(const tw_table *t, uint64_t ud)
{
        uint32_t slot = tw_ud_slot(ud);

        if (slot >= t->cap || t->gen[slot] != tw_ud_gen(ud))
                return -ESTALE;
        return slot;
}
