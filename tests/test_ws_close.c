/*
 * Close frames: which codes a peer may send (DESIGN 4, checked for every code), parsing
 * a Close payload into code and reason with the right answer code on error, and building
 * Close frames whose reason is cut to fit at a character boundary.
 */
#include <criterion/criterion.h>

#include "test_ws_helpers.h"

/* DESIGN 4 plus IANA 1012-1014, written as a list rather than ranges so the two cannot share a
 * slip. */
static bool design_valid(unsigned code)
{
        static const unsigned ok[] = {1000, 1001, 1002, 1003, 1007, 1008,
                                      1009, 1010, 1011, 1012, 1013, 1014};
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
                if (code == ok[i])
                        return true;
        return code >= 3000 && code < 5000;
}

Test(ws_close, code_table_0_to_5000)
{
        for (unsigned c = 0; c <= 5000; c++)
                cr_assert_eq(tw_ws_close_code_valid((uint16_t)c), design_valid(c), "code %u", c);
        for (unsigned c = 5001; c <= 0xFFFF; c++)
                cr_assert(!tw_ws_close_code_valid((uint16_t)c), "code %u", c);
        /* The ones people get wrong. */
        cr_assert(!tw_ws_close_code_valid(1004));
        cr_assert(!tw_ws_close_code_valid(1005));
        cr_assert(!tw_ws_close_code_valid(1006));
        /* IANA-registered; the server itself sends 1013 to slow consumers. */
        cr_assert(tw_ws_close_code_valid(1012));
        cr_assert(tw_ws_close_code_valid(1013));
        cr_assert(tw_ws_close_code_valid(1014));
        cr_assert(!tw_ws_close_code_valid(1015));
        cr_assert(!tw_ws_close_code_valid(2999));
        cr_assert(tw_ws_close_code_valid(3000));
        cr_assert(tw_ws_close_code_valid(4999));
}

Test(ws_close, parse_empty_is_no_status)
{
        uint16_t code = 0;
        const uint8_t *reason = (const uint8_t *)"x";
        size_t rlen = 99;

        cr_assert_eq(tw_ws_close_parse((const uint8_t *)"", 0, &code, &reason, &rlen), 0);
        cr_assert_eq(code, 1005);
        cr_assert_eq(rlen, 0);
}

Test(ws_close, parse_one_byte_is_protocol_error)
{
        uint16_t code = 0;
        const uint8_t *reason;
        size_t rlen;

        /* The byte after it would make a valid code (1000) if it were read. */
        cr_assert_eq(tw_ws_close_parse((const uint8_t *)"\x03\xe8", 1, &code, &reason, &rlen),
                     1002);
}

Test(ws_close, parse_every_code)
{
        for (unsigned c = 0; c <= 0xFFFF; c++) {
                uint8_t p[2] = {(uint8_t)(c >> 8), (uint8_t)c};
                uint16_t code = 0;
                const uint8_t *reason;
                size_t rlen = 99;
                int rc = tw_ws_close_parse(p, 2, &code, &reason, &rlen);
                if (design_valid(c)) {
                        cr_assert_eq(rc, 0, "code %u", c);
                        cr_assert_eq(code, c);
                        cr_assert_eq(rlen, 0);
                } else {
                        cr_assert_eq(rc, 1002, "code %u", c);
                }
        }
}

Test(ws_close, parse_reason)
{
        static const uint8_t p[] = "\x03\xe8going \xe2\x82\xac";
        uint16_t code;
        const uint8_t *reason;
        size_t rlen;

        cr_assert_eq(tw_ws_close_parse(p, sizeof(p) - 1, &code, &reason, &rlen), 0);
        cr_assert_eq(code, 1000);
        cr_assert_eq(rlen, 9);
        cr_assert(reason == p + 2 && !memcmp(reason, "going \xe2\x82\xac", 9));
        /* Reason outputs are optional. */
        cr_assert_eq(tw_ws_close_parse(p, sizeof(p) - 1, &code, NULL, NULL), 0);
}

Test(ws_close, parse_bad_reason_is_invalid_data)
{
        static const char *bad[] = {"\x03\xe8\xff",
                                    "\x03\xe8"
                                    "ab\xe2\x82", /* cut character */
                                    "\x03\xe8\xed\xa0\x80", "\x0b\xb8\xc0\xaf"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                uint16_t code;
                cr_assert_eq(
                    tw_ws_close_parse((const uint8_t *)bad[i], strlen(bad[i]), &code, NULL, NULL),
                    1007, "case %zu", i);
        }
        /* A bad code is reported before a bad reason. */
        uint16_t code;
        cr_assert_eq(tw_ws_close_parse((const uint8_t *)"\x03\xed\xff", 3, &code, NULL, NULL),
                     1002);
}

Test(ws_close, parse_refuses_oversized_payload)
{
        uint8_t p[126];
        uint16_t code;

        memset(p, 'a', sizeof(p));
        p[0] = 0x03, p[1] = 0xe8;
        cr_assert_eq(tw_ws_close_parse(p, 125, &code, NULL, NULL), 0);
        cr_assert_eq(tw_ws_close_parse(p, 126, &code, NULL, NULL), 1002);
}

