/*
 * tickwire-loadgen: the command line, the run, and the figures.
 *
 * main parses the flags, reads the server's baseline (/metrics, and its log when given),
 * starts the engine threads and then watches from the side every 50 ms: the live
 * progress line once a second, the server's gauge after an abort or graceful close, its
 * detect lines during a power-silent run, the storm's way back. It decides when the run
 * is over (--duration, or earlier when the scenario's question is answered), stops the
 * engine, and turns everything into the summary, JSON and CSV.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "opts.h"
#include "probe.h"
#include "report.h"
#include "scenario.h"

#define LG_WATCH_MS    50
#define LG_RATE_WINDOW 20 /* 20 x 50 ms: the sliding second for the peak accept rate */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
        (void)sig;
        interrupted = 1;
}

static void sleep_ms(unsigned ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

        nanosleep(&ts, NULL);
}

static void read_rss_of(const char *path, long *rss, long *hwm)
{
        char line[256];
        FILE *f = fopen(path, "r");

        *rss = *hwm = 0;
        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                if (!strncmp(line, "VmRSS:", 6))
                        *rss = strtol(line + 6, NULL, 10);
                else if (!strncmp(line, "VmHWM:", 6))
                        *hwm = strtol(line + 6, NULL, 10);
        }
        fclose(f);
}

static void read_rss(long *rss, long *hwm)
{
        read_rss_of("/proc/self/status", rss, hwm);
}

/* The server's VmRSS (slow: memory must stay bounded); 0 when it cannot be read. */
static long server_rss(int pid)
{
        char path[64];
        long rss, hwm;

        snprintf(path, sizeof(path), "/proc/%d/status", pid);
        read_rss_of(path, &rss, &hwm);
        return rss;
}

/* What main keeps while watching. */
typedef struct lg_watch {
        lg_scrape base;
        bool have_base;
        double gauge_return_ms;
        double gauge_last;
        uint64_t next_scrape_us;
        double conn_seconds;
        uint64_t win[LG_RATE_WINDOW]; /* established, every 50 ms */
        unsigned win_n;
        double peak_rate;
        double all_back_ms;
        double answered_at_ms; /* the scenario's question got its answer; < 0 not yet */
        uint64_t pub_start_us; /* run clock publishing started; 0 not yet */
        long srv_rss_base, srv_rss_max, srv_rss_last;
        double *srv_rss; /* (t_s, kib) pairs */
        size_t srv_rss_n, srv_rss_cap;
        uint64_t next_rss_us, next_keep_us;
} lg_watch;

static void progress(const lg_engine *e, const lg_counters *c, uint64_t *last_msgs, double t_s,
                     double dt_s)
{
        uint64_t msgs = TW_GET(c->msgs_received);

        fprintf(stderr,
                "[%6.1fs] connected %llu/%u failed %llu open %llu msgs/s %.0f silent %llu "
                "detected %llu reconnects %llu\n",
                t_s, (unsigned long long)TW_GET(c->established_first), e->o->connections,
                (unsigned long long)TW_GET(c->failed), (unsigned long long)TW_GET(c->open),
                dt_s > 0 ? (double)(msgs - *last_msgs) / dt_s : 0.0,
                (unsigned long long)TW_GET(c->silent), (unsigned long long)TW_GET(c->detected),
                (unsigned long long)TW_GET(c->reconnects));
        *last_msgs = msgs;
}

/* The server's RSS every 250 ms for the maximum, one (t, kib) pair a second kept. */
static void sample_server_rss(lg_watch *w, int pid, uint64_t now_us)
{
        long kib = server_rss(pid);

        w->next_rss_us = now_us + 250000;
        if (!kib)
                return;
        w->srv_rss_last = kib;
        if (kib > w->srv_rss_max)
                w->srv_rss_max = kib;
        if (now_us < w->next_keep_us)
                return;
        w->next_keep_us = now_us + 1000000;
        if (w->srv_rss_n + 2 > w->srv_rss_cap) {
                size_t cap = w->srv_rss_cap ? w->srv_rss_cap * 2 : 128;
                double *v = realloc(w->srv_rss, cap * sizeof(*v));

                if (!v)
                        return;
                w->srv_rss = v;
                w->srv_rss_cap = cap;
        }
        w->srv_rss[w->srv_rss_n++] = now_us / 1e6;
        w->srv_rss[w->srv_rss_n++] = (double)kib;
}

