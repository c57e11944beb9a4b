/*
 * topic — publish/subscribe: per-topic sequencers, history and last value, per-worker
 * subscriber lists, and cross-worker delivery of published frames through each worker's
 * mailbox (loop.h; woken with IORING_OP_MSG_RING).
 *
 * Owns: topics (name, epoch, seq, history), subscriptions (struct tw_subs) and their
 * `since` replays, the per-worker subscriber lists. Must not touch: sockets, the ring or
 * another module's arrays: subscribers are (slot, generation) handles resolved by the
 * loop (tw_worker_deliver), posts go through the loop's mailboxes (tw_worker_post), and
 * sending goes through tw_worker_send(). It calls nothing in conn or endpoints.
 *
 * Limits (DESIGN 7): at most cfg.max_topics topics live at once; a subscribe or publish
 * that would create one more is answered `too_many_topics` (HTTP 503). A topic is freed as
 * soon as it has neither subscribers nor history, so names that are only subscribed to and
 * left cost nothing afterwards. A history holds at most cfg.history messages, and all
 * histories together at most cfg.max_history_bytes: past it, the oldest messages of the
 * largest histories are dropped first. A topic that is freed and created again gets a new
 * epoch, so a client resuming across that sees `recovered:false`, never reused seqs.
 */
#ifndef TICKWIRE_TOPIC_H
#define TICKWIRE_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tickwire/broker.h"
#include "tickwire/config.h"
#include "tickwire/loop.h"
#include "tickwire/frame.h"
#include "tickwire/http.h"
#include "tickwire/proto.h"

struct tw_worker;
struct tw_topics;

/* Registry and per-worker subscriber maps for `nworkers` workers into *r (call before
 * the workers start). Returns 0 or -ENOMEM. */
int tw_topic_init(struct tw_topics **r, unsigned nworkers);

/* Frees every topic, its history and the subscriber maps (after join); *r = NULL. */
void tw_topic_free(struct tw_topics **r);

/* subscribe / unsubscribe / publish from a WebSocket client. */
void tw_topic_on_message(struct tw_worker *w, tw_conn *c, const tw_msg *m);

/* Publishes data (one JSON value, verbatim) on topic `name`; with an `id`, a repeat of one
 * the topic remembers (include/tickwire/idem.h) is not published again: *dup is set and
 * the original seq returned. Returns the seq, or a negative errno: -ENOSPC at
 * --max-topics, -ENOMEM. */
int64_t tw_topic_publish(struct tw_worker *w, tw_span name, tw_span data, tw_span id, bool *dup);

/* POST /publish?topic=T[&id=I] on connection c: fills status and a JSON body ({"seq":S},
 * with "duplicate":true when id repeats a publish the topic remembers, or an error). With
 * --broker the answer comes later: 0 is returned, and Redis's answer reaches c through
 * tw_worker_answer(), with `origin` (an allowed Origin, or empty) for its CORS headers. */
int tw_topic_http_publish(struct tw_worker *w, tw_conn *c, tw_span topic, tw_span id,
                          tw_span origin, const char *body, size_t len, char *out, size_t cap,
                          size_t *out_len);

/* c's token was replaced: drop the subscriptions its grant no longer allows, telling the
 * client with a `forbidden` error naming each topic. */
void tw_topic_recheck(struct tw_worker *w, tw_conn *c);

/* The connection is going away: drop its subscriptions. */
void tw_topic_conn_gone(struct tw_worker *w, tw_conn *c);

/* c's send queue has room again: stream more of its `since` replays (TW_CF_REPLAY). */
void tw_topic_replay_refill(struct tw_worker *w, tw_conn *c);

/* One post from this worker's mailbox (loop.h): hands f, a message of topic incarnation
 * `id`, to this worker's subscribers of it; consumes the mailbox's reference. */
void tw_topic_deliver(struct tw_worker *w, uint64_t id, tw_frame *f);

/* ---- the cluster (--broker, DESIGN 10) ---- */

/* Sets up the broker for cfg->broker (before the workers start); 0, or -1 with a line on
 * stderr. Without --broker nothing changes. */
int tw_topic_cluster(struct tw_topics *r, const tw_config *cfg);

/* On each worker's thread before its loop: worker 0 starts the broker. */
void tw_topic_started(struct tw_worker *w);

/* Whether this server is a cluster node, and whether its broker is connected now. */
bool tw_topic_clustered(struct tw_worker *w);
bool tw_topic_broker_up(struct tw_worker *w);

/* ---- pure parts, exposed for tests ---- */

/* The message envelope as a whole server frame:
 * header + {"type":"message","topic":"T","seq":S,"data":D}. tw_topic_encode_max() bounds
 * its size; tw_topic_encode() writes it into out (cap bytes) and returns its length, or 0
 * when cap is too small. */
size_t tw_topic_encode_max(size_t topic_len, size_t data_len);
size_t tw_topic_encode(uint8_t *out, size_t cap, tw_span topic, uint64_t seq, tw_span data);

#endif
