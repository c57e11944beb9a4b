/*
 * proto — client messages in, replies out (DESIGN 5).
 *
 * A message is checked in two passes. The first is our own strict RFC 8259 scanner: jsmn
 * is a tokenizer, not a validator (it takes "[1,]", "{\"a\" 1}", "tru", "01" and several
 * values in a row, and in counting mode it does not even match brackets), and what a
 * publisher sends is forwarded to every subscriber byte for byte, so it has to be JSON
 * (and UTF-8) before we agree to carry it. The scanner also bounds nesting depth, which
 * keeps jsmn's parent walks short, and counts the tokens jsmn will need. The second pass
 * is jsmn over a token array on the stack, or on the heap for the rare message (a large
 * publish) that needs more; only the top-level keys are looked at, and values are kept as
 * spans of the caller's bytes, never re-serialised.
 *
 * Keys are compared as raw bytes: "typ\u0065" is not "type". A client has no reason to
 * escape a plain ASCII key, and decoding keys would cost a copy on every message.
 */
#include "tickwire/proto.h"
#include "tickwire/out.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#define STACK_TOKENS 64 /* a ping, subscribe or small publish never leaves the stack */

static bool is_ws(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *p, size_t n, size_t i)
{
        while (i < n && is_ws(p[i]))
                i++;
        return i;
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
        return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates,
 * nothing past U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
        unsigned char lo = 0x80, hi = 0xbf;
        size_t len;

        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xc2 && s[0] <= 0xdf) {
                len = 2;
        } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
                len = 3;
                if (s[0] == 0xe0)
                        lo = 0xa0;
                else if (s[0] == 0xed)
                        hi = 0x9f;
        } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                len = 4;
                if (s[0] == 0xf0)
                        lo = 0x90;
                else if (s[0] == 0xf4)
                        hi = 0x8f;
        } else {
                return 0;
        }
        if (n < len || s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 2; i < len; i++)
                if (s[i] < 0x80 || s[i] > 0xbf)
                        return 0;
        return len;
}

/* A string starting at p[*i] == '"'; leaves *i past the closing quote. */
static bool scan_string(const char *p, size_t n, size_t *i)
{
        size_t k = *i + 1;

        while (k < n) {
                unsigned char c = (unsigned char)p[k];
                if (c == '"') {
                        *i = k + 1;
                        return true;
                }
                if (c < 0x20)
                        return false;
                if (c == '\\') {
                        if (k + 1 >= n)
                                return false;
                        char e = p[k + 1];
                        if (e == 'u') {
                                if (n - k < 6)
                                        return false;
                                for (size_t j = 2; j < 6; j++)
                                        if (!is_hex(p[k + j]))
                                                return false;
                                k += 6;
                        } else if (e && strchr("\"\\/bfnrt", e)) {
                                k += 2;
                        } else {
                                return false;
                        }
                        continue;
                }
                size_t len = utf8_seq((const unsigned char *)p + k, n - k);
                if (len == 0)
                        return false;
                k += len;
        }
        return false;
}

static size_t scan_digits(const char *p, size_t n, size_t k)
{
        while (k < n && is_digit(p[k]))
                k++;
        return k;
}

