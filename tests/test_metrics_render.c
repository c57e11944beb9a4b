/*
 * Prometheus rendering: two workers' counters are summed, the histogram is cumulative
 * with matching +Inf/_count and an exact _sum, a too-small buffer returns the length
 * needed, and every line is valid text exposition 0.0.4.
 */
#include <criterion/criterion.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tickwire/metrics.h"

static tw_metrics w0, w1;

static void fill(void)
{
        memset(&w0, 0, sizeof w0);
        memset(&w1, 0, sizeof w1);
        TW_ADD(w0.connections, 3);
        TW_ADD(w1.connections, 4);
        TW_ADD(w0.accepted, 10);
        TW_ADD(w1.accepted, 32);
        TW_INC(w0.handshake_failures[TW_HS_TIMEOUT]);
        TW_ADD(w1.handshake_failures[TW_HS_TIMEOUT], 2);
        TW_ADD(w1.handshake_failures[TW_HS_CLOSED], 5);
        TW_INC(w0.closes[tw_close_slot_of(1000)]);
        TW_INC(w1.closes[tw_close_slot_of(1000)]);
        TW_ADD(w1.closes[tw_close_slot_of(4000)], 6);
        TW_ADD(w0.heartbeat_timeouts, 2);
        TW_ADD(w1.heartbeat_timeouts, 1);
        TW_ADD(w0.pings_sent, 100);
        TW_ADD(w0.pongs_received, 99);
        TW_ADD(w0.messages_received, 7);
        TW_ADD(w1.messages_sent, 1000000);
        TW_ADD(w0.bytes_received, 1);
        TW_ADD(w1.bytes_received, 2);
        TW_ADD(w0.bytes_sent, 1ull << 40);
        TW_ADD(w1.bytes_sent, 1ull << 40);
        TW_INC(w0.limit_hits);
        TW_ADD(w1.enobufs, 9);
        TW_ADD(w0.cq_overflows, 4);
        TW_ADD(w0.slow_consumer[1], 2);
        TW_ADD(w1.slow_consumer[0], 8);
        TW_ADD(w1.messages_published, 77);
        TW_ADD(w0.messages_dropped, 5);
        tw_histogram_observe(&w0.detection, 5000);      /* le=0.01 */
        tw_histogram_observe(&w1.detection, 90005000);  /* le=120 */
        tw_histogram_observe(&w1.detection, 700000000); /* +Inf */
        /* a gauge that went down on one worker still sums right */
        TW_INC(w1.connections);
        TW_DEC(w1.connections);
}

static char *render(int draining)
{
        tw_metrics *ws[] = {&w0, &w1};
        size_t need = tw_metrics_render(ws, 2, draining, NULL, 0);
        char *buf = malloc(need + 1);
        cr_assert_not_null(buf);
        size_t got = tw_metrics_render(ws, 2, draining, buf, need + 1);
        cr_assert_eq(got, need);
        cr_assert_eq(strlen(buf), need);
        return buf;
}

/* The value of the sample line that starts with `series` followed by a blank. */
static const char *value_of(const char *text, const char *series)
{
        size_t n = strlen(series);
        for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
                if (strncmp(l, series, n) == 0 && l[n] == ' ') {
                        static char v[64];
                        const char *eol = strchr(l + n + 1, '\n');
                        snprintf(v, sizeof v, "%.*s", (int)(eol - (l + n + 1)), l + n + 1);
                        return v;
                }
        return NULL;
}

#define EXPECT_SAMPLE(text, series, want)                                                          \
        do {                                                                                       \
                const char *v_ = value_of(text, series);                                           \
                cr_expect_not_null(v_, "no sample %s", series);                                    \
                if (v_)                                                                            \
                        cr_expect_str_eq(v_, want, "%s = %s, want %s", series, v_, want);          \
        } while (0)

TestSuite(metrics_render, .init = fill);

