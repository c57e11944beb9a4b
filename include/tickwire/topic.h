/*
 * topic — publish/subscribe: per-topic sequencers, history and last value, per-worker
 * subscriber lists, and cross-worker delivery of published frames through each worker's
 * inbox (woken with IORING_OP_MSG_RING).
 *
 * Owns: topics, subscriptions (struct tw_subs), inboxes. Must not touch: sockets or the
 * ring beyond posting wake-ups; sending goes through tw_conn_send().
 */
#ifndef TICKWIRE_TOPIC_H
#define TICKWIRE_TOPIC_H

#include <stddef.h>
#include <stdint.h>

#include "tickwire/conn.h"
#include "tickwire/http.h"
#include "tickwire/proto.h"

struct tw_worker;

/* subscribe / unsubscribe / publish from a WebSocket client. */
void tw_topic_on_message(struct tw_worker *w, tw_conn *c, const tw_msg *m);

/* POST /publish?topic=T: fills status and a JSON body ({"seq":S} or an error). */
int tw_topic_http_publish(struct tw_worker *w, tw_span topic, const char *body, size_t len,
                          char *out, size_t cap, size_t *out_len);

/* The connection is going away: drop its subscriptions. */
void tw_topic_conn_gone(struct tw_worker *w, tw_conn *c);

/* Delivers what other workers posted to this worker's inbox. */
void tw_topic_drain_inbox(struct tw_worker *w);

#endif
