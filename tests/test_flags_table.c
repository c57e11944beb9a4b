/*
 * The flags module on a small table of every kind: values reach the callback
 * parsed and bounds-checked, each refusal is one line naming the flag, the argv
 * walk's rules (a following "--word" is the next flag, "--flag=" is an empty
 * value, help stops the walk) and config-file lines ("FILE:LINE: name: ...").
 * The server's own table is covered by tests/test_config_*.c.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "tickwire/flags.h"

enum { F_ON, F_N, F_SZ, F_DUR, F_R, F_S, F_E, F_C, F_HELP };

static const char *const colours[] = {"red", "green", "blue", NULL};

static const tw_flag tab[] = {
    {.name = "on", .id = F_ON, .kind = TW_FLAG_SWITCH, .help = "a switch"},
    {.name = "n",
     .id = F_N,
     .kind = TW_FLAG_COUNT,
     .arg = "N",
     .min = 1,
     .max = 10,
     .off = true,
     .help = "a count"},
    {.name = "sz",
     .id = F_SZ,
     .kind = TW_FLAG_SIZE,
     .arg = "SIZE",
     .max = 1u << 20,
     .help = "a size"},
    {.name = "dur",
     .id = F_DUR,
     .kind = TW_FLAG_DURATION,
     .arg = "DUR",
     .min = 1,
     .max = 24ull * 3600 * 1000,
     .help = "a duration"},
    {.name = "r",
     .id = F_R,
     .kind = TW_FLAG_REAL,
     .arg = "F",
     .rmin = 0,
     .rmax = 1,
     .help = "a fraction"},
    {.name = "s", .id = F_S, .kind = TW_FLAG_STRING, .arg = "S", .min = 1, .help = "a string"},
    {.name = "e",
     .id = F_E,
     .kind = TW_FLAG_ENUM,
     .arg = "C",
     .choices = colours,
     .what = "colour",
     .group = "More",
     .help = "one of three\nsecond line"},
    {.name = "c", .id = F_C, .kind = TW_FLAG_CUSTOM, .arg = "X", .help = "odd only"},
    {.name = "help", .id = F_HELP, .kind = TW_FLAG_HELP, .help = "this text"},
};
#define NTAB (sizeof tab / sizeof tab[0])

struct seen {
        bool on;
        uint64_t u[F_HELP];
        double r;
        const char *text[F_HELP];
        int calls;
};

static int set(tw_flags *fl, const tw_flag *f, const tw_flag_value *v)
{
        struct seen *s = fl->ctx;

        s->calls++;
        if (f->id == F_C && strcmp(v->text, "odd") != 0)
                return tw_flags_fail(fl, f->name, "'%s' is not odd", v->text);
        if (f->id == F_ON)
                s->on = true;
        else
                s->text[f->id] = v->text;
        s->u[f->id] = v->u;
        if (f->id == F_R)
                s->r = v->r;
        return 0;
}

static char err[256];

static int walk(struct seen *s, int argc, char **argv)
{
        tw_flags fl = {
            .tab = tab, .n = NTAB, .set = set, .ctx = s, .err = err, .errlen = sizeof err};

        memset(s, 0, sizeof *s);
        return tw_flags_parse_argv(&fl, argc, argv);
}

#define WALK(s, ...)                                                                               \
        walk((s), sizeof((char *[]){"prog", __VA_ARGS__}) / sizeof(char *),                        \
             (char *[]){"prog", __VA_ARGS__})

#define REFUSED(want, ...)                                                                         \
        do {                                                                                       \
                struct seen s_;                                                                    \
                cr_assert_eq(WALK(&s_, __VA_ARGS__), -EINVAL);                                     \
                cr_expect_str_eq(err, (want));                                                     \
        } while (0)

Test(flags_table, every_kind_reaches_the_callback)
{
        struct seen s;

        cr_assert_eq(WALK(&s, "--on", "--n", "7", "--sz=64KiB", "--dur", "1.5s", "--r", "0.25",
                          "--s", "x y", "--e=blue", "--c", "odd"),
                     0, "%s", err);
        cr_expect(s.on);
        cr_expect_eq(s.u[F_N], 7);
        cr_expect_eq(s.u[F_SZ], 65536);
        cr_expect_eq(s.u[F_DUR], 1500);
        cr_expect_float_eq(s.r, 0.25, 1e-12);
        cr_expect_str_eq(s.text[F_S], "x y");
        cr_expect_eq(s.u[F_E], 2);
        cr_expect_str_eq(s.text[F_C], "odd");
        cr_expect_eq(s.calls, 8);
        cr_expect_str_eq(err, "");
}

Test(flags_table, off_is_zero_only_where_allowed)
{
        struct seen s;

        cr_assert_eq(WALK(&s, "--n", "off"), 0, "%s", err);
        cr_expect_eq(s.u[F_N], 0);
        REFUSED("--sz: invalid size 'off' (use bytes, KiB, MiB or GiB)", "--sz", "off");
}

Test(flags_table, each_refusal_names_its_flag)
{
        REFUSED("--n: invalid number '1k'", "--n", "1k");
        REFUSED("--n: must be at least 1", "--n", "0");
        REFUSED("--n: 11 is over the limit of 10", "--n", "11");
        REFUSED("--sz: '2MiB' is over the limit of 1MiB", "--sz", "2MiB");
        REFUSED("--dur: invalid duration '5 parsecs' (use ms, s or m)", "--dur", "5 parsecs");
        REFUSED("--dur: must be greater than 0", "--dur", "0ms");
        REFUSED("--dur: '1441m' is over the limit of 24h", "--dur", "1441m");
        REFUSED("--r: invalid number 'half'", "--r", "half");
        REFUSED("--r: 1.5 is outside [0, 1]", "--r", "1.5");
        REFUSED("--r: invalid number 'inf'", "--r", "inf");
        REFUSED("--s: must not be empty", "--s=");
        REFUSED("--e: unknown colour 'pink' (use red, green or blue)", "--e", "pink");
        REFUSED("--c: 'even' is not odd", "--c", "even");
}

Test(flags_table, the_walk)
{
        struct seen s;

        REFUSED("--bogus: unknown flag (see --help)", "--bogus=1");
        REFUSED("'stray': unexpected argument (flags start with --; see --help)", "stray");
        REFUSED("'-h': unexpected argument (flags start with --; see --help)", "-h");
        REFUSED("--on: takes no value", "--on=1");
        REFUSED("--help: takes no value", "--help=1");
        REFUSED("--n: missing value", "--n");
        REFUSED("--n: missing value", "--n", "--on"); /* the next flag is not a value */
        cr_assert_eq(WALK(&s, "--s=--on"), 0, "%s", err);
        cr_expect_str_eq(s.text[F_S], "--on");
        cr_assert_eq(WALK(&s, "--on", "--help", "--bogus"), 1);
        cr_expect_eq(s.calls, 1);
}

