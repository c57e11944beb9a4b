/*
 * wheel — the per-worker hierarchical timing wheel that holds every connection's one
 * deadline (heartbeat, handshake or close timeout). It exists so that add, cancel and
 * re-arm are O(1) whatever the number of connections, for 16 bytes in the connection
 * and 8 in a slot array, and so that the event loop can sleep until the next deadline
 * and jump any distance when it wakes. Varghese & Lauck scheme 7: timers far away sit in
 * coarse slots and move down to finer ones as time approaches, so each one fires in the
 * exact tick it asked for.
 *
 *   level | slot width    | slot index        | deadlines filed here (c = now >> shift)
 *   ------+---------------+-------------------+------------------------------------------
 *     0   | 1 tick        | bits  0..12 of T  | T - now < 8,192                 (81.9 s)
 *     1   | 4,096 ticks   | bits 12..19 of T  | T >> 12 in c+2 .. c+255        (>= 2.89 h)
 *     2   | 524,288 ticks | bits 19..26 of T  | T >> 19 in c+2 .. c+255     (>= 15.4 days)
 *   overflow array        | -                 | the rest, re-filed as now approaches
 *
 * A timer goes on the lowest level whose ring can hold it. Each upper slot spans half the
 * ring below it (4,096 = 8,192 / 2, 524,288 = 4,096 * 256 / 2), which gives the three
 * properties everything else rests on:
 *
 *   - A timer filed on level L >= 1 did not fit on level L - 1, which puts it at least
 *     two slots ahead of the current one (slot c + 2 or later). So slot c + 1, due next,
 *     is closed: nothing new is filed in it.
 *   - Everything in slot c + 1 already fits on the levels below (its latest deadline is
 *     less than two of its widths away, and the ring below spans two). So it may be moved
 *     down at any time until it is due; the last advance before it is due moves a
 *     proportional share each time (drain()), and the slot is empty when its time comes.
 *     An advance that jumps over that stretch moves what is left in one go (move_down()
 *     at the slot's first tick), exactly as scheme 7 does.
 *   - Level 0 slots hold exactly one tick each, so nothing is early and, advanced every
 *     tick, nothing is late.
 *
 * Slots are arrays of node pointers, not linked lists: a node records its (slot, index),
 * cancel moves the array's last entry into the hole, and firing or moving a slot pops
 * from its end. Walking an array issues independent loads, and the loops prefetch the
 * nodes a few entries ahead, so a slot whose nodes are all cold costs a fraction of a
 * memory latency per node instead of one full latency per node down a list.
 *
 * The next tick at which anything can happen is the earliest of: the next non-empty slot
 * on level 0, the first tick of the next non-empty slot on each upper level (a bitmap
 * search, with a summary bitmap over level 0's 128 words), and the tick at which the
 * earliest overflow deadline first fits on the top level. advance() jumps from one such
 * tick to the next, which is why a jump of 10^9 ticks costs O(occupied slots + timers
 * due), not O(ticks). The overflow array is scanned once per top-level slot that holds
 * one of its deadlines (every 87 min at most, at a 10 ms tick), never per tick.
 *
 * Invariant: a timer armed for tick T fires in the first tw_wheel_advance() whose `now`
 * is >= T, in deadline order, and during its callback w->now == T (the tick being
 * processed, even mid-jump). Nothing locks: one wheel per worker.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tickwire/wheel.h"

#define L0_MASK     ((uint64_t)TW_WHEEL_L0_SLOTS - 1)
#define UP_MASK     ((uint64_t)TW_WHEEL_UP_SLOTS - 1)
#define OVERFLOW_ID TW_WHEEL_SLOTS /* the last entry of w->slots */
#define NOT_FOUND   UINT64_MAX
#define PREFETCH    8   /* nodes touched this many entries ahead while walking a slot */
#define DRAIN_BATCH 256 /* next_expiry wakes a sleeping loop to move about this many */

_Static_assert(TW_WHEEL_L0_BITS >= 7 && TW_WHEEL_UP_BITS >= 7,
               "levels must be whole bitmap words, two at least");
_Static_assert(TW_WHEEL_L0_BITS - 1 + (TW_WHEEL_LEVELS - 1) * (TW_WHEEL_UP_BITS - 1) < 40,
               "slot widths must leave room for the drain arithmetic");

/* log2 of a level's slot width: each upper slot spans half the ring below it. */
static inline unsigned level_shift(unsigned level)
{
        return level == 0 ? 0 : TW_WHEEL_L0_BITS - 1 + (level - 1) * (TW_WHEEL_UP_BITS - 1);
}

