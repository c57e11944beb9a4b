/*
 * wheel — the per-worker hierarchical timing wheel that holds every connection's one
 * deadline (heartbeat, handshake or close timeout). It exists so that add, cancel and
 * re-arm are O(1) whatever the number of connections, for a constant 24 bytes each (the
 * node embedded in the connection), and so that the event loop can sleep until the next
 * deadline and jump any distance when it wakes. Varghese & Lauck scheme 7: timers far
 * away sit in coarse slots and cascade down to finer ones as time approaches, so each one
 * fires in the exact tick it asked for.
 *
 *   level | slot width    | slot index         | deadlines filed here (a = tick now)
 *   ------+---------------+--------------------+------------------------------------------
 *     0   | 1 tick        | bits  0..5 of T    | T in a's 64-tick block         (<= 640 ms)
 *     1   | 64 ticks      | bits  6..11 of T   | T in a's 4,096-tick block      (<= 41 s)
 *     2   | 4,096 ticks   | bits 12..17 of T   | T in a's 262,144-tick block    (<= 43.7 min)
 *     3   | 262,144 ticks | bits 18..23 of T   | T in a's 16,777,216-tick block (<= 46.6 h)
 *   overflow list         | -                  | T in a later 2^24-tick block
 *
 * A timer for tick T is filed on the level of the highest 6-bit digit in which T differs
 * from now (T ^ now), in the slot named by T's digit on that level. T > now, so that
 * digit of T is strictly greater than now's: every non-empty slot on a level lies ahead
 * of the level's current position, inside the block now is in. Three things follow:
 *
 *   - When now reaches the first tick of a slot on level L >= 1, every timer in it is
 *     re-filed against the new now and lands on a lower level (scheme 7's cascade); a
 *     timer for T == now lands on level 0 in slot (now & 63), the "due" slot, which the
 *     advance loop drains. Level 0 slots hold exactly one tick each, so nothing is early
 *     and, advanced every tick, nothing is late.
 *   - Every slot on level L starts before any non-empty slot on level L + 1 (it lies in
 *     the current level-(L+1) slot), so the next tick at which anything can happen is
 *     the start of the first occupied slot on the lowest non-empty level: one ctz on the
 *     `occupied` bitmap. advance() jumps straight there, which is why a jump of 10^9
 *     ticks costs O(cascades + due timers), not O(ticks).
 *   - The overflow list only needs looking at when now enters a new 2^24-tick block
 *     (46.6 h at 10 ms). A jump across many blocks scans it once per block that holds
 *     one of its deadlines, never once per block crossed.
 *
 * Invariant: a timer armed for tick T fires in the first tw_wheel_advance() whose `now`
 * is >= T, in deadline order, and during its callback w->now == T (the tick being
 * processed, even mid-jump). Nothing here allocates or locks: one wheel per worker.
 *
 * The price of exactness: a 30-90 s heartbeat is re-filed twice (level 2 to 1, level 1
 * to 0) before it fires, each time by walking a slot's list, and a slot is moved whole
 * in the advance that reaches it. While a worker's timers fit in the caches that is a
 * few ns per timer; far beyond (a million per worker) each walk waits on memory for every
 * node, and the advance that cascades a level-2 slot takes as long as that walk.
 * bench/bench_wheel.c measures both against a heap.
 */
#include <assert.h>
#include <string.h>

#include "tickwire/wheel.h"

#define SLOT_MASK  ((uint64_t)TW_WHEEL_SLOTS - 1)
#define SPAN_BITS  (TW_WHEEL_LEVELS * TW_WHEEL_BITS) /* 24: ticks covered by the levels */
#define BLOCK_MASK ((UINT64_C(1) << SPAN_BITS) - 1)  /* tick within one overflow block */

static inline unsigned level_shift(unsigned level)
{
        return level * TW_WHEEL_BITS;
}

