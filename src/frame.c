/*
 * Outbound frames. The only shared-memory object of the data path: a frame published on
 * one worker is referenced from send queues on all of them, so its count is atomic and
 * the last owner frees it (release on drop, acquire before free).
 */
#include "tickwire/frame.h"
#include "tickwire/ws.h"

#include <stdlib.h>
#include <string.h>

tw_frame *tw_frame_alloc(size_t len)
{
        tw_frame *f;

        if (len > UINT32_MAX)
                return NULL;
        f = malloc(sizeof(*f) + len);
        if (!f)
                return NULL;
        atomic_init(&f->refs, 1);
        f->len = (uint32_t)len;
        f->topic_id = 0;
        f->seq = 0;
        return f;
}

tw_frame *tw_frame_copy(const void *p, size_t len)
{
        tw_frame *f = tw_frame_alloc(len);

        if (f && len)
                memcpy(f->data, p, len);
        return f;
}

tw_frame *tw_frame_ws(uint8_t opcode, const void *payload, size_t len)
{
        uint8_t hdr[TW_WS_MAX_HEADER];
        size_t hlen = tw_ws_header_build(hdr, opcode, true, len, NULL);
        tw_frame *f = tw_frame_alloc(hlen + len);

        if (!f)
                return NULL;
        memcpy(f->data, hdr, hlen);
        if (len)
                memcpy(f->data + hlen, payload, len);
        return f;
}

void tw_frame_unref(tw_frame *f)
{
        if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_release) == 1) {
                atomic_thread_fence(memory_order_acquire);
                free(f);
        }
}

void tw_frame_unref_n(tw_frame *f, uint32_t n)
{
        if (atomic_fetch_sub_explicit(&f->refs, n, memory_order_release) == n) {
                atomic_thread_fence(memory_order_acquire);
                free(f);
        }
}

void tw_frame_batch_flush(tw_frame_batch *b)
{
        for (uint32_t i = 0; i < TW_FRAME_BATCH; i++) {
                if (b->f[i]) {
                        tw_frame_unref_n(b->f[i], b->n[i]);
                        b->f[i] = NULL;
                }
        }
}
