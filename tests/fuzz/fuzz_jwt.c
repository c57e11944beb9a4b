/*
 * fuzz_jwt — libFuzzer harness for tw_auth_verify_jwt (HS256, fixed secret). Invariants:
 *  - raw: the whole input taken as a token never crashes or reads outside it (exact-size
 *    heap buffer); the verdict is a tw_auth_status; OK means three segments and a "sub"
 *    NUL-terminated inside its buffer;
 *  - constructive: byte 0 picks a JOSE header, a clock and a leeway; the rest is the
 *    claims set. The harness signs header.claims itself (wolfCrypt HMAC-SHA256) and
 *      - a correctly signed token is never BAD_SIGNATURE, and with the wrong (empty)
 *        secret never OK;
 *      - its verdict is exactly what expect_claims() predicts from the reference JSON
 *        validator (json_ref.h): MALFORMED for claims that are not one JSON object, that
 *        need more than TW_AUTH_JSON_TOKS tokens, that spell a top-level name with an
 *        escape or repeat a name auth reads, or give one of them the wrong shape (exp/nbf
 *        not integer seconds, sub not a string...); then EXPIRED, NOT_YET_VALID, and the
 *        rest as auth.h orders them, else OK with that sub; BAD_ALG for the headers that
 *        name another alg or carry crit, MALFORMED for one that repeats alg;
 *      - flipping any one byte of the signature (four per input: the first, the last, two
 *        the input picks) gives BAD_SIGNATURE (MALFORMED once the token is over
 *        TW_AUTH_TOKEN_MAX, or under the header that repeats alg), and changing one
 *        character of the signature text gives BAD_SIGNATURE or MALFORMED (a
 *        non-canonical last character).
 *
 * The auth API is being extended (a grant out, aud/iss checks, subs/pubs patterns): every
 * call goes through verify() and the claim rules live in expect_claims(), so adapting
 * means editing those two. Both take the API of either auth.h: the one with
 * tw_auth_expect/tw_grant (recognised by TW_AUTH_PATTERNS_MAX) and the earlier one with a
 * leeway and a sub buffer.
 *
 * Build and run: see README.md "Fuzzing" (cmake -DTW_FUZZ=ON -DCMAKE_C_COMPILER=clang).
 */
#include "tickwire/auth.h"
#include "json_ref.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hmac.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                                                  \
        do {                                                                                       \
                fprintf(stderr, "fuzz_jwt: " __VA_ARGS__);                                         \
                fputc('\n', stderr);                                                               \
                abort();                                                                           \
        } while (0)

#define SECRET "tickwire-fuzz-secret"

#ifdef TW_AUTH_PATTERNS_MAX
#define GRANT_API 1
#define SUB_CAP   (TW_AUTH_TOKEN_MAX + 1) /* no limit of its own: a grant holds any sub */
#else
#define GRANT_API 0
#define SUB_CAP   32 /* the caller's buffer: a longer sub is MALFORMED */
#endif

/* What the server asks of a token besides its signature. */
struct want {
        int64_t leeway;
        const char *aud, *iss; /* NULL: not checked (always NULL for the earlier API) */
};

/* The one place the harness calls the API under test. On OK, sub gets the token's raw
 * "sub" NUL-terminated; pats (may be NULL) are patterns the grant must honour: each one's
 * own topic ("fx.*" -> "fx.x") must be allowed, for subscribing if sub_pats else publishing. */
