/*
 * The incremental UTF-8 validator, checked exhaustively against a plain decoder written
 * the slow, obvious way, and the reader's use of it: text validated as chunks arrive,
 * across fragments and around control frames, failing (1007) at the first byte that can
 * no longer begin valid UTF-8, and at the end of a message left inside a character.
 */
#include <criterion/criterion.h>

#include "test_ws_helpers.h"

#define NOLIMIT UINT64_MAX

/* ---- reference: decode each character, check its range ---- */

/* Checks the character at p[0..n). Returns its length when complete and valid, 0 when
 * the bytes cannot start a valid character, -1 when they are a valid but unfinished
 * start (n too short). */
static int ref_char(const uint8_t *p, size_t n)
{
        uint32_t c = p[0], lo, hi, min;
        int len;

        if (c < 0x80)
                return 1;
        if ((c & 0xE0) == 0xC0) {
                len = 2, c &= 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
                len = 3, c &= 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
                len = 4, c &= 0x07, min = 0x10000;
        } else {
                return 0;
        }
        int have = n < (size_t)len ? (int)n : len;
        for (int k = 1; k < have; k++) {
                if ((p[k] & 0xC0) != 0x80)
                        return 0;
                c = c << 6 | (p[k] & 0x3F);
        }
        /* The range of code points the missing continuation bytes could still give. */
        lo = hi = c;
        for (int k = have; k < len; k++) {
                lo = lo << 6;
                hi = hi << 6 | 0x3F;
        }
        if (lo < min)
                lo = min;
        if (hi > 0x10FFFF)
                hi = 0x10FFFF;
        if (lo > hi || (lo >= 0xD800 && hi <= 0xDFFF))
                return 0;
        if (have < len)
                return -1;
        return (c >= 0xD800 && c <= 0xDFFF) ? 0 : len; /* lo == hi == c here */
}

/* Length of the longest prefix that could still begin valid UTF-8 (n if all of it can);
 * *complete says whether the whole string is valid. */
static size_t ref_scan(const uint8_t *p, size_t n, bool *complete)
{
        size_t i = 0;

        *complete = false;
        while (i < n) {
                int r = ref_char(p + i, n - i);
                if (r == -1)
                        return n;
                if (r == 0) {
                        /* Find the first byte of this character that spoils it. */
                        for (size_t k = 1; k <= n - i; k++)
                                if (ref_char(p + i, k) == 0)
                                        return i + k - 1;
                        return i;
                }
                i += (size_t)r;
        }
        *complete = true;
        return n;
}

static void check_against_ref(const uint8_t *p, size_t n)
{
        bool complete;
        size_t good = ref_scan(p, n, &complete);
        uint32_t st = tw_utf8_step(TW_UTF8_ACCEPT, p, n);

        if (complete)
                cr_assert_eq(st, TW_UTF8_ACCEPT, "%02x %02x %02x %02x (n=%zu) should be valid",
                             p[0], n > 1 ? p[1] : 0, n > 2 ? p[2] : 0, n > 3 ? p[3] : 0, n);
        else if (good < n)
                cr_assert_eq(st, TW_UTF8_REJECT, "%02x %02x %02x %02x (n=%zu) should be refused",
                             p[0], n > 1 ? p[1] : 0, n > 2 ? p[2] : 0, n > 3 ? p[3] : 0, n);
        else
                cr_assert(st != TW_UTF8_ACCEPT && st != TW_UTF8_REJECT,
                          "%02x %02x %02x %02x (n=%zu) is an unfinished character", p[0],
                          n > 1 ? p[1] : 0, n > 2 ? p[2] : 0, n > 3 ? p[3] : 0, n);
}

/* ---- the validator alone ---- */

Test(ws_utf8, every_string_of_up_to_three_bytes)
{
        uint8_t b[3];

        for (unsigned x = 0; x < 256; x++) {
                b[0] = (uint8_t)x;
                check_against_ref(b, 1);
                for (unsigned y = 0; y < 256; y++) {
                        b[1] = (uint8_t)y;
                        check_against_ref(b, 2);
                        for (unsigned z = 0; z < 256; z++) {
                                b[2] = (uint8_t)z;
                                /* The cheap test first; the reference only on a mismatch
                                 * candidate would hide bugs, so always compare. */
                                check_against_ref(b, 3);
                        }
                }
        }
}