static inline void link_head(tw_timer **head, tw_timer *t)
{
        t->next = *head;
        if (t->next != NULL)
                t->next->pprev = &t->next;
        t->pprev = head;
        *head = t;
}

/* Puts an unlinked timer with t->expires >= w->now where it belongs relative to w->now.
 * Inlined by force: it is the whole of add and the inner loop of every cascade. */
static inline __attribute__((always_inline)) void file_timer(tw_wheel *w, tw_timer *t)
{
        uint64_t diff = t->expires ^ w->now;

        if (diff >> SPAN_BITS) {
                link_head(&w->overflow, t);
                return;
        }
        /* The highest differing digit picks the level; diff == 0 means due now, level 0. */
        unsigned level = diff ? (unsigned)(63 - __builtin_clzll(diff)) / TW_WHEEL_BITS : 0;
        unsigned slot = (unsigned)((t->expires >> level_shift(level)) & SLOT_MASK);

        link_head(&w->slots[level][slot], t);
        w->occupied[level] |= UINT64_C(1) << slot;
}

/* Takes t off whatever list holds it. Only the slot heads live inside w->slots, so a
 * pprev pointing in there with no successor means the slot just became empty; that
 * keeps the bitmaps exact without storing the level and slot in the 24-byte node. */
static void unlink_timer(tw_wheel *w, tw_timer *t)
{
        tw_timer **pprev = t->pprev;

        *pprev = t->next;
        if (t->next != NULL) {
                t->next->pprev = pprev;
        } else {
                uintptr_t off = (uintptr_t)pprev - (uintptr_t)&w->slots[0][0];

                if (off < sizeof(w->slots)) {
                        size_t idx = off / sizeof(tw_timer *);

                        w->occupied[idx / TW_WHEEL_SLOTS] &=
                            ~(UINT64_C(1) << (idx % TW_WHEEL_SLOTS));
                }
        }
        t->next = NULL;
        t->pprev = NULL;
}

void tw_wheel_init(tw_wheel *w, uint64_t now, tw_timer_fn fire, void *ctx)
{
        memset(w, 0, sizeof(*w));
        w->now = now;
        w->fire = fire;
        w->ctx = ctx;
}

void tw_wheel_add(tw_wheel *w, tw_timer *t, uint64_t expires)
{
        if (t->pprev != NULL)
                unlink_timer(w, t);
        else
                w->armed++;
        /* A past deadline goes in the due slot; the next advance, even to the same tick,
         * drains it (and an advance in progress drains it before returning). */
        t->expires = expires < w->now ? w->now : expires;
        file_timer(w, t);
}

void tw_wheel_cancel(tw_wheel *w, tw_timer *t)
{
        if (t->pprev == NULL)
                return;
        unlink_timer(w, t);
        w->armed--;
}

/* The first tick after w->now at which a slot on some level begins and is non-empty,
 * or UINT64_MAX. Lower levels always win (see the top of the file), so the first
 * non-empty bitmap decides. */
static uint64_t next_level_event(const tw_wheel *w)
{
        for (unsigned level = 0; level < TW_WHEEL_LEVELS; level++) {
                uint64_t occ = w->occupied[level];

                if (occ == 0)
                        continue;
                unsigned shift = level_shift(level);
                uint64_t block = w->now & ~((UINT64_C(1) << (shift + TW_WHEEL_BITS)) - 1);
                uint64_t at = block | ((uint64_t)__builtin_ctzll(occ) << shift);

                assert(at > w->now || (level == 0 && at == w->now));
                return at;
        }
        return UINT64_MAX;
}

/* Start of the next 2^24-tick block, or UINT64_MAX when now is in the last one. */
static uint64_t next_block(uint64_t now)
{
        uint64_t b = (now | BLOCK_MASK) + 1;

        return b == 0 ? UINT64_MAX : b;
}

/* Start of the earliest block holding an overflow deadline. Scans the list: only called
 * when the levels are empty and the advance reaches the next block at least. */