/* One watch step; returns true when the run can end now. */
static bool watch(lg_engine *e, lg_watch *w, lg_log *log, const lg_counters *c, uint64_t now_us,
                  double exp_max)
{
        const lg_opts *o = e->o;
        uint64_t ev = atomic_load(&e->event_us);
        uint64_t drop = atomic_load(&e->first_drop_us);
        uint64_t est = TW_GET(c->established);
        uint64_t hits = lg_scenario_hit_count(o, o->connections);
        double now_ms = now_us / 1000.0;

        /* Peak accept rate: established per sliding second. */
        if (w->win_n >= LG_RATE_WINDOW) {
                double r = (double)(est - w->win[w->win_n % LG_RATE_WINDOW]) * 1000.0 /
                           (LG_RATE_WINDOW * LG_WATCH_MS);
                if (drop && r > w->peak_rate)
                        w->peak_rate = r;
        }
        w->win[w->win_n++ % LG_RATE_WINDOW] = est;

        switch (o->scenario) {
        case LG_SC_ABORT:
        case LG_SC_GRACEFUL:
                if (ev && w->have_base && w->gauge_return_ms < 0 && now_us >= w->next_scrape_us) {
                        lg_scrape s;
                        double expected = w->base.connections + (double)TW_GET(c->open);

                        w->next_scrape_us = now_us + 20000;
                        if (lg_probe_scrape(&o->target, &s) == 0) {
                                w->gauge_last = s.connections;
                                if (s.connections <= expected &&
                                    TW_GET(c->aborted) + TW_GET(c->closes_sent) >= hits) {
                                        w->gauge_return_ms = now_ms - (ev - 1) / 1000.0;
                                        w->answered_at_ms = now_ms;
                                }
                        }
                }
                /* Without a baseline nothing more can be learnt after every close ended. */
                if (ev && !w->have_base && TW_GET(c->open) + hits <= o->connections &&
                    now_ms > (ev - 1) / 1000.0 + o->close_timeout_ms + 500)
                        return true;
                return w->answered_at_ms >= 0 && now_ms >= w->answered_at_ms + 200;
        case LG_SC_SILENT:
                if (!ev || exp_max <= 0)
                        return false;
                /* Healthy clients must stay up through a whole window after the silence:
                 * that is where a false disconnect would show. */
                if (now_ms < (ev - 1) / 1000.0 + exp_max + 1000)
                        return false;
                if (o->silence == LG_SILENCE_APP)
                        return TW_GET(c->detected) >= TW_GET(c->silent) &&
                               TW_GET(c->silent) >= hits;
                /* power: the log shows every drop, or there is no log to wait for. */
                return !log || log->n >= TW_GET(c->silent);
        case LG_SC_STORM:
                /* With --server-timeout the clients find out one by one, each within an app
                 * ping interval of the first (their last answer was at most that old): a
                 * client not judged yet still counts as open, so wait that long. */
                if (drop && o->server_timeout_ms &&
                    now_ms < (drop - 1) / 1000.0 + (double)o->ping_interval_ms)
                        return false;
                if (drop && w->all_back_ms < 0 && TW_GET(c->open) >= o->connections) {
                        w->all_back_ms = now_ms - (drop - 1) / 1000.0;
                        w->answered_at_ms = now_ms;
                }
                /* A second later: the peak rate window has seen the tail. */
                return w->answered_at_ms >= 0 && now_ms >= w->answered_at_ms + 1000;
        default:
                return false;
        }
}