Test(ws_utf8, four_byte_strings_at_range_edges)
{
        static const uint8_t edge[] = {0x00, 0x41, 0x7F, 0x80, 0x81, 0x8F, 0x90, 0x9F,
                                       0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED,
                                       0xEF, 0xF0, 0xF4, 0xF5, 0xFE, 0xFF};
        uint8_t b[4];

        for (unsigned x = 0; x < 256; x++)
                for (size_t i = 0; i < sizeof(edge); i++)
                        for (size_t j = 0; j < sizeof(edge); j++)
                                for (size_t k = 0; k < sizeof(edge); k++) {
                                        b[0] = (uint8_t)x, b[1] = edge[i], b[2] = edge[j],
                                        b[3] = edge[k];
                                        check_against_ref(b, 4);
                                }
}

static const struct {
        const char *s;
        bool valid;
} samples[] = {
    {"", true},
    {"plain ascii", true},
    {"\xc2\x80", true},         /* U+0080 */
    {"\xdf\xbf", true},         /* U+07FF */
    {"\xe0\xa0\x80", true},     /* U+0800 */
    {"\xed\x9f\xbf", true},     /* U+D7FF */
    {"\xee\x80\x80", true},     /* U+E000 */
    {"\xef\xbf\xbf", true},     /* U+FFFF */
    {"\xef\xbf\xbe", true},     /* U+FFFE: a noncharacter, still valid */
    {"\xf0\x90\x80\x80", true}, /* U+10000 */
    {"\xf4\x8f\xbf\xbf", true}, /* U+10FFFF */
    {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", true}, /* κόσμε */
    {"\xc0\x80", false},                                    /* overlong NUL */
    {"\xc0\xaf", false},                                    /* overlong '/' */
    {"\xc1\xbf", false},
    {"\xe0\x80\xaf", false},
    {"\xe0\x9f\xbf", false},
    {"\xf0\x80\x80\xaf", false},
    {"\xf0\x8f\xbf\xbf", false},
    {"\xed\xa0\x80", false}, /* U+D800 */
    {"\xed\xbf\xbf", false}, /* U+DFFF */
    {"\xed\xa0\x80\xed\xb0\x80", false},
    {"\xf4\x90\x80\x80", false}, /* U+110000 */
    {"\xf5\x80\x80\x80", false},
    {"\xf8\x88\x80\x80\x80", false},
    {"\xfc\x84\x80\x80\x80\x80", false},
    {"\xfe", false},
    {"\xff", false},
    {"\x80", false},
    {"\xbf", false},
    {"a\x80"
     "b",
     false},
    {"\xc2\x41", false},
    {"\xe2\x82\x41", false},
    {"\xc0 ", false},
    {"\xe2\x82", false}, /* truncated: not valid as a whole */
    {"\xf0\x9f\x98", false},
};

Test(ws_utf8, samples)
{
        for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
                const uint8_t *p = (const uint8_t *)samples[i].s;
                size_t n = strlen(samples[i].s);
                cr_assert_eq(tw_utf8_valid(p, n), samples[i].valid, "sample %zu", i);
                /* Any split gives the same state as the whole. */
                uint32_t whole = tw_utf8_step(TW_UTF8_ACCEPT, p, n);
                for (size_t k = 0; k <= n; k++) {
                        uint32_t st = tw_utf8_step(TW_UTF8_ACCEPT, p, k);
                        st = tw_utf8_step(st, p + k, n - k);
                        cr_assert_eq(st, whole, "sample %zu split at %zu", i, k);
                }
        }
}

Test(ws_utf8, reject_is_sticky)
{
        uint32_t st = tw_utf8_step(TW_UTF8_ACCEPT, (const uint8_t *)"\xff", 1);
        cr_assert_eq(st, TW_UTF8_REJECT);
        cr_assert_eq(tw_utf8_step(st, (const uint8_t *)"abc", 3), TW_UTF8_REJECT);
        cr_assert_eq(tw_utf8_step(st, NULL, 0), TW_UTF8_REJECT);
}

