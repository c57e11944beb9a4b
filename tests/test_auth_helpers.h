/*
 * Shared helpers for the auth tests: a base64url encoder of the tests' own and HS256 by
 * wolfCrypt, to mint tokens. Checked against jwt.io's published token in test_auth_jwt.c
 * (minted_token_matches_the_published_one). No Criterion here: errors abort.
 */
#ifndef TEST_AUTH_HELPERS_H
#define TEST_AUTH_HELPERS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hmac.h>

#include "tickwire/auth.h"

#define SECRET "test-secret-of-a-reasonable-length!"
#define NOW    1700000000

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Appends base64url of in[0..n) without padding to out; returns the new length. */
static inline size_t b64url_put(char *out, size_t o, const unsigned char *in, size_t n)
{
        size_t i = 0;

        for (; i + 3 <= n; i += 3) {
                uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
                out[o++] = b64url_alphabet[v >> 18];
                out[o++] = b64url_alphabet[(v >> 12) & 63];
                out[o++] = b64url_alphabet[(v >> 6) & 63];
                out[o++] = b64url_alphabet[v & 63];
        }
        if (n - i == 1) {
                uint32_t v = (uint32_t)in[i] << 16;
                out[o++] = b64url_alphabet[v >> 18];
                out[o++] = b64url_alphabet[(v >> 12) & 63];
        } else if (n - i == 2) {
                uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
                out[o++] = b64url_alphabet[v >> 18];
                out[o++] = b64url_alphabet[(v >> 12) & 63];
                out[o++] = b64url_alphabet[(v >> 6) & 63];
        }
        out[o] = '\0';
        return o;
}

static inline void test_hs256(const char *key, size_t key_len, const char *msg, size_t n,
                              unsigned char mac[32])
{
        Hmac h;

        if (wc_HmacInit(&h, NULL, INVALID_DEVID) != 0 ||
            wc_HmacSetKey(&h, WC_SHA256, (const byte *)key, (word32)key_len) != 0 ||
            wc_HmacUpdate(&h, (const byte *)msg, (word32)n) != 0 || wc_HmacFinal(&h, mac) != 0)
                abort();
        wc_HmacFree(&h);
}

/* header.payload.HS256(secret) in a static buffer, NUL-terminated: valid until the next
 * call. */
static char minted[16384];

static inline const char *mint_with(const char *header, const char *payload, const char *secret)
{
        unsigned char mac[32];

        if ((strlen(header) + strlen(payload)) / 3 * 4 + 64 > sizeof(minted))
                abort();
        size_t o = b64url_put(minted, 0, (const unsigned char *)header, strlen(header));
        minted[o++] = '.';
        o = b64url_put(minted, o, (const unsigned char *)payload, strlen(payload));
        test_hs256(secret, strlen(secret), minted, o, mac);
        minted[o++] = '.';
        b64url_put(minted, o, mac, sizeof(mac));
        return minted;
}

static inline const char *mint(const char *payload)
{
        return mint_with("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, SECRET);
}

#endif
