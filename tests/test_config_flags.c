/*
 * Command-line parsing: the defaults, every flag in both "--flag value" and
 * "--flag=value" form, heartbeat profiles against explicit flags in either order, and
 * one clear error line naming the flag for each thing that must be refused.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "tickwire/config.h"

#define ARGV(...)  ((char *[]){"tickwire", __VA_ARGS__, NULL})
#define NARGS(...) ((int)(sizeof((char *[]){"tickwire", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(c, err, ...)                                                                         \
        tw_config_parse((c), NARGS(__VA_ARGS__), ARGV(__VA_ARGS__), NULL, (err), sizeof(err))

/* Parses and requires success. */
#define OK(c, ...)                                                                                 \
        do {                                                                                       \
                char err_[256] = "";                                                               \
                int rc_ = PARSE(c, err_, __VA_ARGS__);                                             \
                cr_assert_eq(rc_, 0, "rc %d: %s", rc_, err_);                                      \
                cr_assert_str_eq(err_, "");                                                        \
        } while (0)

/* Parses, requires -EINVAL and one line that contains `needle` (the flag's name). */
#define BAD(needle, ...)                                                                           \
        do {                                                                                       \
                tw_config c_;                                                                      \
                char err_[256] = "";                                                               \
                int rc_ = PARSE(&c_, err_, __VA_ARGS__);                                           \
                cr_expect_eq(rc_, -EINVAL, "rc %d for %s", rc_, #__VA_ARGS__);                     \
                cr_expect(strstr(err_, needle) != NULL, "'%s' does not name '%s'", err_, needle);  \
                cr_expect(strchr(err_, '\n') == NULL, "'%s' is not one line", err_);               \
        } while (0)

static const char *listen_str(const tw_listen *l)
{
        static char buf[64];
        tw_listen_format(l, buf, sizeof buf);
        return buf;
}

Test(config_flags, defaults)
{
        tw_config c;
        char err[64];

        cr_assert_eq(tw_config_parse(&c, 1, (char *[]){"tickwire", NULL}, NULL, err, sizeof err),
                     0);
        cr_expect_eq(c.nlisten, 1);
        cr_expect_str_eq(listen_str(&c.listen[0]), "127.0.0.1:8080");
        cr_expect_not(c.listen[0].tls);
        cr_expect_eq(c.workers, 0);
        cr_expect_eq(c.coalesce_ms, 20);
        cr_expect_eq(c.ping_interval_ms, 30000);
        cr_expect_eq(c.idle_timeout_ms, 90000);
        cr_expect_eq(c.tick_ms, 10);
        cr_expect_eq(c.handshake_timeout_ms, 5000);
        cr_expect_eq(c.close_timeout_ms, 2000);
        cr_expect_eq(c.drain_timeout_ms, 5000);
        cr_expect_eq(c.reconnect_spread_ms, 5000);
        cr_expect_eq(c.max_connections, 0);
        cr_expect_eq(c.max_message, 1u << 20);
        cr_expect_eq(c.max_queue, 4u << 20);
        cr_expect_eq(c.slow_consumer, TW_SLOW_CONFLATE);
        cr_expect_eq(c.history, 1024);
        cr_expect_eq(c.max_subscriptions, 1024);
        cr_expect_null(c.tls_cert);
        cr_expect_null(c.tls_key);
        cr_expect_null(c.jwt_secret);
        cr_expect_null(c.publish_token);
}

Test(config_flags, parse_starts_from_defaults)
{
        tw_config c;
        memset(&c, 0xab, sizeof c);
        OK(&c, "--workers", "2");
        cr_expect_eq(c.ping_interval_ms, 30000);
        cr_expect_eq(c.nlisten, 1);
        cr_expect_null(c.jwt_secret);
}

Test(config_flags, every_flag_separate_value)
{
        tw_config c;
        OK(&c, "--listen", "0.0.0.0:9000", "--tls-listen", "[::1]:9443", "--workers", "8",
           "--ping-interval", "20s", "--idle-timeout", "1m", "--tick", "5ms", "--handshake-timeout",
           "3s", "--close-timeout", "500ms", "--drain-timeout", "10s", "--reconnect-spread", "0",
           "--max-connections", "100000", "--max-message", "64KiB", "--max-queue", "1MiB",
           "--coalesce", "5ms", "--slow-consumer", "disconnect", "--history", "16",
           "--max-subscriptions", "7", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--jwt-secret",
           "s3cret", "--publish-token", "tok");
        cr_assert_eq(c.nlisten, 2);
        cr_expect_str_eq(listen_str(&c.listen[0]), "0.0.0.0:9000");
        cr_expect_not(c.listen[0].tls);
        cr_expect_str_eq(listen_str(&c.listen[1]), "[::1]:9443");
        cr_expect(c.listen[1].tls);
        cr_expect_eq(c.workers, 8);
        cr_expect_eq(c.ping_interval_ms, 20000);
        cr_expect_eq(c.idle_timeout_ms, 60000);
        cr_expect_eq(c.tick_ms, 5);
        cr_expect_eq(c.handshake_timeout_ms, 3000);
        cr_expect_eq(c.close_timeout_ms, 500);
        cr_expect_eq(c.drain_timeout_ms, 10000);
        cr_expect_eq(c.reconnect_spread_ms, 0);
        cr_expect_eq(c.max_connections, 100000);
        cr_expect_eq(c.max_message, 65536);
        cr_expect_eq(c.max_queue, 1u << 20);
        cr_expect_eq(c.coalesce_ms, 5);
        cr_expect_eq(c.slow_consumer, TW_SLOW_DISCONNECT);
        cr_expect_eq(c.history, 16);
        cr_expect_eq(c.max_subscriptions, 7);
        cr_expect_str_eq(c.tls_cert, "c.pem");
        cr_expect_str_eq(c.tls_key, "k.pem");
        cr_expect_str_eq(c.jwt_secret, "s3cret");
        cr_expect_str_eq(c.publish_token, "tok");
}

Test(config_flags, every_flag_equals_form)
{
        tw_config c;
        OK(&c, "--listen=[::]:7000", "--workers=3", "--ping-interval=10s", "--idle-timeout=25s",
           "--tick=20ms", "--handshake-timeout=1s", "--close-timeout=1.5s", "--drain-timeout=2m",
           "--reconnect-spread=750ms", "--max-connections=5", "--max-message=512",
           "--max-queue=2GiB", "--slow-consumer=conflate", "--history=1", "--max-subscriptions=2",
           "--tls-cert=a=b.pem", "--tls-key=k.pem", "--jwt-secret=x=y", "--publish-token=--t",
           "--tls-listen=127.0.0.1:0");
        cr_expect_str_eq(listen_str(&c.listen[0]), "[::]:7000");
        cr_expect_eq(c.workers, 3);
        cr_expect_eq(c.ping_interval_ms, 10000);
        cr_expect_eq(c.idle_timeout_ms, 25000);
        cr_expect_eq(c.tick_ms, 20);
        cr_expect_eq(c.handshake_timeout_ms, 1000);
        cr_expect_eq(c.close_timeout_ms, 1500);
        cr_expect_eq(c.drain_timeout_ms, 120000);
        cr_expect_eq(c.reconnect_spread_ms, 750);
        cr_expect_eq(c.max_connections, 5);
        cr_expect_eq(c.max_message, 512);
        cr_expect_eq(c.max_queue, 2ull << 30);
        cr_expect_eq(c.slow_consumer, TW_SLOW_CONFLATE);
        cr_expect_eq(c.history, 1);
        cr_expect_eq(c.max_subscriptions, 2);
        cr_expect_str_eq(c.tls_cert, "a=b.pem"); /* only the first '=' splits */
        cr_expect_str_eq(c.jwt_secret, "x=y");
        cr_expect_str_eq(c.publish_token, "--t"); /* the way to pass a dashed value */
        cr_expect(c.listen[1].tls);
}

Test(config_flags, coalesce_zero_is_off)
{
        tw_config c;
        OK(&c, "--coalesce", "0");
        cr_expect_eq(c.coalesce_ms, 0);
}

Test(config_flags, first_listen_replaces_default)
{
        tw_config c;
        OK(&c, "--listen", ":9000");
        cr_assert_eq(c.nlisten, 1);
        cr_expect_str_eq(listen_str(&c.listen[0]), "0.0.0.0:9000");

        OK(&c, "--tls-listen", ":9443", "--tls-cert", "c", "--tls-key", "k");
        cr_assert_eq(c.nlisten, 1);
        cr_expect(c.listen[0].tls);

        OK(&c, "--listen", ":1", "--listen", ":2", "--listen", ":3", "--listen", ":4");
        cr_expect_eq(c.nlisten, 4);
}

Test(config_flags, too_many_listens)
{
        BAD("--listen", "--listen", ":1", "--listen", ":2", "--listen", ":3", "--listen", ":4",
            "--listen", ":5");
        BAD("--tls-listen", "--listen", ":1", "--listen", ":2", "--listen", ":3", "--listen", ":4",
            "--tls-listen", ":5");
}

Test(config_flags, duplicate_listen)
{
        BAD("--listen", "--listen", ":8080", "--listen", "0.0.0.0:8080");
        tw_config c;
        OK(&c, "--listen", ":0", "--listen", ":0"); /* two free ports: fine */
}

Test(config_flags, profiles)
{
        static const struct {
                const char *name;
                uint64_t ping, idle;
        } want[] = {{"im", 15000, 45000},
                    {"game", 5000, 15000},
                    {"market", 15000, 60000},
                    {"iot", 120000, 360000}};
        for (size_t i = 0; i < 4; i++) {
                tw_config c;
                OK(&c, "--heartbeat-profile", (char *)want[i].name);
                cr_expect_eq(c.ping_interval_ms, want[i].ping, "%s", want[i].name);
                cr_expect_eq(c.idle_timeout_ms, want[i].idle, "%s", want[i].name);
        }
}

Test(config_flags, explicit_overrides_profile_after)
{
        tw_config c;
        OK(&c, "--heartbeat-profile", "iot", "--ping-interval", "100s");
        cr_expect_eq(c.ping_interval_ms, 100000);
        cr_expect_eq(c.idle_timeout_ms, 360000);
        OK(&c, "--heartbeat-profile=game", "--idle-timeout=20s");
        cr_expect_eq(c.ping_interval_ms, 5000);
        cr_expect_eq(c.idle_timeout_ms, 20000);
}

Test(config_flags, explicit_overrides_profile_before)
{
        tw_config c;
        OK(&c, "--ping-interval", "100s", "--heartbeat-profile", "iot");
        cr_expect_eq(c.ping_interval_ms, 100000);
        cr_expect_eq(c.idle_timeout_ms, 360000);
        OK(&c, "--idle-timeout", "20s", "--heartbeat-profile", "game");
        cr_expect_eq(c.ping_interval_ms, 5000);
        cr_expect_eq(c.idle_timeout_ms, 20000);
        OK(&c, "--idle-timeout", "2s", "--ping-interval", "1s", "--heartbeat-profile", "market");
        cr_expect_eq(c.ping_interval_ms, 1000);
        cr_expect_eq(c.idle_timeout_ms, 2000);
}

Test(config_flags, last_profile_wins)
{
        tw_config c;
        OK(&c, "--heartbeat-profile", "iot", "--heartbeat-profile", "game");
        cr_expect_eq(c.ping_interval_ms, 5000);
}

Test(config_flags, help_returns_one)
{
        tw_config c;
        char err[64];
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);

        cr_assert_eq(tw_config_parse(&c, 2, ARGV("--help"), out, err, sizeof err), 1);
        cr_assert_eq(tw_config_parse(&c, 4, ARGV("--workers", "2", "-h"), out, err, sizeof err), 1);
        fclose(out);
        cr_expect(len > 0);
        free(buf);
}