static uint64_t overflow_event(const tw_wheel *w)
{
        uint64_t min = UINT64_MAX;

        for (const tw_timer *t = w->overflow; t != NULL; t = t->next)
                if (t->expires < min)
                        min = t->expires;
        return min & ~BLOCK_MASK;
}

/* now has just entered a new block: bring its deadlines into the levels. */
static void refile_overflow(tw_wheel *w)
{
        tw_timer **pp = &w->overflow;
        tw_timer *t;

        while ((t = *pp) != NULL) {
                if ((t->expires ^ w->now) >> SPAN_BITS) {
                        pp = &t->next;
                        continue;
                }
                *pp = t->next;
                if (t->next != NULL)
                        t->next->pprev = pp;
                file_timer(w, t);
        }
}

/* now has just reached the first tick of the current slot on every level whose lower
 * digits are all zero: re-file those slots' timers one level (or more) down. No
 * callback runs here, so walking the detached chain is safe. */
static void cascade(tw_wheel *w)
{
        if ((w->now & BLOCK_MASK) == 0 && w->overflow != NULL)
                refile_overflow(w);
        for (unsigned level = TW_WHEEL_LEVELS - 1; level >= 1; level--) {
                unsigned shift = level_shift(level);

                if (w->now & ((UINT64_C(1) << shift) - 1))
                        continue;
                unsigned slot = (unsigned)((w->now >> shift) & SLOT_MASK);
                tw_timer *t = w->slots[level][slot];

                w->slots[level][slot] = NULL;
                w->occupied[level] &= ~(UINT64_C(1) << slot);
                while (t != NULL) {
                        tw_timer *next = t->next;

                        file_timer(w, t);
                        t = next;
                }
        }
}

/* Fires everything in the due slot. Each timer is taken off the live list before its
 * callback runs, and the head is re-read every time, so a callback may cancel or re-arm
 * any timer (including the one that would fire next) or add one for <= now, which joins
 * this slot and fires in this same loop. */
static size_t fire_due(tw_wheel *w)
{
        unsigned slot = (unsigned)(w->now & SLOT_MASK);
        tw_timer **head = &w->slots[0][slot];
        size_t fired = 0;
        tw_timer *t;

        while ((t = *head) != NULL) {
                /* unlink_timer() for a node known to be at the head of a level-0 slot */
                *head = t->next;
                if (t->next != NULL)
                        t->next->pprev = head;
                else
                        w->occupied[0] &= ~(UINT64_C(1) << slot);
                t->next = NULL;
                t->pprev = NULL;
                w->armed--;
                w->fire(w, t, w->ctx);
                fired++;
        }
        return fired;
}

size_t tw_wheel_advance(tw_wheel *w, uint64_t now)
{
        size_t fired = 0;

        if (now < w->now) /* time does not run backwards; still drain what is due */
                now = w->now;
        for (;;) {
                fired += fire_due(w);
                if (w->now == now)
                        break;

                uint64_t next = next_level_event(w);

                if (next == UINT64_MAX && w->overflow != NULL) {
                        next = next_block(w->now);
                        /* Crossing into another block: skip straight to the first block
                         * that holds a deadline rather than visiting every one. */
                        if (next <= now)
                                next = overflow_event(w);
                }
                if (next > now) {
                        w->now = now;
                        break;
                }
                w->now = next;
                cascade(w);
        }
        return fired;
}

uint64_t tw_wheel_next_expiry(const tw_wheel *w)
{
        if (w->armed == 0)
                return UINT64_MAX;
        if (w->slots[0][w->now & SLOT_MASK] != NULL)
                return 0;

        uint64_t at = next_level_event(w);

        /* Only overflow timers left: they are all in later blocks, so the next block start
         * is early but never late, and needs no scan of the list. */
        if (at == UINT64_MAX)
                at = next_block(w->now);
        return at == UINT64_MAX ? UINT64_MAX : at - w->now;
}
