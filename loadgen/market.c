/*
 * Pub/sub on the client side. Everything here runs on the engine thread that owns the
 * connection; the only shared state is the read-only Zipf table and the publish start
 * time main sets once every subscriber has resolved (so publishers load a complete
 * audience, and messages/s is measured over the same window for every run).
 */
#include "market.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine.h"

/* Publishes in flight per publisher before it stops sending and counts the rest as
 * skipped: the server is not keeping up, and queueing more would only measure our
 * own buffer. */
#define LG_PUB_WINDOW 4096
#define LG_PUB_RBUF   8192

/* ---- set-up ---- */

int lg_market_init(lg_market *m, const lg_opts *o)
{
        double sum = 0;
        uint32_t k = o->publishers ? o->publishers : 1;

        memset(m, 0, sizeof(*m));
        m->topics = o->topics;
        m->cdf = malloc(o->topics * sizeof(*m->cdf));
        m->pad = malloc((size_t)o->payload + 1);
        if (!m->cdf || !m->pad) {
                lg_market_free(m);
                return -ENOMEM;
        }
        memset(m->pad, 'x', o->payload);
        for (uint32_t i = 0; i < o->topics; i++) {
                sum += 1.0 / pow((double)i + 1.0, o->zipf_s);
                m->cdf[i] = sum;
        }
        for (uint32_t i = 0; i < o->topics; i++)
                m->cdf[i] /= sum;
        m->cdf[o->topics - 1] = 1.0;
        m->rate_per_pub = o->publish_rate / k;
        if (m->rate_per_pub > 0) {
                m->burst = o->burst ? o->burst : (uint32_t)ceil(m->rate_per_pub / 1000.0);
                if (m->burst == 0)
                        m->burst = 1;
                m->tick_us = (uint64_t)(m->burst * 1e6 / m->rate_per_pub);
                if (m->tick_us < 1000)
                        m->tick_us = 1000; /* the wheel's grain; pacing catches up by count */
        }
        return 0;
}

void lg_market_free(lg_market *m)
{
        free(m->cdf);
        free(m->pad);
        m->cdf = NULL;
        m->pad = NULL;
}

static uint64_t splitmix(uint64_t x)
{
        x += 0x9e3779b97f4a7c15ull;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
        return x ^ (x >> 31);
}

