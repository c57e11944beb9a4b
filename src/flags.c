/*
 * flags — the walk over argv and config-file lines, value syntax by kind, the messages,
 * and --help from the table. Extracted from config.c, whose messages it keeps word for
 * word (tests/test_config_*.c check them), so the loadgen now speaks them too.
 *
 * A value is judged here in one order for every kind: syntax, then the lower bound, then
 * the upper one. The set callback sees only values that passed; what it refuses beyond
 * that (a path that must start with '/', a rate that must be above 0) it reports with
 * tw_flags_fail, so every message still names its flag the same way.
 */
#include "tickwire/flags.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- unit parsers ---- */

struct unit {
        const char *suffix;
        uint64_t scale;
};

static const struct unit duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"", 1000}, {NULL, 0}};
static const struct unit size_units[] = {
    {"", 1}, {"B", 1}, {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}, {NULL, 0}};

static bool is_digit(char ch)
{
        return ch >= '0' && ch <= '9';
}

/* "<digits>[.<digits>]<suffix>" scaled by the suffix's unit. Integer arithmetic only, so
 * "0.3s" is exactly 300 and never 299.99999; a fraction finer than the base unit is an
 * error rather than silently rounded. */
static int parse_scaled(const char *s, const struct unit *units, uint64_t *out)
{
        uint64_t whole = 0, frac = 0, fscale = 1;
        const char *p = s;

        if (!s || !is_digit(*p))
                return -EINVAL;
        for (; is_digit(*p); p++)
                if (__builtin_mul_overflow(whole, 10, &whole) ||
                    __builtin_add_overflow(whole, (uint64_t)(*p - '0'), &whole))
                        return -EINVAL;
        if (*p == '.') {
                p++;
                if (!is_digit(*p))
                        return -EINVAL;
                for (; is_digit(*p); p++) {
                        if (fscale == 1000000000) /* 9 digits is plenty */
                                return -EINVAL;
                        frac = frac * 10 + (uint64_t)(*p - '0');
                        fscale *= 10;
                }
        }
        const struct unit *u = units;
        while (u->suffix && strcmp(p, u->suffix) != 0)
                u++;
        if (!u->suffix)
                return -EINVAL;

        uint64_t v, f = frac * u->scale; /* < 1e9 * 2^30: cannot overflow */
        if (f % fscale != 0)
                return -EINVAL;
        if (__builtin_mul_overflow(whole, u->scale, &v) ||
            __builtin_add_overflow(v, f / fscale, &v))
                return -EINVAL;
        *out = v;
        return 0;
}

int tw_parse_duration_ms(const char *s, uint64_t *ms)
{
        return parse_scaled(s, duration_units, ms);
}

int tw_parse_size(const char *s, uint64_t *bytes)
{
        return parse_scaled(s, size_units, bytes);
}

/* ---- messages ---- */

static int vseterr(tw_flags *fl, const char *fmt, va_list ap)
{
        char msg[384];

        vsnprintf(msg, sizeof msg, fmt, ap);
        if (fl->err && fl->errlen) {
                if (fl->file)
                        snprintf(fl->err, fl->errlen, "%s:%u: %s", fl->file, fl->line, msg);
                else
                        snprintf(fl->err, fl->errlen, "%s", msg);
        }
        return -EINVAL;
}

int tw_flags_error(tw_flags *fl, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        int rc = vseterr(fl, fmt, ap);
        va_end(ap);
        return rc;
}

/* "--name: ..." on the command line, "name: ..." in a file, where the user wrote it
 * without dashes. */
int tw_flags_fail(tw_flags *fl, const char *name, const char *fmt, ...)
{
        char msg[320];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        return tw_flags_error(fl, "%s%s: %s", fl->file ? "" : "--", name, msg);
}

/* ---- formatting ---- */

const char *tw_flags_fmt_duration(uint64_t ms, char *buf, size_t cap)
{
        if (ms != 0 && ms % 60000 == 0)
                snprintf(buf, cap, "%" PRIu64 "m", ms / 60000);
        else if (ms % 1000 == 0)
                snprintf(buf, cap, "%" PRIu64 "s", ms / 1000);
        else
                snprintf(buf, cap, "%" PRIu64 "ms", ms);
        return buf;
}

const char *tw_flags_fmt_size(uint64_t n, char *buf, size_t cap)
{
        static const char *const names[] = {"GiB", "MiB", "KiB"};

        for (int i = 0; i < 3; i++) {
                uint64_t unit = 1ull << (30 - 10 * i);
                if (n != 0 && n % unit == 0) {
                        snprintf(buf, cap, "%" PRIu64 "%s", n / unit, names[i]);
                        return buf;
                }
        }
        snprintf(buf, cap, "%" PRIu64, n);
        return buf;
}

