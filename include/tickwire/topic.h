/*
 * topic — publish/subscribe: per-topic sequencers, history and last value, per-worker
 * subscriber lists, and cross-worker delivery of published frames through each worker's
 * inbox (woken with IORING_OP_MSG_RING).
 *
 * Owns: topics, subscriptions (struct tw_subs), inboxes, and the conflation rule the send
 * queue applies to slow consumers. Must not touch: sockets or the ring beyond posting
 * wake-ups; sending goes through tw_conn_send().
 *
 * Limits: at most TW_TOPICS_MAX topics live in a server (a topic lives until exit); a
 * subscribe or publish that would create one more is answered `too_many_topics` (HTTP
 * 503). A topic's history holds at most cfg.history messages and grows to it on demand.
 */
#ifndef TICKWIRE_TOPIC_H
#define TICKWIRE_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tickwire/conn.h"
#include "tickwire/frame.h"
#include "tickwire/http.h"
#include "tickwire/proto.h"

#define TW_TOPICS_MAX 100000

struct tw_worker;
struct tw_server;

/* Registry and inboxes for srv->nworkers workers (call before the workers start).
 * Returns 0 or -ENOMEM. */
int tw_topic_init(struct tw_server *srv);

/* Frees every topic, its history and whatever is left in the inboxes (after join). */
void tw_topic_free(struct tw_server *srv);

/* subscribe / unsubscribe / publish from a WebSocket client. */
void tw_topic_on_message(struct tw_worker *w, tw_conn *c, const tw_msg *m);

/* POST /publish?topic=T: fills status and a JSON body ({"seq":S} or an error). */
int tw_topic_http_publish(struct tw_worker *w, tw_span topic, const char *body, size_t len,
                          char *out, size_t cap, size_t *out_len);

/* The connection is going away: drop its subscriptions. */
void tw_topic_conn_gone(struct tw_worker *w, tw_conn *c);

/* Delivers what other workers posted to this worker's inbox. Cheap when empty: the
 * worker calls it once per loop turn as well as on a wake-up. */
void tw_topic_drain_inbox(struct tw_worker *w);

/* ---- pure parts, exposed for tests ---- */

/* The message envelope as a whole server frame:
 * header + {"type":"message","topic":"T","seq":S,"data":D}. tw_topic_encode_max() bounds
 * its size; tw_topic_encode() writes it into out (cap bytes) and returns its length, or 0
 * when cap is too small. */
size_t tw_topic_encode_max(size_t topic_len, size_t data_len);
size_t tw_topic_encode(uint8_t *out, size_t cap, tw_span topic, uint64_t seq, tw_span data);

/* The last `max` messages of a topic by seq, as frame references. The ring starts small
 * and doubles up to max, so a quiet topic costs little. */
typedef struct tw_history {
        tw_frame **v;  /* v[seq % cap] */
        uint32_t cap;  /* slots allocated */
        uint32_t max;  /* cfg.history */
        uint32_t n;    /* messages held: seqs (last - n, last] */
        uint64_t last; /* seq of the newest message, 0 = none yet */
} tw_history;

/* Appends f (the caller's reference moves in) as seq last + 1. Returns 0 or -ENOMEM
 * (then f is still the caller's). Evicts the oldest when full. */
int tw_history_push(tw_history *h, tw_frame *f);
/* The frame of `seq`, or NULL when it is not held (no new reference). */
tw_frame *tw_history_get(const tw_history *h, uint64_t seq);
/* Seq of the oldest message held (last + 1 when empty). */
uint64_t tw_history_oldest(const tw_history *h);
void tw_history_free(tw_history *h);

/* Slow-consumer rule over a send queue, a ring of `cap` frame references holding `*count`
 * from `*head`. The first `keep` entries (covered by the send in flight, or partly sent)
 * are never touched. Of the rest, `all` drops every entry; otherwise only topic messages
 * are dropped that a newer message of the same topic follows (the newest pending message
 * per topic survives). Order is kept. Dropped references are released; their bytes come
 * off *bytes. Returns the number of topic messages dropped, or -ENOMEM (queue unchanged). */
int64_t tw_conflate(tw_frame **q, uint32_t cap, uint32_t *head, uint32_t *count, uint32_t keep,
                    bool all, uint64_t *bytes);

#endif
