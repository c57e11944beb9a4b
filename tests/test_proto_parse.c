/*
 * Client messages: each type, the raw spans the protocol echoes byte for byte, every
 * error status, and messages big enough to leave the stack token array. Messages are
 * copied into heap buffers of exactly their length so a sanitizer build catches any read
 * past the end.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tickwire/proto.h"

static char *copy;

static tw_proto_status parse_n(const char *s, size_t n, tw_msg *m)
{
        free(copy);
        copy = malloc(n ? n : 1);
        cr_assert_not_null(copy);
        memcpy(copy, s, n);
        return tw_proto_parse(copy, n, m);
}

static tw_proto_status parse(const char *s, tw_msg *m)
{
        return parse_n(s, strlen(s), m);
}

static tw_proto_status status(const char *s)
{
        tw_msg m;
        return parse(s, &m);
}

static void fini(void)
{
        free(copy);
        copy = NULL;
}

TestSuite(proto_parse, .fini = fini);

static void span_eq(tw_span s, const char *lit)
{
        cr_assert_eq(s.n, strlen(lit), "got [%.*s] want [%s]", (int)s.n, s.p, lit);
        cr_assert_eq(memcmp(s.p, lit, s.n), 0, "got [%.*s] want [%s]", (int)s.n, s.p, lit);
}

Test(proto_parse, ping_time_spans)
{
        static const char *const times[] = {
            "1",
            "1.5e3",
            "-0",
            "0.25E-7",
            "\"x\\\"y\"",
            "\"\"",
            "null",
            "true",
            "[1, {\"a\": [2]}]",
            "{\"t\":1,\"u\":\"}\"}",
            "\"caf\xc3\xa9\\u00e9\"",
        };
        char buf[256];
        tw_msg m;

        for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
                snprintf(buf, sizeof(buf), "{\"type\":\"ping\",\"time\": %s }", times[i]);
                cr_assert_eq(parse(buf, &m), TW_PROTO_OK, "%s", buf);
                cr_assert_eq(m.type, TW_MSG_PING);
                span_eq(m.time, times[i]);
        }
}

Test(proto_parse, ping_without_time)
{
        tw_msg m;

        cr_assert_eq(parse("{\"type\":\"ping\"}", &m), TW_PROTO_OK);
        cr_assert_eq(m.type, TW_MSG_PING);
        cr_assert_eq(m.time.n, 0);
        cr_assert_eq(parse(" \r\n\t{ \"time\" : 7 , \"type\" : \"ping\" } \n", &m), TW_PROTO_OK);
        span_eq(m.time, "7");
}

Test(proto_parse, subscribe)
{
        tw_msg m;

        cr_assert_eq(parse("{\"type\":\"subscribe\",\"topic\":\"AAPL\"}", &m), TW_PROTO_OK);
        cr_assert_eq(m.type, TW_MSG_SUBSCRIBE);
        span_eq(m.topic, "AAPL");
        cr_assert_not(m.snapshot);
        cr_assert_not(m.has_since);

        cr_assert_eq(parse("{\"topic\":\"fx:EUR-USD.spot_1\",\"snapshot\":true,"
                           "\"type\":\"subscribe\"}",
                           &m),
                     TW_PROTO_OK);
        span_eq(m.topic, "fx:EUR-USD.spot_1");
        cr_assert(m.snapshot);

        cr_assert_eq(parse("{\"type\":\"subscribe\",\"topic\":\"A\",\"snapshot\":false}", &m),
                     TW_PROTO_OK);
        cr_assert_not(m.snapshot);
}

Test(proto_parse, subscribe_since)
{
        tw_msg m;

        cr_assert_eq(parse("{\"type\":\"subscribe\",\"topic\":\"A\",\"since\":0}", &m),
                     TW_PROTO_OK);
        cr_assert(m.has_since);
        cr_assert_eq(m.since, 0);
        cr_assert_eq(parse("{\"type\":\"subscribe\",\"topic\":\"A\",\"since\":41}", &m),
                     TW_PROTO_OK);
        cr_assert_eq(m.since, 41);
        cr_assert_eq(parse("{\"type\":\"subscribe\",\"topic\":\"A\","
                           "\"since\":18446744073709551615}",
                           &m),
                     TW_PROTO_OK);
        cr_assert_eq(m.since, UINT64_MAX);
}

Test(proto_parse, subscribe_bad_fields)
{
        static const char *const bad[] = {
            "\"snapshot\":1",
            "\"snapshot\":\"true\"",
            "\"snapshot\":null",
            "\"snapshot\":[true]",
            "\"since\":-1",
            "\"since\":1.0",
            "\"since\":1e3",
            "\"since\":-0",
            "\"since\":\"5\"",
            "\"since\":null",
            "\"since\":true",
            "\"since\":{}",
            "\"since\":18446744073709551616",
            "\"since\":99999999999999999999999",
        };
        char buf[256];

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                snprintf(buf, sizeof(buf), "{\"type\":\"subscribe\",\"topic\":\"A\",%s}", bad[i]);
                cr_assert_eq(status(buf), TW_PROTO_BAD_FIELD, "%s", buf);
        }
}

Test(proto_parse, unsubscribe)
{
        tw_msg m;

        cr_assert_eq(parse("{\"type\":\"unsubscribe\",\"topic\":\"AAPL\"}", &m), TW_PROTO_OK);
        cr_assert_eq(m.type, TW_MSG_UNSUBSCRIBE);
        span_eq(m.topic, "AAPL");
        /* Subscribe-only fields are not looked at. */
        cr_assert_eq(status("{\"type\":\"unsubscribe\",\"topic\":\"A\",\"since\":\"x\"}"),
                     TW_PROTO_OK);
}