/* The 8-bytes-at-a-time path must not skip over anything, whatever the alignment. */
Test(ws_utf8, ascii_fast_path_at_every_position)
{
        uint8_t buf[80];
        static const char *inserts[] = {
            "\x80",         "\xff",    "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
            "\xed\xa0\x80", "\xc0\xaf"};

        for (size_t align = 0; align < 8; align++) {
                for (size_t ins = 0; ins < sizeof(inserts) / sizeof(inserts[0]); ins++) {
                        size_t il = strlen(inserts[ins]);
                        size_t n = 64;
                        for (size_t at = 0; at + il <= n; at++) {
                                uint8_t *p = buf + align;
                                memset(p, 'a', n);
                                memcpy(p + at, inserts[ins], il);
                                bool want = ins >= 2 && ins <= 4;
                                cr_assert_eq(tw_utf8_valid(p, n), want, "insert %zu at %zu", ins,
                                             at);
                                /* Cut just before the last byte: unfinished, not rejected. */
                                if (want) {
                                        uint32_t st = tw_utf8_step(0, p, at + il - 1);
                                        cr_assert(st != TW_UTF8_ACCEPT && st != TW_UTF8_REJECT);
                                }
                        }
                }
        }
}

/* ---- through the reader ---- */

/* The log a text message of payload p gives when every frame but the last is non-empty
 * (the reader hands out the bytes before the first bad one, then 1007). */
static void expect_text_log(const uint8_t *p, size_t n, tlog *want)
{
        bool complete;
        size_t good = ref_scan(p, n, &complete);

        if (complete) {
                tl_start(want, TW_WS_OP_TEXT);
                tl_data(want, p, n);
                tl_end(want);
                return;
        }
        if (good == n) /* unfinished at the end: fails on the last byte */
                good = n - 1;
        if (good) {
                tl_start(want, TW_WS_OP_TEXT);
                tl_data(want, p, good);
        }
        tl_error(want, 1007);
}

static void check_text(const uint8_t *p, size_t n)
{
        tstream s = {0};
        tlog want = {0}, got;
        const char *why;

        /* One frame. */
        ts_frame(&s, TW_WS_OP_TEXT, true, p, n, true);
        ts_frame(&s, TW_WS_OP_TEXT, true, "next", 4, true);
        expect_text_log(p, n, &want);
        if (!want.code) { /* the next message only shows up if this one was fine */
                tl_start(&want, TW_WS_OP_TEXT);
                tl_data(&want, "next", 4);
                tl_end(&want);
        }
        why = tlog_replay_all(true, NOLIMIT, s.p, s.n, &got);
        cr_assert_null(why, "%s", why ? why : "");
        cr_assert(tlog_eq(&got, &want), "got  %s\nwant %s", tlog_str(&got), tlog_str(&want));
        tlog_free(&got);
        ts_free(&s);

        /* Two fragments with a Ping between them, cut at every byte. */
        for (size_t a = 1; a < n; a++) {
                ts_frame(&s, TW_WS_OP_TEXT, false, p, a, true);
                ts_frame(&s, TW_WS_OP_PING, true, "", 0, true);
                ts_frame(&s, TW_WS_OP_CONT, true, p + a, n - a, true);
                /* The Ping shows up in the log only if the error came after it (an
                 * unfinished end fails at n - 1 >= a). */
                tlog want2 = {0};
                bool complete;
                size_t good = ref_scan(p, n, &complete);
                if (complete || good >= a) {
                        tlog tmp = {0};
                        expect_text_log(p, n, &tmp);
                        /* Splice the control record in after the first a data bytes. */
                        size_t off = 2, bytes = 0;
                        while (bytes < a && off < tmp.n && tmp.p[off] == 'D')
                                off += 2, bytes++;
                        tlog_put(&want2, tmp.p, off);
                        tl_control(&want2, TW_WS_OP_PING, "", 0);
                        tlog_put(&want2, tmp.p + off, tmp.n - off);
                        want2.code = tmp.code;
                        tlog_free(&tmp);
                } else {
                        expect_text_log(p, n, &want2);
                }
                got = tlog_run_bytewise(true, NOLIMIT, s.p, s.n);
                cr_assert(tlog_eq(&got, &want2) && !got.bad,
                          "fragment at %zu, byte by byte\ngot  %s\nwant %s", a, tlog_str(&got),
                          tlog_str(&want2));
                tlog_free(&got);
                got = tlog_run(true, NOLIMIT, s.p, s.n);
                cr_assert(tlog_eq(&got, &want2) && !got.bad,
                          "fragment at %zu, all at once\ngot  %s\nwant %s", a, tlog_str(&got),
                          tlog_str(&want2));
                tlog_free(&got);
                tlog_free(&want2);
                ts_free(&s);
        }
        tlog_free(&want);
}

