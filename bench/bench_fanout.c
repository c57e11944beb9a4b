/*
 * bench_fanout — fan-out throughput and end-to-end latency of a running tickwire.
 *
 * Opens --subs WebSocket subscribers (each subscribes to one of --topics topics, round
 * robin) and --publishers publishing connections, then runs phases on the same
 * connections:
 *
 *   max:  closed loop — publishers keep at most --window messages per subscriber in
 *         flight (published but not yet received), in bursts of --burst, so the server is
 *         never idle and no queue reaches --max-queue: the delivered rate is the most
 *         the server (and this client) can do.
 *   p%:   open loop at p % of the max delivered rate (--latency-at 50,90), publishing
 *         bursts of --lat-burst (default 1: a burst of b messages to S subscribers is
 *         b x S deliveries, and the last of them waits for all before it, so bursts
 *         measure the burst's drain time, not the server's latency) at the matching
 *         interval, each phase starting from drained queues; latency = receive time − the
 *         publisher's CLOCK_MONOTONIC timestamp carried in the 64-byte message data.
 *
 * Delivered msgs/s counts topic messages received by subscribers. Server CPU comes from
 * /proc/PID/stat (utime + stime) over each phase when --pid is given; messages per send
 * from tickwire's /metrics (tickwire_send_frames_total over tickwire_sends_total) at the
 * phase's ends, left empty for a server without them. Every subscriber
 * checks its seq: a jump is counted as a gap (conflation or loss).
 *
 * The client must cost less per message than the server, or it measures itself (the
 * epoll + read() version saturated its core while the server idled at 56-88 %). So each
 * of --threads threads owns one io_uring with a multishot recv per connection into large
 * incrementally consumed provided buffers (no syscall per connection or per read), and
 * frames are walked by their 2-byte headers in place: every message's seq is checked
 * (a fixed offset), one in --sample has its timestamp parsed for latency. Publishing is
 * a plain write() per burst from thread 0. Client frames use an all-zero mask key
 * (legal, and the payload stays readable).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "tickwire/ring.h"

#define HIST_US   200000 /* 1 µs buckets up to 200 ms; beyond goes to the last */
#define LEFT_MAX  512    /* a partial frame kept between reads */
#define MAXPHASES 8
#define TS_OFFSET 1000000000000000000ull

typedef _Atomic uint64_t ctr;
#define ADD(c, v)                                                                                  \
        atomic_store_explicit(&(c), atomic_load_explicit(&(c), memory_order_relaxed) + (v),        \
                              memory_order_relaxed)
#define GET(c) atomic_load_explicit(&(c), memory_order_relaxed)

struct conn {
        int fd;
        uint8_t hs_done; /* 101 seen */
        uint8_t pub;     /* a publishing connection */
        uint8_t subscribed;
        uint16_t tlen;     /* topic name length */
        uint32_t topic;    /* topic index */
        uint64_t last_seq; /* last message seq seen (subscribers) */
        uint16_t nleft;
        uint8_t left[LEFT_MAX];
};

struct thr {
        pthread_t th;
        int id;
        struct io_uring ring;
        struct io_uring_buf_ring *br; /* incrementally consumed receive buffers */
        uint8_t *bufs;
        uint32_t boff[64];   /* bytes of each buffer the kernel has handed out */
        uint16_t recycled;   /* buffers given back since the last advance */
        struct conn **rearm; /* multishot receives that ended (-ENOBUFS) */
        uint32_t nrearm;
        struct conn *c;
        uint32_t n;
        struct conn **pubs; /* thread 0 only */
        uint32_t npubs;
        uint64_t l_delivered, l_gaps; /* this thread's own, published once per pass */
        ctr delivered, gaps, acks, subscribed, errors;
        ctr *hist; /* [HIST_US + 1] µs buckets */
} __attribute__((aligned(64)));

static struct {
        const char *host;
        int port;
        uint32_t subs, topics, publishers, threads, burst, window, lat_burst, sample;
        double seconds;
        int pid;
        double at[MAXPHASES];
        int nat;
        const char *token;
        const char *source; /* local address to connect from */
} opt = {"127.0.0.1", 8080, 10000, 1, 1, 1, 32, 64, 1, 8, 5, 0, {50, 90}, 2, NULL, NULL};

