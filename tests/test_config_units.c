/*
 * Duration and size parsing: every accepted form gives the exact value, and every
 * malformed, negative, ambiguous or overflowing form is refused without touching the
 * output.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

#include "tickwire/config.h"

static uint64_t dur(const char *s)
{
        uint64_t ms = 12345;
        int rc = tw_parse_duration_ms(s, &ms);
        cr_assert_eq(rc, 0, "'%s' should parse, got %d", s, rc);
        return ms;
}

static void bad_dur(const char *s)
{
        uint64_t ms = 777;
        cr_expect_eq(tw_parse_duration_ms(s, &ms), -EINVAL, "'%s' should be refused", s);
        cr_expect_eq(ms, 777, "'%s': output written on failure", s);
}

static uint64_t size(const char *s)
{
        uint64_t n = 12345;
        int rc = tw_parse_size(s, &n);
        cr_assert_eq(rc, 0, "'%s' should parse, got %d", s, rc);
        return n;
}

static void bad_size(const char *s)
{
        uint64_t n = 777;
        cr_expect_eq(tw_parse_size(s, &n), -EINVAL, "'%s' should be refused", s);
        cr_expect_eq(n, 777, "'%s': output written on failure", s);
}

Test(config_units, duration_units)
{
        cr_expect_eq(dur("250ms"), 250);
        cr_expect_eq(dur("0ms"), 0);
        cr_expect_eq(dur("30s"), 30000);
        cr_expect_eq(dur("2m"), 120000);
        cr_expect_eq(dur("1ms"), 1);
        cr_expect_eq(dur("007s"), 7000);
}

Test(config_units, bare_number_is_seconds)
{
        cr_expect_eq(dur("0"), 0);
        cr_expect_eq(dur("5"), 5000);
        cr_expect_eq(dur("90"), 90000);
}

Test(config_units, fractions_to_whole_milliseconds)
{
        cr_expect_eq(dur("1.5s"), 1500);
        cr_expect_eq(dur("0.25"), 250);
        cr_expect_eq(dur("0.3s"), 300); /* exact, not 299 from float rounding */
        cr_expect_eq(dur("1.001s"), 1001);
        cr_expect_eq(dur("0.5m"), 30000);
        cr_expect_eq(dur("2.50s"), 2500);
        cr_expect_eq(dur("3.0ms"), 3);
}

Test(config_units, duration_rejections)
{
        bad_dur("");
        bad_dur("abc");
        bad_dur("-5s");
        bad_dur("+5s");
        bad_dur(" 5s");
        bad_dur("5s ");
        bad_dur("5 s");
        bad_dur("5h"); /* only ms, s, m */
        bad_dur("5S"); /* units are lower case */
        bad_dur("5sec");
        bad_dur("ms");
        bad_dur(".5s");
        bad_dur("5.s");
        bad_dur("1.2.3s");
        bad_dur("0.1ms");                  /* finer than a millisecond */
        bad_dur("1.0005s");                /* ditto */
        bad_dur("1.0000000000s");          /* more than 9 fraction digits */
        bad_dur("18446744073709551616ms"); /* 2^64 */
        bad_dur("18446744073709551615s");  /* fits as a number, overflows as ms */
        bad_dur("99999999999999999999999");
        bad_dur(NULL);
}

Test(config_units, duration_largest)
{
        cr_expect_eq(dur("18446744073709551615ms"), UINT64_MAX);
}

Test(config_units, size_units)
{
        cr_expect_eq(size("512"), 512);
        cr_expect_eq(size("0"), 0);
        cr_expect_eq(size("512B"), 512);
        cr_expect_eq(size("64KiB"), 65536);
        cr_expect_eq(size("4MiB"), 4u << 20);
        cr_expect_eq(size("1GiB"), 1u << 30);
        cr_expect_eq(size("1.5MiB"), 1572864);
        cr_expect_eq(size("0.5KiB"), 512);
        cr_expect_eq(size("16384GiB"), 16384ull << 30);
}

Test(config_units, size_rejections)
{
        bad_size("");
        bad_size("abc");
        bad_size("-1");
        bad_size("4MB"); /* ambiguous: refused, not guessed */
        bad_size("64KB");
        bad_size("1GB");
        bad_size("4mib");
        bad_size("4M");
        bad_size("4 MiB");
        bad_size("1TiB");
        bad_size("0.3B"); /* not whole bytes */
        bad_size("1.0001KiB");
        bad_size("17179869184GiB"); /* 2^64 bytes */
        bad_size("18446744073709551616");
        bad_size(NULL);
}
