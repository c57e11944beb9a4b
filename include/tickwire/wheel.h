/*
 * wheel — a hierarchical timing wheel (Varghese & Lauck, scheme 7), one per worker.
 *
 * Owns: the slot arrays and the overflow array (heap memory it allocates on demand and
 * releases in tw_wheel_free()), and the tw_timer nodes' fields while they are armed.
 * Must not touch: anything else in the owner's struct, locks, threads, clocks. The caller
 * drives it with its own notion of "now" in ticks.
 *
 * Each slot is an array of node pointers; a node records which slot and index hold it,
 * so cancel is a swap-remove. Levels, with the default tick of 10 ms:
 *
 *   level | slots | slot width     | a deadline T is filed here when  | reach (10 ms tick)
 *   ------+-------+----------------+----------------------------------+-------------------
 *     0   | 8,192 | 1 tick         | T - now < 8,192                  | 81.9 s
 *     1   |   256 | 4,096 ticks    | T/4,096 - now/4,096 <= 255       | >= 2.89 h
 *     2   |   256 | 524,288 ticks  | T/524,288 - now/524,288 <= 255   | >= 15.4 days
 *   overflow array   | beyond that   | re-filed as time reaches them
 *
 * A deadline goes on the lowest level that can hold it; all levels are rings indexed by
 * T's digit, so "reach" is a distance (the guaranteed one is 254 slot widths on levels 1
 * and 2). An upper slot spans half the ring below it, so it can move down (cascade) any
 * time in the slot width before it is due: every advance moves a proportional share of
 * the next slot down, and an advance never re-files a whole slot at once unless the
 * caller jumped over that stretch. Every timer ends on level 0 and fires in the tick it
 * asked for; deadlines up to 81.9 s never cascade.
 *
 * Invariants:
 *   - A timer armed for tick T fires during the first tw_wheel_advance() whose `now` is
 *     >= T: never earlier, and exactly on time when the loop advances every tick. Measured
 *     in wall time, with deadlines rounded up to whole ticks, that is "never early, at
 *     most one tick late".
 *   - add, cancel and re-arm are O(1) (add amortised: a slot array may grow); cancel of an
 *     unarmed timer is a no-op. Nothing is allocated once the slot arrays have grown to
 *     the load; they shrink lazily after a slot held far fewer timers than its capacity.
 *   - The expiry callback may add, cancel or re-arm any timer, including the one firing.
 *     A timer re-armed for a tick <= now from inside a callback fires in the same advance
 *     (so a callback that always does that never lets the advance return). During a
 *     callback w->now is the tick being processed, which is the timer's deadline, even
 *     in the middle of a long jump. The callback must not call tw_wheel_advance().
 *   - Memory: 16 bytes per node, plus 8 per armed timer in a slot array, plus the arrays'
 *     spare capacity (at most half their size after growth, a quarter after a shrink).
 *
 * Lazy re-arm for heartbeats: the owner keeps `last_seen` in its own struct and stores
 * to it on every inbound frame (a plain store, no wheel operation). The timer is armed
 * for last_seen + timeout; when it fires, the callback compares now - last_seen with the
 * timeout and, if the peer was heard from since, re-arms for last_seen + timeout instead
 * of expiring. A busy connection thus costs one wheel operation per timeout period, not
 * one per frame.
 */
#ifndef TICKWIRE_WHEEL_H
#define TICKWIRE_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TW_WHEEL_L0_BITS  13 /* level 0: 2^13 one-tick slots */
#define TW_WHEEL_UP_BITS  8  /* levels 1.. : 2^8 slots each */
#define TW_WHEEL_LEVELS   3
#define TW_WHEEL_L0_SLOTS (1u << TW_WHEEL_L0_BITS)
#define TW_WHEEL_UP_SLOTS (1u << TW_WHEEL_UP_BITS)
#define TW_WHEEL_SLOTS    (TW_WHEEL_L0_SLOTS + (TW_WHEEL_LEVELS - 1) * TW_WHEEL_UP_SLOTS)

/* Embedded in the owner's struct; recover the owner with tw_container_of(). 16 bytes. */
typedef struct tw_timer {
        uint64_t expires; /* absolute deadline, in ticks */
        uint32_t slot;    /* 1 + index of the slot array holding us; 0 when unarmed */
        uint32_t idx;     /* our position in that array */
} tw_timer;

typedef struct tw_wheel tw_wheel;
typedef void (*tw_timer_fn)(tw_wheel *w, tw_timer *t, void *ctx);

