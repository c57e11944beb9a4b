/*
 * auth — HS256 JWT verification (RFC 7519 over RFC 7515 compact JWS), the grant a verified
 * token yields, and constant-time comparison of shared secrets.
 *
 * The token is checked in the order an attacker cannot exploit: shape first (three
 * strictly base64url segments), then the header (a JSON object naming HS256), then the
 * MAC over the header and payload text exactly as sent, and only then the payload's
 * claims. Everything that can be refused without a key is refused before the HMAC runs,
 * and nothing in the payload steers a decision until the MAC has vouched for it.
 *
 * JSON goes through proto's strict scanner (tw_json_valid: one well-formed value, UTF-8,
 * bounded depth) and then jsmn for the top-level names, as in proto.c. Two readers of one
 * token must never disagree about it, so a name we act on may not appear twice and a
 * top-level name may not be spelt with escapes.
 *
 * A grant is kept per authenticated connection for as long as it lives, so it is one
 * allocation holding only what is asked of it later (exp, sub, the two pattern lists, each
 * pattern behind a length byte), not the token or its tokens. Lists are short (at most
 * TW_AUTH_PATTERNS_MAX) and scanned linearly.
 */
#include "tickwire/auth.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/ssl.h> /* wolfSSL_CRYPTO_memcmp: constant time */

#include "tickwire/proto.h" /* tw_json_valid, tw_topic_valid */

#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#define MAC_LEN   32                          /* HMAC-SHA256 */
#define SEG_BYTES (TW_AUTH_TOKEN_MAX / 4 * 3) /* any decoded segment of a legal token fits */

static int b64url_value(unsigned char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '-')
                return 62;
        if (c == '_')
                return 63;
        return -1;
}

/* Strict unpadded base64url (RFC 7515 section 2): no '=', no whitespace, no length that
 * leaves a lone sextet, and the unused low bits of the last character must be zero, so
 * each byte string has exactly one spelling. Decoding is not crypto; wolfCrypt's
 * Base64_Decode wants the other alphabet and padding, and is lenient about both. */
static bool b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap, size_t *outn)
{
        uint32_t acc = 0;
        unsigned bits = 0;
        size_t o = 0;

        if (n % 4 == 1 || n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > cap)
                return false;
        for (size_t i = 0; i < n; i++) {
                int v = b64url_value((unsigned char)s[i]);
                if (v < 0)
                        return false;
                acc = (acc << 6) | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (unsigned char)(acc >> bits);
                        acc &= (1u << bits) - 1;
                }
        }
        if (acc != 0)
                return false;
        *outn = o;
        return true;
}

static bool span_is(tw_span s, const char *lit)
{
        size_t n = strlen(lit);

        return s.n == n && memcmp(s.p, lit, n) == 0;
}

static tw_span tok_span(const char *p, const jsmntok_t *t)
{
        return (tw_span){p + t->start, (size_t)(t->end - t->start)};
}

/* One JSON object in p[0..n): fills toks and returns how many, or 0. */
static int parse_object(const char *p, size_t n, jsmntok_t *toks)
{
        jsmn_parser parser;

        if (!tw_json_valid(p, n))
                return 0;
        jsmn_init(&parser);
        int r = jsmn_parse(&parser, p, n, toks, TW_AUTH_JSON_TOKS);
        if (r <= 0 || toks[0].type != JSMN_OBJECT)
                return 0; /* too many tokens, or a valid value that is not an object */
        return r;
}

struct field {
        const char *name;
        const jsmntok_t *val; /* NULL when absent */
};

/* Picks the values of the named top-level members. False on a repeated name we read or
 * any top-level name with an escape in it. */
static bool find_fields(const char *p, const jsmntok_t *toks, int ntok, struct field *f, size_t nf)
{
        for (int i = 1; i + 1 < ntok; i++) {
                if (toks[i].parent != 0)
                        continue; /* inside a nested value, or a value (its parent is a key) */
                tw_span key = tok_span(p, &toks[i]);
                if (memchr(key.p, '\\', key.n))
                        return false;
                for (size_t j = 0; j < nf; j++) {
                        if (!span_is(key, f[j].name))
                                continue;
                        if (f[j].val)
                                return false;
                        f[j].val = &toks[i + 1];
                }
        }
        return true;
}

