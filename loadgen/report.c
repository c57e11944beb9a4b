/*
 * Output. The JSON is written by hand (a few dozen fixed keys); numbers that do not
 * exist for a scenario are written as 0 or null rather than left out, so scripts can
 * index the DESIGN 7 fields without checking first.
 */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static double q(const lg_samples *s, double p)
{
        return lg_samples_quantile(s, p);
}

#define U(x) ((unsigned long long)(x))

static const char *const via_names[] = {"http", "ws"};

/* The latency the DESIGN 7 field means: end-to-end under pub/sub, the app ping round trip
 * otherwise. */
static const lg_hist *latency_of(const lg_summary *s)
{
        return s->pubsub ? &s->e2e_us : &s->latency_us;
}

/* More than one target: the per-target figures are reported (a single-target report
 * stays as it was). */
static bool multi(const lg_summary *s)
{
        return s->o->ntargets > 1;
}

static void table_pubsub(FILE *out, const lg_summary *s)
{
        const lg_opts *o = s->o;
        const lg_hist *h = &s->e2e_us;

        fprintf(out, "| topics / zipf s / publishers / via | %u / %.2f / %u / %s |\n", o->topics,
                o->zipf_s, o->publishers, via_names[o->pub_via]);
        fprintf(out, "| topic messages delivered | %llu (%.0f /s over %.1f s) |\n",
                U(TW_GET(s->c.topic_msgs)), s->msgs_per_s, s->pub_window_s);
        fprintf(out, "| seq gaps (messages missing) | %llu (%llu) |\n", U(TW_GET(s->c.gaps)),
                U(TW_GET(s->c.lost)));
        if (multi(s))
                fprintf(out, "| duplicates (seq seen again or backwards) | %llu |\n",
                        U(TW_GET(s->c.duplicates)));
        fprintf(out,
                "| end-to-end latency p50 / p90 / p99 / p99.9 / max | %llu / %llu / %llu / %llu / "
                "%llu us (%llu samples) |\n",
                U(lg_hist_quantile(h, 0.5)), U(lg_hist_quantile(h, 0.9)),
                U(lg_hist_quantile(h, 0.99)), U(lg_hist_quantile(h, 0.999)), U(h->max),
                U(h->count));
        fprintf(out,
                "| publishes sent / acked / errors / skipped | %llu / %llu / %llu / %llu (%.0f /s "
                "acked, asked %.0f /s) |\n",
                U(TW_GET(s->c.pub_sent)), U(TW_GET(s->c.pub_acked)), U(TW_GET(s->c.pub_errors)),
                U(TW_GET(s->c.pub_skipped)), s->pub_per_s, o->publish_rate);
        fprintf(out, "| subscribed / error replies | %llu / %llu |\n", U(TW_GET(s->c.subscribed)),
                U(TW_GET(s->c.proto_errors)));
        if (o->scenario == LG_SC_STORM)
                fprintf(out,
                        "| resumes with since / unrecovered / gaps after resume (missing) | %llu / "
                        "%llu / %llu (%llu) |\n",
                        U(TW_GET(s->c.resumes)), U(TW_GET(s->c.unrecovered)),
                        U(TW_GET(s->c.resume_gaps)), U(TW_GET(s->c.resume_lost)));
        if (o->scenario == LG_SC_SLOW) {
                fprintf(out, "| slow clients planned / paused / resumed | %u / %llu / %llu |\n",
                        s->slow_clients, U(TW_GET(s->c.slow_paused)), U(TW_GET(s->c.slow_resumed)));
                fprintf(out,
                        "| slow: read after resume / seq jumps (missing) | %llu / %llu (%llu) |\n",
                        U(TW_GET(s->c.slow_msgs)), U(TW_GET(s->c.slow_jumps)),
                        U(TW_GET(s->c.slow_lost)));
                fprintf(out, "| slow: Close 1013 / dropped otherwise | %llu / %llu |\n",
                        U(TW_GET(s->c.slow_1013)), U(TW_GET(s->c.slow_dropped)));
        }
        if (s->srv_rss_max_kib)
                fprintf(out, "| server RSS before / max / end | %.1f / %.1f / %.1f MiB |\n",
                        s->srv_rss_base_kib / 1024.0, s->srv_rss_max_kib / 1024.0,
                        s->srv_rss_end_kib / 1024.0);
}

