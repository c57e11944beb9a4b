/*
 * tw_auth_pattern_match: a literal topic matches only itself, a prefix and a trailing '*'
 * match every topic starting with the prefix, "*" every topic. Spans are not
 * NUL-terminated and each is copied into a heap buffer of exactly its length, so a read
 * past either end is caught by ASan. The last test checks every pair over a small alphabet
 * against the definition.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "tickwire/auth.h"

/* Heap copies of exactly the given length; freed by fini. */
static char *held[2];

static tw_span exact(int slot, const char *s, size_t n)
{
        free(held[slot]);
        held[slot] = malloc(n ? n : 1);
        cr_assert_not_null(held[slot]);
        memcpy(held[slot], s, n);
        return (tw_span){held[slot], n};
}

static bool match(const char *pattern, const char *topic)
{
        return tw_auth_pattern_match(exact(0, pattern, strlen(pattern)),
                                     exact(1, topic, strlen(topic)));
}

static void fini(void)
{
        free(held[0]);
        free(held[1]);
        held[0] = held[1] = NULL;
}

TestSuite(auth_pattern, .fini = fini);

Test(auth_pattern, a_literal_matches_only_itself)
{
        cr_assert(match("AAPL", "AAPL"));
        cr_assert_not(match("AAPL", "AAP"));
        cr_assert_not(match("AAPL", "AAPLX"));
        cr_assert_not(match("AAPL", "aapl"));
        cr_assert_not(match("AAPL", "XAAPL"));
        cr_assert_not(match("AAPL", "AAPM"));
        cr_assert_not(match("AAPL", "BAPL"));
        cr_assert(match("a", "a"));
        cr_assert_not(match("a", "b"));
}

Test(auth_pattern, a_prefix_and_star)
{
        cr_assert(match("fx.*", "fx.EURUSD"));
        cr_assert(match("fx.*", "fx.")); /* the prefix alone is a topic starting with it */
        cr_assert(match("fx.*", "fx.a.b.c"));
        cr_assert_not(match("fx.*", "fx"));
        cr_assert_not(match("fx.*", "f"));
        cr_assert_not(match("fx.*", "fy.EURUSD"));
        cr_assert_not(match("fx.*", "xfx.EURUSD"));
        cr_assert_not(match("fx.*", "FX.EURUSD"));
        cr_assert(match("fx*", "fxx"));
        cr_assert(match("fx*", "fx"));
}

Test(auth_pattern, star_alone_matches_every_topic)
{
        char longest[128];

        memset(longest, 'z', sizeof(longest));
        cr_assert(match("*", "a"));
        cr_assert(match("*", "AAPL"));
        cr_assert(match("*", "*"));
        cr_assert(tw_auth_pattern_match(exact(0, "*", 1), exact(1, longest, sizeof(longest))));
}

Test(auth_pattern, empty_matches_nothing)
{
        cr_assert_not(match("", ""));
        cr_assert_not(match("", "a"));
        cr_assert_not(match("*", ""));
        cr_assert_not(match("a*", ""));
        cr_assert_not(match("a", ""));
        cr_assert_not(tw_auth_pattern_match((tw_span){NULL, 0}, (tw_span){NULL, 0}));
        cr_assert_not(tw_auth_pattern_match((tw_span){"*", 1}, (tw_span){NULL, 0}));
        cr_assert_not(tw_auth_pattern_match((tw_span){NULL, 0}, (tw_span){"a", 1}));
}

Test(auth_pattern, only_a_final_star_is_special)
{
        cr_assert(match("a*b", "a*b")); /* a literal (no topic has a '*', so it matches none) */
        cr_assert_not(match("a*b", "axb"));
        cr_assert_not(match("a*b", "ab"));
        cr_assert_not(match("*a", "ba"));
        cr_assert(match("a**", "a*")); /* the prefix is "a*" */
        cr_assert(match("a**", "a*x"));
        cr_assert_not(match("a**", "ab"));
        cr_assert_not(match("**", "a"));
}

Test(auth_pattern, prefix_longer_than_the_topic)
{
        cr_assert_not(match("abcdef*", "abc"));
        cr_assert_not(match("abcdef", "abc"));
        cr_assert_not(match("abc", "abcdef"));
        cr_assert_not(match("abcd*", "abc"));
        cr_assert(match("abc*", "abc"));
}

Test(auth_pattern, spans_are_not_strings)
{
        /* The lengths decide, not NULs or what follows in memory. */
        const char *buf = "AAPL.MORE";
        cr_assert(tw_auth_pattern_match((tw_span){buf, 4}, (tw_span){"AAPL", 4}));
        cr_assert_not(tw_auth_pattern_match((tw_span){buf, 4}, (tw_span){buf, 9}));
        cr_assert_not(tw_auth_pattern_match((tw_span){buf, 9}, (tw_span){buf, 4}));
        cr_assert(tw_auth_pattern_match((tw_span){"a\0b", 3}, (tw_span){"a\0b", 3}));
        cr_assert_not(tw_auth_pattern_match((tw_span){"a\0b", 3}, (tw_span){"a\0c", 3}));
        cr_assert_not(tw_auth_pattern_match((tw_span){"a\0*", 3}, (tw_span){"a", 1}));
        cr_assert(tw_auth_pattern_match((tw_span){"a\0*", 3}, (tw_span){"a\0zz", 4}));
}

/* Every pattern and topic of up to 4 bytes over {a, b, *}, against the definition. */
Test(auth_pattern, agrees_with_the_definition_exhaustively)
{
        static const char alpha[] = "ab*";
        char p[5], t[5];
        unsigned checked = 0;

        for (size_t pn = 0; pn <= 4; pn++) {
                for (unsigned pc = 0; pc < 81; pc++) { /* 3^4 */
                        unsigned x = pc;
                        for (size_t i = 0; i < pn; i++, x /= 3)
                                p[i] = alpha[x % 3];
                        if (x != 0 && pn < 4)
                                continue; /* each pattern once */
                        for (size_t tn = 0; tn <= 4; tn++) {
                                for (unsigned tc = 0; tc < 81; tc++) {
                                        unsigned y = tc;
                                        for (size_t i = 0; i < tn; i++, y /= 3)
                                                t[i] = alpha[y % 3];
                                        if (y != 0 && tn < 4)
                                                continue;
                                        bool star = pn > 0 && p[pn - 1] == '*';
                                        size_t lit = star ? pn - 1 : pn;
                                        bool want = pn > 0 && tn > 0 &&
                                                    (star ? tn >= lit && memcmp(t, p, lit) == 0
                                                          : tn == pn && memcmp(t, p, pn) == 0);
                                        bool got =
                                            tw_auth_pattern_match(exact(0, p, pn), exact(1, t, tn));
                                        cr_assert_eq(got, want, "pattern \"%.*s\", topic \"%.*s\"",
                                                     (int)pn, p, (int)tn, t);
                                        checked++;
                                }
                        }
                }
        }
        cr_assert_gt(checked, 10000);
}
