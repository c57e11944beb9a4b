/*
 * wheel — a hierarchical timing wheel (Varghese & Lauck, scheme 7), one per worker.
 *
 * Owns: the slots and the overflow list, and the intrusive tw_timer nodes while they are
 * armed (their link fields). Must not touch: anything else in the owner's struct, locks,
 * threads, clocks. The caller drives it with its own notion of "now" in ticks.
 *
 * Levels (64 slots each, TW_WHEEL_LEVELS = 4), with the default tick of 10 ms:
 *
 *   level | slot width       | covers up to          | at 10 ms tick
 *   ------+------------------+-----------------------+----------------
 *     0   | 1 tick           | 64 ticks              | 640 ms
 *     1   | 64 ticks         | 4,096 ticks           | 40.96 s
 *     2   | 4,096 ticks      | 262,144 ticks         | 43.7 min
 *     3   | 262,144 ticks    | 16,777,216 ticks      | 46.6 h
 *   overflow list          | beyond that           | re-filed as time reaches them
 *
 * Timers on upper levels cascade down when their slot comes due (scheme 7), so every
 * timer ends on level 0 and fires in the tick it asked for. The ranges are aligned blocks,
 * not distances: a deadline goes on the level of the highest 6-bit digit in which it
 * differs from now (so one tick ahead may be level 1, when it crosses a 64-tick boundary);
 * wheel.c explains why that keeps every non-empty slot ahead of the current position.
 * Cost to know about: a slot is cascaded whole when it comes due, so the advance that
 * reaches an upper-level slot re-files every timer in it in one go.
 *
 * Invariants:
 *   - A timer armed for tick T fires during the first tw_wheel_advance() whose `now` is
 *     >= T: never earlier, and exactly on time when the loop advances every tick. Measured
 *     in wall time, with deadlines rounded up to whole ticks, that is "never early, at
 *     most one tick late".
 *   - add, cancel and re-arm are O(1); cancel of an unarmed timer is a no-op.
 *   - The expiry callback may add, cancel or re-arm any timer, including the one firing.
 *     A timer re-armed for a tick <= now from inside a callback fires in the same advance
 *     (so a callback that always does that never lets the advance return). During a
 *     callback w->now is the tick being processed, which is the timer's deadline, even
 *     in the middle of a long jump. The callback must not call tw_wheel_advance().
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

#define TW_WHEEL_BITS   6
#define TW_WHEEL_SLOTS  (1u << TW_WHEEL_BITS)
#define TW_WHEEL_LEVELS 4

/* Embedded in the owner's struct; recover the owner with tw_container_of(). 24 bytes. */
typedef struct tw_timer {
        struct tw_timer *next;   /* next node in the same slot, NULL at the end */
        struct tw_timer **pprev; /* the pointer that points at us; NULL when unarmed */
        uint64_t expires;        /* absolute deadline, in ticks */
} tw_timer;

typedef struct tw_wheel tw_wheel;
typedef void (*tw_timer_fn)(tw_wheel *w, tw_timer *t, void *ctx);

struct tw_wheel {
        uint64_t now;                                     /* ticks processed so far */
        tw_timer_fn fire;                                 /* called once per expiry */
        void *ctx;                                        /* passed to fire */
        size_t armed;                                     /* number of armed timers */
        uint64_t occupied[TW_WHEEL_LEVELS];               /* bit s set: slot s non-empty */
        tw_timer *slots[TW_WHEEL_LEVELS][TW_WHEEL_SLOTS]; /* list heads */
        tw_timer *overflow;                               /* deadlines beyond level 3 */
};

#define tw_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Starts an empty wheel at tick `now`; `fire` (not NULL) is called for every expiring
 * timer, after the timer has been disarmed. */
void tw_wheel_init(tw_wheel *w, uint64_t now, tw_timer_fn fire, void *ctx);

/* Prepares a node for use: unarmed. Safe to cancel or arm afterwards. */
static inline void tw_timer_init(tw_timer *t)
{
        t->next = NULL;
        t->pprev = NULL;
        t->expires = 0;
}

static inline bool tw_timer_armed(const tw_timer *t)
{
        return t->pprev != NULL;
}

/* Arms t for absolute tick `expires` (clamped to now: it then fires at the next
 * advance). Re-arms if it was already armed. O(1). */
void tw_wheel_add(tw_wheel *w, tw_timer *t, uint64_t expires);

/* Disarms t; a no-op when it is not armed. O(1). */
void tw_wheel_cancel(tw_wheel *w, tw_timer *t);

/* Moves the wheel to tick `now`, firing every timer whose deadline is <= now, in
 * deadline order across slots. Huge jumps (a suspended process) cost O(levels * slots +
 * timers due), not O(ticks). A `now` behind w->now is taken as w->now: time does not
 * run backwards, but timers due at w->now still fire. Returns the number of timers fired.
 * (With timers on the overflow list, a jump across several 2^24-tick blocks also scans
 * that list once per block holding one of its deadlines.) */
size_t tw_wheel_advance(tw_wheel *w, uint64_t now);

/* Ticks until the earliest deadline may be due (0 when one is due now), or UINT64_MAX
 * when nothing is armed. May be early for timers on upper levels (the loop then wakes,
 * cascades and asks again) but is never late. */
uint64_t tw_wheel_next_expiry(const tw_wheel *w);

#endif
