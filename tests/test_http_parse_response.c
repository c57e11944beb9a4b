/*
 * The response-head parser (tw_http_parse_response), as a client reads a 101: the fields
 * of a complete head, NEED_MORE at every split point and the same result once whole, the
 * first frames after the head left alone, case-insensitive lookup, and each way a status
 * line or a head is refused. Inputs are copied into heap buffers of exactly their length
 * so a sanitizer build catches any read past them.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tickwire/http.h"

#define UPGRADE_101                                                                                \
        "HTTP/1.1 101 Switching Protocols\r\n"                                                     \
        "Upgrade: websocket\r\n"                                                                   \
        "Connection: Upgrade\r\n"                                                                  \
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"                                   \
        "\r\n"

/* The copy the last parse ran over: spans point into it until the next parse. */
static char *copy;

static void drop_copy(void)
{
        free(copy);
        copy = NULL;
}

TestSuite(http_parse_response, .fini = drop_copy);

static int parse_n(const char *s, size_t n, tw_http_response *resp)
{
        drop_copy();
        copy = malloc(n ? n : 1);
        cr_assert_not_null(copy);
        memcpy(copy, s, n);
        return tw_http_parse_response(copy, n, resp);
}

static int parse(const char *s, tw_http_response *resp)
{
        return parse_n(s, strlen(s), resp);
}

static void span_is(tw_span sp, const char *want)
{
        cr_assert_eq(sp.n, strlen(want), "span '%.*s' is not '%s'", (int)sp.n, sp.p, want);
        cr_assert_eq(memcmp(sp.p, want, sp.n), 0, "span '%.*s' is not '%s'", (int)sp.n, sp.p, want);
}

