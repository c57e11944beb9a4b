/*
 * The request-head parser: results for complete heads, NEED_MORE at every split point,
 * pipelined bytes left alone, and each way a head is refused. Inputs are copied into
 * heap buffers of exactly their length so a sanitizer build catches any read past them.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tickwire/http.h"

static void rebase(tw_span *sp, const char *from, const char *to)
{
        sp->p = to + (sp->p - from);
}

static int parse_n(const char *s, size_t n, tw_http_request *req)
{
        char *copy = malloc(n ? n : 1);
        cr_assert_not_null(copy);
        memcpy(copy, s, n);
        int r = tw_http_parse_request(copy, n, req);
        /* Spans point into the copy; re-point them at the caller's string. */
        if (r > 0) {
                rebase(&req->method, copy, s);
                rebase(&req->target, copy, s);
                rebase(&req->path, copy, s);
                rebase(&req->query, copy, s);
                for (size_t i = 0; i < req->nheaders; i++) {
                        rebase(&req->headers[i].name, copy, s);
                        rebase(&req->headers[i].value, copy, s);
                }
        }
        free(copy);
        return r;
}

static int parse(const char *s, tw_http_request *req)
{
        return parse_n(s, strlen(s), req);
}

static bool span_is(tw_span s, const char *lit)
{
        return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

Test(http_parser, simple_get)
{
        const char *s = "GET /ws?token=abc&x=1 HTTP/1.1\r\n"
                        "Host: example.com\r\n"
                        "X-Empty:\r\n"
                        "X-Blanks: \t a  b \t \r\n"
                        "\r\n";
        tw_http_request req;

        cr_assert_eq(parse(s, &req), (int)strlen(s));
        cr_assert(span_is(req.method, "GET"));
        cr_assert(span_is(req.target, "/ws?token=abc&x=1"));
        cr_assert(span_is(req.path, "/ws"));
        cr_assert(span_is(req.query, "token=abc&x=1"));
        cr_assert_eq(req.minor_version, 1);
        cr_assert_eq(req.nheaders, 3);
        cr_assert(span_is(req.headers[0].name, "Host"));
        cr_assert(span_is(req.headers[0].value, "example.com"));
        cr_assert(span_is(req.headers[1].name, "X-Empty"));
        cr_assert_eq(req.headers[1].value.n, 0);
        cr_assert(span_is(req.headers[2].value, "a  b"));
}

Test(http_parser, no_query_and_http10)
{
        tw_http_request req;
        const char *s = "POST /publish HTTP/1.0\r\n\r\n";

        cr_assert_eq(parse(s, &req), (int)strlen(s));
        cr_assert(span_is(req.method, "POST"));
        cr_assert(span_is(req.path, "/publish"));
        cr_assert_eq(req.query.n, 0);
        cr_assert_eq(req.minor_version, 0);
        cr_assert_eq(req.nheaders, 0);
}

Test(http_parser, empty_query_after_question_mark)
{
        tw_http_request req;

        cr_assert_gt(parse("GET /ws? HTTP/1.1\r\n\r\n", &req), 0);
        cr_assert(span_is(req.path, "/ws"));
        cr_assert_eq(req.query.n, 0);
        cr_assert(span_is(req.target, "/ws?"));
}

Test(http_parser, bare_lf_and_mixed_line_ends)
{
        tw_http_request req;
        const char *s = "GET / HTTP/1.1\nHost: a\r\nX: y\n\r\n";

        cr_assert_eq(parse(s, &req), (int)strlen(s));
        cr_assert_eq(req.nheaders, 2);
        cr_assert(span_is(req.headers[0].value, "a"));
        cr_assert(span_is(req.headers[1].value, "y"));

        cr_assert_eq(parse("GET / HTTP/1.1\n\n", &req), 16);
}

Test(http_parser, leading_empty_lines_skipped)
{
        tw_http_request req;
        const char *s = "\r\n\nGET / HTTP/1.1\r\n\r\n";

        cr_assert_eq(parse(s, &req), (int)strlen(s));
        cr_assert(span_is(req.method, "GET"));
}

Test(http_parser, obs_text_in_value_allowed)
{
        tw_http_request req;

        cr_assert_gt(parse("GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n", &req), 0);
        cr_assert(span_is(req.headers[0].value, "caf\xc3\xa9"));
}

static char *many_headers(int n)
{
        size_t cap = 64 + (size_t)n * 32;
        char *s = malloc(cap);
        size_t len = (size_t)sprintf(s, "GET /ws HTTP/1.1\r\n");
        for (int i = 0; i < n; i++)
                len += (size_t)sprintf(s + len, "X-H%d: v%d\r\n", i, i);
        sprintf(s + len, "\r\n");
        return s;
}

/* Every strict prefix of a valid head is NEED_MORE; the whole is its length. */
static void check_all_splits(const char *s)
{
        size_t n = strlen(s);
        tw_http_request req;

        for (size_t k = 0; k < n; k++)
                cr_assert_eq(parse_n(s, k, &req), TW_HTTP_NEED_MORE, "prefix %zu of %s", k, s);
        cr_assert_eq(parse_n(s, n, &req), (int)n, "whole of %s", s);
}

Test(http_parser, every_split_point_needs_more)
{
        static const char *const heads[] = {
            "GET /ws HTTP/1.1\r\n\r\n",
            "GET /ws?token=abc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n",
            "GET / HTTP/1.0\n\n",
            "\r\n\nPOST /publish?topic=A HTTP/1.1\nContent-Length: 2\n\n",
            "GET / HTTP/1.1\r\nX-Empty:\r\nX-Tab:\tv\t\r\nX-Sp:   \r\n\r\n",
            "OPTIONS /a/b/c.d?e=f&g HTTP/1.1\r\nA: b\nC:d\r\n\n",
        };

        for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++)
                check_all_splits(heads[i]);
        char *s = many_headers(TW_HTTP_MAX_HEADERS);
        check_all_splits(s);
        free(s);
}

