/*
 * json_ref — a small reference JSON validator for the fuzz harnesses, written apart from
 * src/proto.c on purpose so the two can be compared: recursive descent straight from the
 * RFC 8259 grammar, where proto.c is an explicit state machine.
 *
 * Rules, matching what proto.h documents for tw_json_valid: exactly one value with
 * optional surrounding whitespace (space, tab, LF, CR only); strings hold well-formed
 * UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF), no raw control
 * byte below 0x20, and only the escapes \" \\ \/ \b \f \n \r \t \uXXXX (any four hex
 * digits: the grammar does not pair surrogates); arrays and objects nest at most
 * TW_JSON_MAX_DEPTH deep, the outermost counting as one.
 *
 * Besides the verdict it reports what the harnesses use as an oracle: the number of
 * tokens jsmn would make (one per value and one per object key), the type of the top-level
 * value, and the members of a top-level object as spans (key without its quotes, value
 * raw, a string value with its quotes).
 */
#ifndef TW_FUZZ_JSON_REF_H
#define TW_FUZZ_JSON_REF_H

#include "tickwire/proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define JREF_MAX_MEMBERS 64

/* The oracle gets no coverage instrumentation: libFuzzer should steer by the code under
 * test, and the comparison tracing of a second parser costs about half the exec rate. */
#if defined(__clang__)
#define JREF_FN static inline __attribute__((no_sanitize("coverage")))
#else
#define JREF_FN static inline
#endif

typedef struct jref_member {
        tw_span key;   /* between the quotes, escapes as sent */
        tw_span value; /* raw bytes of the value */
} jref_member;

typedef struct jref_info {
        char top;       /* '{', '[', '"', 'n' (number) or 'l' (true/false/null) */
        size_t tokens;  /* what jsmn counts */
        size_t members; /* top-level object members seen (may exceed the array) */
        jref_member member[JREF_MAX_MEMBERS];
} jref_info;

typedef struct jref {
        const unsigned char *p;
        size_t n, i;
        jref_info *info;
} jref;

JREF_FN void jref_ws(jref *r)
{
        while (r->i < r->n && (r->p[r->i] == ' ' || r->p[r->i] == '\t' || r->p[r->i] == '\n' ||
                               r->p[r->i] == '\r'))
                r->i++;
}

JREF_FN bool jref_eat(jref *r, unsigned char c)
{
        if (r->i < r->n && r->p[r->i] == c) {
                r->i++;
                return true;
        }
        return false;
}

JREF_FN int jref_peek(const jref *r)
{
        return r->i < r->n ? r->p[r->i] : -1;
}

/* Decodes one UTF-8 character into a code point and refuses what RFC 3629 refuses, by
 * value rather than by lead-byte ranges. */
