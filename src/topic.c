/*
 * Publish/subscribe and fan-out.
 *
 * The registry. Topics live in a hash table whose buckets are guarded by striped locks;
 * each topic has its own mutex, the sequencer, held to assign the next seq, append to the
 * history and post the frame to every worker with subscribers. Lock order: a bucket's
 * stripe, then a topic's mutex, never the other way. A thread reaches a topic's mutex
 * either through the stripe (lookup, publish, the eviction scan) or through a
 * subscription it holds, and a topic is freed only under both locks when it has neither
 * subscribers nor history — so nobody can hold a pointer to a freed topic. Every topic
 * incarnation gets a fresh id and epoch: a name that is freed and created again starts
 * over at seq 1 under another epoch, and a client resuming across that learns it
 * (`recovered:false`) instead of being handed seqs that meant something else.
 *
 * Fan-out. Each message is encoded once into one immutable frame (header + envelope, the
 * data byte for byte) and shared: history, inboxes and every subscriber's send queue hold
 * references. A publish posts the frame to each worker with subscribers through that
 * worker's mailbox (loop.h: a vector swapped out whole when read, woken by one
 * IORING_OP_MSG_RING from the publishing worker's ring, at most one wake in flight). A
 * worker also reads its mailbox on every loop turn, which covers its own posts (a worker
 * publishes to its own subscribers through its own mailbox too: delivering them directly
 * would let them
 * overtake older messages of the same topic still queued there by another worker).
 *
 * Posts carry the topic's id, not a pointer: the worker finds its subscriber list for the
 * topic in a map of its own (id → list), so a post that outlives its topic finds nothing.
 * A list is owned by its worker; only the per-worker subscriber count in the topic is
 * shared (under the topic lock), because publishers read it to decide whether a worker
 * needs the post at all.
 *
 * Subscribe vs. a concurrent publish: the subscriber takes the topic lock, reads the
 * topic's last seq S and joins the list with "deliver only seq > S". Every later publish
 * sees it and posts; a message <= S still in the mailbox is skipped for it. So each seq
 * reaches it exactly once.
 *
 * `since` replays stream from the history at the pace the client reads: a cursor per
 * subscription, refilled up to half of --max-queue whenever a send completes, while the
 * subscription takes no live messages ("deliver only seq > infinity"). When the cursor
 * catches up, under the topic lock, the subscription switches to live at the topic's seq
 * S and `subscribed` follows the replay. `recovered:true` means every seq after `since`
 * was queued in order and none was conflated away; if the history drops messages the
 * cursor has not reached, the replay stops there and answers `recovered:false`.
 *
 * History bytes. All histories together hold at most --max-history-bytes. A publish that
 * takes the total past it runs one eviction pass (the others go on publishing): it sizes
 * every history, finds the level L at which capping each history at L bytes brings the
 * total to 7/8 of the bound, and trims every history above L by its oldest messages
 * ("water-filling": the largest lose first, small ones not at all). A pass walks every
 * topic, but each one frees an eighth of the bound, so its cost is amortised over at
 * least that many published bytes.
 */
#include "tickwire/topic.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "tickwire/auth.h"
#include "tickwire/history.h"
#include "tickwire/idem.h"
#include "tickwire/loop.h"

#define TW_TOPIC_BUCKETS (1u << 17) /* hash buckets; chains stay short up to 100k topics */
#define TW_TOPIC_STRIPES 256        /* bucket locks */
#define TW_REPLAY_BATCH  64         /* frames taken per lock hold while replaying */
#define TW_EPOCH_LEN     16         /* hex digits */

/* One subscriber of a topic on one worker. */
struct tw_sub {
        uint32_t slot, gen; /* the connection */
        uint64_t after;     /* deliver only seq > after; UINT64_MAX while a replay runs */
};

/* A topic's subscribers on one worker, found by topic id in that worker's map. The
 * list is kept dense for delivery (a removal moves the last entry into the hole), so a
 * subscription holds a ticket, not a position: pos[ticket] is where its entry is now and
 * tk[i] the ticket of entry i. A move updates the list's own pos[], never the moved
 * subscriber's connection. Free tickets are chained through pos[] (TW_TICKET_FREE set). */
struct tw_local {
        uint64_t id;
        struct tw_sub *v; /* [cap] entries, n in use: what delivery reads */
        uint32_t *tk;     /* [cap] the ticket of each entry */
        uint32_t *pos;    /* [npos] each ticket's entry, or the next free ticket */
        uint32_t n, cap;  /* entries */
        uint32_t npos;    /* tickets ever handed out (all below npos exist) */
        uint32_t free_tk; /* first free ticket, or UINT32_MAX */
};

#define TW_TICKET_FREE 0x80000000u

/* A worker's topic id → subscriber list map: open addressing, linear probing, backward
 * shift deletion. Touched only by its worker. */
struct tw_wmap {
        struct tw_local **v;
        uint32_t cap, n; /* cap: a power of two, or 0 */
} __attribute__((aligned(64)));

typedef struct tw_topic {
        struct tw_topic *next; /* hash chain, under the bucket's stripe */
        uint64_t id;           /* this incarnation; frame->topic_id */
        uint64_t epoch;
        uint32_t hash;
        uint32_t subs;      /* subscribers on all workers */
        pthread_mutex_t mu; /* the sequencer: hist, subs, nsubs[] */
        tw_history hist;    /* hist.last is the topic's seq */
        tw_idem *idem;      /* recent publish ids; NULL until the first */
        /* --broker (worker 0 changes these, under mu): see "Cluster" below. */
        uint8_t remote; /* enum remote_state */
        bool loading;   /* a LOAD script is in flight */
        uint32_t nheld, nparks;
        struct held *held; /* messages from Redis waiting for a load to finish */
        tw_frame **parks;  /* subscribes waiting for the first load (CTL_RESUB posts) */
        uint32_t heldcap, parkcap;
        uint8_t name_len;
        char name[TW_TOPIC_MAX + 1];
        uint32_t nsubs[]; /* [nworkers]: subscribers per worker */
} tw_topic;

/* A connection's subscriptions: topic, its index in this worker's list, and the replay
 * cursor while one runs. */
struct tw_subent {
        tw_topic *t;
        uint32_t ticket;    /* its entry in t's list on this worker (struct tw_local) */
        uint32_t replaying; /* cur is live */
        tw_cursor cur;
};

struct tw_subs {
        uint32_t n, cap;
        uint32_t replays; /* entries replaying */
        struct tw_subent e[];
};

struct tw_topics {
        struct tw_broker *broker; /* --broker; NULL = this process sequences its topics */
        int io;                   /* worker 0: the unfollow batch's timer */
        bool unfollow_armed;
        char (*unfollow)[TW_TOPIC_MAX + 1]; /* names whose last subscriber left */
        uint32_t nunfollow, unfollow_cap;
        tw_topic **buckets;
        pthread_mutex_t stripe[TW_TOPIC_STRIPES];
        _Atomic uint32_t count; /* live topics */
        _Atomic uint64_t next_id;
        _Atomic uint64_t hist_bytes; /* all histories */
        pthread_mutex_t evict_mu;    /* one eviction pass at a time */
        uint64_t epoch_base;         /* random per process */
        unsigned nworkers;
        struct tw_wmap *wmap; /* [nworkers] */
};

/* Control posts (the cluster section at the end) share the mailbox with topic posts. */
#define TW_KEY_CTL (1ull << 63)
static void ctl_dispatch(tw_worker *w, tw_frame *f);
enum remote_state { R_NONE = 0, R_SYNC, R_LIVE, R_GAP };

enum ctl_kind {
        CTL_FOLLOW = 1, /* -> worker 0: subscribe to the topic */
        CTL_UNFOLLOW,   /* -> worker 0: its last subscriber here left */
        CTL_PUBLISH,    /* -> worker 0: run the publish script */
        CTL_PUBLISHED,  /* -> the publisher's worker: the answer */
        CTL_RESUB,      /* -> a subscriber's worker: the topic is loaded, subscribe again */
        CTL_UNAVAIL,    /* -> a subscriber's worker: the broker is down */
        CTL_RESYNC,     /* -> each worker with subscribers: restart them at `seq` */
};

struct ctl {
        uint8_t kind, http, dup, has_since, snapshot, topic_len, id_len, epoch_len;
        uint32_t worker, slot, gen;
        int32_t status; /* CTL_PUBLISHED: 0 ok, else a negative errno */
        uint64_t seq, since, topic_id;
        char topic[TW_TOPIC_MAX];
        char id[TW_NAME_MAX];
        char epoch[TW_EPOCH_LEN];
        uint16_t origin_len; /* HTTP publish: its allowed Origin, for the deferred answer */
        char origin[256];
        uint32_t data_len;
        char data[]; /* publish: the value; resync: the message to send */
};

struct held {
        uint64_t epoch;
        tw_frame *f;
};

static tw_frame *ctl_new(enum ctl_kind kind, tw_span topic, size_t data_len);
static void ctl_post(tw_worker *w, unsigned k, tw_frame *f);
static bool cluster(tw_worker *w);
static void park(tw_worker *w, tw_conn *c, tw_topic *t, const tw_msg *m);
static int remote_publish(tw_worker *w, tw_conn *c, tw_span origin, tw_span topic, tw_span id,
                          tw_span data);

/* A connection's subscriptions and grant live in its extension (allocated on first use). */
#define SUBS(c)  ((c)->ext ? (c)->ext->subs : NULL)
#define GRANT(c) ((c)->ext ? (c)->ext->grant : NULL)

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

/* ---- per-worker id → subscriber list ---- */

static uint32_t id_hash(uint64_t id)
{
        return (uint32_t)((id * 0x9e3779b97f4a7c15ull) >> 32);
}

static void local_free(struct tw_local *l)
{
        free(l->v);
        free(l->tk);
        free(l->pos);
        free(l);
}

static struct tw_local *wmap_get(const struct tw_wmap *m, uint64_t id)
{
        if (!m->cap)
                return NULL;
        for (uint32_t i = id_hash(id) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
                struct tw_local *l = m->v[i];

                if (!l || l->id == id)
                        return l;
        }
}

static void wmap_insert(struct tw_wmap *m, struct tw_local *l)
{
        uint32_t i = id_hash(l->id) & (m->cap - 1);

        while (m->v[i])
                i = (i + 1) & (m->cap - 1);
        m->v[i] = l;
        m->n++;
}