/* A duration limit reads best in hours when it is whole hours ("24h"). */
static const char *fmt_limit(uint64_t ms, char *buf, size_t cap)
{
        if (ms != 0 && ms % 3600000 == 0) {
                snprintf(buf, cap, "%" PRIu64 "h", ms / 3600000);
                return buf;
        }
        return tw_flags_fmt_duration(ms, buf, cap);
}

/* ---- values ---- */

static int parse_digits(const char *s, uint64_t *out)
{
        uint64_t v = 0;

        if (!s || !*s)
                return -EINVAL;
        for (; *s; s++)
                if (*s < '0' || *s > '9' || __builtin_mul_overflow(v, 10, &v) ||
                    __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
                        return -EINVAL;
        *out = v;
        return 0;
}

static int value_count(tw_flags *fl, const tw_flag *f, const char *s, tw_flag_value *v)
{
        if (f->off && strcmp(s, "off") == 0) {
                v->u = 0;
                return 0;
        }
        if (parse_digits(s, &v->u) != 0)
                return tw_flags_fail(fl, f->name, "invalid number '%s'", s);
        if (v->u < f->min)
                return tw_flags_fail(fl, f->name, "must be at least %" PRIu64, f->min);
        if (f->max && v->u > f->max)
                return tw_flags_fail(fl, f->name, "%s is over the limit of %" PRIu64, s, f->max);
        return 0;
}

static int value_duration(tw_flags *fl, const tw_flag *f, const char *s, tw_flag_value *v)
{
        char b[32];

        if (tw_parse_duration_ms(s, &v->u) != 0)
                return tw_flags_fail(fl, f->name, "invalid duration '%s' (use ms, s or m)", s);
        if (v->u < f->min)
                return f->min == 1 ? tw_flags_fail(fl, f->name, "must be greater than 0")
                                   : tw_flags_fail(fl, f->name, "must be at least %s",
                                                   tw_flags_fmt_duration(f->min, b, sizeof b));
        if (f->max && v->u > f->max)
                return tw_flags_fail(fl, f->name, "'%s' is over the limit of %s", s,
                                     fmt_limit(f->max, b, sizeof b));
        return 0;
}

static int value_size(tw_flags *fl, const tw_flag *f, const char *s, tw_flag_value *v)
{
        char b[32];

        if (tw_parse_size(s, &v->u) != 0)
                return tw_flags_fail(fl, f->name, "invalid size '%s' (use bytes, KiB, MiB or GiB)",
                                     s);
        if (v->u < f->min)
                return f->min == 1 ? tw_flags_fail(fl, f->name, "must be greater than 0")
                                   : tw_flags_fail(fl, f->name, "must be at least %s",
                                                   tw_flags_fmt_size(f->min, b, sizeof b));
        if (f->max && v->u > f->max)
                return tw_flags_fail(fl, f->name, "'%s' is over the limit of %s", s,
                                     tw_flags_fmt_size(f->max, b, sizeof b));
        return 0;
}

static int value_real(tw_flags *fl, const tw_flag *f, const char *s, tw_flag_value *v)
{
        char *end;

        errno = 0;
        v->r = strtod(s, &end);
        if (errno || *end || end == s || !isfinite(v->r))
                return tw_flags_fail(fl, f->name, "invalid number '%s'", s);
        if (v->r < f->rmin || v->r > f->rmax)
                return tw_flags_fail(fl, f->name, "%s is outside [%g, %g]", s, f->rmin, f->rmax);
        return 0;
}

/* "unknown WHAT 'x' (use a, b or c)": the choices are the help. */
static int value_enum(tw_flags *fl, const tw_flag *f, const char *s, tw_flag_value *v)
{
        char list[256];
        size_t n = 0, k;

        for (k = 0; f->choices[k]; k++)
                if (strcmp(s, f->choices[k]) == 0) {
                        v->u = k;
                        return 0;
                }
        list[0] = '\0';
        for (size_t i = 0; i < k && n < sizeof list; i++)
                n += (size_t)snprintf(list + n, sizeof list - n, "%s%s",
                                      i == 0       ? ""
                                      : i + 1 == k ? " or "
                                                   : ", ",
                                      f->choices[i]);
        return tw_flags_fail(fl, f->name, "unknown %s '%s' (use %s)", f->what ? f->what : "value",
                             s, list);
}

/* Parses text by the flag's kind and hands the value to the program. */
static int apply(tw_flags *fl, const tw_flag *f, const char *text)
{
        tw_flag_value v = {.text = text};
        int rc = 0;

        switch (f->kind) {
        case TW_FLAG_SWITCH:
        case TW_FLAG_HELP:
        case TW_FLAG_CUSTOM:
                break;
        case TW_FLAG_COUNT:
                rc = value_count(fl, f, text, &v);
                break;
        case TW_FLAG_SIZE:
                rc = value_size(fl, f, text, &v);
                break;
        case TW_FLAG_DURATION:
                rc = value_duration(fl, f, text, &v);
                break;
        case TW_FLAG_REAL:
                rc = value_real(fl, f, text, &v);
                break;
        case TW_FLAG_STRING:
                if (f->min && !*text)
                        rc = tw_flags_fail(fl, f->name, "must not be empty");
                break;
        case TW_FLAG_ENUM:
                rc = value_enum(fl, f, text, &v);
                break;
        }
        return rc ? rc : fl->set(fl, f, &v);
}

static bool takes_value(const tw_flag *f)
{
        return f->kind != TW_FLAG_SWITCH && f->kind != TW_FLAG_HELP;
}

/* ---- the command line ---- */

const tw_flag *tw_flags_find(const tw_flag *tab, size_t n, const char *name, size_t len)
{
        for (size_t i = 0; i < n; i++)
                if (strlen(tab[i].name) == len && memcmp(tab[i].name, name, len) == 0)
                        return &tab[i];
        return NULL;
}

int tw_flags_parse_argv(tw_flags *fl, int argc, char **argv)
{
        if (fl->err && fl->errlen)
                fl->err[0] = '\0';
        for (int i = 1; i < argc; i++) {
                const char *arg = argv[i], *v;
                int rc;

                if (fl->short_help && strcmp(arg, "-h") == 0)
                        return 1;
                if (strncmp(arg, "--", 2) != 0)
                        return tw_flags_error(
                            fl, "'%s': unexpected argument (flags start with --; see --help)", arg);
                const char *name = arg + 2, *eq = strchr(name, '=');
                size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
                const tw_flag *f = tw_flags_find(fl->tab, fl->n, name, nlen);
                if (!f)
                        return tw_flags_error(fl, "--%.*s: unknown flag (see --help)", (int)nlen,
                                              name);
                if (!takes_value(f)) {
                        if (eq)
                                return tw_flags_fail(fl, f->name, "takes no value");
                        if (f->kind == TW_FLAG_HELP)
                                return 1;
                        if ((rc = apply(fl, f, NULL)) != 0)
                                return rc;
                        continue;
                }
                /* "--flag value": a following "--word" is the next flag, not a value
                 * (use --flag=--value for a value that really starts with dashes). */
                if (eq)
                        v = eq + 1;
                else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                        v = argv[++i];
                else
                        return tw_flags_fail(fl, f->name, "missing value");
                if ((rc = apply(fl, f, v)) != 0)
                        return rc;
        }
        return 0;
}

/* ---- config-file lines ---- */

static bool is_blank(char ch)
{
        return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* '#' starts a comment only as the first non-blank character, because a secret may well
 * contain '#'. */
int tw_flags_parse_line(tw_flags *fl, char *s)
{
        char *end = s + strlen(s);

        while (end > s && is_blank(end[-1]))
                *--end = '\0';
        while (is_blank(*s))
                s++;
        if (*s == '\0' || *s == '#')
                return 0;
        if (s[0] == '-' && s[1] == '-') /* tolerate a pasted command-line flag */
                s += 2;

        const char *key = s;
        while (*s && !is_blank(*s) && *s != '=')
                s++;
        size_t klen = (size_t)(s - key);
        while (is_blank(*s))
                s++;
        if (*s == '=')
                for (s++; is_blank(*s); s++)
                        ;

        if (klen == 0)
                return tw_flags_error(fl, "expected 'flag value' or 'flag = value'");
        const tw_flag *f = tw_flags_find(fl->tab, fl->n, key, klen);
        if (!f || f->kind == TW_FLAG_HELP)
                return tw_flags_error(fl, "%.*s: unknown setting (see --help)", (int)klen, key);
        if (!takes_value(f)) /* a switch: its name alone */
                return *s ? tw_flags_fail(fl, f->name, "takes no value") : apply(fl, f, NULL);
        if (*s == '\0')
                return tw_flags_fail(fl, f->name, "missing value");
        return apply(fl, f, s);
}

/* ---- --help ---- */

void tw_flags_usage(FILE *out, const tw_flag *tab, size_t n, int width, tw_flag_default_fn def,
                    const void *ctx)
{
        char dbuf[64], left[48];

        for (size_t i = 0; i < n; i++) {
                const tw_flag *f = &tab[i];
                const char *dv = def ? def(f, ctx, dbuf, sizeof dbuf) : NULL;

                if (f->group)
                        fprintf(out, "\n%s:\n", f->group);
                snprintf(left, sizeof left, "--%s%s%s", f->name, f->arg ? " " : "",
                         f->arg ? f->arg : "");
                if (!*f->help && !dv) {
                        fprintf(out, "  %s\n", left);
                        continue;
                }
                fprintf(out, "  %-*s ", width, left);
                /* Continuation lines of the help start under its first character. */
                for (const char *p = f->help; *p; p++) {
                        fputc(*p, out);
                        if (*p == '\n')
                                fprintf(out, "%*s", width + 3, "");
                }
                if (dv)
                        fprintf(out, " [%s]", dv);
                fputc('\n', out);
        }
}