static tw_auth_status verify(const char *tok, size_t n, const char *secret, int64_t now,
                             const struct want *w, char sub[SUB_CAP], const tw_span *pats,
                             size_t npats, bool sub_pats)
{
#if GRANT_API
        tw_auth_expect ex = {.audience = w->aud, .issuer = w->iss, .leeway_s = w->leeway};
        tw_grant *g = (tw_grant *)&ex; /* must come back NULL unless OK */
        tw_auth_status st =
            tw_auth_verify_jwt(tok, n, secret, secret ? strlen(secret) : 0, now, &ex, &g);

        sub[0] = '\0';
        if (st != TW_AUTH_OK) {
                if (g)
                        FAIL("a grant with %s", tw_auth_status_str(st));
                return st;
        }
        if (!g)
                FAIL("OK without a grant");
        tw_span s = tw_grant_sub(g);
        if (s.n >= SUB_CAP)
                FAIL("sub of %zu bytes", s.n);
        memcpy(sub, s.p, s.n);
        sub[s.n] = '\0';
        (void)tw_grant_exp(g);
        for (size_t i = 0; i < npats; i++) {
                char topic[TW_AUTH_PATTERN_MAX + 2];
                tw_span p = pats[i];
                bool star = p.n && p.p[p.n - 1] == '*';
                size_t tn = star ? p.n - 1 : p.n;
                memcpy(topic, p.p, tn);
                if (star)
                        topic[tn++] = 'x';
                tw_span t = {topic, tn};
                if (!(sub_pats ? tw_grant_may_subscribe(g, t) : tw_grant_may_publish(g, t)))
                        FAIL("grant refuses %.*s, allowed by %.*s", (int)tn, topic, (int)p.n, p.p);
        }
        (void)tw_grant_may_subscribe(g, TW_SPAN_LIT("AAPL"));
        (void)tw_grant_may_publish(g, TW_SPAN_LIT("AAPL"));
        tw_grant_free(g);
        return st;
#else
        (void)pats, (void)npats, (void)sub_pats;
        return tw_auth_verify_jwt(tok, n, secret, secret ? strlen(secret) : 0, now, w->leeway, sub,
                                  SUB_CAP);
#endif
}

static const struct {
        const char *json;
        tw_auth_status want; /* TW_AUTH_OK: the claims decide */
} headers[8] = {
    {"{\"alg\":\"HS256\",\"typ\":\"JWT\"}", TW_AUTH_OK},
    {"{\"alg\":\"HS256\"}", TW_AUTH_OK},
    {" { \"typ\" : \"JWT\" , \"alg\" : \"HS256\" } ", TW_AUTH_OK},
    {"{\"alg\":\"HS256\",\"kid\":\"k1\",\"x\":{\"alg\":\"none\"}}", TW_AUTH_OK},
    {"{\"alg\":\"none\"}", TW_AUTH_BAD_ALG},
    {"{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", TW_AUTH_BAD_ALG},
    {"{\"alg\":\"HS512\",\"typ\":\"JWT\"}", TW_AUTH_BAD_ALG},
    {"{\"alg\":\"HS256\",\"alg\":\"HS256\"}", TW_AUTH_MALFORMED},
};
static const int64_t clocks[8] = {0,         1700000000, -1,           INT64_MAX,
                                  INT64_MIN, 1,          4102444800LL, 1699999999};
static const int64_t leeways[4] = {0, 60, -30, INT64_MAX};

static const char b64abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64url(const uint8_t *in, size_t n, char *out)
{
        size_t o = 0, i = 0;

        for (; i + 3 <= n; i += 3) {
                uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
                out[o++] = b64abc[v >> 18];
                out[o++] = b64abc[(v >> 12) & 63];
                out[o++] = b64abc[(v >> 6) & 63];
                out[o++] = b64abc[v & 63];
        }
        if (n - i == 1) {
                uint32_t v = (uint32_t)in[i] << 16;
                out[o++] = b64abc[v >> 18];
                out[o++] = b64abc[(v >> 12) & 63];
        } else if (n - i == 2) {
                uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
                out[o++] = b64abc[v >> 18];
                out[o++] = b64abc[(v >> 12) & 63];
                out[o++] = b64abc[(v >> 6) & 63];
        }
        return o;
}

