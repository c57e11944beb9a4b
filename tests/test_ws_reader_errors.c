/*
 * Every way the frame reader refuses input, with the exact close code, at every split of
 * the stream: RSV bits, reserved opcodes, masking in the wrong direction, control frame
 * rules, continuation rules, bad length encodings and the message size limit (1009
 * across fragments, reported as soon as the header that crosses it is seen). Also: a
 * failed reader stays failed.
 */
#include <criterion/criterion.h>

#include "test_ws_helpers.h"

#define NOLIMIT UINT64_MAX

/* Good frames, then the bad bytes, then a frame that must never be reported. */
static void expect_error(bool server, uint64_t max, const tstream *prefix, const tlog *prefix_log,
                         const void *bad, size_t bad_len, uint16_t code)
{
        tstream s = {0};
        tlog want = {0}, got;

        if (prefix)
                ts_put(&s, prefix->p, prefix->n);
        ts_put(&s, bad, bad_len);
        ts_frame(&s, TW_WS_OP_TEXT, true, "never", 5, server);
        if (prefix_log)
                tlog_put(&want, prefix_log->p, prefix_log->n);
        tl_error(&want, code);

        const char *why = tlog_replay_all(server, max, s.p, s.n, &got);
        cr_assert_null(why, "%s", why ? why : "");
        cr_assert(tlog_eq(&got, &want), "got  %s\nwant %s", tlog_str(&got), tlog_str(&want));
        tlog_free(&got);
        tlog_free(&want);
        ts_free(&s);
}

/* The error must show up once the first `at` bytes of the bad frame are in, before the
 * rest of it exists. */
static void expect_error_after(bool server, uint64_t max, const uint8_t *bad, size_t at,
                               uint16_t code)
{
        tw_ws_reader r;
        tw_ws_event ev;
        uint8_t buf[TW_WS_MAX_HEADER];
        size_t used = 0;

        memcpy(buf, bad, at);
        tw_ws_reader_init(&r, server, max);
        for (size_t i = 0; i < at; i++) {
                used += tw_ws_read(&r, buf + i, 1, &ev);
                if (i + 1 < at)
                        cr_assert_eq(ev.kind, TW_WS_EV_NONE, "error before byte %zu", i + 1);
        }
        cr_assert_eq(ev.kind, TW_WS_EV_ERROR, "no error after %zu bytes", at);
        cr_assert_eq(ev.close_code, code);
        cr_assert_eq(used, at);
}

Test(ws_errors, unmasked_client_frame)
{
        tstream bad = {0};

        ts_frame(&bad, TW_WS_OP_TEXT, true, "hi", 2, false);
        expect_error(true, NOLIMIT, NULL, NULL, bad.p, bad.n, 1002);
        expect_error_after(true, NOLIMIT, bad.p, 2, 1002);
        ts_free(&bad);

        /* Also an unmasked control frame, and one in the middle of a message. */
        tstream pre = {0};
        tlog pre_log = {0};
        TS_C(&pre, TW_WS_OP_TEXT, false, "ab");
        tl_start(&pre_log, TW_WS_OP_TEXT);
        tl_data(&pre_log, "ab", 2);
        ts_frame(&bad, TW_WS_OP_PING, true, "", 0, false);
        expect_error(true, NOLIMIT, &pre, &pre_log, bad.p, bad.n, 1002);
        ts_free(&bad);
        ts_free(&pre);
        tlog_free(&pre_log);
}

Test(ws_errors, client_rejects_masked_server_frame)
{
        tstream bad = {0};

        ts_frame(&bad, TW_WS_OP_BINARY, true, "hi", 2, true);
        expect_error(false, NOLIMIT, NULL, NULL, bad.p, bad.n, 1002);
        expect_error_after(false, NOLIMIT, bad.p, 2, 1002);
        ts_free(&bad);
}

Test(ws_errors, rsv_bits)
{
        static const uint8_t rsv[] = {0x40, 0x20, 0x10, 0x70};

        for (size_t i = 0; i < sizeof(rsv); i++) {
                tstream bad = {0};
                ts_frame(&bad, TW_WS_OP_TEXT, true, "hi", 2, true);
                bad.p[0] |= rsv[i];
                expect_error(true, NOLIMIT, NULL, NULL, bad.p, bad.n, 1002);
                ts_free(&bad);

                /* On a control frame too. */
                ts_frame(&bad, TW_WS_OP_PING, true, "", 0, true);
                bad.p[0] |= rsv[i];
                expect_error(true, NOLIMIT, NULL, NULL, bad.p, bad.n, 1002);
                ts_free(&bad);
        }
}

