/*
 * --help: returns 1, prints to the stream it is given, and lists every flag of the
 * command line with its default, no line wider than a terminal.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tickwire/config.h"

static char *help_text(const char *flag)
{
        tw_config c;
        char err[128];
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);
        char *argv[] = {"tickwire", (char *)flag, NULL};

        cr_assert_not_null(out);
        int rc = tw_config_parse(&c, 2, argv, out, err, sizeof err);
        fclose(out);
        cr_assert_eq(rc, 1, "%s returned %d", flag, rc);
        return buf;
}

/* The line of --help that documents `flag` (which must be followed by a blank). */
static const char *line_of(const char *text, const char *flag)
{
        char needle[64];
        snprintf(needle, sizeof needle, "  %s ", flag);
        return strstr(text, needle);
}

Test(config_help, lists_every_flag)
{
        static const char *const flags[] = {
            "--listen",
            "--tls-listen",
            "--workers",
            "--ping-interval",
            "--idle-timeout",
            "--heartbeat-profile",
            "--tick",
            "--handshake-timeout",
            "--close-timeout",
            "--drain-timeout",
            "--reconnect-spread",
            "--max-connections",
            "--max-message",
            "--max-queue",
            "--slow-consumer",
            "--history",
            "--max-subscriptions",
            "--max-topics",
            "--max-history-bytes",
            "--max-message-rate",
            "--max-connections-per-ip",
            "--tls-cert",
            "--tls-key",
            "--jwt-secret",
            "--jwt-audience",
            "--jwt-issuer",
            "--token-grace",
            "--publish-token",
            "--config",
            "--help",
        };
        char *text = help_text("--help");
        for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
                cr_expect_not_null(line_of(text, flags[i]), "--help lacks %s", flags[i]);
        free(text);
}

Test(config_help, shows_defaults)
{
        static const struct {
                const char *flag, *def;
        } want[] = {
            {"--listen", "[127.0.0.1:8080]"},
            {"--workers", "[0]"},
            {"--ping-interval", "[30s]"},
            {"--idle-timeout", "[90s]"},
            {"--tick", "[10ms]"},
            {"--handshake-timeout", "[5s]"},
            {"--close-timeout", "[2s]"},
            {"--drain-timeout", "[5s]"},
            {"--reconnect-spread", "[5s]"},
            {"--max-connections", "[0]"},
            {"--max-message", "[1MiB]"},
            {"--max-queue", "[4MiB]"},
            {"--slow-consumer", "[conflate]"},
            {"--history", "[1024]"},
            {"--max-subscriptions", "[1024]"},
            {"--max-topics", "[100000]"},
            {"--max-history-bytes", "[256MiB]"},
            {"--max-message-rate", "[off]"},
            {"--max-connections-per-ip", "[off]"},
            {"--token-grace", "[10s]"},
            {"--jwt-audience", "[none: not checked]"},
            {"--jwt-issuer", "[none: not checked]"},
        };
        char *text = help_text("-h");
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
                const char *l = line_of(text, want[i].flag);
                cr_assert_not_null(l, "no line for %s", want[i].flag);
                const char *eol = strchr(l, '\n');
                const char *d = strstr(l, want[i].def);
                cr_expect(d && d < eol, "%s: default %s not on its line", want[i].flag,
                          want[i].def);
        }
        free(text);
}

Test(config_help, explains_units_and_file)
{
        char *text = help_text("--help");
        cr_expect_not_null(strstr(text, "KiB"));
        cr_expect_not_null(strstr(text, "ms"));
        cr_expect_not_null(strstr(text, "Config file"));
        cr_expect_not_null(strstr(text, "im 15s/45s"));
        free(text);
}

Test(config_help, fits_100_columns)
{
        char *text = help_text("--help");
        for (char *l = text, *eol; *l; l = eol + 1) {
                eol = strchr(l, '\n');
                cr_assert_not_null(eol, "text does not end in a newline");
                cr_expect_leq(eol - l, 100, "too wide: %.*s", (int)(eol - l), l);
        }
        free(text);
}

/* The heading a flag's line sits under: the last unindented "Name:" line above it. */
static void expect_group(const char *text, const char *flag, const char *group)
{
        const char *l = line_of(text, flag), *g = NULL;
        cr_assert_not_null(l, "no line for %s", flag);
        for (const char *p = text; p < l; p = strchr(p, '\n') + 1) {
                const char *eol = strchr(p, '\n');
                if (*p != ' ' && eol > p && eol[-1] == ':')
                        g = p;
        }
        cr_assert_not_null(g, "%s has no heading", flag);
        size_t n = strlen(group);
        cr_expect(strncmp(g, group, n) == 0 && g[n] == ':' && g[n + 1] == '\n',
                  "%s is under '%.*s', want '%s'", flag, (int)(strchr(g, '\n') - g), g, group);
}

Test(config_help, new_flags_in_their_groups)
{
        char *text = help_text("--help");
        expect_group(text, "--max-topics", "Limits");
        expect_group(text, "--max-history-bytes", "Limits");
        expect_group(text, "--max-message-rate", "Limits");
        expect_group(text, "--max-connections-per-ip", "Limits");
        expect_group(text, "--token-grace", "TLS and auth");
        expect_group(text, "--jwt-audience", "TLS and auth");
        expect_group(text, "--jwt-issuer", "TLS and auth");
        expect_group(text, "--listen", "Listening");
        free(text);
}

/* Each flag is documented on one line: the next line starts another flag or a blank. */
Test(config_help, new_flags_one_line_each)
{
        static const char *const flags[] = {
            "--max-topics",       "--max-history-bytes",
            "--max-message-rate", "--max-connections-per-ip",
            "--token-grace",      "--jwt-audience",
            "--jwt-issuer",
        };
        char *text = help_text("--help");
        for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
                const char *l = line_of(text, flags[i]);
                cr_assert_not_null(l, "no line for %s", flags[i]);
                const char *next = strchr(l, '\n') + 1;
                cr_expect(strncmp(next, "  --", 4) == 0 || *next == '\n', "%s continues: %.40s",
                          flags[i], next);
        }
        free(text);
}

Test(config_help, explains_tls_on_listen)
{
        char *text = help_text("--help");
        cr_expect_not_null(strstr(text, "with --tls-cert/--tls-key and no --tls-listen, the "
                                        "--listen addresses\n  (the default one too) serve TLS; "
                                        "with a --tls-listen, --listen stays plain."),
                           "%s", text);
        const char *l = line_of(text, "--listen");
        cr_assert_not_null(l);
        cr_expect(strncmp(l, "  --listen ADDR", 15) == 0);
        const char *eol = strchr(l, '\n');
        const char *plain = strstr(l, "plain");
        cr_expect(!plain || plain > eol, "--listen still says it is plain");
        free(text);
}
