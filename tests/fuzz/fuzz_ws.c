/*
 * fuzz_ws — libFuzzer harness for the ws frame reader's split invariance: whatever bytes
 * arrive, reading them all at once, one byte at a time, or cut at arbitrary points must
 * give the same events (same data bytes, message boundaries, control frames, error code),
 * and the reader must keep its contract (never consume more than given, report NONE only
 * when the input is used up, stay failed after an error). ASan catches reads past a
 * chunk: every chunk sits in its own heap buffer of exactly its size.
 *
 * Input layout: byte 0 picks the side and the size limit, bytes 1-4 seed the split
 * positions, the rest is the byte stream.
 *
 * Run (clang from Debian: apt-get install clang):
 *   clang -std=gnu17 -O1 -g -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *         -Iinclude -Itests src/ws.c tests/fuzz/fuzz_ws.c -o /tmp/fuzz_ws
 *   mkdir -p /tmp/fuzz_ws_corpus && /tmp/fuzz_ws -max_total_time=300 /tmp/fuzz_ws_corpus
 * Without clang, a standalone driver feeds generated frame streams (mostly valid frames
 * with random damage) through the same check:
 *   gcc -std=gnu17 -O1 -g -fsanitize=address,undefined -D_GNU_SOURCE -DTW_FUZZ_STANDALONE \
 *       -Iinclude -Itests src/ws.c tests/fuzz/fuzz_ws.c -o /tmp/fuzz_ws && /tmp/fuzz_ws 200000
 */
#include "test_ws_helpers.h"

static uint32_t xorshift(uint32_t *s)
{
        uint32_t x = *s ? *s : 0x9E3779B9u;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        return *s = x;
}

static void check_same(const tlog *ref, tlog *l, const char *how)
{
        if (l->bad || !tlog_eq(ref, l)) {
                fprintf(stderr, "fuzz_ws: %s differs: %s\n  ref %s\n  got %s\n", how,
                        l->bad ? l->bad : "log", tlog_str(ref), tlog_str(l));
                abort();
        }
        tlog_free(l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const uint64_t limits[4] = {UINT64_MAX, 0, 16, 300};
        size_t cuts[64], ncuts = 0;
        uint32_t seed;

        if (size < 5)
                return 0;
        bool server = data[0] & 1;
        uint64_t max = limits[(data[0] >> 1) & 3];
        memcpy(&seed, data + 1, 4);
        const uint8_t *s = data + 5;
        size_t n = size - 5;

        tlog ref = tlog_run(server, max, s, n);
        if (ref.bad) {
                fprintf(stderr, "fuzz_ws: contract broken all at once: %s\n", ref.bad);
                abort();
        }
        if (ref.errors > 1)
                abort();

        tlog l = tlog_run_bytewise(server, max, s, n);
        check_same(&ref, &l, "byte by byte");

        if (n) {
                size_t want = 1 + xorshift(&seed) % 63;
                for (size_t i = 0; i < want; i++)
                        cuts[ncuts++] = xorshift(&seed) % (n + 1);
                /* Sort (insertion: at most 63 entries). */
                for (size_t i = 1; i < ncuts; i++)
                        for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
                                size_t t = cuts[j];
                                cuts[j] = cuts[j - 1];
                                cuts[j - 1] = t;
                        }
                l = tlog_run_cuts(server, max, s, n, cuts, ncuts);
                check_same(&ref, &l, "random splits");
        }
        tlog_free(&ref);
        return 0;
}

#ifdef TW_FUZZ_STANDALONE
/* Random bytes rarely get past a frame header, so the standalone driver builds streams
 * of plausible frames (right masking, valid and invalid UTF-8, fragments, controls
 * between them) and then damages a few bytes. */
static size_t gen(uint8_t *out, size_t cap, uint32_t *rs)
{
        static const uint8_t alphabet[] = {'a',  '{',  0x7F, 0x80, 0xBF, 0xC2, 0xC0, 0xE0, 0xE2,
                                           0xED, 0xA0, 0x82, 0xAC, 0xF0, 0x9F, 0xF4, 0x90, 0xFF};
        size_t n = 5;
        bool server = xorshift(rs) & 1;
        bool in_msg = false;

        out[0] = (uint8_t)(server | (xorshift(rs) % 8 == 0 ? 4 : 0));
        for (int i = 1; i < 5; i++)
                out[i] = (uint8_t)xorshift(rs);
        int frames = 1 + xorshift(rs) % 8;
        for (int f = 0; f < frames; f++) {
                uint8_t payload[400], op;
                size_t len = xorshift(rs) % 4 == 0 ? xorshift(rs) % 400 : xorshift(rs) % 12;
                uint32_t k = xorshift(rs) % 10;
                bool fin = xorshift(rs) % 3 != 0;

                if (k < 3) {
                        op = (uint8_t)(TW_WS_OP_CLOSE + k);
                        fin = true;
                        if (len > 125)
                                len = 125;
                } else if (in_msg) {
                        op = TW_WS_OP_CONT;
                } else {
                        op = k & 1 ? TW_WS_OP_TEXT : TW_WS_OP_BINARY;
                }
                for (size_t i = 0; i < len; i++)
                        payload[i] =
                            xorshift(rs) % 4 ? alphabet[xorshift(rs) % sizeof(alphabet)] : 'x';
                if (n + TW_WS_MAX_HEADER + len > cap)
                        break;
                uint8_t key[4];
                for (int i = 0; i < 4; i++)
                        key[i] = (uint8_t)xorshift(rs);
                size_t h = tw_ws_header_build(out + n, op, fin, len, server ? key : NULL);
                memcpy(out + n + h, payload, len);
                if (server)
                        tw_ws_mask(out + n + h, len, key, 0);
                n += h + len;
                if (!(op & 8))
                        in_msg = !fin;
        }
        int damage = xorshift(rs) % 4 == 0 ? 1 + xorshift(rs) % 3 : 0;
        for (int i = 0; i < damage && n > 5; i++)
                out[5 + xorshift(rs) % (n - 5)] ^= (uint8_t)(1u << (xorshift(rs) % 8));
        return n;
}

int main(int argc, char **argv)
{
        static uint8_t buf[8192];
        long iters = argc > 1 ? atol(argv[1]) : 100000;
        uint32_t rs = argc > 2 ? (uint32_t)atol(argv[2]) : 12345u;

        for (long i = 0; i < iters; i++) {
                size_t n = gen(buf, sizeof(buf), &rs);
                LLVMFuzzerTestOneInput(buf, n);
        }
        printf("fuzz_ws: %ld streams, all splits agreed\n", iters);
        return 0;
}
#endif
