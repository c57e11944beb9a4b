/*
 * What a verified token grants and what the server may require of it: the "subs" and
 * "pubs" pattern lists, "aud" and "iss" against a tw_auth_expect, "exp" and "sub" through
 * the grant, every malformed shape of those claims, repeated or escaped names, the pattern
 * cap, and the order in which the checks decide. Tokens are verified from heap copies of
 * exactly their length, and every refusal must leave the grant NULL.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_auth_helpers.h"

static char *copy;
static tw_grant *grant; /* the last verification's */

static tw_auth_status verify_with(const char *tok, int64_t now, const tw_auth_expect *expect)
{
        size_t n = strlen(tok);

        free(copy);
        tw_grant_free(grant);
        grant = (tw_grant *)&grant; /* junk, which the verifier must overwrite */
        copy = malloc(n);
        cr_assert_not_null(copy);
        memcpy(copy, tok, n);
        tw_auth_status s = tw_auth_verify_jwt(copy, n, SECRET, strlen(SECRET), now, expect, &grant);
        if (s == TW_AUTH_OK)
                cr_assert_not_null(grant);
        else
                cr_assert_null(grant, "a grant with %s", tw_auth_status_str(s));
        return s;
}

/* A token with this payload, verified at NOW with nothing expected. */
static tw_auth_status verify_claims(const char *payload)
{
        return verify_with(mint(payload), NOW, NULL);
}

static void fini(void)
{
        free(copy);
        copy = NULL;
        tw_grant_free(grant);
        grant = NULL;
}

TestSuite(auth_claims, .fini = fini);

#define cr_assert_status_for(got, want, what)                                                      \
        do {                                                                                       \
                tw_auth_status got_ = (got);                                                       \
                cr_assert_eq(got_, (want), "%s: got %s, want %s", (what),                          \
                             tw_auth_status_str(got_), tw_auth_status_str(want));                  \
        } while (0)
#define cr_assert_status(got, want) cr_assert_status_for(got, want, #got)

static tw_span span(const char *s)
{
        return (tw_span){s, strlen(s)};
}

static bool may_sub(const char *topic)
{
        return tw_grant_may_subscribe(grant, span(topic));
}

static bool may_pub(const char *topic)
{
        return tw_grant_may_publish(grant, span(topic));
}

Test(auth_claims, subs_and_pubs_grant_what_they_list)
{
        cr_assert_status(
            verify_claims(
                "{\"sub\":\"alice\",\"subs\":[\"AAPL\",\"fx.*\"],\"pubs\":[\"news.eu\"]}"),
            TW_AUTH_OK);
        cr_assert(may_sub("AAPL"));
        cr_assert(may_sub("fx.EURUSD"));
        cr_assert(may_sub("fx."));
        cr_assert_not(may_sub("AAPLX"));
        cr_assert_not(may_sub("AAP"));
        cr_assert_not(may_sub("aapl"));
        cr_assert_not(may_sub("fx"));
        cr_assert_not(may_sub("news.eu")); /* a publish right is not a subscribe right */
        cr_assert(may_pub("news.eu"));
        cr_assert_not(may_pub("news.eu.fr"));
        cr_assert_not(may_pub("AAPL"));
        cr_assert_not(may_pub("fx.EURUSD"));
}

Test(auth_claims, absent_or_empty_lists_grant_nothing)
{
        static const char *const payloads[] = {
            "{}",
            "{\"sub\":\"alice\"}",
            "{\"subs\":[],\"pubs\":[]}",
            "{\"x\":{\"subs\":[\"*\"],\"pubs\":[\"*\"]}}", /* nested: not the claim */
            "{\"subscribe\":[\"*\"],\"pub\":[\"*\"]}",     /* near names: not the claim */
        };
        for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
                cr_assert_status_for(verify_claims(payloads[i]), TW_AUTH_OK, payloads[i]);
                cr_assert_not(may_sub("AAPL"), "%s", payloads[i]);
                cr_assert_not(may_sub("*"), "%s", payloads[i]);
                cr_assert_not(may_pub("AAPL"), "%s", payloads[i]);
                cr_assert_not(may_pub("*"), "%s", payloads[i]);
        }
}

Test(auth_claims, star_alone_grants_every_topic_of_its_list_only)
{
        cr_assert_status(verify_claims("{\"subs\":[\"*\"]}"), TW_AUTH_OK);
        cr_assert(may_sub("AAPL"));
        cr_assert(may_sub("a"));
        cr_assert(may_sub("x.y:z-_9"));
        cr_assert_not(may_sub("")); /* not a topic */
        cr_assert_not(may_pub("AAPL"));

        cr_assert_status(verify_claims("{\"pubs\":[\"*\"],\"subs\":[\"AAPL\"]}"), TW_AUTH_OK);
        cr_assert(may_pub("MSFT"));
        cr_assert_not(may_sub("MSFT"));
        cr_assert(may_sub("AAPL"));
}

