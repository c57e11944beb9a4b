/*
 * The RFC 6455 4.2.1 upgrade checks (which request gets 0, 426 or 400), the
 * Sec-WebSocket-Accept computation and the 101 response.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "tickwire/http.h"

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

/* Builds "<line>\r\n" + the standard upgrade headers, with `drop` (a header name
 * prefix) left out and `add` appended. */
static int check(const char *line, const char *drop, const char *add, tw_span *key)
{
        static const char *const std[] = {
            "Host: example.com\r\n",         "Upgrade: websocket\r\n",
            "Connection: Upgrade\r\n",       "Sec-WebSocket-Key: " KEY "\r\n",
            "Sec-WebSocket-Version: 13\r\n",
        };
        static char buf[1024];
        tw_http_request req;
        size_t n = (size_t)snprintf(buf, sizeof(buf), "%s\r\n", line);

        for (size_t i = 0; i < sizeof(std) / sizeof(std[0]); i++)
                if (!drop || strncmp(std[i], drop, strlen(drop)) != 0)
                        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s", std[i]);
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\r\n", add ? add : "");
        cr_assert_eq(tw_http_parse_request(buf, n, &req), (int)n, "%s", buf);
        tw_span dummy;
        return tw_http_check_upgrade(&req, key ? key : &dummy);
}

static int with(const char *drop, const char *add)
{
        return check("GET /ws HTTP/1.1", drop, add, NULL);
}

Test(http_upgrade, valid_upgrade)
{
        tw_span key = {NULL, 0};

        cr_assert_eq(check("GET /ws HTTP/1.1", NULL, NULL, &key), 0);
        cr_assert_eq(key.n, strlen(KEY));
        cr_assert_eq(memcmp(key.p, KEY, key.n), 0);
}

Test(http_upgrade, accepted_variants)
{
        cr_assert_eq(with("Upgrade:", "Upgrade: WebSocket\r\n"), 0);
        cr_assert_eq(with("Upgrade:", "upgrade: h2c, websocket\r\n"), 0);
        cr_assert_eq(with("Connection:", "Connection: keep-alive, Upgrade\r\n"), 0);
        cr_assert_eq(with("Connection:", "connection: UPGRADE\r\n"), 0);
        cr_assert_eq(with("Connection:", "Connection: keep-alive\r\nConnection: upgrade\r\n"), 0);
        cr_assert_eq(with("Sec-WebSocket-Version:", "Sec-WebSocket-Version:   13  \r\n"), 0);
        cr_assert_eq(with("Sec-WebSocket-Key:", "sec-websocket-key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"),
                     0);
        cr_assert_eq(with(NULL, "Sec-WebSocket-Protocol: x\r\nOrigin: http://a\r\n"), 0);
}

Test(http_upgrade, not_an_upgrade_is_426)
{
        cr_assert_eq(with("Upgrade:", NULL), 426);
        cr_assert_eq(with("Upgrade:", "Upgrade: h2c\r\n"), 426);
        cr_assert_eq(with("Upgrade:", "Upgrade: websocket2\r\n"), 426);
        cr_assert_eq(with("Upgrade:", "X-Upgrade: websocket\r\n"), 426);
        /* A plain GET with nothing WebSocket about it. */
        tw_http_request req;
        tw_span key;
        const char *s = "GET /ws HTTP/1.1\r\nHost: a\r\n\r\n";
        cr_assert_gt(tw_http_parse_request(s, strlen(s), &req), 0);
        cr_assert_eq(tw_http_check_upgrade(&req, &key), 426);
}

Test(http_upgrade, wrong_method_or_version_is_400)
{
        cr_assert_eq(check("POST /ws HTTP/1.1", NULL, NULL, NULL), 400);
        cr_assert_eq(check("get /ws HTTP/1.1", NULL, NULL, NULL), 400);
        cr_assert_eq(check("HEAD /ws HTTP/1.1", NULL, NULL, NULL), 400);
        cr_assert_eq(check("GETS /ws HTTP/1.1", NULL, NULL, NULL), 400);
        cr_assert_eq(check("GET /ws HTTP/1.0", NULL, NULL, NULL), 400);
}

Test(http_upgrade, missing_connection_upgrade_is_400)
{
        cr_assert_eq(with("Connection:", NULL), 400);
        cr_assert_eq(with("Connection:", "Connection: keep-alive\r\n"), 400);
        cr_assert_eq(with("Connection:", "Connection: upgraded\r\n"), 400);
        cr_assert_eq(with("Connection:", "Connection: close\r\n"), 400);
}

