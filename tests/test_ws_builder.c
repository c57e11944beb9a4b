/*
 * Frame headers byte for byte at each length encoding, and masking: the word-at-a-time
 * tw_ws_mask against a one-byte-at-a-time reference at every offset, length and
 * alignment, and chunked masking equal to masking the whole.
 */
#include <criterion/criterion.h>

#include "test_ws_helpers.h"

static void expect_bytes(const uint8_t *got, size_t n, const uint8_t *want, size_t wn)
{
        cr_assert_eq(n, wn, "length %zu, want %zu", n, wn);
        for (size_t i = 0; i < n; i++)
                cr_assert_eq(got[i], want[i], "byte %zu: %02x, want %02x", i, got[i], want[i]);
}

Test(ws_builder, header_lengths)
{
        uint8_t h[TW_WS_MAX_HEADER];
        size_t n;

        n = tw_ws_header_build(h, TW_WS_OP_TEXT, true, 0, NULL);
        expect_bytes(h, n, (const uint8_t[]){0x81, 0x00}, 2);
        n = tw_ws_header_build(h, TW_WS_OP_BINARY, true, 125, NULL);
        expect_bytes(h, n, (const uint8_t[]){0x82, 125}, 2);
        n = tw_ws_header_build(h, TW_WS_OP_BINARY, true, 126, NULL);
        expect_bytes(h, n, (const uint8_t[]){0x82, 126, 0x00, 0x7E}, 4);
        n = tw_ws_header_build(h, TW_WS_OP_BINARY, true, 127, NULL);
        expect_bytes(h, n, (const uint8_t[]){0x82, 126, 0x00, 0x7F}, 4);
        n = tw_ws_header_build(h, TW_WS_OP_BINARY, true, 65535, NULL);
        expect_bytes(h, n, (const uint8_t[]){0x82, 126, 0xFF, 0xFF}, 4);
        n = tw_ws_header_build(h, TW_WS_OP_BINARY, true, 65536, NULL);
        expect_bytes(h, n, (const uint8_t[]){0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}, 10);
        n = tw_ws_header_build(h, TW_WS_OP_BINARY, true, 0x0123456789ABCDEFull, NULL);
        expect_bytes(
            h, n, (const uint8_t[]){0x82, 127, 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF}, 10);
}

Test(ws_builder, header_fin_opcode_and_mask)
{
        uint8_t h[TW_WS_MAX_HEADER];
        static const uint8_t key[4] = {0xDE, 0xAD, 0xBE, 0xEF};
        size_t n;

        n = tw_ws_header_build(h, TW_WS_OP_CONT, false, 5, NULL);
        expect_bytes(h, n, (const uint8_t[]){0x00, 0x05}, 2);
        n = tw_ws_header_build(h, TW_WS_OP_PING, true, 3, key);
        expect_bytes(h, n, (const uint8_t[]){0x89, 0x83, 0xDE, 0xAD, 0xBE, 0xEF}, 6);
        n = tw_ws_header_build(h, TW_WS_OP_TEXT, false, 300, key);
        expect_bytes(h, n, (const uint8_t[]){0x01, 0xFE, 0x01, 0x2C, 0xDE, 0xAD, 0xBE, 0xEF}, 8);
        n = tw_ws_header_build(h, TW_WS_OP_BINARY, true, 1u << 20, key);
        expect_bytes(
            h, n, (const uint8_t[]){0x82, 0xFF, 0, 0, 0, 0, 0, 0x10, 0, 0, 0xDE, 0xAD, 0xBE, 0xEF},
            14);
}

/* RFC 6455 5.7's example: a masked "Hello". */
Test(ws_builder, rfc_masked_hello)
{
        static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
        static const uint8_t want[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                       0x7f, 0x9f, 0x4d, 0x51, 0x58};
        uint8_t f[16];

        size_t n = tw_ws_header_build(f, TW_WS_OP_TEXT, true, 5, key);
        memcpy(f + n, "Hello", 5);
        tw_ws_mask(f + n, 5, key, 0);
        expect_bytes(f, n + 5, want, sizeof(want));
}

static void ref_mask(uint8_t *p, size_t n, const uint8_t key[4], uint64_t off)
{
        for (size_t i = 0; i < n; i++)
                p[i] ^= key[(off + i) % 4];
}

Test(ws_builder, mask_matches_reference)
{
        static const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
        uint8_t a[160], b[160];

        for (size_t align = 0; align < 8; align++)
                for (uint64_t off = 0; off < 9; off++)
                        for (size_t n = 0; n <= 140; n++) {
                                for (size_t i = 0; i < sizeof(a); i++)
                                        a[i] = b[i] = (uint8_t)(i * 31 + 7);
                                tw_ws_mask(a + align, n, key, off);
                                ref_mask(b + align, n, key, off);
                                cr_assert(!memcmp(a, b, sizeof(a)), "align %zu off %llu n %zu",
                                          align, (unsigned long long)off, n);
                        }
        /* Large offsets: only offset mod 4 matters. */
        for (size_t i = 0; i < 64; i++)
                a[i] = b[i] = (uint8_t)i;
        tw_ws_mask(a, 64, key, (1ull << 40) + 3);
        ref_mask(b, 64, key, 3);
        cr_assert(!memcmp(a, b, 64));
}

Test(ws_builder, mask_in_chunks_equals_whole)
{
        static const uint8_t key[4] = {0xA1, 0x00, 0xFF, 0x5C};
        uint8_t whole[100], parts[100];

        for (size_t i = 0; i < sizeof(whole); i++)
                whole[i] = parts[i] = (uint8_t)(i ^ 0x5A);
        tw_ws_mask(whole, sizeof(whole), key, 0);
        for (size_t cut = 0; cut <= sizeof(parts); cut++) {
                uint8_t p[100];
                memcpy(p, parts, sizeof(p));
                tw_ws_mask(p, cut, key, 0);
                tw_ws_mask(p + cut, sizeof(p) - cut, key, cut);
                cr_assert(!memcmp(p, whole, sizeof(p)), "cut %zu", cut);
                /* And masking twice undoes it. */
                tw_ws_mask(p, sizeof(p), key, 0);
                cr_assert(!memcmp(p, parts, sizeof(p)));
        }
}
