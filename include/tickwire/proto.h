/*
 * proto — the JSON wire protocol of DESIGN 5: parsing client messages, writing replies.
 *
 * Owns: JSON in and out. Parsing uses jsmn (Debian's libjsmn-dev), a tokenizer that
 * returns byte spans, so values the protocol echoes (the ping "time", the publish "data")
 * are passed on byte for byte, never re-serialised. Pure functions over the caller's
 * bytes. Must not touch: sockets, topics, connections.
 */
#ifndef TICKWIRE_PROTO_H
#define TICKWIRE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tickwire/span.h"

#define TW_TOPIC_MAX 128
#define TW_NAME_MAX  64 /* epochs and publish ids: 1-64 bytes of the topic alphabet */

/* Deepest nesting of arrays and objects accepted in a message or a published value (the
 * message object itself counts as one level); deeper is bad_json. */
#define TW_JSON_MAX_DEPTH 128

typedef enum {
        TW_MSG_PING,
        TW_MSG_SUBSCRIBE,
        TW_MSG_UNSUBSCRIBE,
        TW_MSG_PUBLISH,
        TW_MSG_REFRESH,
} tw_msg_type;

typedef enum {
        TW_PROTO_OK = 0,
        TW_PROTO_BAD_JSON,     /* not one well-formed JSON object */
        TW_PROTO_UNKNOWN_TYPE, /* no "type", a non-string one, or one we do not know */
        TW_PROTO_BAD_TOPIC,    /* topic missing or not 1-128 bytes of [A-Za-z0-9._:-] */
        TW_PROTO_BAD_FIELD,    /* a known field of the wrong JSON type (bad_json) */
} tw_proto_status;

typedef struct tw_msg {
        tw_msg_type type;
        tw_span time;   /* ping: the raw JSON value of "time" (empty when absent) */
        tw_span topic;  /* subscribe/unsubscribe/publish: the topic name */
        tw_span data;   /* publish: the raw JSON value of "data" */
        bool snapshot;  /* subscribe: "snapshot":true */
        bool has_since; /* subscribe: "since" present */
        uint64_t since; /* subscribe: its value (a non-negative integer) */
        tw_span epoch;  /* subscribe: "epoch" (empty when absent) */
        tw_span id;     /* publish: the idempotency "id" (empty when absent) */
        tw_span token;  /* refresh: the new JWT, as sent between the quotes */
} tw_msg;

/* Parses one client message. Returns TW_PROTO_OK and fills m, or an error status. */
tw_proto_status tw_proto_parse(const char *p, size_t n, tw_msg *m);

/* True when the whole buffer is exactly one valid JSON value (for POST /publish). */
bool tw_json_valid(const char *p, size_t n);

/* 1-128 bytes of [A-Za-z0-9._:-]. */
bool tw_topic_valid(tw_span topic);

/* The "code" string of an error status: bad_json, unknown_type, bad_topic. */
const char *tw_proto_status_code(tw_proto_status s);

/* Reply writers: return the length written, or 0 when cap is too small. */
size_t tw_proto_pong(char *out, size_t cap, tw_span time);
size_t tw_proto_error(char *out, size_t cap, const char *code, const char *message);

#endif
