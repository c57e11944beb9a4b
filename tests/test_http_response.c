/*
 * The small complete responses: exact bytes for each optional part, the short-buffer rule
 * (0, never a truncated response) and the reason phrases.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "tickwire/http.h"

static void expect(size_t n, const char *out, const char *want)
{
        cr_assert_eq(n, strlen(want), "got %zu want %zu", n, strlen(want));
        cr_assert_eq(memcmp(out, want, n), 0, "got:\n%.*s", (int)n, out);
}

Test(http_response, full_response)
{
        char out[512];
        size_t n = tw_http_build_response(out, sizeof(out), 200, "application/json", "",
                                          "{\"seq\":1}", 9, false);

        expect(n, out,
               "HTTP/1.1 200 OK\r\n"
               "Content-Type: application/json\r\n"
               "Content-Length: 9\r\n"
               "\r\n"
               "{\"seq\":1}");
}

Test(http_response, no_content_type_close_and_extra)
{
        char out[512];
        size_t n = tw_http_build_response(out, sizeof(out), 426, NULL,
                                          "Sec-WebSocket-Version: 13\r\n", "", 0, true);

        expect(n, out,
               "HTTP/1.1 426 Upgrade Required\r\n"
               "Content-Length: 0\r\n"
               "Connection: close\r\n"
               "Sec-WebSocket-Version: 13\r\n"
               "\r\n");
}

Test(http_response, null_extra_and_body_with_nul)
{
        char out[512];
        size_t n =
            tw_http_build_response(out, sizeof(out), 503, "text/plain", NULL, "a\0b", 3, true);

        cr_assert_eq(n, strlen("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 3\r\nConnection: close\r\n\r\n") +
                            3);
        cr_assert_eq(memcmp(out + n - 3, "a\0b", 3), 0);
}

Test(http_response, short_buffer_gives_zero)
{
        char body[1000];
        char out[2048];

        memset(body, 'x', sizeof(body));
        size_t n = tw_http_build_response(out, sizeof(out), 200, "text/plain", "X-A: b\r\n", body,
                                          sizeof(body), true);
        cr_assert_gt(n, sizeof(body));
        cr_assert_eq(tw_http_build_response(out, n, 200, "text/plain", "X-A: b\r\n", body,
                                            sizeof(body), true),
                     n);
        for (size_t cap = 0; cap < n; cap++)
                cr_assert_eq(tw_http_build_response(out, cap, 200, "text/plain", "X-A: b\r\n", body,
                                                    sizeof(body), true),
                             0, "cap %zu", cap);
}

Test(http_response, short_buffer_is_not_written_past)
{
        char out[64];

        memset(out, '#', sizeof(out));
        cr_assert_eq(tw_http_build_response(out, 20, 200, NULL, "", "hello", 5, false), 0);
        for (size_t i = 20; i < sizeof(out); i++)
                cr_assert_eq(out[i], '#');
}

Test(http_response, reasons)
{
        static const struct {
                int status;
                const char *reason;
        } want[] = {
            {101, "Switching Protocols"},
            {200, "OK"},
            {400, "Bad Request"},
            {401, "Unauthorized"},
            {403, "Forbidden"},
            {404, "Not Found"},
            {405, "Method Not Allowed"},
            {413, "Content Too Large"},
            {426, "Upgrade Required"},
            {431, "Request Header Fields Too Large"},
            {500, "Internal Server Error"},
            {503, "Service Unavailable"},
        };

        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
                cr_assert_str_eq(tw_http_reason(want[i].status), want[i].reason);
        cr_assert_not_null(tw_http_reason(299));
}

Test(http_response, status_line_uses_reason)
{
        char out[256];
        size_t n = tw_http_build_response(out, sizeof(out), 431, NULL, "", "", 0, true);

        cr_assert_gt(n, 0);
        cr_assert_eq(memcmp(out, "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46), 0);
        cr_assert_eq(tw_http_build_response(out, sizeof(out), 42, NULL, "", "", 0, true), 0);
}
