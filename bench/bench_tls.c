/*
 * bench_tls — what TLS costs on a running tickwire: full and resumed wss:// session
 * set-ups per second (TLS handshake + HTTP upgrade, a wolfSSL client built with
 * tls.h's client context), server memory per idle TLS connection (server RSS delta / N,
 * beside the same for plain connections), and fan-out delivery over TLS vs plain.
 *
 * The server must be started by the caller (bench/tls.sh does it all):
 *   tickwire --listen 127.0.0.1:8080 --tls-listen 127.0.0.1:8443 --tls-cert C --tls-key K
 *   bench_tls --tls 127.0.0.1:8443 --plain 127.0.0.1:8080 --pid PID
 * The client runs on the same box and does as much crypto as the server, so the rates
 * are those of the pair, not the server's ceiling.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tickwire/tls.h"

static struct {
        struct sockaddr_in tls, plain;
        bool has_plain;
        int pid;
        unsigned threads;
        double duration;
        unsigned conns, subs, msgs, payload;
} opt = {.threads = 2, .duration = 3, .conns = 2000, .subs = 500, .msgs = 200, .payload = 64};

static WOLFSSL_CTX *ctx;

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_addr(const char *s, struct sockaddr_in *a)
{
        char host[64];
        const char *colon = strrchr(s, ':');

        if (!colon || (size_t)(colon - s) >= sizeof(host))
                return -1;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = 0;
        memset(a, 0, sizeof(*a));
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)atoi(colon + 1));
        return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static long rss_kib(void)
{
        char path[64], line[256];
        long kib = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", opt.pid);
        f = fopen(path, "r");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "VmRSS:", 6) == 0)
                        kib = atol(line + 6);
        fclose(f);
        return kib;
}

static int dial(const struct sockaddr_in *a)
{
        int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        struct linger lg = {1, 0}; /* RST on close: no TIME_WAIT pile-up at high rates */

        if (fd < 0)
                return -1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        if (connect(fd, (const struct sockaddr *)a, sizeof(*a)) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

/* One side of a connection: plain fd or wolfSSL over it (default socket I/O). */
struct conn {
        int fd;
        WOLFSSL *ssl;
        uint8_t hb[10]; /* frame header being collected */
        unsigned hn;
        uint64_t skip; /* payload bytes left in the current frame */
        uint64_t texts;
};

static int c_write(struct conn *c, const void *p, size_t n)
{
        if (c->ssl)
                return wolfSSL_write(c->ssl, p, (int)n) == (int)n ? 0 : -1;
        return write(c->fd, p, n) == (ssize_t)n ? 0 : -1;
}

static ssize_t c_read(struct conn *c, void *p, size_t n)
{
        if (c->ssl) {
                int r = wolfSSL_read(c->ssl, p, (int)n);

                if (r > 0)
                        return r;
                if (wolfSSL_get_error(c->ssl, r) == WOLFSSL_ERROR_WANT_READ) {
                        errno = EAGAIN;
                        return -1;
                }
                return 0;
        }
        return read(c->fd, p, n);
}

static void c_close(struct conn *c)
{
        if (c->ssl)
                wolfSSL_free(c->ssl);
        close(c->fd);
        c->ssl = NULL;
        c->fd = -1;
}

/* Counts whole text frames in a server byte stream. */
static void count_frames(struct conn *c, const uint8_t *p, size_t n)
{
        while (n > 0) {
                if (c->skip) {
                        size_t k = c->skip < n ? (size_t)c->skip : n;

                        c->skip -= k;
                        p += k;
                        n -= k;
                        continue;
                }
                c->hb[c->hn++] = *p++;
                n--;
                if (c->hn >= 2) {
                        unsigned l7 = c->hb[1] & 0x7f;
                        unsigned need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0);
                        uint64_t len = l7;

                        if (c->hn < need)
                                continue;
                        if (l7 == 126)
                                len = (uint64_t)c->hb[2] << 8 | c->hb[3];
                        else if (l7 == 127)
                                for (unsigned i = 0; i < 8; i++)
                                        len = len << 8 | c->hb[2 + i];
                        if ((c->hb[0] & 0x0f) == 1)
                                c->texts++;
                        c->skip = len;
                        c->hn = 0;
                }
        }
}