Test(auth_claims, the_whole_topic_alphabet_and_the_longest_patterns)
{
        char lit[129], pre[129], payload[1024];

        memset(lit, 'L', 128);
        lit[128] = '\0';
        memset(pre, 'P', 128);
        pre[128] = '\0';
        snprintf(payload, sizeof(payload),
                 "{\"subs\":[\"azAZ09._:-\",\"%s\",\"%s*\"],\"pubs\":[\"%.127s*\"]}", lit, pre,
                 pre);
        cr_assert_status(verify_claims(payload), TW_AUTH_OK);
        cr_assert(may_sub("azAZ09._:-"));
        cr_assert(may_sub(lit));
        cr_assert(may_sub(pre)); /* 128 bytes + '*': matches the 128-byte topic itself */
        cr_assert(may_pub(pre));
        pre[127] = 'x';
        cr_assert(may_pub(pre));
        cr_assert_not(may_sub(pre));
        lit[127] = '\0';
        cr_assert_not(may_sub(lit));
}

Test(auth_claims, malformed_pattern_lists)
{
        char too_long[256];
        memset(too_long, 'a', 129);
        too_long[129] = '\0'; /* 129 bytes without a '*' */
        char too_long_star[256];
        memset(too_long_star, 'a', 129);
        strcpy(too_long_star + 129, "*"); /* 129 + '*' */
        const char *const lists[] = {
            "\"AAPL\"",      /* not an array */
            "\"*\"",         /* not an array */
            "{}",            /* not an array */
            "{\"a\":\"b\"}", /* not an array */
            "null",          /* not an array */
            "true",          /* not an array */
            "1",             /* not an array */
            "[1]",           /* a non-string element */
            "[null]",        /* a non-string element */
            "[true]",        /* a non-string element */
            "[[\"AAPL\"]]",  /* a non-string element */
            "[{\"t\":\"AAPL\"}]",
            "[\"AAPL\",2]",
            "[\"AAPL\",[]]",
            "[\"\"]", /* not a pattern */
            "[\"AAPL\",\"\"]",
            "[\"a b\"]",
            "[\" AAPL\"]",
            "[\"AAPL \"]",
            "[\"a/b\"]",
            "[\"a**\"]",
            "[\"**\"]",
            "[\"*a\"]",
            "[\"a*b\"]",
            "[\"fx.*.eu\"]",
            "[\"a?\"]",
            "[\"\\u0041\"]", /* "A", but spelt with an escape */
            "[\"a\\n\"]",
            "[\"a\\\\\"]",
            "[\"\\\"\"]",
            "[\"caf\xc3\xa9\"]", /* UTF-8, not the topic alphabet */
            too_long,
            too_long_star,
        };
        char payload[1024];

        for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
                const char *l = lists[i];
                char buf[512];
                if (l == too_long || l == too_long_star) {
                        snprintf(buf, sizeof(buf), "[\"%s\"]", l);
                        l = buf;
                }
                snprintf(payload, sizeof(payload), "{\"subs\":%s}", l);
                cr_assert_status_for(verify_claims(payload), TW_AUTH_MALFORMED, payload);
                snprintf(payload, sizeof(payload), "{\"subs\":[\"*\"],\"pubs\":%s}", l);
                cr_assert_status_for(verify_claims(payload), TW_AUTH_MALFORMED, payload);
        }
}

/* "{"subs":[...n patterns...],"pubs":[...m patterns...]}" into out. */
static const char *lists_of(char *out, size_t cap, int n, int m)
{
        size_t o = (size_t)snprintf(out, cap, "{\"subs\":[");
        for (int i = 0; i < n; i++)
                o += (size_t)snprintf(out + o, cap - o, "%s\"s%d\"", i ? "," : "", i);
        o += (size_t)snprintf(out + o, cap - o, "],\"pubs\":[");
        for (int i = 0; i < m; i++)
                o += (size_t)snprintf(out + o, cap - o, "%s\"p%d*\"", i ? "," : "", i);
        snprintf(out + o, cap - o, "]}");
        cr_assert_lt(o + 2, cap);
        return out;
}

