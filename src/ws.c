/*
 * ws.c — the RFC 6455 frame codec: a streaming frame reader, the frame builders, masking,
 * an incremental UTF-8 validator, the close-code rules and the handshake's accept key.
 *
 * Everything here works on the caller's bytes and nothing else: no allocation, no I/O.
 * The reader is a small state machine (header -> payload or control -> header) whose
 * only memory is the struct the caller owns, so it can be fed one byte at a time or a
 * whole receive buffer of pipelined frames and report exactly the same events. That
 * property is what the tests and the fuzz harness check, so keep it when changing code
 * here: every decision must depend only on the bytes seen so far, never on how they
 * were split into calls.
 *
 * Decisions the RFC leaves to us:
 *  - A length not written in the fewest bytes (126 + 16-bit value < 126, or 127 + 64-bit
 *    value < 65536) is refused with 1002. RFC 6455 5.2 says the minimal encoding MUST be
 *    used, no real client violates it, and accepting it only widens what we parse.
 *  - When a text chunk holds an invalid UTF-8 byte, the bytes before it are first
 *    handed out as DATA and the ERROR follows on the next call; an incomplete character
 *    at the end of a message fails on its last byte in the same way. This keeps the
 *    event stream identical however the input was split.
 */
#include "tickwire/ws.h"

#include <errno.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/sha.h>

/* ---- UTF-8 ----
 *
 * A DFA over byte classes. The states between ACCEPT and REJECT say how many
 * continuation bytes are still owed and, right after the lead bytes E0, ED, F0 and F4,
 * which narrower range the next byte must fall in: that is where overlongs (E0 80-9F,
 * F0 80-8F), surrogates (ED A0-BF) and code points above U+10FFFF (F4 90-BF) are cut
 * off. C0, C1 and F5-FF can never start a valid character and are refused on sight.
 */
enum {
        U8_NEED1 = 2, /* one more 80-BF */
        U8_NEED2 = 3, /* two more 80-BF */
        U8_NEED3 = 4, /* three more 80-BF */
        U8_E0 = 5,    /* A0-BF, then one more */
        U8_ED = 6,    /* 80-9F, then one more */
        U8_F0 = 7,    /* 90-BF, then two more */
        U8_F4 = 8,    /* 80-8F, then two more */
        U8_NSTATES = 9,
};

enum {
        C_ASCII,
        C_80_8F,
        C_90_9F,
        C_A0_BF,
        C_BAD,
        C_2LEAD,
        C_E0,
        C_3LEAD,
        C_ED,
        C_F0,
        C_4LEAD,
        C_F4,
        C_N
};

static const uint8_t utf8_class[256] = {
    [0x00 ... 0x7F] = C_ASCII,
    [0x80 ... 0x8F] = C_80_8F,
    [0x90 ... 0x9F] = C_90_9F,
    [0xA0 ... 0xBF] = C_A0_BF,
    [0xC0 ... 0xC1] = C_BAD,
    [0xC2 ... 0xDF] = C_2LEAD,
    [0xE0] = C_E0,
    [0xE1 ... 0xEC] = C_3LEAD,
    [0xED] = C_ED,
    [0xEE ... 0xEF] = C_3LEAD,
    [0xF0] = C_F0,
    [0xF1 ... 0xF3] = C_4LEAD,
    [0xF4] = C_F4,
    [0xF5 ... 0xFF] = C_BAD,
};

/* Rows: state; columns: byte class in the order of the enum above. Rows are padded to
 * 16 so the index is a shift, not a multiply, on the per-byte dependency chain. */