Test(http_parser, split_point_gives_same_result)
{
        const char *s = "GET /ws?a=1 HTTP/1.1\r\nHost: h\r\nX: y\r\n\r\n";
        size_t n = strlen(s);
        tw_http_request whole, part;

        cr_assert_eq(parse(s, &whole), (int)n);
        for (size_t k = 0; k < n; k++) {
                cr_assert_eq(parse_n(s, k, &part), TW_HTTP_NEED_MORE);
                cr_assert_eq(parse_n(s, n, &part), (int)n);
                cr_assert(span_is(part.target, "/ws?a=1"));
                cr_assert_eq(part.nheaders, whole.nheaders);
                cr_assert(span_is(part.headers[1].value, "y"));
        }
}

Test(http_parser, pipelined_bytes_not_consumed)
{
        const char *head = "POST /publish?topic=A HTTP/1.1\r\nContent-Length: 7\r\n\r\n";
        char buf[256];
        tw_http_request req;

        snprintf(buf, sizeof(buf), "%s{\"a\":1}GET / HTTP/1.1\r\nEvil: 1\r\n\r\n", head);
        cr_assert_eq(parse(buf, &req), (int)strlen(head));
        cr_assert_eq(req.nheaders, 1);

        /* A second head right behind the first: the first is reported alone. */
        snprintf(buf, sizeof(buf), "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
        cr_assert_eq(parse(buf, &req), 19);
        cr_assert(span_is(req.path, "/a"));
}

Test(http_parser, invalid_request_lines)
{
        static const char *const bad[] = {
            " GET / HTTP/1.1\r\n\r\n",           /* empty method */
            "G(T / HTTP/1.1\r\n\r\n",            /* non-token method */
            "GET  / HTTP/1.1\r\n\r\n",           /* two spaces */
            "GET\t/ HTTP/1.1\r\n\r\n",           /* tab separator */
            "GET ws HTTP/1.1\r\n\r\n",           /* not origin form */
            "GET http://h/ws HTTP/1.1\r\n\r\n",  /* absolute form */
            "GET * HTTP/1.1\r\n\r\n",            /* asterisk form */
            "CONNECT h:443 HTTP/1.1\r\n\r\n",    /* authority form */
            "GET /w\x01s HTTP/1.1\r\n\r\n",      /* control char in target */
            "GET /w\x7fs HTTP/1.1\r\n\r\n",      /* DEL in target */
            "GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", /* raw non-ASCII in target */
            "GET /ws\r\n\r\n",                   /* HTTP/0.9: no version */
            "GET /ws \r\n\r\n",                  /* empty version */
            "GET /ws HTTP/2.0\r\n\r\n",
            "GET /ws HTTP/1.2\r\n\r\n",
            "GET /ws HTTP/1.10\r\n\r\n",
            "GET /ws http/1.1\r\n\r\n",
            "GET /ws HTTP/1.1 \r\n\r\n",   /* trailing space */
            "GET /ws HTTP/1.1\rX\r\n\r\n", /* CR not followed by LF */
            "GET /w s HTTP/1.1\r\n\r\n",   /* space in target */
        };
        tw_http_request req;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                cr_assert_eq(parse(bad[i], &req), TW_HTTP_INVALID, "%s", bad[i]);
}

Test(http_parser, invalid_header_lines)
{
        static const char *const bad[] = {
            "Host : x\r\n", /* whitespace before the colon */
            "Host\t: x\r\n",
            ": x\r\n",      /* empty name */
            "Ho(st: x\r\n", /* non-token name */
            "Host x\r\n",   /* no colon */
            "Host\r\n",     /* no colon, line ends */
            "X: a\x01"
            "b\r\n", /* control char */
            "X: a\x7f"
            "b\r\n",                   /* DEL */
            "X: a\rb\r\n",             /* bare CR inside */
            "X: a\r\r\n",              /* CR CR LF */
            "X: a\r\n continued\r\n",  /* obsolete folding, SP */
            "X: a\r\n\tcontinued\r\n", /* obsolete folding, HTAB */
            "X: a\r\n\r\r\n",          /* the final empty line with a bare CR */
        };
        tw_http_request req;
        char buf[256];

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nA: b\r\n%s\r\n", bad[i]);
                cr_assert_eq(parse(buf, &req), TW_HTTP_INVALID, "%s", bad[i]);
        }
        /* The first header line folded onto the request line. */
        cr_assert_eq(parse("GET / HTTP/1.1\r\n x: y\r\n\r\n", &req), TW_HTTP_INVALID);
}