#define CHECK_TEXT(lit) check_text((const uint8_t *)(lit), sizeof(lit) - 1)

/* Autobahn TestSuite section 6 in spirit: the same kinds of sequences, each sent whole,
 * fragmented at every byte, and at every split of the stream. */
Test(ws_utf8, autobahn_style_cases)
{
        for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
                check_text((const uint8_t *)samples[i].s, strlen(samples[i].s));
        CHECK_TEXT("Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!");
        CHECK_TEXT("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
                   "edited");
        CHECK_TEXT("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80"
                   "edited");
        CHECK_TEXT("\xf4\x90");
        CHECK_TEXT("\xc0");
        CHECK_TEXT("\xe0\x80");
        CHECK_TEXT("\xe0\xa0");
        CHECK_TEXT("\xf0\x90\x80");
        CHECK_TEXT("\xf4\x8f\xbf");
        CHECK_TEXT("\xdf");
        CHECK_TEXT("\xef\xbf");
        CHECK_TEXT("\xc0\x20\xc1\x20");
        CHECK_TEXT("\x80\xbf\x80\xbf");
        CHECK_TEXT("\xfe\xfe\xff\xff");
        CHECK_TEXT("\xe0\x80\xaf");
        CHECK_TEXT("\xf8\x80\x80\x80\xaf");
        CHECK_TEXT("\xed\xaf\xbf\xed\xbf\xbf");
        CHECK_TEXT("ab\xe2\x82\xac\xf0\x9f\x98\x80z");
}

Test(ws_utf8, character_split_across_fragments)
{
        tstream s = {0};
        tlog want = {0}, got;

        /* Valid: € as E2 | 82 AC around a Pong. */
        TS_C(&s, TW_WS_OP_TEXT, false, "a\xe2");
        TS_C(&s, TW_WS_OP_PONG, true, "pong");
        TS_C(&s, TW_WS_OP_CONT, true, "\x82\xac");
        tl_start(&want, TW_WS_OP_TEXT);
        tl_data(&want, "a\xe2", 2);
        tl_control(&want, TW_WS_OP_PONG, "pong", 4);
        tl_data(&want, "\x82\xac", 2);
        tl_end(&want);
        const char *why = tlog_replay_all(true, NOLIMIT, s.p, s.n, &got);
        cr_assert_null(why, "%s", why ? why : "");
        cr_assert(tlog_eq(&got, &want), "got  %s\nwant %s", tlog_str(&got), tlog_str(&want));
        tlog_free(&got);
        tlog_free(&want);
        ts_free(&s);

        /* Invalid: E2 | 28 — refused at the 28 in the second fragment. */
        TS_C(&s, TW_WS_OP_TEXT, false, "a\xe2");
        TS_C(&s, TW_WS_OP_CONT, true, "\x28\xa1");
        tl_start(&want, TW_WS_OP_TEXT);
        tl_data(&want, "a\xe2", 2);
        tl_error(&want, 1007);
        why = tlog_replay_all(true, NOLIMIT, s.p, s.n, &got);
        cr_assert_null(why, "%s", why ? why : "");
        cr_assert(tlog_eq(&got, &want), "got  %s\nwant %s", tlog_str(&got), tlog_str(&want));
        tlog_free(&got);
        tlog_free(&want);
        ts_free(&s);

        /* Unfinished at the end, the last fragment empty: fails at that fragment. */
        TS_C(&s, TW_WS_OP_TEXT, false, "a\xe2\x82");
        TS_C(&s, TW_WS_OP_CONT, true, "");
        tl_start(&want, TW_WS_OP_TEXT);
        tl_data(&want, "a\xe2\x82", 3);
        tl_error(&want, 1007);
        why = tlog_replay_all(true, NOLIMIT, s.p, s.n, &got);
        cr_assert_null(why, "%s", why ? why : "");
        cr_assert(tlog_eq(&got, &want), "got  %s\nwant %s", tlog_str(&got), tlog_str(&want));
        tlog_free(&got);
        tlog_free(&want);
        ts_free(&s);
}