/* A NumericDate restricted to integer seconds: -?[0-9]+ within int64. */
static bool parse_date(const char *p, const jsmntok_t *t, int64_t *out)
{
        tw_span s = tok_span(p, t);
        bool neg = s.n > 0 && s.p[0] == '-';
        uint64_t v = 0;
        size_t i = neg ? 1 : 0;

        if (t->type != JSMN_PRIMITIVE || i == s.n)
                return false;
        for (; i < s.n; i++) {
                if (s.p[i] < '0' || s.p[i] > '9')
                        return false; /* a fraction, an exponent, true, false or null */
                uint64_t d = (uint64_t)(s.p[i] - '0');
                if (v > ((uint64_t)INT64_MAX + 1 - d) / 10)
                        return false;
                v = v * 10 + d;
        }
        if (!neg && v > (uint64_t)INT64_MAX)
                return false;
        *out = neg ? (int64_t)(0 - v) : (int64_t)v;
        return true;
}

static int64_t add_sat(int64_t a, int64_t b) /* b >= 0 */
{
        return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static tw_auth_status check_header(const char *p, size_t n)
{
        jsmntok_t toks[TW_AUTH_JSON_TOKS];
        struct field f[] = {{"alg", NULL}, {"crit", NULL}};

        int ntok = parse_object(p, n, toks);
        if (ntok == 0 || !find_fields(p, toks, ntok, f, 2))
                return TW_AUTH_MALFORMED;
        const jsmntok_t *alg = f[0].val;
        /* Comparing the raw bytes refuses "HS\u0032256" too, which is the safe side. */
        if (!alg || alg->type != JSMN_STRING || !span_is(tok_span(p, alg), "HS256"))
                return TW_AUTH_BAD_ALG;
        if (f[1].val)
                return TW_AUTH_BAD_ALG; /* an extension we would be obliged to understand */
        return TW_AUTH_OK;
}

/* A pattern as a token may spell it: a topic name, "*", or a topic name and a '*'. */
static bool pattern_valid(tw_span s)
{
        bool star = s.n > 0 && s.p[s.n - 1] == '*';

        if (star)
                s.n--;
        return (star && s.n == 0) || tw_topic_valid(s);
}

/* "subs" or "pubs": an array of at most TW_AUTH_PATTERNS_MAX valid patterns. Adds the bytes
 * their copy takes in a grant (a length byte and the pattern each) to *bytes. */
static bool pattern_list(const char *p, const jsmntok_t *arr, size_t *bytes)
{
        if (arr->type != JSMN_ARRAY || arr->size > TW_AUTH_PATTERNS_MAX)
                return false;
        /* Each element so far was a string, which has no child tokens, so element k is
         * the k-th token after the array's. */
        for (int k = 1; k <= arr->size; k++) {
                if (arr[k].type != JSMN_STRING || !pattern_valid(tok_span(p, &arr[k])))
                        return false;
                *bytes += 1 + (size_t)(arr[k].end - arr[k].start);
        }
        return true;
}

/* "aud": a string or an array of strings. With want != NULL, also whether it holds want. */
static bool audience(const char *p, const jsmntok_t *aud, const char *want, bool *found)
{
        if (aud->type == JSMN_STRING) {
                *found = want && span_is(tok_span(p, aud), want);
                return true;
        }
        if (aud->type != JSMN_ARRAY)
                return false;
        *found = false;
        for (int k = 1; k <= aud->size; k++) { /* as in pattern_list */
                if (aud[k].type != JSMN_STRING)
                        return false;
                if (want && span_is(tok_span(p, &aud[k]), want))
                        *found = true;
        }
        return true;
}

struct tw_grant {
        int64_t exp;     /* 0 when absent */
        uint16_t sub_n;  /* data[0..sub_n) is sub */
        uint16_t subs_n; /* then subs_n bytes of subscribe patterns, each after its length byte */
        uint16_t pubs_n; /* then pubs_n bytes of publish patterns, likewise */
        char data[];
};
_Static_assert(sizeof(struct tw_grant) == 16, "the size auth.h promises");

static void put_list(char *out, const char *p, const jsmntok_t *arr)
{
        size_t o = 0;

        for (int k = 1; arr && k <= arr->size; k++) {
                tw_span s = tok_span(p, &arr[k]);
                out[o++] = (char)(unsigned char)s.n; /* <= TW_AUTH_PATTERN_MAX */
                memcpy(out + o, s.p, s.n);
                o += s.n;
        }
}

enum { C_EXP, C_NBF, C_SUB, C_SUBS, C_PUBS, C_AUD, C_ISS, C_COUNT };

static tw_auth_status check_claims(const char *p, size_t n, int64_t now_s,
                                   const tw_auth_expect *expect, tw_grant **grant)
{
        static const tw_auth_expect none = {0};
        jsmntok_t toks[TW_AUTH_JSON_TOKS];
        struct field f[C_COUNT] = {{"exp", NULL},  {"nbf", NULL}, {"sub", NULL}, {"subs", NULL},
                                   {"pubs", NULL}, {"aud", NULL}, {"iss", NULL}};
        int64_t exp = 0, nbf = 0;
        size_t subs_n = 0, pubs_n = 0;
        bool aud_found = false;

        if (!expect)
                expect = &none;
        int64_t lw = expect->leeway_s > 0 ? expect->leeway_s : 0;
        int ntok = parse_object(p, n, toks);
        if (ntok == 0 || !find_fields(p, toks, ntok, f, C_COUNT))
                return TW_AUTH_MALFORMED;
        const jsmntok_t *exp_t = f[C_EXP].val, *nbf_t = f[C_NBF].val, *sub_t = f[C_SUB].val;
        const jsmntok_t *subs_t = f[C_SUBS].val, *pubs_t = f[C_PUBS].val;
        const jsmntok_t *aud_t = f[C_AUD].val, *iss_t = f[C_ISS].val;
        if ((exp_t && !parse_date(p, exp_t, &exp)) || (nbf_t && !parse_date(p, nbf_t, &nbf)) ||
            (sub_t && sub_t->type != JSMN_STRING) || (iss_t && iss_t->type != JSMN_STRING) ||
            (aud_t && !audience(p, aud_t, expect->audience, &aud_found)) ||
            (subs_t && !pattern_list(p, subs_t, &subs_n)) ||
            (pubs_t && !pattern_list(p, pubs_t, &pubs_n)))
                return TW_AUTH_MALFORMED;
        /* RFC 7519 4.1.4: now must be before exp; 4.1.5: now must not be before nbf. */
        if (exp_t && now_s >= add_sat(exp, lw))
                return TW_AUTH_EXPIRED;
        if (nbf_t && add_sat(now_s, lw) < nbf)
                return TW_AUTH_NOT_YET_VALID;
        if (expect->issuer && !(iss_t && span_is(tok_span(p, iss_t), expect->issuer)))
                return TW_AUTH_BAD_ISSUER;
        if (expect->audience && !aud_found)
                return TW_AUTH_BAD_AUDIENCE;
        if (!grant)
                return TW_AUTH_OK;

        /* Everything copied comes out of p[0..n), n <= SEG_BYTES, so each count fits. */
        tw_span sub = sub_t ? tok_span(p, sub_t) : (tw_span){"", 0};
        tw_grant *g = malloc(sizeof(*g) + sub.n + subs_n + pubs_n);
        if (!g)
                return TW_AUTH_NO_MEMORY;
        g->exp = exp_t ? exp : 0;
        g->sub_n = (uint16_t)sub.n;
        g->subs_n = (uint16_t)subs_n;
        g->pubs_n = (uint16_t)pubs_n;
        memcpy(g->data, sub.p, sub.n);
        put_list(g->data + sub.n, p, subs_t);
        put_list(g->data + sub.n + subs_n, p, pubs_t);
        *grant = g;
        return TW_AUTH_OK;
}

/* HMAC-SHA256(key, msg) by wolfCrypt. False on any wolfCrypt error: callers fail closed. */
static bool hs256(const char *key, size_t key_len, const char *msg, size_t n,
                  unsigned char mac[MAC_LEN])
{
        Hmac h;
        bool ok = false;

        if (key_len > UINT32_MAX || n > UINT32_MAX || wc_HmacInit(&h, NULL, INVALID_DEVID) != 0)
                return false;
        if (wc_HmacSetKey(&h, WC_SHA256, (const byte *)key, (word32)key_len) == 0 &&
            wc_HmacUpdate(&h, (const byte *)msg, (word32)n) == 0 && wc_HmacFinal(&h, mac) == 0)
                ok = true;
        wc_HmacFree(&h);
        explicit_bzero(&h, sizeof(h)); /* the padded key schedule */
        return ok;
}

tw_auth_status tw_auth_verify_jwt(const char *token, size_t len, const char *secret,
                                  size_t secret_len, int64_t now_s, const tw_auth_expect *expect,
                                  tw_grant **grant)
{
        unsigned char buf[SEG_BYTES];
        unsigned char sig[MAC_LEN];
        unsigned char mac[MAC_LEN];
        size_t hn, pn, sn;

        if (grant)
                *grant = NULL;
        if (!token || len == 0 || len > TW_AUTH_TOKEN_MAX)
                return TW_AUTH_MALFORMED;
        const char *dot1 = memchr(token, '.', len);
        const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
        if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
                return TW_AUTH_MALFORMED;
        const char *pay = dot1 + 1, *sigp = dot2 + 1;
        size_t pay_len = (size_t)(dot2 - pay), sig_len = len - (size_t)(sigp - token);

        if (!b64url_decode(token, (size_t)(dot1 - token), buf, sizeof(buf), &hn))
                return TW_AUTH_MALFORMED;
        tw_auth_status st = check_header((const char *)buf, hn);
        if (st != TW_AUTH_OK)
                return st;

        /* The payload's base64url is checked now, its JSON only once the MAC holds. A
         * signature of any length but 32 bytes, empty included, is malformed. */
        if (!b64url_decode(pay, pay_len, buf, sizeof(buf), &pn) ||
            !b64url_decode(sigp, sig_len, sig, sizeof(sig), &sn) || sn != MAC_LEN)
                return TW_AUTH_MALFORMED;
        if (!secret || secret_len == 0)
                return TW_AUTH_BAD_SIGNATURE; /* anyone could mint tokens for an empty key */
        bool ok = hs256(secret, secret_len, token, (size_t)(dot2 - token), mac);
        ok = ok && wolfSSL_CRYPTO_memcmp(mac, sig, MAC_LEN) == 0;
        explicit_bzero(mac, sizeof(mac)); /* the one valid signature for these bytes */
        if (!ok)
                return TW_AUTH_BAD_SIGNATURE;

        return check_claims((const char *)buf, pn, now_s, expect, grant);
}

int64_t tw_grant_exp(const tw_grant *g)
{
        return g ? g->exp : 0;
}

tw_span tw_grant_sub(const tw_grant *g)
{
        return g ? (tw_span){g->data, g->sub_n} : (tw_span){"", 0};
}

static bool list_match(const char *l, size_t n, tw_span topic)
{
        for (size_t o = 0; o < n; o += 1 + (unsigned char)l[o]) {
                if (tw_auth_pattern_match((tw_span){l + o + 1, (unsigned char)l[o]}, topic))
                        return true;
        }
        return false;
}

bool tw_grant_may_subscribe(const tw_grant *g, tw_span topic)
{
        return g && list_match(g->data + g->sub_n, g->subs_n, topic);
}

bool tw_grant_may_publish(const tw_grant *g, tw_span topic)
{
        return g && list_match(g->data + g->sub_n + g->subs_n, g->pubs_n, topic);
}

void tw_grant_free(tw_grant *g)
{
        free(g);
}

bool tw_auth_pattern_match(tw_span pattern, tw_span topic)
{
        if (pattern.n == 0 || topic.n == 0)
                return false;
        if (pattern.p[pattern.n - 1] != '*')
                return topic.n == pattern.n && memcmp(topic.p, pattern.p, pattern.n) == 0;
        return topic.n >= pattern.n - 1 && memcmp(topic.p, pattern.p, pattern.n - 1) == 0;
}

bool tw_auth_equal(const char *given, size_t given_len, const char *expected, size_t expected_len)
{
        /* With unequal lengths expected is compared with itself, so the loop below runs
         * over expected_len bytes either way and never reads given out of bounds. The
         * pointer is picked with a mask rather than a branch. */
        uintptr_t same = (uintptr_t)0 - (uintptr_t)(given_len == expected_len);
        const unsigned char *g =
            (const unsigned char *)(((uintptr_t)given & same) | ((uintptr_t)expected & ~same));
        const unsigned char *e = (const unsigned char *)expected;
        unsigned diff = (unsigned)(~same & 1); /* 1 when the lengths differ */

        for (size_t i = 0; i < expected_len; i++)
                diff |= g[i] ^ e[i]; /* no early exit: every byte of expected, every time */
        return diff == 0;
}

const char *tw_auth_status_str(tw_auth_status s)
{
        switch (s) {
        case TW_AUTH_OK:
                return "ok";
        case TW_AUTH_MALFORMED:
                return "malformed";
        case TW_AUTH_BAD_ALG:
                return "bad_alg";
        case TW_AUTH_BAD_SIGNATURE:
                return "bad_signature";
        case TW_AUTH_EXPIRED:
                return "expired";
        case TW_AUTH_NOT_YET_VALID:
                return "not_yet_valid";
        case TW_AUTH_BAD_AUDIENCE:
                return "bad_audience";
        case TW_AUTH_BAD_ISSUER:
                return "bad_issuer";
        case TW_AUTH_NO_MEMORY:
                return "no_memory";
        }
        return "unknown";
}
