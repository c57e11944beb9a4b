/*
 * test_topic_encode — the message envelope: exact bytes for short payloads, the 16-bit
 * and 64-bit length headers at their boundaries, the largest seq, data copied byte for
 * byte, and a too-small buffer refused rather than overrun.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tickwire/topic.h"

static size_t enc(uint8_t *out, size_t cap, const char *topic, uint64_t seq, const char *data,
                  size_t dlen)
{
        return tw_topic_encode(out, cap, (tw_span){topic, strlen(topic)}, seq,
                               (tw_span){data, dlen});
}

Test(encode, small_exact)
{
        uint8_t out[256];
        const char *want =
            "{\"type\":\"message\",\"topic\":\"AAPL\",\"seq\":42,\"data\":{\"p\":1.50e+3}}";
        size_t n = enc(out, sizeof(out), "AAPL", 42, "{\"p\":1.50e+3}", 13);

        cr_assert_eq(n, 2 + strlen(want));
        cr_assert_eq(out[0], 0x81);
        cr_assert_eq(out[1], strlen(want));
        cr_assert_eq(memcmp(out + 2, want, strlen(want)), 0);
        cr_assert_leq(n, tw_topic_encode_max(4, 13));
}

static void check_len(size_t dlen)
{
        size_t cap = tw_topic_encode_max(1, dlen);
        uint8_t *out = malloc(cap);
        char *data = malloc(dlen + 1);
        size_t n, plen, hlen;

        cr_assert(out && data);
        memset(data, '7', dlen);
        n = enc(out, cap, "T", 18446744073709551615ull, data, dlen);
        cr_assert_gt(n, 0);
        plen =
            strlen(
                "{\"type\":\"message\",\"topic\":\"T\",\"seq\":18446744073709551615,\"data\":}") +
            dlen;
        hlen = plen < 126 ? 2 : plen < 65536 ? 4 : 10;
        cr_assert_eq(n, hlen + plen, "dlen %zu", dlen);
        if (hlen == 4)
                cr_assert_eq((size_t)out[2] << 8 | out[3], plen);
        if (hlen == 10)
                cr_assert_eq(out[1], 127);
        cr_assert_eq(memcmp(out + n - 1 - dlen, data, dlen), 0);
        cr_assert_eq(out[n - 1], '}');
        /* One byte short: refused. */
        cr_assert_eq(enc(out, n - 1, "T", 18446744073709551615ull, data, dlen), 0);
        free(out);
        free(data);
}

Test(encode, header_boundaries)
{
        size_t env =
            strlen("{\"type\":\"message\",\"topic\":\"T\",\"seq\":18446744073709551615,\"data\":}");

        for (size_t d = 1; d < 8; d++) {
                check_len(125 - env - 4 + d);
                check_len(65535 - env - 4 + d);
        }
        check_len(1);
        check_len(1 << 20);
}