Test(http_upgrade, bad_key_is_400)
{
        static const char *const bad[] = {
            "",
            "dGhlIHNhbXBsZSBub25jZQ",       /* no padding */
            "dGhlIHNhbXBsZSBub25jZQ=",      /* short padding */
            "dGhlIHNhbXBsZSBub25jZQ===",    /* 25 chars */
            "dGhlIHNhbXBsZSBub25j",         /* 15 bytes */
            "dGhlIHNhbXBsZSBub25jZSE=",     /* 17 bytes */
            "dGhlIHNhbXBsZSBub25jZSEh",     /* 18 bytes */
            "dGhlIHNhbXBsZSBub25jZQ==dGhl", /* trailing junk */
            "dGhl IHNhbXBsZSBub25jZQ=",     /* blank inside, 24 chars */
            "dGhlIHNhbXBsZSBub25j*Q==",     /* not base64 */
            "dGhlIHNhbXBsZSBub25jZ-==",     /* base64url alphabet */
            "dGhlIHNhbXBsZSBub25jZ===",     /* padding too early */
            "dGhlIHNhbXBsZSBub25jZQ==, " KEY,
        };
        char add[128];

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                snprintf(add, sizeof(add), "Sec-WebSocket-Key: %s\r\n", bad[i]);
                cr_assert_eq(with("Sec-WebSocket-Key:", add), 400, "%s", bad[i]);
        }
        cr_assert_eq(with("Sec-WebSocket-Key:", NULL), 400);
        /* Two keys, even two good ones, are not one key. */
        cr_assert_eq(with(NULL, "Sec-WebSocket-Key: " KEY "\r\n"), 400);
}

/* A version we do not speak is 426 (RFC 6455 4.4: the answer names ours); a missing or
 * repeated header is a broken request. */
Test(http_upgrade, other_version_is_426_missing_is_400)
{
        static const char *const bad[] = {"", "8", "12", "14", "013", "13, 8", "13.0", "1 3"};
        char add[128];

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                snprintf(add, sizeof(add), "Sec-WebSocket-Version: %s\r\n", bad[i]);
                cr_assert_eq(with("Sec-WebSocket-Version:", add), 426, "%s", bad[i]);
        }
        cr_assert_eq(with("Sec-WebSocket-Version:", NULL), 400);
        cr_assert_eq(with(NULL, "Sec-WebSocket-Version: 13\r\n"), 400);
}

Test(http_upgrade, accept_key_rfc6455_vector)
{
        char out[29];

        memset(out, 'X', sizeof(out));
        cr_assert_eq(tw_ws_accept_key(TW_SPAN_LIT(KEY), out), 0);
        cr_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

Test(http_upgrade, accept_key_other_keys)
{
        char a[29], b[29];

        /* Independently computed with
         *   printf '%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11' KEY | openssl sha1 -binary | base64 */
        cr_assert_eq(tw_ws_accept_key(TW_SPAN_LIT("AAAAAAAAAAAAAAAAAAAAAA=="), a), 0);
        cr_assert_str_eq(a, "ICX+Yqv66kxgM0FcWaLWlFLwTAI=");
        cr_assert_eq(tw_ws_accept_key(TW_SPAN_LIT("x3JJHMbDL1EzLkh9GBhXDw=="), b), 0);
        cr_assert_str_eq(b, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

Test(http_upgrade, build_101)
{
        static const char want[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                   "Upgrade: websocket\r\n"
                                   "Connection: Upgrade\r\n"
                                   "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                                   "\r\n";
        char accept[29];
        char out[256];

        cr_assert_eq(tw_ws_accept_key(TW_SPAN_LIT(KEY), accept), 0);
        size_t n = tw_http_build_101(out, sizeof(out), accept, NULL);
        cr_assert_eq(n, sizeof(want) - 1);
        cr_assert_eq(memcmp(out, want, n), 0);

        /* Exactly enough room is enough; one byte less is 0. */
        cr_assert_eq(tw_http_build_101(out, n, accept, NULL), n);
        for (size_t cap = 0; cap < n; cap++)
                cr_assert_eq(tw_http_build_101(out, cap, accept, NULL), 0, "cap %zu", cap);
}
