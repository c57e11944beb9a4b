/*
 * The streaming frame reader on well-formed input: build -> read round trips at every
 * length encoding, pipelined frames, control frames inside fragmented messages, empty
 * frames, in-place unmasking and the idle rule. Each stream is replayed all at once, byte
 * by byte and at every split point, and must give the same events each time.
 */
#include <criterion/criterion.h>

#include "test_ws_helpers.h"

#define NOLIMIT UINT64_MAX

/* Replays s at every split and compares with the expected log. */
static void expect_log(bool server, uint64_t max, const tstream *s, const tlog *want)
{
        tlog got;
        const char *why = tlog_replay_all(server, max, s->p, s->n, &got);

        cr_assert_null(why, "%s", why ? why : "");
        cr_assert(tlog_eq(&got, want), "got  %s\nwant %s", tlog_str(&got), tlog_str(want));
        tlog_free(&got);
}

static void fill(uint8_t *p, size_t n, bool text, uint32_t seed)
{
        for (size_t i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                p[i] = text ? (uint8_t)(' ' + (seed >> 16) % 95) : (uint8_t)(seed >> 16);
        }
}

static void round_trip(size_t len, uint8_t op, bool server)
{
        uint8_t *payload = malloc(len ? len : 1);
        tstream s = {0};
        tlog want = {0}, got;
        size_t hdr = 2 + (len < 126 ? 0 : len <= 0xFFFF ? 2 : 8) + (server ? 4 : 0);

        fill(payload, len, op == TW_WS_OP_TEXT, (uint32_t)len);
        ts_frame(&s, op, true, payload, len, server);
        cr_assert_eq(s.n, hdr + len, "header for %zu bytes is %zu long", len, s.n - len);
        tl_start(&want, op);
        tl_data(&want, payload, len);
        tl_end(&want);

        if (len <= 200) {
                expect_log(server, NOLIMIT, &s, &want);
        } else {
                got = tlog_run(server, NOLIMIT, s.p, s.n);
                cr_assert(tlog_eq(&got, &want) && !got.bad, "all at once, len %zu", len);
                cr_assert_eq(got.events, 1, "one buffer, one event (len %zu)", len);
                tlog_free(&got);
                got = tlog_run_bytewise(server, NOLIMIT, s.p, s.n);
                cr_assert(tlog_eq(&got, &want) && !got.bad, "byte by byte, len %zu", len);
                tlog_free(&got);
                /* Odd-sized chunks put the mask offset at every phase. */
                size_t cuts[600], nc = 0;
                for (size_t at = 4093; at < s.n && nc < 600; at += 4093)
                        cuts[nc++] = at;
                got = tlog_run_cuts(server, NOLIMIT, s.p, s.n, cuts, nc);
                cr_assert(tlog_eq(&got, &want) && !got.bad, "4093-byte chunks, len %zu", len);
                tlog_free(&got);
                /* Every split inside the header and the first and last payload bytes. */
                for (size_t i = 0; i < s.n; i = i == 24 ? s.n - 24 : i + 1) {
                        got = tlog_run_cuts(server, NOLIMIT, s.p, s.n, &i, 1);
                        cr_assert(tlog_eq(&got, &want) && !got.bad, "split at %zu, len %zu", i,
                                  len);
                        tlog_free(&got);
                }
        }
        tlog_free(&want);
        ts_free(&s);
        free(payload);
}

static const size_t lengths[] = {0, 1, 125, 126, 127, 65535, 65536, 1u << 20};

Test(ws_reader, round_trip_server_binary)
{
        for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++)
                round_trip(lengths[i], TW_WS_OP_BINARY, true);
}

Test(ws_reader, round_trip_server_text)
{
        for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++)
                round_trip(lengths[i], TW_WS_OP_TEXT, true);
}

Test(ws_reader, round_trip_client_unmasked)
{
        for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++)
                round_trip(lengths[i], TW_WS_OP_BINARY, false);
}

