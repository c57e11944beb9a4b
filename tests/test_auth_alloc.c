/*
 * What the verifier allocates: exactly one block per grant, of the size auth.h promises
 * (16 bytes + |sub| + (|pattern| + 1) per pattern), nothing at all when no grant is asked
 * for or the token is refused, and TW_AUTH_NO_MEMORY (never OK, no grant) when that one
 * allocation fails. auth.c is compiled into this test with its malloc routed through a
 * counter that can be told to fail; the module itself keeps no allocator hook.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_auth_helpers.h"

static unsigned mallocs;  /* calls from auth.c */
static size_t last_size;  /* the size of the last one */
static bool fail_mallocs; /* make them return NULL */

static void *counting_malloc(size_t n)
{
        mallocs++;
        last_size = n;
        return fail_mallocs ? NULL : malloc(n);
}

#define malloc(n) counting_malloc(n)
#include "auth.c"
#undef malloc

static tw_grant *grant;

static tw_auth_status verify(const char *payload, const tw_auth_expect *expect, tw_grant **g)
{
        const char *tok = mint(payload);

        mallocs = 0;
        return tw_auth_verify_jwt(tok, strlen(tok), SECRET, strlen(SECRET), NOW, expect, g);
}

static void fini(void)
{
        tw_grant_free(grant);
        grant = NULL;
        fail_mallocs = false;
}

TestSuite(auth_alloc, .fini = fini);

Test(auth_alloc, one_block_of_the_promised_size)
{
        static const struct {
                const char *payload;
                size_t size;
        } cases[] = {
            {"{}", 16},
            {"{\"sub\":\"alice\"}", 16 + 5},
            {"{\"subs\":[\"AAPL\",\"fx.*\"]}", 16 + 5 + 5},
            {"{\"pubs\":[\"*\"]}", 16 + 2},
            {"{\"sub\":\"alice\",\"subs\":[\"AAPL\",\"fx.*\"],\"pubs\":[\"news\"],\"exp\":"
             "1800000000,"
             "\"aud\":[\"a\",\"b\"],\"iss\":\"me\",\"extra\":\"not kept\"}",
             16 + 5 + 10 + 5},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                tw_grant_free(grant);
                grant = NULL;
                cr_assert_eq(verify(cases[i].payload, NULL, &grant), TW_AUTH_OK);
                cr_assert_eq(mallocs, 1, "%s", cases[i].payload);
                cr_assert_eq(last_size, cases[i].size, "%s: %zu bytes", cases[i].payload,
                             last_size);
        }
}

Test(auth_alloc, never_more_than_16_plus_3072)
{
        /* 64 + 64 of the longest patterns do not fit in a token; fill one as far as it goes */
        char payload[4096], pat[130];
        size_t o = (size_t)snprintf(payload, sizeof(payload), "{\"subs\":[");

        memset(pat, 'p', 128);
        strcpy(pat + 128, "*");
        for (int i = 0; i < 22; i++)
                o += (size_t)snprintf(payload + o, sizeof(payload) - o, "%s\"%s\"", i ? "," : "",
                                      pat);
        snprintf(payload + o, sizeof(payload) - o, "]}");
        cr_assert_eq(verify(payload, NULL, &grant), TW_AUTH_OK);
        cr_assert_eq(last_size, 16 + 22 * 130);
        cr_assert_leq(last_size, 16 + 3072);
}

Test(auth_alloc, nothing_without_a_grant_or_on_refusal)
{
        const tw_auth_expect svc = {.audience = "svc", .issuer = "me"};
        const char *good = "{\"sub\":\"a\",\"subs\":[\"*\"],\"aud\":\"svc\",\"iss\":\"me\"}";

        cr_assert_eq(verify(good, &svc, NULL), TW_AUTH_OK);
        cr_assert_eq(mallocs, 0);
        static const struct {
                const char *payload;
                tw_auth_status want;
        } refused[] = {
            {"{\"subs\":[\"*\"],\"aud\":\"svc\",\"iss\":\"me\",\"exp\":1}", TW_AUTH_EXPIRED},
            {"{\"subs\":[\"*\"],\"aud\":\"svc\",\"iss\":\"me\",\"nbf\":1800000000}",
             TW_AUTH_NOT_YET_VALID},
            {"{\"subs\":[\"*\"],\"aud\":\"svc\",\"iss\":\"you\"}", TW_AUTH_BAD_ISSUER},
            {"{\"subs\":[\"*\"],\"aud\":\"other\",\"iss\":\"me\"}", TW_AUTH_BAD_AUDIENCE},
            {"{\"subs\":[\"*\",1],\"aud\":\"svc\",\"iss\":\"me\"}", TW_AUTH_MALFORMED},
        };
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
                tw_grant *g = (tw_grant *)&g;
                cr_assert_eq(verify(refused[i].payload, &svc, &g), refused[i].want, "%s",
                             refused[i].payload);
                cr_assert_null(g);
                cr_assert_eq(mallocs, 0, "%s", refused[i].payload);
        }
        const char *tok = mint_with("{\"alg\":\"HS256\"}", good, "another-secret");
        tw_grant *g = (tw_grant *)&g;
        mallocs = 0;
        cr_assert_eq(tw_auth_verify_jwt(tok, strlen(tok), SECRET, strlen(SECRET), NOW, &svc, &g),
                     TW_AUTH_BAD_SIGNATURE);
        cr_assert_null(g);
        cr_assert_eq(mallocs, 0);
}

Test(auth_alloc, out_of_memory_is_not_ok)
{
        tw_grant *g = (tw_grant *)&g;

        fail_mallocs = true;
        cr_assert_eq(verify("{\"sub\":\"a\",\"subs\":[\"*\"]}", NULL, &g), TW_AUTH_NO_MEMORY);
        cr_assert_eq(mallocs, 1);
        cr_assert_null(g);
        cr_assert_str_eq(tw_auth_status_str(TW_AUTH_NO_MEMORY), "no_memory");
        /* a verdict that needs no grant does not depend on memory */
        cr_assert_eq(verify("{\"sub\":\"a\",\"subs\":[\"*\"]}", NULL, NULL), TW_AUTH_OK);
        cr_assert_eq(verify("{\"exp\":1}", NULL, &g), TW_AUTH_EXPIRED);
        cr_assert_null(g);
        /* and memory back, the same token is granted */
        fail_mallocs = false;
        cr_assert_eq(verify("{\"sub\":\"a\",\"subs\":[\"*\"]}", NULL, &grant), TW_AUTH_OK);
        cr_assert(tw_grant_may_subscribe(grant, (tw_span){"x", 1}));
}