Test(config_flags, exact_messages)
{
        tw_config c;
        char err[256];

        cr_expect_eq(PARSE(&c, err, "--ping-interval", "abc"), -EINVAL);
        cr_expect_str_eq(err, "--ping-interval: invalid duration 'abc' (use ms, s or m)");
        cr_expect_eq(PARSE(&c, err, "--max-queue", "4MB"), -EINVAL);
        cr_expect_str_eq(err, "--max-queue: invalid size '4MB' (use bytes, KiB, MiB or GiB)");
        cr_expect_eq(PARSE(&c, err, "--frobnicate"), -EINVAL);
        cr_expect_str_eq(err, "--frobnicate: unknown flag (see --help)");
        cr_expect_eq(PARSE(&c, err, "--workers"), -EINVAL);
        cr_expect_str_eq(err, "--workers: missing value");
        cr_expect_eq(PARSE(&c, err, "--tick", "100ms", "--ping-interval", "50ms"), -EINVAL);
        cr_expect_str_eq(err, "--tick: 100ms is longer than the ping interval (50ms)");
        cr_expect_eq(PARSE(&c, err, "--idle-timeout", "30s"), -EINVAL);
        cr_expect_str_eq(err, "--idle-timeout: 30s must be greater than the ping interval (30s)");
}

