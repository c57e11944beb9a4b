/*
 * history — one topic's recent messages by seq, and cursors that replay them.
 *
 * Owns: the ring of frame references (struct tw_history) and its byte count. Pure data
 * structure: no locks (the topic's lock guards it), no clocks, no connections. Exposed
 * whole so the topic module can embed it and tests and the fuzzer can drive it.
 *
 * The window is seqs (last - n, last]: push appends last + 1 and evicts the oldest when
 * `max` messages are held; trim drops the oldest until the bytes held fit a bound (the
 * server-wide --max-history-bytes is enforced by trimming the largest histories).
 *
 * A cursor is a reader's position: the next seq it needs, and whether it has seen every
 * message since it started. Reading from a history that has already dropped that seq
 * skips to the oldest held message and marks the cursor incomplete: a reader can always
 * tell whether what it received was everything.
 */
#ifndef TICKWIRE_HISTORY_H
#define TICKWIRE_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tickwire/frame.h"

typedef struct tw_history {
        tw_frame **v;   /* v[seq % cap] */
        uint32_t cap;   /* slots allocated: starts small, doubles up to max */
        uint32_t max;   /* --history */
        uint32_t n;     /* messages held: seqs (last - n, last] */
        uint64_t last;  /* seq of the newest message, 0 = none yet */
        uint64_t bytes; /* tw_history_cost() of the messages held */
} tw_history;

/* What a held frame counts for against the byte bound: its bytes plus its header. */
static inline uint64_t tw_history_cost(const tw_frame *f)
{
        return (uint64_t)f->len + sizeof(tw_frame);
}

/* Appends f (the caller's reference moves in) as seq last + 1, evicting the oldest when
 * full; *freed receives the cost of what was evicted (0 when nothing). Returns 0 or
 * -ENOMEM (then f is still the caller's and nothing changed). */
int tw_history_push(tw_history *h, tw_frame *f, uint64_t *freed);

/* The frame of `seq`, or NULL when it is not held (no new reference). */
tw_frame *tw_history_get(const tw_history *h, uint64_t seq);

/* Seq of the oldest message held (last + 1 when empty). */
uint64_t tw_history_oldest(const tw_history *h);

/* Drops the oldest messages until at most max_bytes are held; returns the cost freed. */
uint64_t tw_history_trim(tw_history *h, uint64_t max_bytes);

void tw_history_free(tw_history *h);

/* ---- cursors ---- */

typedef struct tw_cursor {
        uint64_t next; /* seq to deliver next */
        bool complete; /* every seq from the start up to next - 1 was delivered */
} tw_cursor;

/* A cursor that wants everything after `since`. Complete only if the history still holds
 * since + 1 (or nothing after since exists yet). */
tw_cursor tw_cursor_start(const tw_history *h, uint64_t since);

enum tw_cursor_state {
        TW_CURSOR_MORE,      /* stopped at the budget or at max: call again later */
        TW_CURSOR_CAUGHT_UP, /* passed the newest message: nothing more to read now */
        TW_CURSOR_OVERRUN,   /* the history dropped c->next: nothing was read; the cursor
                                skipped to the oldest message held and is incomplete */
};

/* Reads from the cursor up to `max` frames into out (new references), in seq order,
 * stopping before the frame that would take their bytes past `budget`; when `first_free`
 * is set (the reader has nothing queued) the first frame is taken whatever its size, so
 * a budget smaller than one message still makes progress. Returns the number read. */
size_t tw_cursor_read(const tw_history *h, tw_cursor *c, uint64_t budget, bool first_free,
                      tw_frame **out, size_t max, enum tw_cursor_state *st);

#endif
