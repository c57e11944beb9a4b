/*
 * ws — the RFC 6455 frame codec: an incremental frame reader, frame builders, masking,
 * an incremental UTF-8 validator, the close-code rules and the handshake's accept key.
 *
 * Owns: the byte-level protocol only. Pure functions over the caller's bytes: no I/O, no
 * allocation, no clocks; the reader can be fed one byte at a time or many frames at once
 * and it behaves the same. Must not touch: sockets, connection state, JSON.
 *
 * The reader streams: it hands out data-frame payload in chunks as bytes arrive
 * (unmasked in place), so a message is validated (UTF-8, size) before it is complete and
 * a bad one is refused early. Control frames (<= 125 bytes) are buffered inside the
 * reader and handed out whole. Between messages the reader is idle (tw_ws_reader_idle),
 * which lets a connection drop its reader entirely when nothing is in flight.
 */
#ifndef TICKWIRE_WS_H
#define TICKWIRE_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tickwire/span.h"

enum {
        TW_WS_OP_CONT = 0x0,
        TW_WS_OP_TEXT = 0x1,
        TW_WS_OP_BINARY = 0x2,
        TW_WS_OP_CLOSE = 0x8,
        TW_WS_OP_PING = 0x9,
        TW_WS_OP_PONG = 0xA,
};

/* Close codes this server sends or must recognise. */
enum {
        TW_WS_CLOSE_NORMAL = 1000,
        TW_WS_CLOSE_GOING_AWAY = 1001,
        TW_WS_CLOSE_PROTOCOL = 1002,
        TW_WS_CLOSE_UNSUPPORTED = 1003,
        TW_WS_CLOSE_NO_STATUS = 1005, /* never on the wire */
        TW_WS_CLOSE_ABNORMAL = 1006,  /* never on the wire */
        TW_WS_CLOSE_INVALID_DATA = 1007,
        TW_WS_CLOSE_POLICY = 1008,
        TW_WS_CLOSE_TOO_BIG = 1009,
        TW_WS_CLOSE_INTERNAL = 1011,
        TW_WS_CLOSE_TRY_AGAIN = 1013,
};

#define TW_WS_MAX_HEADER  14
#define TW_WS_MAX_CONTROL 125

/* ---- UTF-8 (incremental, across chunk and fragment boundaries) ---- */

#define TW_UTF8_ACCEPT 0u /* at a character boundary, all valid so far */
#define TW_UTF8_REJECT 1u /* invalid; sticky */

/* Feeds n bytes to the validator in `state`; returns the new state. A state other than
 * ACCEPT or REJECT means "inside a character". Rejects overlongs, surrogates and code
 * points above U+10FFFF as soon as the offending byte is seen. */
uint32_t tw_utf8_step(uint32_t state, const uint8_t *p, size_t n);
bool tw_utf8_valid(const uint8_t *p, size_t n);

/* ---- close codes ---- */

/* True for codes a peer may send: 1000-1003, 1007-1014, 3000-4999. */
bool tw_ws_close_code_valid(uint16_t code);

/* Validates a Close payload. Returns 0 and fills code (1005 when the payload is empty)
 * and the reason span, or returns the close code to answer with: 1002 for a 1-byte
 * payload or an invalid code, 1007 for a reason that is not UTF-8. A payload over 125
 * bytes cannot be a control frame's and is refused with 1002. On error *code is left
 * untouched. reason and reason_len may be NULL. */
int tw_ws_close_parse(const uint8_t *payload, size_t len, uint16_t *code, const uint8_t **reason,
                      size_t *reason_len);

/* ---- building frames ---- */

/* Writes a frame header for a payload of `len` bytes into out (>= TW_WS_MAX_HEADER bytes)
 * and returns its length. mask == NULL builds an unmasked (server) frame. Always the
 * minimal length encoding; len must be below 2^63 (the top bit is dropped). */
size_t tw_ws_header_build(uint8_t *out, uint8_t opcode, bool fin, uint64_t len,
                          const uint8_t *mask);

/* XORs p[0..n) with the mask, as if p started at payload offset `offset`. */
void tw_ws_mask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset);

/* Builds a whole Close frame (code 0 = no status, empty payload) with at most 123 bytes
 * of reason (cut at a UTF-8 boundary). out needs TW_WS_MAX_HEADER + 125 bytes. Returns
 * the frame length. */
size_t tw_ws_close_build(uint8_t *out, uint16_t code, const char *reason, size_t reason_len,
                         const uint8_t *mask);

