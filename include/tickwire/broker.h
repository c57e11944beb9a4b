/*
 * broker — the node's Redis client (DESIGN 10): two connections to Redis, one for
 * commands (pipelined, answered in order) and one for pub/sub, both driven by the ring
 * of the worker that runs the broker (worker 0) through tw_worker_io_*. Commands are
 * encoded and replies parsed by hiredis (redisFormatCommandArgv, redisReader); nothing
 * here blocks. A lost connection fails every command in flight (its callback gets NULL),
 * reports `down`, and reconnects with capped exponential backoff and jitter; once both
 * connections are back (database selected, scripts loaded) it reports `up`, and the
 * caller resubscribes what it follows.
 *
 * Owns: the sockets, their buffers and readers, the queue of callbacks, the scripts'
 * SHA-1s, the round-trip clock. Must not touch: topics or connections: what commands
 * mean is the topic module's.
 */
#ifndef TICKWIRE_BROKER_H
#define TICKWIRE_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tickwire/config.h"
#include "tickwire/loop.h"
#include "tickwire/span.h"

struct redisReply;
typedef struct tw_broker tw_broker;

/* What the broker tells its user; all run on the broker's worker. */
typedef struct tw_broker_events {
        /* Both connections are (again) ready: subscribe and backfill what is followed. */
        void (*up)(tw_worker *w, void *arg);
        /* Redis went away: commands in flight have already been failed. */
        void (*down)(tw_worker *w, void *arg);
        /* Redis confirmed a SUBSCRIBE of `channel`. */
        void (*subscribed)(tw_worker *w, void *arg, tw_span channel);
        /* A message published on a channel this node subscribes to. */
        void (*message)(tw_worker *w, void *arg, tw_span channel, tw_span payload);
} tw_broker_events;

/* The reply to one command, or NULL when the connection was lost before it came. The
 * reply is freed after the callback returns. */
typedef void (*tw_broker_reply_fn)(tw_worker *w, void *arg, struct redisReply *r);

/* A broker for cfg->broker (resolved here, before the workers start: the one blocking
 * step); NULL with a line on stderr when the address does not resolve or memory is out. */
tw_broker *tw_broker_new(const tw_config *cfg, const tw_broker_events *ev, void *arg);

/* Connects, on w's thread (w runs the broker from now on). */
void tw_broker_start(tw_broker *b, tw_worker *w);

void tw_broker_free(tw_broker *b);

/* Whether commands can be sent now. Any thread may ask (an atomic). */
bool tw_broker_is_up(const tw_broker *b);

/* Queues a command (argv[0..argc), with lengths) on the command connection; fn(arg) gets
 * its reply. -ENOTCONN when the broker is down (fn is not called), -ENOMEM. */
int tw_broker_command(tw_broker *b, int argc, const char **argv, const size_t *lens,
                      tw_broker_reply_fn fn, void *arg);

/* EVALSHA of script `which` (enum tw_broker_script) with the same contract. */
enum tw_broker_script { TW_SCRIPT_PUBLISH, TW_SCRIPT_LOAD, TW_SCRIPT__COUNT };
int tw_broker_script(tw_broker *b, enum tw_broker_script which, int nkeys, int nargs,
                     const char **argv, const size_t *lens, tw_broker_reply_fn fn, void *arg);

/* SUBSCRIBE / UNSUBSCRIBE on the pub/sub connection. Commands made during one loop turn
 * go out together. No-op while down (the `up` event resubscribes). */
void tw_broker_subscribe(tw_broker *b, tw_span channel);
void tw_broker_unsubscribe(tw_broker *b, tw_span channel);

/* PUBLISH, or SPUBLISH in Redis Cluster (the publish script's last argument). */
const char *tw_broker_publish_verb(const tw_broker *b);

/* Redis Cluster's slot of a key (CRC16 of its {hash tag}, or of the whole key). Pure. */
unsigned tw_broker_slot(tw_span key);

/* The scripts' text, for the README and tests. */
extern const char *const tw_broker_scripts[TW_SCRIPT__COUNT];

#endif