/* One slot: the armed timers filed there, in no particular order. */
typedef struct tw_slot {
        tw_timer **t;  /* heap array of cap entries, NULL before first use */
        uint32_t len;  /* entries in use, live or dead; 0 when none is live */
        uint32_t cap;  /* entries allocated */
        uint32_t dead; /* entries left by cancel or re-arm, not yet dropped */
} tw_slot;

struct tw_wheel {
        uint64_t now;          /* ticks processed so far */
        tw_timer_fn fire;      /* called once per expiry */
        void *ctx;             /* passed to fire */
        size_t armed;          /* number of armed timers */
        uint64_t overflow_min; /* <= every overflow deadline; UINT64_MAX when none */
        uint64_t drained;      /* tick of the last share moved down (see wheel.c) */
        uint64_t occupied[TW_WHEEL_SLOTS / 64];                /* bit s set: slots[s] non-empty */
        uint64_t occupied_words[TW_WHEEL_SLOTS / 64 / 64 + 1]; /* bit i: occupied[i] != 0 */
        tw_slot slots[TW_WHEEL_SLOTS + 1]; /* level 0, then 1, 2; last: the overflow array */
};

#define tw_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Starts an empty wheel at tick `now`; `fire` (not NULL) is called for every expiring
 * timer, after the timer has been disarmed. Allocates nothing. */
void tw_wheel_init(tw_wheel *w, uint64_t now, tw_timer_fn fire, void *ctx);

/* Releases the slot arrays; every timer is left as it was (the wheel must not be used
 * again before tw_wheel_init()). */
void tw_wheel_free(tw_wheel *w);

/* Prepares a node for use: unarmed. Safe to cancel or arm afterwards. A zeroed node is
 * also unarmed. */
static inline void tw_timer_init(tw_timer *t)
{
        t->expires = 0;
        t->slot = 0;
        t->idx = 0;
}

static inline bool tw_timer_armed(const tw_timer *t)
{
        return t->slot != 0;
}

/* Arms t for absolute tick `expires` (clamped to now: it then fires at the next
 * advance). Re-arms if it was already armed. O(1) amortised. Returns 0, or -ENOMEM when
 * a slot array could not grow; t is then left exactly as it was. */
int tw_wheel_add_slow(tw_wheel *w, tw_timer *t, uint64_t expires);

/* The common case inline (an unarmed timer, due within level 0's reach, room in the
 * slot): few instructions, so the CPU keeps many of these cache misses in flight. */
static inline int tw_wheel_add(tw_wheel *w, tw_timer *t, uint64_t expires)
{
        uint64_t id = expires & (TW_WHEEL_L0_SLOTS - 1);
        tw_slot *s = &w->slots[id];

        if (expires - w->now >= TW_WHEEL_L0_SLOTS || t->slot != 0 || s->len == 0 ||
            s->len == s->cap)
                return tw_wheel_add_slow(w, t, expires);
        t->expires = expires;
        t->slot = (uint32_t)id + 1;
        t->idx = s->len;
        s->t[s->len++] = t;
        w->armed++;
        return 0;
}

/* Not for callers: empties slot id once it holds dead entries only. */
void tw_wheel_reset_slot(tw_wheel *w, uint32_t id);

/* Disarms t; a no-op when it is not armed. O(1): the node is marked and its slot entry
 * left behind, dead, to be dropped when the slot is next walked. */
static inline void tw_wheel_cancel(tw_wheel *w, tw_timer *t)
{
        if (t->slot == 0)
                return;

        uint32_t id = t->slot - 1;
        tw_slot *s = &w->slots[id];

        t->slot = 0;
        w->armed--;
        if (++s->dead == s->len)
                tw_wheel_reset_slot(w, id);
}

/* Moves the wheel to tick `now`, firing every timer whose deadline is <= now, in
 * deadline order across ticks (any order within one tick). Huge jumps (a suspended
 * process) cost O(occupied slots + timers due), not O(ticks). A `now` behind w->now is
 * taken as w->now: time does not run backwards, but timers due at w->now still fire.
 * Returns the number of timers fired. Aborts if memory runs out while moving timers
 * down a level (it cannot leave them behind; add has already failed by then if the
 * process is out of memory). */
size_t tw_wheel_advance(tw_wheel *w, uint64_t now);

/* Ticks until the earliest deadline may be due (0 when one is due now), or UINT64_MAX
 * when nothing is armed. May be early for timers on upper levels or overflow (the loop
 * then wakes, cascades and asks again), and is early on purpose while a big upper slot
 * is due to move down, so a loop that sleeps by it moves that slot in batches rather
 * than all at once; never late. */
uint64_t tw_wheel_next_expiry(const tw_wheel *w);

/* Bytes of heap memory held by the wheel's slot arrays (capacity, not use). */
size_t tw_wheel_heap_bytes(const tw_wheel *w);

#endif
