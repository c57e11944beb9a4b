/*
 * outq — one connection's send queue: references to immutable frames, in the order they
 * go on the wire, sent by at most one sendmsg at a time.
 *
 * Owns: the queue (a ring of frame references that exists only while something is
 * queued: an idle connection holds a NULL pointer) and which of its entries the send in
 * flight covers. Must not touch: sockets, the ring, connection state. The iovecs of a send
 * are written into the caller's array (the worker's per-turn arena), not kept here.
 *
 * A send in flight pins the entries it covers: nothing may reorder or drop them until
 * tw_outq_complete() retires what the kernel took. A partly sent head is pinned too, so
 * the stream never carries half a frame. Everything else may be conflated.
 */
#ifndef TICKWIRE_OUTQ_H
#define TICKWIRE_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "tickwire/frame.h"

typedef struct tw_outq tw_outq;

/* Appends f; the queue takes the caller's reference. *q is created on first use. Returns
 * 0, or -ENOMEM (f is still the caller's). */
int tw_outq_push(tw_outq **q, tw_frame *f);

/* Bytes queued and not yet sent (0 for NULL). */
uint64_t tw_outq_bytes(const tw_outq *q);

/* Frames queued, counting any the send in flight covers (0 for NULL). */
uint32_t tw_outq_frames(const tw_outq *q);

/* Whether a send prepared by tw_outq_prepare() is still in flight. */
bool tw_outq_sending(const tw_outq *q);

/* Describes up to `max` frames from the head in iov (the head minus what was already
 * sent of it), marks them in flight and returns how many (0 when empty or already
 * sending). */
size_t tw_outq_prepare(tw_outq *q, struct iovec *iov, size_t max);

/* Ends the send in flight: `sent` bytes went out (0 on error or cancel). Fully sent frames
 * are released through rel (NULL = at once); the queue is freed (*q = NULL) when empty.
 * Returns the bytes still queued. */
uint64_t tw_outq_complete(tw_outq **q, size_t sent, tw_frame_batch *rel);

/* Bytes of the queue that a conflation may drop: all of it but the pinned entries. */
uint64_t tw_outq_unpinned_bytes(const tw_outq *q);

/* The slow-consumer rule applied to the unpinned entries (see tw_conflate): `all` drops
 * every one of them, otherwise only messages a newer message of the same topic follows.
 * Returns the number of topic messages dropped, or -ENOMEM (queue unchanged). */
int64_t tw_outq_conflate(tw_outq *q, bool all);

/* Releases every queued reference and the queue. Not while a send is in flight. */
void tw_outq_free(tw_outq **q);

/* The rule itself over a ring of `cap` (a power of two) frame references holding
 * `*count` from `*head`. The first `keep` entries are never touched. Of the rest, `all`
 * drops every entry; otherwise only topic messages are dropped that a newer message of the
 * same topic follows (the newest pending message per topic survives). Order is kept.
 * Dropped references are released; their bytes come off *bytes. Returns the number of
 * topic messages dropped, or -ENOMEM (queue unchanged). Pure: exposed for tests. */
int64_t tw_conflate(tw_frame **q, uint32_t cap, uint32_t *head, uint32_t *count, uint32_t keep,
                    bool all, uint64_t *bytes);

#endif
