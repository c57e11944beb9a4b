/*
 * Publish/subscribe and fan-out.
 *
 * A topic is shared by every worker; its publish path is serialized by one mutex per
 * topic, held only to assign the next seq, write the envelope, append the frame to the
 * history and post a reference of it into the inbox of each worker that has subscribers
 * of the topic. Posting under the topic's lock is what keeps a topic's messages in seq
 * order in every inbox whichever worker published them; different topics never contend.
 *
 * Each message is encoded once into one immutable frame (header + envelope, the data byte
 * for byte) and shared: history, inboxes and every subscriber's send queue hold
 * references. A worker's inbox is a mutex-protected vector swapped out whole when the
 * worker drains it, so a post is an append and a drain takes the lock once per batch.
 * The target is woken by IORING_OP_MSG_RING sent from the publishing worker's own ring;
 * an atomic `woken` flag, cleared by the target before it drains, keeps at most one wake
 * in flight per target. The worker also drains on every loop turn, which covers its own
 * posts (a worker publishes to its own subscribers through its own inbox too: delivering
 * them directly would let them overtake older messages of the same topic still queued
 * in the inbox by another worker).
 *
 * Per worker, a topic keeps the list of its local subscribers (slot, generation, and the
 * seq the subscription starts after). Only that worker reads or writes the list; its
 * length changes under the topic lock, because publishers read it to decide whether the
 * worker needs a post at all: a worker without subscribers does no work for the topic.
 *
 * Subscribe vs. a concurrent publish: the subscriber takes the topic lock, reads the
 * topic's last seq S, collects the replay (history or snapshot, seq <= S) and joins the
 * list with "deliver only seq > S". Every later publish sees it and posts; a message <= S
 * still in the inbox is skipped for it. So each seq reaches it exactly once.
 */
#include "tickwire/topic.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tickwire/server.h"

#define TW_TOPIC_BUCKETS (1u << 17) /* hash buckets; chains stay short up to the cap */
#define TW_HISTORY_MIN   16         /* first history allocation (slots) */

/* One subscriber of a topic on one worker. */
struct tw_sub {
        uint32_t slot, gen; /* the connection */
        uint64_t after;     /* deliver only seq > after (what the subscribe replayed) */
};

/* A topic's subscribers on one worker: owned by that worker; n changes under the topic
 * lock (publishers read it). */
struct tw_local {
        struct tw_sub *v;
        uint32_t n, cap;
};

typedef struct tw_topic {
        struct tw_topic *_Atomic next; /* hash chain (lock-free readers) */
        uint32_t id;                   /* frame->topic_id, from 1 */
        uint32_t hash;
        pthread_mutex_t mu;      /* the sequencer: seq, hist, local[*]->n */
        tw_history hist;         /* hist.last is the topic's seq */
        struct tw_local **local; /* [nworkers]; allocated by that worker on first use */
        uint8_t name_len;
        char name[TW_TOPIC_MAX + 1];
} tw_topic;

struct tw_post {
        tw_topic *t;
        tw_frame *f; /* a reference owned by the inbox */
};

struct tw_inbox {
        pthread_mutex_t mu;
        struct tw_post *v; /* posts in arrival order (per topic: seq order) */
        uint32_t n, cap;
        struct tw_post *spare; /* the drained vector, reused */
        uint32_t spare_cap;
        _Atomic int woken; /* a wake is in flight or the inbox is non-empty */
} __attribute__((aligned(64)));

/* A connection's subscriptions: topic and its index in the topic's local list. */
struct tw_subs {
        uint32_t n, cap;
        struct {
                tw_topic *t;
                uint32_t idx;
        } e[];
};

struct tw_topics {
        tw_topic *_Atomic *buckets;
        pthread_mutex_t create_mu; /* creation only; lookups take no lock */
        _Atomic uint32_t count;
        unsigned nworkers;
        struct tw_inbox *inbox; /* [nworkers] */
};

/* ---- envelope ---- */

static const char ENV_A[] = "{\"type\":\"message\",\"topic\":\"";
static const char ENV_B[] = "\",\"seq\":";
static const char ENV_C[] = ",\"data\":";

