/*
 * HS256 JWT verification: published vectors computed outside this code, tokens minted
 * here with wolfCrypt's HMAC and a base64url encoder of the test's own, and every way a
 * token is refused. Tokens are copied into heap buffers of exactly their length so a
 * sanitizer build catches any read past the end.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_auth_helpers.h"

static char *copy;
static tw_grant *grant; /* the last verification's, freed by the next one and by fini */

/* Verifies a copy of tok with leeway and no audience or issuer expected; on OK the grant is
 * in `grant`, and on anything else `grant` must have been left NULL. */
static tw_auth_status verify_full(const char *tok, size_t n, const char *secret, int64_t now,
                                  int64_t leeway)
{
        const tw_auth_expect expect = {.leeway_s = leeway};

        free(copy);
        tw_grant_free(grant);
        grant = (tw_grant *)&grant; /* junk, which the verifier must overwrite */
        copy = malloc(n ? n : 1);
        cr_assert_not_null(copy);
        memcpy(copy, tok, n);
        tw_auth_status s =
            tw_auth_verify_jwt(copy, n, secret, strlen(secret), now, &expect, &grant);
        if (s == TW_AUTH_OK)
                cr_assert_not_null(grant);
        else
                cr_assert_null(grant, "a grant with %s", tw_auth_status_str(s));
        return s;
}

static tw_auth_status verify(const char *tok)
{
        return verify_full(tok, strlen(tok), SECRET, NOW, 0);
}

static tw_auth_status verify_at(const char *tok, int64_t now, int64_t leeway)
{
        return verify_full(tok, strlen(tok), SECRET, now, leeway);
}

static void cr_assert_sub(const char *want)
{
        tw_span sub = tw_grant_sub(grant);

        cr_assert_eq(sub.n, strlen(want));
        cr_assert_arr_eq(sub.p, want, sub.n);
}

/* Overwrites the stack below the caller, where tw_auth_verify_jwt's buffers were, so a span
 * left pointing into them reads garbage even without a sanitizer. */
__attribute__((noinline)) static void scribble_stack(void)
{
        volatile char junk[64 * 1024];

        for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = '#';
}

static void fini(void)
{
        free(copy);
        copy = NULL;
        tw_grant_free(grant);
        grant = NULL;
}

TestSuite(auth_jwt, .fini = fini);

/* `what` names the case in the failure message. */
#define cr_assert_status_for(got, want, what)                                                      \
        do {                                                                                       \
                tw_auth_status got_ = (got);                                                       \
                cr_assert_eq(got_, (want), "%s: got %s, want %s", (what),                          \
                             tw_auth_status_str(got_), tw_auth_status_str(want));                  \
        } while (0)
#define cr_assert_status(got, want) cr_assert_status_for(got, want, #got)

/* RFC 7515 appendix A.1: header {"typ":"JWT",\r\n "alg":"HS256"}, payload
 * {"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}, key = the
 * JWK "k" below, base64url-decoded. Re-derived at dev time (it matches the RFC) with
 *   python3 -c 'import hmac,hashlib,base64
 *   b=lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
 *   k=base64.urlsafe_b64decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH"
 *                              "75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow==")
 *   h=b(b"{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}")
 *   p=b(b"{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}")
 *   print(h+"."+p+"."+b(hmac.new(k,(h+"."+p).encode(),hashlib.sha256).digest()))' */
static const char rfc7515_token[] =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0"
    "cnVlfQ"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
static const unsigned char rfc7515_key[64] = {
    0x03, 0x23, 0x35, 0x4b, 0x2b, 0x0f, 0xa5, 0xbc, 0x83, 0x7e, 0x06, 0x65, 0x77, 0x7b, 0xa6, 0x8f,
    0x5a, 0xb3, 0x28, 0xe6, 0xf0, 0x54, 0xc9, 0x28, 0xa9, 0x0f, 0x84, 0xb2, 0xd2, 0x50, 0x2e, 0xbf,
    0xd3, 0xfb, 0x5a, 0x92, 0xd2, 0x06, 0x47, 0xef, 0x96, 0x8a, 0xb4, 0xc3, 0x77, 0x62, 0x3d, 0x22,
    0x3d, 0x2e, 0x21, 0x72, 0x05, 0x2e, 0x4f, 0x08, 0xc0, 0xcd, 0x9a, 0xf5, 0x67, 0xd0, 0x80, 0xa3,
};