static inline uint32_t level_base(unsigned level)
{
        return level == 0 ? 0 : TW_WHEEL_L0_SLOTS + (level - 1) * TW_WHEEL_UP_SLOTS;
}

static inline uint32_t level_slots(unsigned level)
{
        return level == 0 ? TW_WHEEL_L0_SLOTS : TW_WHEEL_UP_SLOTS;
}

/* The slot for deadline T >= now: the lowest level whose ring reaches it. */
static inline uint32_t slot_for(uint64_t now, uint64_t T)
{
        if (T - now < TW_WHEEL_L0_SLOTS)
                return (uint32_t)(T & L0_MASK);
        for (unsigned level = 1; level < TW_WHEEL_LEVELS; level++) {
                unsigned shift = level_shift(level);

                if ((T >> shift) - (now >> shift) <= UP_MASK)
                        return level_base(level) + (uint32_t)((T >> shift) & UP_MASK);
        }
        return OVERFLOW_ID;
}

static inline void mark(tw_wheel *w, uint32_t id)
{
        w->occupied[id / 64] |= UINT64_C(1) << (id % 64);
        w->occupied_words[id / 4096] |= UINT64_C(1) << (id / 64 % 64);
}

static inline void unmark(tw_wheel *w, uint32_t id)
{
        if ((w->occupied[id / 64] &= ~(UINT64_C(1) << (id % 64))) == 0)
                w->occupied_words[id / 4096] &= ~(UINT64_C(1) << (id / 64 % 64));
}

/* Makes room for one more entry: 1.5x growth keeps the spare capacity at most a third
 * of the array (8 bytes per timer at most in use plus 4 spare, amortised). */
static __attribute__((noinline)) int slot_grow(tw_slot *s)
{
        uint64_t cap = s->cap < 8 ? 8 : (uint64_t)s->cap + s->cap / 2;

        if (cap > UINT32_MAX)
                return -ENOMEM;
        tw_timer **t = realloc(s->t, cap * sizeof(*t));

        if (t == NULL)
                return -ENOMEM;
        s->t = t;
        s->cap = (uint32_t)cap;
        return 0;
}

/* A slot just emptied after holding `used` timers: give back capacity far beyond that,
 * so a burst does not pin its memory, while a steady load keeps its arrays (no
 * allocation in the steady state). */
static void slot_trim(tw_slot *s, uint32_t used)
{
        if (s->cap <= 4 * (uint64_t)used + 64)
                return;
        if (used == 0) {
                free(s->t);
                s->t = NULL;
                s->cap = 0;
                return;
        }
        tw_timer **t = realloc(s->t, 2 * (size_t)used * sizeof(*t));

        if (t != NULL) { /* a failed shrink keeps the old array: harmless */
                s->t = t;
                s->cap = 2 * used;
        }
}

/* Appends t to slot id, which has room. A slot's bit is set while it holds a live
 * entry, which is whenever it holds any: a slot left with dead entries only is reset. */
static inline void slot_push(tw_wheel *w, uint32_t id, tw_timer *t)
{
        tw_slot *s = &w->slots[id];

        if (s->len == 0 && id != OVERFLOW_ID)
                mark(w, id);
        t->slot = id + 1;
        t->idx = s->len;
        s->t[s->len++] = t;
}

/* Entry i of slot id is live iff its node still says it is there; anything else is
 * what a cancel or re-arm left behind. */
static inline bool entry_live(const tw_timer *t, uint32_t id, uint32_t i)
{
        return t->slot == id + 1 && t->idx == i;
}

static inline void slot_reset(tw_wheel *w, uint32_t id)
{
        w->slots[id].len = 0;
        w->slots[id].dead = 0;
        if (id == OVERFLOW_ID)
                w->overflow_min = UINT64_MAX;
        else
                unmark(w, id);
}

/* Lazy removal: t stops being armed; its entry stays behind, dead, until the slot is
 * walked (fired, moved down, compacted) or holds nothing else. */
static inline void slot_forget(tw_wheel *w, tw_timer *t)
{
        uint32_t id = t->slot - 1;
        tw_slot *s = &w->slots[id];

        t->slot = 0;
        if (++s->dead == s->len)
                slot_reset(w, id);
}

/* Drops the dead entries of slot id, keeping the order of the live ones. Touches every
 * node in the slot; only called when at least a quarter of its entries are dead, so the
 * cost is O(1) per cancel or re-arm that left one behind. */