size_t tw_topic_encode_max(size_t topic_len, size_t data_len)
{
        return TW_WS_MAX_HEADER + sizeof(ENV_A) - 1 + topic_len + sizeof(ENV_B) - 1 + 20 +
               sizeof(ENV_C) - 1 + data_len + 1;
}

size_t tw_topic_encode(uint8_t *out, size_t cap, tw_span topic, uint64_t seq, tw_span data)
{
        char digits[24];
        int nd = snprintf(digits, sizeof(digits), "%" PRIu64, seq);
        size_t plen = sizeof(ENV_A) - 1 + topic.n + sizeof(ENV_B) - 1 + (size_t)nd + sizeof(ENV_C) -
                      1 + data.n + 1;
        uint8_t hdr[TW_WS_MAX_HEADER];
        size_t hlen = tw_ws_header_build(hdr, TW_WS_OP_TEXT, true, plen, NULL);
        uint8_t *p = out;

        if (hlen + plen > cap)
                return 0;
#define PUT(src, len)                                                                              \
        do {                                                                                       \
                memcpy(p, (src), (len));                                                           \
                p += (len);                                                                        \
        } while (0)
        PUT(hdr, hlen);
        PUT(ENV_A, sizeof(ENV_A) - 1);
        PUT(topic.p, topic.n);
        PUT(ENV_B, sizeof(ENV_B) - 1);
        PUT(digits, (size_t)nd);
        PUT(ENV_C, sizeof(ENV_C) - 1);
        PUT(data.p, data.n);
        *p++ = '}';
#undef PUT
        return (size_t)(p - out);
}

/* ---- history ---- */

int tw_history_push(tw_history *h, tw_frame *f)
{
        uint64_t seq = h->last + 1;

        if (h->n == h->cap && h->cap < h->max) {
                uint32_t cap = h->cap ? h->cap * 2 : TW_HISTORY_MIN;
                tw_frame **v;

                if (cap > h->max)
                        cap = h->max;
                v = calloc(cap, sizeof(*v));
                if (!v)
                        return -ENOMEM;
                for (uint64_t s = h->last - h->n + 1; s <= h->last; s++)
                        v[s % cap] = h->v[s % h->cap];
                free(h->v);
                h->v = v;
                h->cap = cap;
        }
        if (h->cap == 0)
                return -ENOMEM; /* max == 0: nothing can be held */
        if (h->n == h->cap) {
                tw_frame_unref(h->v[seq % h->cap]); /* the oldest shares the slot */
                h->n--;
        }
        h->v[seq % h->cap] = f;
        h->n++;
        h->last = seq;
        return 0;
}

tw_frame *tw_history_get(const tw_history *h, uint64_t seq)
{
        if (seq == 0 || seq > h->last || seq < tw_history_oldest(h))
                return NULL;
        return h->v[seq % h->cap];
}

uint64_t tw_history_oldest(const tw_history *h)
{
        return h->last - h->n + 1;
}

void tw_history_free(tw_history *h)
{
        for (uint64_t s = h->last - h->n + 1; h->n && s <= h->last; s++)
                tw_frame_unref(h->v[s % h->cap]);
        free(h->v);
        h->v = NULL;
        h->n = h->cap = 0;
}

/* ---- conflation ---- */

/* Inserts id (non-zero) into an open-addressing set; false when it was there. */
static bool seen_insert(uint32_t *set, uint32_t mask, uint32_t id)
{
        uint32_t i = (id * 2654435761u) & mask;

        while (set[i]) {
                if (set[i] == id)
                        return false;
                i = (i + 1) & mask;
        }
        set[i] = id;
        return true;
}

