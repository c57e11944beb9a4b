/*
 * table — a fixed table of slots with generations, for objects whose io_uring
 * completions come back after the object may have gone: the load generator's connections.
 * The server's loop (loop.c) uses the same (kind, slot, generation) tags and the same
 * rule, but keeps each generation inside its 72-byte connection record, beside the state
 * it guards (one cache line per completion instead of two), and touches slots only up
 * to a high-water mark, so an untouched part of a 20,000-slot table costs no memory.
 *
 * A request's user_data is (kind, slot, generation), packed by tw_ud() (ring.h: kind in
 * the top byte, 24 bits of slot, 32 of generation). A slot's generation moves on whenever
 * the slot is taken, renewed (the same object starts over, e.g. a reconnect) or put back,
 * so a completion still in flight for the old life resolves to nothing and is ignored:
 * one comparison, no lookup, no per-request bookkeeping. Generation 0 is never live, so
 * tw_ud(kind, 0, 0) is a safe tag for completions that belong to no slot.
 *
 * Owns: which slots are free and each slot's generation. Must not touch: what lives in a
 * slot (the caller's array, indexed by slot), the ring, requests in flight (the caller
 * counts them and puts a slot back only when its last completion has arrived).
 */
#ifndef TICKWIRE_TABLE_H
#define TICKWIRE_TABLE_H

#include <stdint.h>

#define TW_TABLE_MAX_SLOTS (1u << 24) /* what tw_ud() has room for */

typedef struct tw_table {
        uint32_t *gen;  /* [cap]: the live generation of each slot, never 0 */
        uint32_t *free; /* [cap]: a stack of free slots; fresh, 0 is on top */
        uint32_t nfree; /* slots on the stack */
        uint32_t cap;   /* slots in the table */
} tw_table;

/* All cap slots free (1 <= cap <= TW_TABLE_MAX_SLOTS). Returns 0, -EINVAL or -ENOMEM. */
int tw_table_init(tw_table *t, uint32_t cap);
void tw_table_free(tw_table *t);

/* A free slot with a new generation: a fresh table's lowest first, later the last one put
 * back. -ENOSPC when none is left. */
int64_t tw_table_take(tw_table *t);

/* Gives a taken slot back. Its generation moves on at once: completions still tagged with
 * the old one no longer resolve. */
void tw_table_put(tw_table *t, uint32_t slot);

/* Keeps the slot and moves its generation on (the same object starting over, e.g. a
 * client reconnecting from its slot); returns the new generation. */
uint32_t tw_table_renew(tw_table *t, uint32_t slot);

/* The user_data for a request of `kind` on behalf of the slot's current life. */
uint64_t tw_table_ud(const tw_table *t, uint8_t kind, uint32_t slot);

/* The slot a completion belongs to, or -ESTALE when the slot is out of range or its
 * generation has moved on (put back, taken again, renewed) since the request was made. */
int64_t tw_table_resolve(const tw_table *t, uint64_t ud);

#endif