static void json_pubsub(FILE *f, const lg_summary *s)
{
        const lg_opts *o = s->o;

        fprintf(f,
                "  \"pubsub\": {\"topics\": %u, \"zipf_s\": %.3f, \"publishers\": %u, "
                "\"publish_rate\": %.1f, \"payload\": %u, \"burst\": %u, \"via\": \"%s\", "
                "\"window_s\": %.3f, \"sent\": %llu, \"acked\": %llu, \"errors\": %llu, "
                "\"skipped\": %llu, \"acked_per_s\": %.1f, \"subscribed\": %llu, "
                "\"error_replies\": %llu},\n",
                o->topics, o->zipf_s, o->publishers, o->publish_rate, o->payload, s->o->burst,
                via_names[o->pub_via], s->pub_window_s, U(TW_GET(s->c.pub_sent)),
                U(TW_GET(s->c.pub_acked)), U(TW_GET(s->c.pub_errors)), U(TW_GET(s->c.pub_skipped)),
                s->pub_per_s, U(TW_GET(s->c.subscribed)), U(TW_GET(s->c.proto_errors)));
        fprintf(f,
                "  \"resume\": {\"resumes\": %llu, \"unrecovered\": %llu, \"gaps\": %llu, "
                "\"lost\": %llu},\n",
                U(TW_GET(s->c.resumes)), U(TW_GET(s->c.unrecovered)), U(TW_GET(s->c.resume_gaps)),
                U(TW_GET(s->c.resume_lost)));
        fprintf(f,
                "  \"slow\": {\"clients\": %u, \"paused\": %llu, \"resumed\": %llu, "
                "\"messages\": %llu, \"jumps\": %llu, \"lost\": %llu, \"closed_1013\": %llu, "
                "\"dropped\": %llu, \"server_rss_base_kib\": %ld, \"server_rss_max_kib\": %ld, "
                "\"server_rss_end_kib\": %ld, \"server_rss_kib\": [",
                s->slow_clients, U(TW_GET(s->c.slow_paused)), U(TW_GET(s->c.slow_resumed)),
                U(TW_GET(s->c.slow_msgs)), U(TW_GET(s->c.slow_jumps)), U(TW_GET(s->c.slow_lost)),
                U(TW_GET(s->c.slow_1013)), U(TW_GET(s->c.slow_dropped)), s->srv_rss_base_kib,
                s->srv_rss_max_kib, s->srv_rss_end_kib);
        for (size_t i = 0; i < s->srv_rss_n; i++)
                fprintf(f, "%s[%.2f, %.0f]", i ? ", " : "", s->srv_rss[2 * i],
                        s->srv_rss[2 * i + 1]);
        fprintf(f, "]},\n");
}

/* The target list as given, comma-separated. */
static void put_targets(FILE *out, const lg_opts *o)
{
        for (unsigned i = 0; i < o->ntargets; i++)
                fprintf(out, "%s%s", i ? "," : "", o->target_texts[i]);
}

static void table_targets(FILE *out, const lg_summary *s)
{
        const lg_opts *o = s->o;

        fprintf(out, "| per target: established / open at end / moved in |");
        for (unsigned i = 0; i < o->ntargets; i++)
                fprintf(out, "%s %s %llu / %llu / %llu", i ? "," : "", o->target_texts[i],
                        U(s->tgt_est[i]), U(s->tgt_open[i]), U(s->tgt_moved[i]));
        fprintf(out, " |\n");
}

static void opt_num(FILE *f, double v)
{
        if (v < 0 || !isfinite(v))
                fputs("null", f);
        else
                fprintf(f, "%.3f", v);
}

/* The summary table: one row per figure, in the order a reader asks for them, hence
 * its length. */
