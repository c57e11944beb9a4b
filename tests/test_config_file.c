/*
 * --config FILE: both line syntaxes, comments and blank lines, values kept after the
 * file's buffer is gone, the order rule (the file acts where --config stands), and
 * errors that name the file and the line.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tickwire/config.h"

static char dir[64];
static char path[128];

static void make_dir(void)
{
        strcpy(dir, "/tmp/tw_config_XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/tickwire.conf", dir);
}

static void remove_dir(void)
{
        unlink(path);
        rmdir(dir);
}

TestSuite(config_file, .init = make_dir, .fini = remove_dir);

static void write_file(const char *text)
{
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(text, f);
        fclose(f);
}

static const char *listen_str(const tw_listen *l)
{
        static char buf[64];
        tw_listen_format(l, buf, sizeof buf);
        return buf;
}

#define ARGV(...)  ((char *[]){"tickwire", __VA_ARGS__, NULL})
#define NARGS(...) ((int)(sizeof((char *[]){"tickwire", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(c, err, ...)                                                                         \
        tw_config_parse((c), NARGS(__VA_ARGS__), ARGV(__VA_ARGS__), NULL, (err), sizeof(err))

static bool in_strings(const tw_config *c, const char *p)
{
        return p >= &c->strings[0][0] && p < &c->strings[0][0] + sizeof c->strings;
}

Test(config_file, both_syntaxes_comments_blanks)
{
        tw_config c;
        char err[256];

        write_file("# tickwire settings\n"
                   "\n"
                   "workers 4\n"
                   "ping-interval = 20s\n"
                   "   idle-timeout=1m   \n"
                   "\t# indented comment\n"
                   "max-queue\t= 8MiB\r\n"
                   "slow-consumer disconnect\n"
                   "--history 64\n" /* a pasted command-line flag is tolerated */
                   "tick 5ms");     /* no final newline */
        cr_assert_eq(PARSE(&c, err, "--config", path), 0, "%s", err);
        cr_expect_eq(c.workers, 4);
        cr_expect_eq(c.ping_interval_ms, 20000);
        cr_expect_eq(c.idle_timeout_ms, 60000);
        cr_expect_eq(c.max_queue, 8u << 20);
        cr_expect_eq(c.slow_consumer, TW_SLOW_DISCONNECT);
        cr_expect_eq(c.history, 64);
        cr_expect_eq(c.tick_ms, 5);
        cr_expect_eq(c.handshake_timeout_ms, 5000); /* untouched default */
}

Test(config_file, strings_are_copied_into_the_config)
{
        tw_config c;
        char err[256];

        write_file("tls-cert /etc/tickwire/cert.pem\n"
                   "tls-key = /etc/tickwire/key.pem\n"
                   "jwt-secret = two words #not-a-comment\n"
                   "publish-token tok=en\n"
                   "tls-listen [::1]:8443\n");
        cr_assert_eq(PARSE(&c, err,
                           "--config="
                           "/dev/null",
                           "--config", path),
                     0, "%s", err);
        remove_dir(); /* the file is gone; the values must not be */
        cr_expect_str_eq(c.tls_cert, "/etc/tickwire/cert.pem");
        cr_expect_str_eq(c.tls_key, "/etc/tickwire/key.pem");
        cr_expect_str_eq(c.jwt_secret, "two words #not-a-comment");
        cr_expect_str_eq(c.publish_token, "tok=en");
        cr_expect(in_strings(&c, c.tls_cert));
        cr_expect(in_strings(&c, c.tls_key));
        cr_expect(in_strings(&c, c.jwt_secret));
        cr_expect(in_strings(&c, c.publish_token));
        cr_assert_eq(c.nlisten, 1);
        cr_expect(c.listen[0].tls);
}

Test(config_file, repeated_string_reuses_its_slot)
{
        tw_config c;
        char err[256];

        write_file("jwt-secret a\njwt-secret b\njwt-secret c\njwt-secret d\njwt-secret e\n"
                   "publish-token p\n");
        cr_assert_eq(PARSE(&c, err, "--config", path), 0, "%s", err);
        cr_expect_str_eq(c.jwt_secret, "e");
        cr_expect_str_eq(c.publish_token, "p");
}

Test(config_file, string_too_long)
{
        tw_config c;
        char err[256], line[600];

        memset(line, 'a', sizeof line);
        memcpy(line, "jwt-secret ", 11);
        line[11 + 511] = '\n';
        line[11 + 512] = '\0';
        write_file(line); /* 511 bytes: fits */
        cr_assert_eq(PARSE(&c, err, "--config", path), 0, "%s", err);
        cr_expect_eq(strlen(c.jwt_secret), 511);

        line[11 + 512] = '\n';
        line[11 + 513] = '\0';
        line[11 + 511] = 'a';
        write_file(line); /* 512 bytes: does not */
        cr_expect_eq(PARSE(&c, err, "--config", path), -EINVAL);
        cr_expect(strstr(err, path) && strstr(err, ":1: jwt-secret: value too long"), "%s", err);
}

Test(config_file, file_overrides_defaults_and_earlier_flags)
{
        tw_config c;
        char err[256];

        write_file("workers 4\nmax-message 2MiB\n");
        cr_assert_eq(PARSE(&c, err, "--workers", "2", "--config", path), 0, "%s", err);
        cr_expect_eq(c.workers, 4);
        cr_expect_eq(c.max_message, 2u << 20);
}