Test(ws_reader, several_frames_in_one_buffer)
{
        tstream s = {0};
        tlog want = {0};

        TS_C(&s, TW_WS_OP_TEXT, true, "hello");
        TS_C(&s, TW_WS_OP_PING, true, "p1");
        TS_C(&s, TW_WS_OP_BINARY, false, "ab");
        TS_C(&s, TW_WS_OP_CONT, false, "cd");
        TS_C(&s, TW_WS_OP_CONT, true, "e");
        TS_C(&s, TW_WS_OP_PONG, true, "");
        TS_C(&s, TW_WS_OP_TEXT, true, "x");
        TS_C(&s, TW_WS_OP_CLOSE, true,
             "\x03\xe8"
             "bye");

        tl_start(&want, TW_WS_OP_TEXT);
        tl_data(&want, "hello", 5);
        tl_end(&want);
        tl_control(&want, TW_WS_OP_PING, "p1", 2);
        tl_start(&want, TW_WS_OP_BINARY);
        tl_data(&want, "abcde", 5);
        tl_end(&want);
        tl_control(&want, TW_WS_OP_PONG, "", 0);
        tl_start(&want, TW_WS_OP_TEXT);
        tl_data(&want, "x", 1);
        tl_end(&want);
        tl_control(&want, TW_WS_OP_CLOSE,
                   "\x03\xe8"
                   "bye",
                   5);
        expect_log(true, NOLIMIT, &s, &want);

        /* All at once: exactly one event per frame, in order. */
        tlog l = tlog_run(true, NOLIMIT, s.p, s.n);
        cr_assert_eq(l.events, 8);
        tlog_free(&l);
        tlog_free(&want);
        ts_free(&s);
}

Test(ws_reader, ping_inside_fragmented_text)
{
        tstream s = {0};
        tlog want = {0};

        TS_C(&s, TW_WS_OP_TEXT, false, "Hel");
        TS_C(&s, TW_WS_OP_PING, true, "are you there");
        TS_C(&s, TW_WS_OP_CONT, false, "lo ");
        TS_C(&s, TW_WS_OP_PONG, true, "");
        TS_C(&s, TW_WS_OP_CONT, true, "world");

        tl_start(&want, TW_WS_OP_TEXT);
        tl_data(&want, "Hel", 3);
        tl_control(&want, TW_WS_OP_PING, "are you there", 13);
        tl_data(&want, "lo ", 3);
        tl_control(&want, TW_WS_OP_PONG, "", 0);
        tl_data(&want, "world", 5);
        tl_end(&want);
        expect_log(true, NOLIMIT, &s, &want);
        tlog_free(&want);
        ts_free(&s);
}

/* A control frame keeps the message's opcode and state: the chunk after it is still
 * reported as the text message's, without msg_start. */
Test(ws_reader, control_does_not_disturb_message)
{
        tstream s = {0};
        tw_ws_reader r;
        tw_ws_event ev;
        size_t off = 0;

        TS_C(&s, TW_WS_OP_TEXT, false, "ab");
        TS_C(&s, TW_WS_OP_PING, true, "x");
        TS_C(&s, TW_WS_OP_CONT, true, "cd");
        tw_ws_reader_init(&r, true, NOLIMIT);

        off += tw_ws_read(&r, s.p + off, s.n - off, &ev);
        cr_assert(ev.kind == TW_WS_EV_DATA && ev.msg_start && !ev.msg_end && ev.len == 2);
        off += tw_ws_read(&r, s.p + off, s.n - off, &ev);
        cr_assert(ev.kind == TW_WS_EV_CONTROL && ev.opcode == TW_WS_OP_PING && ev.len == 1 &&
                  ev.data[0] == 'x');
        cr_assert(!tw_ws_reader_idle(&r), "a message is still in progress");
        off += tw_ws_read(&r, s.p + off, s.n - off, &ev);
        cr_assert(ev.kind == TW_WS_EV_DATA && !ev.msg_start && ev.msg_end && ev.len == 2 &&
                  ev.opcode == TW_WS_OP_TEXT && !memcmp(ev.data, "cd", 2));
        cr_assert_eq(off, s.n);
        cr_assert(tw_ws_reader_idle(&r));
        off += tw_ws_read(&r, s.p + off, s.n - off, &ev);
        cr_assert_eq(ev.kind, TW_WS_EV_NONE);
        ts_free(&s);
}