/* jwt.io's default example: header {"alg":"HS256","typ":"JWT"}, payload
 * {"sub":"1234567890","name":"John Doe","iat":1516239022}, secret "your-256-bit-secret";
 * same python as above with those bytes and k=b"your-256-bit-secret". */
static const char jwtio_token[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

static tw_auth_status verify_rfc7515(int64_t now, int64_t leeway)
{
        const size_t n = sizeof(rfc7515_token) - 1;
        const tw_auth_expect expect = {.leeway_s = leeway};

        free(copy);
        copy = malloc(n);
        cr_assert_not_null(copy);
        memcpy(copy, rfc7515_token, n);
        return tw_auth_verify_jwt(copy, n, (const char *)rfc7515_key, sizeof(rfc7515_key), now,
                                  &expect, NULL);
}

Test(auth_jwt, rfc7515_vector_verifies_until_its_exp)
{
        cr_assert_status(verify_rfc7515(1300819379, 0), TW_AUTH_OK);
        cr_assert_status(verify_rfc7515(1300819380, 0), TW_AUTH_EXPIRED);
        cr_assert_status(verify_rfc7515(1300819380, 1), TW_AUTH_OK);
        cr_assert_status(verify_rfc7515(NOW, 0), TW_AUTH_EXPIRED);
}

Test(auth_jwt, jwtio_vector_verifies_and_yields_sub)
{
        tw_auth_status s =
            verify_full(jwtio_token, strlen(jwtio_token), "your-256-bit-secret", NOW, 0);
        cr_assert_status(s, TW_AUTH_OK);
        cr_assert_sub("1234567890");
        cr_assert_status(
            verify_full(jwtio_token, strlen(jwtio_token), "your-256-bit-secreT", NOW, 0),
            TW_AUTH_BAD_SIGNATURE);
}

Test(auth_jwt, minted_token_matches_the_published_one)
{
        /* Checks the test's own encoder and HMAC against jwt.io's bytes. */
        cr_assert_str_eq(mint_with("{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
                                   "{\"sub\":\"1234567890\",\"name\":\"John Doe\","
                                   "\"iat\":1516239022}",
                                   "your-256-bit-secret"),
                         jwtio_token);
}

Test(auth_jwt, valid_token)
{
        cr_assert_status(verify(mint("{\"sub\":\"alice\",\"exp\":1700000100}")), TW_AUTH_OK);
        cr_assert_status(verify(mint("{}")), TW_AUTH_OK);
        cr_assert_status(verify(mint_with("{\"alg\":\"HS256\"}", "{}", SECRET)), TW_AUTH_OK);
        cr_assert_status(verify(mint_with(" {\"typ\":\"at+jwt\", \"kid\":\"k1\",\"alg\":\"HS256\"}",
                                          "{\"nested\":{\"exp\":1,\"sub\":2}}", SECRET)),
                         TW_AUTH_OK);
}

Test(auth_jwt, sub_is_the_raw_string_without_quotes)
{
        const char *tok = mint("{\"iss\":\"x\",\"sub\":\"user:42\\n\"}");

        cr_assert_status(verify(tok), TW_AUTH_OK);
        cr_assert_sub("user:42\\n"); /* escapes stay as sent */
        free(copy);                  /* the span points neither into the caller's token */
        copy = NULL;
        scribble_stack(); /* nor into the verifier's stack */
        cr_assert_sub("user:42\\n");
}

Test(auth_jwt, sub_absent_or_refused_leaves_it_empty)
{
        const char *tok = mint("{\"exp\":1700000100}");

        cr_assert_status(verify(tok), TW_AUTH_OK);
        cr_assert_sub("");
        cr_assert_not_null(tw_grant_sub(grant).p);

        /* refused: no grant at all (verify_full checks it is NULL), so no sub */
        tok = mint("{\"sub\":\"bob\",\"exp\":1}");
        cr_assert_status(verify(tok), TW_AUTH_EXPIRED);
        cr_assert_sub("");

        tok = mint("{\"sub\":\"bob\"}");
        cr_assert_status(
            tw_auth_verify_jwt(tok, strlen(tok), SECRET, strlen(SECRET), NOW, NULL, NULL),
            TW_AUTH_OK);
}

Test(auth_jwt, sub_must_be_a_string)
{
        cr_assert_status(verify(mint("{\"sub\":42}")), TW_AUTH_MALFORMED);
        cr_assert_status(verify(mint("{\"sub\":null}")), TW_AUTH_MALFORMED);
}

Test(auth_jwt, wrong_secret)
{
        const char *tok = mint("{\"sub\":\"alice\"}");

        cr_assert_status(
            verify_full(tok, strlen(tok), "test-secret-of-a-reasonable-length?", NOW, 0),
            TW_AUTH_BAD_SIGNATURE);
        cr_assert_status(verify_full(tok, strlen(tok), "test-secret", NOW, 0),
                         TW_AUTH_BAD_SIGNATURE);
        cr_assert_status(verify_full(tok, strlen(tok), "", NOW, 0), TW_AUTH_BAD_SIGNATURE);
}

Test(auth_jwt, empty_secret_verifies_nothing)
{
        /* Even a token honestly signed with the empty key. */
        const char *tok = mint_with("{\"alg\":\"HS256\"}", "{}", "");

        cr_assert_status(verify_full(tok, strlen(tok), "", NOW, 0), TW_AUTH_BAD_SIGNATURE);
}

Test(auth_jwt, tampered_payload)
{
        char tok[1024], other[1024];

        strcpy(tok, mint("{\"sub\":\"alice\",\"admin\":false}"));
        strcpy(other, mint("{\"sub\":\"alice\",\"admin\":true}"));
        /* other's header and payload with tok's signature */
        char *sig = strrchr(tok, '.');
        strcpy(strrchr(other, '.'), sig);
        cr_assert_status(verify(other), TW_AUTH_BAD_SIGNATURE);

        /* one payload character changed in place */
        strcpy(other, tok);
        char *p = strchr(other, '.') + 1;
        *p = *p == 'e' ? 'f' : 'e';
        cr_assert_status(verify(other), TW_AUTH_BAD_SIGNATURE);
}

Test(auth_jwt, tampered_signature_or_header)
{
        char tok[1024];

        strcpy(tok, mint("{\"sub\":\"alice\"}"));
        char *sig = strrchr(tok, '.') + 1;
        sig[0] = sig[0] == 'A' ? 'B' : 'A';
        cr_assert_status(verify(tok), TW_AUTH_BAD_SIGNATURE);

        /* a header that still says HS256 but is not the one that was signed */
        strcpy(tok, mint("{\"sub\":\"alice\"}"));
        char other[1024];
        strcpy(other, mint_with("{\"alg\":\"HS256\"}", "{\"sub\":\"alice\"}", SECRET));
        strcpy(strrchr(other, '.'), strrchr(tok, '.'));
        cr_assert_status(verify(other), TW_AUTH_BAD_SIGNATURE);
}

Test(auth_jwt, alg_none_is_refused)
{
        char tok[1024];

        /* the classic: unsigned, empty signature */
        strcpy(tok, mint_with("{\"alg\":\"none\"}", "{\"sub\":\"root\"}", SECRET));
        strcpy(strrchr(tok, '.') + 1, "");
        cr_assert_status(verify(tok), TW_AUTH_BAD_ALG);
        /* and with a signature that is even correct for the bytes */
        cr_assert_status(verify(mint_with("{\"alg\":\"none\"}", "{}", SECRET)), TW_AUTH_BAD_ALG);
        cr_assert_status(verify(mint_with("{\"alg\":\"None\"}", "{}", SECRET)), TW_AUTH_BAD_ALG);
}

Test(auth_jwt, other_algs_are_refused)
{
        static const char *const headers[] = {
            "{\"alg\":\"HS512\"}", "{\"alg\":\"HS384\"}",     "{\"alg\":\"RS256\"}",
            "{\"alg\":\"hs256\"}", "{\"alg\":\"HS256 \"}",    "{\"alg\":\"HS2560\"}",
            "{\"alg\":\"\"}",      "{\"alg\":\"HS\\u0032\"}", "{\"alg\":\"HS\\u00325\\u00356\"}",
        };
        for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++)
                cr_assert_status_for(verify(mint_with(headers[i], "{}", SECRET)), TW_AUTH_BAD_ALG,
                                     headers[i]);
}

