/*
 * span — a view of bytes the caller owns: pointer and length, never NUL-terminated by
 * contract. The parsers (http, proto, auth) return spans into their input instead of
 * copying, so a span is only valid while the buffer it points into is.
 */
#ifndef TICKWIRE_SPAN_H
#define TICKWIRE_SPAN_H

#include <stddef.h>

typedef struct tw_span {
        const char *p; /* first byte; may be NULL when n == 0 */
        size_t n;      /* bytes */
} tw_span;

/* A span over a string literal, without its NUL. */
#define TW_SPAN_LIT(s) ((tw_span){(s), sizeof(s) - 1})

#endif
