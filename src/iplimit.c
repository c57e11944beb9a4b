/*
 * The per-address table: entries in one array (indexes stay valid while an entry lives,
 * freed entries go on a free list), found through a hash of chained indexes. Grows by
 * doubling; never shrinks (its size is the peak number of distinct addresses).
 */
#include "tickwire/iplimit.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct entry {
        uint8_t addr[16]; /* IPv6, or IPv4-mapped */
        uint32_t count;   /* 0: free */
        int32_t next;     /* hash chain, or the free list */
};

struct tw_iplimit {
        pthread_mutex_t mu;
        uint32_t max;
        struct entry *e;
        uint32_t cap, used; /* entries allocated, entries ever used */
        int32_t free_head;
        int32_t *bucket; /* cap buckets, -1 = empty */
};

static uint32_t hash16(const uint8_t a[16])
{
        uint32_t x = 2166136261u;

        for (int i = 0; i < 16; i++)
                x = (x ^ a[i]) * 16777619u;
        return x;
}

static int key_of(const struct sockaddr *sa, uint8_t out[16])
{
        if (sa->sa_family == AF_INET) {
                memset(out, 0, 10);
                out[10] = out[11] = 0xff;
                memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
                return 0;
        }
        if (sa->sa_family == AF_INET6) {
                memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
                return 0;
        }
        return -EAFNOSUPPORT;
}

tw_iplimit *tw_iplimit_new(uint32_t max)
{
        tw_iplimit *t = calloc(1, sizeof(*t));

        if (!t)
                return NULL;
        pthread_mutex_init(&t->mu, NULL);
        t->max = max;
        t->free_head = -1;
        return t;
}

void tw_iplimit_free(tw_iplimit *t)
{
        if (!t)
                return;
        pthread_mutex_destroy(&t->mu);
        free(t->e);
        free(t->bucket);
        free(t);
}

static int32_t *chain_of(tw_iplimit *t, const uint8_t key[16])
{
        return &t->bucket[hash16(key) & (t->cap - 1)];
}

/* Doubles the entry array and rehashes the live entries. */
static int grow(tw_iplimit *t)
{
        uint32_t cap = t->cap ? t->cap * 2 : 64;
        struct entry *e = realloc(t->e, cap * sizeof(*e));
        int32_t *b;

        if (!e)
                return -ENOMEM;
        t->e = e;
        b = malloc(cap * sizeof(*b));
        if (!b)
                return -ENOMEM;
        free(t->bucket);
        t->bucket = b;
        t->cap = cap;
        memset(b, 0xff, cap * sizeof(*b));
        for (uint32_t i = 0; i < t->used; i++) {
                if (t->e[i].count) {
                        int32_t *h = chain_of(t, t->e[i].addr);

                        t->e[i].next = *h;
                        *h = (int32_t)i;
                }
        }
        return 0;
}

int32_t tw_iplimit_acquire(tw_iplimit *t, const struct sockaddr *sa)
{
        uint8_t key[16];
        int32_t i, ret;

        if (key_of(sa, key) < 0)
                return -EAFNOSUPPORT;
        pthread_mutex_lock(&t->mu);
        for (i = t->cap ? *chain_of(t, key) : -1; i >= 0; i = t->e[i].next)
                if (!memcmp(t->e[i].addr, key, 16))
                        break;
        if (i >= 0) {
                ret = t->e[i].count >= t->max ? -EBUSY : i;
                if (ret >= 0)
                        t->e[i].count++;
                goto out;
        }
        if (t->free_head < 0 && t->used == t->cap && grow(t) < 0) {
                ret = -ENOMEM;
                goto out;
        }
        if (t->free_head >= 0) {
                i = t->free_head;
                t->free_head = t->e[i].next;
        } else {
                i = (int32_t)t->used++;
        }
        memcpy(t->e[i].addr, key, 16);
        t->e[i].count = 1;
        t->e[i].next = *chain_of(t, key);
        *chain_of(t, key) = i;
        ret = i;
out:
        pthread_mutex_unlock(&t->mu);
        return ret;
}

void tw_iplimit_release(tw_iplimit *t, int32_t idx)
{
        struct entry *e;

        pthread_mutex_lock(&t->mu);
        e = &t->e[idx];
        if (--e->count == 0) {
                int32_t *pp = chain_of(t, e->addr);

                while (*pp != idx)
                        pp = &t->e[*pp].next;
                *pp = e->next;
                e->next = t->free_head;
                t->free_head = idx;
        }
        pthread_mutex_unlock(&t->mu);
}

uint32_t tw_iplimit_count(tw_iplimit *t, const struct sockaddr *sa)
{
        uint8_t key[16];
        uint32_t n = 0;

        if (key_of(sa, key) < 0)
                return 0;
        pthread_mutex_lock(&t->mu);
        for (int32_t i = t->cap ? *chain_of(t, key) : -1; i >= 0; i = t->e[i].next)
                if (!memcmp(t->e[i].addr, key, 16))
                        n = t->e[i].count;
        pthread_mutex_unlock(&t->mu);
        return n;
}