Test(auth_jwt, missing_or_non_string_alg)
{
        cr_assert_status(verify(mint_with("{\"typ\":\"JWT\"}", "{}", SECRET)), TW_AUTH_BAD_ALG);
        cr_assert_status(verify(mint_with("{}", "{}", SECRET)), TW_AUTH_BAD_ALG);
        cr_assert_status(verify(mint_with("{\"alg\":null}", "{}", SECRET)), TW_AUTH_BAD_ALG);
        cr_assert_status(verify(mint_with("{\"alg\":[\"HS256\"]}", "{}", SECRET)), TW_AUTH_BAD_ALG);
        /* "alg" only nested, not at the top level */
        cr_assert_status(verify(mint_with("{\"x\":{\"alg\":\"HS256\"}}", "{}", SECRET)),
                         TW_AUTH_BAD_ALG);
}

Test(auth_jwt, crit_header_is_refused)
{
        cr_assert_status(
            verify(mint_with("{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", "{}", SECRET)),
            TW_AUTH_BAD_ALG);
}

Test(auth_jwt, duplicate_or_escaped_names_are_malformed)
{
        cr_assert_status(verify(mint_with("{\"alg\":\"HS256\",\"alg\":\"none\"}", "{}", SECRET)),
                         TW_AUTH_MALFORMED);
        cr_assert_status(verify(mint_with("{\"alg\":\"none\",\"alg\":\"HS256\"}", "{}", SECRET)),
                         TW_AUTH_MALFORMED);
        cr_assert_status(verify(mint("{\"exp\":1,\"exp\":1800000000}")), TW_AUTH_MALFORMED);
        cr_assert_status(verify(mint("{\"sub\":\"a\",\"sub\":\"b\"}")), TW_AUTH_MALFORMED);
        cr_assert_status(verify(mint("{\"e\\u0078p\":1}")), TW_AUTH_MALFORMED);
        /* a repeated name we do not read is someone else's business ("aud" is read now) */
        cr_assert_status(verify(mint("{\"jti\":\"a\",\"jti\":\"b\"}")), TW_AUTH_OK);
}

