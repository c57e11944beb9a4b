/*
 * fuzz_json — libFuzzer harness for tw_json_valid (src/proto.c), the strict scanner every
 * published value and every JWT segment goes through. Invariant: it agrees exactly with
 * an independent reference validator (json_ref.h: recursive descent over the RFC 8259
 * grammar, UTF-8 by code point, depth limit TW_JSON_MAX_DEPTH with the outermost
 * container counting as one, whitespace only space/tab/LF/CR) on every input; any
 * disagreement aborts with both verdicts. It also checks the depth limit from the inside:
 * the input is judged again wrapped in TW_JSON_MAX_DEPTH - 1 arrays, which is valid only
 * when the input itself is valid and nests at most one level deep. ASan catches reads
 * past the input: it sits in a heap buffer of exactly its size.
 *
 * Build and run: see README.md "Fuzzing" (cmake -DTW_FUZZ=ON -DCMAKE_C_COMPILER=clang).
 */
#include "json_ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void compare(const char *buf, size_t n, const char *what)
{
        bool want = jref_valid(buf, n, NULL);
        bool got = tw_json_valid(buf, n);

        if (want != got) {
                fprintf(stderr, "fuzz_json: %s: reference says %s, tw_json_valid says %s\n", what,
                        want ? "valid" : "invalid", got ? "valid" : "invalid");
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        enum { WRAP = TW_JSON_MAX_DEPTH - 1 };
        char *buf = malloc(size ? size : 1);

        if (!buf)
                return 0;
        memcpy(buf, data, size);
        compare(buf, size, "input");
        free(buf);

        /* Wrapped: WRAP '[' then the input then WRAP ']' (an empty input stays invalid). */
        size_t wn = size + 2 * WRAP;
        char *w = malloc(wn);
        if (!w)
                return 0;
        memset(w, '[', WRAP);
        memcpy(w + WRAP, data, size);
        memset(w + WRAP + size, ']', WRAP);
        compare(w, wn, "wrapped");
        free(w);
        return 0;
}