/* A number or a literal at p[*i]. What may follow it is the caller's business. */
static bool scan_primitive(const char *p, size_t n, size_t *i)
{
        static const char *const literals[] = {"true", "false", "null"};
        size_t k = *i;

        for (size_t j = 0; j < 3; j++) {
                size_t len = strlen(literals[j]);
                if (p[k] == literals[j][0]) {
                        if (n - k < len || memcmp(p + k, literals[j], len) != 0)
                                return false;
                        *i = k + len;
                        return true;
                }
        }
        /* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
        if (p[k] == '-')
                k++;
        if (k >= n || !is_digit(p[k]))
                return false;
        k = p[k] == '0' ? k + 1 : scan_digits(p, n, k);
        if (k < n && p[k] == '.') {
                size_t d = scan_digits(p, n, k + 1);
                if (d == k + 1)
                        return false;
                k = d;
        }
        if (k < n && (p[k] == 'e' || p[k] == 'E')) {
                k++;
                if (k < n && (p[k] == '+' || p[k] == '-'))
                        k++;
                size_t d = scan_digits(p, n, k);
                if (d == k)
                        return false;
                k = d;
        }
        *i = k;
        return true;
}

/* True when p[0..n) is exactly one JSON value with optional surrounding whitespace,
 * nested at most TW_JSON_MAX_DEPTH deep. *ntok gets the number of jsmn tokens it makes. */
static bool json_scan(const char *p, size_t n, size_t *ntok)
{
        enum { VALUE, KEY, AFTER } state = VALUE;
        char closer[TW_JSON_MAX_DEPTH];
        size_t depth = 0, count = 0;
        size_t i = skip_ws(p, n, 0);

        for (;;) {
                switch (state) {
                case VALUE:
                        if (i >= n)
                                return false;
                        count++;
                        if (p[i] == '{' || p[i] == '[') {
                                if (depth == TW_JSON_MAX_DEPTH)
                                        return false;
                                closer[depth++] = p[i] == '{' ? '}' : ']';
                                state = p[i] == '{' ? KEY : VALUE;
                                i = skip_ws(p, n, i + 1);
                                if (i < n && p[i] == closer[depth - 1]) {
                                        depth--;
                                        i++;
                                        state = AFTER;
                                }
                        } else if (p[i] == '"') {
                                if (!scan_string(p, n, &i))
                                        return false;
                                state = AFTER;
                        } else {
                                if (!scan_primitive(p, n, &i))
                                        return false;
                                state = AFTER;
                        }
                        break;
                case KEY:
                        if (i >= n || p[i] != '"' || !scan_string(p, n, &i))
                                return false;
                        count++;
                        i = skip_ws(p, n, i);
                        if (i >= n || p[i] != ':')
                                return false;
                        i = skip_ws(p, n, i + 1);
                        state = VALUE;
                        break;
                case AFTER:
                        i = skip_ws(p, n, i);
                        if (depth == 0) {
                                *ntok = count;
                                return i == n;
                        }
                        if (i >= n)
                                return false;
                        if (p[i] == ',') {
                                i = skip_ws(p, n, i + 1);
                                state = closer[depth - 1] == '}' ? KEY : VALUE;
                        } else if (p[i] == closer[depth - 1]) {
                                depth--;
                                i++;
                        } else {
                                return false;
                        }
                        break;
                }
        }
}

bool tw_json_valid(const char *p, size_t n)
{
        size_t ntok;

        return json_scan(p, n, &ntok);
}

bool tw_topic_valid(tw_span topic)
{
        if (topic.n < 1 || topic.n > TW_TOPIC_MAX)
                return false;
        for (size_t i = 0; i < topic.n; i++) {
                char c = topic.p[i];
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '.' ||
                      c == '_' || c == ':' || c == '-'))
                        return false;
        }
        return true;
}

/* A value's raw bytes; a string keeps its quotes so it can be echoed as JSON. */
static tw_span tok_value(const char *p, const jsmntok_t *t)
{
        if (t->type == JSMN_STRING)
                return (tw_span){p + t->start - 1, (size_t)(t->end - t->start) + 2};
        return (tw_span){p + t->start, (size_t)(t->end - t->start)};
}

/* The bytes between a string token's quotes. */
static tw_span tok_inner(const char *p, const jsmntok_t *t)
{
        return (tw_span){p + t->start, (size_t)(t->end - t->start)};
}

static bool span_is(tw_span s, const char *lit)
{
        size_t n = strlen(lit);

        return s.n == n && memcmp(s.p, lit, n) == 0;
}

enum field {
        F_TYPE,
        F_TIME,
        F_TOPIC,
        F_DATA,
        F_SNAPSHOT,
        F_SINCE,
        F_EPOCH,
        F_ID,
        F_TOKEN,
        F_COUNT
};

static int field_of(tw_span key)
{
        static const char *const names[F_COUNT] = {
            [F_TYPE] = "type",         [F_TIME] = "time",   [F_TOPIC] = "topic", [F_DATA] = "data",
            [F_SNAPSHOT] = "snapshot", [F_SINCE] = "since", [F_EPOCH] = "epoch", [F_ID] = "id",
            [F_TOKEN] = "token",
        };

        for (int i = 0; i < F_COUNT; i++)
                if (span_is(key, names[i]))
                        return i;
        return -1;
}

