/*
 * http — the HTTP/1.1 request-head parser, the WebSocket upgrade checks, the few
 * responses the server writes, and the response-head parser a client (the loadgen) reads
 * the 101 with. tw_span lives in span.h and the accept key in ws.h; both are included
 * here so a caller of the upgrade needs this header alone.
 *
 * Owns: bytes in, spans out. The parser is pure (picohttpparser style): it allocates
 * nothing, copies nothing, returns spans into the caller's buffer, and is simply called
 * again over the whole buffer when more bytes arrive. Must not touch: sockets,
 * connection state, metrics.
 */
#ifndef TICKWIRE_HTTP_H
#define TICKWIRE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tickwire/span.h"
#include "tickwire/ws.h" /* tw_ws_accept_key, for the 101 */

#define TW_HTTP_MAX_HEAD    8192 /* a request head larger than this is answered 431 */
#define TW_HTTP_MAX_HEADERS 32

#define TW_HTTP_NEED_MORE (-2)
#define TW_HTTP_INVALID   (-1)
#define TW_HTTP_TOO_LARGE (-3) /* too many header lines: 431 */

typedef struct tw_http_header {
        tw_span name;
        tw_span value; /* leading and trailing blanks trimmed */
} tw_http_header;

typedef struct tw_http_request {
        tw_span method;
        tw_span target;    /* as sent: path plus optional ?query */
        tw_span path;      /* target up to '?' */
        tw_span query;     /* after '?', without it; empty when absent */
        int minor_version; /* HTTP/1.x */
        size_t nheaders;
        tw_http_header headers[TW_HTTP_MAX_HEADERS];
} tw_http_request;

/* Parses a request head from buf[0..len). Returns the head's length including the final
 * CRLFCRLF (> 0), TW_HTTP_NEED_MORE, TW_HTTP_INVALID or TW_HTTP_TOO_LARGE. Accepts bare
 * LF line ends; rejects control characters, obsolete line folding, a missing version. */
int tw_http_parse_request(const char *buf, size_t len, tw_http_request *req);

/* Case-insensitive header lookup; the first match or NULL. */
const tw_span *tw_http_header_get(const tw_http_request *req, const char *name);

/* A response head, as a client reads the server's answer to its upgrade. */
typedef struct tw_http_response {
        int minor_version; /* HTTP/1.x */
        int status;        /* three digits, 100-999 */
        tw_span reason;    /* reason phrase as sent; may be empty */
        size_t nheaders;
        tw_http_header headers[TW_HTTP_MAX_HEADERS];
} tw_http_response;

/* Parses a response head from buf[0..len) with the request parser's contract: the head's
 * length including the final empty line (> 0), TW_HTTP_NEED_MORE (every strict prefix of
 * a valid head), TW_HTTP_INVALID, or TW_HTTP_TOO_LARGE (over TW_HTTP_MAX_HEAD bytes or
 * TW_HTTP_MAX_HEADERS lines). Bytes after the head (a 101's first frames) are not looked
 * at. Header lines follow the request parser's rules; no empty lines before the status
 * line. */
int tw_http_parse_response(const char *buf, size_t len, tw_http_response *resp);

/* Case-insensitive header lookup in a response; the first match or NULL. */
const tw_span *tw_http_response_header(const tw_http_response *resp, const char *name);

/* True when the comma-separated header `name` holds `token` (case-insensitive), e.g.
 * Connection: keep-alive, Upgrade. Looks through every header line with that name. */
bool tw_http_header_has_token(const tw_http_request *req, const char *name, const char *token);

/* Finds `name` in an x-www-form query (a=1&b=2) and returns its raw value span. */
bool tw_http_query_get(tw_span query, const char *name, tw_span *value);

/* Content-Length of the request: 0 when absent, -1 when malformed or repeated with
 * different values, or when Transfer-Encoding is present (not supported: 400). */
int64_t tw_http_content_length(const tw_http_request *req);

/* Upgrade checks of RFC 6455 4.2.1 for a request already known to target the WebSocket
 * path. Returns 0 and the key span when the request is a valid upgrade; 426 when it is
 * a plain request without Upgrade: websocket, or asks for a Sec-WebSocket-Version other
 * than 13 (the caller answers with Sec-WebSocket-Version: 13, RFC 6455 4.4); 400 for a
 * broken upgrade (not GET, not HTTP/1.1, no Connection: upgrade token, a key that is not
 * base64 of 16 bytes, no version). */
int tw_http_check_upgrade(const tw_http_request *req, tw_span *key);

/* Writes the 101 Switching Protocols response, selecting `protocol` (NULL: none); returns
 * its length or 0 if cap is short. */
size_t tw_http_build_101(char *out, size_t cap, const char accept[29], const char *protocol);

/* Writes a complete response with Content-Length; `extra` is "" or header lines each
 * ending in \r\n; `close` adds Connection: close. Returns its length or 0 if cap is short. */
size_t tw_http_build_response(char *out, size_t cap, int status, const char *content_type,
                              const char *extra, const char *body, size_t body_len, bool close);

/* Whether an Origin ("scheme://host[:port]") matches an --allowed-origin pattern: "*"
 * alone matches any; a pattern with "://" is matched against the whole origin, one without
 * against host[:port]; inside a pattern '*' stands for one or more DNS labels (the
 * pattern https: + // + *.example.com matches https://a.example.com and
 * https://a.b.example.com, not https://example.com). Case-insensitive. */
bool tw_http_origin_match(tw_span origin, const char *pattern);

/* DESIGN 6: a request without Origin (not a browser), one whose Origin's host[:port] is
 * its Host (a page this server served), or one matching a pattern may use the server. A
 * repeated Origin header is refused. */
bool tw_http_origin_allowed(const tw_http_request *req, const char (*patterns)[256], size_t n);

/* The reason phrase for a status code ("OK", "Bad Request", ...). */
const char *tw_http_reason(int status);

#endif