static void hmac256(const char *msg, size_t n, uint8_t mac[WC_SHA256_DIGEST_SIZE])
{
        Hmac h;

        if (wc_HmacInit(&h, NULL, INVALID_DEVID) != 0 ||
            wc_HmacSetKey(&h, WC_SHA256, (const byte *)SECRET, sizeof(SECRET) - 1) != 0 ||
            wc_HmacUpdate(&h, (const byte *)msg, (word32)n) != 0 || wc_HmacFinal(&h, mac) != 0)
                FAIL("wolfCrypt HMAC failed");
        wc_HmacFree(&h);
}

static int64_t add_sat(int64_t a, int64_t b)
{
        return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* -?[0-9]+ within int64 (RFC 7519 NumericDate, integer seconds only). */
static bool date_of(tw_span v, int64_t *out)
{
        bool neg = v.n && v.p[0] == '-';
        size_t i = neg;
        __int128 x = 0;

        if (i == v.n)
                return false;
        for (; i < v.n; i++) {
                if (v.p[i] < '0' || v.p[i] > '9')
                        return false;
                x = x * 10 + (v.p[i] - '0');
                if (x > (__int128)INT64_MAX + 1)
                        return false;
        }
        if (neg)
                x = -x;
        if (x > INT64_MAX || x < INT64_MIN)
                return false;
        *out = (int64_t)x;
        return true;
}

static tw_span inner(tw_span v)
{
        return (tw_span){v.p + 1, v.n - 2};
}

static bool is_string(tw_span v)
{
        return v.n >= 2 && v.p[0] == '"';
}

#if GRANT_API
static bool same(tw_span a, const char *lit)
{
        return lit && a.n == strlen(lit) && memcmp(a.p, lit, a.n) == 0;
}

/* A topic pattern as a token may spell it: a topic name, "*", or a topic name and '*'. */
static bool pattern_ok(tw_span v)
{
        if (!is_string(v))
                return false;
        tw_span s = inner(v);
        if (s.n && s.p[s.n - 1] == '*')
                s.n--;
        return s.n == 0 ? inner(v).n == 1 : tw_topic_valid(s);
}

/* "subs"/"pubs": an array of at most TW_AUTH_PATTERNS_MAX valid patterns, into pats. */
static bool patterns(const jref_member *m, tw_span *pats, size_t *np)
{
        *np = 0;
        if (!m)
                return true;
        if (!jref_elements(m->value, pats, TW_AUTH_PATTERNS_MAX, np))
                return false;
        for (size_t i = 0; i < *np; i++) {
                if (!pattern_ok(pats[i]))
                        return false;
                pats[i] = inner(pats[i]);
        }
        return true;
}
#endif

/* The verdict on correctly signed claims under a good header, and the sub on OK; -1 when
 * the reference cannot tell (more members than it records). Mirrors the rules in auth.h,
 * in its order. */
static int expect_claims(const char *c, size_t n, int64_t now, const struct want *w, tw_span *sub,
                         tw_span *subs, size_t *nsubs, tw_span *pubs, size_t *npubs)
{
        static const char *const names[] = {"exp", "nbf", "sub", "subs", "pubs", "aud", "iss"};
        static jref_info in;
        int64_t exp = 0, nbf = 0, lw = w->leeway > 0 ? w->leeway : 0;
        const jref_member *f[7];

        *nsubs = *npubs = 0;
        if (!jref_valid(c, n, &in) || in.top != '{' || in.tokens > TW_AUTH_JSON_TOKS)
                return TW_AUTH_MALFORMED;
        if (in.members > JREF_MAX_MEMBERS)
                return -1;
        for (size_t i = 0; i < in.members; i++)
                if (memchr(in.member[i].key.p, '\\', in.member[i].key.n))
                        return TW_AUTH_MALFORMED;
        for (size_t i = 0; i < (GRANT_API ? 7 : 3); i++) {
                int dups;
                f[i] = jref_find(&in, names[i], &dups);
                if (dups > 1)
                        return TW_AUTH_MALFORMED;
        }
        const jref_member *e = f[0], *b = f[1], *s = f[2];
        if ((e && !date_of(e->value, &exp)) || (b && !date_of(b->value, &nbf)) ||
            (s && !is_string(s->value)))
                return TW_AUTH_MALFORMED;
        bool aud_found = false;
#if GRANT_API
        const jref_member *aud = f[5], *iss = f[6];
        if ((iss && !is_string(iss->value)) || !patterns(f[3], subs, nsubs) ||
            !patterns(f[4], pubs, npubs))
                return TW_AUTH_MALFORMED;
        if (aud && is_string(aud->value)) {
                aud_found = same(inner(aud->value), w->aud);
        } else if (aud) {
                tw_span el[TW_AUTH_JSON_TOKS];
                size_t ne;
                if (!jref_elements(aud->value, el, TW_AUTH_JSON_TOKS, &ne))
                        return TW_AUTH_MALFORMED;
                for (size_t i = 0; i < ne; i++) {
                        if (!is_string(el[i]))
                                return TW_AUTH_MALFORMED;
                        aud_found |= same(inner(el[i]), w->aud);
                }
        }
#else
        (void)subs, (void)pubs;
#endif
        if (e && now >= add_sat(exp, lw))
                return TW_AUTH_EXPIRED;
        if (b && add_sat(now, lw) < nbf)
                return TW_AUTH_NOT_YET_VALID;
#if GRANT_API
        if (w->iss && !(iss && same(inner(iss->value), w->iss)))
                return TW_AUTH_BAD_ISSUER;
        if (w->aud && !aud_found)
                return TW_AUTH_BAD_AUDIENCE;
#else
        (void)aud_found;
#endif
        *sub = s ? inner(s->value) : (tw_span){"", 0};
        if (sub->n >= SUB_CAP)
                return TW_AUTH_MALFORMED;
        return TW_AUTH_OK;
}

static void check_raw(const uint8_t *data, size_t size)
{
        static char sub[SUB_CAP];
        static const struct want w = {0, NULL, NULL};
        char *tok = malloc(size ? size : 1);

        if (!tok)
                abort();
        memcpy(tok, data, size);
        memset(sub, 'x', sizeof(sub));
        tw_auth_status st = verify(tok, size, SECRET, 1700000000, &w, sub, NULL, 0, false);
        if ((unsigned)st > TW_AUTH_NOT_YET_VALID + 3 * GRANT_API || !tw_auth_status_str(st))
                FAIL("status %d", (int)st);
        if (!memchr(sub, '\0', sizeof(sub)))
                FAIL("sub not NUL-terminated");
        if (st == TW_AUTH_OK) {
                const char *d1 = memchr(tok, '.', size);
                const char *d2 = d1 ? memchr(d1 + 1, '.', size - (size_t)(d1 + 1 - tok)) : NULL;
                if (!d2 || memchr(d2 + 1, '.', size - (size_t)(d2 + 1 - tok)))
                        FAIL("OK for a token without exactly three segments");
        }
        free(tok);
}

static void check_signed(const uint8_t *data, size_t size)
{
        static const char *const auds[4] = {NULL, "tickwire", NULL, "tickwire"};
        static const char *const isss[4] = {NULL, NULL, "https://issuer.example", "iss-1"};
        static char tok[2 * TW_AUTH_TOKEN_MAX + 64], sub[SUB_CAP];
        static tw_span subs[TW_AUTH_JSON_TOKS], pubs[TW_AUTH_JSON_TOKS];
        uint8_t mac[WC_SHA256_DIGEST_SIZE];
        size_t nsubs = 0, npubs = 0;

        if (size < 1 || size > TW_AUTH_TOKEN_MAX)
                return;
        const char *hdr = headers[data[0] & 7].json;
        tw_auth_status hwant = headers[data[0] & 7].want;
        int64_t now = clocks[(data[0] >> 3) & 7];
        const char *claims = (const char *)data + 1;
        size_t cn = size - 1;
        struct want w = {leeways[data[0] >> 6], NULL, NULL};
        if (GRANT_API) {
                w.aud = auds[cn % 4];
                w.iss = isss[cn % 4];
        }

        size_t n = b64url((const uint8_t *)hdr, strlen(hdr), tok);
        tok[n++] = '.';
        n += b64url((const uint8_t *)claims, cn, tok + n);
        hmac256(tok, n, mac);
        tok[n++] = '.';
        size_t sig_at = n;
        n += b64url(mac, sizeof(mac), tok + n);
        bool too_long = n > TW_AUTH_TOKEN_MAX;

        tw_span want_sub = {0};
        int want = too_long ? TW_AUTH_MALFORMED
                   : hwant != TW_AUTH_OK
                       ? (int)hwant
                       : expect_claims(claims, cn, now, &w, &want_sub, subs, &nsubs, pubs, &npubs);
        tw_auth_status st = verify(tok, n, SECRET, now, &w, sub, subs, nsubs, true);
        if (st == TW_AUTH_BAD_SIGNATURE)
                FAIL("correctly signed token refused as bad_signature");
        if (want >= 0 && (int)st != want)
                FAIL("verdict %s, expected %s (header %d, now %" PRId64 ", leeway %" PRId64
                     ", aud %s, iss %s)",
                     tw_auth_status_str(st), tw_auth_status_str((tw_auth_status)want), data[0] & 7,
                     now, w.leeway, w.aud ? w.aud : "-", w.iss ? w.iss : "-");
        if (want == TW_AUTH_OK &&
            (strlen(sub) != want_sub.n || memcmp(sub, want_sub.p, want_sub.n)))
                FAIL("sub \"%s\", expected \"%.*s\"", sub, (int)want_sub.n, want_sub.p);
        if (want == TW_AUTH_OK && npubs)
                (void)verify(tok, n, SECRET, now, &w, sub, pubs, npubs, false);
        if (verify(tok, n, "", now, &w, sub, NULL, 0, false) == TW_AUTH_OK)
                FAIL("OK with an empty secret");
        if (hwant != TW_AUTH_OK && hwant != TW_AUTH_MALFORMED)
                return; /* refused before the MAC: flipping proves nothing */

        /* A byte of the MAC flipped: the first, the last and two the input picks (all 32 on
         * every run would cost most of the exec rate; the fuzzer varies which). */
        uint8_t bit = (uint8_t)(1u << (cn % 8));
        size_t flips[4] = {0, sizeof(mac) - 1, cn % sizeof(mac), (data[0] + 7 * cn) % sizeof(mac)};
        for (size_t f = 0; f < 4; f++) {
                size_t i = flips[f];
                mac[i] ^= bit;
                b64url(mac, sizeof(mac), tok + sig_at);
                mac[i] ^= bit;
                st = verify(tok, n, SECRET, now, &w, sub, NULL, 0, false);
                if (hwant == TW_AUTH_MALFORMED || too_long) {
                        if (st != TW_AUTH_MALFORMED)
                                FAIL("flipped MAC byte %zu: %s, expected malformed", i,
                                     tw_auth_status_str(st));
                } else if (st != TW_AUTH_BAD_SIGNATURE) {
                        FAIL("flipped MAC byte %zu: %s", i, tw_auth_status_str(st));
                }
        }
        b64url(mac, sizeof(mac), tok + sig_at);

        /* One character of the signature text changed to another base64url character. */
        size_t pos = sig_at + (cn * 7 + (size_t)data[0]) % (n - sig_at);
        char was = tok[pos];
        tok[pos] = b64abc[((size_t)(strchr(b64abc, was) - b64abc) + 1 + cn % 63) % 64];
        st = verify(tok, n, SECRET, now, &w, sub, NULL, 0, false);
        if (st != TW_AUTH_BAD_SIGNATURE && st != TW_AUTH_MALFORMED)
                FAIL("changed signature character at %zu: %s", pos - sig_at,
                     tw_auth_status_str(st));
        tok[pos] = was;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        check_raw(data, size);
        check_signed(data, size);
        return 0;
}