Test(ws_errors, reserved_opcodes)
{
        static const uint8_t ops[] = {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF};

        for (size_t i = 0; i < sizeof(ops); i++) {
                for (int fin = 0; fin < 2; fin++) {
                        tstream bad = {0};
                        ts_frame(&bad, ops[i], fin, "x", 1, true);
                        expect_error(true, NOLIMIT, NULL, NULL, bad.p, bad.n, 1002);
                        expect_error_after(true, NOLIMIT, bad.p, 2, 1002);
                        ts_free(&bad);
                }
        }
}

Test(ws_errors, control_frame_too_long)
{
        static const uint8_t ops[] = {TW_WS_OP_CLOSE, TW_WS_OP_PING, TW_WS_OP_PONG};
        uint8_t payload[200] = {0};

        for (size_t i = 0; i < sizeof(ops); i++) {
                /* 126 bytes: the 16-bit form, refused from the first two bytes. */
                tstream bad = {0};
                ts_frame(&bad, ops[i], true, payload, 126, true);
                expect_error(true, NOLIMIT, NULL, NULL, bad.p, bad.n, 1002);
                expect_error_after(true, NOLIMIT, bad.p, 2, 1002);
                ts_free(&bad);

                /* The 64-bit form (non-minimal too, but refused earlier as a control). */
                uint8_t h[] = {(uint8_t)(0x80 | ops[i]), 0xFF, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4};
                expect_error(true, NOLIMIT, NULL, NULL, h, sizeof(h), 1002);
                expect_error_after(true, NOLIMIT, h, 2, 1002);

                /* 125 is fine. */
                tstream ok = {0};
                tlog want = {0}, got;
                ts_frame(&ok, ops[i], true, payload, 125, true);
                tl_control(&want, ops[i], payload, 125);
                got = tlog_run_bytewise(true, NOLIMIT, ok.p, ok.n);
                cr_assert(tlog_eq(&got, &want));
                tlog_free(&got);
                tlog_free(&want);
                ts_free(&ok);
        }
}

Test(ws_errors, fragmented_control_frame)
{
        static const uint8_t ops[] = {TW_WS_OP_CLOSE, TW_WS_OP_PING, TW_WS_OP_PONG};

        for (size_t i = 0; i < sizeof(ops); i++) {
                tstream bad = {0};
                ts_frame(&bad, ops[i], false, "ab", 2, true);
                expect_error(true, NOLIMIT, NULL, NULL, bad.p, bad.n, 1002);
                expect_error_after(true, NOLIMIT, bad.p, 2, 1002);
                ts_free(&bad);
        }
}

Test(ws_errors, continuation_without_message)
{
        tstream bad = {0}, pre = {0};
        tlog pre_log = {0};

        TS_C(&bad, TW_WS_OP_CONT, true, "x");
        expect_error(true, NOLIMIT, NULL, NULL, bad.p, bad.n, 1002);
        expect_error_after(true, NOLIMIT, bad.p, 2, 1002);

        /* After a finished message there is nothing to continue either. */
        TS_C(&pre, TW_WS_OP_BINARY, false, "a");
        TS_C(&pre, TW_WS_OP_CONT, true, "b");
        tl_start(&pre_log, TW_WS_OP_BINARY);
        tl_data(&pre_log, "ab", 2);
        tl_end(&pre_log);
        expect_error(true, NOLIMIT, &pre, &pre_log, bad.p, bad.n, 1002);

        /* Nor after a control frame alone. */
        ts_free(&bad);
        TS_C(&bad, TW_WS_OP_PING, true, "");
        TS_C(&bad, TW_WS_OP_CONT, false, "");
        tlog ping_log = {0};
        tl_control(&ping_log, TW_WS_OP_PING, "", 0);
        expect_error(true, NOLIMIT, NULL, &ping_log, bad.p, bad.n, 1002);
        tlog_free(&ping_log);
        ts_free(&bad);
        ts_free(&pre);
        tlog_free(&pre_log);
}

Test(ws_errors, new_message_inside_fragmented_one)
{
        static const uint8_t ops[] = {TW_WS_OP_TEXT, TW_WS_OP_BINARY};

        for (size_t i = 0; i < 2; i++) {
                for (size_t j = 0; j < 2; j++) {
                        tstream pre = {0}, bad = {0};
                        tlog pre_log = {0};
                        ts_frame(&pre, ops[i], false, "ab", 2, true);
                        TS_C(&pre, TW_WS_OP_PONG, true, "");
                        tl_start(&pre_log, ops[i]);
                        tl_data(&pre_log, "ab", 2);
                        tl_control(&pre_log, TW_WS_OP_PONG, "", 0);
                        ts_frame(&bad, ops[j], true, "c", 1, true);
                        expect_error(true, NOLIMIT, &pre, &pre_log, bad.p, bad.n, 1002);
                        ts_free(&pre);
                        ts_free(&bad);
                        tlog_free(&pre_log);
                }
        }
}