static struct thr *T;
static _Atomic int running = 1;
static _Atomic double pub_rate;   /* publishes/s; 0 = closed loop (max), < 0 = paused */
static _Atomic uint32_t burst;    /* messages per publish burst in this phase */
static _Atomic uint64_t pub_sent; /* publish messages sent */

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
        perror(what);
        exit(1);
}

static void topic_name(uint32_t i, char *out, size_t cap)
{
        snprintf(out, cap, "bench.%u", i);
}

/* A masked client text frame with an all-zero key. */
static size_t client_frame(uint8_t *out, uint8_t op, const void *p, size_t n)
{
        size_t h;

        out[0] = 0x80 | op;
        if (n < 126) {
                out[1] = 0x80 | (uint8_t)n;
                h = 2;
        } else {
                out[1] = 0x80 | 126;
                out[2] = (uint8_t)(n >> 8);
                out[3] = (uint8_t)n;
                h = 4;
        }
        memset(out + h, 0, 4);
        memcpy(out + h + 4, p, n);
        return h + 4 + n;
}

static void write_all(int fd, const void *p, size_t n)
{
        const uint8_t *b = p;

        while (n) {
                ssize_t r = write(fd, b, n);

                if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
                        struct timespec ts = {0, 100000};
                        nanosleep(&ts, NULL);
                        continue;
                }
                if (r <= 0)
                        die("write");
                b += r;
                n -= (size_t)r;
        }
}

static int dial(void)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
        int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

        if (fd < 0)
                die("socket");
        inet_pton(AF_INET, opt.host, &sa.sin_addr);
        if (opt.source) {
                /* Another loopback address has its own ports: a load generator on the same
                 * box may hold all of 127.0.0.1's. Bound now, port and all: a port left
                 * to connect() is skipped when any address has it bound. */
                struct sockaddr_in src = {.sin_family = AF_INET};

                inet_pton(AF_INET, opt.source, &src.sin_addr);
                if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0)
                        die("bind --source");
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                die("connect");
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return fd;
}

/* Connects and sends the upgrade; a subscriber's subscribe follows its 101 (on_bytes).
 * The connection's thread arms its receive once it starts. */