Test(auth_jwt, exp_in_the_past_and_within_leeway)
{
        const char *tok = mint("{\"exp\":1700000000}");

        cr_assert_status(verify_at(tok, 1699999999, 0), TW_AUTH_OK);
        cr_assert_status(verify_at(tok, 1700000000, 0), TW_AUTH_EXPIRED); /* now == exp */
        cr_assert_status(verify_at(tok, 1700000100, 0), TW_AUTH_EXPIRED);
        cr_assert_status(verify_at(tok, 1700000059, 60), TW_AUTH_OK);
        cr_assert_status(verify_at(tok, 1700000060, 60), TW_AUTH_EXPIRED);
        cr_assert_status(verify_at(tok, 1700000000, -30), TW_AUTH_EXPIRED); /* no negative slack */
        cr_assert_status(verify_at(tok, 1699999999, -30), TW_AUTH_OK);
}

Test(auth_jwt, nbf_in_the_future_and_within_leeway)
{
        const char *tok = mint("{\"nbf\":1700000000}");

        cr_assert_status(verify_at(tok, 1699999999, 0), TW_AUTH_NOT_YET_VALID);
        cr_assert_status(verify_at(tok, 1700000000, 0), TW_AUTH_OK); /* now == nbf */
        cr_assert_status(verify_at(tok, 1699999940, 60), TW_AUTH_OK);
        cr_assert_status(verify_at(tok, 1699999939, 60), TW_AUTH_NOT_YET_VALID);
        cr_assert_status(verify_at(tok, 1699999999, -30), TW_AUTH_NOT_YET_VALID);
}

Test(auth_jwt, exp_and_nbf_together)
{
        const char *tok = mint("{\"nbf\":100,\"exp\":200,\"sub\":\"s\"}");

        cr_assert_status(verify_at(tok, 99, 0), TW_AUTH_NOT_YET_VALID);
        cr_assert_status(verify_at(tok, 100, 0), TW_AUTH_OK);
        cr_assert_status(verify_at(tok, 199, 0), TW_AUTH_OK);
        cr_assert_status(verify_at(tok, 200, 0), TW_AUTH_EXPIRED);
}