Test(ws_reader, split_control_frame_reported_once)
{
        uint8_t payload[TW_WS_MAX_CONTROL];
        tstream s = {0};
        tlog want = {0};

        fill(payload, sizeof(payload), false, 7);
        ts_frame(&s, TW_WS_OP_PING, true, payload, sizeof(payload), true);
        tl_control(&want, TW_WS_OP_PING, payload, sizeof(payload));
        expect_log(true, NOLIMIT, &s, &want);

        tlog l = tlog_run_bytewise(true, NOLIMIT, s.p, s.n);
        cr_assert_eq(l.events, 1, "a control frame fed byte by byte is one event, got %d",
                     l.events);
        tlog_free(&l);
        tlog_free(&want);
        ts_free(&s);
}

Test(ws_reader, empty_frames_are_reported)
{
        tstream s = {0};
        tlog want = {0};

        TS_C(&s, TW_WS_OP_TEXT, true, "");
        TS_C(&s, TW_WS_OP_BINARY, false, "");
        TS_C(&s, TW_WS_OP_CONT, false, "");
        TS_C(&s, TW_WS_OP_CONT, true, "");
        TS_C(&s, TW_WS_OP_TEXT, false, "ab");
        TS_C(&s, TW_WS_OP_CONT, true, "");

        tl_start(&want, TW_WS_OP_TEXT);
        tl_end(&want);
        tl_start(&want, TW_WS_OP_BINARY);
        tl_end(&want);
        tl_start(&want, TW_WS_OP_TEXT);
        tl_data(&want, "ab", 2);
        tl_end(&want);
        expect_log(true, NOLIMIT, &s, &want);

        /* One DATA event per empty frame, even all at once. */
        tlog l = tlog_run(true, NOLIMIT, s.p, s.n);
        cr_assert_eq(l.events, 6);
        tlog_free(&l);
        tlog_free(&want);
        ts_free(&s);
}

Test(ws_reader, empty_text_frame_event_fields)
{
        uint8_t buf[6] = {0x81, 0x80, 1, 2, 3, 4};
        tw_ws_reader r;
        tw_ws_event ev;

        tw_ws_reader_init(&r, true, NOLIMIT);
        cr_assert_eq(tw_ws_read(&r, buf, sizeof(buf), &ev), 6);
        cr_assert_eq(ev.kind, TW_WS_EV_DATA);
        cr_assert(ev.msg_start && ev.msg_end && ev.len == 0 && ev.opcode == TW_WS_OP_TEXT);
        cr_assert(tw_ws_reader_idle(&r));
}

Test(ws_reader, unmasks_in_place_and_leaves_the_rest)
{
        tstream s = {0};
        tw_ws_reader r;
        tw_ws_event ev;

        TS_C(&s, TW_WS_OP_BINARY, true, "0123456789abcdefXYZ");
        TS_C(&s, TW_WS_OP_BINARY, true, "second");
        uint8_t *copy = malloc(s.n);
        memcpy(copy, s.p, s.n);
        size_t first = 6 + 19;

        tw_ws_reader_init(&r, true, NOLIMIT);
        cr_assert_eq(tw_ws_read(&r, s.p, s.n, &ev), first);
        cr_assert(ev.kind == TW_WS_EV_DATA && ev.len == 19);
        cr_assert(ev.data == s.p + 6, "DATA points into the caller's buffer");
        cr_assert(!memcmp(s.p + 6, "0123456789abcdefXYZ", 19), "unmasked in place");
        cr_assert(!memcmp(s.p + first, copy + first, s.n - first),
                  "bytes not consumed are untouched");
        free(copy);
        ts_free(&s);
}

/* The masking key's phase carries over between chunks of one frame. */
Test(ws_reader, mask_offset_continues_across_chunks)
{
        const char *msg = "The quick brown fox jumps over the lazy dog, twice over.";
        size_t len = strlen(msg);
        tstream s = {0};

        ts_frame(&s, TW_WS_OP_BINARY, true, msg, len, true);
        for (size_t a = 6; a < s.n; a++) {
                for (size_t b = a; b < s.n; b += 3) {
                        size_t cuts[2] = {a, b};
                        tlog l = tlog_run_cuts(true, NOLIMIT, s.p, s.n, cuts, 2), want = {0};
                        tl_start(&want, TW_WS_OP_BINARY);
                        tl_data(&want, msg, len);
                        tl_end(&want);
                        cr_assert(tlog_eq(&l, &want), "cuts %zu,%zu: %s", a, b, tlog_str(&l));
                        tlog_free(&l);
                        tlog_free(&want);
                }
        }
        ts_free(&s);
}

