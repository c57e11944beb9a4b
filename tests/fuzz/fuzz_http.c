/*
 * fuzz_http — libFuzzer harness for the request-head parser (tw_http_parse_request) and
 * the helpers the server runs on a parsed head. Invariants:
 *  - it never reads outside the bytes it is given: the input sits in a heap buffer of
 *    exactly its size, and when a prefix or a later pipelined head is parsed, the bytes
 *    outside it are poisoned for ASan;
 *  - the result is a head length H (0 < H <= len, H <= TW_HTTP_MAX_HEAD) or one of
 *    NEED_MORE, INVALID, TOO_LARGE, and every span of a parsed head lies inside buf[0..H)
 *    (path + '?' + query = target);
 *  - prefix invariance: when the input parses to H > 0, every strict prefix shorter than
 *    H is NEED_MORE, and buf[0..H) alone (its own exact-size buffer) parses to H with the
 *    same spans by offset; when the whole input is NEED_MORE, so is every prefix. An input
 *    longer than PREFIX_ALL bytes has its prefixes sampled (see prefix_wanted: every
 *    stride-th, the last PREFIX_TAIL, up to 2 * PREFIX_ALL ending near a separator) so
 *    the check stays near linear and libFuzzer keeps its pace; tests/fuzz/fuzz_http.options
 *    lets inputs grow past TW_HTTP_MAX_HEAD so the 431 boundary is reached;
 *  - pipelining: after a head of H bytes the rest is parsed as the next head, up to
 *    MAX_HEADS, with the same checks;
 *  - on a parsed head: tw_http_header_get finds every header by its own name (any case)
 *    and returns the first with that name; tw_http_header_has_token,
 *    tw_http_content_length (>= -1), tw_http_check_upgrade (0, 400 or 426; on 0 a 24-byte
 *    key inside the head whose accept key builds) and tw_http_query_get (finds the first
 *    pair of each key, value inside the query) keep their contracts;
 *  - the same input as a response head (tw_http_parse_response, the loadgen's 101
 *    parser): the same result contract and prefix invariance, status 100-999, every span
 *    inside the head, and tw_http_response_header finds the first header of each name.
 *    Checked on the first head only, so the harness keeps its pace and CI its time.
 *
 * Build and run: see README.md "Fuzzing" (cmake -DTW_FUZZ=ON -DCMAKE_C_COMPILER=clang).
 */
#include "tickwire/http.h"
#include "json_ref.h" /* span_inside */

#include <sanitizer/asan_interface.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX_ALL  512 /* heads up to this long have every prefix checked */
#define PREFIX_TAIL 64
#define MAX_HEADS   16
#define MAX_PAIRS   32 /* query pairs checked per head */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                                                  \
        do {                                                                                       \
                fprintf(stderr, "fuzz_http: " __VA_ARGS__);                                        \
                fputc('\n', stderr);                                                               \
                abort();                                                                           \
        } while (0)

static size_t off(tw_span s, const char *base)
{
        return s.n ? (size_t)(s.p - base) : 0;
}

static void check_spans(const tw_http_request *req, const char *b, size_t h)
{
        if (!span_inside(req->method, b, h) || !span_inside(req->target, b, h) ||
            !span_inside(req->path, b, h) || !span_inside(req->query, b, h))
                FAIL("request-line span outside the head");
        if (req->method.n == 0 || req->target.n == 0 || req->target.p[0] != '/')
                FAIL("empty method or target not in origin form");
        if (req->path.p != req->target.p)
                FAIL("path does not start the target");
        if (req->path.n == req->target.n) {
                if (req->query.n != 0)
                        FAIL("query without '?'");
        } else if (req->path.n + 1 + req->query.n != req->target.n ||
                   req->path.p[req->path.n] != '?' ||
                   req->query.p != req->path.p + req->path.n + 1) {
                FAIL("path ? query does not make the target");
        }
        if (req->minor_version != 0 && req->minor_version != 1)
                FAIL("minor version %d", req->minor_version);
        if (req->nheaders > TW_HTTP_MAX_HEADERS)
                FAIL("nheaders %zu", req->nheaders);
        for (size_t i = 0; i < req->nheaders; i++) {
                const tw_http_header *hd = &req->headers[i];
                if (hd->name.n == 0 || !span_inside(hd->name, b, h) ||
                    !span_inside(hd->value, b, h))
                        FAIL("header %zu span outside the head", i);
                if (hd->value.n &&
                    (hd->value.p[0] == ' ' || hd->value.p[0] == '\t' ||
                     hd->value.p[hd->value.n - 1] == ' ' || hd->value.p[hd->value.n - 1] == '\t'))
                        FAIL("header %zu value not trimmed", i);
        }
}