int64_t tw_conflate(tw_frame **q, uint32_t cap, uint32_t *head, uint32_t *count, uint32_t keep,
                    bool all, uint64_t *bytes)
{
        uint32_t n = *count, h = *head, j = n, mask = 0;
        uint32_t *seen = NULL;
        int64_t dropped = 0;

        if (keep >= n)
                return 0;
        if (!all) {
                uint32_t sz = 16;

                while (sz < 2 * (n - keep))
                        sz <<= 1;
                seen = calloc(sz, sizeof(*seen));
                if (!seen)
                        return -ENOMEM;
                mask = sz - 1;
        }
        /* Newest first, so the first of each topic met is the one kept; survivors are
         * packed towards the tail in their original order. */
        for (uint32_t i = n; i-- > keep;) {
                tw_frame *f = q[(h + i) % cap];
                bool drop = all || (f->topic_id && !seen_insert(seen, mask, f->topic_id));

                if (drop) {
                        dropped += f->topic_id != 0;
                        *bytes -= f->len;
                        tw_frame_unref(f);
                } else {
                        q[(h + --j) % cap] = f;
                }
        }
        for (uint32_t i = keep; i-- > 0;)
                q[(h + --j) % cap] = q[(h + i) % cap];
        *head = (h + j) % cap;
        *count = n - j;
        free(seen);
        return dropped;
}

/* ---- registry ---- */

static uint32_t hash_name(tw_span s)
{
        uint32_t x = 2166136261u;

        for (size_t i = 0; i < s.n; i++)
                x = (x ^ (uint8_t)s.p[i]) * 16777619u;
        return x;
}

static tw_topic *find(struct tw_topics *r, tw_span name, uint32_t hash)
{
        tw_topic *t =
            atomic_load_explicit(&r->buckets[hash & (TW_TOPIC_BUCKETS - 1)], memory_order_acquire);

        for (; t; t = atomic_load_explicit(&t->next, memory_order_acquire))
                if (t->hash == hash && t->name_len == name.n && !memcmp(t->name, name.p, name.n))
                        return t;
        return NULL;
}

/* The topic called name, created when absent; NULL (errno-style *err) at the cap or out
 * of memory. */