#define R TW_UTF8_REJECT
static const uint8_t utf8_next[U8_NSTATES][16] = {
    [TW_UTF8_ACCEPT] = {0, R, R, R, R, U8_NEED1, U8_E0, U8_NEED2, U8_ED, U8_F0, U8_NEED3, U8_F4},
    [TW_UTF8_REJECT] = {R, R, R, R, R, R, R, R, R, R, R, R},
    [U8_NEED1] = {R, 0, 0, 0, R, R, R, R, R, R, R, R},
    [U8_NEED2] = {R, U8_NEED1, U8_NEED1, U8_NEED1, R, R, R, R, R, R, R, R},
    [U8_NEED3] = {R, U8_NEED2, U8_NEED2, U8_NEED2, R, R, R, R, R, R, R, R},
    [U8_E0] = {R, R, R, U8_NEED1, R, R, R, R, R, R, R, R},
    [U8_ED] = {R, U8_NEED1, U8_NEED1, R, R, R, R, R, R, R, R, R},
    [U8_F0] = {R, R, U8_NEED2, U8_NEED2, R, R, R, R, R, R, R, R},
    [U8_F4] = {R, U8_NEED2, R, R, R, R, R, R, R, R, R, R},
};
#undef R

#define HIGH_BITS 0x8080808080808080ull

/* Index of the first byte in memory order whose high bit is set in m (m != 0). */
static inline size_t first_high_byte(uint64_t m)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        return (size_t)__builtin_ctzll(m) >> 3;
#else
        return (size_t)__builtin_clzll(m) >> 3;
#endif
}

/* Runs the DFA over p[0..n) from *state. Returns how many bytes were accepted: n, or on
 * rejection the index of the offending byte (so the caller can hand out the good
 * prefix). Most text on this server is ASCII JSON, so at a character boundary it skips
 * 16, then 8, bytes at a time while no byte has its high bit set. */
static size_t utf8_scan(uint32_t *state, const uint8_t *p, size_t n)
{
        uint32_t s = *state;
        size_t i = 0;

        if (s >= U8_NSTATES)
                s = TW_UTF8_REJECT;
        if (s == TW_UTF8_REJECT) {
                *state = s;
                return 0;
        }
        while (i < n) {
                /* Try whole words only from an ASCII byte at a character boundary, so
                 * text that is mostly multi-byte does not pay for a failed try per
                 * character. */
                if (s == TW_UTF8_ACCEPT && p[i] < 0x80) {
                        uint64_t a, b;
                        for (i++; i + 16 <= n; i += 16) {
                                memcpy(&a, p + i, 8);
                                memcpy(&b, p + i + 8, 8);
                                if ((a | b) & HIGH_BITS)
                                        break;
                        }
                        for (; i + 8 <= n; i += 8) {
                                memcpy(&a, p + i, 8);
                                if (a & HIGH_BITS) {
                                        /* Jump straight to the first non-ASCII byte. */
                                        i += first_high_byte(a & HIGH_BITS);
                                        break;
                                }
                        }
                        continue;
                }
                s = utf8_next[s][utf8_class[p[i]]];
                if (s == TW_UTF8_REJECT)
                        break;
                i++;
        }
        *state = s;
        return i;
}

uint32_t tw_utf8_step(uint32_t state, const uint8_t *p, size_t n)
{
        utf8_scan(&state, p, n);
        return state;
}

bool tw_utf8_valid(const uint8_t *p, size_t n)
{
        return tw_utf8_step(TW_UTF8_ACCEPT, p, n) == TW_UTF8_ACCEPT;
}

/* ---- close codes ---- */

/* DESIGN 4's list (1000-1003, 1007-1011, 3000-4999) plus the IANA-registered 1012-1014
 * (Service Restart, Try Again Later, Bad Gateway), which are accepted from a peer: this
 * server sends 1013 to slow consumers, so a client built on this codec must take it. */
bool tw_ws_close_code_valid(uint16_t code)
{
        return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
               (code >= 3000 && code <= 4999);
}