Test(http_parse_response, upgrade_101)
{
        tw_http_response resp;

        cr_assert_eq(parse(UPGRADE_101, &resp), (int)strlen(UPGRADE_101));
        cr_assert_eq(resp.minor_version, 1);
        cr_assert_eq(resp.status, 101);
        span_is(resp.reason, "Switching Protocols");
        cr_assert_eq(resp.nheaders, 3);
        span_is(resp.headers[0].name, "Upgrade");
        span_is(resp.headers[0].value, "websocket");
        span_is(resp.headers[2].name, "Sec-WebSocket-Accept");
        span_is(resp.headers[2].value, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

Test(http_parse_response, header_lookup_ignores_case)
{
        tw_http_response resp;

        cr_assert_gt(parse(UPGRADE_101, &resp), 0);
        const tw_span *v = tw_http_response_header(&resp, "sec-websocket-accept");
        cr_assert_not_null(v);
        span_is(*v, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        cr_assert_eq(tw_http_response_header(&resp, "SEC-WEBSOCKET-ACCEPT"), v);
        cr_assert_null(tw_http_response_header(&resp, "sec-websocket-protocol"));
        cr_assert_null(tw_http_response_header(&resp, "upgrad"));
}

Test(http_parse_response, first_header_of_a_name_wins)
{
        tw_http_response resp;

        cr_assert_gt(parse("HTTP/1.1 200 OK\r\nX-A: 1\r\nx-a: 2\r\n\r\n", &resp), 0);
        span_is(*tw_http_response_header(&resp, "x-a"), "1");
}

Test(http_parse_response, values_trimmed_and_bare_lf)
{
        tw_http_response resp;

        cr_assert_gt(parse("HTTP/1.0 503 Service Unavailable\nRetry-After: \t 5 \t\n\n", &resp), 0);
        cr_assert_eq(resp.minor_version, 0);
        cr_assert_eq(resp.status, 503);
        span_is(resp.headers[0].value, "5");
}

Test(http_parse_response, empty_reason_with_or_without_space)
{
        tw_http_response resp;

        cr_assert_eq(parse("HTTP/1.1 101\r\n\r\n", &resp), 16);
        cr_assert_eq(resp.status, 101);
        cr_assert_eq(resp.reason.n, 0);
        cr_assert_eq(parse("HTTP/1.1 404 \r\n\r\n", &resp), 17);
        cr_assert_eq(resp.status, 404);
        cr_assert_eq(resp.reason.n, 0);
        cr_assert_gt(parse("HTTP/1.1 200 Fine \t by me\r\n\r\n", &resp), 0);
        span_is(resp.reason, "Fine \t by me");
}

Test(http_parse_response, no_headers)
{
        tw_http_response resp;

        cr_assert_eq(parse("HTTP/1.1 204 No Content\r\n\r\n", &resp), 27);
        cr_assert_eq(resp.nheaders, 0);
        cr_assert_null(tw_http_response_header(&resp, "content-length"));
}

/* The loadgen's case: the server's first frames arrive in the same read as the 101. */
Test(http_parse_response, frames_after_the_head_left_alone)
{
        static const char in[] = UPGRADE_101 "\x81\x05hello";
        tw_http_response resp;

        cr_assert_eq(parse_n(in, sizeof(in) - 1, &resp), (int)strlen(UPGRADE_101));
        /* Garbage after the head is not the parser's business either. */
        cr_assert_eq(parse(UPGRADE_101 "\r\r\r\0", &resp), (int)strlen(UPGRADE_101));
}

Test(http_parse_response, every_split_point_needs_more)
{
        const size_t n = strlen(UPGRADE_101);
        tw_http_response resp;

        for (size_t k = 0; k < n; k++)
                cr_assert_eq(parse_n(UPGRADE_101, k, &resp), TW_HTTP_NEED_MORE,
                             "prefix of %zu bytes", k);
        cr_assert_eq(parse_n(UPGRADE_101, n, &resp), (int)n);
}

/* Fed as a byte-at-a-time client would see it: the buffer grows one byte per read and the
 * parser is re-run over all of it; the result once whole is the same as in one go. */
Test(http_parse_response, byte_at_a_time_same_result)
{
        static const char in[] = "HTTP/1.1 101 OK\nUpgrade: websocket\r\nA:\r\n\n";
        const size_t n = sizeof(in) - 1;
        tw_http_response resp;
        int r = TW_HTTP_NEED_MORE;
        size_t have = 0;

        while (r == TW_HTTP_NEED_MORE && have < n)
                r = parse_n(in, ++have, &resp);
        cr_assert_eq(r, (int)n);
        cr_assert_eq(have, n);
        cr_assert_eq(resp.status, 101);
        cr_assert_eq(resp.nheaders, 2);
        span_is(resp.headers[1].name, "A");
        cr_assert_eq(resp.headers[1].value.n, 0);
}

Test(http_parse_response, bad_status_lines)
{
        static const char *const bad[] = {
            "HTTP/2 101 Switching Protocols\r\n\r\n",   /* not 1.x */
            "HTTP/1.2 101 Switching Protocols\r\n\r\n", /* no such minor */
            "http/1.1 101 Switching Protocols\r\n\r\n", /* the name is case-sensitive */
            "HTTP/1.1  101 Switching Protocols\r\n\r\n",
            "HTTP/1.1\t101 Switching Protocols\r\n\r\n",
            "HTTP/1.1 10 Switching Protocols\r\n\r\n",   /* two digits */
            "HTTP/1.1 1010 Switching Protocols\r\n\r\n", /* four */
            "HTTP/1.1 1x1 Switching Protocols\r\n\r\n",
            "HTTP/1.1 -01 Switching Protocols\r\n\r\n",
            "HTTP/1.1 099 Below 100\r\n\r\n",
            "HTTP/1.1 101 Bad\x01reason\r\n\r\n", /* a control byte */
            "HTTP/1.1 101 Bad\rreason\r\n\r\n",   /* a bare CR */
            "HTTP/1.1 101\r\r\n\r\n",
            "\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n", /* no empty lines first */
            " HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n", /* a request */
        };
        tw_http_response resp;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                cr_assert_eq(parse(bad[i], &resp), TW_HTTP_INVALID, "case %zu: %s", i, bad[i]);
}

Test(http_parse_response, bad_header_lines)
{
        static const char *const bad[] = {
            "HTTP/1.1 101 OK\r\nUpgrade : websocket\r\n\r\n", /* blank before the colon */
            "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n folded\r\n\r\n",
            "HTTP/1.1 101 OK\r\n: no name\r\n\r\n",
            "HTTP/1.1 101 OK\r\nNo colon\r\n\r\n",
            "HTTP/1.1 101 OK\r\nA: b\rc\r\n\r\n",
            "HTTP/1.1 101 OK\r\nA: b\x7f\r\n\r\n",
        };
        tw_http_response resp;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                cr_assert_eq(parse(bad[i], &resp), TW_HTTP_INVALID, "case %zu", i);
}

/* Judged as soon as the offending byte is seen, not when the head completes. */
Test(http_parse_response, invalid_before_the_head_completes)
{
        tw_http_response resp;

        cr_assert_eq(parse("HTTP/1.1 1x", &resp), TW_HTTP_INVALID);
        cr_assert_eq(parse("HTTP/1.1 101 OK\r\nA : b", &resp), TW_HTTP_INVALID);
        cr_assert_eq(parse("HTTP/3", &resp), TW_HTTP_INVALID);
}

Test(http_parse_response, nul_bytes_are_invalid)
{
        static const char a[] = "HTTP/1.1 101 O\0K\r\n\r\n";
        static const char b[] = "HTTP/1.1 101 OK\r\nA: \0\r\n\r\n";
        tw_http_response resp;

        cr_assert_eq(parse_n(a, sizeof(a) - 1, &resp), TW_HTTP_INVALID);
        cr_assert_eq(parse_n(b, sizeof(b) - 1, &resp), TW_HTTP_INVALID);
}

Test(http_parse_response, too_many_headers)
{
        char in[2048];
        size_t n = (size_t)snprintf(in, sizeof(in), "HTTP/1.1 101 OK\r\n");
        tw_http_response resp;

        for (int i = 0; i < TW_HTTP_MAX_HEADERS; i++)
                n += (size_t)snprintf(in + n, sizeof(in) - n, "H%d: v\r\n", i);
        cr_assert_eq(parse_n(in, n, &resp), TW_HTTP_NEED_MORE);
        memcpy(in + n, "\r\n", 2);
        cr_assert_eq(parse_n(in, n + 2, &resp), (int)(n + 2));
        cr_assert_eq(resp.nheaders, TW_HTTP_MAX_HEADERS);
        n += (size_t)snprintf(in + n, sizeof(in) - n, "One: more\r\n\r\n");
        cr_assert_eq(parse_n(in, n, &resp), TW_HTTP_TOO_LARGE);
}

/* A head of exactly TW_HTTP_MAX_HEAD bytes parses; one byte more, or that many bytes
 * without the end of the head, is too large, never "need more" forever. */
Test(http_parse_response, oversize)
{
        static char in[TW_HTTP_MAX_HEAD + 64];
        const char *start = "HTTP/1.1 101 OK\r\nX: ";
        tw_http_response resp;
        size_t n = strlen(start);

        memcpy(in, start, n);
        memset(in + n, 'a', TW_HTTP_MAX_HEAD - n - 4);
        memcpy(in + TW_HTTP_MAX_HEAD - 4, "\r\n\r\n", 4);
        cr_assert_eq(parse_n(in, TW_HTTP_MAX_HEAD, &resp), TW_HTTP_MAX_HEAD);
        cr_assert_eq(resp.headers[0].value.n, TW_HTTP_MAX_HEAD - n - 4);

        memset(in + n, 'a', TW_HTTP_MAX_HEAD - n - 3);
        memcpy(in + TW_HTTP_MAX_HEAD - 3, "\r\n\r\n", 4);
        cr_assert_eq(parse_n(in, TW_HTTP_MAX_HEAD + 1, &resp), TW_HTTP_TOO_LARGE);

        memset(in + n, 'a', sizeof(in) - n);
        cr_assert_eq(parse_n(in, TW_HTTP_MAX_HEAD - 1, &resp), TW_HTTP_NEED_MORE);
        cr_assert_eq(parse_n(in, TW_HTTP_MAX_HEAD, &resp), TW_HTTP_TOO_LARGE);
        cr_assert_eq(parse_n(in, sizeof(in), &resp), TW_HTTP_TOO_LARGE);
}