Test(proto_parse, publish_data_spans)
{
        static const char *const datas[] = {
            "1",
            "\"s\"",
            "\"with \\\"quotes\\\" and \\\\ \\n\"",
            "null",
            "[]",
            "{}",
            "{\"px\":101.25,\"qty\":[1,2,{\"a\":null}],\"s\":\"}]\"}",
            "[[[[[\"deep\"]]]]]",
            "-12.5e+10",
        };
        char buf[512];
        tw_msg m;

        for (size_t i = 0; i < sizeof(datas) / sizeof(datas[0]); i++) {
                snprintf(buf, sizeof(buf), "{\"type\":\"publish\",\"data\":%s,\"topic\":\"T\"}",
                         datas[i]);
                cr_assert_eq(parse(buf, &m), TW_PROTO_OK, "%s", buf);
                cr_assert_eq(m.type, TW_MSG_PUBLISH);
                span_eq(m.topic, "T");
                span_eq(m.data, datas[i]);
                /* The span lies inside the message, at the data's own bytes. */
                cr_assert_eq(m.data.p, copy + strlen("{\"type\":\"publish\",\"data\":"));
        }
}

Test(proto_parse, publish_missing_data)
{
        cr_assert_eq(status("{\"type\":\"publish\",\"topic\":\"T\"}"), TW_PROTO_BAD_FIELD);
        cr_assert_eq(status("{\"type\":\"publish\",\"topic\":\"T\",\"Data\":1}"),
                     TW_PROTO_BAD_FIELD);
        cr_assert_eq(status("{\"type\":\"publish\",\"topic\":\"T\",\"x\":{\"data\":1}}"),
                     TW_PROTO_BAD_FIELD);
}

/* Builds {"type":"publish","topic":"BIG","data":[{"i":0,"v":"x"},...]} with n items:
 * three tokens per item and more than the 64 the stack holds. */
static char *big_publish(int items, size_t *len)
{
        size_t cap = 64 + (size_t)items * 32;
        char *s = malloc(cap);
        size_t n = (size_t)snprintf(s, cap, "{\"type\":\"publish\",\"topic\":\"BIG\",\"data\":[");
        for (int i = 0; i < items; i++)
                n += (size_t)snprintf(s + n, cap - n, "%s{\"i\":%d,\"v\":\"x\"}", i ? "," : "", i);
        n += (size_t)snprintf(s + n, cap - n, "],\"z\":1}");
        *len = n;
        return s;
}

Test(proto_parse, big_data_uses_the_heap)
{
        size_t n;
        char *s = big_publish(5000, &n);
        tw_msg m;

        cr_assert_eq(parse_n(s, n, &m), TW_PROTO_OK);
        cr_assert_eq(m.type, TW_MSG_PUBLISH);
        span_eq(m.topic, "BIG");
        cr_assert_eq(m.data.p, copy + strlen("{\"type\":\"publish\",\"topic\":\"BIG\",\"data\":"));
        cr_assert_eq(m.data.n, n - strlen("{\"type\":\"publish\",\"topic\":\"BIG\",\"data\":") -
                                   strlen(",\"z\":1}"));
        cr_assert_eq(copy[m.data.n + (size_t)(m.data.p - copy) - 1], ']');
        free(s);
}