int tw_ws_close_parse(const uint8_t *payload, size_t len, uint16_t *code, const uint8_t **reason,
                      size_t *reason_len)
{
        if (reason)
                *reason = payload;
        if (reason_len)
                *reason_len = 0;
        if (len == 0) {
                *code = TW_WS_CLOSE_NO_STATUS;
                return 0;
        }
        /* A control payload never exceeds 125 bytes; a caller passing more did not get it
         * from the reader, so refuse rather than trust it. */
        if (len == 1 || len > TW_WS_MAX_CONTROL)
                return TW_WS_CLOSE_PROTOCOL;
        uint16_t c = (uint16_t)(payload[0] << 8 | payload[1]);
        if (!tw_ws_close_code_valid(c))
                return TW_WS_CLOSE_PROTOCOL;
        if (!tw_utf8_valid(payload + 2, len - 2))
                return TW_WS_CLOSE_INVALID_DATA;
        *code = c;
        if (reason)
                *reason = payload + 2;
        if (reason_len)
                *reason_len = len - 2;
        return 0;
}

/* ---- building frames ---- */

size_t tw_ws_header_build(uint8_t *out, uint8_t opcode, bool fin, uint64_t len, const uint8_t *mask)
{
        size_t n = 2;

        out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
        out[1] = mask ? 0x80 : 0;
        if (len < 126) {
                out[1] |= (uint8_t)len;
        } else if (len <= 0xFFFF) {
                out[1] |= 126;
                out[2] = (uint8_t)(len >> 8);
                out[3] = (uint8_t)len;
                n = 4;
        } else {
                /* The wire forbids the top bit; no payload this large can exist anyway. */
                len &= ~(1ull << 63);
                out[1] |= 127;
                for (int i = 0; i < 8; i++)
                        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
                n = 10;
        }
        if (mask) {
                memcpy(out + n, mask, 4);
                n += 4;
        }
        return n;
}

/* The mask repeats every 4 bytes, so a 64-bit word holding it rotated to start at
 * `offset` covers any 8 consecutive payload bytes; unaligned loads and stores go through
 * memcpy, which the compiler turns into plain moves. */
void tw_ws_mask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset)
{
        uint8_t rot[8];
        uint64_t m, w[4];
        size_t i = 0;

        for (int k = 0; k < 8; k++)
                rot[k] = mask[(offset + (uint64_t)k) & 3];
        memcpy(&m, rot, 8);
        for (; i + 32 <= n; i += 32) {
                memcpy(w, p + i, 32);
                w[0] ^= m;
                w[1] ^= m;
                w[2] ^= m;
                w[3] ^= m;
                memcpy(p + i, w, 32);
        }
        for (; i + 8 <= n; i += 8) {
                memcpy(w, p + i, 8);
                w[0] ^= m;
                memcpy(p + i, w, 8);
        }
        for (; i < n; i++)
                p[i] ^= rot[i & 3];
}

size_t tw_ws_close_build(uint8_t *out, uint16_t code, const char *reason, size_t reason_len,
                         const uint8_t *mask)
{
        size_t plen = 0;
        uint8_t payload[TW_WS_MAX_CONTROL];

        if (code != 0) {
                payload[0] = (uint8_t)(code >> 8);
                payload[1] = (uint8_t)code;
                if (reason_len > TW_WS_MAX_CONTROL - 2) {
                        /* Back off over continuation bytes so a cut never splits a
                         * character: the peer validates the reason and would fail us
                         * with 1007. */
                        reason_len = TW_WS_MAX_CONTROL - 2;
                        while (reason_len > 0 && ((uint8_t)reason[reason_len] & 0xC0) == 0x80)
                                reason_len--;
                }
                if (reason_len)
                        memcpy(payload + 2, reason, reason_len);
                plen = 2 + reason_len;
        }
        size_t h = tw_ws_header_build(out, TW_WS_OP_CLOSE, true, plen, mask);
        if (plen) {
                memcpy(out + h, payload, plen);
                if (mask)
                        tw_ws_mask(out + h, plen, mask, 0);
        }
        return h + plen;
}

/* ---- reading frames ---- */

/* r->state. There is one failed state per close code, so a failed reader keeps
 * reporting the same code without an extra field in the struct. */