Test(auth_claims, at_most_64_patterns_per_list)
{
        char payload[4096], name[16];

        cr_assert_eq(TW_AUTH_PATTERNS_MAX, 64);
        cr_assert_status(verify_claims(lists_of(payload, sizeof(payload), 64, 64)), TW_AUTH_OK);
        for (int i = 0; i < 64; i++) {
                snprintf(name, sizeof(name), "s%d", i);
                cr_assert(may_sub(name), "%s", name);
                snprintf(name, sizeof(name), "p%d.x", i);
                cr_assert(may_pub(name), "%s", name);
        }
        cr_assert_not(may_sub("s64"));
        cr_assert_not(may_sub("p0"));
        cr_assert_not(may_pub("s0"));
        cr_assert_status(verify_claims(lists_of(payload, sizeof(payload), 65, 0)),
                         TW_AUTH_MALFORMED);
        cr_assert_status(verify_claims(lists_of(payload, sizeof(payload), 0, 65)),
                         TW_AUTH_MALFORMED);
        cr_assert_status(verify_claims(lists_of(payload, sizeof(payload), 65, 65)),
                         TW_AUTH_MALFORMED);
}

Test(auth_claims, a_pattern_listed_twice_is_harmless)
{
        cr_assert_status(verify_claims("{\"subs\":[\"AAPL\",\"AAPL\",\"*\",\"*\"]}"), TW_AUTH_OK);
        cr_assert(may_sub("AAPL"));
        cr_assert(may_sub("MSFT"));
}

Test(auth_claims, repeated_or_escaped_claim_names_are_malformed)
{
        static const char *const payloads[] = {
            "{\"subs\":[\"a\"],\"subs\":[\"*\"]}",
            "{\"subs\":[\"*\"],\"subs\":[]}",
            "{\"pubs\":[],\"pubs\":[\"*\"]}",
            "{\"aud\":\"a\",\"aud\":\"b\"}",
            "{\"aud\":\"a\",\"aud\":\"a\"}",
            "{\"iss\":\"a\",\"iss\":\"b\"}",
            "{\"sub\":\"a\",\"sub\":\"a\"}",
            "{\"su\\u0062s\":[\"*\"]}",
            "{\"pub\\u0073\":[\"*\"]}",
            "{\"\\u0061ud\":\"svc\"}",
            "{\"is\\u0073\":\"me\"}",
            "{\"subs\":[\"a\"],\"su\\u0062s\":[\"*\"]}",
        };
        for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++)
                cr_assert_status_for(verify_claims(payloads[i]), TW_AUTH_MALFORMED, payloads[i]);
        /* the same names one level down are not claims, so they may repeat */
        cr_assert_status(verify_claims("{\"x\":{\"subs\":1,\"subs\":2,\"aud\":3,\"aud\":4}}"),
                         TW_AUTH_OK);
}

Test(auth_claims, exp_and_sub_through_the_grant)
{
        cr_assert_status(verify_claims("{\"sub\":\"user:42\\n\",\"exp\":1700000100}"), TW_AUTH_OK);
        cr_assert_eq(tw_grant_exp(grant), 1700000100);
        tw_span sub = tw_grant_sub(grant);
        cr_assert_eq(sub.n, 9);
        cr_assert_arr_eq(sub.p, "user:42\\n", 9); /* escapes as sent */

        cr_assert_status(verify_claims("{\"nbf\":1}"), TW_AUTH_OK);
        cr_assert_eq(tw_grant_exp(grant), 0);
        cr_assert_eq(tw_grant_sub(grant).n, 0);
        cr_assert_not_null(tw_grant_sub(grant).p);

        cr_assert_status(verify_with(mint("{\"exp\":-5}"), -10, NULL), TW_AUTH_OK);
        cr_assert_eq(tw_grant_exp(grant), -5);
        cr_assert_status(verify_with(mint("{\"exp\":9223372036854775807}"), NOW, NULL), TW_AUTH_OK);
        cr_assert_eq(tw_grant_exp(grant), INT64_MAX);
}

Test(auth_claims, a_long_sub_is_kept_whole)
{
        static char payload[4000], want[2901];

        /* near the most a TW_AUTH_TOKEN_MAX token can carry, and more than a uint8_t holds */
        memset(want, 'u', 2900);
        want[2900] = '\0';
        snprintf(payload, sizeof(payload), "{\"sub\":\"%s\",\"subs\":[\"*\"]}", want);
        cr_assert_status(verify_claims(payload), TW_AUTH_OK);
        tw_span sub = tw_grant_sub(grant);
        cr_assert_eq(sub.n, 2900);
        cr_assert_arr_eq(sub.p, want, 2900);
        cr_assert(may_sub("AAPL"));
}

/* Overwrites the stack below the caller, where tw_auth_verify_jwt's buffers were. */
__attribute__((noinline)) static void scribble_stack(void)
{
        volatile char junk[64 * 1024];

        for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = '#';
}

