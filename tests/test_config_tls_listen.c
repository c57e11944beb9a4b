/*
 * Which listeners serve TLS (DESIGN 7): --tls-cert/--tls-key without any --tls-listen
 * make the --listen addresses serve TLS, the default 127.0.0.1:8080 included; with a
 * --tls-listen also given, --listen stays plain; --tls-listen without a certificate is
 * still an error. The rule runs on the final values, so it holds whichever source (argv
 * or a --config file) gave which flag.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
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

static const char *listen_str(const tw_listen *l)
{
        static char buf[64];
        tw_listen_format(l, buf, sizeof buf);
        return buf;
}

/* "a:tls b:plain ..." for the whole list, so a failure shows every entry. */
static const char *shape(const tw_config *c)
{
        static char buf[256];
        size_t n = 0;
        buf[0] = '\0';
        for (unsigned i = 0; i < c->nlisten; i++)
                n +=
                    (size_t)snprintf(buf + n, sizeof buf - n, "%s%s:%s", i ? " " : "",
                                     listen_str(&c->listen[i]), c->listen[i].tls ? "tls" : "plain");
        return buf;
}

Test(config_tls_listen, no_certificate_all_plain)
{
        tw_config c;
        OK(&c, "--workers", "1");
        cr_expect_str_eq(shape(&c), "127.0.0.1:8080:plain");
        OK(&c, "--listen", ":9000", "--listen", "[::1]:9001");
        cr_expect_str_eq(shape(&c), "0.0.0.0:9000:plain [::1]:9001:plain");
}

Test(config_tls_listen, certificate_alone_makes_default_tls)
{
        tw_config c;
        OK(&c, "--tls-cert", "c.pem", "--tls-key", "k.pem");
        cr_expect_str_eq(shape(&c), "127.0.0.1:8080:tls");
}

Test(config_tls_listen, certificate_makes_every_listen_tls)
{
        tw_config c;
        OK(&c, "--listen", ":9000", "--tls-cert", "c.pem", "--listen", "[::1]:9001", "--tls-key",
           "k.pem");
        cr_expect_str_eq(shape(&c), "0.0.0.0:9000:tls [::1]:9001:tls");
        /* flags before the listens: same result, the rule runs at the end */
        OK(&c, "--tls-cert=c.pem", "--tls-key=k.pem", "--listen=127.0.0.1:0");
        cr_expect_str_eq(shape(&c), "127.0.0.1:0:tls");
}

Test(config_tls_listen, tls_listen_keeps_listen_plain)
{
        tw_config c;
        OK(&c, "--listen", "127.0.0.1:8080", "--tls-listen", "127.0.0.1:8443", "--tls-cert", "c",
           "--tls-key", "k");
        cr_expect_str_eq(shape(&c), "127.0.0.1:8080:plain 127.0.0.1:8443:tls");
        OK(&c, "--tls-listen", ":8443", "--listen", ":8080", "--listen", ":8081", "--tls-cert", "c",
           "--tls-key", "k");
        cr_expect_str_eq(shape(&c), "0.0.0.0:8443:tls 0.0.0.0:8080:plain 0.0.0.0:8081:plain");
}

Test(config_tls_listen, tls_listen_only)
{
        tw_config c;
        OK(&c, "--tls-listen", ":8443", "--tls-cert", "c", "--tls-key", "k");
        cr_expect_str_eq(shape(&c), "0.0.0.0:8443:tls"); /* replaced the default, as before */
}

Test(config_tls_listen, tls_listen_needs_certificate)
{
        tw_config c;
        char err[256];

        cr_expect_eq(PARSE(&c, err, "--tls-listen", ":8443"), -EINVAL);
        cr_expect_str_eq(err, "--tls-listen: 0.0.0.0:8443 needs --tls-cert and --tls-key");
        cr_expect_eq(PARSE(&c, err, "--listen", ":8080", "--tls-listen", "[::1]:8443"), -EINVAL);
        cr_expect_str_eq(err, "--tls-listen: [::1]:8443 needs --tls-cert and --tls-key");
}

Test(config_tls_listen, half_a_certificate_is_still_an_error)
{
        tw_config c;
        char err[256];

        cr_expect_eq(PARSE(&c, err, "--listen", ":8080", "--tls-cert", "c"), -EINVAL);
        cr_expect_str_eq(err, "--tls-cert: given without --tls-key");
        cr_expect_eq(PARSE(&c, err, "--tls-key", "k"), -EINVAL);
        cr_expect_str_eq(err, "--tls-key: given without --tls-cert");
}

/* ---- the same with a --config file ---- */

static char dir[64];
static char path[128];

static void make_dir(void)
{
        strcpy(dir, "/tmp/tw_tlslisten_XXXXXX");
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

Test(config_tls_listen, certificate_from_file, .init = make_dir, .fini = remove_dir)
{
        tw_config c;
        char err[256];

        write_file("tls-cert /etc/tickwire/cert.pem\ntls-key /etc/tickwire/key.pem\n");
        cr_assert_eq(PARSE(&c, err, "--config", path), 0, "%s", err);
        cr_expect_str_eq(shape(&c), "127.0.0.1:8080:tls");
        cr_assert_eq(PARSE(&c, err, "--listen", ":9000", "--config", path), 0, "%s", err);
        cr_expect_str_eq(shape(&c), "0.0.0.0:9000:tls");
}

Test(config_tls_listen, file_tls_listen_keeps_cli_listen_plain, .init = make_dir,
     .fini = remove_dir)
{
        tw_config c;
        char err[256];

        write_file("listen :8080\ntls-listen :8443\ntls-cert c.pem\ntls-key k.pem\n");
        cr_assert_eq(PARSE(&c, err, "--config", path), 0, "%s", err);
        cr_expect_str_eq(shape(&c), "0.0.0.0:8080:plain 0.0.0.0:8443:tls");

        /* A --listen after the file replaces its whole list, --tls-listen entry included:
         * what is left is a certificate and no --tls-listen, so it serves TLS. */
        cr_assert_eq(PARSE(&c, err, "--config", path, "--listen", "127.0.0.1:9000"), 0, "%s", err);
        cr_expect_str_eq(shape(&c), "127.0.0.1:9000:tls");

        /* ... and a --tls-listen beside it on the command line keeps it plain again */
        cr_assert_eq(PARSE(&c, err, "--config", path, "--listen", "127.0.0.1:9000", "--tls-listen",
                           "127.0.0.1:9443"),
                     0, "%s", err);
        cr_expect_str_eq(shape(&c), "127.0.0.1:9000:plain 127.0.0.1:9443:tls");
}

Test(config_tls_listen, file_tls_listen_without_certificate, .init = make_dir, .fini = remove_dir)
{
        tw_config c;
        char err[256];

        write_file("tls-listen :8443\n");
        cr_expect_eq(PARSE(&c, err, "--config", path), -EINVAL);
        cr_expect_str_eq(err, "--tls-listen: 0.0.0.0:8443 needs --tls-cert and --tls-key");
        cr_assert_eq(PARSE(&c, err, "--config", path, "--tls-cert", "c", "--tls-key", "k"), 0, "%s",
                     err);
        cr_expect_str_eq(shape(&c), "0.0.0.0:8443:tls");
}
