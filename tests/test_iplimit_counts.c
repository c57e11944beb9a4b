/*
 * test_iplimit_counts — connections per address: up to the limit then -EBUSY, a release
 * makes room, IPv4 and its IPv4-mapped IPv6 form are one client, other addresses are
 * independent, indexes stay valid while the table grows, and a freed entry is reused.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "tickwire/iplimit.h"

static struct sockaddr_storage v4(uint32_t host)
{
        struct sockaddr_storage ss;
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;

        memset(&ss, 0, sizeof(ss));
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(host);
        return ss;
}

static struct sockaddr_storage v6(const char *text)
{
        struct sockaddr_storage ss;
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

        memset(&ss, 0, sizeof(ss));
        a->sin6_family = AF_INET6;
        cr_assert_eq(inet_pton(AF_INET6, text, &a->sin6_addr), 1);
        return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

Test(iplimit, limit_then_busy_then_release)
{
        tw_iplimit *t = tw_iplimit_new(3);
        struct sockaddr_storage a = v4(0x7f000001);
        int32_t idx[3];

        for (int i = 0; i < 3; i++) {
                idx[i] = tw_iplimit_acquire(t, SA(a));
                cr_assert_geq(idx[i], 0);
                cr_assert_eq(idx[i], idx[0], "one entry per address");
        }
        cr_assert_eq(tw_iplimit_acquire(t, SA(a)), -EBUSY);
        cr_assert_eq(tw_iplimit_count(t, SA(a)), 3);
        tw_iplimit_release(t, idx[1]);
        cr_assert_eq(tw_iplimit_count(t, SA(a)), 2);
        cr_assert_geq(tw_iplimit_acquire(t, SA(a)), 0);
        cr_assert_eq(tw_iplimit_acquire(t, SA(a)), -EBUSY);
        tw_iplimit_free(t);
}

Test(iplimit, v4_mapped_is_the_same_client)
{
        tw_iplimit *t = tw_iplimit_new(2);
        struct sockaddr_storage a = v4(0x0a000001), m = v6("::ffff:10.0.0.1"),
                                o = v6("2001:db8::1");

        cr_assert_geq(tw_iplimit_acquire(t, SA(a)), 0);
        cr_assert_geq(tw_iplimit_acquire(t, SA(m)), 0);
        cr_assert_eq(tw_iplimit_acquire(t, SA(a)), -EBUSY);
        cr_assert_eq(tw_iplimit_acquire(t, SA(m)), -EBUSY);
        cr_assert_geq(tw_iplimit_acquire(t, SA(o)), 0, "another address is not limited");
        tw_iplimit_free(t);
}

Test(iplimit, indexes_survive_growth_and_entries_are_reused)
{
        enum { N = 5000 };
        static int32_t idx[N];
        tw_iplimit *t = tw_iplimit_new(1);

        for (uint32_t i = 0; i < N; i++) {
                struct sockaddr_storage a = v4(0x0b000000 + i);

                idx[i] = tw_iplimit_acquire(t, SA(a));
                cr_assert_geq(idx[i], 0);
        }
        /* Every address still counted once after all the rehashing. */
        for (uint32_t i = 0; i < N; i++) {
                struct sockaddr_storage a = v4(0x0b000000 + i);

                cr_assert_eq(tw_iplimit_count(t, SA(a)), 1, "address %u", i);
                cr_assert_eq(tw_iplimit_acquire(t, SA(a)), -EBUSY);
        }
        for (uint32_t i = 0; i < N; i += 2)
                tw_iplimit_release(t, idx[i]);
        for (uint32_t i = 0; i < N; i++) {
                struct sockaddr_storage a = v4(0x0b000000 + i);

                cr_assert_eq(tw_iplimit_count(t, SA(a)), i % 2, "address %u", i);
        }
        /* Freed entries are handed out again: no index beyond those used. */
        for (uint32_t i = 0; i < N / 2; i++) {
                struct sockaddr_storage a = v4(0x0c000000 + i);
                int32_t k = tw_iplimit_acquire(t, SA(a));

                cr_assert(k >= 0 && k < N, "index %d", k);
        }
        tw_iplimit_free(t);
}

Test(iplimit, unknown_family)
{
        tw_iplimit *t = tw_iplimit_new(1);
        struct sockaddr_storage ss;

        memset(&ss, 0, sizeof(ss));
        ss.ss_family = AF_UNIX;
        cr_assert_eq(tw_iplimit_acquire(t, SA(ss)), -EAFNOSUPPORT);
        tw_iplimit_free(t);
}