Test(auth_claims, the_grant_is_a_copy)
{
        cr_assert_status(verify_claims("{\"sub\":\"bob\",\"subs\":[\"fx.*\"],\"pubs\":[\"AAPL\"]}"),
                         TW_AUTH_OK);
        free(copy); /* neither the token */
        copy = NULL;
        memset(minted, '#', sizeof(minted));
        scribble_stack(); /* nor the verifier's stack */
        cr_assert(may_sub("fx.EURUSD"));
        cr_assert(may_pub("AAPL"));
        cr_assert_arr_eq(tw_grant_sub(grant).p, "bob", 3);
}

Test(auth_claims, a_null_grant_grants_nothing)
{
        cr_assert_eq(tw_grant_exp(NULL), 0);
        cr_assert_eq(tw_grant_sub(NULL).n, 0);
        cr_assert_not_null(tw_grant_sub(NULL).p);
        cr_assert_not(tw_grant_may_subscribe(NULL, span("AAPL")));
        cr_assert_not(tw_grant_may_publish(NULL, span("AAPL")));
        tw_grant_free(NULL);
}

Test(auth_claims, audience_string_or_array)
{
        const tw_auth_expect svc = {.audience = "svc"};

        cr_assert_status(verify_with(mint("{\"aud\":\"svc\"}"), NOW, &svc), TW_AUTH_OK);
        cr_assert_status(verify_with(mint("{\"aud\":[\"svc\"]}"), NOW, &svc), TW_AUTH_OK);
        cr_assert_status(verify_with(mint("{\"aud\":[\"a\",\"b\",\"svc\"]}"), NOW, &svc),
                         TW_AUTH_OK);
        cr_assert_status(verify_with(mint("{\"aud\":[\"svc\",\"a\"]}"), NOW, &svc), TW_AUTH_OK);
        static const char *const wrong[] = {
            "{}",
            "{\"aud\":\"other\"}",
            "{\"aud\":[]}",
            "{\"aud\":[\"a\",\"b\"]}",
            "{\"aud\":\"\"}",
            "{\"aud\":\"sv\"}",
            "{\"aud\":\"svcx\"}",
            "{\"aud\":\"SVC\"}",
            "{\"aud\":\"svc \"}",
            "{\"aud\":\"sv\\u0063\"}", /* compared as sent */
            "{\"aud\":[\"sv\\u0063\"]}",
            "{\"x\":{\"aud\":\"svc\"}}",
        };
        for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++)
                cr_assert_status_for(verify_with(mint(wrong[i]), NOW, &svc), TW_AUTH_BAD_AUDIENCE,
                                     wrong[i]);
}

Test(auth_claims, audience_unchecked_when_not_expected)
{
        const tw_auth_expect none = {.leeway_s = 0};

        cr_assert_status(verify_claims("{\"aud\":\"anyone\"}"), TW_AUTH_OK);
        cr_assert_status(verify_with(mint("{\"aud\":[\"a\",\"b\"]}"), NOW, &none), TW_AUTH_OK);
        cr_assert_status(verify_with(mint("{\"aud\":[]}"), NOW, &none), TW_AUTH_OK);
        const tw_auth_expect iss_only = {.issuer = "me"};
        cr_assert_status(verify_with(mint("{\"iss\":\"me\",\"aud\":\"x\"}"), NOW, &iss_only),
                         TW_AUTH_OK);
}

Test(auth_claims, malformed_audience_whether_expected_or_not)
{
        static const char *const bad[] = {
            "{\"aud\":1}",
            "{\"aud\":null}",
            "{\"aud\":true}",
            "{\"aud\":{}}",
            "{\"aud\":[1]}",
            "{\"aud\":[\"svc\",null]}",
            "{\"aud\":[[\"svc\"]]}",
            "{\"aud\":[{\"a\":\"svc\"}]}",
            "{\"aud\":[\"svc\",[]]}",
        };
        const tw_auth_expect svc = {.audience = "svc"};

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                cr_assert_status_for(verify_with(mint(bad[i]), NOW, &svc), TW_AUTH_MALFORMED,
                                     bad[i]);
                cr_assert_status_for(verify_claims(bad[i]), TW_AUTH_MALFORMED, bad[i]);
        }
}