static bool same_span(tw_span a, const char *abase, tw_span b, const char *bbase)
{
        return a.n == b.n && off(a, abase) == off(b, bbase);
}

static void check_same(const tw_http_request *a, const char *ab, const tw_http_request *b,
                       const char *bb)
{
        if (!same_span(a->method, ab, b->method, bb) || !same_span(a->target, ab, b->target, bb) ||
            !same_span(a->path, ab, b->path, bb) || !same_span(a->query, ab, b->query, bb) ||
            a->minor_version != b->minor_version || a->nheaders != b->nheaders)
                FAIL("head alone parses differently (request line)");
        for (size_t i = 0; i < a->nheaders; i++)
                if (!same_span(a->headers[i].name, ab, b->headers[i].name, bb) ||
                    !same_span(a->headers[i].value, ab, b->headers[i].value, bb))
                        FAIL("head alone parses differently (header %zu)", i);
}

static bool eq_nocase(tw_span a, tw_span b)
{
        if (a.n != b.n)
                return false;
        for (size_t i = 0; i < a.n; i++) {
                char x = a.p[i], y = b.p[i];
                if (x >= 'A' && x <= 'Z')
                        x = (char)(x - 'A' + 'a');
                if (y >= 'A' && y <= 'Z')
                        y = (char)(y - 'A' + 'a');
                if (x != y)
                        return false;
        }
        return true;
}

/* A span as a C string (header names and query keys hold no NUL). */
static const char *cstr(tw_span s, char *tmp, size_t cap)
{
        size_t n = s.n < cap - 1 ? s.n : cap - 1;

        memcpy(tmp, s.p, n);
        tmp[n] = '\0';
        return tmp;
}

