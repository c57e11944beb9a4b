/*
 * The issue 9 limits and token checks: --max-topics, --max-history-bytes,
 * --max-message-rate, --max-connections-per-ip, --token-grace, --jwt-audience and
 * --jwt-issuer. Their defaults, every accepted form on the command line and in a
 * --config file, the bounds, and one error line naming the flag for each refusal.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tickwire/config.h"

#define ARGV(...)  ((char *[]){"tickwire", __VA_ARGS__, NULL})
#define NARGS(...) ((int)(sizeof((char *[]){"tickwire", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(c, err, ...)                                                                         \
        tw_config_parse((c), NARGS(__VA_ARGS__), ARGV(__VA_ARGS__), NULL, (err), sizeof(err))

#define OK(c, ...)                                                                                 \
        do {                                                                                       \
                char err_[256] = "";                                                               \
                int rc_ = PARSE(c, err_, __VA_ARGS__);                                             \
                cr_assert_eq(rc_, 0, "rc %d: %s", rc_, err_);                                      \
        } while (0)

/* Requires -EINVAL and exactly the one-line message `want`. */
#define BAD(want, ...)                                                                             \
        do {                                                                                       \
                tw_config c_;                                                                      \
                char err_[256] = "";                                                               \
                int rc_ = PARSE(&c_, err_, __VA_ARGS__);                                           \
                cr_expect_eq(rc_, -EINVAL, "rc %d for %s", rc_, #__VA_ARGS__);                     \
                cr_expect_str_eq(err_, want, "for %s", #__VA_ARGS__);                              \
        } while (0)

Test(config_limits, defaults)
{
        tw_config c;
        char err[64];

        cr_assert_eq(tw_config_parse(&c, 1, (char *[]){"tickwire", NULL}, NULL, err, sizeof err),
                     0);
        cr_expect_eq(c.max_topics, 100000);
        cr_expect_eq(c.max_history_bytes, 256ull << 20);
        cr_expect_eq(c.max_message_rate, 0);
        cr_expect_eq(c.max_connections_per_ip, 0);
        cr_expect_eq(c.token_grace_ms, 10000);
        cr_expect_null(c.jwt_audience);
        cr_expect_null(c.jwt_issuer);
        cr_expect_eq(c.max_subscriptions, 1024); /* unchanged beside the new ones */

        tw_config d;
        memset(&d, 0xab, sizeof d);
        tw_config_defaults(&d);
        cr_expect_eq(d.max_topics, 100000);
        cr_expect_eq(d.max_history_bytes, 256ull << 20);
        cr_expect_eq(d.token_grace_ms, 10000);
        cr_expect_null(d.jwt_audience);
        cr_expect_null(d.jwt_issuer);
}

Test(config_limits, separate_values)
{
        tw_config c;
        OK(&c, "--max-topics", "5000", "--max-history-bytes", "64MiB", "--max-message-rate",
           "100/s", "--max-connections-per-ip", "32", "--token-grace", "30s", "--jwt-secret", "k",
           "--jwt-audience", "tickwire", "--jwt-issuer", "https://auth.example");
        cr_expect_eq(c.max_topics, 5000);
        cr_expect_eq(c.max_history_bytes, 64u << 20);
        cr_expect_eq(c.max_message_rate, 100);
        cr_expect_eq(c.max_connections_per_ip, 32);
        cr_expect_eq(c.token_grace_ms, 30000);
        cr_expect_str_eq(c.jwt_audience, "tickwire");
        cr_expect_str_eq(c.jwt_issuer, "https://auth.example");
}

Test(config_limits, equals_form)
{
        tw_config c;
        OK(&c, "--max-topics=1", "--max-history-bytes=4096", "--max-message-rate=7",
           "--max-connections-per-ip=1", "--token-grace=250ms", "--jwt-secret=k",
           "--jwt-audience=a=b", "--jwt-issuer=--iss");
        cr_expect_eq(c.max_topics, 1);
        cr_expect_eq(c.max_history_bytes, 4096);
        cr_expect_eq(c.max_message_rate, 7);
        cr_expect_eq(c.max_connections_per_ip, 1);
        cr_expect_eq(c.token_grace_ms, 250);
        cr_expect_str_eq(c.jwt_audience, "a=b");
        cr_expect_str_eq(c.jwt_issuer, "--iss");
}

Test(config_limits, message_rate_forms)
{
        tw_config c;
        OK(&c, "--max-message-rate", "50/s");
        cr_expect_eq(c.max_message_rate, 50);
        OK(&c, "--max-message-rate", "50");
        cr_expect_eq(c.max_message_rate, 50);
        OK(&c, "--max-message-rate", "1000000/s");
        cr_expect_eq(c.max_message_rate, 1000000);
        OK(&c, "--max-message-rate", "1000000");
        cr_expect_eq(c.max_message_rate, 1000000);
        OK(&c, "--max-message-rate", "0100/s");
        cr_expect_eq(c.max_message_rate, 100);

        /* every way of saying "off" */
        OK(&c, "--max-message-rate", "20", "--max-message-rate", "0");
        cr_expect_eq(c.max_message_rate, 0);
        OK(&c, "--max-message-rate", "20", "--max-message-rate", "0/s");
        cr_expect_eq(c.max_message_rate, 0);
        OK(&c, "--max-message-rate", "20", "--max-message-rate", "off");
        cr_expect_eq(c.max_message_rate, 0);
}

Test(config_limits, message_rate_rejections)
{
        BAD("--max-message-rate: '1000001/s' is over the limit of 1000000/s", "--max-message-rate",
            "1000001/s");
        BAD("--max-message-rate: '1000001' is over the limit of 1000000/s", "--max-message-rate",
            "1000001");
        BAD("--max-message-rate: '99999999999999999999999999/s' is over the limit of 1000000/s",
            "--max-message-rate", "99999999999999999999999999/s");
        BAD("--max-message-rate: invalid rate 'ten' (use N/s, N or off)", "--max-message-rate",
            "ten");
        static const char *const bad[] = {
            "",       "/s",   "10/m", "10/ms", "10 /s",
            "10/s/s", "-5/s", "+5",   "1.5/s", "10/S",
            "10s",    "OFF",  "on",   "5/",    "999999999999999999999x",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                tw_config c;
                char err[256], want[128];
                char *argv[] = {"tickwire", "--max-message-rate", (char *)bad[i], NULL};

                memset(&c, 0, sizeof c);
                cr_expect_eq(tw_config_parse(&c, 3, argv, NULL, err, sizeof err), -EINVAL,
                             "'%s' accepted", bad[i]);
                snprintf(want, sizeof want,
                         "--max-message-rate: invalid rate '%s' (use N/s, N or off)", bad[i]);
                cr_expect_str_eq(err, want);
        }
}

Test(config_limits, connections_per_ip)
{
        tw_config c;
        OK(&c, "--max-connections-per-ip", "4294967295");
        cr_expect_eq(c.max_connections_per_ip, UINT32_MAX);
        OK(&c, "--max-connections-per-ip", "8", "--max-connections-per-ip", "off");
        cr_expect_eq(c.max_connections_per_ip, 0);
        OK(&c, "--max-connections-per-ip", "8", "--max-connections-per-ip", "0");
        cr_expect_eq(c.max_connections_per_ip, 0);
        BAD("--max-connections-per-ip: 4294967296 is over the limit of 4294967295",
            "--max-connections-per-ip", "4294967296");
        BAD("--max-connections-per-ip: invalid number '-1'", "--max-connections-per-ip", "-1");
        BAD("--max-connections-per-ip: invalid number '10/s'", "--max-connections-per-ip", "10/s");
        BAD("--max-connections-per-ip: missing value", "--max-connections-per-ip");
}

Test(config_limits, max_topics_bounds)
{
        tw_config c;
        OK(&c, "--max-topics", "4294967295");
        cr_expect_eq(c.max_topics, UINT32_MAX);
        BAD("--max-topics: must be at least 1", "--max-topics", "0");
        BAD("--max-topics: 4294967296 is over the limit of 4294967295", "--max-topics",
            "4294967296");
        BAD("--max-topics: invalid number '100k'", "--max-topics", "100k");
        BAD("--max-topics: invalid number 'off'", "--max-topics", "off");
}

Test(config_limits, max_history_bytes_bounds)
{
        tw_config c;
        OK(&c, "--max-history-bytes", "16GiB");
        cr_expect_eq(c.max_history_bytes, 16ull << 30);
        OK(&c, "--max-history-bytes", "1.5KiB");
        cr_expect_eq(c.max_history_bytes, 1536);
        BAD("--max-history-bytes: must be greater than 0", "--max-history-bytes", "0");
        BAD("--max-history-bytes: invalid size '256MB' (use bytes, KiB, MiB or GiB)",
            "--max-history-bytes", "256MB");
        BAD("--max-history-bytes: invalid size '-1' (use bytes, KiB, MiB or GiB)",
            "--max-history-bytes", "-1");
}

Test(config_limits, token_grace_bounds)
{
        tw_config c;
        OK(&c, "--token-grace", "0"); /* no grace: close as soon as exp passes */
        cr_expect_eq(c.token_grace_ms, 0);
        OK(&c, "--token-grace", "2m");
        cr_expect_eq(c.token_grace_ms, 120000);
        OK(&c, "--token-grace", "1440m");
        cr_expect_eq(c.token_grace_ms, 24ull * 3600 * 1000);
        BAD("--token-grace: invalid duration 'soon' (use ms, s or m)", "--token-grace", "soon");
        BAD("--token-grace: invalid duration '-1s' (use ms, s or m)", "--token-grace", "-1s");
        BAD("--token-grace: '1441m' is over the limit of 24h", "--token-grace", "1441m");
}

Test(config_limits, jwt_claims)
{
        tw_config c;
        OK(&c, "--jwt-audience", "aud", "--jwt-secret", "k"); /* order does not matter */
        cr_expect_str_eq(c.jwt_audience, "aud");
        cr_expect_null(c.jwt_issuer);
        OK(&c, "--jwt-secret", "k", "--jwt-issuer", "iss");
        cr_expect_str_eq(c.jwt_issuer, "iss");
        cr_expect_null(c.jwt_audience);
        BAD("--jwt-audience: must not be empty", "--jwt-audience=", "--jwt-secret", "k");
        BAD("--jwt-issuer: must not be empty", "--jwt-issuer=", "--jwt-secret", "k");
        BAD("--jwt-audience: missing value", "--jwt-audience");
        /* without a secret no token is read: a required claim would be ignored */
        BAD("--jwt-audience: given without --jwt-secret", "--jwt-audience", "aud");
        BAD("--jwt-issuer: given without --jwt-secret", "--jwt-issuer", "iss");
}

/* ---- the same in a --config file ---- */

static char dir[64];
static char path[128];

static void make_dir(void)
{
        strcpy(dir, "/tmp/tw_limits_XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/tickwire.conf", dir);
}

static void remove_dir(void)
{
        unlink(path);
        rmdir(dir);
}

static void write_file(const char *text)
{
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(text, f);
        fclose(f);
}

static bool in_strings(const tw_config *c, const char *p)
{
        return p >= &c->strings[0][0] && p < &c->strings[0][0] + sizeof c->strings;
}

Test(config_limits, file_form, .init = make_dir, .fini = remove_dir)
{
        tw_config c;
        char err[256];

        write_file("max-topics 250\n"
                   "max-history-bytes = 1GiB\n"
                   "max-message-rate=20/s\n"
                   "max-connections-per-ip off\n"
                   "token-grace 1.5s\n"
                   "jwt-secret s3cret\n"
                   "jwt-audience = my audience #1\n"
                   "jwt-issuer https://issuer.example/\n");
        cr_assert_eq(PARSE(&c, err, "--max-connections-per-ip", "9", "--config", path), 0, "%s",
                     err);
        remove_dir(); /* the file is gone; the strings must not be */
        cr_expect_eq(c.max_topics, 250);
        cr_expect_eq(c.max_history_bytes, 1ull << 30);
        cr_expect_eq(c.max_message_rate, 20);
        cr_expect_eq(c.max_connections_per_ip, 0);
        cr_expect_eq(c.token_grace_ms, 1500);
        cr_expect_str_eq(c.jwt_secret, "s3cret");
        cr_expect_str_eq(c.jwt_audience, "my audience #1");
        cr_expect_str_eq(c.jwt_issuer, "https://issuer.example/");
        cr_expect(in_strings(&c, c.jwt_audience));
        cr_expect(in_strings(&c, c.jwt_issuer));
}

/* Every string flag from one file at once: each keeps its own slot in c->strings. */
Test(config_limits, file_all_strings_distinct, .init = make_dir, .fini = remove_dir)
{
        tw_config c;
        char err[256];

        write_file("tls-cert cert.pem\ntls-key key.pem\njwt-secret secret\n"
                   "publish-token token\njwt-audience audience\njwt-issuer issuer\n");
        cr_assert_eq(PARSE(&c, err, "--config", path), 0, "%s", err);
        const char *const got[] = {c.tls_cert,      c.tls_key,      c.jwt_secret,
                                   c.publish_token, c.jwt_audience, c.jwt_issuer};
        const char *const want[] = {"cert.pem", "key.pem", "secret", "token", "audience", "issuer"};
        for (size_t i = 0; i < 6; i++) {
                cr_assert_not_null(got[i], "string %zu not set", i);
                cr_expect_str_eq(got[i], want[i]);
                cr_expect(in_strings(&c, got[i]), "%s not copied", want[i]);
        }
}

Test(config_limits, file_long_claims, .init = make_dir, .fini = remove_dir)
{
        tw_config c;
        char err[256], text[1100];

        /* 511 bytes fits a slot, for each of the two new strings */
        int n = snprintf(text, sizeof text,
                         "jwt-secret k\njwt-audience %0511d\njwt-issuer %0511d\n", 0, 0);
        cr_assert_lt(n, (int)sizeof text);
        write_file(text);
        cr_assert_eq(PARSE(&c, err, "--config", path), 0, "%s", err);
        cr_expect_eq(strlen(c.jwt_audience), 511);
        cr_expect_eq(strlen(c.jwt_issuer), 511);

        snprintf(text, sizeof text, "jwt-secret k\njwt-issuer %0512d\n", 0);
        write_file(text);
        cr_expect_eq(PARSE(&c, err, "--config", path), -EINVAL);
        cr_expect(strstr(err, ":2: jwt-issuer: value too long (at most 511 bytes)"), "%s", err);
}

Test(config_limits, file_errors_name_file_line_and_flag, .init = make_dir, .fini = remove_dir)
{
        static const struct {
                const char *text, *want;
        } cases[] = {
            {"max-topics 0\n", ":1: max-topics: must be at least 1"},
            {"\nmax-history-bytes 1MB\n",
             ":2: max-history-bytes: invalid size '1MB' (use bytes, KiB, MiB or GiB)"},
            {"max-message-rate 5/min\n",
             ":1: max-message-rate: invalid rate '5/min' (use N/s, N or off)"},
            {"max-message-rate 2000000/s\n",
             ":1: max-message-rate: '2000000/s' is over the limit of 1000000/s"},
            {"max-connections-per-ip many\n", ":1: max-connections-per-ip: invalid number 'many'"},
            {"token-grace 10 s\n", ":1: token-grace: invalid duration '10 s' (use ms, s or m)"},
            {"jwt-audience\n", ":1: jwt-audience: missing value"},
            {"jwt-issuer =\n", ":1: jwt-issuer: missing value"},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                tw_config c;
                char err[512], want[512];

                write_file(cases[i].text);
                cr_expect_eq(PARSE(&c, err, "--config", path), -EINVAL, "accepted: %s",
                             cases[i].text);
                snprintf(want, sizeof want, "%s%s", path, cases[i].want);
                cr_expect_str_eq(err, want);
        }

        /* the cross-flag check runs on the final values, with the command-line spelling */
        tw_config c;
        char err[256];
        write_file("jwt-audience aud\n");
        cr_expect_eq(PARSE(&c, err, "--config", path), -EINVAL);
        cr_expect_str_eq(err, "--jwt-audience: given without --jwt-secret");
        cr_expect_eq(PARSE(&c, err, "--config", path, "--jwt-secret", "k"), 0, "%s", err);
}