Test(auth_jwt, dates_must_be_integer_seconds)
{
        static const char *const payloads[] = {
            "{\"exp\":1800000000.5}",
            "{\"exp\":1.8e9}",
            "{\"exp\":\"1800000000\"}",
            "{\"exp\":true}",
            "{\"exp\":null}",
            "{\"nbf\":[1]}",
            "{\"nbf\":{}}",
            "{\"exp\":9223372036854775808}",
            "{\"nbf\":-9223372036854775809}",
        };
        for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++)
                cr_assert_status_for(verify(mint(payloads[i])), TW_AUTH_MALFORMED, payloads[i]);
}

Test(auth_jwt, dates_at_the_edges_of_int64)
{
        cr_assert_status(verify_at(mint("{\"exp\":9223372036854775807}"), NOW, INT64_MAX),
                         TW_AUTH_OK);
        cr_assert_status(verify_at(mint("{\"nbf\":-9223372036854775808}"), NOW, INT64_MAX),
                         TW_AUTH_OK);
        cr_assert_status(verify_at(mint("{\"nbf\":9223372036854775807}"), INT64_MAX - 5, 10),
                         TW_AUTH_OK);
        cr_assert_status(verify_at(mint("{\"exp\":-1}"), 0, 0), TW_AUTH_EXPIRED);
        cr_assert_status(verify_at(mint("{\"exp\":-0}"), -1, 0), TW_AUTH_OK);
}

/* Replaces the segment layout of a good token with `shape`, where H, P and S stand for
 * the good token's header, payload and signature segments. */
static const char *reshape(const char *shape)
{
        static char out[2048];
        char good[1024];

        strcpy(good, mint("{\"sub\":\"alice\"}"));
        char *d1 = strchr(good, '.'), *d2 = strrchr(good, '.');
        *d1 = *d2 = '\0';
        const char *seg[3] = {good, d1 + 1, d2 + 1};
        out[0] = '\0';
        for (const char *c = shape; *c; c++) {
                const char *part = *c == 'H'   ? seg[0]
                                   : *c == 'P' ? seg[1]
                                   : *c == 'S' ? seg[2]
                                               : NULL;
                if (part)
                        strcat(out, part);
                else
                        strncat(out, c, 1);
        }
        return out;
}

Test(auth_jwt, segment_count)
{
        cr_assert_status(verify(reshape("H.P.S")), TW_AUTH_OK);
        cr_assert_status(verify(reshape("H.P")), TW_AUTH_MALFORMED);
        cr_assert_status(verify(reshape("H.PS")), TW_AUTH_MALFORMED);
        cr_assert_status(verify(reshape("H.P.S.")), TW_AUTH_MALFORMED);
        cr_assert_status(verify(reshape("H.P.S.S")), TW_AUTH_MALFORMED);
        cr_assert_status(verify(reshape("H..P.S")), TW_AUTH_MALFORMED);
        cr_assert_status(verify(reshape(".H.P.S")), TW_AUTH_MALFORMED);
        cr_assert_status(verify(reshape("H")), TW_AUTH_MALFORMED);
        cr_assert_status(verify(reshape("..")), TW_AUTH_MALFORMED);
        cr_assert_status(verify(""), TW_AUTH_MALFORMED);
}

/* A good header and payload with a signature of n 'A's (all-zero bits, so canonical). */
static const char *zero_signature(size_t n)
{
        static char tok[1024];

        strcpy(tok, reshape("H.P."));
        size_t o = strlen(tok);
        memset(tok + o, 'A', n);
        tok[o + n] = '\0';
        return tok;
}