static bool parse_u64(tw_span s, uint64_t *out)
{
        uint64_t v = 0;

        if (s.n == 0)
                return false;
        for (size_t i = 0; i < s.n; i++) {
                if (!is_digit(s.p[i]))
                        return false; /* a sign, a fraction or an exponent */
                uint64_t d = (uint64_t)(s.p[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return false;
                v = v * 10 + d;
        }
        *out = v;
        return true;
}

static tw_proto_status parse_topic(const char *p, const jsmntok_t *t, tw_msg *m)
{
        if (!t || t->type != JSMN_STRING)
                return TW_PROTO_BAD_TOPIC;
        tw_span topic = tok_inner(p, t);
        /* Not decoded: '\\' is outside the topic alphabet, so an escaped topic (even one
         * spelling a valid name) is refused here rather than copied out and unescaped. */
        if (!tw_topic_valid(topic))
                return TW_PROTO_BAD_TOPIC;
        m->topic = topic;
        return TW_PROTO_OK;
}

/* A string of 1-64 bytes of the topic alphabet (epochs, publish ids), unescaped. */
static bool parse_name(const char *p, const jsmntok_t *t, tw_span *out)
{
        if (t->type != JSMN_STRING)
                return false;
        *out = tok_inner(p, t);
        return out->n <= TW_NAME_MAX && tw_topic_valid(*out);
}

static tw_proto_status parse_subscribe_opts(const char *p, const jsmntok_t *snap,
                                            const jsmntok_t *since, const jsmntok_t *epoch,
                                            tw_msg *m)
{
        if (epoch && !parse_name(p, epoch, &m->epoch))
                return TW_PROTO_BAD_FIELD;
        if (snap) {
                tw_span v = tok_value(p, snap);
                if (snap->type != JSMN_PRIMITIVE || !(span_is(v, "true") || span_is(v, "false")))
                        return TW_PROTO_BAD_FIELD;
                m->snapshot = v.p[0] == 't';
        }
        if (since) {
                if (since->type != JSMN_PRIMITIVE || !parse_u64(tok_value(p, since), &m->since))
                        return TW_PROTO_BAD_FIELD;
                m->has_since = true;
        }
        return TW_PROTO_OK;
}

/* Reads the top-level object (token 0) of an already validated message. */
static tw_proto_status decode(const char *p, const jsmntok_t *toks, size_t ntok, tw_msg *m)
{
        const jsmntok_t *f[F_COUNT] = {0};

        for (size_t i = 1; i + 1 < ntok; i++) {
                if (toks[i].parent != 0)
                        continue;
                int which = field_of(tok_inner(p, &toks[i]));
                if (which < 0)
                        continue;
                /* Two values for one field: whichever we picked, some other reader of the
                 * same bytes might pick the other. */
                if (f[which])
                        return TW_PROTO_BAD_JSON;
                f[which] = &toks[i + 1];
        }

        const jsmntok_t *type = f[F_TYPE];
        if (!type || type->type != JSMN_STRING)
                return TW_PROTO_UNKNOWN_TYPE;
        tw_span t = tok_inner(p, type);
        if (span_is(t, "ping")) {
                m->type = TW_MSG_PING;
                if (f[F_TIME])
                        m->time = tok_value(p, f[F_TIME]);
                return TW_PROTO_OK;
        }
        if (span_is(t, "refresh")) {
                m->type = TW_MSG_REFRESH;
                /* The token is checked by auth; here only its shape: a plain string. */
                if (!f[F_TOKEN] || f[F_TOKEN]->type != JSMN_STRING)
                        return TW_PROTO_BAD_FIELD;
                m->token = tok_inner(p, f[F_TOKEN]);
                return TW_PROTO_OK;
        }
        if (span_is(t, "subscribe"))
                m->type = TW_MSG_SUBSCRIBE;
        else if (span_is(t, "unsubscribe"))
                m->type = TW_MSG_UNSUBSCRIBE;
        else if (span_is(t, "publish"))
                m->type = TW_MSG_PUBLISH;
        else
                return TW_PROTO_UNKNOWN_TYPE;

        tw_proto_status s = parse_topic(p, f[F_TOPIC], m);
        if (s != TW_PROTO_OK)
                return s;
        if (m->type == TW_MSG_SUBSCRIBE)
                return parse_subscribe_opts(p, f[F_SNAPSHOT], f[F_SINCE], f[F_EPOCH], m);
        if (m->type == TW_MSG_PUBLISH) {
                if (!f[F_DATA])
                        return TW_PROTO_BAD_FIELD;
                m->data = tok_value(p, f[F_DATA]);
                if (f[F_ID] && !parse_name(p, f[F_ID], &m->id))
                        return TW_PROTO_BAD_FIELD;
        }
        return TW_PROTO_OK;
}

tw_proto_status tw_proto_parse(const char *p, size_t n, tw_msg *m)
{
        jsmntok_t stack_toks[STACK_TOKENS];
        jsmntok_t *toks = stack_toks;
        jsmn_parser parser;
        size_t ntok;

        *m = (tw_msg){0};
        /* jsmn keeps offsets in int. */
        if (n > INT_MAX || !json_scan(p, n, &ntok) || p[skip_ws(p, n, 0)] != '{')
                return TW_PROTO_BAD_JSON;
        if (ntok > STACK_TOKENS) {
                toks = malloc(ntok * sizeof(*toks));
                /* No status says "out of memory"; the client sees bad_json and the
                 * connection survives, which is the best we can do for it. */
                if (!toks)
                        return TW_PROTO_BAD_JSON;
        }
        jsmn_init(&parser);
        int r = jsmn_parse(&parser, p, n, toks, (unsigned int)ntok);
        tw_proto_status s = TW_PROTO_BAD_JSON;
        if (r > 0 && (size_t)r == ntok && toks[0].type == JSMN_OBJECT)
                s = decode(p, toks, ntok, m);
        if (toks != stack_toks)
                free(toks);
        return s;
}

const char *tw_proto_status_code(tw_proto_status s)
{
        switch (s) {
        case TW_PROTO_OK:
                return NULL;
        case TW_PROTO_BAD_JSON:
        case TW_PROTO_BAD_FIELD:
                return "bad_json";
        case TW_PROTO_UNKNOWN_TYPE:
                return "unknown_type";
        case TW_PROTO_BAD_TOPIC:
                return "bad_topic";
        }
        return "bad_json";
}

/* Writes s as the inside of a JSON string. Bytes that are not UTF-8 become U+FFFD, so an
 * error message that quotes client input can still go out in a text frame. */
static void put_escaped(tw_out *o, const char *s)
{
        static const char hex[] = "0123456789abcdef";
        size_t n = strlen(s);

        for (size_t i = 0; i < n;) {
                unsigned char c = (unsigned char)s[i];
                char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                if (c == '"' || c == '\\') {
                        tw_out_put(o, (char[]){'\\', (char)c}, 2);
                } else if (c == '\n') {
                        tw_out_put(o, "\\n", 2);
                } else if (c == '\r') {
                        tw_out_put(o, "\\r", 2);
                } else if (c == '\t') {
                        tw_out_put(o, "\\t", 2);
                } else if (c < 0x20) {
                        tw_out_put(o, esc, sizeof(esc));
                } else {
                        size_t len = utf8_seq((const unsigned char *)s + i, n - i);
                        if (len == 0) {
                                tw_out_put(o, "\\ufffd", 6);
                                i++;
                                continue;
                        }
                        tw_out_put(o, s + i, len);
                        i += len;
                        continue;
                }
                i++;
        }
}

size_t tw_proto_pong(char *out, size_t cap, tw_span time)
{
        tw_out o = {out, cap, 0, false};

        if (time.n == 0) {
                tw_out_str(&o, "{\"type\":\"pong\"}");
        } else {
                tw_out_str(&o, "{\"type\":\"pong\",\"time\":");
                tw_out_put(&o, time.p, time.n);
                tw_out_str(&o, "}");
        }
        return tw_out_len(&o);
}

size_t tw_proto_error(char *out, size_t cap, const char *code, const char *message)
{
        tw_out o = {out, cap, 0, false};

        tw_out_str(&o, "{\"type\":\"error\",\"code\":\"");
        put_escaped(&o, code ? code : "");
        tw_out_str(&o, "\",\"message\":\"");
        put_escaped(&o, message ? message : "");
        tw_out_str(&o, "\"}");
        return tw_out_len(&o);
}
