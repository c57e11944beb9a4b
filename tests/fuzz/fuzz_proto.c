/*
 * fuzz_proto — libFuzzer harness for tw_proto_parse, the parser every client text frame
 * goes through (DESIGN 5). Invariants:
 *  - no crash and no read outside the input (it sits in a heap buffer of exactly its size);
 *  - the status is one of tw_proto_status, and an error status has a code string;
 *  - OK only for one valid JSON object (tw_json_valid and the reference validator of
 *    json_ref.h agree it is one), with a known type; subscribe, unsubscribe and publish
 *    carry a topic that passes tw_topic_valid; every span lies inside the input; a ping's
 *    time and a publish's data (when non-empty) pass tw_json_valid;
 *  - the spans are the right ones: equal, pointer and length, to the value of the
 *    top-level member the reference validator found for that key (a topic without its
 *    quotes); with the v2 fields (proto.h defines TW_NAME_MAX) also a refresh's token and
 *    a subscribe's epoch or a publish's id, which must be 1-TW_NAME_MAX name bytes;
 *  - jsmn and the scanner never disagree: a valid JSON object whose known keys each
 *    appear at most once is never BAD_JSON;
 *  - the replies built from it are valid JSON: the pong echoing the time, and an error
 *    whose message quotes the raw input (non-UTF-8 bytes turned into U+FFFD).
 *
 * Build and run: see README.md "Fuzzing" (cmake -DTW_FUZZ=ON -DCMAKE_C_COMPILER=clang).
 */
#include "json_ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                                                  \
        do {                                                                                       \
                fprintf(stderr, "fuzz_proto: " __VA_ARGS__);                                       \
                fputc('\n', stderr);                                                               \
                abort();                                                                           \
        } while (0)

/* The top-level keys tw_proto_parse reads; a repeat of any of them is BAD_JSON. Extend
 * this when proto.c learns a field (a key listed here that proto.c does not read only
 * makes the check skip a few inputs). */
static const char *const known_keys[] = {"type",  "time",  "topic", "data", "snapshot",
                                         "since", "epoch", "id",    "token"};

static bool span_eq(tw_span a, tw_span b)
{
        return a.n == b.n && (a.n == 0 || a.p == b.p);
}

/* The reference's value for key, as tw_proto_parse should report it. */
static tw_span ref_value(const jref_info *in, const char *key, bool inner)
{
        int dups;
        const jref_member *m = jref_find(in, key, &dups);

        if (!m)
                return (tw_span){0};
        if (inner && m->value.n >= 2 && m->value.p[0] == '"')
                return (tw_span){m->value.p + 1, m->value.n - 2};
        return m->value;
}

