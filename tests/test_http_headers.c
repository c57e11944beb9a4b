/*
 * Header lookups over a parsed head: case-insensitive names, comma-separated token lists
 * spread over several lines, query parameters and the Content-Length rules.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "tickwire/http.h"

static tw_http_request req;

static void parse_ok(const char *s)
{
        cr_assert_eq(tw_http_parse_request(s, strlen(s), &req), (int)strlen(s), "%s", s);
}

static bool span_is(tw_span s, const char *lit)
{
        return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

Test(http_headers, get_is_case_insensitive_and_first_wins)
{
        parse_ok("GET / HTTP/1.1\r\nHOST: a\r\nx-thing: 1\r\nX-Thing: 2\r\n\r\n");

        const tw_span *v = tw_http_header_get(&req, "host");
        cr_assert_not_null(v);
        cr_assert(span_is(*v, "a"));
        v = tw_http_header_get(&req, "X-THING");
        cr_assert_not_null(v);
        cr_assert(span_is(*v, "1"));
        cr_assert_null(tw_http_header_get(&req, "X-Thin"));
        cr_assert_null(tw_http_header_get(&req, "X-Things"));
        cr_assert_null(tw_http_header_get(&req, "Missing"));
}

Test(http_headers, token_lists)
{
        parse_ok("GET / HTTP/1.1\r\n"
                 "Connection: keep-alive, Upgrade\r\n"
                 "Upgrade: websocket\r\n"
                 "X-List: ,,  a ,\tB\t, ,c d,\r\n"
                 "X-Split: one\r\n"
                 "X-Split: two,three\r\n"
                 "\r\n");

        cr_assert(tw_http_header_has_token(&req, "connection", "upgrade"));
        cr_assert(tw_http_header_has_token(&req, "Connection", "KEEP-ALIVE"));
        cr_assert_not(tw_http_header_has_token(&req, "Connection", "close"));
        cr_assert_not(tw_http_header_has_token(&req, "Connection", "keep"));
        cr_assert_not(tw_http_header_has_token(&req, "Connection", "alive, Upgrade"));
        cr_assert(tw_http_header_has_token(&req, "upgrade", "WebSocket"));
        cr_assert(tw_http_header_has_token(&req, "x-list", "a"));
        cr_assert(tw_http_header_has_token(&req, "x-list", "b"));
        cr_assert(tw_http_header_has_token(&req, "x-list", "c d"));
        cr_assert_not(tw_http_header_has_token(&req, "x-list", "c"));
        cr_assert_not(tw_http_header_has_token(&req, "x-list", ""));
        cr_assert(tw_http_header_has_token(&req, "x-split", "one"));
        cr_assert(tw_http_header_has_token(&req, "x-split", "three"));
        cr_assert_not(tw_http_header_has_token(&req, "missing", "one"));
}

Test(http_headers, token_in_substring_does_not_match)
{
        parse_ok("GET / HTTP/1.1\r\nConnection: upgrade-please, notupgrade\r\n\r\n");
        cr_assert_not(tw_http_header_has_token(&req, "connection", "upgrade"));
}

static bool q(const char *query, const char *name, const char *want)
{
        tw_span v = {NULL, 99};
        bool found = tw_http_query_get((tw_span){query, strlen(query)}, name, &v);
        if (!want)
                return !found;
        return found && span_is(v, want);
}

Test(http_headers, query_lookup)
{
        cr_assert(q("token=abc", "token", "abc"));
        cr_assert(q("a=1&token=abc&b=2", "token", "abc"));
        cr_assert(q("a=1&b=2", "b", "2"));
        cr_assert(q("tok=1&token=2", "token", "2"));
        cr_assert(q("tokenx=1&token=2", "token", "2"));
        cr_assert(q("xtoken=1", "token", NULL));
        cr_assert(q("token=1&token=2", "token", "1"));
        cr_assert(q("token=", "token", ""));
        cr_assert(q("token", "token", ""));
        cr_assert(q("token&x=1", "token", ""));
        cr_assert(q("&&token=a&&", "token", "a"));
        cr_assert(q("token=a=b", "token", "a=b"));
        cr_assert(q("token=%41", "token", "%41"));
        cr_assert(q("=x", "token", NULL));
        cr_assert(q("", "token", NULL));
        cr_assert(q("a=1", "", NULL));
        cr_assert(q("Token=1", "token", NULL));
        cr_assert(q("topic=AAPL", "topic", "AAPL"));
}

Test(http_headers, query_from_parsed_target)
{
        tw_span v;

        parse_ok("POST /publish?topic=AAPL&token=s3cret HTTP/1.1\r\n\r\n");
        cr_assert(tw_http_query_get(req.query, "topic", &v));
        cr_assert(span_is(v, "AAPL"));
        cr_assert(tw_http_query_get(req.query, "token", &v));
        cr_assert(span_is(v, "s3cret"));

        parse_ok("GET /ws HTTP/1.1\r\n\r\n");
        cr_assert_not(tw_http_query_get(req.query, "token", &v));
}

static int64_t cl(const char *headers)
{
        char buf[512];
        snprintf(buf, sizeof(buf), "POST /publish HTTP/1.1\r\n%s\r\n", headers);
        cr_assert_gt(tw_http_parse_request(buf, strlen(buf), &req), 0, "%s", headers);
        return tw_http_content_length(&req);
}

Test(http_headers, content_length)
{
        cr_assert_eq(cl(""), 0);
        cr_assert_eq(cl("Host: x\r\n"), 0);
        cr_assert_eq(cl("Content-Length: 0\r\n"), 0);
        cr_assert_eq(cl("Content-Length: 42\r\n"), 42);
        cr_assert_eq(cl("content-length:   42  \r\n"), 42);
        cr_assert_eq(cl("Content-Length: 007\r\n"), 7);
        cr_assert_eq(cl("Content-Length: 42\r\nContent-Length: 42\r\n"), 42);
        cr_assert_eq(cl("Content-Length: 9223372036854775807\r\n"), INT64_MAX);
}

Test(http_headers, content_length_malformed)
{
        cr_assert_eq(cl("Content-Length:\r\n"), -1);
        cr_assert_eq(cl("Content-Length: -1\r\n"), -1);
        cr_assert_eq(cl("Content-Length: +1\r\n"), -1);
        cr_assert_eq(cl("Content-Length: 1 2\r\n"), -1);
        cr_assert_eq(cl("Content-Length: 0x10\r\n"), -1);
        cr_assert_eq(cl("Content-Length: 1e3\r\n"), -1);
        cr_assert_eq(cl("Content-Length: 42, 42\r\n"), -1);
        cr_assert_eq(cl("Content-Length: 9223372036854775808\r\n"), -1);
        cr_assert_eq(cl("Content-Length: 99999999999999999999999\r\n"), -1);
        cr_assert_eq(cl("Content-Length: 42\r\nContent-Length: 43\r\n"), -1);
        cr_assert_eq(cl("Content-Length: 42\r\nContent-Length: x\r\n"), -1);
        cr_assert_eq(cl("Transfer-Encoding: chunked\r\n"), -1);
        cr_assert_eq(cl("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), -1);
        cr_assert_eq(cl("transfer-encoding: identity\r\nContent-Length: 5\r\n"), -1);
}