Test(config_flags, each_rejection_names_its_flag)
{
        BAD("--bogus", "--bogus", "1");
        BAD("--bogus", "--bogus=1");
        BAD("stray", "stray");
        BAD("-x", "-x");
        BAD("--listen", "--listen");                   /* missing value at the end */
        BAD("--listen", "--listen", "--workers", "2"); /* next flag is not a value */
        BAD("--listen", "--listen", "localhost:80");
        BAD("--listen", "--listen=");
        BAD("--tls-listen", "--tls-listen", "nope");
        BAD("--workers", "--workers", "abc");
        BAD("--workers", "--workers", "-1");
        BAD("--workers", "--workers", "1025");
        BAD("--workers", "--workers", "99999999999999999999");
        BAD("--ping-interval", "--ping-interval", "abc");
        BAD("--ping-interval", "--ping-interval", "0");
        BAD("--ping-interval", "--ping-interval", "-5s");
        BAD("--ping-interval", "--ping-interval", "25h");
        BAD("--idle-timeout", "--idle-timeout", "5x");
        BAD("--idle-timeout", "--idle-timeout", "");
        BAD("--heartbeat-profile", "--heartbeat-profile", "chat");
        BAD("--tick", "--tick", "0");
        BAD("--tick", "--tick", "0ms");
        BAD("--tick", "--tick", "31s");
        BAD("--tick", "--tick", "ten");
        BAD("--handshake-timeout", "--handshake-timeout", "0");
        BAD("--handshake-timeout", "--handshake-timeout", "1h");
        BAD("--close-timeout", "--close-timeout", "x");
        BAD("--drain-timeout", "--drain-timeout", "1.0001s");
        BAD("--reconnect-spread", "--reconnect-spread", "5 s");
        BAD("--max-connections", "--max-connections", "4294967296");
        BAD("--max-connections", "--max-connections", "1k");
        BAD("--max-message", "--max-message", "1MB");
        BAD("--max-message", "--max-message", "0");
        BAD("--max-queue", "--max-queue", "-4MiB");
        BAD("--max-queue", "--max-queue", "0KiB");
        BAD("--slow-consumer", "--slow-consumer", "drop");
        BAD("--history", "--history", "0");
        BAD("--history", "--history", "x");
        BAD("--max-subscriptions", "--max-subscriptions", "0");
        BAD("--tls-cert", "--tls-cert", "c.pem");
        BAD("--tls-cert", "--tls-cert=", "--tls-key", "k");
        BAD("--tls-key", "--tls-key", "k.pem");
        BAD("--tls-listen", "--tls-listen", ":8443");
        BAD("--jwt-secret", "--jwt-secret=");
        BAD("--publish-token", "--publish-token=");
        BAD("--help", "--help=yes");
        BAD("--config", "--config", "/nonexistent/tickwire.conf");
        BAD("--config", "--config");
}

