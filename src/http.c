/*
 * http — the request-head parser, the RFC 6455 upgrade checks and the handful of responses
 * the server writes (101, and small complete responses for /metrics, /healthz, /publish
 * and the errors).
 *
 * The parser follows picohttpparser: it walks the caller's bytes once, records spans into
 * them, allocates nothing, and is simply re-run over the whole buffer as more bytes
 * arrive. Its one rule for partial input is that it never judges a byte it has not seen:
 * running out of input anywhere is TW_HTTP_NEED_MORE, so every strict prefix of a valid
 * head asks for more and a byte-at-a-time client looks exactly like a fast one. It is
 * strict where leniency has been a source of request smuggling (RFC 7230 3.2.4: no
 * whitespace before a colon, no obsolete line folding, no bare CR) and lenient only where
 * the RFC asks it to be (bare LF line ends, empty lines before the request line).
 */
#include "tickwire/http.h"
#include "tickwire/out.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>

/* RFC 7230 3.2.6 tchar: the characters of a method or a header name. */
static bool is_tchar(unsigned char c)
{
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
                return true;
        return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field-value bytes: VCHAR, SP, HTAB and obs-text; every other control byte is refused. */
static bool is_value_char(unsigned char c)
{
        return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_ows(char c)
{
        return c == ' ' || c == '\t';
}

static char lower(char c)
{
        return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool span_eq_nocase(tw_span s, const char *lit, size_t n)
{
        if (s.n != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (lower(s.p[i]) != lower(lit[i]))
                        return false;
        return true;
}

/* Parser cursor. `end` is min(len, TW_HTTP_MAX_HEAD): reaching it means either "need
 * more" or, when the head limit is what stopped us, "too large". */
struct cursor {
        const char *buf;
        size_t pos;
        size_t end;
        int starved; /* the code to return when the input runs out */
};

/* Consumes a line end at the cursor: CRLF or a bare LF. Returns 1 when consumed, 0 when
 * the byte is not a line end, or a negative TW_HTTP_* code. */
static int eat_eol(struct cursor *c)
{
        if (c->pos >= c->end)
                return c->starved;
        if (c->buf[c->pos] == '\n') {
                c->pos++;
                return 1;
        }
        if (c->buf[c->pos] != '\r')
                return 0;
        if (c->pos + 1 >= c->end)
                return c->starved;
        if (c->buf[c->pos + 1] != '\n')
                return TW_HTTP_INVALID; /* a bare CR is how header injection hides */
        c->pos += 2;
        return 1;
}

/* "HTTP/1.0" or "HTTP/1.1" at the cursor, for request and status lines alike: 0 with
 * *minor set and the cursor past it, or the cursor's starved result, or INVALID. */
static int parse_version(struct cursor *c, int *minor)
{
        static const char version[] = "HTTP/1.";

        for (size_t i = 0; i < sizeof(version) - 1; i++, c->pos++) {
                if (c->pos >= c->end)
                        return c->starved;
                if (c->buf[c->pos] != version[i])
                        return TW_HTTP_INVALID;
        }
        if (c->pos >= c->end)
                return c->starved;
        if (c->buf[c->pos] != '0' && c->buf[c->pos] != '1')
                return TW_HTTP_INVALID;
        *minor = c->buf[c->pos++] - '0';
        return 0;
}

static int parse_request_line(struct cursor *c, tw_http_request *req)
{
        size_t start = c->pos;

        for (;; c->pos++) {
                if (c->pos >= c->end)
                        return c->starved;
                if (c->buf[c->pos] == ' ')
                        break;
                if (!is_tchar((unsigned char)c->buf[c->pos]))
                        return TW_HTTP_INVALID;
        }
        if (c->pos == start)
                return TW_HTTP_INVALID;
        req->method = (tw_span){c->buf + start, c->pos - start};
        c->pos++;

        /* Origin form only: absolute, authority and asterisk forms mean nothing here. */
        start = c->pos;
        for (;; c->pos++) {
                if (c->pos >= c->end)
                        return c->starved;
                unsigned char ch = (unsigned char)c->buf[c->pos];
                if (c->pos == start && ch != '/')
                        return TW_HTTP_INVALID;
                if (ch == ' ')
                        break;
                if (ch < 0x21 || ch > 0x7e)
                        return TW_HTTP_INVALID;
        }
        tw_span target = {c->buf + start, c->pos - start};
        req->target = target;
        const char *q = memchr(target.p, '?', target.n);
        if (q) {
                req->path = (tw_span){target.p, (size_t)(q - target.p)};
                req->query = (tw_span){q + 1, target.n - req->path.n - 1};
        } else {
                req->path = target;
                req->query = (tw_span){target.p + target.n, 0};
        }
        c->pos++;

        int r = parse_version(c, &req->minor_version);
        if (r != 0)
                return r;

        r = eat_eol(c);
        return r == 0 ? TW_HTTP_INVALID : r;
}

/* One header line, the cursor at its first byte (known not to be a line end). */
static int parse_header_line(struct cursor *c, tw_http_header *h)
{
        size_t start = c->pos;

        if (is_ows(c->buf[c->pos]))
                return TW_HTTP_INVALID; /* obsolete line folding (RFC 7230 3.2.4) */
        for (;; c->pos++) {
                if (c->pos >= c->end)
                        return c->starved;
                if (c->buf[c->pos] == ':')
                        break;
                /* Also refuses "Name :", which proxies have read in different ways. */
                if (!is_tchar((unsigned char)c->buf[c->pos]))
                        return TW_HTTP_INVALID;
        }
        if (c->pos == start)
                return TW_HTTP_INVALID;
        h->name = (tw_span){c->buf + start, c->pos - start};
        c->pos++;

        while (c->pos < c->end && is_ows(c->buf[c->pos]))
                c->pos++;
        start = c->pos;
        size_t value_end = start; /* one past the last non-blank byte */
        for (;;) {
                int r = eat_eol(c);
                if (r < 0)
                        return r;
                if (r == 1)
                        break;
                unsigned char ch = (unsigned char)c->buf[c->pos];
                if (!is_value_char(ch))
                        return TW_HTTP_INVALID;
                c->pos++;
                if (!is_ows((char)ch))
                        value_end = c->pos;
        }
        h->value = (tw_span){c->buf + start, value_end - start};
        return 1;
}

/* Header lines up to and including the empty line that ends the head. Returns the head's
 * length (the cursor's position past that line) or a negative TW_HTTP_* code. */
static int parse_headers(struct cursor *c, tw_http_header *h, size_t *nh)
{
        for (;;) {
                int r = eat_eol(c);
                if (r < 0)
                        return r;
                if (r == 1)
                        return (int)c->pos;
                if (*nh == TW_HTTP_MAX_HEADERS)
                        return TW_HTTP_TOO_LARGE;
                r = parse_header_line(c, &h[*nh]);
                if (r < 0)
                        return r;
                (*nh)++;
        }
}

int tw_http_parse_request(const char *buf, size_t len, tw_http_request *req)
{
        struct cursor c = {
            .buf = buf,
            .pos = 0,
            .end = len < TW_HTTP_MAX_HEAD ? len : TW_HTTP_MAX_HEAD,
            .starved = len < TW_HTTP_MAX_HEAD ? TW_HTTP_NEED_MORE : TW_HTTP_TOO_LARGE,
        };
        int r;

        req->nheaders = 0;
        /* RFC 7230 3.5: ignore empty lines before the request line. */
        while ((r = eat_eol(&c)) == 1)
                ;
        if (r < 0)
                return r;
        r = parse_request_line(&c, req);
        if (r < 0)
                return r;

        return parse_headers(&c, req->headers, &req->nheaders);
}

/* "HTTP/1.x SP 3DIGIT [SP reason-phrase] CRLF" (RFC 9112 4). The reason may be empty,
 * and so may be its space: clients ignore it and servers have been seen to drop both. */
static int parse_status_line(struct cursor *c, tw_http_response *resp)
{
        int status = 0, r = parse_version(c, &resp->minor_version);

        if (r != 0)
                return r;
        if (c->pos >= c->end)
                return c->starved;
        if (c->buf[c->pos++] != ' ')
                return TW_HTTP_INVALID;
        for (int i = 0; i < 3; i++, c->pos++) {
                if (c->pos >= c->end)
                        return c->starved;
                char d = c->buf[c->pos];
                if (d < (i == 0 ? '1' : '0') || d > '9')
                        return TW_HTTP_INVALID;
                status = status * 10 + (d - '0');
        }
        resp->status = status;
        resp->reason = (tw_span){c->buf + c->pos, 0};

        r = eat_eol(c);
        if (r != 0)
                return r;
        if (c->buf[c->pos] != ' ')
                return TW_HTTP_INVALID; /* "HTTP/1.1 1010": a fourth digit */
        size_t start = ++c->pos;
        for (;;) {
                size_t end = c->pos;
                r = eat_eol(c);
                if (r < 0)
                        return r;
                if (r == 1) {
                        resp->reason = (tw_span){c->buf + start, end - start};
                        return 1;
                }
                if (!is_value_char((unsigned char)c->buf[c->pos]))
                        return TW_HTTP_INVALID;
                c->pos++;
        }
}

int tw_http_parse_response(const char *buf, size_t len, tw_http_response *resp)
{
        struct cursor c = {
            .buf = buf,
            .pos = 0,
            .end = len < TW_HTTP_MAX_HEAD ? len : TW_HTTP_MAX_HEAD,
            .starved = len < TW_HTTP_MAX_HEAD ? TW_HTTP_NEED_MORE : TW_HTTP_TOO_LARGE,
        };

        resp->nheaders = 0;
        int r = parse_status_line(&c, resp);
        if (r < 0)
                return r;
        return parse_headers(&c, resp->headers, &resp->nheaders);
}

static const tw_span *headers_get(const tw_http_header *h, size_t nh, const char *name)
{
        size_t n = strlen(name);

        for (size_t i = 0; i < nh; i++)
                if (span_eq_nocase(h[i].name, name, n))
                        return &h[i].value;
        return NULL;
}

const tw_span *tw_http_header_get(const tw_http_request *req, const char *name)
{
        return headers_get(req->headers, req->nheaders, name);
}

const tw_span *tw_http_response_header(const tw_http_response *resp, const char *name)
{
        return headers_get(resp->headers, resp->nheaders, name);
}

/* The value of a header that must appear exactly once: NULL when absent or repeated. */
static const tw_span *header_get_single(const tw_http_request *req, const char *name)
{
        size_t n = strlen(name);
        const tw_span *found = NULL;

        for (size_t i = 0; i < req->nheaders; i++) {
                if (!span_eq_nocase(req->headers[i].name, name, n))
                        continue;
                if (found)
                        return NULL;
                found = &req->headers[i].value;
        }
        return found;
}

static bool list_has_token(tw_span list, const char *token, size_t tn)
{
        size_t i = 0;

        while (i < list.n) {
                size_t start = i;
                while (i < list.n && list.p[i] != ',')
                        i++;
                size_t end = i;
                while (start < end && is_ows(list.p[start]))
                        start++;
                while (end > start && is_ows(list.p[end - 1]))
                        end--;
                if (span_eq_nocase((tw_span){list.p + start, end - start}, token, tn))
                        return true;
                i++; /* past the comma */
        }
        return false;
}

bool tw_http_header_has_token(const tw_http_request *req, const char *name, const char *token)
{
        size_t n = strlen(name);
        size_t tn = strlen(token);

        if (tn == 0)
                return false;
        for (size_t i = 0; i < req->nheaders; i++)
                if (span_eq_nocase(req->headers[i].name, name, n) &&
                    list_has_token(req->headers[i].value, token, tn))
                        return true;
        return false;
}

bool tw_http_query_get(tw_span query, const char *name, tw_span *value)
{
        size_t n = strlen(name);
        size_t i = 0;

        if (n == 0)
                return false;
        while (i < query.n) {
                size_t start = i;
                while (i < query.n && query.p[i] != '&')
                        i++;
                tw_span pair = {query.p + start, i - start};
                i++; /* past the '&' */

                const char *eq = memchr(pair.p, '=', pair.n);
                size_t key_n = eq ? (size_t)(eq - pair.p) : pair.n;
                if (key_n != n || memcmp(pair.p, name, n) != 0)
                        continue;
                /* "?flag" with no '=' is present with an empty value. */
                *value = eq ? (tw_span){eq + 1, pair.n - key_n - 1} : (tw_span){pair.p + pair.n, 0};
                return true;
        }
        return false;
}

int64_t tw_http_content_length(const tw_http_request *req)
{
        static const char cl[] = "content-length";
        int64_t result = 0;
        bool seen = false;

        /* A body framed two ways is the classic smuggling vector; we support neither
         * chunked nor any other coding, so any Transfer-Encoding is refused. */
        if (tw_http_header_get(req, "transfer-encoding"))
                return -1;
        for (size_t i = 0; i < req->nheaders; i++) {
                if (!span_eq_nocase(req->headers[i].name, cl, sizeof(cl) - 1))
                        continue;
                tw_span v = req->headers[i].value;
                if (v.n == 0)
                        return -1;
                int64_t x = 0;
                for (size_t j = 0; j < v.n; j++) {
                        if (v.p[j] < '0' || v.p[j] > '9')
                                return -1;
                        int d = v.p[j] - '0';
                        if (x > (INT64_MAX - d) / 10)
                                return -1;
                        x = x * 10 + d;
                }
                if (seen && x != result)
                        return -1;
                result = x;
                seen = true;
        }
        return result;
}

static bool is_b64_char(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '+' || c == '/';
}

/* RFC 6455 4.2.1: the key is base64 of 16 bytes, i.e. 22 characters and "==". wolfCrypt's
 * decoder skips blanks and tolerates missing padding, so the shape is checked first and
 * the decoder then confirms the length. */
static bool ws_key_valid(tw_span key)
{
        byte out[24];
        word32 out_n = sizeof(out);

        if (key.n != 24 || key.p[22] != '=' || key.p[23] != '=')
                return false;
        for (size_t i = 0; i < 22; i++)
                if (!is_b64_char(key.p[i]))
                        return false;
        if (Base64_Decode((const byte *)key.p, (word32)key.n, out, &out_n) != 0)
                return false;
        return out_n == 16;
}

int tw_http_check_upgrade(const tw_http_request *req, tw_span *key)
{
        if (!tw_http_header_has_token(req, "upgrade", "websocket"))
                return 426;
        /* Methods are case-sensitive (RFC 7230 3.1.1): "get" is not GET. */
        if (req->method.n != 3 || memcmp(req->method.p, "GET", 3) != 0)
                return 400;
        if (req->minor_version != 1)
                return 400;
        if (!tw_http_header_has_token(req, "connection", "upgrade"))
                return 400;
        const tw_span *k = header_get_single(req, "sec-websocket-key");
        if (!k || !ws_key_valid(*k))
                return 400;
        const tw_span *v = header_get_single(req, "sec-websocket-version");
        if (!v)
                return 400;
        /* A version we do not speak: 426 naming ours (RFC 6455 4.4). */
        if (v->n != 2 || memcmp(v->p, "13", 2) != 0)
                return 426;
        *key = *k;
        return 0;
}

static void put_uint(tw_out *o, uint64_t v)
{
        char tmp[20];
        size_t i = sizeof(tmp);

        do {
                tmp[--i] = (char)('0' + v % 10);
                v /= 10;
        } while (v);
        tw_out_put(o, tmp + i, sizeof(tmp) - i);
}

size_t tw_http_build_101(char *out, size_t cap, const char accept[29], const char *protocol)
{
        tw_out o = {out, cap, 0, false};

        tw_out_str(&o, "HTTP/1.1 101 Switching Protocols\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: ");
        tw_out_put(&o, accept, strnlen(accept, 28));
        if (protocol) {
                tw_out_str(&o, "\r\nSec-WebSocket-Protocol: ");
                tw_out_str(&o, protocol);
        }
        tw_out_str(&o, "\r\n\r\n");
        return tw_out_len(&o);
}

size_t tw_http_build_response(char *out, size_t cap, int status, const char *content_type,
                              const char *extra, const char *body, size_t body_len, bool close)
{
        tw_out o = {out, cap, 0, false};

        if (status < 100 || status > 999)
                return 0;
        tw_out_str(&o, "HTTP/1.1 ");
        put_uint(&o, (uint64_t)status);
        tw_out_str(&o, " ");
        tw_out_str(&o, tw_http_reason(status));
        tw_out_str(&o, "\r\n");
        if (content_type) {
                tw_out_str(&o, "Content-Type: ");
                tw_out_str(&o, content_type);
                tw_out_str(&o, "\r\n");
        }
        /* 204 and 304 carry no body and no length (RFC 9110 8.6). */
        if (status != 204 && status != 304) {
                tw_out_str(&o, "Content-Length: ");
                put_uint(&o, body_len);
                tw_out_str(&o, "\r\n");
        }
        if (close)
                tw_out_str(&o, "Connection: close\r\n");
        if (extra)
                tw_out_str(&o, extra);
        tw_out_str(&o, "\r\n");
        if (body_len)
                tw_out_put(&o, body, body_len);
        return tw_out_len(&o);
}

const char *tw_http_reason(int status)
{
        switch (status) {
        case 101:
                return "Switching Protocols";
        case 200:
                return "OK";
        case 204:
                return "No Content";
        case 304:
                return "Not Modified";
        case 400:
                return "Bad Request";
        case 401:
                return "Unauthorized";
        case 403:
                return "Forbidden";
        case 404:
                return "Not Found";
        case 405:
                return "Method Not Allowed";
        case 413:
                return "Content Too Large";
        case 415:
                return "Unsupported Media Type";
        case 426:
                return "Upgrade Required";
        case 431:
                return "Request Header Fields Too Large";
        case 500:
                return "Internal Server Error";
        case 503:
                return "Service Unavailable";
        default:
                return "Unknown";
        }
}

/* ---- Origin (DESIGN 6) ---- */

static bool label_char(char ch)
{
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               ch == '-';
}

/* Glob of p over s[0..n), case-insensitive, where '*' stands for one or more DNS labels
 * ("a", "a.b", ...): it never swallows a scheme, a port or an empty label. */
static bool glob(const char *p, const char *s, size_t n)
{
        for (; *p; p++, s++, n--) {
                if (*p == '*') {
                        /* Try every end of a run of labels, shortest first. */
                        for (size_t k = 0; k < n && label_char(s[k]);) {
                                while (k < n && label_char(s[k]))
                                        k++;
                                if (glob(p + 1, s + k, n - k))
                                        return true;
                                if (k < n && s[k] == '.' && k + 1 < n && label_char(s[k + 1]))
                                        k++;
                                else
                                        break;
                        }
                        return false;
                }
                if (!n || lower(*p) != lower(*s))
                        return false;
        }
        return n == 0;
}

bool tw_http_origin_match(tw_span origin, const char *pattern)
{
        const char *host = memmem(origin.p, origin.n, "://", 3);

        if (strcmp(pattern, "*") == 0)
                return true;
        if (strstr(pattern, "://"))
                return glob(pattern, origin.p, origin.n);
        if (!host)
                return false;
        host += 3;
        return glob(pattern, host, origin.n - (size_t)(host - origin.p));
}

bool tw_http_origin_allowed(const tw_http_request *req, const char (*patterns)[256], size_t n)
{
        const tw_span *origin = header_get_single(req, "origin");
        const tw_span *host = header_get_single(req, "host");
        const char *h;

        if (!tw_http_header_get(req, "Origin"))
                return true; /* not a browser */
        if (!origin)
                return false; /* two Origin headers: not something a browser sends */
        h = memmem(origin->p, origin->n, "://", 3);
        if (h && host) {
                size_t hn = origin->n - (size_t)(h + 3 - origin->p);

                if (hn == host->n && strncasecmp(h + 3, host->p, hn) == 0)
                        return true; /* same origin: a page this server served */
        }
        for (size_t i = 0; i < n; i++)
                if (tw_http_origin_match(*origin, patterns[i]))
                        return true;
        return false;
}
