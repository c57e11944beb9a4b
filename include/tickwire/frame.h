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
        uint32_t topic_id;     /* for conflation: 0 = not a topic message */
        uint32_t pad;
        uint64_t seq; /* topic sequence number, 0 = none */
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

#endif
