/*
 * The reply writers (pong echoes the time byte for byte; error escapes its message), the
 * error codes of each status, and the topic-name rule.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "tickwire/proto.h"

static void expect(size_t n, const char *out, const char *want)
{
        cr_assert_eq(n, strlen(want), "got [%.*s] want [%s]", (int)n, out, want);
        cr_assert_eq(memcmp(out, want, n), 0, "got [%.*s] want [%s]", (int)n, out, want);
}

Test(proto_reply, pong_echoes_time)
{
        char out[128];

        expect(tw_proto_pong(out, sizeof(out), TW_SPAN_LIT("1.5e3")), out,
               "{\"type\":\"pong\",\"time\":1.5e3}");
        expect(tw_proto_pong(out, sizeof(out), TW_SPAN_LIT("\"x\\\"y\"")), out,
               "{\"type\":\"pong\",\"time\":\"x\\\"y\"}");
        expect(tw_proto_pong(out, sizeof(out), TW_SPAN_LIT("{\"a\": [1, 2]}")), out,
               "{\"type\":\"pong\",\"time\":{\"a\": [1, 2]}}");
        expect(tw_proto_pong(out, sizeof(out), (tw_span){NULL, 0}), out, "{\"type\":\"pong\"}");
}

Test(proto_reply, ping_to_pong_round_trip)
{
        const char *msg = "{ \"time\" : [1, \"two\", {\"3\": 4.0e-1}] , \"type\":\"ping\"}";
        tw_msg m;
        char out[128];

        cr_assert_eq(tw_proto_parse(msg, strlen(msg), &m), TW_PROTO_OK);
        expect(tw_proto_pong(out, sizeof(out), m.time), out,
               "{\"type\":\"pong\",\"time\":[1, \"two\", {\"3\": 4.0e-1}]}");
        cr_assert(tw_json_valid(out, strlen("{\"type\":\"pong\",\"time\":[1, \"two\", "
                                            "{\"3\": 4.0e-1}]}")));
}

Test(proto_reply, pong_short_buffer)
{
        char out[64];
        size_t n = tw_proto_pong(out, sizeof(out), TW_SPAN_LIT("12345"));

        cr_assert_gt(n, 0);
        cr_assert_eq(tw_proto_pong(out, n, TW_SPAN_LIT("12345")), n);
        for (size_t cap = 0; cap < n; cap++)
                cr_assert_eq(tw_proto_pong(out, cap, TW_SPAN_LIT("12345")), 0);
        cr_assert_eq(tw_proto_pong(out, 14, (tw_span){NULL, 0}), 0);
        cr_assert_eq(tw_proto_pong(out, 15, (tw_span){NULL, 0}), 15);
}

Test(proto_reply, error_reply)
{
        char out[256];

        expect(tw_proto_error(out, sizeof(out), "bad_topic", "topic must be 1-128 bytes"), out,
               "{\"type\":\"error\",\"code\":\"bad_topic\",\"message\":\"topic must be 1-128 "
               "bytes\"}");
}

Test(proto_reply, error_message_escaped)
{
        char out[256];
        size_t n = tw_proto_error(out, sizeof(out), "bad_json",
                                  "say \"hi\" \\ now\n\r\t\x01\x1f caf\xc3\xa9 \xff!");

        expect(n, out,
               "{\"type\":\"error\",\"code\":\"bad_json\",\"message\":\"say \\\"hi\\\" \\\\ "
               "now\\n\\r\\t\\u0001\\u001f caf\xc3\xa9 \\ufffd!\"}");
        cr_assert(tw_json_valid(out, n));
}

Test(proto_reply, error_short_buffer)
{
        char out[256];
        size_t n = tw_proto_error(out, sizeof(out), "forbidden", "\"quoted\"");

        cr_assert_gt(n, 0);
        cr_assert_eq(tw_proto_error(out, n, "forbidden", "\"quoted\""), n);
        for (size_t cap = 0; cap < n; cap++)
                cr_assert_eq(tw_proto_error(out, cap, "forbidden", "\"quoted\""), 0, "%zu", cap);
}

Test(proto_reply, status_codes)
{
        cr_assert_null(tw_proto_status_code(TW_PROTO_OK));
        cr_assert_str_eq(tw_proto_status_code(TW_PROTO_BAD_JSON), "bad_json");
        cr_assert_str_eq(tw_proto_status_code(TW_PROTO_BAD_FIELD), "bad_json");
        cr_assert_str_eq(tw_proto_status_code(TW_PROTO_UNKNOWN_TYPE), "unknown_type");
        cr_assert_str_eq(tw_proto_status_code(TW_PROTO_BAD_TOPIC), "bad_topic");
}

Test(proto_reply, topic_names)
{
        char long_topic[TW_TOPIC_MAX + 1];

        memset(long_topic, 'a', sizeof(long_topic));
        cr_assert(tw_topic_valid(TW_SPAN_LIT("AAPL")));
        cr_assert(tw_topic_valid(TW_SPAN_LIT("a.b_c:d-e.0123456789")));
        cr_assert(tw_topic_valid(TW_SPAN_LIT("-")));
        cr_assert(tw_topic_valid((tw_span){long_topic, TW_TOPIC_MAX}));
        cr_assert_not(tw_topic_valid((tw_span){long_topic, TW_TOPIC_MAX + 1}));
        cr_assert_not(tw_topic_valid(TW_SPAN_LIT("")));
        cr_assert_not(tw_topic_valid(TW_SPAN_LIT("a b")));
        cr_assert_not(tw_topic_valid(TW_SPAN_LIT("a/b")));
        cr_assert_not(tw_topic_valid(TW_SPAN_LIT("a*")));
        cr_assert_not(tw_topic_valid(TW_SPAN_LIT("caf\xc3\xa9")));
        cr_assert_not(tw_topic_valid((tw_span){"a\0b", 3}));
}
