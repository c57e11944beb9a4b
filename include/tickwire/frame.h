/*
 * frame — immutable, reference-counted outbound bytes: a complete server frame (or an
 * HTTP response) built once and queued by reference on as many connections, on as many
 * workers, as need it. Server frames are unmasked, so one copy serves every plain
 * subscriber.
 *
 * Owns: the bytes and their count. Must not touch: connections or sockets.
 */
#ifndef TICKWIRE_FRAME_H
#define TICKWIRE_FRAME_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tw_frame {
        _Atomic uint32_t refs; /* owners: send queues, topic history, the builder */
        uint32_t len;          /* bytes in data */
        uint64_t topic_id;     /* topic incarnation, for conflation: 0 = not a topic message */
        uint64_t seq;          /* topic sequence number, 0 = none */
        uint8_t data[];
} tw_frame;

/* A frame of len bytes (uninitialised) with one reference; NULL when out of memory. */
tw_frame *tw_frame_alloc(size_t len);

/* A frame holding a copy of p[0..len). */
tw_frame *tw_frame_copy(const void *p, size_t len);

/* A whole WebSocket frame: header for `opcode` + payload, unmasked. */
tw_frame *tw_frame_ws(uint8_t opcode, const void *payload, size_t len);

static inline tw_frame *tw_frame_ref(tw_frame *f)
{
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
        return f;
}

void tw_frame_unref(tw_frame *f);

/* n references taken, or dropped, in one atomic operation. Fan-out takes one per
 * subscriber: on a frame every worker shares, one locked operation per delivery makes its
 * cache line ping-pong between cores, so a worker takes all its references at once. */
static inline tw_frame *tw_frame_ref_n(tw_frame *f, uint32_t n)
{
        atomic_fetch_add_explicit(&f->refs, n, memory_order_relaxed);
        return f;
}
void tw_frame_unref_n(tw_frame *f, uint32_t n);

/* Releases gathered by one thread and applied per frame in one operation: a send
 * completion retires the same few frames on thousands of connections, and each
 * connection's retirement would otherwise be a contended atomic decrement. A frame
 * waiting here merely lives a little longer; tw_frame_batch_flush() (once per loop turn)
 * applies everything. Direct-mapped: a collision flushes the older entry. */
#define TW_FRAME_BATCH 64
typedef struct tw_frame_batch {
        tw_frame *f[TW_FRAME_BATCH];
        uint32_t n[TW_FRAME_BATCH];
} tw_frame_batch;

static inline void tw_frame_batch_unref(tw_frame_batch *b, tw_frame *f)
{
        uintptr_t a = (uintptr_t)f;
        uint32_t i = (uint32_t)((a >> 6) ^ (a >> 12)) & (TW_FRAME_BATCH - 1);

        if (b->f[i] == f) {
                b->n[i]++;
                return;
        }
        if (b->f[i])
                tw_frame_unref_n(b->f[i], b->n[i]);
        b->f[i] = f;
        b->n[i] = 1;
}
void tw_frame_batch_flush(tw_frame_batch *b);

#endif