Test(ws_errors, length_with_top_bit)
{
        uint8_t h[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};

        expect_error(true, NOLIMIT, NULL, NULL, h, sizeof(h), 1002);
        expect_error_after(true, NOLIMIT, h, 10, 1002);
        h[2] = 0xFF;
        expect_error(true, NOLIMIT, NULL, NULL, h, sizeof(h), 1002);
}

/* Decision: RFC 6455 5.2 requires the minimal length encoding; we refuse others (1002). */
Test(ws_errors, non_minimal_lengths)
{
        uint8_t h16[] = {0x82, 0xFE, 0x00, 0x7D, 1, 2, 3, 4};
        expect_error(true, NOLIMIT, NULL, NULL, h16, sizeof(h16), 1002);
        expect_error_after(true, NOLIMIT, h16, 4, 1002);
        h16[3] = 0;
        expect_error(true, NOLIMIT, NULL, NULL, h16, sizeof(h16), 1002);

        uint8_t h64[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 1, 2, 3, 4};
        expect_error(true, NOLIMIT, NULL, NULL, h64, sizeof(h64), 1002);
        expect_error_after(true, NOLIMIT, h64, 10, 1002);
        h64[8] = 0;
        h64[9] = 5;
        expect_error(true, NOLIMIT, NULL, NULL, h64, sizeof(h64), 1002);

        /* The smallest lengths of each form are accepted. */
        uint8_t ok16[] = {0x82, 0xFE, 0x00, 0x7E, 1, 2, 3, 4};
        uint8_t ok64[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4};
        tw_ws_reader r;
        tw_ws_event ev;
        tw_ws_reader_init(&r, true, NOLIMIT);
        cr_assert_eq(tw_ws_read(&r, ok16, sizeof(ok16), &ev), sizeof(ok16));
        cr_assert(ev.kind == TW_WS_EV_NONE && r.frame_left == 126);
        tw_ws_reader_init(&r, true, NOLIMIT);
        cr_assert_eq(tw_ws_read(&r, ok64, sizeof(ok64), &ev), sizeof(ok64));
        cr_assert(ev.kind == TW_WS_EV_NONE && r.frame_left == 65536);
}

Test(ws_errors, message_too_big_single_frame)
{
        uint8_t p[300] = {0};
        tstream bad = {0};
        tlog want = {0}, got;

        ts_frame(&bad, TW_WS_OP_BINARY, true, p, 101, true);
        expect_error(true, 100, NULL, NULL, bad.p, bad.n, 1009);
        expect_error_after(true, 100, bad.p, 2, 1009);
        ts_free(&bad);

        /* 16-bit length: known after 4 bytes, before the key and the payload. */
        ts_frame(&bad, TW_WS_OP_TEXT, true, p, 300, true);
        expect_error(true, 299, NULL, NULL, bad.p, bad.n, 1009);
        expect_error_after(true, 299, bad.p, 4, 1009);

        /* Exactly the limit is fine. */
        got = tlog_run(true, 300, bad.p, bad.n);
        tl_start(&want, TW_WS_OP_TEXT);
        tl_data(&want, p, 300);
        tl_end(&want);
        cr_assert(tlog_eq(&got, &want));
        tlog_free(&got);
        tlog_free(&want);
        ts_free(&bad);

        /* A huge 64-bit length against the default limit. */
        uint8_t h[] = {0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4};
        expect_error(true, 1u << 20, NULL, NULL, h, sizeof(h), 1009);
        expect_error_after(true, 1u << 20, h, 10, 1009);
}

Test(ws_errors, message_too_big_across_fragments)
{
        uint8_t p[64];
        tstream pre = {0}, bad = {0};
        tlog pre_log = {0};

        memset(p, 'a', sizeof(p));
        ts_frame(&pre, TW_WS_OP_TEXT, false, p, 60, true);
        /* Control frames do not count toward the message. */
        ts_frame(&pre, TW_WS_OP_PING, true, p, 64, true);
        ts_frame(&pre, TW_WS_OP_CONT, false, p, 40, true);
        tl_start(&pre_log, TW_WS_OP_TEXT);
        tl_data(&pre_log, p, 60);
        tl_control(&pre_log, TW_WS_OP_PING, p, 64);
        tl_data(&pre_log, p, 40);

        /* 100 bytes so far, limit 100: one more byte crosses it. */
        ts_frame(&bad, TW_WS_OP_CONT, true, p, 1, true);
        expect_error(true, 100, &pre, &pre_log, bad.p, bad.n, 1009);

        /* Reported from the crossing frame's first two bytes, before its key. */
        tw_ws_reader r;
        tw_ws_event ev;
        size_t off = 0;
        uint8_t *copy = malloc(pre.n); /* the reader unmasks in place */
        memcpy(copy, pre.p, pre.n);
        tw_ws_reader_init(&r, true, 100);
        while (off < pre.n) {
                off += tw_ws_read(&r, copy + off, pre.n - off, &ev);
                cr_assert(ev.kind != TW_WS_EV_ERROR);
        }
        cr_assert_eq(tw_ws_read(&r, bad.p, 2, &ev), 2);
        cr_assert(ev.kind == TW_WS_EV_ERROR && ev.close_code == 1009);
        free(copy);

        /* An empty final fragment at the limit is fine. */
        tlog want = {0}, got;
        ts_free(&bad);
        ts_put(&bad, pre.p, pre.n);
        ts_frame(&bad, TW_WS_OP_CONT, true, "", 0, true);
        tlog_put(&want, pre_log.p, pre_log.n);
        tl_end(&want);
        got = tlog_run(true, 100, bad.p, bad.n);
        cr_assert(tlog_eq(&got, &want), "%s", tlog_str(&got));
        tlog_free(&got);
        tlog_free(&want);
        ts_free(&pre);
        ts_free(&bad);
        tlog_free(&pre_log);
}