Test(proto_parse, keys_after_big_value_still_found)
{
        size_t cap = 1 << 16, n;
        char *s = malloc(cap);
        tw_msg m;

        n = (size_t)snprintf(s, cap, "{\"x\":[");
        for (int i = 0; i < 2000; i++)
                n += (size_t)snprintf(s + n, cap - n, "%s%d", i ? "," : "", i);
        n += (size_t)snprintf(s + n, cap - n, "],\"type\":\"ping\",\"time\":\"late\"}");
        cr_assert_eq(parse_n(s, n, &m), TW_PROTO_OK);
        span_eq(m.time, "\"late\"");
        free(s);
}

Test(proto_parse, at_the_stack_token_boundary)
{
        /* 1 object + 4 type/topic tokens + 2 data tokens + an array of k items. */
        char buf[1024];
        tw_msg m;

        for (int k = 50; k < 70; k++) {
                size_t n = (size_t)snprintf(buf, sizeof(buf),
                                            "{\"type\":\"publish\",\"topic\":\"T\",\"data\":[");
                for (int i = 0; i < k; i++)
                        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s1", i ? "," : "");
                n += (size_t)snprintf(buf + n, sizeof(buf) - n, "]}");
                cr_assert_eq(parse_n(buf, n, &m), TW_PROTO_OK, "k=%d", k);
                cr_assert_eq(m.data.n, (size_t)(2 * k + 1));
        }
}

Test(proto_parse, unknown_type)
{
        static const char *const bad[] = {
            "{}",
            "{\"topic\":\"A\"}",
            "{\"type\":\"pong\"}",
            "{\"type\":\"PING\"}",
            "{\"type\":\"ping \"}",
            "{\"type\":\"\"}",
            "{\"type\":1}",
            "{\"type\":null}",
            "{\"type\":[\"ping\"]}",
            "{\"type\":{\"ping\":1}}",
            "{\"typ\\u0065\":\"ping\"}",
            "{\"type\":\"p\\u0069ng\"}",
            "{\"x\":{\"type\":\"ping\"}}",
            "{\"Type\":\"ping\"}",
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                cr_assert_eq(status(bad[i]), TW_PROTO_UNKNOWN_TYPE, "%s", bad[i]);
}

Test(proto_parse, bad_topic)
{
        static const char *const bad[] = {
            "",
            ",\"topic\":\"\"",
            ",\"topic\":\"a b\"",
            ",\"topic\":\"a/b\"",
            ",\"topic\":\"caf\xc3\xa9\"",
            ",\"topic\":\"A\\u0041\"",
            ",\"topic\":\"A\\\\\"",
            ",\"topic\":1",
            ",\"topic\":null",
            ",\"topic\":[\"A\"]",
            ",\"topic\":{\"A\":1}",
            ",\"topic\":"
            "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"",
        };
        static const char *const types[] = {"subscribe", "unsubscribe", "publish"};
        char buf[512];

        for (size_t t = 0; t < 3; t++)
                for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                        snprintf(buf, sizeof(buf), "{\"type\":\"%s\",\"data\":1%s}", types[t],
                                 bad[i]);
                        cr_assert_eq(status(buf), TW_PROTO_BAD_TOPIC, "%s", buf);
                }
}

Test(proto_parse, topic_of_128_bytes_ok)
{
        char topic[TW_TOPIC_MAX + 1];
        char buf[512];
        tw_msg m;

        memset(topic, 'Z', TW_TOPIC_MAX);
        topic[TW_TOPIC_MAX] = '\0';
        snprintf(buf, sizeof(buf), "{\"type\":\"subscribe\",\"topic\":\"%s\"}", topic);
        cr_assert_eq(parse(buf, &m), TW_PROTO_OK);
        cr_assert_eq(m.topic.n, TW_TOPIC_MAX);
}