static void slot_compact(tw_wheel *w, uint32_t id)
{
        tw_slot *s = &w->slots[id];
        uint32_t j = 0;

        for (uint32_t i = 0; i < s->len; i++) {
                if (i + PREFETCH < s->len)
                        __builtin_prefetch(s->t[i + PREFETCH], 1);
                tw_timer *t = s->t[i];

                if (entry_live(t, id, i)) {
                        s->t[j] = t;
                        t->idx = j++;
                }
        }
        s->len = j;
        s->dead = 0;
}

/* Makes room for one more entry in slot id: compacts it when a quarter or more of its
 * entries are dead, else grows it. So an array grows only when three quarters of it are
 * live, and its capacity stays under twice the live timers it held then. */
static inline int slot_reserve(tw_wheel *w, uint32_t id)
{
        tw_slot *s = &w->slots[id];

        if (s->len < s->cap)
                return 0;
        if (s->dead != 0 && s->dead >= s->len / 4) {
                slot_compact(w, id);
                return 0;
        }
        return slot_grow(s);
}

/* Re-files a detached timer (expires >= now) while advancing: no way to report failure
 * from there, and leaving the timer behind would break the "never late" contract. */
static void refile(tw_wheel *w, tw_timer *t)
{
        uint32_t id = slot_for(w->now, t->expires);

        if (slot_reserve(w, id) < 0) {
                fprintf(stderr, "tickwire: wheel: out of memory moving timers down\n");
                abort();
        }
        if (id == OVERFLOW_ID && t->expires < w->overflow_min)
                w->overflow_min = t->expires;
        slot_push(w, id, t);
}

void tw_wheel_init(tw_wheel *w, uint64_t now, tw_timer_fn fire, void *ctx)
{
        memset(w, 0, sizeof(*w));
        w->now = now;
        w->fire = fire;
        w->ctx = ctx;
        w->overflow_min = UINT64_MAX;
        w->drained = now;
}

void tw_wheel_free(tw_wheel *w)
{
        for (size_t i = 0; i <= OVERFLOW_ID; i++) {
                free(w->slots[i].t);
                w->slots[i] = (tw_slot){0};
        }
        memset(w->occupied, 0, sizeof(w->occupied));
        memset(w->occupied_words, 0, sizeof(w->occupied_words));
        w->armed = 0;
        w->overflow_min = UINT64_MAX;
}

size_t tw_wheel_heap_bytes(const tw_wheel *w)
{
        size_t bytes = 0;

        for (size_t i = 0; i <= OVERFLOW_ID; i++)
                bytes += (size_t)w->slots[i].cap * sizeof(tw_timer *);
        return bytes;
}

int tw_wheel_add_slow(tw_wheel *w, tw_timer *t, uint64_t expires)
{
        /* A past deadline goes in the due slot; the next advance, even to the same tick,
         * drains it (and an advance in progress drains it before returning). */
        if (expires < w->now)
                expires = w->now;

        uint32_t id = slot_for(w->now, expires);

        if (id == OVERFLOW_ID && expires < w->overflow_min)
                w->overflow_min = expires;
        if (t->slot == id + 1) { /* same slot (on level 0: same tick): nothing moves */
                t->expires = expires;
                return 0;
        }
        if (slot_reserve(w, id) < 0)
                return -ENOMEM;
        if (t->slot != 0)
                slot_forget(w, t);
        else
                w->armed++;
        t->expires = expires;
        slot_push(w, id, t);
        return 0;
}

void tw_wheel_reset_slot(tw_wheel *w, uint32_t id)
{
        slot_reset(w, id);
}

/* The first index of the given set in [lo, hi) of the occupied[] words, or NOT_FOUND. */
static uint64_t find_word(const tw_wheel *w, uint32_t lo, uint32_t hi)
{
        while (lo < hi) {
                uint64_t m = w->occupied_words[lo / 64] >> (lo % 64);

                if (m != 0) {
                        uint32_t i = lo + (uint32_t)__builtin_ctzll(m);

                        return i < hi ? i : NOT_FOUND;
                }
                lo = (lo | 63) + 1;
        }
        return NOT_FOUND;
}

/* How many slots past `from` (0 = `from` itself) the level's next non-empty slot lies,
 * going round its ring; NOT_FOUND when the level is empty. */