static void check_helpers(const tw_http_request *req, const char *b, size_t h)
{
        char name[TW_HTTP_MAX_HEAD + 1];

        for (size_t i = 0; i < req->nheaders; i++) {
                tw_span nm = req->headers[i].name;
                /* Flip the case of the name: the lookup must not care. */
                cstr(nm, name, sizeof(name));
                for (size_t k = 0; k < nm.n; k++)
                        if ((name[k] | 0x20) >= 'a' && (name[k] | 0x20) <= 'z')
                                name[k] ^= 0x20;
                const tw_span *v = tw_http_header_get(req, name);
                size_t first = 0;
                while (!eq_nocase(req->headers[first].name, nm))
                        first++;
                if (!v || v != &req->headers[first].value)
                        FAIL("header_get(%s) is not the first header of that name", name);
                (void)tw_http_header_has_token(req, name, "upgrade");
        }
        if (tw_http_header_get(req, "") != NULL && req->nheaders)
                FAIL("header_get(\"\") found a header");
        (void)tw_http_header_has_token(req, "connection", "keep-alive");
        (void)tw_http_header_has_token(req, "connection", "");

        int64_t cl = tw_http_content_length(req);
        if (cl < -1)
                FAIL("content_length %lld", (long long)cl);

        tw_span key = {0};
        int up = tw_http_check_upgrade(req, &key);
        if (up != 0 && up != 400 && up != 426)
                FAIL("check_upgrade %d", up);
        if (up == 0) {
                char accept[29];
                if (key.n != 24 || !span_inside(key, b, h))
                        FAIL("upgrade key span");
                if (tw_ws_accept_key(key, accept) != 0 || strlen(accept) != 28)
                        FAIL("accept key");
                char resp[256];
                if (tw_http_build_101(resp, sizeof(resp), accept, NULL) == 0)
                        FAIL("101 does not fit");
        }

        /* The first MAX_PAIRS keys of the query are found, each with the value of the
         * first pair that carries it. */
        tw_span q = req->query, pairs[MAX_PAIRS], keys[MAX_PAIRS];
        size_t np = 0;
        for (size_t i = 0; i <= q.n && np < MAX_PAIRS; i++) {
                size_t s = i;
                while (i < q.n && q.p[i] != '&')
                        i++;
                if (i == q.n && s == q.n && np > 0)
                        break; /* nothing after a trailing '&' */
                pairs[np] = (tw_span){q.p + s, i - s};
                const char *eq = memchr(pairs[np].p, '=', pairs[np].n);
                keys[np] = (tw_span){q.p + s, eq ? (size_t)(eq - (q.p + s)) : i - s};
                np++;
        }
        for (size_t i = 0; i < np; i++) {
                tw_span val, want;
                if (keys[i].n == 0)
                        continue;
                size_t j = 0;
                while (keys[j].n != keys[i].n || memcmp(keys[j].p, keys[i].p, keys[i].n) != 0)
                        j++;
                want = keys[j].n == pairs[j].n
                           ? (tw_span){pairs[j].p + pairs[j].n, 0}
                           : (tw_span){keys[j].p + keys[j].n + 1, pairs[j].n - keys[j].n - 1};
                if (!tw_http_query_get(q, cstr(keys[i], name, sizeof(name)), &val))
                        FAIL("query key %s not found", name);
                if (val.n != want.n || (want.n && val.p != want.p))
                        FAIL("query key %s: wrong value", name);
        }
        tw_span tok;
        if (tw_http_query_get(q, "", &tok))
                FAIL("query_get(\"\") found something");
        if (tw_http_query_get(q, "token", &tok) && !span_inside(tok, q.p, q.n))
                FAIL("token value outside the query");
}

/* Parses p[0..len), whose bytes outside [lo, hi) of the allocation are poisoned. */
static int parse_poisoned(const char *alloc, size_t alloc_n, const char *p, size_t len,
                          tw_http_request *req)
{
        size_t lo = (size_t)(p - alloc), hi = lo + len;

        ASAN_POISON_MEMORY_REGION(alloc, lo);
        ASAN_POISON_MEMORY_REGION(alloc + hi, alloc_n - hi);
        int r = tw_http_parse_request(p, len, req);
        ASAN_UNPOISON_MEMORY_REGION(alloc, alloc_n);
        return r;
}

/* Whether the prefix of k bytes is checked: all of them for a short head; for a long one
 * every stride-th, the last PREFIX_TAIL, and while *budget lasts every one ending within
 * two bytes of a byte that is not a letter or a digit (where the parser changes state:
 * spaces, '/', '?', ':', line ends). */
static bool prefix_wanted(const char *p, size_t k, size_t upto, size_t stride, size_t *budget)
{
        if (stride == 1 || k % stride == 0 || k + PREFIX_TAIL >= upto)
                return true;
        if (*budget == 0)
                return false;
        for (size_t j = k >= 2 ? k - 2 : 0; j <= k + 2 && j < upto; j++) {
                char c = p[j];
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
                        (*budget)--;
                        return true;
                }
        }
        return false;
}

static void check_prefixes(const char *alloc, size_t alloc_n, const char *p, size_t upto,
                           const char *why)
{
        static tw_http_request req;
        size_t stride = upto <= PREFIX_ALL ? 1 : upto / PREFIX_ALL + 1;
        size_t budget = 2 * PREFIX_ALL;

        for (size_t k = 0; k < upto; k++) {
                if (!prefix_wanted(p, k, upto, stride, &budget))
                        continue;
                int r = parse_poisoned(alloc, alloc_n, p, k, &req);
                if (r != TW_HTTP_NEED_MORE)
                        FAIL("%s: prefix of %zu bytes gives %d, not NEED_MORE", why, k, r);
        }
}

