/*
 * Scraping and log tailing. Both are rare, small and on main's thread, so they use plain
 * blocking sockets and read(2); nothing here is on a hot path.
 */
#include "probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static double sample(const char *body, const char *name, bool *found)
{
        size_t n = strlen(name);
        const char *p = body;

        while ((p = strstr(p, name)) != NULL) {
                if ((p == body || p[-1] == '\n') && p[n] == ' ') {
                        *found = true;
                        return strtod(p + n + 1, NULL);
                }
                p += n;
        }
        return 0;
}

static void parse_metrics(const char *body, lg_scrape *s)
{
        static const char bucket[] = "tickwire_detection_seconds_bucket{le=\"";
        const char *p = body;
        bool found = false;

        s->connections = sample(body, "tickwire_connections", &found);
        s->ok = found;
        s->accepted = sample(body, "tickwire_connections_accepted_total", &found);
        s->heartbeat_timeouts = sample(body, "tickwire_heartbeat_timeouts_total", &found);
        s->det_count = sample(body, "tickwire_detection_seconds_count", &found);
        s->det_sum = sample(body, "tickwire_detection_seconds_sum", &found);
        s->nbuckets = 0;
        while ((p = strstr(p, bucket)) != NULL && s->nbuckets < LG_PROBE_BUCKETS) {
                const char *q = p + sizeof(bucket) - 1;
                const char *close = strstr(q, "\"} ");

                if (!close)
                        break;
                s->le[s->nbuckets] = strncmp(q, "+Inf", 4) == 0 ? INFINITY : strtod(q, NULL);
                s->cum[s->nbuckets] = strtod(close + 3, NULL);
                s->nbuckets++;
                p = close;
        }
}

int lg_probe_scrape(const struct sockaddr_in *target, lg_scrape *s)
{
        static const char req[] =
            "GET /metrics HTTP/1.1\r\nHost: loadgen\r\nConnection: close\r\n\r\n";
        struct timeval tv = {.tv_sec = 2};
        size_t cap = 1 << 16, len = 0;
        char *buf;
        int fd, ret = 0;

        memset(s, 0, sizeof(*s));
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, (const struct sockaddr *)target, sizeof(*target)) < 0 ||
            send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) < 0) {
                ret = -errno;
                close(fd);
                return ret;
        }
        buf = malloc(cap);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        for (;;) {
                ssize_t n;

                if (len + 1 == cap) {
                        char *b = realloc(buf, cap * 2);
                        if (!b) {
                                ret = -ENOMEM;
                                break;
                        }
                        buf = b;
                        cap *= 2;
                }
                n = recv(fd, buf + len, cap - 1 - len, 0);
                if (n < 0) {
                        ret = -errno;
                        break;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        close(fd);
        buf[len] = 0;
        if (ret == 0) {
                const char *body = strstr(buf, "\r\n\r\n");

                if (strncmp(buf, "HTTP/1.1 200", 12) != 0 || !body)
                        ret = -EPROTO;
                else
                        parse_metrics(body + 4, s);
                if (ret == 0 && !s->ok)
                        ret = -EPROTO;
        }
        free(buf);
        return ret;
}

int lg_log_open(lg_log *l, const char *path)
{
        memset(l, 0, sizeof(*l));
        l->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (l->fd < 0)
                return -errno;
        l->initial = true;
        lg_log_poll(l, 0);
        l->initial = false;
        return 0;
}

static void parse_line(lg_log *l, const char *line, double now_ms)
{
        const char *p;
        unsigned a, b, c, d, port, age;

        if ((p = strstr(line, "tickwire: listening on ")) != NULL) {
                const char *q = strstr(p, ", ping ");
                const char *r = strstr(p, ", idle ");

                if (q && r) {
                        l->ping_ms = strtoull(q + 7, NULL, 10);
                        l->idle_ms = strtoull(r + 7, NULL, 10);
                        l->have_settings = l->ping_ms && l->idle_ms;
                }
                return;
        }
        if (l->initial || (p = strstr(line, "tickwire: detect peer=")) == NULL)
                return;
        if (sscanf(p, "tickwire: detect peer=%u.%u.%u.%u:%u age_ms=%u", &a, &b, &c, &d, &port,
                   &age) != 6)
                return;
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 256;
                lg_detect_line *n = realloc(l->lines, cap * sizeof(*n));

                if (!n)
                        return;
                l->lines = n;
                l->cap = cap;
        }
        l->lines[l->n++] =
            (lg_detect_line){htonl(a << 24 | b << 16 | c << 8 | d), (uint16_t)port, age, now_ms};
}

void lg_log_poll(lg_log *l, double now_ms)
{
        char buf[8192];
        ssize_t n;

        if (l->fd < 0)
                return;
        while ((n = read(l->fd, buf, sizeof(buf))) > 0) {
                for (ssize_t i = 0; i < n; i++) {
                        if (buf[i] != '\n') {
                                if (l->plen < sizeof(l->part) - 1)
                                        l->part[l->plen++] = buf[i];
                                continue;
                        }
                        l->part[l->plen] = 0;
                        parse_line(l, l->part, now_ms);
                        l->plen = 0;
                }
        }
}

void lg_log_close(lg_log *l)
{
        if (l->fd >= 0)
                close(l->fd);
        free(l->lines);
        memset(l, 0, sizeof(*l));
        l->fd = -1;
}