static int wmap_put(struct tw_wmap *m, struct tw_local *l)
{
        if ((m->n + 1) * 4 > m->cap * 3) { /* keep the load under 3/4 */
                struct tw_wmap g = {NULL, m->cap ? m->cap * 2 : 64, 0};

                g.v = calloc(g.cap, sizeof(*g.v));
                if (!g.v)
                        return -ENOMEM;
                for (uint32_t i = 0; i < m->cap; i++)
                        if (m->v[i])
                                wmap_insert(&g, m->v[i]);
                free(m->v);
                *m = g;
        }
        wmap_insert(m, l);
        return 0;
}

static void wmap_del(struct tw_wmap *m, uint64_t id)
{
        uint32_t mask = m->cap - 1, i = id_hash(id) & mask, j;

        while (m->v[i]->id != id)
                i = (i + 1) & mask;
        /* Backward shift: pull up every later entry of the run that may sit at i. */
        for (j = (i + 1) & mask; m->v[j]; j = (j + 1) & mask) {
                uint32_t home = id_hash(m->v[j]->id) & mask;

                if (((j - home) & mask) >= ((j - i) & mask)) {
                        m->v[i] = m->v[j];
                        i = j;
                }
        }
        m->v[i] = NULL;
        m->n--;
}

/* ---- registry ---- */

static uint32_t hash_name(tw_span s)
{
        uint32_t x = 2166136261u;

        for (size_t i = 0; i < s.n; i++)
                x = (x ^ (uint8_t)s.p[i]) * 16777619u;
        return x;
}

static pthread_mutex_t *stripe_of(struct tw_topics *r, uint32_t hash)
{
        return &r->stripe[(hash & (TW_TOPIC_BUCKETS - 1)) % TW_TOPIC_STRIPES];
}

/* The chain link that points at the topic called name (or at the chain's NULL end).
 * Called with the bucket's stripe held. */
static tw_topic **chain_find(struct tw_topics *r, tw_span name, uint32_t hash)
{
        tw_topic **pp = &r->buckets[hash & (TW_TOPIC_BUCKETS - 1)];

        for (; *pp; pp = &(*pp)->next)
                if ((*pp)->hash == hash && (*pp)->name_len == name.n &&
                    !memcmp((*pp)->name, name.p, name.n))
                        break;
        return pp;
}

static uint64_t splitmix64(uint64_t x)
{
        x += 0x9e3779b97f4a7c15ull;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
        return x ^ (x >> 31);
}

static tw_topic *topic_new(tw_worker *w, tw_span name, uint32_t hash)
{
        struct tw_topics *r = tw_worker_topics(w);
        tw_topic *t = calloc(1, sizeof(*t) + r->nworkers * sizeof(t->nsubs[0]));

        if (!t)
                return NULL;
        pthread_mutex_init(&t->mu, NULL);
        t->id = atomic_fetch_add_explicit(&r->next_id, 1, memory_order_relaxed);
        t->epoch = splitmix64(r->epoch_base + t->id);
        t->hash = hash;
        t->name_len = (uint8_t)name.n;
        memcpy(t->name, name.p, name.n);
        t->hist.max = tw_worker_cfg(w)->history;
        return t;
}

static void held_clear(tw_topic *t);

static void topic_destroy(tw_topic *t)
{
        held_clear(t);
        free(t->held);
        for (uint32_t i = 0; i < t->nparks; i++)
                tw_frame_unref(t->parks[i]);
        free(t->parks);
        tw_history_free(&t->hist);
        tw_idem_free(t->idem);
        pthread_mutex_destroy(&t->mu);
        free(t);
}

/* Whether nothing refers to t any more: it can be freed (caller holds t->mu). */
static bool topic_idle(const tw_topic *t)
{
        return t->subs == 0 && t->hist.n == 0 && t->remote == 0 && t->nparks == 0;
}

/* Unlinks and frees *pp (its stripe and its mutex held; the mutex is released here). */
static void topic_unlink(tw_worker *w, tw_topic **pp)
{
        tw_topic *t = *pp;

        *pp = t->next;
        pthread_mutex_unlock(&t->mu);
        atomic_fetch_sub_explicit(&tw_worker_topics(w)->count, 1, memory_order_relaxed);
        TW_DEC(tw_worker_metrics(w)->topics);
        topic_destroy(t);
}

/* The topic called name with its mutex held, created when absent and `create` is set.
 * NULL with *err = -ENOSPC at --max-topics, -ENOMEM, or -ENOENT (absent, not created). */
static tw_topic *topic_lock(tw_worker *w, tw_span name, bool create, int *err)
{
        struct tw_topics *r = tw_worker_topics(w);
        uint32_t hash = hash_name(name);
        pthread_mutex_t *st = stripe_of(r, hash);
        tw_topic **pp, *t = NULL;

        pthread_mutex_lock(st);
        pp = chain_find(r, name, hash);
        if (*pp) {
                t = *pp;
        } else if (!create) {
                *err = -ENOENT;
        } else if (atomic_fetch_add_explicit(&r->count, 1, memory_order_relaxed) >=
                   tw_worker_cfg(w)->max_topics) {
                atomic_fetch_sub_explicit(&r->count, 1, memory_order_relaxed);
                *err = -ENOSPC;
        } else if (!(t = topic_new(w, name, hash))) {
                atomic_fetch_sub_explicit(&r->count, 1, memory_order_relaxed);
                *err = -ENOMEM;
        } else {
                *pp = t;
                TW_INC(tw_worker_metrics(w)->topics);
        }
        if (t)
                pthread_mutex_lock(&t->mu);
        pthread_mutex_unlock(st);
        return t;
}

/* Frees the topic called name if it has become idle. The caller let go of its mutex
 * (lock order), so it is looked up again: it may be gone, or busy again, by now. */
static void topic_release(tw_worker *w, tw_span name)
{
        struct tw_topics *r = tw_worker_topics(w);
        uint32_t hash = hash_name(name);
        pthread_mutex_t *st = stripe_of(r, hash);
        tw_topic **pp;

        pthread_mutex_lock(st);
        pp = chain_find(r, name, hash);
        if (*pp) {
                pthread_mutex_lock(&(*pp)->mu);
                if (topic_idle(*pp))
                        topic_unlink(w, pp);
                else
                        pthread_mutex_unlock(&(*pp)->mu);
        }
        pthread_mutex_unlock(st);
}

int tw_topic_init(struct tw_topics **out, unsigned nworkers)
{
        struct tw_topics *r = calloc(1, sizeof(*r));

        if (!r)
                return -ENOMEM;
        r->nworkers = nworkers;
        r->buckets = calloc(TW_TOPIC_BUCKETS, sizeof(*r->buckets));
        r->wmap = aligned_alloc(64, sizeof(*r->wmap) * nworkers);
        if (!r->buckets || !r->wmap) {
                free(r->buckets);
                free(r->wmap);
                free(r);
                return -ENOMEM;
        }
        memset(r->wmap, 0, sizeof(*r->wmap) * nworkers);
        for (unsigned i = 0; i < TW_TOPIC_STRIPES; i++)
                pthread_mutex_init(&r->stripe[i], NULL);
        pthread_mutex_init(&r->evict_mu, NULL);
        atomic_init(&r->next_id, 1);
        if (getrandom(&r->epoch_base, sizeof(r->epoch_base), 0) != sizeof(r->epoch_base))
                r->epoch_base = (uint64_t)(uintptr_t)r ^ (uint64_t)time(NULL);
        *out = r;
        return 0;
}

void tw_topic_free(struct tw_topics **rp)
{
        struct tw_topics *r = *rp;

        if (!r)
                return;
        for (uint32_t b = 0; b < TW_TOPIC_BUCKETS; b++) {
                tw_topic *t = r->buckets[b];

                while (t) {
                        tw_topic *next = t->next;

                        topic_destroy(t);
                        t = next;
                }
        }
        for (unsigned i = 0; i < r->nworkers; i++) {
                struct tw_wmap *m = &r->wmap[i];

                for (uint32_t k = 0; k < m->cap; k++) {
                        if (m->v[k])
                                local_free(m->v[k]);
                }
                free(m->v);
        }
        for (unsigned i = 0; i < TW_TOPIC_STRIPES; i++)
                pthread_mutex_destroy(&r->stripe[i]);
        pthread_mutex_destroy(&r->evict_mu);
        tw_broker_free(r->broker);
        free(r->unfollow);
        free(r->wmap);
        free(r->buckets);
        free(r);
        *rp = NULL;
}

/* ---- history bytes: the server-wide bound ---- */

static int cmp_desc(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return x < y ? 1 : x > y ? -1 : 0;
}

/* The level L such that capping every size at L brings their sum to at most target
 * (sizes sorted in place, largest first). */
static uint64_t water_level(uint64_t *s, size_t n, uint64_t target)
{
        uint64_t rest = 0; /* sum of s[i..n) */

        qsort(s, n, sizeof(*s), cmp_desc);
        for (size_t i = 0; i < n; i++)
                rest += s[i];
        for (size_t i = 0; i < n; i++) {
                rest -= s[i];
                /* Capping s[0..i] at L and keeping s[i+1..n): (i + 1) L + rest. */
                if (rest <= target && (target - rest) / (i + 1) >= (i + 1 < n ? s[i + 1] : 0))
                        return (target - rest) / (i + 1);
        }
        return 0;
}

/* Calls fn on every topic, its stripe and mutex held; fn gets the chain link so it may
 * unlink the topic (topic_unlink releases the mutex), and returns true if it did. */
static void for_each_topic(tw_worker *w, bool (*fn)(tw_worker *, tw_topic **, void *), void *arg)
{
        struct tw_topics *r = tw_worker_topics(w);

        for (uint32_t s = 0; s < TW_TOPIC_STRIPES; s++) {
                pthread_mutex_lock(&r->stripe[s]);
                for (uint32_t b = s; b < TW_TOPIC_BUCKETS; b += TW_TOPIC_STRIPES) {
                        tw_topic **pp = &r->buckets[b];

                        while (*pp) {
                                tw_topic *t = *pp;

                                pthread_mutex_lock(&t->mu);
                                if (fn(w, pp, arg))
                                        continue; /* *pp is now the next one */
                                pthread_mutex_unlock(&t->mu);
                                pp = &t->next;
                        }
                }
                pthread_mutex_unlock(&r->stripe[s]);
        }
}