/* All the checks on one head at p[0..len) (the rest of the allocation is not its input). */
static int check_head(const char *alloc, size_t alloc_n, const char *p, size_t len)
{
        static tw_http_request req, alone;

        int r = parse_poisoned(alloc, alloc_n, p, len, &req);
        if (r == TW_HTTP_NEED_MORE) {
                check_prefixes(alloc, alloc_n, p, len, "whole input NEED_MORE");
                return r;
        }
        if (r == TW_HTTP_INVALID || r == TW_HTTP_TOO_LARGE)
                return r;
        if (r <= 0)
                FAIL("unknown result %d", r);
        size_t h = (size_t)r;
        if (h > len || h > TW_HTTP_MAX_HEAD)
                FAIL("head %zu longer than input %zu or the limit", h, len);
        check_spans(&req, p, h);
        check_prefixes(alloc, alloc_n, p, h, "parsed head");

        char *own = malloc(h);
        if (!own)
                abort();
        memcpy(own, p, h);
        int r2 = tw_http_parse_request(own, h, &alone);
        if (r2 != r)
                FAIL("head alone gives %d, not %d", r2, r);
        check_same(&req, p, &alone, own);
        check_helpers(&alone, own, h);
        free(own);
        return r;
}

static int parse_response_poisoned(const char *alloc, size_t alloc_n, size_t len,
                                   tw_http_response *resp)
{
        ASAN_POISON_MEMORY_REGION(alloc + len, alloc_n - len);
        int r = tw_http_parse_response(alloc, len, resp);
        ASAN_UNPOISON_MEMORY_REGION(alloc, alloc_n);
        return r;
}

static void check_response(const char *b, size_t len)
{
        static tw_http_response resp, part;
        char name[TW_HTTP_MAX_HEAD + 1];

        int r = parse_response_poisoned(b, len, len, &resp);
        if (r != TW_HTTP_NEED_MORE && r != TW_HTTP_INVALID && r != TW_HTTP_TOO_LARGE && r <= 0)
                FAIL("response: unknown result %d", r);
        size_t upto = r > 0 ? (size_t)r : r == TW_HTTP_NEED_MORE ? len : 0;
        size_t stride = upto <= PREFIX_ALL ? 1 : upto / PREFIX_ALL + 1;
        for (size_t k = 0; k < upto; k++)
                if ((k % stride == 0 || k + PREFIX_TAIL >= upto) &&
                    parse_response_poisoned(b, len, k, &part) != TW_HTTP_NEED_MORE)
                        FAIL("response: prefix of %zu bytes is not NEED_MORE", k);
        if (r <= 0)
                return;
        size_t h = (size_t)r;
        if (h > len || h > TW_HTTP_MAX_HEAD)
                FAIL("response: head %zu longer than input %zu or the limit", h, len);
        if (resp.status < 100 || resp.status > 999 || resp.minor_version < 0 ||
            resp.minor_version > 1 || !span_inside(resp.reason, b, h) ||
            resp.nheaders > TW_HTTP_MAX_HEADERS)
                FAIL("response: status line");
        for (size_t i = 0; i < resp.nheaders; i++) {
                tw_span nm = resp.headers[i].name;
                if (nm.n == 0 || !span_inside(nm, b, h) ||
                    !span_inside(resp.headers[i].value, b, h))
                        FAIL("response: header %zu span outside the head", i);
                size_t first = 0;
                while (!eq_nocase(resp.headers[first].name, nm))
                        first++;
                if (tw_http_response_header(&resp, cstr(nm, name, sizeof(name))) !=
                    &resp.headers[first].value)
                        FAIL("response: header(%s) is not the first of that name", name);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *buf = malloc(size ? size : 1);

        if (!buf)
                return 0;
        memcpy(buf, data, size);
        size_t at = 0;
        for (int i = 0; i < MAX_HEADS && (i == 0 || at < size); i++) {
                int r = check_head(buf, size, buf + at, size - at);
                if (r <= 0)
                        break;
                at += (size_t)r;
        }
        check_response(buf, size);
        free(buf);
        return 0;
}