Test(ws_errors, size_limit_is_per_message)
{
        uint8_t p[10] = {0};
        tstream s = {0};
        tlog want = {0}, got;

        for (int i = 0; i < 5; i++) {
                ts_frame(&s, TW_WS_OP_BINARY, false, p, 4, true);
                ts_frame(&s, TW_WS_OP_CONT, true, p, 6, true);
                tl_start(&want, TW_WS_OP_BINARY);
                tl_data(&want, p, 10);
                tl_end(&want);
        }
        got = tlog_run_bytewise(true, 10, s.p, s.n);
        cr_assert(tlog_eq(&got, &want), "%s", tlog_str(&got));
        tlog_free(&got);
        tlog_free(&want);
        ts_free(&s);

        /* Small messages under a small limit: a count carried over from the previous
         * message would push the second fragment over. */
        for (int i = 0; i < 4; i++) {
                ts_frame(&s, TW_WS_OP_TEXT, false, "a", 1, true);
                ts_frame(&s, TW_WS_OP_CONT, true, "b", 1, true);
                tl_start(&want, TW_WS_OP_TEXT);
                tl_data(&want, "ab", 2);
                tl_end(&want);
        }
        got = tlog_run(true, 3, s.p, s.n);
        cr_assert(tlog_eq(&got, &want), "%s", tlog_str(&got));
        tlog_free(&got);
        tlog_free(&want);
        ts_free(&s);
}

Test(ws_errors, zero_limit_allows_only_empty_messages)
{
        tstream s = {0};
        tlog want = {0};

        TS_C(&s, TW_WS_OP_TEXT, true, "");
        tl_start(&want, TW_WS_OP_TEXT);
        tl_end(&want);
        expect_error(true, 0, &s, &want, "\x81\x81", 2, 1009);
        tlog_free(&want);
        ts_free(&s);
}

Test(ws_errors, failed_reader_stays_failed)
{
        static const struct {
                bool server;
                uint64_t max;
                uint8_t bytes[8];
                uint16_t code;
        } cases[] = {
            {true, NOLIMIT, {0xC1, 0x80, 1, 2, 3, 4}, 1002},       /* RSV1 */
            {true, 2, {0x82, 0x83, 1, 2, 3, 4}, 1009},             /* size */
            {true, NOLIMIT, {0x81, 0x81, 0, 0, 0, 0, 0xFF}, 1007}, /* UTF-8 */
            {false, NOLIMIT, {0x81, 0x02, 'o', 0xC0}, 1007},       /* UTF-8 */
        };
        tstream good = {0};
        TS_C(&good, TW_WS_OP_TEXT, true, "fine");

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                tw_ws_reader r;
                tw_ws_event ev;
                uint8_t buf[8];
                size_t off = 0;

                memcpy(buf, cases[i].bytes, 8);
                tw_ws_reader_init(&r, cases[i].server, cases[i].max);
                do {
                        off += tw_ws_read(&r, buf + off, sizeof(buf) - off, &ev);
                } while (ev.kind == TW_WS_EV_DATA);
                cr_assert_eq(ev.kind, TW_WS_EV_ERROR, "case %zu", i);
                cr_assert_eq(ev.close_code, cases[i].code, "case %zu", i);
                cr_assert(!tw_ws_reader_idle(&r));
                for (int k = 0; k < 3; k++) {
                        cr_assert_eq(tw_ws_read(&r, good.p, good.n, &ev), 0);
                        cr_assert_eq(ev.kind, TW_WS_EV_ERROR);
                        cr_assert_eq(ev.close_code, cases[i].code);
                        cr_assert_eq(tw_ws_read(&r, NULL, 0, &ev), 0);
                        cr_assert_eq(ev.close_code, cases[i].code);
                }
        }
        ts_free(&good);
}