Test(auth_jwt, empty_or_wrong_size_signature)
{
        cr_assert_status(verify(reshape("H.P.")), TW_AUTH_MALFORMED);
        cr_assert_status(verify(zero_signature(42)), TW_AUTH_MALFORMED); /* 31 bytes */
        cr_assert_status(verify(zero_signature(44)), TW_AUTH_MALFORMED); /* 33 bytes */
        cr_assert_status(verify(zero_signature(40)), TW_AUTH_MALFORMED); /* 30 bytes */
        cr_assert_status(verify(zero_signature(64)), TW_AUTH_MALFORMED); /* 48 bytes */
        cr_assert_status(verify(reshape("H.P.SS")), TW_AUTH_MALFORMED);  /* 64 bytes: HS512 size */
        /* 43 characters, 32 bytes: well formed, just wrong */
        cr_assert_status(verify(zero_signature(43)), TW_AUTH_BAD_SIGNATURE);
}

Test(auth_jwt, not_strictly_base64url)
{
        cr_assert_status(verify(reshape("H.P.S=")), TW_AUTH_MALFORMED); /* padding */
        cr_assert_status(verify(reshape("H=.P.S")), TW_AUTH_MALFORMED);
        cr_assert_status(verify(reshape("H.P==.S")), TW_AUTH_MALFORMED);
        cr_assert_status(verify(reshape("H.P.S ")), TW_AUTH_MALFORMED); /* whitespace */
        cr_assert_status(verify(reshape(" H.P.S")), TW_AUTH_MALFORMED);
        cr_assert_status(verify(reshape("H.P\n.S")), TW_AUTH_MALFORMED);
        cr_assert_status(verify(reshape("H.P+.S")), TW_AUTH_MALFORMED); /* standard alphabet */
        cr_assert_status(verify(reshape("H.P/.S")), TW_AUTH_MALFORMED);
        cr_assert_status(verify(reshape("H.P*.S")), TW_AUTH_MALFORMED);
        cr_assert_status(verify(reshape("H.PAAAAA.S")), TW_AUTH_MALFORMED); /* a lone sextet */

        /* the signature in the standard alphabet is the same bytes, still refused */
        char tok[1024];
        strcpy(tok, reshape("H.P.S"));
        char *s = strrchr(tok, '.') + 1;
        bool swapped = false;
        for (; *s; s++) {
                if (*s == '-' || *s == '_') {
                        *s = *s == '-' ? '+' : '/';
                        swapped = true;
                }
        }
        if (swapped)
                cr_assert_status(verify(tok), TW_AUTH_MALFORMED);

        /* a NUL inside the given length */
        strcpy(tok, reshape("H.P.S"));
        size_t n = strlen(tok);
        tok[n / 2] = '\0';
        cr_assert_status(verify_full(tok, n, SECRET, NOW, 0), TW_AUTH_MALFORMED);
}

Test(auth_jwt, non_canonical_trailing_bits)
{
        /* "e30" is "{}"; "e31" decodes to the same two bytes with a stray low bit set */
        cr_assert_status(verify(mint_with("{\"alg\":\"HS256\"}", "{}", SECRET)), TW_AUTH_OK);
        char tok[1024];
        strcpy(tok, mint_with("{\"alg\":\"HS256\"}", "{}", SECRET));
        char *p = strstr(tok, ".e30.");
        cr_assert_not_null(p);
        p[3] = '1';
        cr_assert_status(verify(tok), TW_AUTH_MALFORMED);
        /* the same in the signature's last character (43 chars leave 2 unused bits) */
        strcpy(tok, mint_with("{\"alg\":\"HS256\"}", "{}", SECRET));
        char *last = tok + strlen(tok) - 1;
        *last = b64url_alphabet[(strchr(b64url_alphabet, *last) - b64url_alphabet) | 1];
        cr_assert_status(verify(tok), TW_AUTH_MALFORMED);
}