/* Connects, (TLS handshake,) upgrades; the connection stays blocking. 0 or -1. */
static int open_ws(struct conn *c, bool tls, WOLFSSL_SESSION *sess)
{
        static const char req[] = "GET /ws HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\n"
                                  "Connection: Upgrade\r\nSec-WebSocket-Key: "
                                  "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        char buf[512];
        size_t got = 0;

        memset(c, 0, sizeof(*c));
        c->fd = dial(tls ? &opt.tls : &opt.plain);
        if (c->fd < 0)
                return -1;
        if (tls) {
                c->ssl = wolfSSL_new(ctx);
                if (!c->ssl || wolfSSL_set_fd(c->ssl, c->fd) != WOLFSSL_SUCCESS ||
                    (sess && wolfSSL_set_session(c->ssl, sess) != WOLFSSL_SUCCESS) ||
                    wolfSSL_connect(c->ssl) != WOLFSSL_SUCCESS)
                        goto fail;
        }
        if (c_write(c, req, sizeof(req) - 1) < 0)
                goto fail;
        /* The 101 is 129 bytes and nothing follows it unasked: read it exactly. */
        while (got < 4 || memcmp(buf + got - 4, "\r\n\r\n", 4) != 0) {
                ssize_t r = c_read(c, buf + got, 1);

                if (r <= 0 || ++got == sizeof(buf))
                        goto fail;
        }
        if (memcmp(buf, "HTTP/1.1 101", 12) != 0)
                goto fail;
        return 0;
fail:
        c_close(c);
        return -1;
}

/* ---- handshakes per second ---- */

struct hs_arg {
        bool resume;
        uint64_t done, failed, reused;
};

static void *hs_thread(void *p)
{
        struct hs_arg *a = p;
        WOLFSSL_SESSION *sess = NULL;
        double end;
        struct conn c;

        if (a->resume) {
                if (open_ws(&c, true, NULL) < 0)
                        return NULL;
                sess = wolfSSL_get1_session(c.ssl); /* the ticket came before the 101 */
                c_close(&c);
        }
        end = now_s() + opt.duration;
        while (now_s() < end) {
                if (open_ws(&c, true, sess) < 0) {
                        a->failed++;
                        continue;
                }
                a->done++;
                a->reused += (uint64_t)wolfSSL_session_reused(c.ssl);
                c_close(&c);
        }
        if (sess)
                wolfSSL_SESSION_free(sess);
        return NULL;
}

static void bench_handshakes(void)
{
        printf("\n## wss:// session set-up (TCP connect + TLS 1.3 handshake + upgrade + RST)\n");
        printf("| mode    | client threads | sessions | resumed | failed | per second |\n");
        printf("|---------|----------------|----------|---------|--------|------------|\n");
        for (int resume = 0; resume < 2; resume++) {
                struct hs_arg args[64] = {0};
                pthread_t th[64];
                uint64_t done = 0, failed = 0, reused = 0;
                double t0 = now_s(), dt;

                for (unsigned i = 0; i < opt.threads; i++) {
                        args[i].resume = resume;
                        pthread_create(&th[i], NULL, hs_thread, &args[i]);
                }
                for (unsigned i = 0; i < opt.threads; i++) {
                        pthread_join(th[i], NULL);
                        done += args[i].done;
                        failed += args[i].failed;
                        reused += args[i].reused;
                }
                dt = now_s() - t0;
                printf("| %-7s | %14u | %8llu | %7llu | %6llu | %10.0f |\n",
                       resume ? "resumed" : "full", opt.threads, (unsigned long long)done,
                       (unsigned long long)reused, (unsigned long long)failed, (double)done / dt);
        }
}

