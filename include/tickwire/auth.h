/*
 * auth — verifying the bearer token a client presents on upgrade (DESIGN 6): a JWT in
 * compact JWS form, HS256 only.
 *
 * Owns: bytes in, verdict out. Decoding base64url, reading the JOSE header and the claims
 * set, the HMAC-SHA256 check (wolfCrypt; no hand-written crypto) and the time checks.
 * Must not touch: sockets, clocks (the caller passes now), configuration, the heap.
 *
 * Strict on purpose: a token is refused unless it is exactly three base64url segments
 * (no padding, canonical trailing bits), the header and payload are each one JSON object,
 * the signature is 32 bytes, and no name we read (alg, crit, exp, nbf, sub) appears twice.
 * Top-level names are compared as raw bytes and a name holding a backslash escape is
 * refused, so "e\u0078p" cannot slip an expiry past us that another reader would see.
 * A header with "crit" is refused (BAD_ALG): we understand no extension.
 */
#ifndef TICKWIRE_AUTH_H
#define TICKWIRE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "tickwire/http.h" /* tw_span */

#define TW_AUTH_TOKEN_MAX 4096 /* longer tokens are MALFORMED */
#define TW_AUTH_JSON_TOKS 256  /* JSON tokens (jsmn) allowed in header or payload */

typedef enum {
        TW_AUTH_OK = 0,
        TW_AUTH_MALFORMED,
        TW_AUTH_BAD_ALG,
        TW_AUTH_BAD_SIGNATURE,
        TW_AUTH_EXPIRED,
        TW_AUTH_NOT_YET_VALID
} tw_auth_status;

/* Verifies token (header.payload.signature, base64url) with HMAC-SHA256 over "header.payload".
 * The header must be a JSON object with "alg":"HS256" (any "typ"); "none" and every other alg are
 * refused. Claims: "exp" and "nbf" (NumericDate, integer seconds) are checked against now_s with
 * `leeway_s` slack when present. On OK copies the raw "sub" string (without quotes)
 * if present (else empty). Compares the MAC in constant time.
 *
 * Order: structure, header and alg, then the MAC, and only then the payload's JSON, so no
 * claim of an unauthenticated payload is looked at. The token is expired when
 * now_s >= exp + leeway_s and not yet valid when now_s + leeway_s < nbf (a negative
 * leeway counts as 0); a non-integer exp or nbf, or a "sub" that is not a string, is
 * MALFORMED. An empty secret verifies nothing (BAD_SIGNATURE).
 *
 * On OK, "sub" (raw, escapes as sent) is copied NUL-terminated into sub[0..sub_cap); a
 * longer one is MALFORMED. sub may be NULL. */
tw_auth_status tw_auth_verify_jwt(const char *token, size_t len, const char *secret,
                                  size_t secret_len, int64_t now_s, int64_t leeway_s, char *sub,
                                  size_t sub_cap);

/* A short lowercase name for logs ("ok", "malformed", "bad_alg", ...). */
const char *tw_auth_status_str(tw_auth_status s);

#endif