Test(flags_table, short_help_when_asked_for)
{
        struct seen s = {0};
        tw_flags fl = {.tab = tab, .n = NTAB, .set = set, .ctx = &s, .short_help = true};

        cr_assert_eq(tw_flags_parse_argv(&fl, 2, (char *[]){"prog", "-h", NULL}), 1);
}

Test(flags_table, file_lines)
{
        struct seen s = {0};
        tw_flags fl = {.tab = tab,
                       .n = NTAB,
                       .set = set,
                       .ctx = &s,
                       .err = err,
                       .errlen = sizeof err,
                       .file = "x.conf",
                       .line = 3};
        char l1[] = "  n = 4  \n", l2[] = "# n 99\n", l3[] = "--on\n", l4[] = "s a # b\n";
        char b1[] = "on 1\n", b2[] = "help\n", b3[] = "n\n", b4[] = "= 4\n", b5[] = "n 0\n";

        cr_assert_eq(tw_flags_parse_line(&fl, l1), 0, "%s", err);
        cr_assert_eq(tw_flags_parse_line(&fl, l2), 0, "%s", err);
        cr_assert_eq(tw_flags_parse_line(&fl, l3), 0, "%s", err);
        cr_assert_eq(tw_flags_parse_line(&fl, l4), 0, "%s", err);
        cr_expect_eq(s.u[F_N], 4);
        cr_expect(s.on);
        cr_expect_str_eq(s.text[F_S], "a # b");

        cr_assert_eq(tw_flags_parse_line(&fl, b1), -EINVAL);
        cr_expect_str_eq(err, "x.conf:3: on: takes no value");
        cr_assert_eq(tw_flags_parse_line(&fl, b2), -EINVAL);
        cr_expect_str_eq(err, "x.conf:3: help: unknown setting (see --help)");
        cr_assert_eq(tw_flags_parse_line(&fl, b3), -EINVAL);
        cr_expect_str_eq(err, "x.conf:3: n: missing value");
        cr_assert_eq(tw_flags_parse_line(&fl, b4), -EINVAL);
        cr_expect_str_eq(err, "x.conf:3: expected 'flag value' or 'flag = value'");
        cr_assert_eq(tw_flags_parse_line(&fl, b5), -EINVAL);
        cr_expect_str_eq(err, "x.conf:3: n: must be at least 1");
}

static const char *def(const tw_flag *f, const void *ctx, char *buf, size_t cap)
{
        (void)ctx;
        if (f->id == F_DUR)
                return tw_flags_fmt_duration(90000, buf, cap);
        return f->id == F_E ? "red" : NULL;
}

Test(flags_table, usage_from_the_table)
{
        char text[2048] = "";
        FILE *out = fmemopen(text, sizeof text - 1, "w");

        cr_assert_not_null(out);
        tw_flags_usage(out, tab, NTAB, 10, def, NULL);
        fclose(out);
        cr_expect_not_null(strstr(text, "  --on       a switch\n"), "%s", text);
        cr_expect_not_null(strstr(text, "  --dur DUR  a duration [90s]\n"), "%s", text);
        cr_expect_not_null(strstr(text, "\nMore:\n  --e C      one of three\n"
                                        "             second line [red]\n"),
                           "%s", text);
}

Test(flags_table, formats)
{
        char b[32];

        cr_expect_str_eq(tw_flags_fmt_duration(0, b, sizeof b), "0s");
        cr_expect_str_eq(tw_flags_fmt_duration(250, b, sizeof b), "250ms");
        cr_expect_str_eq(tw_flags_fmt_duration(120000, b, sizeof b), "2m");
        cr_expect_str_eq(tw_flags_fmt_size(4u << 20, b, sizeof b), "4MiB");
        cr_expect_str_eq(tw_flags_fmt_size(1000, b, sizeof b), "1000");
}
