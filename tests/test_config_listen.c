/*
 * Listen addresses: IPv4, bracketed IPv6, ":PORT" as 0.0.0.0, port 0, and the forms that
 * must be refused; tw_listen_format prints them back the way they are written.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "tickwire/config.h"

static void roundtrip(const char *in, const char *want)
{
        tw_listen l;
        char out[64];

        cr_assert_eq(tw_parse_listen(in, &l), 0, "'%s' should parse", in);
        tw_listen_format(&l, out, sizeof out);
        cr_expect_str_eq(out, want, "'%s' formats as '%s', want '%s'", in, out, want);
        cr_expect_not(l.tls);
}

Test(config_listen, ipv4)
{
        tw_listen l;
        cr_assert_eq(tw_parse_listen("127.0.0.1:8080", &l), 0);
        const struct sockaddr_in *a = (const struct sockaddr_in *)&l.addr;
        cr_expect_eq(a->sin_family, AF_INET);
        cr_expect_eq(ntohs(a->sin_port), 8080);
        cr_expect_eq(ntohl(a->sin_addr.s_addr), INADDR_LOOPBACK);
        cr_expect_eq(l.addrlen, sizeof(struct sockaddr_in));
        roundtrip("127.0.0.1:8080", "127.0.0.1:8080");
        roundtrip("10.1.2.3:65535", "10.1.2.3:65535");
}

Test(config_listen, ipv6)
{
        tw_listen l;
        cr_assert_eq(tw_parse_listen("[::1]:8080", &l), 0);
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&l.addr;
        cr_expect_eq(a->sin6_family, AF_INET6);
        cr_expect_eq(ntohs(a->sin6_port), 8080);
        cr_expect(IN6_IS_ADDR_LOOPBACK(&a->sin6_addr));
        cr_expect_eq(l.addrlen, sizeof(struct sockaddr_in6));
        roundtrip("[::1]:8080", "[::1]:8080");
        roundtrip("[::]:443", "[::]:443");
        roundtrip("[2001:db8:0:0::7]:1", "[2001:db8::7]:1");
        roundtrip("[::ffff:10.0.0.1]:9", "[::ffff:10.0.0.1]:9");
}

Test(config_listen, port_only_is_any_ipv4)
{
        tw_listen l;
        cr_assert_eq(tw_parse_listen(":8080", &l), 0);
        const struct sockaddr_in *a = (const struct sockaddr_in *)&l.addr;
        cr_expect_eq(a->sin_family, AF_INET);
        cr_expect_eq(a->sin_addr.s_addr, htonl(INADDR_ANY));
        roundtrip(":8080", "0.0.0.0:8080");
}

Test(config_listen, port_zero_allowed)
{
        roundtrip("127.0.0.1:0", "127.0.0.1:0");
        roundtrip("[::1]:0", "[::1]:0");
        roundtrip(":0", "0.0.0.0:0");
}

Test(config_listen, rejections)
{
        static const char *const bad[] = {
            "",
            "127.0.0.1",          /* no port */
            "127.0.0.1:",         /* empty port */
            "127.0.0.1:65536",    /* port too big */
            "127.0.0.1:99999999", /* way too big */
            "127.0.0.1:-1",
            "127.0.0.1:80a",
            "127.0.0.1: 80",
            "127.0.0.1:+80",
            "localhost:8080", /* names are not resolved */
            "1.2.3:80",
            "256.1.1.1:80",
            "::1:8080",  /* IPv6 without brackets */
            "[::1]8080", /* no colon after ']' */
            "[::1:8080", /* no ']' */
            "[]:8080",
            "[127.0.0.1]:80", /* v4 inside brackets */
            "[fe80::1%eth0]:80",
            "[::1]:",
            "8080",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                tw_listen l;
                cr_expect_eq(tw_parse_listen(bad[i], &l), -EINVAL, "'%s' should be refused",
                             bad[i]);
        }
}

Test(config_listen, format_truncates_safely)
{
        tw_listen l;
        char out[8];

        cr_assert_eq(tw_parse_listen("[2001:db8::1]:8080", &l), 0);
        memset(out, 'x', sizeof out);
        tw_listen_format(&l, out, sizeof out);
        cr_expect_eq(out[sizeof out - 1], '\0');
        cr_expect_eq(strncmp(out, "[2001:d", 7), 0);
}

Test(config_listen, config_fields)
{
        tw_config c;
        char err[256];
        char *argv[] = {"tickwire", "--listen", "[::1]:0", "--listen=:9000", NULL};

        cr_assert_eq(tw_config_parse(&c, 4, argv, NULL, err, sizeof err), 0, "%s", err);
        cr_assert_eq(c.nlisten, 2);
        char out[64];
        tw_listen_format(&c.listen[0], out, sizeof out);
        cr_expect_str_eq(out, "[::1]:0");
        tw_listen_format(&c.listen[1], out, sizeof out);
        cr_expect_str_eq(out, "0.0.0.0:9000");
}
