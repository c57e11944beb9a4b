/*
 * The HTTP endpoints. Everything here decides; nothing sends: a tw_reply goes back to the
 * connection, which writes it (tw_http_build_response), closes, or opens the session.
 *
 * Order of the checks on an upgrade: limits and draining (503), the upgrade itself
 * (426/400), the Origin (403), the token (401); only then the 101. On POST /publish the
 * head is enough to refuse (tw_endpoints_early): no token (401), not JSON (415 — a
 * cross-site form can post text/plain without asking, but not application/json), an
 * origin not allowed (403). A cross-origin page must first ask OPTIONS /publish, which
 * is answered for the allowed origins only.
 */
#include "tickwire/endpoints.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tickwire/assets.h"
#include "tickwire/auth.h"
#include "tickwire/metrics.h"
#include "tickwire/loop.h"
#include "tickwire/topic.h"

static bool span_eq(tw_span s, const char *lit)
{
        size_t n = strlen(lit);

        return s.n == n && memcmp(s.p, lit, n) == 0;
}

static void header(tw_reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void header(tw_reply *r, const char *fmt, ...)
{
        size_t room = sizeof(r->headers) - r->headers_len;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(r->headers + r->headers_len, room, fmt, ap);
        va_end(ap);
        if (n > 0 && (size_t)n < room)
                r->headers_len += (size_t)n;
        else
                r->headers[r->headers_len] = '\0'; /* cannot happen: our headers are short */
}

static void reply(tw_reply *r, int status, const char *ctype, const char *body, size_t n)
{
        r->status = status;
        r->ctype = ctype;
        if (n > sizeof(r->small))
                n = sizeof(r->small);
        memcpy(r->small, body, n);
        r->body = r->small;
        r->blen = n;
}

/* A plain-text error answer with its reason phrase, counted as a failed handshake. */
static void refuse(struct tw_worker *w, tw_reply *r, int status, enum tw_hs_fail why)
{
        const char *reason = tw_http_reason(status);

        TW_INC(tw_worker_metrics(w)->handshake_failures[why]);
        reply(r, status, "text/plain", reason, strlen(reason));
        r->close = true;
}

void tw_reply_done(tw_reply *r)
{
        free(r->heap);
        r->heap = NULL;
        tw_grant_free(r->grant);
        r->grant = NULL;
}

/* ---- tokens ---- */

/* Whether the request presents `want` in ?token= or a Bearer header. Compared in constant
 * time, length included: timing must not tell a guesser how much of a guess was right. */
static bool has_token(const tw_http_request *req, tw_span want)
{
        const tw_span *auth = tw_http_header_get(req, "Authorization");
        bool ok = false;
        tw_span q;

        if (tw_http_query_get(req->query, "token", &q))
                ok |= tw_auth_equal(q.p, q.n, want.p, want.n);
        if (auth && auth->n >= 7 && strncasecmp(auth->p, "Bearer ", 7) == 0)
                ok |= tw_auth_equal(auth->p + 7, auth->n - 7, want.p, want.n);
        return ok;
}

static bool publisher(const tw_config *cfg, const tw_http_request *req)
{
        return !cfg->publish_token ||
               has_token(req, (tw_span){cfg->publish_token, strlen(cfg->publish_token)});
}

tw_auth_status tw_endpoints_verify_token(const tw_config *cfg, tw_span t, struct tw_grant **g)
{
        const tw_auth_expect expect = {cfg->jwt_audience, cfg->jwt_issuer, TW_TOKEN_LEEWAY_S};

        return tw_auth_verify_jwt(t.p, t.n, cfg->jwt_secret, strlen(cfg->jwt_secret),
                                  (int64_t)time(NULL), &expect, g);
}

/* With --jwt-secret a session needs a valid token in ?token= or a Bearer header; *g
 * receives what it grants. */
static bool authorized(const tw_config *cfg, const tw_http_request *req, struct tw_grant **g)
{
        const tw_span *auth = tw_http_header_get(req, "Authorization");
        tw_span t;

        *g = NULL;
        if (!cfg->jwt_secret)
                return true;
        if (tw_http_query_get(req->query, "token", &t) &&
            tw_endpoints_verify_token(cfg, t, g) == TW_AUTH_OK)
                return true;
        return auth && auth->n > 7 && strncasecmp(auth->p, "Bearer ", 7) == 0 &&
               tw_endpoints_verify_token(cfg, (tw_span){auth->p + 7, auth->n - 7}, g) == TW_AUTH_OK;
}

/* ---- the upgrade ---- */

static bool origin_ok(const tw_config *cfg, const tw_http_request *req)
{
        return tw_http_origin_allowed(req, cfg->origins, cfg->norigins);
}

static void upgrade(struct tw_worker *w, const tw_http_request *req, tw_reply *r)
{
        const tw_config *cfg = tw_worker_cfg(w);
        tw_span key;
        int st = tw_http_check_upgrade(req, &key);

        if (st == 426) {
                refuse(w, r, 426, TW_HS_NOT_UPGRADE);
                header(r, "Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n");
                return;
        }
        if (st != 0 || tw_ws_accept_key(key, r->accept) < 0) {
                refuse(w, r, 400, TW_HS_BAD_REQUEST);
                return;
        }
        /* Cross-site WebSocket hijacking: a page elsewhere must not ride the user's
         * cookies or network position into a session. */
        if (!origin_ok(cfg, req)) {
                refuse(w, r, 403, TW_HS_ORIGIN);
                return;
        }
        if (!authorized(cfg, req, &r->grant)) {
                TW_INC(tw_worker_metrics(w)->handshake_failures[TW_HS_AUTH]);
                reply(r, 401, "text/plain", "Unauthorized\n", 13);
                header(r, "WWW-Authenticate: Bearer\r\n");
                r->close = true;
                return;
        }
        /* Publishing: the publish token, or with tokens the grant's "pubs"; a server with
         * neither lets anyone publish. */
        r->publisher =
            cfg->publish_token
                ? has_token(req, (tw_span){cfg->publish_token, strlen(cfg->publish_token)})
                : !cfg->jwt_secret;
        r->protocol = tw_http_header_has_token(req, "Sec-WebSocket-Protocol", TW_SUBPROTOCOL);
        r->status = 101;
}

/* ---- publish and CORS ---- */

static bool json_content(const tw_http_request *req)
{
        const tw_span *ct = tw_http_header_get(req, "Content-Type");
        static const char want[] = "application/json";
        size_t n = sizeof(want) - 1;

        return ct && ct->n >= n && strncasecmp(ct->p, want, n) == 0 &&
               (ct->n == n || ct->p[n] == ';' || ct->p[n] == ' ');
}

/* A cross-origin caller allowed by --allowed-origin: may read our answers. */
void tw_endpoints_cors(tw_span origin, tw_reply *r)
{
        if (origin.n)
                header(r, "Access-Control-Allow-Origin: %.*s\r\nVary: Origin\r\n", (int)origin.n,
                       origin.p);
}

static void cors_headers(const tw_http_request *req, tw_reply *r)
{
        const tw_span *origin = tw_http_header_get(req, "Origin");

        if (origin)
                tw_endpoints_cors(*origin, r);
}

bool tw_endpoints_early(struct tw_worker *w, const tw_http_request *req, tw_reply *r)
{
        const tw_config *cfg = tw_worker_cfg(w);

        if (!span_eq(req->path, "/publish") || !span_eq(req->method, "POST"))
                return false;
        if (!origin_ok(cfg, req)) {
                refuse(w, r, 403, TW_HS_ORIGIN);
        } else if (!publisher(cfg, req)) {
                TW_INC(tw_worker_metrics(w)->handshake_failures[TW_HS_AUTH]);
                reply(r, 401, "application/json", "{\"error\":\"publish token required\"}", 34);
                r->close = true;
        } else if (!json_content(req)) {
                TW_INC(tw_worker_metrics(w)->handshake_failures[TW_HS_BAD_REQUEST]);
                reply(r, 415, "application/json",
                      "{\"error\":\"Content-Type must be application/json\"}", 49);
                r->close = true;
        } else {
                return false;
        }
        cors_headers(req, r);
        return true;
}

static void publish(struct tw_worker *w, tw_conn *c, const tw_http_request *req, const char *body,
                    size_t blen, tw_reply *r)
{
        tw_span topic = {"", 0}, id = {"", 0}, origin = {"", 0};
        const tw_span *o = tw_http_header_get(req, "Origin");
        size_t n = 0;
        int st;

        if (tw_endpoints_early(w, req, r))
                return;
        tw_http_query_get(req->query, "topic", &topic);
        tw_http_query_get(req->query, "id", &id);
        if (o)
                origin = *o; /* allowed (tw_endpoints_early): a deferred answer repeats it */
        st = tw_topic_http_publish(w, c, topic, id, origin, body, blen, r->small, sizeof(r->small),
                                   &n);
        r->status = st;
        r->ctype = "application/json";
        r->body = r->small;
        r->blen = n;
        cors_headers(req, r);
}

/* OPTIONS /publish: what a cross-origin page asks before a POST with a JSON body. */
static void preflight(struct tw_worker *w, const tw_http_request *req, tw_reply *r)
{
        const tw_config *cfg = tw_worker_cfg(w);

        if (!tw_http_header_get(req, "Origin") || !origin_ok(cfg, req)) {
                refuse(w, r, 403, TW_HS_ORIGIN);
                return;
        }
        r->status = 204;
        cors_headers(req, r);
        header(r, "Access-Control-Allow-Methods: POST, OPTIONS\r\n"
                  "Access-Control-Allow-Headers: Authorization, Content-Type\r\n"
                  "Access-Control-Max-Age: 600\r\n");
}

/* ---- monitoring and files ---- */

static void metrics_page(struct tw_worker *w, tw_reply *r)
{
        unsigned nw = tw_worker_count(w);
        tw_metrics *all[nw];
        size_t cap = 16384, n;

        tw_worker_metrics_all(w, all);
        for (;;) {
                r->heap = malloc(cap);
                if (!r->heap) {
                        reply(r, 503, "text/plain", "out of memory\n", 14);
                        return;
                }
                n = tw_metrics_render(all, nw, tw_worker_server_draining(w), r->heap, cap);
                if (n < cap) {
                        /* Which node: a cluster's scrapes are told apart by it. */
                        int k = snprintf(r->heap + n, cap - n,
                                         "# HELP tickwire_node_info This node (--node-id).\n"
                                         "# TYPE tickwire_node_info gauge\n"
                                         "tickwire_node_info{node=\"%s\"} 1\n",
                                         tw_worker_cfg(w)->node_id);

                        if (k > 0 && (size_t)k < cap - n) {
                                n += (size_t)k;
                                break;
                        }
                        n += (size_t)(k > 0 ? k : 0);
                }
                free(r->heap);
                cap = n + 1;
        }
        r->status = 200;
        r->ctype = "text/plain; version=0.0.4";
        r->body = r->heap;
        r->blen = n;
}

/* A built-in file, revalidated by ETag: the library and the page change with the server. */
static bool file(const tw_http_request *req, tw_reply *r)
{
        const tw_asset *a = tw_asset_find(req->path);
        const tw_span *inm = tw_http_header_get(req, "If-None-Match");

        if (!a)
                return false;
        header(r, "ETag: %s\r\nCache-Control: no-cache\r\n", a->etag);
        if (inm && inm->n == strlen(a->etag) && memcmp(inm->p, a->etag, inm->n) == 0) {
                r->status = 304;
                return true;
        }
        r->status = 200;
        r->ctype = a->ctype;
        r->body = a->data;
        r->blen = a->len;
        return true;
}

void tw_endpoints_answer(struct tw_worker *w, tw_conn *c, const tw_http_request *req,
                         const char *body, size_t blen, bool over_limit, tw_reply *r)
{
        bool get = span_eq(req->method, "GET");
        bool draining = tw_worker_server_draining(w);

        r->close = req->minor_version == 0
                       ? !tw_http_header_has_token(req, "Connection", "keep-alive")
                       : tw_http_header_has_token(req, "Connection", "close");
        if (span_eq(req->path, "/ws")) {
                if (over_limit || draining)
                        refuse(w, r, 503, TW_HS_LIMIT);
                else
                        upgrade(w, req, r);
        } else if (span_eq(req->path, "/healthz") && get) {
                if (draining)
                        reply(r, 503, "text/plain", "draining\n", 9);
                else if (!tw_topic_clustered(w))
                        reply(r, 200, "text/plain", "ok\n", 3);
                else if (tw_topic_broker_up(w))
                        reply(r, 200, "text/plain", "ok broker=up\n", 13);
                else /* connections go on; publishes are refused until it is back */
                        reply(r, 200, "text/plain", "ok broker=down\n", 15);
        } else if (span_eq(req->path, "/metrics") && get) {
                metrics_page(w, r);
        } else if (span_eq(req->path, "/publish") && span_eq(req->method, "POST")) {
                publish(w, c, req, body, blen, r);
        } else if (span_eq(req->path, "/publish") && span_eq(req->method, "OPTIONS")) {
                preflight(w, req, r);
        } else if (span_eq(req->path, "/healthz") || span_eq(req->path, "/metrics") ||
                   span_eq(req->path, "/publish")) {
                reply(r, 405, "text/plain", "Method Not Allowed\n", 19);
        } else if (!(get && file(req, r))) {
                TW_INC(tw_worker_metrics(w)->handshake_failures[TW_HS_NOT_FOUND]);
                reply(r, 404, "text/plain", "Not Found\n", 10);
        }
        /* Limits refuse sessions, not monitoring: /metrics and /healthz still answer
         * (from the reserve of slots kept past the limit), once: then the connection is
         * closed, so the reserve cannot be held by keep-alive clients. */
        if (over_limit)
                r->close = true;
}