struct sizes {
        uint64_t *v;
        size_t n, cap;
};

static bool collect_size(tw_worker *w, tw_topic **pp, void *arg)
{
        struct sizes *z = arg;

        uint64_t b = (*pp)->hist.bytes + tw_idem_bytes((*pp)->idem);

        if (b && z->n < z->cap)
                z->v[z->n++] = b;
        return false;
}

struct trim {
        uint64_t level, freed, msgs;
};

static bool trim_to_level(tw_worker *w, tw_topic **pp, void *arg)
{
        struct trim *tr = arg;
        tw_topic *t = *pp;
        uint32_t n = t->hist.n;

        if (t->hist.bytes + tw_idem_bytes(t->idem) > tr->level) {
                uint64_t ids = tw_idem_bytes(t->idem);

                tr->freed += tw_history_trim(&t->hist, tr->level > ids ? tr->level - ids : 0);
                tr->msgs += n - t->hist.n;
                /* Ids of messages gone from the history go too, whatever their age. */
                tr->freed += tw_idem_trim(t->idem, tw_history_oldest(&t->hist));
        }
        if (topic_idle(t)) {
                topic_unlink(w, pp);
                return true;
        }
        return false;
}

static void account(tw_worker *w, uint64_t added, uint64_t freed)
{
        atomic_fetch_add_explicit(&tw_worker_topics(w)->hist_bytes, added - freed,
                                  memory_order_relaxed);
        TW_ADD(tw_worker_metrics(w)->history_bytes, added - freed);
}

/* Brings all histories back under 7/8 of --max-history-bytes (see the file comment). */
static void evict(tw_worker *w)
{
        struct tw_topics *r = tw_worker_topics(w);
        uint64_t max = tw_worker_cfg(w)->max_history_bytes;
        struct sizes z = {0};
        struct trim tr = {0};

        if (pthread_mutex_trylock(&r->evict_mu) != 0)
                return; /* a pass is running on another worker */
        if (atomic_load_explicit(&r->hist_bytes, memory_order_relaxed) <= max)
                goto out;
        z.cap = atomic_load_explicit(&r->count, memory_order_relaxed) + 64;
        z.v = malloc(z.cap * sizeof(*z.v));
        if (!z.v)
                goto out; /* no room to think: try again at the next publish */
        for_each_topic(w, collect_size, &z);
        tr.level = water_level(z.v, z.n, max - max / 8);
        for_each_topic(w, trim_to_level, &tr);
        account(w, 0, tr.freed);
        TW_ADD(tw_worker_metrics(w)->history_trimmed, tr.msgs);
        free(z.v);
out:
        pthread_mutex_unlock(&r->evict_mu);
}

/* ---- delivery ---- */

/* Each subscriber is named by its (slot, gen) handle; the loop finds it (or finds it
 * gone) and the connection layer decides whether it takes the message. */
void tw_topic_deliver(tw_worker *w, uint64_t id, tw_frame *f)
{
        struct tw_local *l;
        uint32_t refs, sent = 0;

        if (id & TW_KEY_CTL) {
                ctl_dispatch(w, f);
                return;
        }
        l = wmap_get(&tw_worker_topics(w)->wmap[tw_worker_id(w)], id);
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
        for (uint32_t i = refs; i-- > 0;) {
                struct tw_sub *s;
                int r;

                if (i >= l->n)
                        continue;
                s = &l->v[i];
                if (s->after >= f->seq)
                        continue;
                r = tw_worker_deliver(w, s->slot, s->gen, f);
                if (r < 0)
                        continue;
                sent++;
                /* A send that ended the connection (out of memory) dropped its
                 * subscriptions: the list moved an entry, or was freed with its last. */
                if (r > 0) {
                        l = wmap_get(&tw_worker_topics(w)->wmap[tw_worker_id(w)], id);
                        if (!l)
                                break;
                }
        }
        TW_ADD(tw_worker_metrics(w)->messages_sent, sent);
        tw_frame_unref_n(f, refs - sent + 1);
}

/* ---- replies ---- */

static void send_error(tw_worker *w, tw_conn *c, const char *code, const char *msg)
{
        char buf[256];
        size_t n = tw_proto_error(buf, sizeof(buf), code, msg);

        if (n)
                tw_worker_send_text(w, c, buf, n);
}

static void send_topic_error(tw_worker *w, tw_conn *c, int err)
{
        if (err == -ENOSPC)
                send_error(w, c, "too_many_topics", "the server's topic limit is reached");
        else
                send_error(w, c, "internal", "out of memory");
}

static void format_epoch(char out[TW_EPOCH_LEN + 1], uint64_t epoch)
{
        snprintf(out, TW_EPOCH_LEN + 1, "%016" PRIx64, epoch);
}

static bool epoch_is(tw_span given, uint64_t epoch)
{
        char e[TW_EPOCH_LEN + 1];

        format_epoch(e, epoch);
        return given.n == TW_EPOCH_LEN && memcmp(given.p, e, TW_EPOCH_LEN) == 0;
}

/* recovered: -1 = no `since` was asked, else 0 or 1. */
static void send_subscribed(tw_worker *w, tw_conn *c, tw_span topic, uint64_t seq, uint64_t epoch,
                            int recovered)
{
        char buf[128 + TW_TOPIC_MAX], e[TW_EPOCH_LEN + 1];
        int n;

        format_epoch(e, epoch);
        n = snprintf(buf, sizeof(buf),
                     "{\"type\":\"subscribed\",\"topic\":\"%.*s\",\"seq\":%" PRIu64
                     ",\"epoch\":\"%s\"%s}",
                     (int)topic.n, topic.p, seq, e,
                     recovered < 0 ? ""
                     : recovered   ? ",\"recovered\":true"
                                   : ",\"recovered\":false");
        tw_worker_send_text(w, c, buf, (size_t)n);
}

/* ---- publish ---- */

/* Appends f, encoded as seq last + 1, to t's history and posts it to every worker with
 * subscribers (t->mu held); *added and *freed are for account(). 0 or -ENOMEM (nothing
 * changed; f is still the caller's). */
static int append_post(tw_worker *w, tw_topic *t, tw_frame *f, uint64_t *added, uint64_t *freed)
{
        if (tw_history_push(&t->hist, tw_frame_ref(f), freed) < 0) {
                tw_frame_unref(f);
                return -ENOMEM;
        }
        *added = tw_history_cost(f);
        for (unsigned k = 0; k < tw_worker_count(w); k++)
                if (t->nsubs[k] && tw_worker_post(w, k, t->id, f) < 0)
                        TW_INC(tw_worker_metrics(w)
                                   ->limit_hits); /* that worker misses it: a seq gap */
        return 0;
}