/* Matches power-silent clients with the server's detect lines by local address:port. */
static void match_power(lg_engine *e, lg_log *log, lg_summary *s, lg_event **rows, size_t *nrows)
{
        size_t nrec = 0, k = 0;
        lg_power_rec *recs;
        bool *used;

        for (unsigned i = 0; i < e->nthreads; i++)
                nrec += e->threads[i].npower;
        recs = calloc(nrec ? nrec : 1, sizeof(*recs));
        used = calloc(log->n ? log->n : 1, sizeof(*used));
        if (!recs || !used)
                goto out;
        for (unsigned i = 0; i < e->nthreads; i++)
                for (size_t j = 0; j < e->threads[i].npower; j++)
                        recs[k++] = e->threads[i].power[j];
        for (size_t r = 0; r < nrec; r++) {
                for (size_t l = 0; l < log->n; l++) {
                        lg_detect_line *d = &log->lines[l];

                        if (used[l] || d->port != recs[r].port || d->addr != recs[r].addr ||
                            d->seen_ms < recs[r].silent_ms)
                                continue;
                        used[l] = true;
                        lg_samples_add(&s->detect_ms, d->age_ms);
                        lg_samples_add(&s->observed_ms, d->seen_ms - recs[r].silent_ms);
                        lg_event *nr = realloc(*rows, (*nrows + 1) * sizeof(**rows));
                        if (nr) {
                                *rows = nr;
                                (*rows)[(*nrows)++] =
                                    (lg_event){(float)d->seen_ms, (float)d->age_ms, recs[r].id,
                                               LG_EV_POWER_DETECTION};
                        }
                        break;
                }
        }
        for (size_t l = 0; l < log->n; l++)
                if (!used[l])
                        s->unmatched++;
out:
        free(recs);
        free(used);
}

/* Detection from the histogram delta when there is no log: each observation counted at
 * its bucket's upper bound (an upper estimate), so outside-the-window is conservative. */
static void detect_from_histogram(const lg_scrape *a, const lg_scrape *b, lg_summary *s)
{
        double prev = 0, prev_a = 0;

        for (unsigned i = 0; i < b->nbuckets && i < a->nbuckets; i++) {
                double n = (b->cum[i] - a->cum[i]) - (prev - prev_a);
                double v = isinf(b->le[i]) ? 1e9 : b->le[i] * 1000.0;

                for (double k = 0; k < n; k++)
                        lg_samples_add(&s->detect_ms, v);
                prev = b->cum[i];
                prev_a = a->cum[i];
        }
}

static void merge_threads(lg_engine *e, lg_summary *s, lg_event **rows, size_t *nrows)
{
        size_t total = 0;

        lg_hist_init(&s->latency_us);
        lg_hist_init(&s->handshake_us);
        lg_hist_init(&s->close_us);
        lg_hist_init(&s->e2e_us);
        for (unsigned i = 0; i < e->nthreads; i++)
                total += e->threads[i].nevents;
        *rows = malloc((total ? total : 1) * sizeof(**rows));
        *nrows = 0;
        for (unsigned i = 0; i < e->nthreads; i++) {
                lg_thread *t = &e->threads[i];

                lg_hist_merge(&s->latency_us, &t->latency_us);
                lg_hist_merge(&s->handshake_us, &t->handshake_us);
                lg_hist_merge(&s->close_us, &t->close_us);
                lg_hist_merge(&s->e2e_us, &t->e2e_us);
                if (s->o->silence == LG_SILENCE_APP)
                        lg_samples_merge(&s->detect_ms, &t->detect_ms);
                lg_samples_merge(&s->dead_ms, &t->dead_ms);
                if (*rows && t->nevents) {
                        memcpy(*rows + *nrows, t->events, t->nevents * sizeof(**rows));
                        *nrows += t->nevents;
                }
        }
}

/* Everything one run holds, from the flags to the figures. */
typedef struct lg_run {
        lg_opts o;
        lg_engine e;
        lg_summary s;
        lg_watch w;
        lg_log log;
        lg_log *logp;    /* &log when --server-log was given */
        lg_scrape after; /* the server's /metrics once the run is over */
        lg_event *rows;  /* per-event samples for --csv */
        size_t nrows;
        double exp_min, exp_max; /* the detection window; 0 when unknown */
} lg_run;