/* Reads a single frame back with a reader of the other side. */
static tw_ws_event read_one(tw_ws_reader *r, uint8_t *frame, size_t n, bool server)
{
        tw_ws_event ev;

        tw_ws_reader_init(r, server, UINT64_MAX);
        cr_assert_eq(tw_ws_read(r, frame, n, &ev), n);
        return ev;
}

Test(ws_close, build_no_status)
{
        uint8_t out[TW_WS_MAX_HEADER + TW_WS_MAX_CONTROL];
        tw_ws_reader r;

        size_t n = tw_ws_close_build(out, 0, "ignored", 7, NULL);
        cr_assert_eq(n, 2);
        cr_assert(out[0] == 0x88 && out[1] == 0x00);

        n = tw_ws_close_build(out, 0, NULL, 0, tw_test_mask);
        cr_assert_eq(n, 6);
        cr_assert(out[0] == 0x88 && out[1] == 0x80 && !memcmp(out + 2, tw_test_mask, 4));
        tw_ws_event ev = read_one(&r, out, n, true);
        cr_assert(ev.kind == TW_WS_EV_CONTROL && ev.opcode == TW_WS_OP_CLOSE && ev.len == 0);
}

Test(ws_close, build_and_parse_round_trip)
{
        uint8_t out[TW_WS_MAX_HEADER + TW_WS_MAX_CONTROL];
        const char *why = "{\"retry_ms\":1234}";

        for (int masked = 0; masked < 2; masked++) {
                tw_ws_reader r;
                size_t n = tw_ws_close_build(out, TW_WS_CLOSE_GOING_AWAY, why, strlen(why),
                                             masked ? tw_test_mask : NULL);
                cr_assert_eq(n, 2 + (masked ? 4 : 0) + 2 + strlen(why));
                tw_ws_event ev = read_one(&r, out, n, masked);
                cr_assert_eq(ev.kind, TW_WS_EV_CONTROL);
                cr_assert_eq(ev.opcode, TW_WS_OP_CLOSE);

                uint16_t code;
                const uint8_t *reason;
                size_t rlen;
                cr_assert_eq(tw_ws_close_parse(ev.data, ev.len, &code, &reason, &rlen), 0);
                cr_assert_eq(code, 1001);
                cr_assert_eq(rlen, strlen(why));
                cr_assert(!memcmp(reason, why, rlen));
        }
}

Test(ws_close, build_truncates_long_reason)
{
        uint8_t out[TW_WS_MAX_HEADER + TW_WS_MAX_CONTROL];
        char reason[300];

        memset(reason, 'r', sizeof(reason));
        size_t n = tw_ws_close_build(out, 1000, reason, sizeof(reason), NULL);
        cr_assert_eq(n, 2 + 125, "reason cut to 123 bytes");
        cr_assert_eq(out[1], 125);
        n = tw_ws_close_build(out, 1000, reason, 123, NULL);
        cr_assert_eq(n, 2 + 125);
        n = tw_ws_close_build(out, 1000, reason, 122, NULL);
        cr_assert_eq(n, 2 + 124);
}

/* A multi-byte character straddling byte 123 is dropped whole, never split. */
Test(ws_close, build_cuts_at_character_boundary)
{
        static const char *chars[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
        uint8_t out[TW_WS_MAX_HEADER + TW_WS_MAX_CONTROL];
        char reason[200];

        for (size_t c = 0; c < 3; c++) {
                size_t cl = strlen(chars[c]);
                for (size_t at = 115; at <= 124; at++) {
                        memset(reason, 'a', sizeof(reason));
                        memcpy(reason + at, chars[c], cl);
                        size_t len = at + cl + 3;
                        size_t n = tw_ws_close_build(out, 1000, reason, len, NULL);
                        size_t rlen = n - 4;
                        size_t want = len <= 123 ? len : (at < 123 && at + cl > 123) ? at : 123;
                        cr_assert_eq(rlen, want, "char %zu at %zu", c, at);
                        uint16_t code;
                        cr_assert_eq(tw_ws_close_parse(out + 2, n - 2, &code, NULL, NULL), 0,
                                     "char %zu at %zu: reason must stay valid UTF-8", c, at);
                }
        }
}

/* A reader hands the Close payload through untouched; judging it is close_parse's job. */
Test(ws_close, reader_passes_close_payload_whole)
{
        tstream s = {0};
        tlog want = {0}, got;

        TS_C(&s, TW_WS_OP_CLOSE, true, "\x03\xe8");
        TS_C(&s, TW_WS_OP_CLOSE, true, "\x03");
        tl_control(&want, TW_WS_OP_CLOSE, "\x03\xe8", 2);
        tl_control(&want, TW_WS_OP_CLOSE, "\x03", 1);
        const char *why = tlog_replay_all(true, UINT64_MAX, s.p, s.n, &got);
        cr_assert_null(why, "%s", why ? why : "");
        cr_assert(tlog_eq(&got, &want), "got %s", tlog_str(&got));
        tlog_free(&got);
        tlog_free(&want);
        ts_free(&s);
}