enum {
        RS_HEADER = 0, /* collecting header bytes into r->hdr */
        RS_DATA,       /* handing out text/binary payload from the caller's buffer */
        RS_CONTROL,    /* collecting a control payload into r->ctl */
        RS_FAIL_1002,
        RS_FAIL_1007,
        RS_FAIL_1009,
};

static bool is_control(uint8_t op)
{
        return (op & 0x8) != 0;
}

void tw_ws_reader_init(tw_ws_reader *r, bool expect_masked, uint64_t max_message)
{
        memset(r, 0, sizeof(*r));
        r->expect_masked = expect_masked;
        r->max_message = max_message;
        r->state = RS_HEADER;
        r->utf8 = TW_UTF8_ACCEPT;
}

bool tw_ws_reader_idle(const tw_ws_reader *r)
{
        return r->state == RS_HEADER && r->hdr_len == 0 && r->msg_opcode == 0;
}

static size_t fail(tw_ws_reader *r, tw_ws_event *ev, uint16_t code, size_t consumed)
{
        r->state = code == TW_WS_CLOSE_INVALID_DATA ? RS_FAIL_1007
                   : code == TW_WS_CLOSE_TOO_BIG    ? RS_FAIL_1009
                                                    : RS_FAIL_1002;
        ev->kind = TW_WS_EV_ERROR;
        ev->close_code = code;
        return consumed;
}

/* Bytes of extended length announced by the 7-bit length in hdr[1]. */
static size_t ext_len(const tw_ws_reader *r)
{
        uint8_t l7 = r->hdr[1] & 0x7F;
        return l7 == 127 ? 8 : l7 == 126 ? 2 : 0;
}

/* How far the header must be filled before the next decision: 2 bytes to know the
 * frame's kind, then the extended length (size checks), then the masking key. */
static size_t header_need(const tw_ws_reader *r)
{
        if (r->hdr_len < 2)
                return 2;
        size_t ext = ext_len(r);
        if (r->hdr_len < 2 + ext)
                return 2 + ext;
        return 2 + ext + ((r->hdr[1] & 0x80) ? 4 : 0);
}

/* The rules decidable from the first two bytes, in the order ws.h documents. */
static uint16_t check_first(const tw_ws_reader *r)
{
        uint8_t b0 = r->hdr[0], b1 = r->hdr[1];
        uint8_t op = b0 & 0x0F;

        if (b0 & 0x70) /* RSV1-3: no extension was negotiated */
                return TW_WS_CLOSE_PROTOCOL;
        if ((op > TW_WS_OP_BINARY && op < TW_WS_OP_CLOSE) || op > TW_WS_OP_PONG)
                return TW_WS_CLOSE_PROTOCOL;
        if (((b1 & 0x80) != 0) != (r->expect_masked != 0))
                return TW_WS_CLOSE_PROTOCOL;
        if (is_control(op)) {
                if (!(b0 & 0x80) || (b1 & 0x7F) > TW_WS_MAX_CONTROL)
                        return TW_WS_CLOSE_PROTOCOL;
        } else if (op == TW_WS_OP_CONT) {
                if (r->msg_opcode == 0)
                        return TW_WS_CLOSE_PROTOCOL;
        } else if (r->msg_opcode != 0) {
                return TW_WS_CLOSE_PROTOCOL;
        }
        return 0;
}

/* Decodes the payload length once it is all buffered; refuses non-minimal encodings and
 * the forbidden top bit, then the message size. Nothing is committed to r yet. */
static uint16_t check_length(const tw_ws_reader *r, uint64_t *out)
{
        size_t ext = ext_len(r);
        uint64_t len = r->hdr[1] & 0x7F;
        uint8_t op = r->hdr[0] & 0x0F;

        if (ext) {
                len = 0;
                for (size_t i = 0; i < ext; i++)
                        len = len << 8 | r->hdr[2 + i];
                if (ext == 2 && len < 126)
                        return TW_WS_CLOSE_PROTOCOL;
                if (ext == 8 && ((len >> 63) || len <= 0xFFFF))
                        return TW_WS_CLOSE_PROTOCOL;
        }
        if (!is_control(op)) {
                /* msg_len <= max_message always holds, so this cannot wrap. */
                uint64_t so_far = op == TW_WS_OP_CONT ? r->msg_len : 0;
                if (len > r->max_message - so_far)
                        return TW_WS_CLOSE_TOO_BIG;
        }
        *out = len;
        return 0;
}