static uint64_t level_find(const tw_wheel *w, unsigned level, uint32_t from)
{
        uint32_t wb = level_base(level) / 64, n = level_slots(level), nw = n / 64;
        uint32_t wi = from / 64;
        uint64_t m = w->occupied[wb + wi] & (~UINT64_C(0) << (from % 64));

        if (m != 0)
                return (uint64_t)wi * 64 + (uint64_t)__builtin_ctzll(m) - from;

        uint64_t k = find_word(w, wb + wi + 1, wb + nw);

        if (k == NOT_FOUND)
                k = find_word(w, wb, wb + wi + 1); /* wrapped: bits below `from` */
        if (k == NOT_FOUND)
                return NOT_FOUND;

        uint32_t bit = ((uint32_t)k - wb) * 64 + (uint32_t)__builtin_ctzll(w->occupied[k]);

        return bit >= from ? bit - from : (uint64_t)bit + n - from;
}

/* First tick of the next non-empty slot on upper level `level` (after the current one,
 * which is always empty once its first tick has been processed), or UINT64_MAX. */
static uint64_t upper_event(const tw_wheel *w, unsigned level)
{
        unsigned shift = level_shift(level);
        uint64_t c = w->now >> shift;
        uint64_t d = level_find(w, level, (uint32_t)((c + 1) & UP_MASK));

        /* Slots hold deadlines T with T >> shift == c + 1 + d, so this cannot wrap. */
        return d == NOT_FOUND ? UINT64_MAX : (c + 1 + d) << shift;
}

/* The tick at which the earliest overflow deadline first fits on the top level. Early
 * (never late) when that timer has been cancelled since: the scan then finds the new
 * minimum. */
static uint64_t overflow_event(const tw_wheel *w)
{
        unsigned shift = level_shift(TW_WHEEL_LEVELS - 1);

        if (w->slots[OVERFLOW_ID].len == 0)
                return UINT64_MAX;
        return ((w->overflow_min >> shift) - UP_MASK) << shift;
}

/* The first tick after w->now at which a level-0 slot holds timers, an upper slot
 * begins, or overflow timers come within reach; UINT64_MAX when there is none. */
static uint64_t next_event(const tw_wheel *w)
{
        uint64_t next = UINT64_MAX;
        uint64_t d = level_find(w, 0, (uint32_t)((w->now + 1) & L0_MASK));

        if (d != NOT_FOUND) {
                if (d == 0) /* the common case when busy: nothing can come before it */
                        return w->now + 1;
                next = w->now + 1 + d;
        }
        for (unsigned level = 1; level < TW_WHEEL_LEVELS; level++) {
                uint64_t at = upper_event(w, level);

                if (at < next)
                        next = at;
        }
        uint64_t at = overflow_event(w);

        return at < next ? at : next;
}

/* Pops entries off the end of upper slot `id` and re-files them against w->now until
 * `keep` are left. Called with slots whose timers all fit lower, so none comes back. */
static void move_down(tw_wheel *w, uint32_t id, uint32_t keep)
{
        tw_slot *s = &w->slots[id];
        uint32_t used = s->len;

        while (s->len > keep) {
                uint32_t i = s->len - 1;

                if (i >= keep + PREFETCH)
                        __builtin_prefetch(s->t[i - PREFETCH], 1);
                tw_timer *t = s->t[i];

                s->len = i;
                if (entry_live(t, id, i))
                        refile(w, t);
                else
                        s->dead--;
        }
        if (s->len == s->dead) {
                slot_reset(w, id);
                slot_trim(s, used);
        }
}

/* now has just entered the next top-level slot of some overflow deadline: bring every
 * deadline that fits now into the levels and recompute the minimum of the rest. */
static void refile_overflow(tw_wheel *w)
{
        tw_slot *s = &w->slots[OVERFLOW_ID];
        uint64_t min = UINT64_MAX;
        uint32_t j = 0;

        for (uint32_t i = 0; i < s->len; i++) {
                tw_timer *t = s->t[i];

                if (!entry_live(t, OVERFLOW_ID, i))
                        continue;
                if (slot_for(w->now, t->expires) != OVERFLOW_ID) {
                        refile(w, t);
                        continue;
                }
                if (t->expires < min)
                        min = t->expires;
                s->t[j] = t;
                t->idx = j++;
        }
        s->len = j;
        s->dead = 0;
        w->overflow_min = min;
}

/* w->now has just moved to an event tick: bring in overflow deadlines that now fit, and
 * move down what is left of every upper slot that begins at this tick (top first, so a
 * timer can pass through several levels in one go). */