Test(ws_reader, idle_only_between_messages)
{
        tstream s = {0};
        tw_ws_reader r;
        tw_ws_event ev;

        TS_C(&s, TW_WS_OP_TEXT, false, "abc"); /* 9 bytes */
        TS_C(&s, TW_WS_OP_PING, true, "");     /* 6 bytes */
        TS_C(&s, TW_WS_OP_CONT, true, "d");    /* 7 bytes */
        tw_ws_reader_init(&r, true, NOLIMIT);
        cr_assert(tw_ws_reader_idle(&r), "fresh reader");

        cr_assert_eq(tw_ws_read(&r, s.p, 1, &ev), 1);
        cr_assert(ev.kind == TW_WS_EV_NONE && !tw_ws_reader_idle(&r), "partial header");
        cr_assert_eq(tw_ws_read(&r, s.p + 1, 6, &ev), 6);
        cr_assert(ev.kind == TW_WS_EV_DATA && ev.len == 1 && !tw_ws_reader_idle(&r),
                  "inside a frame's payload");
        cr_assert_eq(tw_ws_read(&r, s.p + 7, 2, &ev), 2);
        cr_assert(ev.kind == TW_WS_EV_DATA && !tw_ws_reader_idle(&r),
                  "between fragments of a message");
        cr_assert_eq(tw_ws_read(&r, s.p + 9, 6, &ev), 6);
        cr_assert(ev.kind == TW_WS_EV_CONTROL && !tw_ws_reader_idle(&r),
                  "control inside a message");
        cr_assert_eq(tw_ws_read(&r, s.p + 15, 7, &ev), 7);
        cr_assert(ev.kind == TW_WS_EV_DATA && ev.msg_end && tw_ws_reader_idle(&r), "message done");

        /* A control frame between messages leaves the reader idle; half of one does not. */
        tstream p = {0};
        TS_C(&p, TW_WS_OP_PING, true, "zz");
        cr_assert_eq(tw_ws_read(&r, p.p, 7, &ev), 7);
        cr_assert(ev.kind == TW_WS_EV_NONE && !tw_ws_reader_idle(&r), "partial control");
        cr_assert_eq(tw_ws_read(&r, p.p + 7, 1, &ev), 1);
        cr_assert(ev.kind == TW_WS_EV_CONTROL && tw_ws_reader_idle(&r));
        ts_free(&p);
        ts_free(&s);
}

Test(ws_reader, client_reads_unmasked_server_frames)
{
        tstream s = {0};
        tlog want = {0};

        ts_frame(&s, TW_WS_OP_TEXT, false, "{\"type\":\"pong\"", 14, false);
        ts_frame(&s, TW_WS_OP_PING, true, "hb", 2, false);
        ts_frame(&s, TW_WS_OP_CONT, true, "}", 1, false);
        tl_start(&want, TW_WS_OP_TEXT);
        tl_data(&want, "{\"type\":\"pong\"", 14);
        tl_control(&want, TW_WS_OP_PING, "hb", 2);
        tl_data(&want, "}", 1);
        tl_end(&want);
        expect_log(false, NOLIMIT, &s, &want);
        tlog_free(&want);
        ts_free(&s);
}

/* The helper itself must be able to fail: a reader that lost a byte would differ. */
Test(ws_reader, replay_detects_a_difference)
{
        tstream a = {0}, b = {0};

        TS_C(&a, TW_WS_OP_TEXT, true, "abc");
        TS_C(&b, TW_WS_OP_TEXT, true, "abd");
        tlog la = tlog_run(true, NOLIMIT, a.p, a.n), lb = tlog_run(true, NOLIMIT, b.p, b.n);
        cr_assert(!tlog_eq(&la, &lb));
        tlog_free(&la);
        tlog_free(&lb);
        ts_free(&a);
        ts_free(&b);
}