/* ---- memory per idle connection ---- */

static void bench_memory_one(bool tls)
{
        struct conn *v = calloc(opt.conns, sizeof(*v));
        unsigned n = 0;
        long before, after;

        sleep(1);
        before = rss_kib();
        for (unsigned i = 0; i < opt.conns; i++)
                if (open_ws(&v[n], tls, NULL) == 0)
                        n++;
        sleep(1);
        after = rss_kib();
        printf("| %-5s | %11u | %14ld | %13ld | %12.0f |\n", tls ? "TLS" : "plain", n, before,
               after, n ? (double)(after - before) * 1024.0 / n : 0.0);
        for (unsigned i = 0; i < n; i++)
                c_close(&v[i]);
        free(v);
}

static void bench_memory(void)
{
        if (opt.pid <= 0)
                return;
        printf("\n## server memory per idle connection (VmRSS of pid %d; jemalloc)\n", opt.pid);
        printf("| conn  | connections | RSS before KiB | RSS after KiB | bytes / conn |\n");
        printf("|-------|-------------|----------------|---------------|--------------|\n");
        if (opt.has_plain)
                bench_memory_one(false);
        bench_memory_one(true);
}

/* ---- fan-out ---- */

static int send_text(struct conn *c, const char *s)
{
        uint8_t f[512];
        size_t n = strlen(s);

        if (n > 125)
                return -1;
        f[0] = 0x81;
        f[1] = 0x80 | (uint8_t)n;
        memset(f + 2, 0, 4); /* a zero mask: the payload goes as is */
        memcpy(f + 6, s, n);
        return c_write(c, f, n + 6);
}

struct pub_arg {
        struct conn *c;
        char *msg;
};

static void *pub_thread(void *p)
{
        struct pub_arg *a = p;
        uint8_t buf[65536];
        uint64_t seen = 0;

        for (unsigned i = 0; i < opt.msgs; i++)
                if (send_text(a->c, a->msg) < 0)
                        return NULL;
        while (seen < opt.msgs) { /* the "published" replies */
                ssize_t r = c_read(a->c, buf, sizeof(buf));

                if (r <= 0)
                        break;
                a->c->texts = 0;
                count_frames(a->c, buf, (size_t)r);
                seen += a->c->texts;
        }
        return NULL;
}

static double bench_fanout_one(bool tls, unsigned *got_subs, uint64_t *delivered)
{
        struct conn *v = calloc(opt.subs, sizeof(*v)), pub;
        int ep = epoll_create1(0);
        uint64_t want, total = 0;
        unsigned n = 0;
        char msg[256], data[128];
        uint8_t buf[65536];
        struct pub_arg pa;
        pthread_t th;
        double t0, t1 = 0;

        for (unsigned i = 0; i < opt.subs; i++) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLET};

                if (open_ws(&v[n], tls, NULL) < 0)
                        continue;
                if (send_text(&v[n], "{\"type\":\"subscribe\",\"topic\":\"bench\"}") < 0) {
                        c_close(&v[n]);
                        continue;
                }
                while (v[n].texts == 0) { /* the "subscribed" reply */
                        ssize_t r = c_read(&v[n], buf, sizeof(buf));

                        if (r <= 0)
                                break;
                        count_frames(&v[n], buf, (size_t)r);
                }
                v[n].texts = 0;
                fcntl(v[n].fd, F_SETFL, fcntl(v[n].fd, F_GETFL) | O_NONBLOCK);
                ev.data.ptr = &v[n];
                epoll_ctl(ep, EPOLL_CTL_ADD, v[n].fd, &ev);
                n++;
        }
        memset(data, 'x', opt.payload < sizeof(data) - 1 ? opt.payload : sizeof(data) - 1);
        data[opt.payload < sizeof(data) - 1 ? opt.payload : sizeof(data) - 1] = 0;
        snprintf(msg, sizeof(msg), "{\"type\":\"publish\",\"topic\":\"bench\",\"data\":\"%s\"}",
                 data + (strlen(data) > 60 ? strlen(data) - 60 : 0));
        want = (uint64_t)n * opt.msgs;
        if (open_ws(&pub, false, NULL) < 0 && open_ws(&pub, true, NULL) < 0)
                return 0;
        pa = (struct pub_arg){&pub, msg};
        t0 = now_s();
        pthread_create(&th, NULL, pub_thread, &pa);
        while (total < want && now_s() - t0 < 60) {
                struct epoll_event evs[256];
                int k = epoll_wait(ep, evs, 256, 1000);

                for (int i = 0; i < k; i++) {
                        struct conn *c = evs[i].data.ptr;
                        ssize_t r;

                        while ((r = c_read(c, buf, sizeof(buf))) > 0) {
                                uint64_t before = c->texts;

                                count_frames(c, buf, (size_t)r);
                                total += c->texts - before;
                        }
                }
                t1 = now_s();
        }
        pthread_join(th, NULL);
        for (unsigned i = 0; i < n; i++)
                c_close(&v[i]);
        c_close(&pub);
        close(ep);
        free(v);
        *got_subs = n;
        *delivered = total;
        return t1 > t0 ? (double)total / (t1 - t0) : 0;
}