/* Flags, the server's log and its settings, signals and the baselines. Returns -1 to go
 * on, or the exit status (0 after --help, 2 for a bad command line). */
static int prepare(lg_run *r, int argc, char **argv)
{
        lg_opts *o = &r->o;
        char err[256];
        uint64_t ping_ms, idle_ms;
        int ret;

        r->log = (lg_log){.fd = -1};
        ret = lg_opts_parse(o, argc, argv, stdout, err, sizeof(err));
        if (ret == 1)
                return 0;
        if (ret < 0) {
                fprintf(stderr, "tickwire-loadgen: %s\n", err);
                return 2;
        }
        if (o->server_log) {
                ret = lg_log_open(&r->log, o->server_log);
                if (ret < 0) {
                        fprintf(stderr, "tickwire-loadgen: --server-log: %s: %s\n", o->server_log,
                                strerror(-ret));
                        return 2;
                }
                r->logp = &r->log;
        }
        bool from_log = r->logp && r->log.have_settings;
        ping_ms = o->srv_ping_set ? o->srv_ping_ms : (from_log ? r->log.ping_ms : 0);
        idle_ms = o->srv_idle_set ? o->srv_idle_ms : (from_log ? r->log.idle_ms : 0);
        r->s.have_expected =
            lg_scenario_expected(ping_ms, idle_ms, o->srv_tick_ms, &r->exp_min, &r->exp_max);

        signal(SIGPIPE, SIG_IGN);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);

        lg_watch *w = &r->w;
        w->have_base = lg_probe_scrape(&o->target, &w->base) == 0;
        if (!w->have_base)
                fprintf(stderr,
                        "tickwire-loadgen: cannot scrape %s/metrics: the gauge and "
                        "histogram checks are off\n",
                        o->target_text);
        w->gauge_return_ms = -1;
        r->s.gauge_return_ms = -1;
        w->all_back_ms = -1;
        w->answered_at_ms = -1;
        if (o->server_pid) {
                w->srv_rss_base = w->srv_rss_max = w->srv_rss_last = server_rss(o->server_pid);
                if (!w->srv_rss_base)
                        fprintf(stderr,
                                "tickwire-loadgen: --server-pid %d: cannot read its VmRSS\n",
                                o->server_pid);
        }
        return -1;
}

/* Starts the engine and watches it every LG_WATCH_MS until the run is over, then stops
 * it. Returns 0, or 1 when the engine could not start. */
static int run_and_watch(lg_run *r)
{
        const lg_opts *o = &r->o;
        lg_engine *e = &r->e;
        lg_watch *w = &r->w;
        lg_counters c;
        uint64_t last_msgs = 0, last_print_us = 0, last_us = 0, next_print_us = 1000000;
        int ret = lg_engine_start(e, o);

        if (ret < 0) {
                fprintf(stderr, "tickwire-loadgen: cannot start: %s\n", strerror(-ret));
                return 1;
        }
        for (;;) {
                sleep_ms(LG_WATCH_MS);
                uint64_t now_us = lg_engine_now_us(e);
                lg_engine_sum(e, &c);
                if (r->logp)
                        lg_log_poll(r->logp, now_us / 1000.0);
                w->conn_seconds += (double)TW_GET(c.open) * (double)(now_us - last_us) / 1e6;
                last_us = now_us;
                if (!o->quiet && now_us >= next_print_us) {
                        progress(e, &c, &last_msgs, now_us / 1e6,
                                 (double)(now_us - last_print_us) / 1e6);
                        last_print_us = now_us;
                        next_print_us += 1000000;
                }
                if (lg_opts_pubsub(o) && !w->pub_start_us &&
                    TW_GET(c.done_first) >= o->connections) {
                        /* Every subscriber has resolved: the publishers may start. */
                        w->pub_start_us = now_us;
                        atomic_store_explicit(&e->pub_start_us, now_us + 1, memory_order_release);
                }
                if (o->server_pid && now_us >= w->next_rss_us)
                        sample_server_rss(w, o->server_pid, now_us);
                bool done = watch(e, w, r->logp, &c, now_us, r->s.have_expected ? r->exp_max : 0);
                if (done || interrupted || now_us >= o->duration_ms * 1000)
                        break;
        }
        lg_engine_stop(e);
        lg_engine_join(e);
        if (r->logp) {
                sleep_ms(20);
                lg_log_poll(r->logp, lg_engine_now_us(e) / 1000.0);
        }
        return 0;
}

