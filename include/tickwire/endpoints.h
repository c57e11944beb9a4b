/*
 * endpoints — what each HTTP request on the port is answered (DESIGN 6): the upgrade
 * checks up to the 101, /healthz, /metrics, POST /publish and its CORS preflight, the web
 * files built into the binary (/ and /tickwire.js), the Origin policy.
 *
 * Owns: routing and the replies' content. Must not touch: the connection or its socket:
 * it fills a tw_reply from a parsed request, and conn.c sends it, closes, or opens the
 * WebSocket session the reply allows. A POST /publish is published here (topic module).
 */
#ifndef TICKWIRE_ENDPOINTS_H
#define TICKWIRE_ENDPOINTS_H

#include <stdbool.h>
#include <stddef.h>

#include "tickwire/auth.h"
#include "tickwire/config.h"
#include "tickwire/http.h"

struct tw_worker;
struct tw_grant;
struct tw_conn;

#define TW_SUBPROTOCOL "tickwire.v1"

typedef struct tw_reply {
        int status;        /* 101: open the session (the fields below say how) */
        const char *ctype; /* Content-Type, or NULL for none */
        char headers[640]; /* extra header lines, each ending in CRLF */
        size_t headers_len;
        const void *body; /* into `small`, `heap` or static storage */
        size_t blen;
        char *heap;      /* a body allocated for this reply (freed by tw_reply_done) */
        char small[320]; /* short bodies */
        bool close;      /* answer with Connection: close, then the lingering close */
        /* For 101: */
        char accept[29];        /* Sec-WebSocket-Accept */
        bool protocol;          /* select TW_SUBPROTOCOL */
        bool publisher;         /* presented the publish token (or none is needed) */
        struct tw_grant *grant; /* the token's grant, moved to the session; NULL = none */
} tw_reply;

/* Whether the request head alone decides the answer before its body is read (POST
 * /publish without the publish token: 401; without JSON content: 415; from an origin not
 * allowed: 403). Fills r (with close set: the body that follows is read and dropped by
 * the lingering close) and returns true, or returns false and leaves r alone. */
bool tw_endpoints_early(struct tw_worker *w, const tw_http_request *req, tw_reply *r);

/* The answer to a whole request (head and body) on connection c. `over_limit`: the
 * connection is past a connection limit (upgrades get 503, monitoring answers once and
 * closes). Status 0: the answer comes later, through tw_worker_answer() (a publish that
 * Redis sequences); c is named only for that. */
void tw_endpoints_answer(struct tw_worker *w, struct tw_conn *c, const tw_http_request *req,
                         const char *body, size_t blen, bool over_limit, tw_reply *r);

/* Verifies a JWT as the server's flags ask (secret, audience, issuer, leeway); *g receives
 * its grant on TW_AUTH_OK. Also used for {"type":"refresh"} on an open session. */
tw_auth_status tw_endpoints_verify_token(const tw_config *cfg, tw_span token, struct tw_grant **g);

/* Adds the CORS answer for an allowed `origin` to r (none when origin is empty). */
void tw_endpoints_cors(tw_span origin, tw_reply *r);

/* Releases what the reply holds (its heap body; a grant not taken by a session). */
void tw_reply_done(tw_reply *r);

#endif