Test(config_file, later_flags_override_file)
{
        tw_config c;
        char err[256];

        write_file("workers 4\nmax-message 2MiB\njwt-secret from-file\n");
        cr_assert_eq(PARSE(&c, err, "--config", path, "--workers", "8", "--jwt-secret=cli"), 0,
                     "%s", err);
        cr_expect_eq(c.workers, 8);
        cr_expect_eq(c.max_message, 2u << 20);
        cr_expect_str_eq(c.jwt_secret, "cli");
}

Test(config_file, profile_in_file_explicit_on_command_line)
{
        tw_config c;
        char err[256];

        write_file("heartbeat-profile iot\n");
        cr_assert_eq(PARSE(&c, err, "--ping-interval", "60s", "--config", path), 0, "%s", err);
        cr_expect_eq(c.ping_interval_ms, 60000);
        cr_expect_eq(c.idle_timeout_ms, 360000);

        write_file("ping-interval 1s\n");
        cr_assert_eq(PARSE(&c, err, "--config", path, "--heartbeat-profile", "game"), 0, "%s", err);
        cr_expect_eq(c.ping_interval_ms, 1000);
        cr_expect_eq(c.idle_timeout_ms, 15000);
}

Test(config_file, listen_sources_replace_each_other)
{
        tw_config c;
        char err[256];

        write_file("listen :9001\nlisten [::1]:9002\n");
        cr_assert_eq(PARSE(&c, err, "--config", path), 0, "%s", err);
        cr_assert_eq(c.nlisten, 2);
        cr_expect_str_eq(listen_str(&c.listen[0]), "0.0.0.0:9001");
        cr_expect_str_eq(listen_str(&c.listen[1]), "[::1]:9002");

        cr_assert_eq(PARSE(&c, err, "--config", path, "--listen", ":7000"), 0, "%s", err);
        cr_assert_eq(c.nlisten, 1);
        cr_expect_str_eq(listen_str(&c.listen[0]), "0.0.0.0:7000");

        cr_assert_eq(PARSE(&c, err, "--listen", ":7000", "--config", path), 0, "%s", err);
        cr_assert_eq(c.nlisten, 2);
        cr_expect_str_eq(listen_str(&c.listen[0]), "0.0.0.0:9001");
}

static void bad_file(const char *text, const char *want_after_path)
{
        tw_config c;
        char err[512], want[512];

        write_file(text);
        cr_expect_eq(PARSE(&c, err, "--config", path), -EINVAL, "accepted: %s", text);
        snprintf(want, sizeof want, "%s:%s", path, want_after_path);
        cr_expect_str_eq(err, want);
}

Test(config_file, bad_lines_name_file_and_line)
{
        bad_file("workers 2\n\n# c\nworkers abc\n", "4: workers: invalid number 'abc'");
        bad_file("ping-interval = 5x\n",
                 "1: ping-interval: invalid duration '5x' (use ms, s or m)");
        bad_file("workers 2\nfrobnicate 1\n", "2: frobnicate: unknown setting (see --help)");
        bad_file("workers\n", "1: workers: missing value");
        bad_file("workers =\n", "1: workers: missing value");
        bad_file("= 4\n", "1: expected 'flag value' or 'flag = value'");
        bad_file("help\n", "1: help: unknown setting (see --help)");
        bad_file("config /etc/other.conf\n", "1: config: not allowed inside a config file");
        bad_file("max-queue 4MB\n",
                 "1: max-queue: invalid size '4MB' (use bytes, KiB, MiB or GiB)");
        bad_file("listen 1.2.3.4\n", "1: listen: invalid address '1.2.3.4': missing :PORT");
        bad_file("workers 4 # four\n", "1: workers: invalid number '4 # four'");
        bad_file("tls-cert \n", "1: tls-cert: missing value");
}

Test(config_file, line_too_long)
{
        char big[1200];
        memset(big, ' ', sizeof big);
        memcpy(big, "workers 1", 9);
        big[sizeof big - 2] = '\n';
        big[sizeof big - 1] = '\0';
        bad_file(big, "1: line too long (at most 1022 bytes)");
}

Test(config_file, long_last_line_without_newline)
{
        tw_config c;
        char err[256], big[1024];

        /* exactly fills the read buffer with no newline: still a valid last line */
        memset(big, ' ', sizeof big);
        memcpy(big, "workers 3", 9);
        big[sizeof big - 1] = '\0';
        write_file(big);
        cr_assert_eq(PARSE(&c, err, "--config", path), 0, "%s", err);
        cr_expect_eq(c.workers, 3);
}

Test(config_file, cross_checks_see_file_values)
{
        tw_config c;
        char err[256];

        write_file("tick 1m\n");
        cr_expect_eq(PARSE(&c, err, "--config", path), -EINVAL);
        cr_expect_str_eq(err, "--tick: 1m is longer than the ping interval (30s)");

        write_file("tls-cert c.pem\n");
        cr_expect_eq(PARSE(&c, err, "--config", path), -EINVAL);
        cr_expect_str_eq(err, "--tls-cert: given without --tls-key");
}

Test(config_file, missing_file)
{
        tw_config c;
        char err[256];
        char missing[160];

        snprintf(missing, sizeof missing, "%s/absent.conf", dir);
        cr_expect_eq(PARSE(&c, err, "--config", missing), -EINVAL);
        cr_expect(strncmp(err, "--config: cannot open '", 23) == 0, "%s", err);
        cr_expect_not_null(strstr(err, "absent.conf"));
}

Test(config_file, empty_file)
{
        tw_config c;
        char err[256];

        write_file("");
        cr_assert_eq(PARSE(&c, err, "--config", path), 0, "%s", err);
        cr_expect_eq(c.ping_interval_ms, 30000);
        cr_expect_eq(c.nlisten, 1);
}