Test(auth_jwt, header_or_payload_not_an_object)
{
        static const char *const bad[] = {
            "[]",
            "[{}]",
            "\"x\"",
            "123",
            "null",
            "",
            "{",
            "{}}",
            "{} {}",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{\"a\":tru}",
            "{\"a\":\"\xff\"}",
            "{\"a\":01}",
            "{}x",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                cr_assert_status_for(verify(mint(bad[i])), TW_AUTH_MALFORMED, bad[i]);
                cr_assert_status_for(verify(mint_with(bad[i], "{}", SECRET)), TW_AUTH_MALFORMED,
                                     bad[i]);
        }
        /* whitespace around the object is JSON, so it stands */
        cr_assert_status(verify(mint(" \r\n{\"sub\":\"x\"}\t")), TW_AUTH_OK);
}

Test(auth_jwt, too_many_json_tokens)
{
        static char payload[4096];
        size_t o = 0;

        payload[o++] = '[';
        for (int i = 0; i < 300; i++)
                o += (size_t)sprintf(payload + o, "%s1", i ? "," : "");
        payload[o++] = ']';
        payload[o] = '\0';
        char obj[4200];
        snprintf(obj, sizeof(obj), "{\"a\":%s}", payload);
        cr_assert_status(verify(mint(obj)), TW_AUTH_MALFORMED);
        snprintf(obj, sizeof(obj), "{\"a\":[1,2,3]}");
        cr_assert_status(verify(mint(obj)), TW_AUTH_OK);
}

/* A token of exactly `len` bytes, padded with a filler claim; NULL when that length cannot
 * be reached (base64url never has a length of 1 mod 4). */
static const char *token_of_length(size_t len)
{
        static const char *const headers[] = {"{\"alg\":\"HS256\"}", "{\"alg\":\"HS256\",\"t\":1}",
                                              "{\"alg\":\"HS256\",\"t\":12}"};
        static char payload[8192];

        for (size_t h = 0; h < 3; h++) {
                for (size_t fill = 0; fill < 4000; fill++) {
                        int n = snprintf(payload, sizeof(payload), "{\"sub\":\"s\",\"f\":\"");
                        memset(payload + n, 'x', fill);
                        strcpy(payload + n + fill, "\"}");
                        const char *tok = mint_with(headers[h], payload, SECRET);
                        if (strlen(tok) == len)
                                return tok;
                        if (strlen(tok) > len)
                                break;
                }
        }
        return NULL;
}

Test(auth_jwt, oversize_token)
{
        const char *tok = token_of_length(TW_AUTH_TOKEN_MAX);
        cr_assert_not_null(tok);
        cr_assert_status(verify(tok), TW_AUTH_OK);

        tok = token_of_length(TW_AUTH_TOKEN_MAX + 1);
        if (!tok)
                tok = token_of_length(TW_AUTH_TOKEN_MAX + 2);
        cr_assert_not_null(tok);
        cr_assert_status(verify(tok), TW_AUTH_MALFORMED);

        /* a well-signed token is refused on length alone, and a huge one too */
        static char big[100000];
        memset(big, 'A', sizeof(big) - 1);
        big[10] = big[20] = '.';
        cr_assert_status(verify(big), TW_AUTH_MALFORMED);
}

Test(auth_jwt, null_and_empty_inputs)
{
        tw_grant *g = (tw_grant *)&g; /* junk, which the verifier must overwrite */

        cr_assert_status(tw_auth_verify_jwt(NULL, 0, SECRET, strlen(SECRET), NOW, NULL, &g),
                         TW_AUTH_MALFORMED);
        cr_assert_null(g);
        const char *tok = mint("{}");
        cr_assert_status(tw_auth_verify_jwt(tok, strlen(tok), NULL, 0, NOW, NULL, NULL),
                         TW_AUTH_BAD_SIGNATURE);
}

Test(auth_jwt, status_strings)
{
        cr_assert_str_eq(tw_auth_status_str(TW_AUTH_OK), "ok");
        cr_assert_str_eq(tw_auth_status_str(TW_AUTH_MALFORMED), "malformed");
        cr_assert_str_eq(tw_auth_status_str(TW_AUTH_BAD_ALG), "bad_alg");
        cr_assert_str_eq(tw_auth_status_str(TW_AUTH_BAD_SIGNATURE), "bad_signature");
        cr_assert_str_eq(tw_auth_status_str(TW_AUTH_EXPIRED), "expired");
        cr_assert_str_eq(tw_auth_status_str(TW_AUTH_NOT_YET_VALID), "not_yet_valid");
        cr_assert_str_eq(tw_auth_status_str(TW_AUTH_BAD_AUDIENCE), "bad_audience");
        cr_assert_str_eq(tw_auth_status_str(TW_AUTH_BAD_ISSUER), "bad_issuer");
        cr_assert_str_eq(tw_auth_status_str(TW_AUTH_NO_MEMORY), "no_memory");
        cr_assert_str_eq(tw_auth_status_str((tw_auth_status)99), "unknown");
}
