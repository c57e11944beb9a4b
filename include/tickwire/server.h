/*
 * server — the process's workers as a whole: the listeners (one SO_REUSEPORT socket per
 * listen address and worker, port 0 resolved once for all), the shared parts (topics,
 * TLS context, per-address counts), one thread per worker, startup and its failures, the
 * start of a drain and the final join. Each worker's loop is loop.c; what each
 * connection's events mean is conn.c: this file wires the one to the other
 * (tw_loop_ops).
 *
 * Owns: tw_server, the listeners until a worker takes them, the threads. Must not
 * touch: a worker's internals (loop.h's functions only) or any connection.
 */
#ifndef TICKWIRE_SERVER_H
#define TICKWIRE_SERVER_H

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "tickwire/config.h"
#include "tickwire/loop.h"

struct tw_thread; /* one worker's thread */

typedef struct tw_server {
        tw_shared sh;                 /* what the workers share (config, counts, topics) */
        unsigned nworkers;            /* = sh.nworkers */
        struct tw_thread *threads;    /* [nworkers] */
        struct io_uring msg_ring;     /* the main thread's ring, to wake workers */
        uint16_t port[TW_MAX_LISTEN]; /* bound ports (port 0 resolved) */
        pthread_mutex_t start_mu;     /* workers report their setup here */
        pthread_cond_t start_cv;
        unsigned started; /* workers that have reported */
        int start_err;    /* the first setup failure, or 0 */
} tw_server;

/* Creates listeners (resolving port 0 once for all workers) and starts the workers, each
 * setting up its own ring. Returns 0 once all of them run, or a negative errno with a
 * message on stderr, everything released (-EADDRINUSE: another process serves a listen
 * address; -EINVAL: the TLS certificate or key cannot be used). */
int tw_server_start(tw_server *srv, const tw_config *cfg);

/* Begins the drain: stop accepting, Close 1001 to everyone. Callable from any thread. */
void tw_server_drain(tw_server *srv);

/* Waits for every worker to finish and frees everything. */
void tw_server_join(tw_server *srv);

#endif