/* Rates from the engine's counters: the ramp, messages, publishing, heartbeat bytes. */
static void summarize_rates(lg_run *r)
{
        lg_summary *s = &r->s;
        uint64_t last = 0;

        for (unsigned i = 0; i < r->e.nthreads; i++)
                if (r->e.threads[i].last_first_us > last)
                        last = r->e.threads[i].last_first_us;
        /* The ramp ends when the last first attempt resolved (open or failed). */
        s->ramp_s = last / 1e6;
        s->rate_per_s = s->ramp_s > 0 ? (double)TW_GET(s->c.established_first) / s->ramp_s : 0;
        s->msgs_per_s = s->elapsed_s > 0 ? (double)TW_GET(s->c.msgs_received) / s->elapsed_s : 0;
        s->pubsub = lg_opts_pubsub(&r->o);
        if (s->pubsub) {
                /* Topic messages over the window they could flow in. */
                s->pub_window_s = r->w.pub_start_us ? s->elapsed_s - r->w.pub_start_us / 1e6 : 0;
                s->msgs_per_s =
                    s->pub_window_s > 0 ? (double)TW_GET(s->c.topic_msgs) / s->pub_window_s : 0;
                s->pub_per_s =
                    s->pub_window_s > 0 ? (double)TW_GET(s->c.pub_acked) / s->pub_window_s : 0;
        }
        s->conn_seconds = r->w.conn_seconds;
        if (r->w.conn_seconds > 0) {
                /* Every heartbeat frame is its own segment on an idle connection: 52 bytes
                 * of IPv4 + TCP (with timestamps) headers, and the bare ACK coming back. */
                s->hb_bytes_per_conn_s = (double)TW_GET(s->c.hb_bytes) / r->w.conn_seconds;
                s->hb_wire_per_conn_s =
                    ((double)TW_GET(s->c.hb_bytes) + 104.0 * (double)TW_GET(s->c.hb_frames)) /
                    r->w.conn_seconds;
        }
}

/* What the server saw: its /metrics after the run, the gauge, and detection by the
 * source this scenario has (the clients, the server's log, or its histogram). */
static void summarize_server(lg_run *r)
{
        const lg_opts *o = &r->o;
        lg_summary *s = &r->s;
        lg_watch *w = &r->w;

        memset(&r->after, 0, sizeof(r->after));
        if (w->have_base && lg_probe_scrape(&o->target, &r->after) == 0) {
                s->srv_det_count = r->after.det_count - w->base.det_count;
                s->srv_det_sum_s = r->after.det_sum - w->base.det_sum;
                s->srv_timeouts = r->after.heartbeat_timeouts - w->base.heartbeat_timeouts;
        }
        if (o->scenario == LG_SC_ABORT || o->scenario == LG_SC_GRACEFUL) {
                s->have_gauge = w->have_base;
                s->gauge_baseline = w->base.connections;
                s->gauge_expected = w->base.connections + (double)TW_GET(s->c.open);
                s->gauge_final = w->gauge_last;
                s->gauge_return_ms = w->gauge_return_ms;
        }
        s->detect_source = "none";
        if (o->scenario == LG_SC_SILENT) {
                if (o->silence == LG_SILENCE_APP) {
                        s->detect_source = "client";
                } else if (r->logp) {
                        s->detect_source = "server_log";
                        match_power(&r->e, r->logp, s, &r->rows, &r->nrows);
                } else if (r->after.ok) {
                        s->detect_source = "server_histogram";
                        detect_from_histogram(&w->base, &r->after, s);
                }
        }
        lg_samples_sort(&s->detect_ms);
        lg_samples_sort(&s->observed_ms);
        lg_samples_sort(&s->dead_ms);
        if (s->have_expected)
                for (size_t i = 0; i < s->detect_ms.n; i++)
                        if (s->detect_ms.v[i] < r->exp_min || s->detect_ms.v[i] > r->exp_max)
                                s->outside++;
}