/* ---- the opening handshake ---- */

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)) with wolfCrypt (RFC 6455
 * 4.2.2). Writes 28 characters and a NUL into out. Returns 0 or a negative errno. The
 * server answers a key with it; a client checks the 101 it gets back against it. */
int tw_ws_accept_key(tw_span key, char out[29]);

/* ---- reading frames ---- */

typedef enum {
        TW_WS_EV_NONE = 0, /* all input consumed, nothing to report: feed more */
        TW_WS_EV_DATA,     /* a chunk of a text/binary message's payload (may be empty) */
        TW_WS_EV_CONTROL,  /* a whole Ping, Pong or Close frame */
        TW_WS_EV_ERROR,    /* protocol violation; ev->close_code says which */
} tw_ws_event_kind;

typedef struct tw_ws_event {
        tw_ws_event_kind kind;
        uint8_t opcode;      /* DATA: the message's opcode (TEXT/BINARY); CONTROL: the frame's */
        bool msg_start;      /* DATA: first chunk of the message */
        bool msg_end;        /* DATA: last chunk of the message (FIN frame fully read) */
        const uint8_t *data; /* DATA: into the caller's buffer; CONTROL: into the reader */
        size_t len;
        uint16_t close_code; /* ERROR: 1002, 1007 or 1009 */
} tw_ws_event;

typedef struct tw_ws_reader {
        uint64_t max_message;           /* 1009 beyond this many payload bytes per message
                                           (taken literally: UINT64_MAX for no limit) */
        uint64_t frame_left;            /* payload bytes of the current frame still to come */
        uint64_t frame_off;             /* payload bytes of the current frame already read */
        uint64_t msg_len;               /* payload bytes of the current message so far */
        uint32_t utf8;                  /* validator state of the current text message */
        uint8_t expect_masked;          /* 1: server side (client frames must be masked) */
        uint8_t state;                  /* internal: header / payload / control / failed
                                           (one failed state per close code) */
        uint8_t msg_opcode;             /* opcode of the message in progress, 0 if none */
        uint8_t frame_opcode;           /* opcode of the current frame */
        uint8_t frame_fin;              /* FIN bit of the current frame */
        uint8_t hdr_len;                /* header bytes buffered in hdr */
        uint8_t mask[4];                /* masking key of the current frame */
        uint8_t hdr[TW_WS_MAX_HEADER];  /* a header split across reads */
        uint8_t ctl_len;                /* control payload bytes buffered */
        uint8_t ctl[TW_WS_MAX_CONTROL]; /* control payload, unmasked */
} tw_ws_reader;

/* expect_masked: true on the server (client frames must be masked, 1002 otherwise),
 * false on a client (server frames must not be masked). */
void tw_ws_reader_init(tw_ws_reader *r, bool expect_masked, uint64_t max_message);

/* Consumes bytes from buf[0..len), unmasking payload in place, until it has one event to
 * report or the input is used up; returns the number of bytes consumed and fills *ev.
 * Call again with the rest of the buffer after each event. After an ERROR event the
 * reader stays failed and consumes nothing more. Checks, in this order per frame:
 * RSV bits, opcode, mask bit, control frame rules (<= 125 bytes, FIN set), continuation
 * rules, length encoding (top bit of a 64-bit length set, or a length not in the fewest
 * bytes: 1002), message size (max_message, across fragments), then UTF-8 of text payload
 * as it arrives (a message whose bytes so far cannot begin valid UTF-8 fails at once; an
 * incomplete character at the end of the message fails at msg_end).
 *
 * Events do not depend on how the input was split: a chunk of text is cut just before an
 * invalid byte, so the valid bytes before it come out as DATA and the ERROR follows on the
 * next call (an incomplete character fails on the message's last byte, likewise). Every
 * data frame gives at least one DATA event, so an empty frame gives one with len 0. A
 * CONTROL event's data lives in the reader and is valid until the next call. On ERROR the
 * caller stops reading: the return value is only what was consumed before the failure.
 * Bytes not consumed are left as they were (still masked). */
size_t tw_ws_read(tw_ws_reader *r, uint8_t *buf, size_t len, tw_ws_event *ev);

/* True when no frame or fragmented message is in progress: the reader may be discarded
 * and re-initialised later without losing anything. False for a failed reader. */
bool tw_ws_reader_idle(const tw_ws_reader *r);

#endif