static void bench_fanout(void)
{
        printf("\n## fan-out: 1 topic, %u publishes of a ~%u-byte payload, one client thread "
               "reading all subscribers\n",
               opt.msgs, opt.payload < 60 ? opt.payload : 60);
        printf("| conn  | subscribers | delivered | msgs / s |\n");
        printf("|-------|-------------|-----------|----------|\n");
        for (int tls = opt.has_plain ? 0 : 1; tls < 2; tls++) {
                unsigned subs = 0;
                uint64_t got = 0;
                double rate = bench_fanout_one(tls, &subs, &got);

                printf("| %-5s | %11u | %9llu | %8.0f |\n", tls ? "TLS" : "plain", subs,
                       (unsigned long long)got, rate);
        }
}

int main(int argc, char **argv)
{
        char err[256];
        bool have_tls = false;

        for (int i = 1; i + 1 < argc; i += 2) {
                const char *k = argv[i], *v = argv[i + 1];

                if (!strcmp(k, "--tls"))
                        have_tls = parse_addr(v, &opt.tls) == 0;
                else if (!strcmp(k, "--plain"))
                        opt.has_plain = parse_addr(v, &opt.plain) == 0;
                else if (!strcmp(k, "--pid"))
                        opt.pid = atoi(v);
                else if (!strcmp(k, "--threads"))
                        opt.threads = (unsigned)atoi(v);
                else if (!strcmp(k, "--duration"))
                        opt.duration = atof(v);
                else if (!strcmp(k, "--conns"))
                        opt.conns = (unsigned)atoi(v);
                else if (!strcmp(k, "--subs"))
                        opt.subs = (unsigned)atoi(v);
                else if (!strcmp(k, "--msgs"))
                        opt.msgs = (unsigned)atoi(v);
                else if (!strcmp(k, "--payload"))
                        opt.payload = (unsigned)atoi(v);
        }
        if (!have_tls || opt.threads == 0 || opt.threads > 64) {
                fprintf(stderr, "usage: bench_tls --tls HOST:PORT [--plain HOST:PORT] [--pid N] "
                                "[--threads 2] [--duration 3] [--conns 2000] [--subs 500] "
                                "[--msgs 200] [--payload 64]\n");
                return 2;
        }
        ctx = tw_tls_client_ctx(NULL, true, err, sizeof(err)); /* insecure: a test cert */
        if (!ctx) {
                fprintf(stderr, "bench_tls: %s\n", err);
                return 1;
        }
        printf("# bench_tls");
        for (int i = 1; i < argc; i++)
                printf(" %s", argv[i]);
        printf("\n");
        bench_handshakes();
        bench_memory();
        bench_fanout();
        tw_tls_ctx_free(ctx);
        return 0;
}