/* A new message starts from a clean validator state even after an unfinished-looking
 * binary message, and binary payload is never validated. */
Test(ws_utf8, only_text_is_validated)
{
        tstream s = {0};
        tlog want = {0}, got;

        TS_C(&s, TW_WS_OP_BINARY, true, "\xff\xe2");
        TS_C(&s, TW_WS_OP_TEXT, true, "ok");
        TS_C(&s, TW_WS_OP_PING, true, "\xff");
        tl_start(&want, TW_WS_OP_BINARY);
        tl_data(&want, "\xff\xe2", 2);
        tl_end(&want);
        tl_start(&want, TW_WS_OP_TEXT);
        tl_data(&want, "ok", 2);
        tl_end(&want);
        tl_control(&want, TW_WS_OP_PING, "\xff", 1);
        const char *why = tlog_replay_all(true, NOLIMIT, s.p, s.n, &got);
        cr_assert_null(why, "%s", why ? why : "");
        cr_assert(tlog_eq(&got, &want), "got  %s\nwant %s", tlog_str(&got), tlog_str(&want));
        tlog_free(&got);
        tlog_free(&want);
        ts_free(&s);
}

/* A 1 MiB text frame with a bad byte early is refused as soon as that byte arrives. */
Test(ws_utf8, early_rejection_in_a_large_frame)
{
        size_t total = 1u << 20;
        uint8_t hdr[TW_WS_MAX_HEADER], chunk[1000];
        size_t hl = tw_ws_header_build(hdr, TW_WS_OP_TEXT, true, total, tw_test_mask);
        tw_ws_reader r;
        tw_ws_event ev;

        memset(chunk, 'a', sizeof(chunk));
        chunk[500] = 0xC0;
        tw_ws_mask(chunk, sizeof(chunk), tw_test_mask, 0);
        tw_ws_reader_init(&r, true, 2u << 20);

        cr_assert_eq(tw_ws_read(&r, hdr, hl, &ev), hl);
        cr_assert_eq(ev.kind, TW_WS_EV_NONE);
        size_t used = tw_ws_read(&r, chunk, sizeof(chunk), &ev);
        cr_assert_eq(ev.kind, TW_WS_EV_DATA);
        cr_assert(ev.msg_start && !ev.msg_end);
        cr_assert_eq(ev.len, 500, "the valid bytes before the bad one come first");
        cr_assert_eq(used, 500);
        used = tw_ws_read(&r, chunk + used, sizeof(chunk) - used, &ev);
        cr_assert_eq(ev.kind, TW_WS_EV_ERROR, "1007 with 1 MiB - 1000 bytes still to come");
        cr_assert_eq(ev.close_code, 1007);
        cr_assert_eq(used, 0);
        /* The bytes not consumed are still masked, as given. */
        uint8_t again = 0xC0 ^ tw_test_mask[500 & 3];
        cr_assert_eq(chunk[500], again);
}

/* An unfinished character at a chunk's end is fine while the message goes on. */
Test(ws_utf8, unfinished_character_mid_message_waits)
{
        uint8_t buf[64];
        tstream s = {0};
        tw_ws_reader r;
        tw_ws_event ev;

        TS_C(&s, TW_WS_OP_TEXT, true, "x\xf0\x9f\x98\x80y");
        memcpy(buf, s.p, s.n);
        tw_ws_reader_init(&r, true, NOLIMIT);
        cr_assert_eq(tw_ws_read(&r, buf, 6 + 3, &ev), 9);
        cr_assert(ev.kind == TW_WS_EV_DATA && ev.len == 3 && !ev.msg_end);
        cr_assert_eq(tw_ws_read(&r, buf + 9, s.n - 9, &ev), s.n - 9);
        cr_assert(ev.kind == TW_WS_EV_DATA && ev.len == 3 && ev.msg_end);
        ts_free(&s);
}
