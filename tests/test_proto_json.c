/*
 * tw_json_valid, the gate for POST /publish bodies: exactly one JSON value of any type,
 * strict RFC 8259 grammar (which jsmn alone does not enforce), well-formed UTF-8, bounded
 * nesting. Inputs are copied to exact-size heap buffers to catch over-reads.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tickwire/proto.h"

static bool valid_n(const char *s, size_t n)
{
        char *copy = malloc(n ? n : 1);
        cr_assert_not_null(copy);
        memcpy(copy, s, n);
        bool r = tw_json_valid(copy, n);
        free(copy);
        return r;
}

static bool valid(const char *s)
{
        return valid_n(s, strlen(s));
}

Test(proto_json, valid_values)
{
        static const char *const ok[] = {
            "0",
            "-0",
            "1",
            "-1",
            "123",
            "1.5",
            "1.5e3",
            "1E3",
            "1e+3",
            "1e-3",
            "-0.0e0",
            "0.000001",
            "12345678901234567890123456789",
            "true",
            "false",
            "null",
            "\"\"",
            "\"a\"",
            "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"",
            "\"\\u0000\\uFFFF\\uabcd\"",
            "\"\\ud800\"",
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"",
            "\"\x7f\"",
            "[]",
            "{}",
            "[ ]",
            "{ }",
            "[1,2,3]",
            "{\"a\":1,\"b\":[true,null]}",
            " \t\r\n{\"a\" : { \"b\" : [ ] } }\n ",
            "[[],[[]],{}]",
            "{\"\":\"\"}",
            "{\"a\":1,\"a\":2}",
        };

        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
                cr_assert(valid(ok[i]), "[%s]", ok[i]);
}

Test(proto_json, invalid_values)
{
        static const char *const bad[] = {
            "",
            " ",
            "tru",
            "True",
            "nul",
            "NULL",
            "falsey",
            "01",
            "-01",
            "00",
            "1.",
            ".5",
            "+1",
            "-",
            "1e",
            "1e+",
            "1.e3",
            "0x10",
            "NaN",
            "Infinity",
            "-Infinity",
            "1 2",
            "1,",
            "\"a\" \"b\"",
            "{}{}",
            "[]]",
            "[",
            "]",
            "{",
            "}",
            "[1,]",
            "[,1]",
            "[1 2]",
            "[1,,2]",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "{,}",
            "{1:1}",
            "{\"a\":1 \"b\":2}",
            "{\"a\"::1}",
            "{[]:1}",
            "{'a':1}",
            "'a'",
            "\"abc",
            "\"\\\"",
            "\"\\a\"",
            "\"\\x41\"",
            "\"\\u\"",
            "\"\\u123\"",
            "\"\\u12g4\"",
            "\"\\U1234\"",
            "\"tab\there\"",
            "\"nl\nhere\"",
            "\"\x1f\"",
            "[1]x",
            "[1] x",
            "\xef\xbb\xbf[]",
            "/*c*/1",
            "1 //c",
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                cr_assert_not(valid(bad[i]), "[%s]", bad[i]);
}

Test(proto_json, utf8_in_strings)
{
        static const char *const bad[] = {
            "\"\x80\"",             /* lone continuation */
            "\"\xc0\x80\"",         /* overlong NUL */
            "\"\xc1\xbf\"",         /* overlong */
            "\"\xe0\x80\xaf\"",     /* overlong 3-byte */
            "\"\xf0\x80\x80\xaf\"", /* overlong 4-byte */
            "\"\xed\xa0\x80\"",     /* surrogate U+D800 */
            "\"\xed\xbf\xbf\"",     /* surrogate U+DFFF */
            "\"\xf4\x90\x80\x80\"", /* past U+10FFFF */
            "\"\xf5\x80\x80\x80\"",
            "\"\xff\"",
            "\"\xe2\x82\"", /* truncated */
            "\"\xe2\x82",   /* truncated at the end of input */
            "\"\xf0\x9f\x98\"",
            "\"\xc3\"",
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                cr_assert_not(valid(bad[i]), "case %zu", i);
        cr_assert(valid("\"\xed\x9f\xbf\""));     /* U+D7FF, just below the surrogates */
        cr_assert(valid("\"\xee\x80\x80\""));     /* U+E000, just above */
        cr_assert(valid("\"\xf0\x90\x80\x80\"")); /* U+10000 */
}

Test(proto_json, nul_bytes)
{
        cr_assert_not(valid_n("1\0", 2));
        cr_assert_not(valid_n("\"a\0\"", 4));
        cr_assert_not(valid_n("\0", 1));
        cr_assert(valid_n("12", 2));
}

Test(proto_json, every_truncation_of_a_value_is_invalid)
{
        const char *s = "{\"a\":[1,-2.5e3,\"x\\\"\\u0041\",true,false,null,{}],\"b\":{\"c\":[]}}";
        size_t n = strlen(s);

        for (size_t k = 0; k < n; k++)
                cr_assert_not(valid_n(s, k), "prefix %zu", k);
        cr_assert(valid_n(s, n));
}

static char *nest(size_t depth, char open, char close)
{
        char *s = malloc(2 * depth + 1);
        memset(s, open, depth);
        memset(s + depth, close, depth);
        s[2 * depth] = '\0';
        return s;
}

Test(proto_json, nesting_depth)
{
        char *ok = nest(TW_JSON_MAX_DEPTH, '[', ']');
        char *over = nest(TW_JSON_MAX_DEPTH + 1, '[', ']');
        char *huge = nest(1 << 20, '[', ']');

        cr_assert(valid(ok));
        cr_assert_not(valid(over));
        cr_assert_not(valid(huge));
        free(ok);
        free(over);
        free(huge);

        /* Objects count the same. */
        size_t cap = TW_JSON_MAX_DEPTH * 8 + 8;
        char *obj = malloc(cap);
        size_t n = 0;
        for (int i = 0; i < TW_JSON_MAX_DEPTH; i++)
                n += (size_t)snprintf(obj + n, cap - n, "{\"a\":");
        obj[n++] = '1';
        for (int i = 0; i < TW_JSON_MAX_DEPTH; i++)
                obj[n++] = '}';
        cr_assert(valid_n(obj, n));
        free(obj);
}

Test(proto_json, large_flat_value)
{
        size_t items = 200000;
        char *s = malloc(items * 2 + 2);
        size_t n = 0;

        s[n++] = '[';
        for (size_t i = 0; i < items; i++) {
                s[n++] = '7';
                s[n++] = i + 1 < items ? ',' : ']';
        }
        cr_assert(valid_n(s, n));
        free(s);
}
