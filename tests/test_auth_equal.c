/*
 * tw_auth_equal: equality of byte strings (lengths included, NULs are bytes), and the
 * property that makes it constant-time: every byte of `expected` is read on every call,
 * wherever the strings differ and whatever given's length, while `given` is never read
 * past its length. Both are observed with a PROT_NONE guard page: the byte an early exit
 * would skip sits on it, so a full scan faults and an early exit does not; and a `given`
 * placed on it must not be touched when the lengths differ. (A wall-clock test would be
 * flaky on a shared machine; this one is exact.)
 */
#include <criterion/criterion.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tickwire/auth.h"

static bool eq(const char *a, const char *b)
{
        return tw_auth_equal(a, strlen(a), b, strlen(b));
}

Test(auth_equal, equal_strings)
{
        cr_assert(eq("secret", "secret"));
        cr_assert(eq("a", "a"));
        cr_assert(eq("", ""));
        char big[4096];
        memset(big, 'k', sizeof(big));
        cr_assert(tw_auth_equal(big, sizeof(big), big, sizeof(big)));
        char other[4096];
        memcpy(other, big, sizeof(other));
        cr_assert(tw_auth_equal(other, sizeof(other), big, sizeof(big)));
}

Test(auth_equal, a_difference_anywhere)
{
        char want[64], got[64];

        for (size_t i = 0; i < sizeof(want); i++)
                want[i] = (char)('A' + i % 26);
        for (size_t at = 0; at < sizeof(want); at++) {
                for (int bit = 0; bit < 8; bit++) {
                        memcpy(got, want, sizeof(got));
                        got[at] = (char)(got[at] ^ (1 << bit));
                        cr_assert_not(tw_auth_equal(got, sizeof(got), want, sizeof(want)),
                                      "byte %zu bit %d", at, bit);
                }
        }
        cr_assert_not(eq("secret", "Secret"));
        cr_assert_not(eq("secret", "secreT"));
        cr_assert_not(eq("\x80", "\x00"));
        cr_assert_not(eq("\xff", "\x7f"));
}

Test(auth_equal, different_lengths)
{
        cr_assert_not(eq("secre", "secret"));   /* a prefix of the secret */
        cr_assert_not(eq("secretX", "secret")); /* the secret and more */
        cr_assert_not(eq("secret", "secretX"));
        cr_assert_not(eq("", "secret"));
        cr_assert_not(eq("secret", ""));
        /* equal bytes over the shorter length, the lengths alone differ */
        cr_assert_not(tw_auth_equal("abc", 2, "abc", 3));
        cr_assert_not(tw_auth_equal("abc", 3, "abc", 2));
        /* lengths whose difference would vanish in a narrower type */
        static char big[257];
        memset(big, 'x', sizeof(big));
        cr_assert_not(tw_auth_equal(big, 257, big, 1));
        cr_assert_not(tw_auth_equal(big, 1, big, 257));
        cr_assert_not(tw_auth_equal(big, 256, big, 0));
        cr_assert_not(tw_auth_equal(big, 0, big, 256));
}

Test(auth_equal, empty_and_null)
{
        cr_assert(tw_auth_equal(NULL, 0, NULL, 0));
        cr_assert(tw_auth_equal("", 0, NULL, 0));
        cr_assert(tw_auth_equal(NULL, 0, "", 0));
        cr_assert(tw_auth_equal("x", 0, "y", 0)); /* zero bytes of each */
        cr_assert_not(tw_auth_equal(NULL, 0, "s", 1));
        cr_assert_not(tw_auth_equal("s", 1, NULL, 0));
}

Test(auth_equal, nul_bytes_are_compared)
{
        cr_assert(tw_auth_equal("a\0b", 3, "a\0b", 3));
        cr_assert_not(tw_auth_equal("a\0b", 3, "a\0c", 3));
        cr_assert_not(tw_auth_equal("a\0", 2, "a\0\0", 3));
        cr_assert_not(tw_auth_equal("\0", 1, "", 0));
}