Test(auth_claims, issuer_exactly)
{
        const tw_auth_expect me = {.issuer = "https://auth.example"};

        cr_assert_status(verify_with(mint("{\"iss\":\"https://auth.example\"}"), NOW, &me),
                         TW_AUTH_OK);
        static const char *const wrong[] = {
            "{}",
            "{\"iss\":\"\"}",
            "{\"iss\":\"https://auth.example/\"}",
            "{\"iss\":\"https://auth.exampl\"}",
            "{\"iss\":\"HTTPS://auth.example\"}",
            "{\"iss\":\"https:\\/\\/auth.example\"}", /* compared as sent */
            "{\"x\":{\"iss\":\"https://auth.example\"}}",
        };
        for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++)
                cr_assert_status_for(verify_with(mint(wrong[i]), NOW, &me), TW_AUTH_BAD_ISSUER,
                                     wrong[i]);
        static const char *const bad[] = {
            "{\"iss\":[\"https://auth.example\"]}",
            "{\"iss\":1}",
            "{\"iss\":null}",
            "{\"iss\":{}}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                cr_assert_status_for(verify_with(mint(bad[i]), NOW, &me), TW_AUTH_MALFORMED,
                                     bad[i]);
                cr_assert_status_for(verify_claims(bad[i]), TW_AUTH_MALFORMED, bad[i]);
        }
        cr_assert_status(verify_claims("{\"iss\":\"anyone\"}"), TW_AUTH_OK);
}

Test(auth_claims, leeway_comes_from_expect)
{
        const char *tok = mint("{\"exp\":1700000000,\"nbf\":1699999000}");
        char saved[1024];
        strcpy(saved, tok);

        const tw_auth_expect lw = {.leeway_s = 60}, neg = {.leeway_s = -60};
        cr_assert_status(verify_with(saved, 1700000059, &lw), TW_AUTH_OK);
        cr_assert_status(verify_with(saved, 1700000060, &lw), TW_AUTH_EXPIRED);
        cr_assert_status(verify_with(saved, 1699998940, &lw), TW_AUTH_OK);
        cr_assert_status(verify_with(saved, 1699998939, &lw), TW_AUTH_NOT_YET_VALID);
        cr_assert_status(verify_with(saved, 1700000000, NULL), TW_AUTH_EXPIRED);
        cr_assert_status(verify_with(saved, 1699999999, NULL), TW_AUTH_OK);
        cr_assert_status(verify_with(saved, 1700000000, &neg), TW_AUTH_EXPIRED);
        cr_assert_status(verify_with(saved, 1699998999, &neg), TW_AUTH_NOT_YET_VALID);
}

Test(auth_claims, which_check_decides_first)
{
        const tw_auth_expect both = {.audience = "svc", .issuer = "me"};

        /* shape before time: a malformed list in an expired token */
        cr_assert_status(verify_with(mint("{\"exp\":1,\"subs\":\"*\"}"), NOW, &both),
                         TW_AUTH_MALFORMED);
        cr_assert_status(verify_with(mint("{\"exp\":1,\"aud\":5}"), NOW, &both), TW_AUTH_MALFORMED);
        /* time before issuer and audience */
        cr_assert_status(verify_with(mint("{\"exp\":1}"), NOW, &both), TW_AUTH_EXPIRED);
        cr_assert_status(verify_with(mint("{\"nbf\":1800000000}"), NOW, &both),
                         TW_AUTH_NOT_YET_VALID);
        /* issuer before audience */
        cr_assert_status(verify_with(mint("{}"), NOW, &both), TW_AUTH_BAD_ISSUER);
        cr_assert_status(verify_with(mint("{\"iss\":\"me\"}"), NOW, &both), TW_AUTH_BAD_AUDIENCE);
        cr_assert_status(
            verify_with(mint("{\"iss\":\"me\",\"aud\":[\"svc\"],\"subs\":[\"*\"]}"), NOW, &both),
            TW_AUTH_OK);
        cr_assert(may_sub("AAPL"));
        /* and the MAC before any claim */
        const char *tok = mint_with("{\"alg\":\"HS256\"}", "{\"subs\":\"*\"}", "wrong-secret");
        cr_assert_status(verify_with(tok, NOW, &both), TW_AUTH_BAD_SIGNATURE);
}

Test(auth_claims, no_grant_wanted)
{
        const char *tok = mint("{\"sub\":\"a\",\"subs\":[\"*\"],\"aud\":\"svc\"}");
        const tw_auth_expect svc = {.audience = "svc"}, other = {.audience = "other"};

        cr_assert_status(
            tw_auth_verify_jwt(tok, strlen(tok), SECRET, strlen(SECRET), NOW, &svc, NULL),
            TW_AUTH_OK);
        cr_assert_status(
            tw_auth_verify_jwt(tok, strlen(tok), SECRET, strlen(SECRET), NOW, &other, NULL),
            TW_AUTH_BAD_AUDIENCE);
}