static void check_ok(const tw_msg *m, const char *buf, size_t size, const jref_info *in,
                     bool ref_ok)
{
        if (!tw_json_valid(buf, size))
                FAIL("OK for input tw_json_valid refuses");
        if (!ref_ok || in->top != '{')
                FAIL("OK for input the reference does not take as an object");
        if (!span_inside(m->time, buf, size) || !span_inside(m->topic, buf, size) ||
            !span_inside(m->data, buf, size))
                FAIL("span outside the input");
        switch (m->type) {
#ifdef TW_NAME_MAX /* the v2 fields: refresh, epoch, id */
        case TW_MSG_REFRESH:
                if (!span_inside(m->token, buf, size) ||
                    (in->members <= JREF_MAX_MEMBERS &&
                     !span_eq(m->token, ref_value(in, "token", true))))
                        FAIL("refresh token is not the \"token\" member");
                return;
#endif
        case TW_MSG_PING:
                if (m->time.n && !tw_json_valid(m->time.p, m->time.n))
                        FAIL("ping time is not JSON");
                if (in->members <= JREF_MAX_MEMBERS &&
                    !span_eq(m->time, ref_value(in, "time", false)))
                        FAIL("ping time is not the \"time\" member");
                return;
        case TW_MSG_SUBSCRIBE:
        case TW_MSG_UNSUBSCRIBE:
        case TW_MSG_PUBLISH:
                break;
        default:
                FAIL("type %d", (int)m->type);
        }
        if (!tw_topic_valid(m->topic))
                FAIL("OK with an invalid topic");
        if (in->members <= JREF_MAX_MEMBERS && !span_eq(m->topic, ref_value(in, "topic", true)))
                FAIL("topic is not the \"topic\" member");
#ifdef TW_NAME_MAX
        tw_span name = m->type == TW_MSG_PUBLISH ? m->id : m->epoch;
        const char *key = m->type == TW_MSG_PUBLISH ? "id" : "epoch";
        if (!span_inside(name, buf, size) ||
            (name.n && (name.n > TW_NAME_MAX || !tw_topic_valid(name))))
                FAIL("%s outside the input or not a name", key);
        if (m->type != TW_MSG_UNSUBSCRIBE && in->members <= JREF_MAX_MEMBERS &&
            !span_eq(name, ref_value(in, key, true)))
                FAIL("%s is not the \"%s\" member", key, key);
#endif
        if (m->type == TW_MSG_PUBLISH) {
                if (m->data.n == 0 || !tw_json_valid(m->data.p, m->data.n))
                        FAIL("publish data empty or not JSON");
                if (in->members <= JREF_MAX_MEMBERS &&
                    !span_eq(m->data, ref_value(in, "data", false)))
                        FAIL("data is not the \"data\" member");
        }
}

static void check_replies(const tw_msg *m, tw_proto_status st, const uint8_t *data, size_t size)
{
        static char out[3 * 65536];

        if (st == TW_PROTO_OK && m->type == TW_MSG_PING) {
                size_t n = tw_proto_pong(out, sizeof(out), m->time);
                if (n == 0 && m->time.n + 32 < sizeof(out))
                        FAIL("pong does not fit");
                if (n && !tw_json_valid(out, n))
                        FAIL("pong is not JSON: %.*s", (int)n, out);
        }
        /* The message quotes the input as a C string: up to its first NUL. */
        size_t mn = size < 8192 ? size : 8192;
        char *msg = malloc(mn + 1);
        if (!msg)
                abort();
        memcpy(msg, data, mn);
        msg[mn] = '\0';
        size_t n = tw_proto_error(out, sizeof(out), tw_proto_status_code(st), msg);
        if (n == 0)
                FAIL("error reply does not fit");
        if (!tw_json_valid(out, n))
                FAIL("error reply is not JSON: %.*s", (int)n, out);
        free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static jref_info in;
        char *buf = malloc(size ? size : 1);
        tw_msg m;

        if (!buf)
                return 0;
        memcpy(buf, data, size);
        tw_proto_status st = tw_proto_parse(buf, size, &m);
        bool ref_ok = jref_valid(buf, size, &in);

        switch (st) {
        case TW_PROTO_OK:
                check_ok(&m, buf, size, &in, ref_ok);
                break;
        case TW_PROTO_BAD_JSON:
                if (ref_ok && in.top == '{' && in.members <= JREF_MAX_MEMBERS) {
                        bool dup = false;
                        for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++) {
                                int d;
                                jref_find(&in, known_keys[i], &d);
                                dup |= d > 1;
                        }
                        if (!dup)
                                FAIL("BAD_JSON for a valid object without repeated keys");
                }
                break;
        case TW_PROTO_UNKNOWN_TYPE:
        case TW_PROTO_BAD_TOPIC:
        case TW_PROTO_BAD_FIELD:
                if (!ref_ok || in.top != '{')
                        FAIL("status %d past the JSON check for input that is not an object",
                             (int)st);
                break;
        default:
                FAIL("status %d", (int)st);
        }
        if (st != TW_PROTO_OK && tw_proto_status_code(st) == NULL)
                FAIL("no code for status %d", (int)st);
        check_replies(&m, st, data, size);
        free(buf);
        return 0;
}