/* Whole header in hdr and checked: set up the frame (and the message, for a first
 * fragment). */
static void start_frame(tw_ws_reader *r, uint64_t len)
{
        uint8_t op = r->hdr[0] & 0x0F;
        size_t ext = ext_len(r);

        r->frame_opcode = op;
        r->frame_fin = r->hdr[0] >> 7;
        r->frame_left = len;
        r->frame_off = 0;
        if (r->hdr[1] & 0x80)
                memcpy(r->mask, r->hdr + 2 + ext, 4);
        if (is_control(op)) {
                r->ctl_len = 0;
                r->state = RS_CONTROL;
                return;
        }
        if (op != TW_WS_OP_CONT) {
                r->msg_opcode = op;
                r->msg_len = 0;
                r->utf8 = TW_UTF8_ACCEPT;
        }
        r->msg_len += len;
        r->state = RS_DATA;
}

/* Buffers header bytes from buf[*pos..len). Returns 0 when the frame is set up, -1 when
 * the input ran out first, or a close code. Each stage boundary (2 bytes, end of the
 * extended length, end of the key) is reached exactly once per frame, so each check runs
 * once whatever the split. */
static int header_feed(tw_ws_reader *r, const uint8_t *buf, size_t len, size_t *pos)
{
        for (;;) {
                size_t need = header_need(r);
                size_t take = need - r->hdr_len;
                if (take > len - *pos)
                        take = len - *pos;
                if (take) {
                        memcpy(r->hdr + r->hdr_len, buf + *pos, take);
                        r->hdr_len += (uint8_t)take;
                        *pos += take;
                }
                if (r->hdr_len < need)
                        return -1;

                uint16_t code;
                if (r->hdr_len == 2 && (code = check_first(r)) != 0)
                        return code;
                size_t ext = ext_len(r);
                if (r->hdr_len == 2 + ext) {
                        uint64_t flen;
                        if ((code = check_length(r, &flen)) != 0)
                                return code;
                        r->frame_left = flen;
                }
                if (r->hdr_len == 2 + ext + ((r->hdr[1] & 0x80) ? 4 : 0)) {
                        start_frame(r, r->frame_left);
                        return 0;
                }
        }
}

static void frame_done(tw_ws_reader *r)
{
        r->state = RS_HEADER;
        r->hdr_len = 0;
        if (!is_control(r->frame_opcode) && r->frame_fin)
                r->msg_opcode = 0;
}

/* Hands out up to `avail` payload bytes at p (possibly none, for an empty frame). For
 * text, a chunk is cut just before the first byte that makes the message invalid; the
 * cut-off tail is masked back so the caller's buffer is untouched beyond what we
 * consumed, and the next call, starting at the bad byte, reports 1007. */
static size_t data_chunk(tw_ws_reader *r, uint8_t *p, size_t avail, size_t pos, tw_ws_event *ev)
{
        size_t n = avail < r->frame_left ? avail : (size_t)r->frame_left;
        bool end = r->frame_fin && n == r->frame_left;

        if (r->expect_masked && n)
                tw_ws_mask(p, n, r->mask, r->frame_off);
        if (r->msg_opcode == TW_WS_OP_TEXT) {
                uint32_t st = r->utf8;
                size_t k = utf8_scan(&st, p, n);
                bool bad = st == TW_UTF8_REJECT;
                if (!bad && end && st != TW_UTF8_ACCEPT) {
                        /* Truncated character: fail on the message's last byte. */
                        bad = true;
                        k = n ? n - 1 : 0;
                }
                if (bad) {
                        if (r->expect_masked && n > k)
                                tw_ws_mask(p + k, n - k, r->mask, r->frame_off + k);
                        if (k == 0)
                                return fail(r, ev, TW_WS_CLOSE_INVALID_DATA, pos);
                        st = r->utf8;
                        utf8_scan(&st, p, k);
                        n = k;
                        end = false;
                }
                r->utf8 = st;
        }
        ev->kind = TW_WS_EV_DATA;
        ev->opcode = r->msg_opcode;
        ev->msg_start = r->frame_opcode != TW_WS_OP_CONT && r->frame_off == 0;
        ev->msg_end = end;
        ev->data = p;
        ev->len = n;
        r->frame_off += n;
        r->frame_left -= n;
        if (r->frame_left == 0)
                frame_done(r);
        return pos + n;
}

