/*
 * tickwire: parse the command line, start the workers, and turn SIGTERM/SIGINT into a
 * drain. Signals are blocked in every thread and taken here with sigwait, so no worker
 * is ever interrupted mid-completion.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tickwire/config.h"
#include "tickwire/server.h"

int main(int argc, char **argv)
{
        static tw_server srv;
        char first[80];
        tw_config cfg;
        char err[256];
        sigset_t set;
        int sig, ret;

        tw_config_defaults(&cfg);
        ret = tw_config_parse(&cfg, argc, argv, stdout, err, sizeof(err));
        if (ret == 1)
                return 0;
        if (ret < 0) {
                fprintf(stderr, "tickwire: %s\n", err);
                return 2;
        }

        if (!cfg.node_id[0]) {
                char host[48] = "node";

                gethostname(host, sizeof host - 1);
                host[sizeof host - 1] = '\0';
                snprintf(cfg.node_id, sizeof cfg.node_id, "%s-%d", host, (int)getpid());
        }
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);

        ret = tw_server_start(&srv, &cfg);
        if (ret < 0) {
                /* tw_server_start() said why on stderr, in one line. A value the user gave cannot
                 * be used (DESIGN 7): exit 2, like a bad flag. */
                return ret == -EADDRINUSE || ret == -EADDRNOTAVAIL || ret == -EACCES ||
                               ret == -EINVAL
                           ? 2
                           : 1;
        }
        for (unsigned i = 0; i < cfg.norigins; i++)
                if (strcmp(cfg.origins[i], "*") == 0)
                        fprintf(stderr, "tickwire: warning: --allowed-origin * lets pages of any "
                                        "origin connect (cross-site WebSocket hijacking)\n");
        for (unsigned i = 0; i < cfg.nlisten; i++) {
                tw_listen l = cfg.listen[i];
                char addr[80];

                if (l.addr.ss_family == AF_INET)
                        ((struct sockaddr_in *)&l.addr)->sin_port = htons(srv.port[i]);
                else
                        ((struct sockaddr_in6 *)&l.addr)->sin6_port = htons(srv.port[i]);
                tw_listen_format(&l, addr, sizeof(addr));
                if (i == 0)
                        memcpy(first, addr, sizeof(first));
                fprintf(stderr,
                        "tickwire: listening on %s%s (%u workers, ping %llums, idle %llums)\n",
                        addr, l.tls ? " (tls)" : "", srv.nworkers,
                        (unsigned long long)cfg.ping_interval_ms,
                        (unsigned long long)cfg.idle_timeout_ms);
        }
        if (cfg.broker.kind != TW_BROKER_NONE)
                fprintf(stderr, "tickwire: node %s, broker %s://%s:%u\n", cfg.node_id,
                        cfg.broker.kind == TW_BROKER_CLUSTER ? "redis-cluster" : "redis",
                        cfg.broker.hosts[0].host, cfg.broker.hosts[0].port);
        fprintf(stderr, "tickwire: demo page at %s://%s/%s\n", cfg.listen[0].tls ? "https" : "http",
                first, cfg.demo ? " (with the --demo feed)" : " (start with --demo for a feed)");
        fflush(stderr);

        do {
                ret = sigwait(&set, &sig);
        } while (ret == EINTR);
        fprintf(stderr, "tickwire: %s: draining (up to %llums)\n", strsignal(sig),
                (unsigned long long)cfg.drain_timeout_ms);
        tw_server_drain(&srv);
        tw_server_join(&srv);
        fprintf(stderr, "tickwire: stopped\n");
        return 0;
}