JREF_FN bool jref_utf8(jref *r)
{
        unsigned char b = r->p[r->i];
        uint32_t cp, min;
        size_t len;

        if (b < 0x80)
                len = 1, cp = b, min = 0;
        else if ((b & 0xe0) == 0xc0)
                len = 2, cp = b & 0x1fu, min = 0x80;
        else if ((b & 0xf0) == 0xe0)
                len = 3, cp = b & 0x0fu, min = 0x800;
        else if ((b & 0xf8) == 0xf0)
                len = 4, cp = b & 0x07u, min = 0x10000;
        else
                return false;
        if (r->n - r->i < len)
                return false;
        for (size_t k = 1; k < len; k++) {
                unsigned char c = r->p[r->i + k];
                if ((c & 0xc0) != 0x80)
                        return false;
                cp = (cp << 6) | (c & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return false;
        r->i += len;
        return true;
}

JREF_FN bool jref_hex(int c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* string = quotation-mark *char quotation-mark */
JREF_FN bool jref_string(jref *r)
{
        if (!jref_eat(r, '"'))
                return false;
        for (;;) {
                int c = jref_peek(r);
                if (c < 0)
                        return false;
                if (c == '"') {
                        r->i++;
                        return true;
                }
                if (c < 0x20)
                        return false;
                if (c == '\\') {
                        r->i++;
                        c = jref_peek(r);
                        if (c < 0)
                                return false;
                        r->i++;
                        if (c == 'u') {
                                for (int k = 0; k < 4; k++) {
                                        if (!jref_hex(jref_peek(r)))
                                                return false;
                                        r->i++;
                                }
                        } else if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' &&
                                   c != 'n' && c != 'r' && c != 't') {
                                return false;
                        }
                        continue;
                }
                if (!jref_utf8(r))
                        return false;
        }
}

JREF_FN bool jref_digits(jref *r)
{
        size_t start = r->i;

        while (r->i < r->n && r->p[r->i] >= '0' && r->p[r->i] <= '9')
                r->i++;
        return r->i > start;
}

/* number = [ minus ] int [ frac ] [ exp ] */
JREF_FN bool jref_number(jref *r)
{
        jref_eat(r, '-');
        if (jref_eat(r, '0')) {
                /* int = zero / ( digit1-9 *DIGIT ): nothing may follow a leading zero */
        } else if (!jref_digits(r)) {
                return false;
        }
        if (jref_eat(r, '.') && !jref_digits(r))
                return false;
        if (jref_eat(r, 'e') || jref_eat(r, 'E')) {
                if (!jref_eat(r, '+'))
                        jref_eat(r, '-');
                if (!jref_digits(r))
                        return false;
        }
        return true;
}

JREF_FN bool jref_literal(jref *r, const char *lit)
{
        size_t len = strlen(lit);

        if (r->n - r->i < len || memcmp(r->p + r->i, lit, len) != 0)
                return false;
        r->i += len;
        return true;
}

JREF_FN bool jref_value(jref *r, int depth);

/* Members of the top-level object (depth 1) are recorded. */
JREF_FN bool jref_object(jref *r, int depth)
{
        r->i++; /* '{' */
        jref_ws(r);
        if (jref_eat(r, '}'))
                return true;
        for (;;) {
                jref_ws(r);
                size_t k0 = r->i;
                if (!jref_string(r))
                        return false;
                size_t k1 = r->i;
                r->info->tokens++;
                jref_ws(r);
                if (!jref_eat(r, ':'))
                        return false;
                jref_ws(r);
                size_t v0 = r->i;
                if (!jref_value(r, depth))
                        return false;
                if (depth == 1) {
                        jref_info *in = r->info;
                        if (in->members < JREF_MAX_MEMBERS)
                                in->member[in->members] = (jref_member){
                                    .key = {(const char *)r->p + k0 + 1, k1 - k0 - 2},
                                    .value = {(const char *)r->p + v0, r->i - v0},
                                };
                        in->members++;
                }
                jref_ws(r);
                if (jref_eat(r, '}'))
                        return true;
                if (!jref_eat(r, ','))
                        return false;
        }
}

JREF_FN bool jref_array(jref *r, int depth)
{
        r->i++; /* '[' */
        jref_ws(r);
        if (jref_eat(r, ']'))
                return true;
        for (;;) {
                jref_ws(r);
                if (!jref_value(r, depth))
                        return false;
                jref_ws(r);
                if (jref_eat(r, ']'))
                        return true;
                if (!jref_eat(r, ','))
                        return false;
        }
}

/* A value whose enclosing containers number `depth`. */
JREF_FN bool jref_value(jref *r, int depth)
{
        int c = jref_peek(r);

        r->info->tokens++;
        if (c == '{' || c == '[') {
                if (depth + 1 > TW_JSON_MAX_DEPTH)
                        return false;
                return c == '{' ? jref_object(r, depth + 1) : jref_array(r, depth + 1);
        }
        if (c == '"')
                return jref_string(r);
        if (c == 't')
                return jref_literal(r, "true");
        if (c == 'f')
                return jref_literal(r, "false");
        if (c == 'n')
                return jref_literal(r, "null");
        if (c == '-' || (c >= '0' && c <= '9'))
                return jref_number(r);
        return false;
}

/* True when p[0..n) is exactly one JSON value; info (may be NULL) gets the oracle data,
 * meaningful only when true is returned. */
JREF_FN bool jref_valid(const char *p, size_t n, jref_info *info)
{
        jref_info scratch;
        jref r = {(const unsigned char *)p, n, 0, info ? info : &scratch};

        memset(r.info, 0, sizeof(*r.info));
        jref_ws(&r);
        int c = jref_peek(&r);
        if (c == '{' || c == '[' || c == '"')
                r.info->top = (char)c;
        else if (c == 't' || c == 'f' || c == 'n')
                r.info->top = 'l';
        else
                r.info->top = 'n';
        if (!jref_value(&r, 0))
                return false;
        jref_ws(&r);
        return r.i == r.n;
}

/* The first top-level member whose raw key is `name`, or NULL; *dups gets how many
 * members carry that key. Only the recorded members are looked at. */
JREF_FN const jref_member *jref_find(const jref_info *in, const char *name, int *dups)
{
        size_t len = strlen(name),
               m = in->members < JREF_MAX_MEMBERS ? in->members : JREF_MAX_MEMBERS;
        const jref_member *first = NULL;

        *dups = 0;
        for (size_t i = 0; i < m; i++) {
                if (in->member[i].key.n != len || memcmp(in->member[i].key.p, name, len) != 0)
                        continue;
                if (!first)
                        first = &in->member[i];
                (*dups)++;
        }
        return first;
}

/* The elements of a valid JSON array value (raw spans, as for members); false when v is not
 * an array or has more than cap elements. */
JREF_FN bool jref_elements(tw_span v, tw_span *out, size_t cap, size_t *count)
{
        jref_info scratch;
        jref r = {(const unsigned char *)v.p, v.n, 0, &scratch};

        *count = 0;
        if (!jref_eat(&r, '['))
                return false;
        jref_ws(&r);
        if (jref_eat(&r, ']'))
                return true;
        for (;;) {
                jref_ws(&r);
                size_t s = r.i;
                if (*count == cap || !jref_value(&r, 1))
                        return false;
                out[(*count)++] = (tw_span){v.p + s, r.i - s};
                jref_ws(&r);
                if (jref_eat(&r, ']'))
                        return true;
                if (!jref_eat(&r, ','))
                        return false;
        }
}

/* A span lies inside [base, base + n). */
JREF_FN bool span_inside(tw_span s, const char *base, size_t n)
{
        if (s.n == 0)
                return s.p == NULL || (s.p >= base && s.p <= base + n);
        return s.p >= base && s.p <= base + n && s.n <= (size_t)(base + n - s.p);
}

#endif