Test(proto_parse, not_one_object_is_bad_json)
{
        static const char *const bad[] = {
            "",
            "   ",
            "[]",
            "[{\"type\":\"ping\"}]",
            "\"ping\"",
            "1",
            "null",
            "{",
            "{\"type\":\"ping\"",
            "{\"type\":\"ping\"}}",
            "{\"type\":\"ping\"}x",
            "{\"type\":\"ping\"} {}",
            "{\"type\":\"ping\"},",
            "{\"type\":\"ping\",}",
            "{,\"type\":\"ping\"}",
            "{\"type\" \"ping\"}",
            "{\"type\":\"ping\" \"time\":1}",
            "{\"type\"::\"ping\"}",
            "{\"type\":\"ping\",\"time\"}",
            "{\"type\",\"ping\"}",
            "{type:\"ping\"}",
            "{'type':'ping'}",
            "{\"type\":\"ping\",\"time\":tru}",
            "{\"type\":\"ping\",\"time\":01}",
            "{\"type\":\"ping\",\"time\":1.}",
            "{\"type\":\"ping\",\"time\":.5}",
            "{\"type\":\"ping\",\"time\":+1}",
            "{\"type\":\"ping\",\"time\":NaN}",
            "{\"type\":\"ping\",\"time\":Infinity}",
            "{\"type\":\"ping\",\"time\":1e}",
            "{\"type\":\"ping\",\"time\":-}",
            "{\"type\":\"ping\",\"time\":truex}",
            "{\"type\":\"ping\",\"time\":nul}",
            "{\"type\":\"ping\",\"time\":[1,]}",
            "{\"type\":\"ping\",\"time\":[1 2]}",
            "{\"type\":\"ping\",\"time\":[}",
            "{\"type\":\"ping\",\"time\":\"a\tb\"}",
            "{\"type\":\"ping\",\"time\":\"\\x\"}",
            "{\"type\":\"ping\",\"time\":\"\\u12\"}",
            "{\"type\":\"ping\",\"time\":\"\\u12G4\"}",
            "{\"type\":\"ping\",\"time\":\"\xff\"}",
            "{\"type\":\"ping\",\"time\":\"\xc0\xaf\"}",
            "{\"type\":\"ping\",\"time\":\"\xed\xa0\x80\"}",
            "{\"type\":\"ping\",\"time\":\"\xe2\x82\"}",
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                cr_assert_eq(status(bad[i]), TW_PROTO_BAD_JSON, "[%s]", bad[i]);
}

Test(proto_parse, nul_byte_is_bad_json)
{
        static const char a[] = "{\"type\":\"ping\"}\0";
        static const char b[] = "{\"type\":\"ping\",\"time\":\"a\0b\"}";
        tw_msg m;

        cr_assert_eq(parse_n(a, sizeof(a) - 1, &m), TW_PROTO_BAD_JSON);
        cr_assert_eq(parse_n(b, sizeof(b) - 1, &m), TW_PROTO_BAD_JSON);
}

Test(proto_parse, duplicate_known_key_is_bad_json)
{
        cr_assert_eq(status("{\"type\":\"ping\",\"type\":\"ping\"}"), TW_PROTO_BAD_JSON);
        cr_assert_eq(status("{\"type\":\"subscribe\",\"topic\":\"A\",\"topic\":\"B\"}"),
                     TW_PROTO_BAD_JSON);
        /* Unknown keys may repeat: they are ignored. */
        cr_assert_eq(status("{\"type\":\"ping\",\"x\":1,\"x\":2}"), TW_PROTO_OK);
}

Test(proto_parse, error_precedence)
{
        /* Malformed beats everything; then the type; then the fields. */
        cr_assert_eq(status("{\"type\":\"nope\",\"topic\":\"a b\",}"), TW_PROTO_BAD_JSON);
        cr_assert_eq(status("{\"type\":\"nope\",\"topic\":\"a b\"}"), TW_PROTO_UNKNOWN_TYPE);
        cr_assert_eq(status("{\"type\":\"subscribe\",\"topic\":\"a b\",\"since\":-1}"),
                     TW_PROTO_BAD_TOPIC);
}

static char *nested(int depth, size_t *len)
{
        /* {"type":"publish","topic":"T","data": [[...1...]] } with depth-1 arrays. */
        size_t cap = (size_t)depth * 2 + 64;
        char *s = malloc(cap);
        size_t n = (size_t)snprintf(s, cap, "{\"type\":\"publish\",\"topic\":\"T\",\"data\":");
        for (int i = 1; i < depth; i++)
                s[n++] = '[';
        s[n++] = '1';
        for (int i = 1; i < depth; i++)
                s[n++] = ']';
        s[n++] = '}';
        *len = n;
        return s;
}

Test(proto_parse, deep_nesting)
{
        size_t n;
        tw_msg m;
        char *ok = nested(TW_JSON_MAX_DEPTH, &n);

        cr_assert_eq(parse_n(ok, n, &m), TW_PROTO_OK);
        cr_assert_eq(m.data.n, (size_t)(2 * (TW_JSON_MAX_DEPTH - 1) + 1));
        free(ok);

        char *over = nested(TW_JSON_MAX_DEPTH + 1, &n);
        cr_assert_eq(parse_n(over, n, &m), TW_PROTO_BAD_JSON);
        free(over);

        /* A megabyte of '[' is refused quickly and without recursion. */
        char *huge = nested(1 << 19, &n);
        cr_assert_eq(parse_n(huge, n, &m), TW_PROTO_BAD_JSON);
        free(huge);
}
