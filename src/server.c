/*
 * The server as a whole: listeners, threads, startup, the start of the drain, join.
 * The loop each worker runs is loop.c; the events of a connection go to conn.c through
 * the table of tw_loop_ops below.
 */
#include "tickwire/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tickwire/conn.h"
#include "tickwire/iplimit.h"
#include "tickwire/ring.h"
#include "tickwire/tls.h"
#include "tickwire/topic.h"

struct tw_thread {
        tw_server *srv;
        tw_worker *w;
        pthread_t thread;
        bool running; /* created (joined by tw_server_join) */
};

/* --demo: worker 0 publishes its synthetic feed like any publisher would. */
static void demo_publish(tw_worker *w, const char *topic, const char *data, size_t len)
{
        bool dup;

        tw_topic_publish(w, (tw_span){topic, strlen(topic)}, (tw_span){data, len}, (tw_span){"", 0},
                         &dup);
}

static const tw_loop_ops conn_ops = {
    .accepted = tw_conn_on_accept,
    .data = tw_conn_on_recv,
    .eof = tw_conn_on_eof,
    .sent = tw_conn_on_sent,
    .timer = tw_conn_on_timer,
    .gone = tw_conn_gone,
    .release = tw_conn_on_release,
    .drain = tw_conn_drain,
    .send = tw_conn_send,
    .deliver = tw_conn_deliver,
    .mailbox = tw_topic_deliver,
    .publish = demo_publish,
    .answer = tw_conn_answer,
    .started = tw_topic_started,
};

/* A worker's setup result: tw_server_start() waits for every worker's. */
static void report_started(tw_server *srv, int ret)
{
        pthread_mutex_lock(&srv->start_mu);
        srv->started++;
        if (ret < 0 && srv->start_err == 0)
                srv->start_err = ret;
        pthread_cond_broadcast(&srv->start_cv);
        pthread_mutex_unlock(&srv->start_mu);
}

static void *worker_main(void *arg)
{
        struct tw_thread *t = arg;
        int err = tw_loop_setup(t->w);

        report_started(t->srv, err);
        if (err < 0) {
                fprintf(stderr, "tickwire: worker %u failed to start\n", tw_worker_id(t->w));
                return NULL; /* tw_server_start() sees it and fails */
        }
        tw_loop_run(t->w);
        tw_tls_thread_done();
        return NULL;
}

/* ---- start / drain / join ---- */

static int open_listener(const tw_listen *l, uint16_t port, uint64_t user_timeout_ms,
                         uint16_t *bound)
{
        struct sockaddr_storage ss = l->addr;
        int one = 1, fd;
        unsigned uto = (unsigned)user_timeout_ms;

        if (ss.ss_family == AF_INET)
                ((struct sockaddr_in *)&ss)->sin_port = htons(port);
        else
                ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        /* Inherited by accepted sockets: unacknowledged data cannot keep a dead peer
         * alive longer than the heartbeat would. */
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, sizeof(uto));
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (ss.ss_family == AF_INET6)
                setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&ss, l->addrlen) < 0 || listen(fd, 4096) < 0) {
                int err = -errno;
                close(fd);
                return err;
        }
        if (bound) {
                socklen_t len = sizeof(ss);
                getsockname(fd, (struct sockaddr *)&ss, &len);
                *bound = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                       : ((struct sockaddr_in6 *)&ss)->sin6_port);
        }
        return fd;
}

/* Whether another process already serves this address. Our listeners share theirs with
 * SO_REUSEPORT, which would also let a second server join the first's group and split
 * new connections between two servers with separate topics and seqs: a socket bound
 * without SO_REUSEPORT fails where anyone is listening. */
static bool served_elsewhere(const tw_listen *l)
{
        int one = 1, fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool busy;

        if (fd < 0)
                return false;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)); /* TIME_WAIT is fine */
        if (l->addr.ss_family == AF_INET6)
                setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        busy = bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) < 0 && errno == EADDRINUSE;
        close(fd);
        return busy;
}

static int open_listeners(tw_server *srv)
{
        const tw_config *cfg = &srv->sh.cfg;

        for (unsigned i = 0; i < cfg->nlisten; i++) {
                const tw_listen *l = &cfg->listen[i];
                uint16_t want = ntohs(l->addr.ss_family == AF_INET
                                          ? ((const struct sockaddr_in *)&l->addr)->sin_port
                                          : ((const struct sockaddr_in6 *)&l->addr)->sin6_port);
                char addr[80];
                int fd = -EADDRINUSE;

                tw_listen_format(l, addr, sizeof(addr));
                if (want && served_elsewhere(l)) {
                        fprintf(stderr,
                                "tickwire: cannot listen on %s: already in use by another "
                                "process\n",
                                addr);
                        return -EADDRINUSE;
                }
                for (unsigned k = 0; k < srv->nworkers; k++) {
                        fd = open_listener(l, k ? srv->port[i] : want,
                                           cfg->tcp_user_timeout ? cfg->idle_timeout_ms : 0,
                                           k ? NULL : &srv->port[i]);
                        if (fd < 0) {
                                fprintf(stderr, "tickwire: cannot listen on %s: %s\n", addr,
                                        strerror(-fd));
                                return fd;
                        }
                        tw_loop_set_listener(srv->sh.workers[k], i, fd);
                }
        }
        return 0;
}

