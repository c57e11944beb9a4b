/*
 * auth — verifying the bearer token a client presents on upgrade (DESIGN 6): a JWT in
 * compact JWS form, HS256 only; what the token grants (topic patterns it may subscribe to
 * and publish on); and a constant-time comparison for shared secrets such as the publish
 * token.
 *
 * Owns: bytes in, verdict out. Decoding base64url, reading the JOSE header and the claims
 * set, the HMAC-SHA256 check (wolfCrypt; no hand-written crypto), the time, audience and
 * issuer checks, and the grant a verified token yields.
 * Must not touch: sockets, clocks (the caller passes now), configuration (the caller passes
 * a tw_auth_expect), global state, and the heap except for the one allocation of a grant.
 *
 * Strict on purpose: a token is refused unless it is exactly three base64url segments
 * (no padding, canonical trailing bits), the header and payload are each one JSON object,
 * the signature is 32 bytes, and no name we read (header: alg, crit; claims: exp, nbf,
 * sub, subs, pubs, aud, iss) appears twice. Top-level names are compared as raw bytes and
 * a name holding a backslash escape is refused, so "e\u0078p" cannot slip an expiry past
 * us that another reader would see. A header with "crit" is refused (BAD_ALG): we
 * understand no extension.
 */
#ifndef TICKWIRE_AUTH_H
#define TICKWIRE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tickwire/span.h"

/* Clock skew allowed between token issuers and us, for exp and nbf. */
#define TW_TOKEN_LEEWAY_S 5

#define TW_AUTH_TOKEN_MAX    4096 /* longer tokens are MALFORMED */
#define TW_AUTH_JSON_TOKS    256  /* JSON tokens (jsmn) allowed in header or payload */
#define TW_AUTH_PATTERNS_MAX 64   /* patterns allowed in "subs", and again in "pubs" */
#define TW_AUTH_PATTERN_MAX  129  /* bytes in one pattern: a 128-byte topic name and a '*' */

typedef enum {
        TW_AUTH_OK = 0,
        TW_AUTH_MALFORMED,
        TW_AUTH_BAD_ALG,
        TW_AUTH_BAD_SIGNATURE,
        TW_AUTH_EXPIRED,
        TW_AUTH_NOT_YET_VALID,
        TW_AUTH_BAD_AUDIENCE,
        TW_AUTH_BAD_ISSUER,
        TW_AUTH_NO_MEMORY /* the token is good but its grant could not be allocated */
} tw_auth_status;

/* What the server requires of a token beyond its signature; NULL members = no check. */
typedef struct tw_auth_expect {
        const char *audience; /* --jwt-audience: "aud" (a string, or an array of strings) must
                                 contain it, byte for byte */
        const char *issuer;   /* --jwt-issuer: "iss" must equal it, byte for byte */
        int64_t leeway_s;     /* slack for exp/nbf (negative = 0) */
} tw_auth_expect;

/* What one verified token grants: its exp, its sub and its two pattern lists, copied into a
 * single allocation of 16 bytes + |sub| + (|pattern| + 1) per pattern. Every byte of it
 * comes out of the decoded payload, so a grant is never larger than 16 + 3072 bytes; a token
 * with a short sub and a handful of patterns makes one of well under 100 bytes. */
typedef struct tw_grant tw_grant;

/* Verifies token (header.payload.signature, base64url) with HMAC-SHA256 over
 * "header.payload". The header must be a JSON object with "alg":"HS256" (any "typ");
 * "none" and every other alg are refused. An empty secret verifies nothing (BAD_SIGNATURE).
 * The MAC is compared in constant time.
 *
 * Order: structure, header and alg, then the MAC, and only then the payload's JSON, so no
 * claim of an unauthenticated payload is looked at. The claims are then checked in this
 * order, the first failure deciding:
 *   1. shape (MALFORMED): exp and nbf, when present, are integer seconds within int64;
 *      sub and iss are strings; aud is a string or an array of strings; subs and pubs are
 *      arrays of at most TW_AUTH_PATTERNS_MAX valid patterns (see tw_auth_pattern_match;
 *      an escape is never valid, a pattern listed twice is). These are checked whether or
 *      not expect asks about them.
 *   2. EXPIRED when now_s >= exp + leeway, NOT_YET_VALID when now_s + leeway < nbf.
 *   3. BAD_ISSUER when expect->issuer is set and iss is absent or not exactly it.
 *   4. BAD_AUDIENCE when expect->audience is set and aud is absent, or is neither that
 *      string nor an array holding it. Without an expected audience, aud is not looked at
 *      beyond its shape.
 * Strings are compared as sent, escapes and all: "\u0061" never equals "a" (the safe side).
 * expect may be NULL: no audience or issuer check, leeway 0.
 *
 * grant may be NULL: nothing is allocated. Otherwise *grant is NULL on return unless the
 * result is OK, when it holds a new grant the caller frees with tw_grant_free. If that
 * allocation fails the result is NO_MEMORY (never OK) and *grant is NULL. */
tw_auth_status tw_auth_verify_jwt(const char *token, size_t len, const char *secret,
                                  size_t secret_len, int64_t now_s, const tw_auth_expect *expect,
                                  tw_grant **grant);

/* Accessors. A NULL grant grants nothing: exp 0, empty sub, no topic. */
int64_t tw_grant_exp(const tw_grant *g); /* the "exp" claim, 0 when absent */
tw_span tw_grant_sub(const tw_grant *g); /* raw "sub" (escapes as sent, any length), empty
                                            when absent; points into the grant */
/* True when one of the token's "subs" (resp. "pubs") patterns matches topic. No such claim,
 * or an empty array, allows nothing. */
bool tw_grant_may_subscribe(const tw_grant *g, tw_span topic);
bool tw_grant_may_publish(const tw_grant *g, tw_span topic);
void tw_grant_free(tw_grant *g); /* NULL is fine */

/* Topic pattern: a literal topic name ("AAPL"), or a literal prefix followed by one trailing
 * '*' ("fx.*" matches every topic starting with "fx.", "fx." itself included; "*" matches
 * every topic). Only a final '*' is special. In a token, a pattern is valid when it is a
 * topic name (1-128 bytes of [A-Za-z0-9._:-]), or "*", or a topic name followed by '*'.
 * Matching compares bytes and does not validate the topic (the caller does, with
 * tw_topic_valid). An empty pattern or an empty topic matches nothing. */
bool tw_auth_pattern_match(tw_span pattern, tw_span topic);

/* Constant-time equality of two byte strings, length included: the time taken depends only
 * on the length of `expected` (the secret), never on where the strings differ or how long
 * `given` is. Every byte of expected is read on every call; given is read only when the
 * lengths are equal. A pointer may be NULL when its length is 0. Two empty strings are
 * equal: a caller with no secret configured must not get here. */
bool tw_auth_equal(const char *given, size_t given_len, const char *expected, size_t expected_len);

/* A short lowercase name for logs ("ok", "malformed", "bad_alg", ...). */
const char *tw_auth_status_str(tw_auth_status s);

#endif