/* ---- what is read ---- */

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t faulted;

static void on_fault(int sig)
{
        faulted = 1;
        siglongjmp(fault_jmp, 1);
}

/* Two pages: the first readable, the second PROT_NONE. */
static char *pages;
static size_t page;

static void init(void)
{
        struct sigaction sa = {.sa_handler = on_fault};

        page = (size_t)sysconf(_SC_PAGESIZE);
        pages = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        cr_assert_neq(pages, MAP_FAILED);
        memset(pages, 's', 2 * page);
        cr_assert_eq(mprotect(pages + page, page, PROT_NONE), 0);
        sigemptyset(&sa.sa_mask);
        cr_assert_eq(sigaction(SIGSEGV, &sa, NULL), 0);
        cr_assert_eq(sigaction(SIGBUS, &sa, NULL), 0);
}

static void fini(void)
{
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        munmap(pages, 2 * page);
}

/* Calls tw_auth_equal; true when it touched the guard page. */
static bool touches_guard(const char *given, size_t given_len, const char *expected,
                          size_t expected_len)
{
        faulted = 0;
        if (sigsetjmp(fault_jmp, 1) == 0) {
                volatile bool r = tw_auth_equal(given, given_len, expected, expected_len);
                (void)r;
        }
        return faulted;
}

TestSuite(auth_equal_reads, .init = init, .fini = fini);

Test(auth_equal_reads, every_byte_of_expected_even_when_byte_0_differs)
{
        /* expected: 256 bytes, the last one on the guard page; long enough that a library
         * memcmp, which reads a vector or two at a time, stops well before it */
        enum { N = 256 };
        const char *expected = pages + page - (N - 1);
        char given[2 * N];

        memset(given, 's', sizeof(given));
        given[0] = 'X'; /* differs at once */
        cr_assert(touches_guard(given, N, expected, N), "stopped before the last byte");
        given[0] = 's';
        given[N / 2] = 'X';
        cr_assert(touches_guard(given, N, expected, N), "differs in the middle");
        given[N / 2] = 's';
        cr_assert(touches_guard(given, N, expected, N), "equal up to the guard");
        /* a given of another length: the scan of expected still runs to its end */
        given[0] = 'X';
        cr_assert(touches_guard(given, 0, expected, N), "given empty");
        cr_assert(touches_guard(given, 1, expected, N), "given shorter");
        cr_assert(touches_guard(given, N - 1, expected, N), "given shorter by one");
        cr_assert(touches_guard(given, N + 1, expected, N), "given longer by one");
        cr_assert(touches_guard(given, 2 * N, expected, N), "given longer");
        cr_assert(touches_guard(NULL, 0, expected, N), "given NULL");
        /* control: the same calls stopping one byte short of the guard do not fault */
        cr_assert_not(touches_guard(given, N - 1, expected, N - 1));
        cr_assert_not(touches_guard(given, 5, expected, N - 1));
}

Test(auth_equal_reads, given_not_past_its_length_nor_at_all_when_lengths_differ)
{
        char expected[64];
        memset(expected, 's', sizeof(expected));

        /* given ends exactly where the guard page starts */
        const char *given = pages + page - 32;
        cr_assert_not(touches_guard(given, 32, expected, 32));
        cr_assert(tw_auth_equal(given, 32, expected, 32));
        /* given entirely on the guard page: only an equal length may read it */
        const char *guarded = pages + page;
        cr_assert_not(touches_guard(guarded, 31, expected, 32));
        cr_assert_not(touches_guard(guarded, 33, expected, 32));
        cr_assert_not(touches_guard(guarded, 4096, expected, 32));
        cr_assert_not(touches_guard(guarded, 1, expected, 0));
        cr_assert(touches_guard(guarded, 32, expected, 32)); /* control: it does read it here */
}