static tw_topic *topic_get(tw_server *srv, tw_span name, int *err)
{
        struct tw_topics *r = srv->topics;
        uint32_t hash = hash_name(name);
        tw_topic *t = find(r, name, hash);
        tw_topic *_Atomic *b;

        if (t)
                return t;
        pthread_mutex_lock(&r->create_mu);
        t = find(r, name, hash); /* lost a race to create it? */
        if (t)
                goto out;
        *err = -ENOSPC;
        if (atomic_load_explicit(&r->count, memory_order_relaxed) >= TW_TOPICS_MAX)
                goto out;
        *err = -ENOMEM;
        t = calloc(1, sizeof(*t));
        if (!t)
                goto out;
        t->local = calloc(r->nworkers, sizeof(*t->local));
        if (!t->local) {
                free(t);
                t = NULL;
                goto out;
        }
        pthread_mutex_init(&t->mu, NULL);
        t->hash = hash;
        t->name_len = (uint8_t)name.n;
        memcpy(t->name, name.p, name.n);
        t->hist.max = srv->cfg.history;
        t->id = atomic_fetch_add_explicit(&r->count, 1, memory_order_relaxed) + 1;
        b = &r->buckets[hash & (TW_TOPIC_BUCKETS - 1)];
        atomic_store_explicit(&t->next, atomic_load_explicit(b, memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(b, t, memory_order_release); /* publishes the whole topic */
out:
        pthread_mutex_unlock(&r->create_mu);
        return t;
}

int tw_topic_init(tw_server *srv)
{
        struct tw_topics *r = calloc(1, sizeof(*r));

        if (!r)
                return -ENOMEM;
        r->nworkers = srv->nworkers;
        r->buckets = calloc(TW_TOPIC_BUCKETS, sizeof(*r->buckets));
        r->inbox = aligned_alloc(64, sizeof(*r->inbox) * srv->nworkers);
        if (!r->buckets || !r->inbox) {
                free(r->buckets);
                free(r->inbox);
                free(r);
                return -ENOMEM;
        }
        memset(r->inbox, 0, sizeof(*r->inbox) * srv->nworkers);
        for (unsigned i = 0; i < srv->nworkers; i++)
                pthread_mutex_init(&r->inbox[i].mu, NULL);
        pthread_mutex_init(&r->create_mu, NULL);
        srv->topics = r;
        return 0;
}

void tw_topic_free(tw_server *srv)
{
        struct tw_topics *r = srv->topics;

        if (!r)
                return;
        for (uint32_t b = 0; b < TW_TOPIC_BUCKETS; b++) {
                tw_topic *t = atomic_load_explicit(&r->buckets[b], memory_order_relaxed);

                while (t) {
                        tw_topic *next = atomic_load_explicit(&t->next, memory_order_relaxed);

                        tw_history_free(&t->hist);
                        for (unsigned i = 0; i < r->nworkers; i++) {
                                if (t->local[i])
                                        free(t->local[i]->v);
                                free(t->local[i]);
                        }
                        free(t->local);
                        pthread_mutex_destroy(&t->mu);
                        free(t);
                        t = next;
                }
        }
        for (unsigned i = 0; i < r->nworkers; i++) {
                struct tw_inbox *ib = &r->inbox[i];

                for (uint32_t k = 0; k < ib->n; k++)
                        tw_frame_unref(ib->v[k].f);
                free(ib->v);
                free(ib->spare);
                pthread_mutex_destroy(&ib->mu);
        }
        free(r->inbox);
        free(r->buckets);
        pthread_mutex_destroy(&r->create_mu);
        free(r);
        srv->topics = NULL;
}

/* ---- inboxes ---- */

/* Posts a reference of f for topic t to worker k's inbox and wakes k unless a wake is
 * already pending. Called with t->mu held. */
static int post(tw_worker *w, unsigned k, tw_topic *t, tw_frame *f)
{
        tw_server *srv = w->srv;
        struct tw_inbox *ib = &srv->topics->inbox[k];
        int fd;

        pthread_mutex_lock(&ib->mu);
        if (ib->n == ib->cap) {
                uint32_t cap = ib->cap ? ib->cap * 2 : 64;
                struct tw_post *v = realloc(ib->v, cap * sizeof(*v));

                if (!v) {
                        pthread_mutex_unlock(&ib->mu);
                        return -ENOMEM;
                }
                ib->v = v;
                ib->cap = cap;
        }
        ib->v[ib->n++] = (struct tw_post){t, tw_frame_ref(f)};
        pthread_mutex_unlock(&ib->mu);

        if (atomic_exchange_explicit(&ib->woken, 1, memory_order_seq_cst))
                return 0; /* a wake (or our own turn's drain) is already due */
        if (k == w->id)
                return 0; /* drained at the end of this loop turn */
        fd = atomic_load_explicit(&srv->workers[k].ring_fd, memory_order_acquire);
        if (fd > 0) {
                struct io_uring_sqe *sqe = tw_ring_sqe(&w->ring);

                io_uring_prep_msg_ring(sqe, fd, 0, tw_ud(TW_K_WAKE, 0, 0), 0);
                io_uring_sqe_set_data64(sqe, tw_ud(TW_K_IGNORE, 0, 0));
                sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
        }
        /* fd <= 0: that worker has not started; it drains on its first turn. */
        return 0;
}

/* Hands f to this worker's subscribers of t; consumes the inbox's reference. */
static void deliver(tw_worker *w, tw_topic *t, tw_frame *f)
{
        struct tw_local *l = t->local[w->id];
        uint32_t refs, sent = 0;

        if (!l || l->n == 0) {
                tw_frame_unref(f);
                return;
        }
        /* Every worker holds this frame: one atomic add for all our subscribers (the list
         * only shrinks during the loop), and what is left over goes back at the end with
         * the inbox's reference, instead of one contended operation per subscriber. */
        refs = l->n;
        tw_frame_ref_n(f, refs);
        /* Backwards: a send that ends a connection removes it from this list by moving
         * the last entry (already served) into its place. */
        for (uint32_t i = l->n; i-- > 0;) {
                struct tw_sub *s;
                tw_conn *c;

                if (i >= l->n)
                        continue;
                s = &l->v[i];
                if (s->after >= f->seq)
                        continue;
                c = &w->conns[s->slot];
                if (c->gen != s->gen || c->state != TW_CONN_OPEN)
                        continue;
                TW_INC(w->metrics.messages_sent);
                sent++;
                tw_conn_send(w, c, f);
        }
        tw_frame_unref_n(f, refs - sent + 1);
}

void tw_topic_drain_inbox(tw_worker *w)
{
        struct tw_topics *r = w->srv->topics;
        struct tw_inbox *ib;
        struct tw_post *v;
        uint32_t n, vcap;

        if (!r)
                return;
        ib = &r->inbox[w->id];
        if (!atomic_load_explicit(&ib->woken, memory_order_relaxed))
                return;
        /* Cleared before taking the posts: a post made after this point sets it again
         * and, if it came from another worker, sends a fresh wake. */
        atomic_store_explicit(&ib->woken, 0, memory_order_seq_cst);
        pthread_mutex_lock(&ib->mu);
        v = ib->v;
        n = ib->n;
        vcap = ib->cap;
        ib->v = ib->spare; /* the spare is the drainer's alone: posts never touch it */
        ib->cap = ib->spare_cap;
        ib->n = 0;
        pthread_mutex_unlock(&ib->mu);
        ib->spare = NULL;
        ib->spare_cap = 0;
        for (uint32_t i = 0; i < n; i++)
                deliver(w, v[i].t, v[i].f);
        ib->spare = v;
        ib->spare_cap = vcap;
}

/* ---- replies ---- */

static void send_error(tw_worker *w, tw_conn *c, const char *code, const char *msg)
{
        char buf[256];
        size_t n = tw_proto_error(buf, sizeof(buf), code, msg);

        if (n)
                tw_conn_send_text(w, c, buf, n);
}

/* ---- publish ---- */

/* Publishes data on topic `name`. Returns the seq, or a negative errno: -ENOSPC at the
 * topic cap, -ENOMEM. */
static int64_t publish(tw_worker *w, tw_span name, tw_span data)
{
        tw_server *srv = w->srv;
        int err = -ENOMEM;
        tw_topic *t = topic_get(srv, name, &err);
        size_t cap = tw_topic_encode_max(name.n, data.n);
        tw_frame *f;
        uint64_t seq;

        if (!t)
                return err;
        f = tw_frame_alloc(cap);
        if (!f)
                return -ENOMEM;
        pthread_mutex_lock(&t->mu);
        seq = t->hist.last + 1;
        f->len = (uint32_t)tw_topic_encode(f->data, cap, name, seq, data);
        f->topic_id = t->id;
        f->seq = seq;
        if (tw_history_push(&t->hist, tw_frame_ref(f)) < 0) {
                pthread_mutex_unlock(&t->mu);
                tw_frame_unref(f);
                tw_frame_unref(f);
                return -ENOMEM;
        }
        for (unsigned k = 0; k < srv->nworkers; k++) {
                struct tw_local *l = t->local[k];

                if (l && l->n && post(w, k, t, f) < 0)
                        TW_INC(w->metrics.limit_hits); /* that worker misses it: a seq gap */
        }
        pthread_mutex_unlock(&t->mu);
        tw_frame_unref(f);
        TW_INC(w->metrics.messages_published);
        return (int64_t)seq;
}

/* Trims JSON whitespace around an HTTP body: the published value is the value itself. */
static tw_span trim(const char *p, size_t n)
{
        while (n && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
                p++, n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n'))
                n--;
        return (tw_span){p, n};
}

int tw_topic_http_publish(tw_worker *w, tw_span topic, const char *body, size_t len, char *out,
                          size_t cap, size_t *out_len)
{
        int status = 200, n;
        int64_t seq;

        if (!tw_topic_valid(topic)) {
                status = 400;
                n = snprintf(out, cap, "{\"error\":\"topic must be 1-128 of [A-Za-z0-9._:-]\"}");
        } else if (!tw_json_valid(body, len)) {
                status = 400;
                n = snprintf(out, cap, "{\"error\":\"body is not one valid JSON value\"}");
        } else if ((seq = publish(w, topic, trim(body, len))) < 0) {
                status = 503;
                n = snprintf(out, cap, "{\"error\":\"%s\"}",
                             seq == -ENOSPC ? "too many topics" : "out of memory");
        } else {
                n = snprintf(out, cap, "{\"seq\":%" PRId64 "}", seq);
        }
        *out_len = n > 0 && (size_t)n < cap ? (size_t)n : 0;
        return status;
}

static void ws_publish(tw_worker *w, tw_conn *c, const tw_msg *m)
{
        char buf[64 + TW_TOPIC_MAX];
        int64_t seq;
        int n;

        if (!(c->flags & TW_CF_PUBLISHER)) {
                send_error(w, c, "forbidden", "publishing needs the publish token");
                return;
        }
        seq = publish(w, m->topic, m->data);
        if (seq < 0) {
                if (seq == -ENOSPC)
                        send_error(w, c, "too_many_topics", "the server's topic limit is reached");
                else
                        send_error(w, c, "internal", "out of memory");
                return;
        }
        n = snprintf(buf, sizeof(buf),
                     "{\"type\":\"published\",\"topic\":\"%.*s\",\"seq\":%" PRId64 "}",
                     (int)m->topic.n, m->topic.p, seq);
        tw_conn_send_text(w, c, buf, (size_t)n);
}

/* ---- subscriptions ---- */

static int subs_find(const struct tw_subs *s, const tw_topic *t)
{
        for (uint32_t i = 0; s && i < s->n; i++)
                if (s->e[i].t == t)
                        return (int)i;
        return -1;
}

/* Removes c's entry (index idx) from t's list on this worker. Called with t->mu held. */
static void local_remove(tw_worker *w, tw_topic *t, uint32_t idx)
{
        struct tw_local *l = t->local[w->id];
        uint32_t last = --l->n;

        if (idx != last) {
                tw_conn *moved;
                int k;

                l->v[idx] = l->v[last];
                moved = &w->conns[l->v[idx].slot];
                k = subs_find(moved->subs, t);
                if (k >= 0)
                        moved->subs->e[k].idx = idx;
        }
}

/* Joins c to t's list on this worker; the index, or -ENOMEM. Called with t->mu held. */
static int64_t local_add(tw_worker *w, tw_topic *t, tw_conn *c, uint64_t after)
{
        struct tw_local *l = t->local[w->id];

        if (!l) {
                l = calloc(1, sizeof(*l));
                if (!l)
                        return -ENOMEM;
                t->local[w->id] = l;
        }
        if (l->n == l->cap) {
                uint32_t cap = l->cap ? l->cap * 2 : 4;
                struct tw_sub *v = realloc(l->v, cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n] = (struct tw_sub){(uint32_t)(c - w->conns), c->gen, after};
        return l->n++;
}

static int subs_reserve(tw_conn *c)
{
        struct tw_subs *s = c->subs;

        if (s && s->n < s->cap)
                return 0;
        uint32_t cap = s ? s->cap * 2 : 2;
        struct tw_subs *ns = realloc(s, sizeof(*s) + cap * sizeof(s->e[0]));

        if (!ns)
                return -ENOMEM;
        if (!s)
                ns->n = 0;
        ns->cap = cap;
        c->subs = ns;
        return 0;
}

/* Frames to replay for a subscribe, collected under the lock and sent after it. */
struct replay {
        tw_frame **f;
        uint32_t n;
        tw_frame *one; /* storage when there is a single frame */
};

static void subscribe(tw_worker *w, tw_conn *c, const tw_msg *m)
{
        const tw_config *cfg = &w->srv->cfg;
        struct replay rp = {&rp.one, 0, NULL};
        int err = -ENOMEM;
        tw_topic *t = topic_get(w->srv, m->topic, &err);
        char buf[96 + TW_TOPIC_MAX];
        int k, n, recovered = -1;
        uint64_t last;

        if (!t) {
                if (err == -ENOSPC)
                        send_error(w, c, "too_many_topics", "the server's topic limit is reached");
                else
                        send_error(w, c, "internal", "out of memory");
                return;
        }
        k = subs_find(c->subs, t);
        if (k < 0 && c->subs && c->subs->n >= cfg->max_subscriptions) {
                send_error(w, c, "too_many_subscriptions", "the per-connection limit is reached");
                return;
        }
        if (k < 0 && subs_reserve(c) < 0) {
                send_error(w, c, "internal", "out of memory");
                return;
        }
        pthread_mutex_lock(&t->mu);
        last = t->hist.last;
        if (m->has_since) {
                uint64_t from = m->since + 1, oldest = tw_history_oldest(&t->hist);

                /* Complete when nothing after `since` is missing from history. A since
                 * beyond the topic's seq (a server restart reset it) cannot be trusted. */
                recovered = m->since <= last && from >= oldest;
                if (from < oldest)
                        from = oldest;
                if (m->since < last) {
                        uint64_t cnt = last - from + 1;

                        if (cnt > 1)
                                rp.f = malloc(cnt * sizeof(*rp.f));
                        if (!rp.f) {
                                rp.f = &rp.one;
                                recovered = 0;
                                from = last; /* out of memory: at least the latest */
                        }
                        for (uint64_t s = from; s <= last; s++)
                                rp.f[rp.n++] = tw_frame_ref(tw_history_get(&t->hist, s));
                }
        }
        if (m->snapshot && rp.n == 0 && last > 0 && !(m->has_since && m->since == last))
                rp.f[rp.n++] = tw_frame_ref(tw_history_get(&t->hist, last));
        if (k < 0) {
                int64_t idx = local_add(w, t, c, last);

                if (idx < 0) {
                        pthread_mutex_unlock(&t->mu);
                        for (uint32_t i = 0; i < rp.n; i++)
                                tw_frame_unref(rp.f[i]);
                        if (rp.f != &rp.one)
                                free(rp.f);
                        send_error(w, c, "internal", "out of memory");
                        return;
                }
                c->subs->e[c->subs->n].t = t;
                c->subs->e[c->subs->n].idx = (uint32_t)idx;
                c->subs->n++;
        } else if (rp.n) {
                /* Already subscribed and asked for a replay: posts up to `last` still in
                 * the inbox would repeat it. */
                t->local[w->id]->v[c->subs->e[k].idx].after = last;
        }
        pthread_mutex_unlock(&t->mu);

        for (uint32_t i = 0; i < rp.n; i++) {
                if (c->state == TW_CONN_OPEN) {
                        TW_INC(w->metrics.messages_sent);
                        tw_conn_send(w, c, rp.f[i]);
                } else {
                        tw_frame_unref(rp.f[i]);
                }
        }
        if (rp.f != &rp.one)
                free(rp.f);
        if (c->state != TW_CONN_OPEN)
                return;
        n = snprintf(buf, sizeof(buf),
                     "{\"type\":\"subscribed\",\"topic\":\"%.*s\",\"seq\":%" PRIu64 "%s}",
                     (int)m->topic.n, m->topic.p, last,
                     recovered < 0 ? ""
                     : recovered   ? ",\"recovered\":true"
                                   : ",\"recovered\":false");
        tw_conn_send_text(w, c, buf, (size_t)n);
}

static void unsubscribe(tw_worker *w, tw_conn *c, const tw_msg *m)
{
        struct tw_topics *r = w->srv->topics;
        tw_topic *t = find(r, m->topic, hash_name(m->topic));
        int k = t ? subs_find(c->subs, t) : -1;
        char buf[64 + TW_TOPIC_MAX];
        int n;

        if (k >= 0) {
                struct tw_subs *s = c->subs;

                pthread_mutex_lock(&t->mu);
                local_remove(w, t, s->e[k].idx);
                pthread_mutex_unlock(&t->mu);
                s->e[k] = s->e[--s->n];
                if (s->n == 0) {
                        free(s);
                        c->subs = NULL;
                }
        }
        n = snprintf(buf, sizeof(buf), "{\"type\":\"unsubscribed\",\"topic\":\"%.*s\"}",
                     (int)m->topic.n, m->topic.p);
        tw_conn_send_text(w, c, buf, (size_t)n);
}

void tw_topic_conn_gone(tw_worker *w, tw_conn *c)
{
        struct tw_subs *s = c->subs;

        if (!s)
                return;
        for (uint32_t i = 0; i < s->n; i++) {
                tw_topic *t = s->e[i].t;

                pthread_mutex_lock(&t->mu);
                local_remove(w, t, s->e[i].idx);
                pthread_mutex_unlock(&t->mu);
        }
        free(s);
        c->subs = NULL;
}

void tw_topic_on_message(tw_worker *w, tw_conn *c, const tw_msg *m)
{
        switch (m->type) {
        case TW_MSG_SUBSCRIBE:
                subscribe(w, c, m);
                break;
        case TW_MSG_UNSUBSCRIBE:
                unsubscribe(w, c, m);
                break;
        case TW_MSG_PUBLISH:
                ws_publish(w, c, m);
                break;
        default:
                break;
        }
}