uint32_t lg_market_topic_of(const lg_market *m, uint64_t seed, uint32_t id)
{
        double u = (double)(splitmix(seed ^ ((uint64_t)id << 20 | 0x5a)) >> 11) * 0x1.0p-53;
        uint32_t lo = 0, hi = m->topics - 1;

        while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;

                if (m->cdf[mid] < u)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

size_t lg_market_topic_name(uint32_t k, char *out)
{
        return (size_t)snprintf(out, 16, "lg.%" PRIu32, k);
}

size_t lg_market_data(const lg_market *m, char *out, uint64_t t_us, uint32_t payload)
{
        int n = snprintf(out, 32, "{\"t\":%" PRIu64, t_us);
        size_t pad;

        /* {"t":T,"p":"<pad>"}: 7 bytes around the padding. */
        if ((size_t)n + 8 > payload) {
                out[n++] = '}';
                return (size_t)n;
        }
        pad = payload - (size_t)n - 8;
        memcpy(out + n, ",\"p\":\"", 6);
        memcpy(out + n + 6, m->pad, pad);
        memcpy(out + n + 6 + pad, "\"}", 2);
        return payload;
}

/* ---- scanning ---- */

static uint64_t digits_after(const uint8_t *p, size_t n, const char *key, size_t klen,
                             const uint8_t **at)
{
        const uint8_t *q = memmem(p, n, key, klen);
        const uint8_t *end = p + n;
        uint64_t v = 0;

        if (!q) {
                *at = NULL;
                return UINT64_MAX;
        }
        q += klen;
        if (q >= end || *q < '0' || *q > '9') {
                *at = NULL;
                return UINT64_MAX;
        }
        while (q < end && *q >= '0' && *q <= '9')
                v = v * 10 + (uint64_t)(*q++ - '0');
        *at = q;
        return v;
}

#define LIT(s) s, sizeof(s) - 1

static bool starts(const uint8_t *p, size_t n, const char *lit, size_t len)
{
        return n >= len && memcmp(p, lit, len) == 0;
}

void lg_market_scan(const uint8_t *p, size_t n, lg_msg_view *v)
{
        const uint8_t *at;

        memset(v, 0, sizeof(*v));
        v->t = UINT64_MAX;
        v->recovered = -1;
        if (starts(p, n, LIT("{\"type\":\"message\""))) {
                v->kind = LG_MSG_MESSAGE;
                v->seq = digits_after(p + 17, n - 17, LIT("\"seq\":"), &at);
                if (at)
                        v->t = digits_after(at, (size_t)(p + n - at), LIT("\"t\":"), &at);
        } else if (starts(p, n, LIT("{\"type\":\"subscribed\""))) {
                v->kind = LG_MSG_SUBSCRIBED;
                v->seq = digits_after(p, n, LIT("\"seq\":"), &at);
                if ((at = memmem(p, n, LIT("\"epoch\":\"")))) {
                        const uint8_t *e = at + sizeof("\"epoch\":\"") - 1;
                        const uint8_t *q = memchr(e, '"', (size_t)(p + n - e));

                        if (q) {
                                v->epoch = e;
                                v->elen = (size_t)(q - e);
                        }
                }
                if (memmem(p, n, LIT("\"recovered\":true")))
                        v->recovered = 1;
                else if (memmem(p, n, LIT("\"recovered\":false")))
                        v->recovered = 0;
        } else if (starts(p, n, LIT("{\"type\":\"published\""))) {
                v->kind = LG_MSG_PUBLISHED;
                v->seq = digits_after(p, n, LIT("\"seq\":"), &at);
        } else if (starts(p, n, LIT("{\"type\":\"error\""))) {
                v->kind = LG_MSG_ERROR;
        }
}

long lg_market_http_responses(const char *buf, size_t len, uint32_t *ok, uint32_t *bad)
{
        size_t off = 0;

        while (off < len) {
                const char *p = buf + off, *end = memmem(p, len - off, "\r\n\r\n", 4);
                const char *cl;
                size_t head, body = 0;
                int status;

                if (!end)
                        break;
                head = (size_t)(end - p) + 4;
                if (head < 12 || memcmp(p, "HTTP/1.", 7) != 0)
                        return -1;
                status = atoi(p + 9);
                /* Our server always sends Content-Length; search the head only. */
                for (cl = p; cl && cl < end; cl = memchr(cl, '\n', (size_t)(end - cl))) {
                        if (*cl == '\n')
                                cl++;
                        if ((size_t)(end - cl) > 15 &&
                            strncasecmp(cl, "content-length:", 15) == 0) {
                                body = strtoul(cl + 15, NULL, 10);
                                break;
                        }
                }
                if (len - off < head + body)
                        break;
                if (status >= 200 && status < 300)
                        (*ok)++;
                else
                        (*bad)++;
                off += head + body;
        }
        return (long)off;
}

/* ---- subscribers ---- */

void lg_market_on_open(lg_thread *t, lg_conn *c)
{
        lg_sub *s = &t->subs[lg_conn_slot(t, c)];
        char msg[128], name[16];
        int n;

        lg_market_topic_name(s->topic, name);
        if ((s->flags & LG_SUB_HAVE) && t->eng->o->scenario == LG_SC_STORM) {
                /* Came back after a drop (maybe on another node): ask for what we missed,
                 * in the epoch our seq belongs to. */
                n = snprintf(msg, sizeof(msg),
                             "{\"type\":\"subscribe\",\"topic\":\"%s\",\"since\":%" PRIu64
                             "%s%.*s%s}",
                             name, s->last, s->elen ? ",\"epoch\":\"" : "", (int)s->elen, s->epoch,
                             s->elen ? "\"" : "");
                s->flags |= LG_SUB_RESUMING;
                TW_INC(t->c.resumes);
        } else {
                n = snprintf(msg, sizeof(msg), "{\"type\":\"subscribe\",\"topic\":\"%s\"}", name);
        }
        s->flags |= LG_SUB_WAIT;
        lg_conn_queue_text(t, c, msg, (size_t)n);
        lg_conn_flush(t, c);
}

static void on_topic_message(lg_thread *t, lg_conn *c, lg_sub *s, const lg_msg_view *v)
{
        bool slow = s->flags & LG_SUB_SLOW;
        uint64_t lost = 0;

        if (v->seq == UINT64_MAX)
                return;
        if (!slow) {
                TW_INC(t->c.topic_msgs);
                if (v->t != UINT64_MAX && v->t <= t->now_us)
                        lg_hist_add(&t->e2e_us, t->now_us - v->t);
        } else {
                TW_INC(t->c.slow_msgs);
        }
        if (!(s->flags & LG_SUB_HAVE)) {
                s->last = v->seq;
                s->flags |= LG_SUB_HAVE;
                return;
        }
        if (v->seq <= s->last) {
                /* Seen already, or going backwards: the epoch has not changed (that
                 * comes with a subscribed, which resets last). */
                TW_INC(t->c.duplicates);
                return;
        }
        lost = v->seq - s->last - 1;
        s->last = v->seq;
        if (!lost) {
                s->flags &= ~LG_SUB_RESUMING;
                return;
        }
        if (slow) {
                TW_INC(t->c.slow_jumps);
                TW_ADD(t->c.slow_lost, lost);
        } else if (s->flags & LG_SUB_RESUMING) {
                TW_INC(t->c.resume_gaps);
                TW_ADD(t->c.resume_lost, lost);
        } else {
                TW_INC(t->c.gaps);
                TW_ADD(t->c.lost, lost);
        }
        s->flags &= ~LG_SUB_RESUMING;
}

static void on_subscribed(lg_thread *t, lg_sub *s, const lg_msg_view *v)
{
        bool other_epoch = false;

        TW_INC(t->c.subscribed);
        s->flags &= ~LG_SUB_WAIT;
        if (v->seq == UINT64_MAX)
                return;
        if (v->epoch) {
                other_epoch =
                    s->elen && (s->elen != v->elen || memcmp(s->epoch, v->epoch, v->elen));
                s->elen = v->elen <= sizeof(s->epoch) ? (uint8_t)v->elen : 0;
                memcpy(s->epoch, v->epoch, s->elen);
        }
        if (other_epoch && v->recovered < 0) {
                /* Another incarnation of the topic (a plain subscribe elsewhere): its
                 * seqs are not comparable with ours. */
                s->last = v->seq;
                s->flags |= LG_SUB_HAVE;
                s->flags &= ~LG_SUB_RESUMING;
                return;
        }
        if (v->recovered == 0) {
                /* History no longer reaches our seq, or the server restarted and its
                 * topic starts over: what is gone cannot be counted, start afresh. */
                TW_INC(t->c.unrecovered);
                s->last = v->seq;
                s->flags |= LG_SUB_HAVE;
                s->flags &= ~LG_SUB_RESUMING;
                return;
        }
        if (v->recovered == 1) {
                /* The replay came before this: nothing was missing after it. */
                if (v->seq > s->last)
                        s->last = v->seq;
                s->flags &= ~LG_SUB_RESUMING;
                return;
        }
        if (!(s->flags & LG_SUB_HAVE) || v->seq > s->last) {
                s->last = v->seq;
                s->flags |= LG_SUB_HAVE;
        }
}

static void on_whole(lg_thread *t, lg_conn *c, const uint8_t *p, size_t n)
{
        lg_msg_view v;

        lg_market_scan(p, n, &v);
        if (c->flags & LG_CF_PUB) {
                lg_pub *pb = lg_conn_pub(t, c);

                if (v.kind == LG_MSG_PUBLISHED || v.kind == LG_MSG_ERROR) {
                        if (pb->unanswered)
                                pb->unanswered--;
                        if (v.kind == LG_MSG_PUBLISHED)
                                TW_INC(t->c.pub_acked);
                        else
                                TW_INC(t->c.pub_errors);
                }
                return;
        }
        switch (v.kind) {
        case LG_MSG_MESSAGE:
                on_topic_message(t, c, &t->subs[lg_conn_slot(t, c)], &v);
                break;
        case LG_MSG_SUBSCRIBED:
                on_subscribed(t, &t->subs[lg_conn_slot(t, c)], &v);
                break;
        case LG_MSG_ERROR:
                TW_INC(t->c.proto_errors);
                break;
        default:
                break;
        }
}

void lg_market_on_text(lg_thread *t, lg_conn *c, const uint8_t *p, size_t n, bool start, bool end)
{
        lg_sub *s;
        size_t take;

        if (start && end) {
                on_whole(t, c, p, n);
                return;
        }
        if (c->flags & LG_CF_PUB)
                return; /* publish answers are small: never split */
        /* A message split across reads: its seq and t are near the front. */
        s = &t->subs[lg_conn_slot(t, c)];
        if (start) {
                s->hlen = 0;
                if (!s->head && !(s->head = malloc(LG_SUB_HEAD)))
                        return;
        }
        if (!s->head)
                return;
        take = n < (size_t)(LG_SUB_HEAD - s->hlen) ? n : (size_t)(LG_SUB_HEAD - s->hlen);
        memcpy(s->head + s->hlen, p, take);
        s->hlen = (uint8_t)(s->hlen + take);
        if (end) {
                on_whole(t, c, s->head, s->hlen);
                free(s->head);
                s->head = NULL;
                s->hlen = 0;
        }
}

void lg_market_conn_reset(lg_thread *t, lg_conn *c)
{
        if (c->flags & LG_CF_PUB) {
                lg_pub *p = lg_conn_pub(t, c);

                p->base_us = 0;
                p->sent = 0;
                p->unanswered = 0;
                p->rlen = 0;
                free(p->rbuf);
                p->rbuf = NULL;
                return;
        }
        if (t->subs) {
                lg_sub *s = &t->subs[lg_conn_slot(t, c)];

                free(s->head);
                s->head = NULL;
                s->hlen = 0;
                s->flags &= ~(LG_SUB_WAIT | LG_SUB_RESUMING);
        }
}

/* ---- publishers ---- */

static void publish_one(lg_thread *t, lg_conn *c, lg_pub *p, char *buf, size_t cap)
{
        const lg_opts *o = t->eng->o;
        const lg_market *m = &t->eng->mkt;
        uint32_t npub = o->publishers;
        uint32_t mine = (m->topics - p->index + npub - 1) / npub; /* topics this one owns */
        uint32_t topic = p->index + (p->cursor++ % mine) * npub;
        char name[16], head[384];
        size_t dlen, hlen;

        lg_market_topic_name(topic, name);
        if (o->pub_via == LG_PUB_HTTP) {
                dlen = lg_market_data(m, buf, t->now_us, o->payload);
                hlen = (size_t)snprintf(head, sizeof(head),
                                        "POST /publish?topic=%s HTTP/1.1\r\nHost: %s\r\n"
                                        "Content-Type: application/json\r\n"
                                        "Content-Length: %zu\r\n%s%s%s\r\n",
                                        name, o->target_texts[c->tgt], dlen,
                                        o->publish_token ? "Authorization: Bearer " : "",
                                        o->publish_token ? o->publish_token : "",
                                        o->publish_token ? "\r\n" : "");
                lg_conn_queue(t, c, head, hlen);
                lg_conn_queue(t, c, buf, dlen);
        } else {
                hlen = (size_t)snprintf(buf, cap,
                                        "{\"type\":\"publish\",\"topic\":\"%s\",\"data\":", name);
                dlen = lg_market_data(m, buf + hlen, t->now_us, o->payload);
                buf[hlen + dlen] = '}';
                lg_conn_queue_text(t, c, buf, hlen + dlen + 1);
        }
        p->unanswered++;
        TW_INC(t->c.pub_sent);
}

void lg_market_pub_tick(lg_thread *t, lg_conn *c)
{
        const lg_market *m = &t->eng->mkt;
        uint64_t start = atomic_load_explicit(&t->eng->pub_start_us, memory_order_acquire);
        lg_pub *p = lg_conn_pub(t, c);
        uint64_t due, target;
        size_t cap = (size_t)t->eng->o->payload + 256;
        char *buf;

        if (m->rate_per_pub <= 0)
                return;
        if (!start) {
                /* The audience is still connecting. */
                lg_conn_arm(t, c, t->now_us + 5000);
                return;
        }
        if (!p->base_us) {
                p->base_us = start - 1 > t->now_us ? start - 1 : t->now_us;
                p->sent = 0;
        }
        target = (uint64_t)((double)(t->now_us - p->base_us) * m->rate_per_pub / 1e6);
        due = target > p->sent ? target - p->sent : 0;
        if (due > 4ull * m->burst) {
                /* Far behind (a stall, a reconnect): the past is not sent late. */
                TW_ADD(t->c.pub_skipped, due - m->burst);
                p->sent += due - m->burst;
                due = m->burst;
        }
        buf = due ? malloc(cap) : NULL;
        for (; due && buf && p->unanswered < LG_PUB_WINDOW; due--, p->sent++)
                publish_one(t, c, p, buf, cap);
        free(buf);
        if (due) {
                TW_ADD(t->c.pub_skipped, due);
                p->sent += due;
        }
        lg_conn_flush(t, c);
        lg_conn_arm(t, c, t->now_us + m->tick_us);
}

bool lg_market_pub_http(lg_thread *t, lg_conn *c, const uint8_t *data, size_t n)
{
        lg_pub *p = lg_conn_pub(t, c);
        uint32_t ok = 0, bad = 0;
        long used;

        while (n) {
                size_t take;

                if (!p->rbuf && !(p->rbuf = malloc(LG_PUB_RBUF)))
                        return false;
                take = n < LG_PUB_RBUF - p->rlen ? n : LG_PUB_RBUF - p->rlen;
                memcpy(p->rbuf + p->rlen, data, take);
                p->rlen += (uint32_t)take;
                data += take;
                n -= take;
                used = lg_market_http_responses(p->rbuf, p->rlen, &ok, &bad);
                if (used < 0 || (used == 0 && p->rlen == LG_PUB_RBUF))
                        return false;
                memmove(p->rbuf, p->rbuf + used, p->rlen - (size_t)used);
                p->rlen -= (uint32_t)used;
        }
        TW_ADD(t->c.pub_acked, ok);
        TW_ADD(t->c.pub_errors, bad);
        p->unanswered = p->unanswered > ok + bad ? p->unanswered - ok - bad : 0;
        if (!p->rlen) {
                free(p->rbuf);
                p->rbuf = NULL;
        }
        return true;
}