int tw_server_start(tw_server *srv, const tw_config *cfg)
{
        unsigned created = 0;
        int ret;

        memset(srv, 0, sizeof(*srv));
        srv->sh.cfg = *cfg;
        srv->sh.ops = &conn_ops;
        srv->nworkers = cfg->workers ? cfg->workers : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
        if (srv->nworkers == 0)
                srv->nworkers = 1;
        srv->sh.nworkers = srv->nworkers;
        pthread_mutex_init(&srv->start_mu, NULL);
        pthread_cond_init(&srv->start_cv, NULL);
        srv->threads = calloc(srv->nworkers, sizeof(*srv->threads));
        srv->sh.workers = calloc(srv->nworkers, sizeof(*srv->sh.workers));
        if (!srv->threads || !srv->sh.workers) {
                ret = -ENOMEM;
                goto fail;
        }
        for (unsigned k = 0; k < srv->nworkers; k++) {
                srv->threads[k].srv = srv;
                srv->threads[k].w = srv->sh.workers[k] = tw_loop_new(&srv->sh, k);
                if (!srv->threads[k].w) {
                        ret = -ENOMEM;
                        goto fail;
                }
        }
        ret = io_uring_queue_init(8, &srv->msg_ring, 0);
        if (ret < 0)
                goto fail;
        ret = tw_topic_init(&srv->sh.topics, srv->nworkers);
        if (ret < 0)
                goto fail;
        if (tw_topic_cluster(srv->sh.topics, cfg) < 0) {
                ret = -EINVAL; /* said why; a --broker that cannot be used is a bad value */
                goto fail;
        }
        if (cfg->max_connections_per_ip &&
            !(srv->sh.iplimit = tw_iplimit_new(cfg->max_connections_per_ip))) {
                ret = -ENOMEM;
                goto fail;
        }
        for (unsigned i = 0; i < cfg->nlisten && !srv->sh.tls; i++) {
                char err[256];

                if (!cfg->listen[i].tls)
                        continue;
                srv->sh.tls = tw_tls_server_ctx(cfg->tls_cert, cfg->tls_key, err, sizeof(err));
                if (!srv->sh.tls) {
                        fprintf(stderr, "tickwire: %s\n", err);
                        ret = -EINVAL;
                        goto fail;
                }
        }
        ret = open_listeners(srv);
        if (ret < 0)
                goto fail;
        for (; created < srv->nworkers; created++) {
                struct tw_thread *t = &srv->threads[created];

                ret = -pthread_create(&t->thread, NULL, worker_main, t);
                if (ret < 0)
                        break;
                t->running = true;
        }
        /* Every worker reports whether it could set up its ring; one that could not
         * fails the start as a whole, and the others are drained and joined. */
        pthread_mutex_lock(&srv->start_mu);
        while (srv->started < created)
                pthread_cond_wait(&srv->start_cv, &srv->start_mu);
        if (ret == 0)
                ret = srv->start_err;
        pthread_mutex_unlock(&srv->start_mu);
        if (ret == 0)
                return 0;
        tw_server_drain(srv);
fail:
        tw_server_join(srv);
        return ret;
}

void tw_server_drain(tw_server *srv)
{
        atomic_store_explicit(&srv->sh.draining, 1, memory_order_seq_cst);
        for (unsigned k = 0; srv->sh.workers && k < srv->nworkers; k++) {
                /* A worker not started yet has no ring: it will see the flag. */
                if (srv->sh.workers[k] && tw_loop_ring_fd(srv->sh.workers[k]) > 0)
                        tw_loop_prep_wake(tw_ring_sqe(&srv->msg_ring), srv->sh.workers[k]);
        }
        io_uring_submit(&srv->msg_ring);
}

void tw_server_join(tw_server *srv)
{
        for (unsigned k = 0; srv->threads && k < srv->nworkers; k++)
                if (srv->threads[k].running)
                        pthread_join(srv->threads[k].thread, NULL);
        for (unsigned k = 0; srv->sh.workers && k < srv->nworkers; k++)
                tw_loop_free(srv->sh.workers[k]);
        if (srv->msg_ring.ring_fd > 0)
                io_uring_queue_exit(&srv->msg_ring);
        tw_topic_free(&srv->sh.topics);
        tw_tls_ctx_free(srv->sh.tls);
        tw_iplimit_free(srv->sh.iplimit);
        free(srv->sh.workers);
        free(srv->threads);
        srv->sh.workers = NULL;
        srv->threads = NULL;
        pthread_cond_destroy(&srv->start_cv);
        pthread_mutex_destroy(&srv->start_mu);
}