/* Control payloads are copied (and unmasked) into r->ctl so they can be reported whole
 * however they were split; the caller's buffer is left as it was. */
static bool control_feed(tw_ws_reader *r, const uint8_t *buf, size_t len, size_t *pos)
{
        size_t n = len - *pos;
        if (n > r->frame_left)
                n = (size_t)r->frame_left;
        if (n) {
                memcpy(r->ctl + r->ctl_len, buf + *pos, n);
                if (r->expect_masked)
                        tw_ws_mask(r->ctl + r->ctl_len, n, r->mask, r->ctl_len);
                r->ctl_len += (uint8_t)n;
                r->frame_left -= n;
                r->frame_off += n;
                *pos += n;
        }
        return r->frame_left == 0;
}

size_t tw_ws_read(tw_ws_reader *r, uint8_t *buf, size_t len, tw_ws_event *ev)
{
        size_t pos = 0;

        memset(ev, 0, sizeof(*ev));
        if (!buf)
                len = 0;
        for (;;) {
                switch (r->state) {
                case RS_HEADER: {
                        int rc = header_feed(r, buf, len, &pos);
                        if (rc < 0)
                                return pos;
                        if (rc > 0)
                                return fail(r, ev, (uint16_t)rc, pos);
                        break;
                }
                case RS_DATA:
                        /* An empty frame reports at once; otherwise wait for a byte. */
                        if (r->frame_left && pos == len)
                                return pos;
                        return data_chunk(r, buf ? buf + pos : buf, len - pos, pos, ev);
                case RS_CONTROL:
                        if (!control_feed(r, buf, len, &pos))
                                return pos;
                        ev->kind = TW_WS_EV_CONTROL;
                        ev->opcode = r->frame_opcode;
                        ev->data = r->ctl;
                        ev->len = r->ctl_len;
                        frame_done(r);
                        return pos;
                case RS_FAIL_1007:
                        return fail(r, ev, TW_WS_CLOSE_INVALID_DATA, 0);
                case RS_FAIL_1009:
                        return fail(r, ev, TW_WS_CLOSE_TOO_BIG, 0);
                default:
                        return fail(r, ev, TW_WS_CLOSE_PROTOCOL, 0);
                }
        }
}

/* ---- the opening handshake ---- */

int tw_ws_accept_key(tw_span key, char out[29])
{
        static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
        byte digest[WC_SHA_DIGEST_SIZE];
        word32 out_n = 28;
        wc_Sha sha;
        int rc = -EIO;

        if (key.n > 1024)
                return -EINVAL;
        if (wc_InitSha(&sha) != 0)
                return -EIO;
        if (wc_ShaUpdate(&sha, (const byte *)key.p, (word32)key.n) != 0 ||
            wc_ShaUpdate(&sha, (const byte *)guid, sizeof(guid) - 1) != 0 ||
            wc_ShaFinal(&sha, digest) != 0)
                goto out;
        if (Base64_Encode_NoNl(digest, sizeof(digest), (byte *)out, &out_n) != 0 || out_n != 28)
                goto out;
        out[28] = '\0';
        rc = 0;
out:
        wc_ShaFree(&sha);
        return rc;
}
