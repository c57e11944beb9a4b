/*
 * flags — table-driven long options, shared by the server (config) and tickwire-loadgen.
 *
 * A program describes each flag once in a tw_flag table: its name, the kind of value it
 * takes (with its bounds and units), its metavar and help line. This module walks argv
 * ("--flag value" or "--flag=value") or one config-file line ("flag value", "flag =
 * value") against the table, parses and bounds-checks the value by its kind, and hands
 * it to the program's set callback, which only stores it (and checks what involves more
 * than the one value). It also prints the table as --help.
 *
 * Units are parsed here once (tw_parse_duration_ms, tw_parse_size), so "30s" and
 * "4MiB" mean the same thing to every program. Messages are one line naming the flag:
 * "--name: ..." on the command line, "FILE:LINE: name: ..." from a file.
 *
 * Owns: the walk over argv and file lines, value syntax, the messages. Must not touch:
 * the programs' settings (the callback does), files (the caller reads its lines), exit.
 */
#ifndef TICKWIRE_FLAGS_H
#define TICKWIRE_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum tw_flag_kind {
        TW_FLAG_SWITCH,   /* takes no value */
        TW_FLAG_HELP,     /* takes no value; the walk stops and returns 1 */
        TW_FLAG_COUNT,    /* decimal digits in [min, max] ("off" = 0 with .off) */
        TW_FLAG_SIZE,     /* bytes, B, KiB, MiB, GiB, in [min, max] bytes */
        TW_FLAG_DURATION, /* ms, s, m or bare seconds, in [min, max] milliseconds */
        TW_FLAG_REAL,     /* a finite decimal number in [rmin, rmax] */
        TW_FLAG_STRING,   /* text as given; not empty when min > 0 */
        TW_FLAG_ENUM,     /* one of choices[]; the value is its index */
        TW_FLAG_CUSTOM,   /* any text: the set callback parses it */
};

typedef struct tw_flag {
        const char *name; /* without the leading "--"; a file uses the same */
        int id;           /* the program's key (aliases may share one) */
        enum tw_flag_kind kind;
        const char *arg;            /* metavar in --help; NULL for a switch or help */
        const char *group;          /* non-NULL starts a new heading in --help */
        const char *help;           /* may hold '\n': continued under the help column */
        uint64_t min, max;          /* COUNT, SIZE, DURATION (max 0: no limit); STRING */
        double rmin, rmax;          /* REAL */
        const char *const *choices; /* ENUM: NULL-terminated */
        const char *what;           /* ENUM: the noun in "unknown WHAT 'x' (use ...)" */
        bool off;                   /* COUNT: "off" is accepted for 0 */
} tw_flag;

/* A parsed value, as the set callback gets it. */
typedef struct tw_flag_value {
        const char *text; /* as given (NULL for a switch); from argv it points into argv */
        uint64_t u;       /* COUNT, SIZE, DURATION (ms), ENUM (index into choices) */
        double r;         /* REAL */
} tw_flag_value;

typedef struct tw_flags tw_flags;

/* Stores one value. Returns 0, or what tw_flags_fail/tw_flags_error returned. */
typedef int (*tw_flag_set_fn)(tw_flags *fl, const tw_flag *f, const tw_flag_value *v);

/* One walk: the table, the callback and where messages go. */
struct tw_flags {
        const tw_flag *tab;
        size_t n;
        tw_flag_set_fn set;
        void *ctx; /* the program's settings, for the callback */
        char *err; /* one line on failure; may be NULL */
        size_t errlen;
        bool short_help;  /* "-h" is --help too */
        const char *file; /* set while reading a file: messages say FILE:LINE */
        unsigned line;
};

/* Walks argv[1..argc) over the table. "--flag value" takes the next argument unless it
 * starts with "--" (that is the next flag: use --flag=--value). Returns 0, 1 when help was
 * asked for (nothing printed), or -EINVAL with one line in fl->err. */
int tw_flags_parse_argv(tw_flags *fl, int argc, char **argv);

/* One line of a config file: "flag value" or "flag = value", blank lines and lines whose
 * first non-blank character is '#' ignored, a pasted leading "--" tolerated. The line is
 * modified (trailing blanks cut); values point into it. Help flags are unknown here.
 * Returns 0 or -EINVAL with "FILE:LINE: ..." in fl->err. */
int tw_flags_parse_line(tw_flags *fl, char *line);

/* The table entry named name[0..len), or NULL. */
const tw_flag *tw_flags_find(const tw_flag *tab, size_t n, const char *name, size_t len);

/* Writes a whole message line (after "FILE:LINE: " while reading a file); -EINVAL. */
int tw_flags_error(tw_flags *fl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A message about one flag: "--name: ..." ("name: ..." in a file); returns -EINVAL. */
int tw_flags_fail(tw_flags *fl, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The default shown for a flag in --help, written into buf or a literal; NULL for none. */
typedef const char *(*tw_flag_default_fn)(const tw_flag *f, const void *ctx, char *buf, size_t cap);

/* Prints the table as --help lines, "  --name ARG" padded to `width`, then the help and
 * " [default]" when `def` (may be NULL) gives one, under each group heading. */
void tw_flags_usage(FILE *out, const tw_flag *tab, size_t n, int width, tw_flag_default_fn def,
                    const void *ctx);

/* "250ms", "30s", "2m": the largest unit that is exact (help defaults, messages). */
const char *tw_flags_fmt_duration(uint64_t ms, char *buf, size_t cap);

/* "4MiB", "64KiB" or bytes. */
const char *tw_flags_fmt_size(uint64_t n, char *buf, size_t cap);

/* "250ms", "30s", "2m", or a bare number of seconds. Returns 0 or -EINVAL. */
int tw_parse_duration_ms(const char *s, uint64_t *ms);

/* "4MiB", "64KiB", "1GiB" or bytes. Returns 0 or -EINVAL. */
int tw_parse_size(const char *s, uint64_t *bytes);

#endif