Test(metrics_render, sums_two_workers)
{
        char *t = render(0);
        EXPECT_SAMPLE(t, "tickwire_connections", "7");
        EXPECT_SAMPLE(t, "tickwire_connections_accepted_total", "42");
        EXPECT_SAMPLE(t, "tickwire_handshake_failures_total{reason=\"timeout\"}", "3");
        EXPECT_SAMPLE(t, "tickwire_handshake_failures_total{reason=\"closed\"}", "5");
        EXPECT_SAMPLE(t, "tickwire_handshake_failures_total{reason=\"bad_request\"}", "0");
        EXPECT_SAMPLE(t, "tickwire_closes_total{code=\"1000\"}", "2");
        EXPECT_SAMPLE(t, "tickwire_closes_total{code=\"other\"}", "6");
        EXPECT_SAMPLE(t, "tickwire_closes_total{code=\"1013\"}", "0");
        EXPECT_SAMPLE(t, "tickwire_heartbeat_timeouts_total", "3");
        EXPECT_SAMPLE(t, "tickwire_pings_sent_total", "100");
        EXPECT_SAMPLE(t, "tickwire_pongs_received_total", "99");
        EXPECT_SAMPLE(t, "tickwire_messages_received_total", "7");
        EXPECT_SAMPLE(t, "tickwire_messages_sent_total", "1000000");
        EXPECT_SAMPLE(t, "tickwire_bytes_received_total", "3");
        EXPECT_SAMPLE(t, "tickwire_bytes_sent_total", "2199023255552");
        EXPECT_SAMPLE(t, "tickwire_limit_hits_total", "1");
        EXPECT_SAMPLE(t, "tickwire_recv_enobufs_total", "9");
        EXPECT_SAMPLE(t, "tickwire_cq_overflows_total", "4");
        EXPECT_SAMPLE(t, "tickwire_slow_consumer_total{action=\"conflate\"}", "8");
        EXPECT_SAMPLE(t, "tickwire_slow_consumer_total{action=\"disconnect\"}", "2");
        EXPECT_SAMPLE(t, "tickwire_messages_published_total", "77");
        EXPECT_SAMPLE(t, "tickwire_messages_dropped_total", "5");
        EXPECT_SAMPLE(t, "tickwire_draining", "0");
        EXPECT_SAMPLE(t, "tickwire_workers", "2");
        free(t);
}

Test(metrics_render, every_label_value_present)
{
        static const char *const series[] = {
            "reason=\"bad_request\"", "reason=\"not_upgrade\"", "reason=\"too_large\"",
            "reason=\"not_found\"",   "reason=\"timeout\"",     "reason=\"limit\"",
            "reason=\"auth\"",        "reason=\"tls\"",         "reason=\"closed\"",
            "reason=\"origin\"",      "code=\"1000\"",          "code=\"1001\"",
            "code=\"1002\"",          "code=\"1003\"",          "code=\"1005\"",
            "code=\"1006\"",          "code=\"1007\"",          "code=\"1008\"",
            "code=\"1009\"",          "code=\"1010\"",          "code=\"1011\"",
            "code=\"1013\"",          "code=\"other\"",
        };
        char *t = render(0);
        for (size_t i = 0; i < sizeof series / sizeof series[0]; i++)
                cr_expect_not_null(strstr(t, series[i]), "missing %s", series[i]);
        free(t);
}

Test(metrics_render, draining_gauge)
{
        char *t = render(5);
        EXPECT_SAMPLE(t, "tickwire_draining", "1");
        free(t);
}

Test(metrics_render, histogram_cumulative)
{
        char *t = render(0);
        EXPECT_SAMPLE(t, "tickwire_detection_seconds_bucket{le=\"0.01\"}", "1");
        EXPECT_SAMPLE(t, "tickwire_detection_seconds_bucket{le=\"0.025\"}", "1");
        EXPECT_SAMPLE(t, "tickwire_detection_seconds_bucket{le=\"90\"}", "1");
        EXPECT_SAMPLE(t, "tickwire_detection_seconds_bucket{le=\"120\"}", "2");
        EXPECT_SAMPLE(t, "tickwire_detection_seconds_bucket{le=\"600\"}", "2");
        EXPECT_SAMPLE(t, "tickwire_detection_seconds_bucket{le=\"+Inf\"}", "3");
        EXPECT_SAMPLE(t, "tickwire_detection_seconds_count", "3");
        /* 0.005 + 90.005 + 700 */
        EXPECT_SAMPLE(t, "tickwire_detection_seconds_sum", "790.010000");

        /* all 21 buckets present, in order, never decreasing */
        unsigned long prev = 0, nb = 0;
        for (const char *p = t; (p = strstr(p, "tickwire_detection_seconds_bucket{")); p++) {
                const char *sp = strchr(p, ' ');
                unsigned long v = strtoul(sp + 1, NULL, 10);
                cr_expect_geq(v, prev, "bucket decreases at %.40s", p);
                prev = v;
                nb++;
        }
        cr_expect_eq(nb, TW_DETECT_BUCKETS + 1);
        free(t);
}

Test(metrics_render, empty_and_null_workers)
{
        tw_metrics *ws[] = {&w0, NULL};
        char buf[16384];
        size_t n = tw_metrics_render(ws, 2, 0, buf, sizeof buf);
        cr_assert_lt(n, sizeof buf);
        EXPECT_SAMPLE(buf, "tickwire_connections", "3");
        n = tw_metrics_render(NULL, 0, 0, buf, sizeof buf);
        cr_assert_lt(n, sizeof buf);
        EXPECT_SAMPLE(buf, "tickwire_connections", "0");
        EXPECT_SAMPLE(buf, "tickwire_detection_seconds_sum", "0.000000");
        EXPECT_SAMPLE(buf, "tickwire_workers", "0");
}