int64_t tw_topic_publish(tw_worker *w, tw_span name, tw_span data, tw_span id, bool *dup)
{
        size_t cap = tw_topic_encode_max(name.n, data.n);
        tw_frame *f = tw_frame_alloc(cap);
        uint64_t seq, freed, added, ids;
        int err = -ENOMEM;
        tw_topic *t;

        *dup = false;
        if (!f)
                return -ENOMEM;
        if (cluster(w)) { /* --demo on a cluster node: through Redis, nobody to answer */
                tw_frame_unref(f);
                return remote_publish(w, NULL, (tw_span){NULL, 0}, name, id, data);
        }
        t = topic_lock(w, name, true, &err);
        if (!t) {
                tw_frame_unref(f);
                return err;
        }
        if (id.n &&
            tw_idem_find(t->idem, id, tw_worker_now(w), tw_history_oldest(&t->hist), &seq)) {
                pthread_mutex_unlock(&t->mu);
                tw_frame_unref(f);
                *dup = true;
                TW_INC(tw_worker_metrics(w)->publish_duplicates);
                return (int64_t)seq;
        }
        seq = t->hist.last + 1;
        f->len = (uint32_t)tw_topic_encode(f->data, cap, name, seq, data);
        f->topic_id = t->id;
        f->seq = seq;
        if (append_post(w, t, f, &added, &freed) < 0) {
                pthread_mutex_unlock(&t->mu);
                tw_frame_unref(f);
                return -ENOMEM;
        }
        if (id.n) {
                /* Without memory for it the id is not remembered: a retry would publish
                 * again. Rare, and the publish itself succeeded. */
                ids = tw_idem_bytes(t->idem);
                if (tw_idem_add(&t->idem, id, seq, tw_worker_now(w), tw_history_oldest(&t->hist)) <
                    0)
                        TW_INC(tw_worker_metrics(w)->limit_hits);
                added += tw_idem_bytes(t->idem) - ids; /* can be negative: wraps, as used */
        }
        pthread_mutex_unlock(&t->mu);
        account(w, added, freed);
        tw_frame_unref(f);
        TW_INC(tw_worker_metrics(w)->messages_published);
        if (atomic_load_explicit(&tw_worker_topics(w)->hist_bytes, memory_order_relaxed) >
            tw_worker_cfg(w)->max_history_bytes)
                evict(w);
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

int tw_topic_http_publish(tw_worker *w, tw_conn *c, tw_span topic, tw_span id, tw_span origin,
                          const char *body, size_t len, char *out, size_t cap, size_t *out_len)
{
        int status = 200, n;
        bool dup;
        int64_t seq;

        if (!tw_topic_valid(topic)) {
                status = 400;
                n = snprintf(out, cap, "{\"error\":\"topic must be 1-128 of [A-Za-z0-9._:-]\"}");
        } else if (id.n && (id.n > TW_NAME_MAX || !tw_topic_valid(id))) {
                status = 400;
                n = snprintf(out, cap, "{\"error\":\"id must be 1-64 of [A-Za-z0-9._:-]\"}");
        } else if (!tw_json_valid(body, len)) {
                status = 400;
                n = snprintf(out, cap, "{\"error\":\"body is not one valid JSON value\"}");
        } else if (cluster(w)) {
                int err = remote_publish(w, c, (tw_span){origin.p ? origin.p : "", origin.n}, topic,
                                         id, trim(body, len));

                if (err == 0) {
                        *out_len = 0;
                        return 0; /* answered later (tw_worker_answer) */
                }
                status = 503;
                n = snprintf(out, cap, "{\"error\":\"%s\"}",
                             err == -ENOTCONN ? "unavailable" : "out of memory");
        } else if ((seq = tw_topic_publish(w, topic, trim(body, len), id, &dup)) < 0) {
                status = 503;
                n = snprintf(out, cap, "{\"error\":\"%s\"}",
                             seq == -ENOSPC ? "too many topics" : "out of memory");
        } else {
                n = snprintf(out, cap, "{\"seq\":%" PRId64 "%s}", seq,
                             dup ? ",\"duplicate\":true" : "");
        }
        *out_len = n > 0 && (size_t)n < cap ? (size_t)n : 0;
        return status;
}

static void ws_publish(tw_worker *w, tw_conn *c, const tw_msg *m)
{
        char buf[96 + TW_TOPIC_MAX + TW_NAME_MAX];
        bool dup;
        int64_t seq;
        int n;

        if (!(c->flags & TW_CF_PUBLISHER) &&
            !(tw_worker_cfg(w)->jwt_secret && tw_grant_may_publish(GRANT(c), m->topic))) {
                send_error(w, c, "forbidden", "not allowed to publish to this topic");
                return;
        }
        if (cluster(w)) {
                int err = remote_publish(w, c, (tw_span){NULL, 0}, m->topic, m->id, m->data);

                if (err == -ENOTCONN)
                        send_error(w, c, "unavailable",
                                   "the cluster broker is down; not published");
                else if (err < 0)
                        send_topic_error(w, c, err);
                return; /* `published` comes from worker 0 */
        }
        seq = tw_topic_publish(w, m->topic, m->data, m->id, &dup);
        if (seq < 0) {
                send_topic_error(w, c, (int)seq);
                return;
        }
        n = snprintf(buf, sizeof(buf),
                     "{\"type\":\"published\",\"topic\":\"%.*s\",\"seq\":%" PRId64 "%s%.*s%s%s}",
                     (int)m->topic.n, m->topic.p, seq, m->id.n ? ",\"id\":\"" : "", (int)m->id.n,
                     m->id.p, m->id.n ? "\"" : "", dup ? ",\"duplicate\":true" : "");
        tw_worker_send_text(w, c, buf, (size_t)n);
}

/* ---- subscriptions ---- */

static int subs_find(const struct tw_subs *s, const tw_topic *t)
{
        for (uint32_t i = 0; s && i < s->n; i++)
                if (s->e[i].t == t)
                        return (int)i;
        return -1;
}

static int subs_reserve(tw_conn *c)
{
        struct tw_subs *s = SUBS(c);

        if (!tw_ext_get(c))
                return -ENOMEM;

        if (s && s->n < s->cap)
                return 0;
        uint32_t cap = s ? s->cap * 2 : 2;
        struct tw_subs *ns = realloc(s, sizeof(*s) + cap * sizeof(s->e[0]));

        if (!ns)
                return -ENOMEM;
        if (!s) {
                ns->n = 0;
                ns->replays = 0;
        }
        ns->cap = cap;
        c->ext->subs = ns;
        return 0;
}

/* Room for one more entry and one more ticket. */
static int local_grow(struct tw_local *l)
{
        if (l->n == l->cap) {
                uint32_t cap = l->cap ? l->cap * 2 : 4;
                struct tw_sub *v = realloc(l->v, cap * sizeof(*v));
                uint32_t *tk;

                if (!v)
                        return -ENOMEM;
                l->v = v;
                tk = realloc(l->tk, cap * sizeof(*tk));
                if (!tk)
                        return -ENOMEM;
                l->tk = tk;
                l->cap = cap;
        }
        if (l->free_tk == UINT32_MAX && (l->npos & (l->npos - 1)) == 0) {
                /* npos reached a power of two (or 0): double the ticket table. */
                uint32_t *pos = realloc(l->pos, (l->npos ? l->npos * 2 : 4) * sizeof(*pos));

                if (!pos)
                        return -ENOMEM;
                l->pos = pos;
        }
        return 0;
}

/* Joins c to t's list on this worker; its ticket, or -ENOMEM. Called with t->mu held. */
static int64_t local_add(tw_worker *w, tw_topic *t, tw_conn *c, uint64_t after)
{
        struct tw_wmap *m = &tw_worker_topics(w)->wmap[tw_worker_id(w)];
        struct tw_local *l = wmap_get(m, t->id);
        uint32_t ticket;

        if (!l) {
                l = calloc(1, sizeof(*l));
                if (!l)
                        return -ENOMEM;
                l->id = t->id;
                l->free_tk = UINT32_MAX;
                if (wmap_put(m, l) < 0) {
                        free(l);
                        return -ENOMEM;
                }
        }
        if (local_grow(l) < 0) {
                if (l->n == 0) {
                        wmap_del(m, l->id);
                        local_free(l);
                }
                return -ENOMEM;
        }
        if (l->free_tk != UINT32_MAX) {
                ticket = l->free_tk;
                l->free_tk =
                    l->pos[ticket] == UINT32_MAX ? UINT32_MAX : l->pos[ticket] & ~TW_TICKET_FREE;
        } else {
                ticket = l->npos++;
        }
        l->pos[ticket] = l->n;
        l->tk[l->n] = ticket;
        l->v[l->n] = (struct tw_sub){tw_worker_slot(w, c), c->gen, after};
        t->nsubs[tw_worker_id(w)]++;
        t->subs++;
        l->n++;
        return ticket;
}

/* Removes the entry of `ticket` from t's list on this worker. Called with t->mu held. */
static void local_remove(tw_worker *w, tw_topic *t, uint32_t ticket)
{
        struct tw_wmap *m = &tw_worker_topics(w)->wmap[tw_worker_id(w)];
        struct tw_local *l = wmap_get(m, t->id);
        uint32_t idx = l->pos[ticket], last = --l->n;

        t->nsubs[tw_worker_id(w)]--;
        t->subs--;
        if (idx != last) {
                l->v[idx] = l->v[last];
                l->tk[idx] = l->tk[last];
                l->pos[l->tk[idx]] = idx;
        }
        l->pos[ticket] = l->free_tk == UINT32_MAX ? UINT32_MAX : l->free_tk | TW_TICKET_FREE;
        l->free_tk = ticket;
        if (l->n == 0) {
                wmap_del(m, l->id);
                local_free(l);
        }
}

static struct tw_sub *local_entry(tw_worker *w, const struct tw_subent *e)
{
        struct tw_local *l = wmap_get(&tw_worker_topics(w)->wmap[tw_worker_id(w)], e->t->id);

        return &l->v[l->pos[e->ticket]];
}

/* Drops c's entry k (its topic's mutex not held); frees the topic if that was all it had. */
static void subs_drop(tw_worker *w, tw_conn *c, uint32_t k)
{
        struct tw_subs *s = SUBS(c);
        tw_topic *t = s->e[k].t;
        char name[TW_TOPIC_MAX];
        size_t len = t->name_len;
        bool idle;

        bool last;

        pthread_mutex_lock(&t->mu);
        local_remove(w, t, s->e[k].ticket);
        idle = topic_idle(t);
        last = t->subs == 0 && t->remote != 0;
        memcpy(name, t->name, len);
        pthread_mutex_unlock(&t->mu);
        if (last) { /* cluster: worker 0 unsubscribes the node (batched) */
                tw_frame *f = ctl_new(CTL_UNFOLLOW, (tw_span){name, len}, 0);

                if (f)
                        ctl_post(w, 0, f);
        }
        if (s->e[k].replaying)
                s->replays--;
        s->e[k] = s->e[--s->n];
        if (s->n == 0) {
                free(s);
                c->ext->subs = NULL;
        }
        if (idle)
                topic_release(w, (tw_span){name, len});
}

/* ---- `since` replays ---- */

/* Ends entry e's replay (t->mu held): the subscription goes live after the topic's seq,
 * which the replay has reached. Returns that seq. */
static uint64_t replay_finish(tw_worker *w, tw_conn *c, struct tw_subent *e)
{
        uint64_t last = e->t->hist.last;

        local_entry(w, e)->after = last;
        e->replaying = 0;
        if (--SUBS(c)->replays == 0)
                c->flags &= ~TW_CF_REPLAY;
        return last;
}

/* Streams entry k's replay as far as the budget allows; true when it has finished. */
static bool replay_step(tw_worker *w, tw_conn *c, uint32_t k, uint64_t budget)
{
        tw_frame *batch[TW_REPLAY_BATCH];
        struct tw_subent *e = &SUBS(c)->e[k];
        tw_topic *t = e->t;
        enum tw_cursor_state st = TW_CURSOR_MORE;
        uint64_t queued = tw_outq_bytes(c->out), seq = 0, epoch = t->epoch;
        char name[TW_TOPIC_MAX];
        size_t n = 0, len = t->name_len;
        bool done = false, ok = false;

        memcpy(name, t->name, len);
        pthread_mutex_lock(&t->mu);
        if (queued < budget)
                n = tw_cursor_read(&t->hist, &e->cur, budget - queued, queued == 0, batch,
                                   TW_REPLAY_BATCH, &st);
        /* Overrun: the history dropped messages the client has not had. Going on from
         * the oldest would never catch up with a fast publisher; stop and say so. */
        if (st != TW_CURSOR_MORE) {
                ok = st == TW_CURSOR_CAUGHT_UP && e->cur.complete && !(c->flags & TW_CF_LOSSY);
                seq = replay_finish(w, c, e);
                done = true;
        }
        pthread_mutex_unlock(&t->mu);
        for (size_t i = 0; i < n; i++) {
                if (c->state == TW_CONN_OPEN) {
                        TW_INC(tw_worker_metrics(w)->messages_sent);
                        tw_worker_send(w, c, batch[i]);
                } else {
                        tw_frame_unref(batch[i]);
                }
        }
        if (done && c->state == TW_CONN_OPEN) {
                if (!ok)
                        TW_INC(tw_worker_metrics(w)->replays_incomplete);
                send_subscribed(w, c, (tw_span){name, len}, seq, epoch, ok);
        }
        return done || n == 0;
}

void tw_topic_replay_refill(tw_worker *w, tw_conn *c)
{
        uint64_t budget = tw_worker_cfg(w)->max_queue / 2;

        /* Entries may be reordered by nothing here (no unsubscribe runs meanwhile), but a
         * step can end the connection. */
        for (uint32_t k = 0; c->state == TW_CONN_OPEN && SUBS(c) && k < SUBS(c)->n; k++) {
                while (c->state == TW_CONN_OPEN && SUBS(c) && k < SUBS(c)->n &&
                       SUBS(c)->e[k].replaying) {
                        if (replay_step(w, c, k, budget))
                                break;
                }
                if (tw_outq_bytes(c->out) >= budget)
                        break;
        }
}

/* ---- subscribe / unsubscribe ---- */

/* What a subscribe asks for, decided under the topic lock. */
struct plan {
        bool replay; /* stream history from cur */
        tw_cursor cur;
        int recovered;  /* -1 without since */
        tw_frame *snap; /* snapshot frame to send first (a reference), or NULL */
};

static struct plan plan_of(const tw_topic *t, const tw_msg *m)
{
        const tw_history *h = &t->hist;
        struct plan p = {.recovered = -1};

        if (m->has_since) {
                /* A seq means something only in its epoch; since without one is taken as
                 * the current epoch (v1 clients). A since beyond the topic's seq belongs to
                 * another incarnation too. */
                bool same =
                    (m->epoch.n == 0 || epoch_is(m->epoch, t->epoch)) && m->since <= h->last;

                p.recovered = same;
                if (same && m->since < h->last) {
                        p.cur = tw_cursor_start(h, m->since);
                        p.replay = p.cur.next <= h->last;
                        p.recovered = p.cur.complete;
                }
        }
        if (m->snapshot && !p.replay && h->last > 0 && p.recovered != 1) {
                tw_frame *f = tw_history_get(h, h->last);

                p.snap = f ? tw_frame_ref(f) : NULL;
        }
        return p;
}

/* The topic a subscribe names, locked, once c may subscribe to it (grant, the
 * per-connection limit, room in its list); NULL when not, the client told why. */
static tw_topic *subscribe_lock(tw_worker *w, tw_conn *c, const tw_msg *m)
{
        const tw_config *cfg = tw_worker_cfg(w);
        int err = -ENOMEM;
        tw_topic *t;

        /* With tokens, the grant's "subs" say what may be subscribed to (none: nothing). */
        if (cfg->jwt_secret && !tw_grant_may_subscribe(GRANT(c), m->topic)) {
                send_error(w, c, "forbidden", "not allowed to subscribe to this topic");
                return NULL;
        }
        if (SUBS(c) && SUBS(c)->n >= cfg->max_subscriptions) {
                /* Only a topic it already has may be subscribed to again. */
                t = topic_lock(w, m->topic, false, &err);
                if (t && subs_find(SUBS(c), t) < 0) {
                        pthread_mutex_unlock(&t->mu);
                        t = NULL;
                }
                if (!t)
                        send_error(w, c, "too_many_subscriptions",
                                   "the per-connection limit is reached");
                return t;
        }
        if (subs_reserve(c) < 0 || !(t = topic_lock(w, m->topic, true, &err))) {
                send_topic_error(w, c, err);
                return NULL;
        }
        return t;
}

static void subscribe(tw_worker *w, tw_conn *c, const tw_msg *m)
{
        struct plan p;
        uint64_t last, epoch;
        tw_topic *t = subscribe_lock(w, c, m);
        int k;

        if (!t)
                return;
        if (cluster(w) && t->remote != R_LIVE && t->remote != R_GAP) {
                park(w, c, t, m); /* runs again once worker 0 has loaded the topic */
                return;
        }
        k = subs_find(SUBS(c), t);
        p = plan_of(t, m);
        last = t->hist.last;
        epoch = t->epoch;
        if (cluster(w) && m->has_since && m->since > last &&
            (m->epoch.n == 0 || epoch_is(m->epoch, epoch))) {
                /* The client has seen more than this node yet (it came from a node that
                 * is ahead): it gets everything after its own position as this node
                 * catches up, which the stream guarantees. */
                if (p.snap)
                        tw_frame_unref(p.snap);
                p = (struct plan){.recovered = 1};
                last = m->since;
        }
        if (k < 0) {
                int64_t ticket = local_add(w, t, c, p.replay ? UINT64_MAX : last);

                if (ticket < 0) {
                        bool idle = topic_idle(t);

                        pthread_mutex_unlock(&t->mu);
                        if (p.snap)
                                tw_frame_unref(p.snap);
                        if (idle)
                                topic_release(w, m->topic);
                        send_error(w, c, "internal", "out of memory");
                        return;
                }
                k = (int)SUBS(c)->n++;
                SUBS(c)->e[k] = (struct tw_subent){t, (uint32_t)ticket, 0, {0, false}};
        } else {
                struct tw_subent *e = &SUBS(c)->e[k];

                /* Subscribed already: posts up to `last` still in the mailbox would repeat
                 * what a replay or snapshot sends now, and a replay still running is
                 * replaced by what this subscribe asks. */
                local_entry(w, e)->after = p.replay ? UINT64_MAX : last;
                if (e->replaying && !p.replay) {
                        e->replaying = 0;
                        if (--SUBS(c)->replays == 0)
                                c->flags &= ~TW_CF_REPLAY;
                }
        }
        if (p.replay) {
                struct tw_subent *e = &SUBS(c)->e[k];

                if (SUBS(c)->replays == 0)
                        c->flags &= ~TW_CF_LOSSY; /* only what happens from now counts */
                if (!e->replaying)
                        SUBS(c)->replays++;
                e->replaying = 1;
                e->cur = p.cur;
                c->flags |= TW_CF_REPLAY;
        }
        pthread_mutex_unlock(&t->mu);

        if (p.replay) {
                tw_topic_replay_refill(w, c); /* `subscribed` comes when it ends */
                return;
        }
        if (p.snap) {
                TW_INC(tw_worker_metrics(w)->messages_sent);
                tw_worker_send(w, c, p.snap);
        }
        if (c->state == TW_CONN_OPEN)
                send_subscribed(w, c, m->topic, last, epoch, p.recovered);
}

static void unsubscribe(tw_worker *w, tw_conn *c, const tw_msg *m)
{
        char buf[64 + TW_TOPIC_MAX];
        int n, k = -1;
        tw_topic *t = NULL;

        /* Our own subscription keeps the topic alive: find it by name among ours. */
        for (uint32_t i = 0; SUBS(c) && i < SUBS(c)->n; i++) {
                t = SUBS(c)->e[i].t;
                if (t->name_len == m->topic.n && !memcmp(t->name, m->topic.p, m->topic.n)) {
                        k = (int)i;
                        break;
                }
        }
        if (k >= 0)
                subs_drop(w, c, (uint32_t)k);
        n = snprintf(buf, sizeof(buf), "{\"type\":\"unsubscribed\",\"topic\":\"%.*s\"}",
                     (int)m->topic.n, m->topic.p);
        tw_worker_send_text(w, c, buf, (size_t)n);
}

void tw_topic_recheck(tw_worker *w, tw_conn *c)
{
        char buf[96 + TW_TOPIC_MAX];

        for (uint32_t k = SUBS(c) ? SUBS(c)->n : 0; k-- > 0 && c->state == TW_CONN_OPEN;) {
                tw_topic *t = SUBS(c)->e[k].t;
                tw_span name = {t->name, t->name_len};
                int n;

                if (tw_grant_may_subscribe(GRANT(c), name))
                        continue;
                /* Formatted before the drop, which may free the topic and its name. */
                n = snprintf(buf, sizeof(buf),
                             "{\"type\":\"error\",\"code\":\"forbidden\",\"topic\":\"%.*s\","
                             "\"message\":\"the new token does not allow this subscription\"}",
                             (int)name.n, name.p);
                subs_drop(w, c, k);
                tw_worker_send_text(w, c, buf, (size_t)n);
        }
}

void tw_topic_conn_gone(tw_worker *w, tw_conn *c)
{
        while (SUBS(c) && SUBS(c)->n)
                subs_drop(w, c, SUBS(c)->n - 1);
        if (c->ext) {
                free(c->ext->subs); /* reserved for a subscribe that then failed */
                c->ext->subs = NULL;
        }
        c->flags &= ~TW_CF_REPLAY;
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

/* ---- Cluster (--broker, DESIGN 10) ----
 *
 * Redis sequences every topic: a publish on any node runs the publish script (seq,
 * idempotency, the history stream and PUBLISH in one atomic step) and the publisher is
 * answered with the seq Redis gave. A node delivers what comes back on the topic's
 * channel. Each node keeps, per topic it follows, the same history as a standalone
 * server, filled from Redis: it is what `since`, `snapshot` and `subscribed` are served
 * from, and it is why a node keeps serving subscribers from what it has while Redis is
 * away.
 *
 * The broker runs on worker 0, and worker 0 alone changes a topic's `remote` state (under
 * the topic lock). Other workers reach it through worker 0's mailbox with control posts
 * (key TW_KEY_CTL, the frame's bytes a struct ctl), and it answers them the same way:
 *
 *   NONE --first subscriber--> SYNC: SUBSCRIBE tw:{T}; once Redis confirms it, LOAD the
 *        meta hash and the whole stream; the subscribes parked meanwhile run again.
 *   LIVE: a message with seq last+1 is appended and fanned out; an older one is a
 *        repeat and dropped; a newer one is a jump (pub/sub is at-most-once) -> GAP.
 *   GAP: messages are held while LOAD fetches the range after `last`; if the stream no
 *        longer starts there, or the epoch changed (Redis restarted empty), subscribers
 *        get `resync` and the history starts over from what Redis has.
 *   last subscriber gone -> (batched, 200 ms) UNSUBSCRIBE and the topic is freed.
 *   Redis lost: topics stay as they are; on return every followed topic is subscribed
 *   again and backfilled from its stream (GAP).
 */

#define ID_TTL         "300" /* s: DESIGN 5 recognises a repeated publish id for 5 minutes */
#define RESYNC_SEQ     (UINT64_MAX - 1) /* a resync post: every live subscriber takes it */
#define UNFOLLOW_DELAY 200              /* ms: unsubscribes are batched this long */

static bool cluster(tw_worker *w)
{
        return tw_worker_topics(w)->broker != NULL;
}

static tw_frame *ctl_new(enum ctl_kind kind, tw_span topic, size_t data_len)
{
        tw_frame *f = tw_frame_alloc(sizeof(struct ctl) + data_len);
        struct ctl *m;

        if (!f)
                return NULL;
        m = (struct ctl *)f->data;
        memset(m, 0, sizeof(*m));
        m->kind = (uint8_t)kind;
        m->topic_len = (uint8_t)topic.n;
        memcpy(m->topic, topic.p, topic.n);
        m->data_len = (uint32_t)data_len;
        f->len = (uint32_t)(sizeof(*m) + data_len);
        return f;
}

/* Posts f to worker k's mailbox and lets go of the caller's reference. */
static void ctl_post(tw_worker *w, unsigned k, tw_frame *f)
{
        if (tw_worker_post(w, k, TW_KEY_CTL, f) < 0)
                TW_INC(tw_worker_metrics(w)->limit_hits);
        tw_frame_unref(f);
}

static tw_span ctl_topic(const struct ctl *m)
{
        return (tw_span){m->topic, m->topic_len};
}

/* "tw:{T}" + suffix into out; its length. */
static size_t key_of(char *out, size_t cap, tw_span topic, const char *suffix)
{
        int n = snprintf(out, cap, "tw:{%.*s}%s", (int)topic.n, topic.p, suffix);

        return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static uint64_t fresh_epoch(tw_worker *w)
{
        struct tw_topics *r = tw_worker_topics(w);

        return splitmix64(r->epoch_base ^ atomic_fetch_add(&r->next_id, 1) ^ tw_worker_now(w));
}

static bool parse_u64(tw_span s, int base, uint64_t *out)
{
        char buf[24], *end;

        if (s.n == 0 || s.n >= sizeof buf)
                return false;
        memcpy(buf, s.p, s.n);
        buf[s.n] = '\0';
        errno = 0;
        *out = strtoull(buf, &end, base);
        return errno == 0 && *end == '\0';
}

/* A frame of topic t carrying `data` as seq `seq` (topic id set), or NULL. */
static tw_frame *encode_for(tw_topic *t, uint64_t seq, tw_span data)
{
        tw_span name = {t->name, t->name_len};
        size_t cap = tw_topic_encode_max(name.n, data.n);
        tw_frame *f = tw_frame_alloc(cap);

        if (!f)
                return NULL;
        f->len = (uint32_t)tw_topic_encode(f->data, cap, name, seq, data);
        f->topic_id = t->id;
        f->seq = seq;
        return f;
}

static void held_clear(tw_topic *t)
{
        for (uint32_t i = 0; i < t->nheld; i++)
                tw_frame_unref(t->held[i].f);
        t->nheld = 0;
}

static void hold(tw_worker *w, tw_topic *t, uint64_t epoch, tw_frame *f)
{
        if (t->nheld >= 4 * tw_worker_cfg(w)->history + 64) {
                /* A load that does not come back while a publisher goes on: what is held
                 * is in the stream too, and the next jump fetches it from there. */
                held_clear(t);
        }
        if (t->nheld == t->heldcap) {
                uint32_t cap = t->heldcap ? t->heldcap * 2 : 16;
                struct held *v = realloc(t->held, cap * sizeof(*v));

                if (!v) { /* the backfill will fetch it from the stream */
                        TW_INC(tw_worker_metrics(w)->limit_hits);
                        tw_frame_unref(f);
                        return;
                }
                t->held = v;
                t->heldcap = cap;
        }
        t->held[t->nheld++] = (struct held){epoch, f};
}

/* Sends every parked subscribe back to its worker as `kind` (CTL_RESUB or CTL_UNAVAIL). */
static void unpark(tw_worker *w, tw_topic *t, enum ctl_kind kind)
{
        for (uint32_t i = 0; i < t->nparks; i++) {
                struct ctl *m = (struct ctl *)t->parks[i]->data;

                m->kind = (uint8_t)kind;
                ctl_post(w, m->worker, t->parks[i]);
        }
        t->nparks = 0;
}

/* History from scratch: empty, next seq `last` + 1. */
static void history_restart(tw_worker *w, tw_topic *t, uint64_t last)
{
        uint64_t freed = t->hist.bytes;

        tw_history_free(&t->hist);
        t->hist.max = tw_worker_cfg(w)->history;
        t->hist.last = last;
        account(w, 0, freed);
}

static void load_issue(tw_worker *w, tw_topic *t);

/* One message of t from Redis, in LIVE state (t->mu held). */
static void live_apply(tw_worker *w, tw_topic *t, uint64_t epoch, tw_frame *f)
{
        uint64_t added = 0, freed = 0;

        if (epoch != t->epoch || f->seq > t->hist.last + 1) {
                /* A jump, or another incarnation: hold it until the stream says. */
                hold(w, t, epoch, f);
                t->remote = R_GAP;
                TW_INC(tw_worker_metrics(w)->broker_backfills);
                load_issue(w, t);
                return;
        }
        if (f->seq <= t->hist.last) {
                tw_frame_unref(f); /* had it: a backfill got there first */
                return;
        }
        if (append_post(w, t, f, &added, &freed) == 0)
                account(w, added, freed);
        tw_frame_unref(f);
}

/* Applies what was held while loading, in arrival order (t->mu held, t LIVE). */
static void held_apply(tw_worker *w, tw_topic *t)
{
        uint32_t i = 0, n = t->nheld;
        struct held *v = t->held;

        t->held = NULL;
        t->nheld = t->heldcap = 0;
        for (; i < n && t->remote == R_LIVE; i++) {
                if (v[i].epoch != t->epoch) {
                        tw_frame_unref(v[i].f); /* from before the load's epoch */
                        continue;
                }
                live_apply(w, t, v[i].epoch, v[i].f);
        }
        for (; i < n; i++) /* a new jump: the rest waits for that load */
                hold(w, t, v[i].epoch, v[i].f);
        free(v);
}

/* Tells t's subscribers on every worker that their position is gone (t->mu held). */
static void resync_post(tw_worker *w, tw_topic *t)
{
        char text[96 + TW_TOPIC_MAX], e[TW_EPOCH_LEN + 1];
        int n;

        format_epoch(e, t->epoch);
        n = snprintf(text, sizeof text, "{\"type\":\"resync\",\"topic\":\"%.*s\",\"epoch\":\"%s\"}",
                     (int)t->name_len, t->name, e);
        TW_INC(tw_worker_metrics(w)->broker_resyncs);
        for (unsigned k = 0; k < tw_worker_count(w); k++) {
                tw_frame *f;

                if (!t->nsubs[k] ||
                    !(f = ctl_new(CTL_RESYNC, (tw_span){t->name, t->name_len}, (size_t)n)))
                        continue;
                struct ctl *m = (struct ctl *)f->data;

                m->topic_id = t->id;
                m->seq = t->hist.last;
                memcpy(m->data, text, (size_t)n);
                ctl_post(w, k, f);
        }
}

struct load_arg {
        size_t len;
        char name[TW_TOPIC_MAX];
};

static void on_load(tw_worker *w, void *arg, struct redisReply *r);

static void load_issue(tw_worker *w, tw_topic *t)
{
        struct tw_topics *reg = tw_worker_topics(w);
        tw_span name = {t->name, t->name_len};
        char meta[TW_TOPIC_MAX + 16], hist[TW_TOPIC_MAX + 16], from[24], ep[TW_EPOCH_LEN + 1],
            count[16];
        const char *a[5] = {meta, hist, from, ep, count};
        size_t n[5];
        struct load_arg *la;

        if (t->loading || !tw_broker_is_up(reg->broker))
                return; /* the `up` event loads it */
        la = malloc(sizeof(*la));
        if (!la)
                return;
        la->len = name.n;
        memcpy(la->name, name.p, name.n);
        n[0] = key_of(meta, sizeof meta, name, ":meta");
        n[1] = key_of(hist, sizeof hist, name, ":hist");
        /* First load: the newest --history entries; a backfill: what follows `last`. */
        n[2] = (size_t)snprintf(from, sizeof from, "%" PRIu64,
                                t->remote == R_SYNC ? 0 : t->hist.last + 1);
        format_epoch(ep, fresh_epoch(w));
        n[3] = TW_EPOCH_LEN;
        n[4] = (size_t)snprintf(count, sizeof count, "%u", tw_worker_cfg(w)->history);
        if (tw_broker_script(reg->broker, TW_SCRIPT_LOAD, 2, 3, a, n, on_load, la) < 0) {
                free(la);
                return;
        }
        t->loading = true;
}

/* Entry i of an XRANGE reply: its seq and data; false when it is not one of ours. */
static bool entry_of(const struct redisReply *e, uint64_t *seq, tw_span *data)
{
        const struct redisReply *id, *kv;
        const char *dash;

        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
                return false;
        id = e->element[0];
        kv = e->element[1];
        if (id->type != REDIS_REPLY_STRING || kv->type != REDIS_REPLY_ARRAY || kv->elements != 2 ||
            kv->element[1]->type != REDIS_REPLY_STRING)
                return false;
        dash = memchr(id->str, '-', id->len);
        if (!dash || !parse_u64((tw_span){id->str, (size_t)(dash - id->str)}, 10, seq))
                return false;
        *data = (tw_span){kv->element[1]->str, kv->element[1]->len};
        return true;
}

/* Appends the stream's entries after t's last seq (t->mu held). */
static void take_entries(tw_worker *w, tw_topic *t, const struct redisReply *v)
{
        for (size_t i = 0; i < v->elements; i++) {
                uint64_t seq, added = 0, freed = 0;
                tw_span data;
                tw_frame *f;

                if (!entry_of(v->element[i], &seq, &data) || seq != t->hist.last + 1)
                        continue;
                f = encode_for(t, seq, data);
                if (!f)
                        continue;
                if (append_post(w, t, f, &added, &freed) == 0)
                        account(w, added, freed);
                tw_frame_unref(f);
        }
}

static void unfollow_later(tw_worker *w, tw_span name);

static void on_load(tw_worker *w, void *arg, struct redisReply *r)
{
        struct load_arg *la = arg;
        char buf[TW_TOPIC_MAX];
        tw_span name = {buf, la->len};
        int err;
        tw_topic *t;
        uint64_t epoch, seq, first = 0;
        const struct redisReply *v;
        bool ok;

        memcpy(buf, la->name, la->len);
        free(la);
        if (!(t = topic_lock(w, name, false, &err)))
                return;
        t->loading = false;
        ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
             r->element[0]->type == REDIS_REPLY_STRING &&
             r->element[1]->type == REDIS_REPLY_INTEGER &&
             r->element[2]->type == REDIS_REPLY_ARRAY &&
             parse_u64((tw_span){r->element[0]->str, r->element[0]->len}, 16, &epoch);
        if (!ok) {
                if (r)
                        fprintf(stderr, "tickwire: broker: LOAD of %.*s failed: %.*s\n",
                                (int)name.n, name.p, r->type == REDIS_REPLY_ERROR ? (int)r->len : 0,
                                r->type == REDIS_REPLY_ERROR ? r->str : "");
                if (t->remote == R_SYNC) { /* the subscribers are told; the topic goes */
                        unpark(w, t, CTL_UNAVAIL);
                        held_clear(t);
                        if (!t->subs) /* (a reload after resync keeps its subscribers) */
                                t->remote = R_NONE;
                }
                /* GAP stays GAP: the broker's return loads it again. */
                bool idle = topic_idle(t);

                pthread_mutex_unlock(&t->mu);
                if (idle)
                        topic_release(w, name);
                return;
        }
        seq = (uint64_t)r->element[1]->integer;
        v = r->element[2];
        if (v->elements) {
                tw_span d;

                if (!entry_of(v->element[0], &first, &d))
                        first = 0;
        }
        if (t->remote == R_SYNC) {
                t->epoch = epoch;
                history_restart(w, t, first ? first - 1 : seq);
                take_entries(w, t, v);
                if (t->hist.last != seq) /* not one of ours, or trimmed meanwhile */
                        history_restart(w, t, seq);
                t->remote = R_LIVE;
                held_apply(w, t);
                unpark(w, t, CTL_RESUB);
                unfollow_later(w, name); /* in case every parked client left meanwhile */
        } else if (t->remote == R_GAP) {
                if (epoch != t->epoch || seq < t->hist.last ||
                    (seq > t->hist.last && first != t->hist.last + 1)) {
                        /* Redis no longer holds what comes after our last seq (or another
                         * incarnation of the topic lives there now): say so. */
                        t->epoch = epoch;
                        history_restart(w, t, seq);
                        resync_post(w, t); /* subscribers restart after seq */
                        /* The history (for snapshot and since) is loaded again whole. */
                        t->remote = R_SYNC;
                        load_issue(w, t);
                        pthread_mutex_unlock(&t->mu);
                        return;
                }
                take_entries(w, t, v);
                t->remote = R_LIVE;
                held_apply(w, t);
        }
        pthread_mutex_unlock(&t->mu);
}

/* ---- what the broker reports (worker 0) ---- */

/* The topic name of channel "tw:{T}". */
static bool channel_topic(tw_span ch, tw_span *topic)
{
        if (ch.n < 6 || memcmp(ch.p, "tw:{", 4) || ch.p[ch.n - 1] != '}')
                return false;
        *topic = (tw_span){ch.p + 4, ch.n - 5};
        return tw_topic_valid(*topic);
}

static void on_subscribed(tw_worker *w, void *arg, tw_span channel)
{
        tw_span name;
        int err;
        tw_topic *t;

        (void)arg;
        if (!channel_topic(channel, &name) || !(t = topic_lock(w, name, false, &err)))
                return;
        if (t->remote == R_LIVE)
                t->remote = R_GAP; /* resubscribed after a loss: fill in what was missed */
        if (t->remote != R_NONE)
                load_issue(w, t);
        pthread_mutex_unlock(&t->mu);
}

static void on_message(tw_worker *w, void *arg, tw_span channel, tw_span payload)
{
        const char *sp1, *sp2;
        uint64_t epoch, seq;
        tw_span name, data;
        tw_frame *f;
        tw_topic *t;
        int err;

        (void)arg;
        sp1 = memchr(payload.p, ' ', payload.n);
        sp2 = sp1 ? memchr(sp1 + 1, ' ', payload.n - (size_t)(sp1 + 1 - payload.p)) : NULL;
        if (!channel_topic(channel, &name) || !sp2 ||
            !parse_u64((tw_span){payload.p, (size_t)(sp1 - payload.p)}, 16, &epoch) ||
            !parse_u64((tw_span){sp1 + 1, (size_t)(sp2 - sp1 - 1)}, 10, &seq))
                return;
        data = (tw_span){sp2 + 1, payload.n - (size_t)(sp2 + 1 - payload.p)};
        if (!(t = topic_lock(w, name, false, &err)))
                return;
        if (t->remote != R_NONE && (f = encode_for(t, seq, data))) {
                if (t->remote == R_LIVE)
                        live_apply(w, t, epoch, f);
                else
                        hold(w, t, epoch, f);
        }
        pthread_mutex_unlock(&t->mu);
}

static bool resubscribe(tw_worker *w, tw_topic **pp, void *arg)
{
        tw_topic *t = *pp;
        char ch[TW_TOPIC_MAX + 8];
        size_t n;

        (void)arg;
        if (t->remote == R_NONE)
                return false;
        n = key_of(ch, sizeof ch, (tw_span){t->name, t->name_len}, "");
        tw_broker_subscribe(tw_worker_topics(w)->broker, (tw_span){ch, n});
        return false;
}

static void on_up(tw_worker *w, void *arg)
{
        (void)arg;
        for_each_topic(w, resubscribe, NULL);
}

/* Broker lost: a topic still waiting for its first load cannot get it (its load, if one
 * was in flight, has failed already). Followed topics stay as they are. */
static bool fail_sync(tw_worker *w, tw_topic **pp, void *arg)
{
        tw_topic *t = *pp;

        (void)arg;
        t->loading = false;
        if (t->remote != R_SYNC)
                return false;
        unpark(w, t, CTL_UNAVAIL);
        held_clear(t);
        if (t->subs) /* reloading after a resync: its subscribers stay, `up` loads it */
                return false;
        t->remote = R_NONE;
        if (topic_idle(t)) {
                topic_unlink(w, pp);
                return true;
        }
        return false;
}

static void on_down(tw_worker *w, void *arg)
{
        (void)arg;
        for_each_topic(w, fail_sync, NULL);
}

/* ---- unfollowing, batched ---- */

static void unfollow_later(tw_worker *w, tw_span name)
{
        struct tw_topics *r = tw_worker_topics(w);

        if (r->nunfollow == r->unfollow_cap) {
                uint32_t cap = r->unfollow_cap ? r->unfollow_cap * 2 : 64;
                void *v = realloc(r->unfollow, cap * sizeof(*r->unfollow));

                if (!v)
                        return; /* followed a little longer: until its next subscriber leaves */
                r->unfollow = v;
                r->unfollow_cap = cap;
        }
        memcpy(r->unfollow[r->nunfollow], name.p, name.n);
        r->unfollow[r->nunfollow++][name.n] = '\0';
        if (!r->unfollow_armed && r->io >= 0) {
                r->unfollow_armed = true;
                tw_worker_io_timeout(w, r->io, 0, UNFOLLOW_DELAY);
        }
}

static void unfollow_now(tw_worker *w, void *arg, uint32_t tag, int res)
{
        struct tw_topics *r = arg;

        (void)tag;
        (void)res;
        r->unfollow_armed = false;
        for (uint32_t i = 0; i < r->nunfollow; i++) {
                tw_span name = {r->unfollow[i], strlen(r->unfollow[i])};
                char ch[TW_TOPIC_MAX + 8];
                int err;
                tw_topic *t = topic_lock(w, name, false, &err);
                bool idle;

                if (!t)
                        continue;
                if (t->subs == 0 && t->nparks == 0 && t->remote != R_NONE) {
                        t->remote = R_NONE;
                        held_clear(t);
                        history_restart(w, t, 0);
                        tw_broker_unsubscribe(r->broker,
                                              (tw_span){ch, key_of(ch, sizeof ch, name, "")});
                }
                idle = topic_idle(t);
                pthread_mutex_unlock(&t->mu);
                if (idle)
                        topic_release(w, name);
        }
        r->nunfollow = 0;
}

/* ---- the other workers' side ---- */

static void ctl_to_home(tw_worker *w, tw_frame *f)
{
        ctl_post(w, 0, f);
}

/* A subscribe for a topic this node does not follow yet: parked on the topic (t->mu
 * held, released here) until worker 0 has loaded it. */
static void park(tw_worker *w, tw_conn *c, tw_topic *t, const tw_msg *m)
{
        tw_span name = {t->name, t->name_len};
        tw_frame *f = NULL;
        bool first = t->remote == R_NONE, idle;

        if (!tw_broker_is_up(tw_worker_topics(w)->broker) && first)
                goto refuse;
        if (t->nparks == t->parkcap) {
                uint32_t cap = t->parkcap ? t->parkcap * 2 : 4;
                tw_frame **v = realloc(t->parks, cap * sizeof(*v));

                if (!v)
                        goto refuse;
                t->parks = v;
                t->parkcap = cap;
        }
        f = ctl_new(CTL_RESUB, name, 0);
        if (!f)
                goto refuse;
        struct ctl *x = (struct ctl *)f->data;

        x->worker = tw_worker_id(w);
        x->slot = tw_worker_slot(w, c);
        x->gen = c->gen;
        x->has_since = m->has_since;
        x->since = m->since;
        x->snapshot = m->snapshot;
        x->epoch_len = (uint8_t)(m->epoch.n <= TW_EPOCH_LEN ? m->epoch.n : 0);
        if (x->epoch_len)
                memcpy(x->epoch, m->epoch.p, x->epoch_len);
        if (m->epoch.n > TW_EPOCH_LEN) { /* not one of ours: keep it wrong, not empty */
                x->epoch_len = 1;
                x->epoch[0] = '!';
        }
        t->parks[t->nparks++] = f;
        if (first) {
                t->remote = R_SYNC;
                pthread_mutex_unlock(&t->mu);
                ctl_to_home(w, ctl_new(CTL_FOLLOW, name, 0));
                return;
        }
        pthread_mutex_unlock(&t->mu);
        return;
refuse:
        idle = topic_idle(t);
        pthread_mutex_unlock(&t->mu);
        if (idle)
                topic_release(w, m->topic);
        TW_INC(tw_worker_metrics(w)->broker_unavailable);
        send_error(w, c, "unavailable", "the cluster broker is down; try again");
}

/* Publishes through Redis: worker 0 runs the script and answers on this worker. */
/* origin: NULL for a WebSocket publish (or none at all), else the HTTP request's. */
static int remote_publish(tw_worker *w, tw_conn *c, tw_span origin, tw_span topic, tw_span id,
                          tw_span data)
{
        tw_frame *f;
        struct ctl *m;

        if (!tw_broker_is_up(tw_worker_topics(w)->broker)) {
                TW_INC(tw_worker_metrics(w)->broker_unavailable);
                return -ENOTCONN;
        }
        f = ctl_new(CTL_PUBLISH, topic, data.n);
        if (!f)
                return -ENOMEM;
        m = (struct ctl *)f->data;
        m->http = origin.p != NULL;
        if (origin.n && origin.n <= sizeof m->origin) {
                m->origin_len = (uint16_t)origin.n;
                memcpy(m->origin, origin.p, origin.n);
        }
        m->worker = tw_worker_id(w);
        m->slot = c ? tw_worker_slot(w, c) : UINT32_MAX;
        m->gen = c ? c->gen : 0;
        m->id_len = (uint8_t)id.n;
        if (id.n)
                memcpy(m->id, id.p, id.n);
        if (data.n)
                memcpy(m->data, data.p, data.n);
        ctl_to_home(w, f);
        return 0;
}

static void on_published(tw_worker *w, void *arg, struct redisReply *r)
{
        tw_frame *f = arg;
        struct ctl *m = (struct ctl *)f->data;

        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
            r->element[0]->type == REDIS_REPLY_INTEGER) {
                m->status = 0;
                m->seq = (uint64_t)r->element[0]->integer;
                m->dup = r->element[2]->type == REDIS_REPLY_INTEGER && r->element[2]->integer == 1;
                TW_INC(tw_worker_metrics(w)->broker_publishes);
                if (m->dup)
                        TW_INC(tw_worker_metrics(w)->publish_duplicates);
        } else {
                if (r && r->type == REDIS_REPLY_ERROR)
                        fprintf(stderr, "tickwire: broker: publish failed: %.*s\n", (int)r->len,
                                r->str);
                m->status = -ENOTCONN;
                TW_INC(tw_worker_metrics(w)->broker_unavailable);
        }
        m->kind = CTL_PUBLISHED;
        ctl_post(w, m->worker, f);
}

/* Worker 0: runs the publish script for a CTL_PUBLISH. */
static void home_publish(tw_worker *w, tw_frame *f)
{
        struct tw_topics *reg = tw_worker_topics(w);
        struct ctl *m = (struct ctl *)f->data;
        tw_span name = ctl_topic(m);
        char meta[TW_TOPIC_MAX + 16], hist[TW_TOPIC_MAX + 16], idk[TW_TOPIC_MAX + TW_NAME_MAX + 16],
            ch[TW_TOPIC_MAX + 8], maxlen[16], ep[TW_EPOCH_LEN + 1];
        const char *a[9];
        size_t n[9];
        int k = 0, nkeys;

        a[k] = meta, n[k++] = key_of(meta, sizeof meta, name, ":meta");
        a[k] = hist, n[k++] = key_of(hist, sizeof hist, name, ":hist");
        if (m->id_len) {
                int len = snprintf(idk, sizeof idk, "tw:{%.*s}:id:%.*s", (int)name.n, name.p,
                                   (int)m->id_len, m->id);

                a[k] = idk, n[k++] = (size_t)len;
        }
        nkeys = k;
        a[k] = m->data, n[k++] = m->data_len;
        a[k] = maxlen,
        n[k++] = (size_t)snprintf(maxlen, sizeof maxlen, "%u",
                                  tw_worker_cfg(w)->history ? tw_worker_cfg(w)->history : 1);
        a[k] = ch, n[k++] = key_of(ch, sizeof ch, name, "");
        a[k] = ID_TTL, n[k++] = strlen(ID_TTL);
        format_epoch(ep, fresh_epoch(w));
        a[k] = ep, n[k++] = TW_EPOCH_LEN;
        a[k] = tw_broker_publish_verb(reg->broker);
        n[k] = strlen(a[k]);
        k++;
        if (tw_broker_script(reg->broker, TW_SCRIPT_PUBLISH, nkeys, k - nkeys, a, n, on_published,
                             f) < 0)
                on_published(w, f, NULL); /* takes f */
}

/* Worker k: a publish's answer for its client. */
static void publish_answered(tw_worker *w, const struct ctl *m)
{
        tw_conn *c = tw_worker_conn(w, m->slot, m->gen);
        char buf[160 + TW_TOPIC_MAX + TW_NAME_MAX];
        int n;

        if (!c)
                return;
        if (m->http) {
                if (m->status < 0)
                        n = snprintf(buf, sizeof buf, "{\"error\":\"unavailable\"}");
                else
                        n = snprintf(buf, sizeof buf, "{\"seq\":%" PRIu64 "%s}", m->seq,
                                     m->dup ? ",\"duplicate\":true" : "");
                tw_worker_answer(w, c, m->status < 0 ? 503 : 200,
                                 (tw_span){m->origin, m->origin_len}, buf, (size_t)n);
                return;
        }
        if (c->state != TW_CONN_OPEN)
                return;
        if (m->status < 0) {
                n = snprintf(buf, sizeof buf,
                             "{\"type\":\"error\",\"code\":\"unavailable\",\"topic\":\"%.*s\","
                             "\"message\":\"the cluster broker is down; not published\"}",
                             (int)m->topic_len, m->topic);
        } else {
                n = snprintf(buf, sizeof(buf),
                             "{\"type\":\"published\",\"topic\":\"%.*s\",\"seq\":%" PRIu64
                             "%s%.*s%s%s}",
                             (int)m->topic_len, m->topic, m->seq, m->id_len ? ",\"id\":\"" : "",
                             (int)m->id_len, m->id, m->id_len ? "\"" : "",
                             m->dup ? ",\"duplicate\":true" : "");
        }
        tw_worker_send_text(w, c, buf, (size_t)n);
}

static void subscribe(tw_worker *w, tw_conn *c, const tw_msg *m);

/* Worker k: a parked subscribe comes back (CTL_RESUB) or is refused (CTL_UNAVAIL). */
static void parked_back(tw_worker *w, const struct ctl *x)
{
        tw_conn *c = tw_worker_conn(w, x->slot, x->gen);
        tw_msg m = {.type = TW_MSG_SUBSCRIBE};

        if (!c || c->state != TW_CONN_OPEN)
                return;
        if (x->kind == CTL_UNAVAIL) {
                char buf[128 + TW_TOPIC_MAX];
                int n = snprintf(buf, sizeof buf,
                                 "{\"type\":\"error\",\"code\":\"unavailable\",\"topic\":\"%.*s\","
                                 "\"message\":\"the cluster broker is down; subscribe again\"}",
                                 (int)x->topic_len, x->topic);

                TW_INC(tw_worker_metrics(w)->broker_unavailable);
                tw_worker_send_text(w, c, buf, (size_t)n);
                return;
        }
        m.topic = ctl_topic(x);
        m.has_since = x->has_since;
        m.since = x->since;
        m.snapshot = x->snapshot;
        m.epoch = (tw_span){x->epoch, x->epoch_len};
        subscribe(w, c, &m);
}

/* Worker k: restart t's subscribers here at the new position and tell them. */
static void resync_here(tw_worker *w, const struct ctl *x)
{
        struct tw_local *l = wmap_get(&tw_worker_topics(w)->wmap[tw_worker_id(w)], x->topic_id);

        for (uint32_t i = l ? l->n : 0; i-- > 0;) {
                tw_conn *c;

                if (i >= l->n)
                        continue;
                l->v[i].after = x->seq;
                c = tw_worker_conn(w, l->v[i].slot, l->v[i].gen);
                if (c && c->state == TW_CONN_OPEN)
                        tw_worker_send_text(w, c, x->data, x->data_len);
                l = wmap_get(&tw_worker_topics(w)->wmap[tw_worker_id(w)], x->topic_id);
                if (!l)
                        break;
        }
}

static void ctl_dispatch(tw_worker *w, tw_frame *f)
{
        struct ctl *m = (struct ctl *)f->data;
        int err;
        tw_topic *t;

        switch (m->kind) {
        case CTL_FOLLOW:
                t = topic_lock(w, ctl_topic(m), false, &err);
                if (t && t->remote == R_SYNC && !t->loading) {
                        char ch[TW_TOPIC_MAX + 8];

                        if (tw_broker_is_up(tw_worker_topics(w)->broker)) {
                                tw_broker_subscribe(
                                    tw_worker_topics(w)->broker,
                                    (tw_span){ch, key_of(ch, sizeof ch, ctl_topic(m), "")});
                        } else {
                                unpark(w, t, CTL_UNAVAIL);
                                held_clear(t);
                                t->remote = R_NONE;
                        }
                }
                if (t) {
                        bool idle = topic_idle(t);

                        pthread_mutex_unlock(&t->mu);
                        if (idle)
                                topic_release(w, ctl_topic(m));
                }
                break;
        case CTL_UNFOLLOW:
                unfollow_later(w, ctl_topic(m));
                break;
        case CTL_PUBLISH:
                home_publish(w, f);
                return; /* f goes on to the answer */
        case CTL_PUBLISHED:
                publish_answered(w, m);
                break;
        case CTL_RESUB:
        case CTL_UNAVAIL:
                parked_back(w, m);
                break;
        case CTL_RESYNC:
                resync_here(w, m);
                break;
        default:
                break;
        }
        tw_frame_unref(f);
}

int tw_topic_cluster(struct tw_topics *r, const tw_config *cfg)
{
        static const tw_broker_events ev = {
            .up = on_up, .down = on_down, .subscribed = on_subscribed, .message = on_message};

        r->io = -1;
        if (cfg->broker.kind == TW_BROKER_NONE)
                return 0;
        r->broker = tw_broker_new(cfg, &ev, r);
        return r->broker ? 0 : -1;
}

void tw_topic_started(tw_worker *w)
{
        struct tw_topics *r = tw_worker_topics(w);

        if (!r->broker || tw_worker_id(w) != 0)
                return;
        r->io = tw_worker_io_open(w, unfollow_now, r);
        tw_broker_start(r->broker, w);
}

bool tw_topic_broker_up(tw_worker *w)
{
        return tw_broker_is_up(tw_worker_topics(w)->broker);
}

bool tw_topic_clustered(tw_worker *w)
{
        return cluster(w);
}