Test(config_flags, idle_must_exceed_ping)
{
        tw_config c;
        BAD("--idle-timeout", "--ping-interval", "10s", "--idle-timeout", "10s");
        BAD("--idle-timeout", "--ping-interval", "10s", "--idle-timeout", "9s");
        BAD("--idle-timeout", "--heartbeat-profile", "market", "--ping-interval", "60s");
        OK(&c, "--ping-interval", "10s", "--idle-timeout", "10001ms");
}

Test(config_flags, tick_up_to_ping)
{
        tw_config c;
        OK(&c, "--tick", "30s");
        cr_expect_eq(c.tick_ms, 30000);
        BAD("--tick", "--heartbeat-profile", "game", "--tick", "6s");
}

Test(config_flags, workers_limit)
{
        tw_config c;
        OK(&c, "--workers", "1024");
        cr_expect_eq(c.workers, 1024);
        OK(&c, "--workers", "0");
        cr_expect_eq(c.workers, 0);
}

Test(config_flags, last_value_wins)
{
        tw_config c;
        OK(&c, "--workers", "2", "--workers", "4", "--slow-consumer", "disconnect",
           "--slow-consumer", "conflate");
        cr_expect_eq(c.workers, 4);
        cr_expect_eq(c.slow_consumer, TW_SLOW_CONFLATE);
}

Test(config_flags, null_or_tiny_err_buffer)
{
        tw_config c;
        char tiny[8];

        cr_expect_eq(tw_config_parse(&c, 2, ARGV("--bogus"), NULL, NULL, 0), -EINVAL);
        cr_expect_eq(tw_config_parse(&c, 2, ARGV("--bogus"), NULL, tiny, sizeof tiny), -EINVAL);
        cr_expect_str_eq(tiny, "--bogus");
}
