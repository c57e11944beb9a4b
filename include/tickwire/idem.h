/*
 * idem — the publish ids one topic has seen recently, so a publish retried with the same
 * id (its ack was lost) is answered with the original seq instead of being published
 * again (DESIGN 5).
 *
 * Owns: a ring of (id, seq, time) in publish order and an open-addressing index by id,
 * both allocated on the first id and grown by doubling up to TW_IDEM_MAX entries. Pure:
 * no locks (the topic's lock guards it), no clock (the caller passes now). Must not
 * touch: the history it describes.
 *
 * An id is remembered while its message is still in the topic's history, or for
 * TW_IDEM_TTL_MS after it was published, whichever is longer — up to TW_IDEM_MAX ids per
 * topic: a topic taking more ids than that within the TTL forgets its oldest early. The
 * memory it holds (tw_idem_bytes) counts against --max-history-bytes with the history.
 */
#ifndef TICKWIRE_IDEM_H
#define TICKWIRE_IDEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tickwire/span.h"

#define TW_IDEM_MAX    4096
#define TW_IDEM_TTL_MS (5 * 60 * 1000)
#define TW_IDEM_ID_MAX 64

typedef struct tw_idem tw_idem;

/* The seq first published with `id`, when it is still remembered: its message is in the
 * history (seq >= oldest) or it is younger than the TTL. */
bool tw_idem_find(const tw_idem *m, tw_span id, uint64_t now_ms, uint64_t oldest, uint64_t *seq);

/* Remembers `id` for `seq` (the caller checked it is new). Forgets first what is neither
 * in the history nor within the TTL, then, when full, the oldest. *m is created on first
 * use. Returns 0 or -ENOMEM (nothing remembered). */
int tw_idem_add(tw_idem **m, tw_span id, uint64_t seq, uint64_t now_ms, uint64_t oldest);

/* Forgets every id whose message has left the history (seq < oldest), whatever its age:
 * what the --max-history-bytes pass does to the topics it trims. Returns bytes freed. */
uint64_t tw_idem_trim(tw_idem *m, uint64_t oldest);

/* Bytes held (0 for NULL). */
uint64_t tw_idem_bytes(const tw_idem *m);

/* Ids remembered (0 for NULL). */
uint32_t tw_idem_count(const tw_idem *m);

void tw_idem_free(tw_idem *m);

#endif