void lg_report_table(FILE *out, const lg_summary *s)
{
        const lg_opts *o = s->o;
        const lg_samples *d = &s->detect_ms;

        fprintf(out, "\ntickwire-loadgen: scenario %s%s%s, target%s ",
                lg_scenario_name(o->scenario), o->scenario == LG_SC_SILENT ? " --silence " : "",
                o->scenario == LG_SC_SILENT ? (o->silence == LG_SILENCE_POWER ? "power" : "app")
                                            : "",
                multi(s) ? "s" : "");
        put_targets(out, o);
        fprintf(out, "%s, %u connections, %u threads, %.1f s\n\n", o->tls ? " (tls)" : "",
                o->connections, s->threads, s->elapsed_s);
        fprintf(out, "| metric | value |\n|---|---|\n");
        fprintf(out, "| connections established | %llu / %u |\n",
                (unsigned long long)TW_GET(s->c.established_first), o->connections);
        fprintf(out, "| connections failed | %llu", (unsigned long long)TW_GET(s->c.failed));
        for (int i = 0; i < LG_FAIL__COUNT; i++)
                if (TW_GET(s->c.fail[i]))
                        fprintf(out, " %s=%llu", lg_fail_names[i],
                                (unsigned long long)TW_GET(s->c.fail[i]));
        fprintf(out, " |\n");
        if (multi(s))
                table_targets(out, s);
        fprintf(out, "| connect + upgrade rate | %.0f /s (%.2f s ramp) |\n", s->rate_per_s,
                s->ramp_s);
        fprintf(out, "| handshake p50 / p99 / max | %.2f / %.2f / %.2f ms |\n",
                lg_hist_quantile(&s->handshake_us, 0.5) / 1000.0,
                lg_hist_quantile(&s->handshake_us, 0.99) / 1000.0, s->handshake_us.max / 1000.0);
        if (s->pubsub)
                table_pubsub(out, s);
        else
                fprintf(out, "| messages received | %llu (%.1f /s) |\n",
                        (unsigned long long)TW_GET(s->c.msgs_received), s->msgs_per_s);
        fprintf(out, "| app ping RTT p50 / p99 / max | %llu / %llu / %llu us (%llu samples) |\n",
                (unsigned long long)lg_hist_quantile(&s->latency_us, 0.5),
                (unsigned long long)lg_hist_quantile(&s->latency_us, 0.99),
                (unsigned long long)s->latency_us.max, (unsigned long long)s->latency_us.count);
        fprintf(out, "| server pings answered | %llu of %llu |\n",
                (unsigned long long)TW_GET(s->c.pongs_sent),
                (unsigned long long)TW_GET(s->c.pings_received));
        fprintf(out, "| heartbeat bytes per conn | %.2f B/s WebSocket, ~%.1f B/s on the wire |\n",
                s->hb_bytes_per_conn_s, s->hb_wire_per_conn_s);
        if (o->scenario == LG_SC_SILENT) {
                fprintf(out, "| silent clients | %llu (of %llu planned) |\n",
                        (unsigned long long)s->silent, (unsigned long long)s->hits);
                fprintf(out, "| detected (%s) | %zu |\n", s->detect_source, d->n);
                fprintf(out,
                        "| detection min / p50 / p90 / p99 / max | %.1f / %.1f / %.1f / %.1f / "
                        "%.1f ms |\n",
                        d->n ? d->v[0] : 0.0, q(d, 0.5), q(d, 0.9), q(d, 0.99),
                        d->n ? d->v[d->n - 1] : 0.0);
                if (s->have_expected)
                        fprintf(out, "| expected window | [%.0f, %.0f] ms, %llu outside |\n",
                                s->exp_min, s->exp_max, (unsigned long long)s->outside);
                else
                        fprintf(out, "| expected window | unknown (give --server-ping-interval/"
                                     "--server-idle-timeout or --server-log) |\n");
                if (s->observed_ms.n)
                        fprintf(out,
                                "| seen in the log after silence p50 / max | %.1f / %.1f ms |\n",
                                q(&s->observed_ms, 0.5), s->observed_ms.v[s->observed_ms.n - 1]);
                if (s->srv_det_count > 0)
                        fprintf(out, "| server histogram delta | %.0f detections, mean %.1f ms |\n",
                                s->srv_det_count, s->srv_det_sum_s * 1000 / s->srv_det_count);
        }
        fprintf(out, "| false disconnects | %llu |\n",
                (unsigned long long)TW_GET(s->c.false_disconnects));
        if (o->server_timeout_ms)
                fprintf(
                    out,
                    "| server judged dead (--server-timeout %llu ms) | %zu, silence p50 / p99 / "
                    "max %.1f / %.1f / %.1f ms |\n",
                    U(o->server_timeout_ms), s->dead_ms.n, q(&s->dead_ms, 0.5),
                    q(&s->dead_ms, 0.99), s->dead_ms.n ? s->dead_ms.v[s->dead_ms.n - 1] : 0.0);
        if (o->scenario == LG_SC_ABORT)
                fprintf(out, "| aborted (RST) | %llu |\n",
                        (unsigned long long)TW_GET(s->c.aborted));
        if (o->scenario == LG_SC_GRACEFUL)
                fprintf(out,
                        "| graceful closes / echoes / timeouts | %llu / %llu / %llu (echo p50 "
                        "%.2f ms) |\n",
                        (unsigned long long)TW_GET(s->c.closes_sent),
                        (unsigned long long)TW_GET(s->c.close_echoes),
                        (unsigned long long)TW_GET(s->c.close_timeouts),
                        lg_hist_quantile(&s->close_us, 0.5) / 1000.0);
        if (s->have_gauge)
                fprintf(out,
                        "| server gauge baseline / expected / final | %.0f / %.0f / %.0f "
                        "(returned after %s%.1f ms) |\n",
                        s->gauge_baseline, s->gauge_expected, s->gauge_final,
                        s->gauge_return_ms < 0 ? "never: " : "", s->gauge_return_ms);
        if (o->scenario == LG_SC_STORM) {
                fprintf(out, "| drops / reconnects | %llu / %llu |\n",
                        (unsigned long long)TW_GET(s->c.drops),
                        (unsigned long long)TW_GET(s->c.reconnects));
                fprintf(out, "| all back after first drop | %s%.0f ms |\n",
                        s->all_back_ms < 0 ? "not yet: " : "", s->all_back_ms);
                fprintf(out, "| peak accept rate | %.0f /s |\n", s->peak_accept_per_s);
        }
        fprintf(out, "| loadgen RSS (peak) | %.1f MiB (%.1f MiB), %.0f B per connection |\n",
                s->rss_kib / 1024.0, s->hwm_kib / 1024.0,
                o->connections ? s->rss_kib * 1024.0 / o->connections : 0.0);
}