/* Turns the engine's threads and the watch into the summary. */
static void summarize(lg_run *r)
{
        const lg_opts *o = &r->o;
        lg_summary *s = &r->s;
        lg_watch *w = &r->w;

        struct timespec wall;

        s->o = o;
        s->threads = r->e.nthreads;
        s->elapsed_s = lg_engine_now_us(&r->e) / 1e6;
        clock_gettime(CLOCK_REALTIME, &wall);
        s->start_unix_ms = (double)wall.tv_sec * 1000 + wall.tv_nsec / 1e6 - s->elapsed_s * 1000;
        lg_engine_sum(&r->e, &s->c);
        merge_threads(&r->e, s, &r->rows, &r->nrows);
        summarize_rates(r);
        if (o->server_pid) {
                s->srv_rss_base_kib = w->srv_rss_base;
                s->srv_rss_max_kib = w->srv_rss_max;
                s->srv_rss_end_kib = w->srv_rss_last;
                s->srv_rss = w->srv_rss;
                s->srv_rss_n = w->srv_rss_n / 2;
        }
        s->slow_clients = o->scenario == LG_SC_SLOW ? lg_scenario_hit_count(o, o->connections) : 0;
        s->hits = lg_scenario_hit_count(o, o->connections);
        s->silent = TW_GET(s->c.silent);
        s->exp_min = r->exp_min;
        s->exp_max = r->exp_max;
        s->first_drop_ms = r->e.first_drop_us ? (r->e.first_drop_us - 1) / 1000.0 : -1;
        s->all_back_ms = w->all_back_ms;
        lg_engine_per_target(&r->e, s->tgt_est, s->tgt_open, s->tgt_moved);
        s->peak_accept_per_s = w->peak_rate;
        summarize_server(r);
        read_rss(&s->rss_kib, &s->hwm_kib);
}

/* The table on stdout, then --json and --csv. Returns 1 when a file could not be written
 * or an engine thread failed, else 0. */
static int emit(lg_run *r)
{
        const lg_opts *o = &r->o;
        int ret, rc = 0;

        lg_report_table(stdout, &r->s);
        fflush(stdout);
        if (o->json_path && (ret = lg_report_json(o->json_path, &r->s)) < 0) {
                fprintf(stderr, "tickwire-loadgen: --json %s: %s\n", o->json_path, strerror(-ret));
                rc = 1;
        }
        if (o->csv_path && (ret = lg_report_csv(o->csv_path, r->rows, r->nrows)) < 0) {
                fprintf(stderr, "tickwire-loadgen: --csv %s: %s\n", o->csv_path, strerror(-ret));
                rc = 1;
        }
        for (unsigned i = 0; i < r->e.nthreads; i++)
                if (r->e.threads[i].err < 0)
                        rc = 1;
        return rc;
}

static void release(lg_run *r)
{
        free(r->rows);
        free(r->w.srv_rss);
        lg_samples_free(&r->s.detect_ms);
        lg_samples_free(&r->s.observed_ms);
        lg_samples_free(&r->s.dead_ms);
        if (r->logp)
                lg_log_close(r->logp);
        lg_engine_free(&r->e);
}

int main(int argc, char **argv)
{
        static lg_run r; /* large (the engine, the summary): not on the stack */
        int rc = prepare(&r, argc, argv);

        if (rc >= 0)
                return rc;
        rc = run_and_watch(&r);
        if (rc != 0)
                return rc; /* a half-started engine is left to the exit, as it always was */
        summarize(&r);
        rc = emit(&r);
        release(&r);
        return rc;
}