Test(http_parser, nul_bytes_are_invalid)
{
        static const char in_value[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
        static const char in_target[] = "GET /a\0 HTTP/1.1\r\n\r\n";
        static const char in_method[] = "G\0T / HTTP/1.1\r\n\r\n";
        tw_http_request req;

        cr_assert_eq(parse_n(in_value, sizeof(in_value) - 1, &req), TW_HTTP_INVALID);
        cr_assert_eq(parse_n(in_target, sizeof(in_target) - 1, &req), TW_HTTP_INVALID);
        cr_assert_eq(parse_n(in_method, sizeof(in_method) - 1, &req), TW_HTTP_INVALID);
}

Test(http_parser, invalid_reported_before_the_head_completes)
{
        tw_http_request req;

        cr_assert_eq(parse("GET ws", &req), TW_HTTP_INVALID);
        cr_assert_eq(parse("GET / HTTP/2", &req), TW_HTTP_INVALID);
        cr_assert_eq(parse("GET / HTTP/1.1\r\nHost :", &req), TW_HTTP_INVALID);
}

Test(http_parser, too_many_headers)
{
        tw_http_request req;
        char *ok = many_headers(TW_HTTP_MAX_HEADERS);
        char *over = many_headers(TW_HTTP_MAX_HEADERS + 1);
        char *far_over = many_headers(100);

        cr_assert_eq(parse(ok, &req), (int)strlen(ok));
        cr_assert_eq(req.nheaders, TW_HTTP_MAX_HEADERS);
        cr_assert_eq(parse(over, &req), TW_HTTP_TOO_LARGE);
        cr_assert_eq(parse(far_over, &req), TW_HTTP_TOO_LARGE);
        /* Known as soon as the 33rd line starts. */
        size_t cut = strlen(ok) - 2 + 1;
        cr_assert_eq(parse_n(over, cut, &req), TW_HTTP_TOO_LARGE);
        free(ok);
        free(over);
        free(far_over);
}

/* A head of exactly `total` bytes: one long header value pads it out. */
static char *head_of_size(size_t total)
{
        const char *pre = "GET / HTTP/1.1\r\nX: ";
        const char *post = "\r\n\r\n";
        size_t fill = total - strlen(pre) - strlen(post);
        char *s = malloc(total + 1);
        size_t n = 0;

        memcpy(s, pre, strlen(pre));
        n += strlen(pre);
        memset(s + n, 'a', fill);
        n += fill;
        memcpy(s + n, post, strlen(post) + 1);
        return s;
}

Test(http_parser, head_size_limit)
{
        tw_http_request req;
        char *fits = head_of_size(TW_HTTP_MAX_HEAD);
        char *over = head_of_size(TW_HTTP_MAX_HEAD + 1);
        char *huge = head_of_size(3 * TW_HTTP_MAX_HEAD);

        cr_assert_eq(parse(fits, &req), TW_HTTP_MAX_HEAD);
        cr_assert_eq(parse_n(fits, TW_HTTP_MAX_HEAD - 1, &req), TW_HTTP_NEED_MORE);
        cr_assert_eq(parse(over, &req), TW_HTTP_TOO_LARGE);
        cr_assert_eq(parse_n(over, TW_HTTP_MAX_HEAD - 1, &req), TW_HTTP_NEED_MORE);
        cr_assert_eq(parse_n(over, TW_HTTP_MAX_HEAD, &req), TW_HTTP_TOO_LARGE);
        cr_assert_eq(parse_n(huge, 5000, &req), TW_HTTP_NEED_MORE);
        cr_assert_eq(parse(huge, &req), TW_HTTP_TOO_LARGE);
        free(fits);
        free(over);
        free(huge);
}

Test(http_parser, endless_blank_lines_are_too_large)
{
        char *s = malloc(TW_HTTP_MAX_HEAD + 2);
        tw_http_request req;

        for (size_t i = 0; i < TW_HTTP_MAX_HEAD + 2; i += 2)
                memcpy(s + i, "\r\n", 2);
        cr_assert_eq(parse_n(s, TW_HTTP_MAX_HEAD - 2, &req), TW_HTTP_NEED_MORE);
        cr_assert_eq(parse_n(s, TW_HTTP_MAX_HEAD + 2, &req), TW_HTTP_TOO_LARGE);
        free(s);
}