/* The --json report of DESIGN 7: one line per field of the contract (other tools read
 * these names), hence its length. */
int lg_report_json(const char *path, const lg_summary *s)
{
        const lg_opts *o = s->o;
        const lg_samples *d = &s->detect_ms;
        FILE *f = fopen(path, "w");

        if (!f)
                return -errno;
        fprintf(f, "{\n");
        fprintf(f,
                "  \"connections\": {\"target\": %u, \"established\": %llu, \"failed\": %llu, "
                "\"rate_per_s\": %.1f",
                o->connections, (unsigned long long)TW_GET(s->c.established_first),
                (unsigned long long)TW_GET(s->c.failed_first), s->rate_per_s);
        if (multi(s)) {
                /* established counts 101s there, reconnects included; open is what is
                 * connected there at the end; moved_in the reconnects that came from
                 * another target (storm). */
                fprintf(f, ", \"per_target\": [");
                for (unsigned i = 0; i < o->ntargets; i++)
                        fprintf(f,
                                "%s{\"target\": \"%s\", \"established\": %llu, \"open\": %llu, "
                                "\"moved_in\": %llu}",
                                i ? ", " : "", o->target_texts[i], U(s->tgt_est[i]),
                                U(s->tgt_open[i]), U(s->tgt_moved[i]));
                fprintf(f, "]");
        }
        fprintf(f, "},\n");
        /* Under pub/sub: topic messages and end-to-end latency; otherwise every data
         * message and the app ping round trip. */
        fprintf(f,
                "  \"messages\": {\"received\": %llu, \"per_s\": %.2f, \"gaps\": %llu, "
                "\"lost\": %llu",
                U(s->pubsub ? TW_GET(s->c.topic_msgs) : TW_GET(s->c.msgs_received)), s->msgs_per_s,
                U(TW_GET(s->c.gaps)), U(TW_GET(s->c.lost)));
        if (multi(s))
                fprintf(f, ", \"duplicates\": %llu", U(TW_GET(s->c.duplicates)));
        fprintf(f, "},\n");
        fprintf(f,
                "  \"latency_us\": {\"p50\": %llu, \"p90\": %llu, \"p99\": %llu, \"p999\": %llu, "
                "\"max\": %llu, \"count\": %llu, \"kind\": \"%s\"},\n",
                U(lg_hist_quantile(latency_of(s), 0.5)), U(lg_hist_quantile(latency_of(s), 0.9)),
                U(lg_hist_quantile(latency_of(s), 0.99)), U(lg_hist_quantile(latency_of(s), 0.999)),
                U(latency_of(s)->max), U(latency_of(s)->count),
                s->pubsub ? "end_to_end" : "app_ping_rtt");
        fprintf(f,
                "  \"detection_ms\": {\"count\": %zu, \"min\": %.3f, \"p50\": %.3f, \"p90\": %.3f, "
                "\"p99\": %.3f, \"max\": %.3f, \"expected_min\": ",
                d->n, d->n ? d->v[0] : 0.0, q(d, 0.5), q(d, 0.9), q(d, 0.99),
                d->n ? d->v[d->n - 1] : 0.0);
        opt_num(f, s->have_expected ? s->exp_min : -1);
        fprintf(f, ", \"expected_max\": ");
        opt_num(f, s->have_expected ? s->exp_max : -1);
        fprintf(f, ", \"outside\": %llu},\n", (unsigned long long)s->outside);
        fprintf(f, "  \"false_disconnects\": %llu,\n",
                (unsigned long long)TW_GET(s->c.false_disconnects));
        fprintf(f, "  \"reconnects\": %llu,\n", (unsigned long long)TW_GET(s->c.reconnects));
        /* --server-timeout: the client side of detection. Each value is the server's
         * silence (since the last bytes heard) when the client gave up; the CSV's
         * server_dead rows carry the run clock of each verdict, which start_unix_ms turns
         * into wall-clock time for a tool that knows when the failure happened. */
        fprintf(f,
                "  \"server_dead\": {\"count\": %zu, \"min\": %.3f, \"p50\": %.3f, \"p99\": %.3f, "
                "\"max\": %.3f, \"timeout_ms\": %llu},\n",
                s->dead_ms.n, s->dead_ms.n ? s->dead_ms.v[0] : 0.0, q(&s->dead_ms, 0.5),
                q(&s->dead_ms, 0.99), s->dead_ms.n ? s->dead_ms.v[s->dead_ms.n - 1] : 0.0,
                U(o->server_timeout_ms));
        fprintf(f, "  \"start_unix_ms\": %.3f,\n", s->start_unix_ms);

        /* Extras. */
        fprintf(f, "  \"scenario\": \"%s\",\n", lg_scenario_name(o->scenario));
        fprintf(f, "  \"tls\": %s,\n", o->tls ? "true" : "false");
        fprintf(f,
                "  \"ping_rtt_us\": {\"p50\": %llu, \"p99\": %llu, \"max\": %llu, \"count\": "
                "%llu},\n",
                U(lg_hist_quantile(&s->latency_us, 0.5)), U(lg_hist_quantile(&s->latency_us, 0.99)),
                U(s->latency_us.max), U(s->latency_us.count));
        if (s->pubsub)
                json_pubsub(f, s);
        fprintf(f, "  \"silence\": \"%s\",\n", o->silence == LG_SILENCE_POWER ? "power" : "app");
        fprintf(f, "  \"threads\": %u,\n  \"elapsed_s\": %.3f,\n", s->threads, s->elapsed_s);
        fprintf(f, "  \"failures\": {");
        for (int i = 0; i < LG_FAIL__COUNT; i++)
                fprintf(f, "%s\"%s\": %llu", i ? ", " : "", lg_fail_names[i],
                        (unsigned long long)TW_GET(s->c.fail[i]));
        fprintf(f, ", \"status_503\": %llu, \"attempts\": %llu, \"all_attempts_failed\": %llu},\n",
                (unsigned long long)TW_GET(s->c.status_503),
                (unsigned long long)TW_GET(s->c.attempts), (unsigned long long)TW_GET(s->c.failed));
        fprintf(f, "  \"ramp_s\": %.3f,\n", s->ramp_s);
        fprintf(f, "  \"handshake_ms\": {\"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f},\n",
                lg_hist_quantile(&s->handshake_us, 0.5) / 1000.0,
                lg_hist_quantile(&s->handshake_us, 0.99) / 1000.0, s->handshake_us.max / 1000.0);
        fprintf(f, "  \"latency_samples\": %llu,\n", (unsigned long long)s->latency_us.count);
        fprintf(f,
                "  \"heartbeat\": {\"pings_received\": %llu, \"pongs_sent\": %llu, "
                "\"app_pings_sent\": %llu, \"frames\": %llu, \"bytes\": %llu, "
                "\"conn_seconds\": %.1f, \"bytes_per_conn_s\": %.3f, \"wire_bytes_per_conn_s\": "
                "%.3f},\n",
                (unsigned long long)TW_GET(s->c.pings_received),
                (unsigned long long)TW_GET(s->c.pongs_sent),
                (unsigned long long)TW_GET(s->c.app_pings_sent),
                (unsigned long long)TW_GET(s->c.hb_frames),
                (unsigned long long)TW_GET(s->c.hb_bytes), s->conn_seconds, s->hb_bytes_per_conn_s,
                s->hb_wire_per_conn_s);
        fprintf(f,
                "  \"detection\": {\"source\": \"%s\", \"planned\": %llu, \"silent\": %llu, "
                "\"undetected\": %llu, \"unmatched_detect_lines\": %llu, \"server_count\": %.0f, "
                "\"server_mean_ms\": ",
                s->detect_source, (unsigned long long)s->hits, (unsigned long long)s->silent,
                (unsigned long long)(s->silent > d->n ? s->silent - d->n : 0),
                (unsigned long long)s->unmatched, s->srv_det_count);
        opt_num(f, s->srv_det_count > 0 ? s->srv_det_sum_s * 1000 / s->srv_det_count : -1);
        fprintf(f, ", \"observed_p50_ms\": ");
        opt_num(f, s->observed_ms.n ? q(&s->observed_ms, 0.5) : -1);
        fprintf(f, ", \"observed_max_ms\": ");
        opt_num(f, s->observed_ms.n ? s->observed_ms.v[s->observed_ms.n - 1] : -1);
        fprintf(f, "},\n");
        fprintf(
            f, "  \"gauge\": {\"available\": %s, \"baseline\": ", s->have_gauge ? "true" : "false");
        opt_num(f, s->have_gauge ? s->gauge_baseline : -1);
        fprintf(f, ", \"expected\": ");
        opt_num(f, s->have_gauge ? s->gauge_expected : -1);
        fprintf(f, ", \"final\": ");
        opt_num(f, s->have_gauge ? s->gauge_final : -1);
        fprintf(f, ", \"return_ms\": ");
        opt_num(f, s->gauge_return_ms);
        fprintf(f, ", \"returned\": %s},\n",
                s->have_gauge && s->gauge_return_ms >= 0 ? "true" : "false");
        fprintf(f,
                "  \"closes\": {\"aborted\": %llu, \"sent\": %llu, \"echoes\": %llu, "
                "\"timeouts\": %llu, \"echo_p50_ms\": %.3f, \"server_closes\": %llu},\n",
                (unsigned long long)TW_GET(s->c.aborted),
                (unsigned long long)TW_GET(s->c.closes_sent),
                (unsigned long long)TW_GET(s->c.close_echoes),
                (unsigned long long)TW_GET(s->c.close_timeouts),
                lg_hist_quantile(&s->close_us, 0.5) / 1000.0,
                (unsigned long long)TW_GET(s->c.server_closes));
        fprintf(f, "  \"storm\": {\"drops\": %llu, \"first_drop_ms\": ",
                (unsigned long long)TW_GET(s->c.drops));
        opt_num(f, s->first_drop_ms);
        fprintf(f, ", \"all_back_ms\": ");
        opt_num(f, s->all_back_ms);
        fprintf(f, ", \"peak_accept_per_s\": %.1f, \"jitter\": %s},\n", s->peak_accept_per_s,
                o->jitter ? "true" : "false");
        fprintf(f, "  \"open_at_end\": %llu,\n", (unsigned long long)TW_GET(s->c.open));
        fprintf(
            f, "  \"rss_kib\": %ld,\n  \"rss_peak_kib\": %ld,\n  \"rss_bytes_per_conn\": %.1f\n",
            s->rss_kib, s->hwm_kib, o->connections ? s->rss_kib * 1024.0 / o->connections : 0.0);
        fprintf(f, "}\n");
        if (fclose(f) != 0)
                return -errno;
        return 0;
}

int lg_report_csv(const char *path, const lg_event *rows, size_t n)
{
        FILE *f = fopen(path, "w");

        if (!f)
                return -errno;
        fprintf(f, "event,conn,t_ms,value_ms\n");
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%s,%u,%.3f,%.3f\n", lg_event_names[rows[i].kind], rows[i].id,
                        rows[i].t_ms, rows[i].value_ms);
        if (fclose(f) != 0)
                return -errno;
        return 0;
}