Test(metrics_render, cap_too_small_returns_needed)
{
        tw_metrics *ws[] = {&w0, &w1};
        char *full = render(0);
        size_t need = strlen(full);
        char small[100];

        memset(small, 'x', sizeof small);
        cr_expect_eq(tw_metrics_render(ws, 2, 0, small, sizeof small), need);
        cr_expect_not_null(memchr(small, '\0', sizeof small), "not terminated");
        cr_expect_eq(tw_metrics_render(ws, 2, 0, NULL, 0), need);

        /* snprintf's rule: complete only when the result is below cap */
        char *exact = malloc(need + 1);
        memset(exact, 'x', need + 1);
        cr_expect_eq(tw_metrics_render(ws, 2, 0, exact, need), need);
        cr_expect_eq(exact[need - 1], '\0');
        cr_expect_eq(tw_metrics_render(ws, 2, 0, exact, need + 1), need);
        cr_expect_str_eq(exact, full);

        /* a buffer one byte larger than needed changes nothing */
        char *roomy = malloc(need + 2);
        cr_expect_eq(tw_metrics_render(ws, 2, 0, roomy, need + 2), need);
        cr_expect_str_eq(roomy, full);
        free(roomy);
        free(exact);
        free(full);
}

/* Text exposition 0.0.4: '# HELP name text', '# TYPE name type' once per family before
 * its samples, and samples 'name{label="value",...} value'. */
Test(metrics_render, valid_exposition)
{
        regex_t help, type, sample;
        cr_assert_eq(regcomp(&help, "^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) [^\n]+$", REG_EXTENDED), 0);
        cr_assert_eq(regcomp(&type,
                             "^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) "
                             "(counter|gauge|histogram|summary|untyped)$",
                             REG_EXTENDED),
                     0);
        cr_assert_eq(regcomp(&sample,
                             "^([a-zA-Z_:][a-zA-Z0-9_:]*)"
                             "(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"[^\"\\\\\n]*\""
                             "(,[a-zA-Z_][a-zA-Z0-9_]*=\"[^\"\\\\\n]*\")*\\})?"
                             " (-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?|[-+]Inf|NaN)$",
                             REG_EXTENDED),
                     0);

        char *t = render(1);
        cr_assert_gt(strlen(t), 0);
        cr_assert_eq(t[strlen(t) - 1], '\n', "must end with a newline");

        char typed[64][80];
        size_t ntyped = 0, nsamples = 0;
        char family[80] = "", ftype[16] = "";
        char *save = NULL;
        for (char *l = strtok_r(t, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                regmatch_t m[4];
                if (strncmp(l, "# HELP ", 7) == 0) {
                        cr_expect_eq(regexec(&help, l, 2, m, 0), 0, "bad HELP: %s", l);
                } else if (strncmp(l, "# TYPE ", 7) == 0) {
                        cr_assert_eq(regexec(&type, l, 3, m, 0), 0, "bad TYPE: %s", l);
                        snprintf(family, sizeof family, "%.*s", (int)(m[1].rm_eo - m[1].rm_so),
                                 l + m[1].rm_so);
                        snprintf(ftype, sizeof ftype, "%.*s", (int)(m[2].rm_eo - m[2].rm_so),
                                 l + m[2].rm_so);
                        for (size_t i = 0; i < ntyped; i++)
                                cr_expect_str_neq(typed[i], family, "TYPE twice: %s", family);
                        cr_assert_lt(ntyped, 64);
                        strcpy(typed[ntyped++], family);
                } else {
                        cr_assert_eq(regexec(&sample, l, 2, m, 0), 0, "bad sample: '%s'", l);
                        char name[80];
                        snprintf(name, sizeof name, "%.*s", (int)(m[1].rm_eo - m[1].rm_so),
                                 l + m[1].rm_so);
                        /* the sample belongs to the family typed just before it */
                        size_t fl = strlen(family);
                        bool ok = strcmp(name, family) == 0;
                        if (strcmp(ftype, "histogram") == 0)
                                ok = strncmp(name, family, fl) == 0 &&
                                     (!strcmp(name + fl, "_bucket") || !strcmp(name + fl, "_sum") ||
                                      !strcmp(name + fl, "_count"));
                        cr_expect(ok, "sample %s outside its family %s", name, family);
                        cr_expect_eq(strncmp(name, "tickwire_", 9), 0, "%s: no prefix", name);
                        if (!strcmp(ftype, "counter"))
                                cr_expect(fl > 6 && !strcmp(family + fl - 6, "_total"),
                                          "counter %s lacks _total", family);
                        nsamples++;
                }
        }
        /* 35 families: 30 with one sample, 3 labelled (10 reasons, 13 codes, 2 actions) and
         * the two histograms (21 buckets, _sum, _count each) */
        cr_expect_eq(ntyped, 35);
        cr_expect_eq(nsamples, 30 + 10 + 13 + 2 + 23 + 23);
        regfree(&help);
        regfree(&type);
        regfree(&sample);
        free(t);
}