static void open_conn(struct conn *c, bool pub, uint32_t topic)
{
        char req[512], tn[32];
        int n;

        memset(c, 0, sizeof(*c));
        c->fd = dial();
        c->pub = pub;
        c->topic = topic;
        topic_name(topic, tn, sizeof(tn));
        c->tlen = (uint16_t)strlen(tn);
        n = snprintf(req, sizeof(req),
                     "GET /ws%s%s HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\nConnection: "
                     "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     opt.token ? "?token=" : "", opt.token ? opt.token : "");
        write_all(c->fd, req, (size_t)n);
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
}

static uint64_t parse_u64(const uint8_t *p, const uint8_t *end, const uint8_t **out)
{
        uint64_t v = 0;

        while (p < end && *p >= '0' && *p <= '9')
                v = v * 10 + (uint64_t)(*p++ - '0');
        *out = p;
        return v;
}

static void on_message(struct thr *t, struct conn *c, const uint8_t *p, size_t n, uint64_t now)
{
        /* {"type":"message","topic":"T","seq":S,"data":{"t":NS,"p":"..."}} */
        static const size_t pre = sizeof("{\"type\":\"message\",\"topic\":\"") - 1;
        const uint8_t *end = p + n, *q;
        uint64_t seq, ts;

        if (n < 12 || p[9] != 'm') {
                if (n > 12 && p[9] == 's' && p[10] == 'u')
                        ADD(t->subscribed, 1), c->subscribed = 1;
                else if (n > 12 && p[9] == 'p' && p[10] == 'u')
                        ADD(t->acks, 1);
                else if (n > 12 && p[9] == 'e')
                        ADD(t->errors, 1);
                return;
        }
        /* Every message is checked for order (seq sits at a fixed offset per topic); only
         * one in --sample pays for the timestamp, which keeps the client's cost per
         * message well under the server's. */
        q = p + pre + c->tlen + sizeof("\",\"seq\":") - 1;
        if (q >= end)
                return;
        seq = parse_u64(q, end, &q);
        if (c->last_seq && seq != c->last_seq + 1)
                t->l_gaps++;
        c->last_seq = seq;
        t->l_delivered++;
        if (seq % opt.sample)
                return;
        q += sizeof(",\"data\":{\"t\":") - 1;
        if (q >= end)
                return;
        ts = parse_u64(q, end, &q) - TS_OFFSET;
        if (now > ts) {
                uint64_t us = (now - ts) / 1000;

                ADD(t->hist[us < HIST_US ? us : HIST_US], 1);
        }
}

/* Consumes whole frames from p[0..n) by walking their headers; returns bytes used. */
static size_t frames(struct thr *t, struct conn *c, const uint8_t *p, size_t n, uint64_t now)
{
        size_t used = 0;

        for (;;) {
                size_t len, h = 2;
                uint8_t op;

                if (n - used < 2)
                        break;
                op = p[used] & 0x0f;
                len = p[used + 1] & 0x7f;
                if (len == 126) {
                        if (n - used < 4)
                                break;
                        len = (size_t)p[used + 2] << 8 | p[used + 3];
                        h = 4;
                } else if (len == 127) {
                        if (n - used < 10)
                                break;
                        len = 0;
                        for (int i = 0; i < 8; i++)
                                len = len << 8 | p[used + 2 + i];
                        h = 10;
                }
                if (n - used < h + len)
                        break;
                if (op == 1)
                        on_message(t, c, p + used + h, len, now);
                else if (op == 9) { /* answer Pings so the heartbeat keeps us */
                        uint8_t fr[160];
                        write_all(c->fd, fr,
                                  client_frame(fr, 10, p + used + h, len > 125 ? 125 : len));
                } else if (op == 8) {
                        fprintf(stderr, "bench_fanout: server closed a connection\n");
                        ADD(t->errors, 1);
                }
                used += h + len;
        }
        return used;
}

/* A subscriber's subscribe, sent once its 101 is in: RFC 6455 4.1 has a client send no
 * frame before the handshake completes (uWebSockets drops bytes that arrive in the same
 * read as the upgrade request, so a subscribe pipelined behind it was lost there). */
static void send_subscribe(struct conn *c)
{
        char msg[256], tn[32];
        uint8_t fr[300];
        int n;

        topic_name(c->topic, tn, sizeof(tn));
        n = snprintf(msg, sizeof(msg), "{\"type\":\"subscribe\",\"topic\":\"%s\"}", tn);
        write_all(c->fd, fr, client_frame(fr, 1, msg, (size_t)n));
}

/* Bytes received on c, straight out of the kernel's buffer: only a frame cut by the end of
 * a receive is copied (into c->left) to be completed by the next one. */
static void on_bytes(struct thr *t, struct conn *c, const uint8_t *p, size_t n, uint64_t now)
{
        size_t used;

        if (!c->hs_done) {
                size_t have = c->nleft, take = n < LEFT_MAX - have ? n : LEFT_MAX - have;
                uint8_t *e;

                memcpy(c->left + have, p, take);
                have += take;
                e = memmem(c->left, have, "\r\n\r\n", 4);
                if (!e) {
                        if (take < n)
                                die("handshake reply too long");
                        c->nleft = (uint16_t)have;
                        return;
                }
                if (memcmp(c->left, "HTTP/1.1 101", 12) != 0) {
                        fprintf(stderr, "bench_fanout: upgrade refused: %.40s\n", c->left);
                        exit(1);
                }
                c->hs_done = 1;
                if (!c->pub)
                        send_subscribe(c);
                used = (size_t)(e + 4 - c->left) - c->nleft; /* of p */
                c->nleft = 0;
                p += used;
                n -= used;
        }
        if (c->nleft) {
                size_t old = c->nleft, take = n < LEFT_MAX - old ? n : LEFT_MAX - old;

                memcpy(c->left + old, p, take);
                used = frames(t, c, c->left, old + take, now);
                if (used == 0) { /* still incomplete: all of p went into left */
                        if (take < n)
                                die("frame larger than the carry-over buffer");
                        c->nleft = (uint16_t)(old + take);
                        return;
                }
                /* left held one partial frame: what completed it came from p. */
                p += used - old;
                n -= used - old;
                c->nleft = 0;
        }
        used = frames(t, c, p, n, now);
        if (n - used > LEFT_MAX)
                die("frame larger than the carry-over buffer");
        memcpy(c->left, p + used, n - used);
        c->nleft = (uint16_t)(n - used);
}

/* ---- the receive side: one io_uring per thread ----
 *
 * Every connection has a multishot recv on a ring of large provided buffers consumed
 * incrementally (IOU_PBUF_RING_INC, Linux 6.12): many small receives share one buffer,
 * so 10k connections need neither 10k buffers nor a syscall each. Frames are parsed in
 * place. A receive that finds the buffers exhausted (-ENOBUFS) is re-armed once buffers
 * are back. */

#define RX_BUFS  64
#define RX_BUFSZ (1u << 20)
#ifndef IOU_PBUF_RING_INC
#define IOU_PBUF_RING_INC 2
#endif
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4)
#endif

