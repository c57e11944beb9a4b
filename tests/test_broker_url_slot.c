/*
 * The cluster's pure parts: --broker URLs (config) and Redis Cluster's key slots (broker).
 * Slots are checked against values Redis itself computes (CLUSTER KEYSLOT), including the
 * hash-tag rule that keeps a topic's keys and channel on one shard.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "tickwire/broker.h"
#include "tickwire/config.h"

static tw_broker_cfg ok(const char *url)
{
        tw_broker_cfg b;
        char err[128] = "";

        cr_assert_eq(tw_config_parse_broker(url, &b, err, sizeof err), 0, "%s: %s", url, err);
        return b;
}

static void bad(const char *url, const char *why)
{
        tw_broker_cfg b = {.kind = 99};
        char err[128] = "";

        cr_expect_eq(tw_config_parse_broker(url, &b, err, sizeof err), -1, "%s accepted", url);
        cr_expect_eq(b.kind, 99, "%s: output written on failure", url);
        cr_expect_not_null(strstr(err, why), "%s: reason '%s' lacks '%s'", url, err, why);
}

Test(broker_url, standalone)
{
        tw_broker_cfg b = ok("redis://127.0.0.1:6379");

        cr_expect_eq(b.kind, TW_BROKER_REDIS);
        cr_expect_eq(b.nhosts, 1);
        cr_expect_str_eq(b.hosts[0].host, "127.0.0.1");
        cr_expect_eq(b.hosts[0].port, 6379);
        cr_expect_eq(b.db, 0);
        b = ok("redis://localhost:7000/3");
        cr_expect_str_eq(b.hosts[0].host, "localhost");
        cr_expect_eq(b.db, 3);
}

Test(broker_url, cluster_seeds)
{
        tw_broker_cfg b = ok("redis-cluster://10.0.0.1:7000,10.0.0.2:7001,h3:7002");

        cr_expect_eq(b.kind, TW_BROKER_CLUSTER);
        cr_expect_eq(b.nhosts, 3);
        cr_expect_str_eq(b.hosts[2].host, "h3");
        cr_expect_eq(b.hosts[1].port, 7001);
}

Test(broker_url, refused)
{
        bad("http://x:1", "redis://");
        bad("redis://x", "HOST:PORT");
        bad("redis://:6379", "HOST:PORT");
        bad("redis://x:0", "bad port");
        bad("redis://x:65536", "bad port");
        bad("redis://x:12ab", "bad port");
        bad("redis://a:1,b:2", "one host");
        bad("redis://x:1/16", "database");
        bad("redis://x:1/", "database");
        bad("redis-cluster://x:1/2", "database");
        bad("redis-cluster://a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8,i:9", "at most");
        bad("redis://x:1?db=2", "bad port");
}

Test(broker_slot, matches_redis)
{
        /* CLUSTER KEYSLOT on redis-server 7.0 */
        cr_expect_eq(tw_broker_slot((tw_span){"foo", 3}), 12182);
        cr_expect_eq(tw_broker_slot((tw_span){"hello", 5}), 866);
        cr_expect_eq(tw_broker_slot((tw_span){"somekey", 7}), 11058);
        cr_expect_eq(tw_broker_slot((tw_span){"AAPL", 4}), 13634);
        cr_expect_eq(tw_broker_slot((tw_span){"tw:{AAPL}:meta", 14}), 13634);
}

Test(broker_slot, hash_tag_keeps_a_topic_together)
{
        const char *keys[] = {"tw:{AAPL}:meta", "tw:{AAPL}:hist", "tw:{AAPL}:id:o-1", "tw:{AAPL}"};
        unsigned s = tw_broker_slot((tw_span){"AAPL", 4});

        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
                cr_expect_eq(tw_broker_slot((tw_span){keys[i], strlen(keys[i])}), s, "%s", keys[i]);
        /* An empty tag {} is no tag: the whole key is hashed (values from Redis). */
        cr_expect_eq(tw_broker_slot((tw_span){"{}x", 3}), 10595);
        cr_expect_eq(tw_broker_slot((tw_span){"a{}b", 4}), 13694);
}