static void cascade(tw_wheel *w)
{
        if (w->slots[OVERFLOW_ID].len != 0 && overflow_event(w) <= w->now)
                refile_overflow(w);
        for (unsigned level = TW_WHEEL_LEVELS - 1; level >= 1; level--) {
                unsigned shift = level_shift(level);

                if (w->now & ((UINT64_C(1) << shift) - 1))
                        continue;
                uint32_t id = level_base(level) + (uint32_t)((w->now >> shift) & UP_MASK);

                if (w->slots[id].len != 0)
                        move_down(w, id, 0);
        }
}

/* Fires everything in the due slot, popping from its end. Each timer is taken out
 * before its callback runs and the length is re-read every time, so a callback may
 * cancel any timer (a swap-remove here only ever moves a not-yet-fired entry into the
 * place of another), re-arm anything, or add one for <= now, which joins this slot and
 * fires in this same loop. The array may be reallocated by a callback: s->t is re-read. */
static size_t fire_due(tw_wheel *w)
{
        uint32_t id = (uint32_t)(w->now & L0_MASK);
        tw_slot *s = &w->slots[id];
        uint32_t used = s->len;
        size_t fired = 0;

        if (used == 0)
                return 0;
        while (s->len != 0) {
                uint32_t i = s->len - 1;

                if (i >= PREFETCH)
                        __builtin_prefetch(s->t[i - PREFETCH], 1);
                tw_timer *t = s->t[i];

                s->len = i;
                if (!entry_live(t, id, i)) {
                        s->dead--;
                        continue;
                }
                if (i == s->dead)
                        slot_reset(w, id); /* exact even while callbacks look */
                t->slot = 0;
                w->armed--;
                w->fire(w, t, w->ctx);
                fired++;
        }
        if (s->len == 0)
                slot_trim(s, used);
        return fired;
}

/* Moves a proportional share of each upper level's next slot down, so that when the
 * loop advances every tick, a slot of n timers with k ticks to go moves n/k per
 * advance instead of all n at its first tick. Everything moved is due after now. */
static void drain(tw_wheel *w)
{
        for (unsigned level = TW_WHEEL_LEVELS - 1; level >= 1; level--) {
                unsigned shift = level_shift(level);
                uint64_t q = (w->now >> shift) + 1;

                if (q > (UINT64_MAX >> shift)) /* the end of time */
                        continue;
                uint32_t id = level_base(level) + (uint32_t)(q & UP_MASK);
                uint64_t len = w->slots[id].len;

                if (len == 0)
                        continue;
                uint64_t left = (q << shift) - w->now; /* 1 .. slot width */
                /* ticks since the last drain within this stretch: a loop that slept
                 * catches up with the share it missed */
                uint64_t since = w->now - ((q - 1) << shift) + 1;
                uint64_t ticks = w->now - w->drained;

                if (ticks == 0 || ticks > since)
                        ticks = since;
                move_down(w, id, (uint32_t)(len * (left - 1) / (left - 1 + ticks)));
        }
        w->drained = w->now;
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

                uint64_t next = next_event(w);

                if (next > now) {
                        w->now = now;
                        break;
                }
                w->now = next;
                cascade(w);
        }
        drain(w);
        return fired;
}

uint64_t tw_wheel_next_expiry(const tw_wheel *w)
{
        if (w->armed == 0)
                return UINT64_MAX;
        if (w->slots[w->now & L0_MASK].len != 0)
                return 0;

        uint64_t at = next_event(w);

        /* Wake early enough to move an upper slot down in batches of about DRAIN_BATCH
         * (see drain()) rather than all at its first tick. */
        for (unsigned level = 1; level < TW_WHEEL_LEVELS; level++) {
                unsigned shift = level_shift(level);
                uint64_t q = (w->now >> shift) + 1;

                if (q >= (UINT64_MAX >> shift))
                        continue;
                uint64_t len = w->slots[level_base(level) + (q & UP_MASK)].len;
                uint64_t wake = UINT64_MAX;

                if (len >= 2 * DRAIN_BATCH) { /* slot q is moving down: pace it */
                        uint64_t step = DRAIN_BATCH * ((q << shift) - w->now) / len;

                        wake = w->now + (step > 0 ? step : 1);
                } else if (w->slots[level_base(level) + ((q + 1) & UP_MASK)].len >=
                           2 * DRAIN_BATCH) { /* the next one starts moving at q's start */
                        wake = q << shift;
                }
                if (wake < at)
                        at = wake;
        }
        return at == UINT64_MAX ? UINT64_MAX : at - w->now;
}