static void rx_setup(struct thr *t)
{
        struct io_uring_buf_reg reg;
        int ret = tw_ring_init(&t->ring, 4096, 0);

        if (ret < 0) {
                errno = -ret;
                die("io_uring setup");
        }
        t->br = mmap(NULL, RX_BUFS * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
                     MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
        t->bufs = mmap(NULL, (size_t)RX_BUFS * RX_BUFSZ, PROT_READ | PROT_WRITE,
                       MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
        if (t->br == MAP_FAILED || t->bufs == MAP_FAILED)
                die("mmap");
        memset(&reg, 0, sizeof(reg));
        reg.ring_addr = (uint64_t)(uintptr_t)t->br;
        reg.ring_entries = RX_BUFS;
        reg.bgid = 0;
        reg.pad = IOU_PBUF_RING_INC; /* the flags field in newer headers */
        ret = io_uring_register_buf_ring(&t->ring, &reg, 0);
        if (ret < 0) {
                errno = -ret;
                die("register incremental buffer ring (needs Linux 6.12)");
        }
        io_uring_buf_ring_init(t->br);
        for (uint16_t i = 0; i < RX_BUFS; i++)
                io_uring_buf_ring_add(t->br, t->bufs + (size_t)i * RX_BUFSZ, RX_BUFSZ, i,
                                      io_uring_buf_ring_mask(RX_BUFS), i);
        io_uring_buf_ring_advance(t->br, RX_BUFS);
}

static void arm_recv(struct thr *t, struct conn *c)
{
        struct io_uring_sqe *sqe = tw_ring_sqe(&t->ring);

        io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = 0;
        io_uring_sqe_set_data(sqe, c);
}

static void on_cqe(struct thr *t, struct io_uring_cqe *cqe, uint64_t now)
{
        struct conn *c = io_uring_cqe_get_data(cqe);
        bool more = cqe->flags & IORING_CQE_F_MORE;

        if (cqe->flags & IORING_CQE_F_BUFFER) {
                uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
                uint8_t *p = t->bufs + (size_t)bid * RX_BUFSZ + t->boff[bid];

                if (cqe->res > 0) {
                        t->boff[bid] += (uint32_t)cqe->res;
                        on_bytes(t, c, p, (size_t)cqe->res, now);
                }
                if (!(cqe->flags & IORING_CQE_F_BUF_MORE)) { /* the kernel is done with it */
                        t->boff[bid] = 0;
                        io_uring_buf_ring_add(t->br, t->bufs + (size_t)bid * RX_BUFSZ, RX_BUFSZ,
                                              bid, io_uring_buf_ring_mask(RX_BUFS), t->recycled++);
                }
        }
        if (more)
                return;
        if (cqe->res == -ENOBUFS || cqe->res > 0) {
                t->rearm[t->nrearm++] = c;
                return;
        }
        fprintf(stderr, "bench_fanout: connection lost (%s)\n",
                cqe->res ? strerror(-cqe->res) : "EOF");
        ADD(t->errors, 1);
}

static uint64_t sum(size_t off)
{
        uint64_t s = 0;

        for (uint32_t i = 0; i < opt.threads; i++)
                s += GET(*(ctr *)((char *)&T[i] + off));
        return s;
}
#define SUM(f) sum(offsetof(struct thr, f))

/* Subscribers of the topic a publish targets: the same for every topic (round robin). */
static double fanout(void)
{
        return (double)opt.subs / opt.topics;
}

/* Thread 0: publishes. Closed loop (rate 0) or paced bursts. */
static void publish_some(struct thr *t, uint64_t *next_ns, uint32_t *rr)
{
        double rate = atomic_load(&pub_rate);
        uint64_t now = now_ns();
        uint32_t want = 0;

        if (rate < 0) {
                *next_ns = now;
                return;
        }
        if (rate == 0) {
                double outstanding = (double)GET(pub_sent) * fanout() - (double)SUM(delivered);

                if (outstanding / opt.subs < opt.window)
                        want = atomic_load(&burst);
        } else if (now >= *next_ns) {
                want = atomic_load(&burst);
                *next_ns += (uint64_t)(1e9 * want / rate);
                if (*next_ns < now - 100000000ull) /* far behind: do not binge */
                        *next_ns = now;
        }
        if (!want)
                return;
        /* One write per publisher connection, the burst spread over them, so a burst of b
         * reaches the server together and lands in one of its loop passes. */
        for (uint32_t k = 0; k < t->npubs && want; k++) {
                static uint8_t *buf;
                uint8_t *p;
                uint32_t m = (want + t->npubs - 1 - k) / (t->npubs - k);
                uint64_t ts = now_ns();

                if (!buf &&
                    !(buf = malloc((size_t)(opt.burst > opt.lat_burst ? opt.burst : opt.lat_burst) *
                                       200 +
                                   64)))
                        die("malloc");
                p = buf;
                for (uint32_t i = 0; i < m; i++) {
                        char msg[160], tn[32];
                        int n;

                        topic_name((*rr)++ % opt.topics, tn, sizeof(tn));
                        /* data is exactly 64 bytes: {"t":<19 digits>,"p":"<32 x>"}; the
                         * 10^18 offset keeps the digit count fixed (no leading zeros). */
                        n = snprintf(msg, sizeof(msg),
                                     "{\"type\":\"publish\",\"topic\":\"%s\",\"data\":{\"t\":%llu,"
                                     "\"p\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}",
                                     tn, (unsigned long long)(ts + TS_OFFSET));
                        p += client_frame(p, 1, msg, (size_t)n);
                }
                write_all(t->pubs[k]->fd, buf, (size_t)(p - buf));
                atomic_fetch_add(&pub_sent, m);
                want -= m;
        }
}

static void *thr_main(void *arg)
{
        struct thr *t = arg;
        uint64_t next_ns = now_ns();
        uint32_t rr = 0;

        rx_setup(t);
        t->rearm = calloc(t->n + t->npubs + 1, sizeof(*t->rearm));
        for (uint32_t i = 0; i < t->n; i++)
                arm_recv(t, &t->c[i]);
        for (uint32_t i = 0; i < t->npubs; i++)
                arm_recv(t, t->pubs[i]);
        while (atomic_load_explicit(&running, memory_order_relaxed)) {
                /* The publishing thread wakes often to keep the window full. */
                struct __kernel_timespec ts = {0, t->npubs ? 50000 : 10000000};
                struct io_uring_cqe *cqe;
                unsigned head, seen = 0;
                uint64_t now;

                if (t->npubs && atomic_load_explicit(&running, memory_order_relaxed) == 2)
                        publish_some(t, &next_ns, &rr);
                io_uring_submit_and_wait_timeout(&t->ring, &cqe, 1, &ts, NULL);
                now = now_ns();
                io_uring_for_each_cqe(&t->ring, head, cqe)
                {
                        on_cqe(t, cqe, now);
                        seen++;
                }
                io_uring_cq_advance(&t->ring, seen);
                if (t->recycled) {
                        io_uring_buf_ring_advance(t->br, t->recycled);
                        t->recycled = 0;
                }
                for (uint32_t i = 0; i < t->nrearm; i++)
                        arm_recv(t, t->rearm[i]);
                t->nrearm = 0;
                atomic_store_explicit(&t->delivered, t->l_delivered, memory_order_relaxed);
                atomic_store_explicit(&t->gaps, t->l_gaps, memory_order_relaxed);
        }
        return NULL;
}

struct sample {
        uint64_t ns, delivered, gaps, cpu_ticks, self_us;
        uint64_t sends, frames; /* the server's, from its /metrics; 0 without them */
        uint64_t *hist;
};

/* The value of the unlabelled counter name in a /metrics text, or false. */
static bool metric(const char *text, const char *name, uint64_t *v)
{
        char key[64];
        const char *p;

        snprintf(key, sizeof(key), "\n%s ", name);
        if (!(p = strstr(text, key)))
                return false;
        *v = strtoull(p + strlen(key), NULL, 10);
        return true;
}

/* The server's sends and frames sent so far, from tickwire's /metrics on the target, so
 * each phase can show messages per send. A server without them (another implementation)
 * is asked once: then the column stays empty. */
static void server_sends(struct sample *s)
{
        static bool absent;
        static char buf[1 << 20];
        const char req[] = "GET /metrics HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n";
        struct timeval tv = {1, 0};
        size_t n = 0;
        ssize_t r;
        int fd;

        if (absent)
                return;
        fd = dial();
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        write_all(fd, req, sizeof(req) - 1);
        while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
                n += (size_t)r;
        close(fd);
        buf[n] = 0;
        if (!metric(buf, "tickwire_sends_total", &s->sends) ||
            !metric(buf, "tickwire_send_frames_total", &s->frames)) {
                s->sends = s->frames = 0;
                absent = true;
        }
}

static uint64_t proc_cpu_ticks(void)
{
        char path[64], buf[1024], *p;
        unsigned long long ut = 0, st = 0;
        FILE *f;

        if (!opt.pid)
                return 0;
        snprintf(path, sizeof(path), "/proc/%d/stat", opt.pid);
        f = fopen(path, "r");
        if (!f || !fgets(buf, sizeof(buf), f))
                die("read /proc/PID/stat");
        fclose(f);
        p = strrchr(buf, ')');
        /* fields after the comm: state(3) ... utime(14) stime(15) */
        if (!p ||
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
                die("parse /proc/PID/stat");
        return ut + st;
}

/* This client's own CPU: it must stay well below the server's for the figures to be
 * the server's. */
static uint64_t self_cpu_us(void)
{
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
               (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void take(struct sample *s)
{
        s->ns = now_ns();
        s->delivered = SUM(delivered);
        s->gaps = SUM(gaps);
        s->cpu_ticks = proc_cpu_ticks();
        s->self_us = self_cpu_us();
        server_sends(s);
        if (!s->hist)
                s->hist = calloc(HIST_US + 1, sizeof(uint64_t));
        memset(s->hist, 0, (HIST_US + 1) * sizeof(uint64_t));
        for (uint32_t i = 0; i < opt.threads; i++)
                for (uint32_t b = 0; b <= HIST_US; b++)
                        s->hist[b] += GET(T[i].hist[b]);
}

static double pct(const uint64_t *h, uint64_t total, double q)
{
        uint64_t want = (uint64_t)(q * (double)total), acc = 0;

        for (uint32_t b = 0; b <= HIST_US; b++) {
                acc += h[b];
                if (acc > want)
                        return b;
        }
        return HIST_US;
}

/* Runs one phase; returns delivered msgs/s. */
static double phase(const char *name, double rate_pub, uint32_t nburst)
{
        struct sample a = {0}, b = {0};
        struct timespec ts = {1, 0};
        double secs, dps, cpu;
        uint64_t n = 0;
        char per_send[16] = "";

        /* Start from empty queues: pause until everything published has arrived. */
        atomic_store(&pub_rate, -1.0);
        for (int i = 0; i < 1000 && (double)SUM(delivered) < (double)GET(pub_sent) * fanout();
             i++) {
                struct timespec w = {0, 10000000};
                nanosleep(&w, NULL);
        }
        atomic_store(&burst, nburst);
        atomic_store(&pub_rate, rate_pub);
        nanosleep(&ts, NULL); /* warm up at this rate */
        take(&a);
        ts.tv_sec = (time_t)opt.seconds;
        ts.tv_nsec = (long)((opt.seconds - (double)ts.tv_sec) * 1e9);
        nanosleep(&ts, NULL);
        take(&b);
        secs = (double)(b.ns - a.ns) / 1e9;
        dps = (double)(b.delivered - a.delivered) / secs;
        cpu =
            opt.pid ? (double)(b.cpu_ticks - a.cpu_ticks) / (double)sysconf(_SC_CLK_TCK) / secs : 0;
        for (uint32_t i = 0; i <= HIST_US; i++) {
                b.hist[i] -= a.hist[i];
                n += b.hist[i];
        }
        if (b.sends > a.sends)
                snprintf(per_send, sizeof(per_send), "%.2f",
                         (double)(b.frames - a.frames) / (double)(b.sends - a.sends));
        printf("| %-8s | %6u | %6u | %5u | %12.0f | %12.0f | %7.0f %% | %7.0f %% | %12.0f | %9s | "
               "%6llu | %8.0f | %8.0f | %8.0f | %8.0f |\n",
               name, opt.subs, opt.topics, nburst, rate_pub * fanout(), dps, cpu * 100,
               (double)(b.self_us - a.self_us) / 1e4 / secs, cpu > 0 ? dps / cpu : 0, per_send,
               (unsigned long long)(b.gaps - a.gaps), pct(b.hist, n, 0.50), pct(b.hist, n, 0.90),
               pct(b.hist, n, 0.99), pct(b.hist, n, 0.999));
        fflush(stdout);
        free(a.hist);
        free(b.hist);
        return dps;
}

static void usage(void)
{
        fprintf(stderr,
                "usage: bench_fanout [--target 127.0.0.1:8080] [--subs 10000] [--topics 1]\n"
                "       [--publishers 1] [--threads 1] [--burst 32] [--window 64] [--seconds 5]\n"
                "       [--lat-burst 1] [--latency-at 50,90] [--pid SERVER_PID] [--token T]\n"
                "       [--sample 8] (one message in N, by seq, is timed) [--source 127.0.0.2]\n");
        exit(2);
}

int main(int argc, char **argv)
{
        struct rlimit rl;
        uint64_t t0;
        double max;

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

                if (!v)
                        usage();
                i++;
                if (!strcmp(a, "--target")) {
                        static char host[64];
                        const char *colon = strrchr(v, ':');

                        if (!colon || (size_t)(colon - v) >= sizeof(host))
                                usage();
                        memcpy(host, v, (size_t)(colon - v));
                        opt.host = host;
                        opt.port = atoi(colon + 1);
                } else if (!strcmp(a, "--subs")) {
                        opt.subs = (uint32_t)atoi(v);
                } else if (!strcmp(a, "--topics")) {
                        opt.topics = (uint32_t)atoi(v);
                } else if (!strcmp(a, "--publishers")) {
                        opt.publishers = (uint32_t)atoi(v);
                } else if (!strcmp(a, "--threads")) {
                        opt.threads = (uint32_t)atoi(v);
                } else if (!strcmp(a, "--burst")) {
                        opt.burst = (uint32_t)atoi(v);
                } else if (!strcmp(a, "--lat-burst")) {
                        opt.lat_burst = (uint32_t)atoi(v);
                } else if (!strcmp(a, "--window")) {
                        opt.window = (uint32_t)atoi(v);
                } else if (!strcmp(a, "--seconds")) {
                        opt.seconds = atof(v);
                } else if (!strcmp(a, "--pid")) {
                        opt.pid = atoi(v);
                } else if (!strcmp(a, "--sample")) {
                        opt.sample = (uint32_t)atoi(v);
                } else if (!strcmp(a, "--source")) {
                        opt.source = v;
                } else if (!strcmp(a, "--token")) {
                        opt.token = v;
                } else if (!strcmp(a, "--latency-at")) {
                        char *s = strdup(v), *tok, *save;

                        opt.nat = 0;
                        for (tok = strtok_r(s, ",", &save); tok && opt.nat < MAXPHASES;
                             tok = strtok_r(NULL, ",", &save))
                                opt.at[opt.nat++] = atof(tok);
                        free(s);
                } else {
                        usage();
                }
        }
        if (!opt.subs || !opt.topics || !opt.threads || !opt.publishers || !opt.burst ||
            !opt.sample || opt.topics > opt.subs)
                usage();
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
        }

        T = aligned_alloc(64, sizeof(*T) * opt.threads);
        memset(T, 0, sizeof(*T) * opt.threads);
        for (uint32_t i = 0; i < opt.threads; i++) {
                T[i].id = (int)i;
                T[i].hist = calloc(HIST_US + 1, sizeof(ctr));
                T[i].c = calloc(opt.subs / opt.threads + 1, sizeof(struct conn));
        }
        T[0].pubs = calloc(opt.publishers, sizeof(struct conn *));
        t0 = now_ns();
        /* Everything is connected before the threads start: each thread's ring is its
         * own (single issuer), so it arms its connections' receives itself. */
        for (uint32_t s = 0; s < opt.subs; s++) {
                struct thr *t = &T[s % opt.threads];

                open_conn(&t->c[t->n++], false, s % opt.topics);
        }
        for (uint32_t k = 0; k < opt.publishers; k++) {
                struct conn *c = calloc(1, sizeof(*c));

                open_conn(c, true, 0);
                T[0].pubs[T[0].npubs++] = c;
        }
        for (uint32_t i = 0; i < opt.threads; i++)
                pthread_create(&T[i].th, NULL, thr_main, &T[i]);
        while (SUM(subscribed) < opt.subs) {
                struct timespec ts = {0, 10000000};

                if (now_ns() - t0 > 60000000000ull) {
                        fprintf(stderr, "bench_fanout: only %llu of %u subscribed after 60 s\n",
                                (unsigned long long)SUM(subscribed), opt.subs);
                        return 1;
                }
                nanosleep(&ts, NULL);
        }
        fprintf(stderr, "bench_fanout: %u subscribers on %u topics ready in %.2f s\n", opt.subs,
                opt.topics, (double)(now_ns() - t0) / 1e9);

        printf("command:");
        for (int i = 0; i < argc; i++)
                printf(" %s", argv[i]);
        printf(
            "\n\n| phase    |   subs | topics | burst | target msg/s | delivered/s  | srv CPU   "
            "| cli CPU   "
            "| msg/s/core    | msgs/send |   gaps | p50 µs   | p90 µs   | p99 µs   | p99.9 µs |\n");
        printf(
            "| -------- | ------ | ------ | ----- | ------------ | ------------ | --------- | "
            "--------- "
            "| ------------ | --------- | ------ | -------- | -------- | -------- | -------- |\n");
        atomic_store(&running, 2);
        max = phase("max", 0, opt.burst);
        /* Latency phases publish smaller bursts: their percentages are of the max at
         * that burst size, or they would ask for more than the server can do. */
        if (opt.lat_burst != opt.burst && opt.nat)
                max = phase("max", 0, opt.lat_burst);
        for (int i = 0; i < opt.nat; i++) {
                char name[16];

                snprintf(name, sizeof(name), "%.0f%%", opt.at[i]);
                phase(name, max * opt.at[i] / 100.0 / fanout(), opt.lat_burst);
        }
        atomic_store(&running, 0);
        for (uint32_t i = 0; i < opt.threads; i++)
                pthread_join(T[i].th, NULL);
        if (SUM(errors))
                fprintf(stderr,
                        "bench_fanout: %llu errors (closes, lost connections, error replies)\n",
                        (unsigned long long)SUM(errors));
        return 0;
}
