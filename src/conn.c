/*
 * A connection's bytes, from the first request line to the last Close frame.
 *
 * Input arrives in the worker's receive buffers. The common case costs no copy and no
 * allocation: a whole request head, or whole frames, parsed straight out of the receive
 * buffer. Only what is incomplete when the buffer ends is kept (struct tw_rx): the
 * partial HTTP head/body, or the frame reader's state plus the text message assembled so
 * far. Output is a queue of frame references (struct tw_outq) sent by one sendmsg per
 * loop turn; it exists only while something is queued.
 */
#include "tickwire/conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tickwire/auth.h"
#include "tickwire/endpoints.h"
#include "tickwire/http.h"
#include "tickwire/metrics.h"
#include "tickwire/outq.h"
#include "tickwire/proto.h"
#include "tickwire/loop.h"
#include "tickwire/tls.h"
#include "tickwire/topic.h"

struct tw_rx {
        tw_ws_reader reader; /* valid when has_reader */
        bool has_reader;
        size_t len; /* bytes buffered: partial HTTP input, or a text message so far */
        size_t cap;
        uint8_t *buf;
};

/* ---- partial input ---- */

static struct tw_rx *rx_get(tw_conn *c)
{
        if (!c->rx)
                c->rx = calloc(1, sizeof(*c->rx));
        return c->rx;
}

static void rx_free(tw_conn *c)
{
        if (!c->rx)
                return;
        free(c->rx->buf);
        free(c->rx);
        c->rx = NULL;
}

static int rx_append(struct tw_rx *rx, const uint8_t *p, size_t n, size_t limit)
{
        if (n == 0) /* tw_conn_resume re-parses what is kept: nothing new (p may be NULL) */
                return 0;
        if (rx->len + n > limit)
                return -E2BIG;
        if (rx->len + n > rx->cap) {
                size_t cap = rx->cap ? rx->cap : 512;
                uint8_t *b;

                while (cap < rx->len + n)
                        cap *= 2;
                b = realloc(rx->buf, cap);
                if (!b)
                        return -ENOMEM;
                rx->buf = b;
                rx->cap = cap;
        }
        memcpy(rx->buf + rx->len, p, n);
        rx->len += n;
        return 0;
}

void tw_conn_release_buffers(tw_conn *c)
{
        rx_free(c);
        if (!tw_outq_sending(c->out))
                tw_outq_free(&c->out);
}

/* ---- output ---- */

void tw_conn_free_ext(tw_conn *c)
{
        if (!c->ext)
                return;
        tw_grant_free(c->ext->grant);
        free(c->ext);
        c->ext = NULL;
}

uint64_t tw_conn_queued(const tw_conn *c)
{
        return tw_outq_bytes(c->out);
}

/* ---- slow consumers: a session's queue over --max-queue (the rule is outq's) ----
 *
 * The bound is checked in one place, tw_conn_send(), on one count: the bytes on c's send
 * queue (plaintext frames, or for TLS the ciphertext they became). */

static int queue_raw(struct tw_worker *w, tw_conn *c, tw_frame *f);

/* f does not fit under the bound. Either way the subscriber may have lost messages: a
 * `since` replay running on it can no longer claim to be complete (TW_CF_LOSSY).
 *
 * Plain: conflate queues f, then keeps only the newest pending message per topic; if what
 * remains still does not fit (replies, not messages, pile up), fall through to
 * disconnect: drop everything not in flight and Close 1013.
 *
 * TLS: queued ciphertext cannot be conflated (dropping a record breaks the stream), so
 * conflate drops the newest topic message instead — the subscriber still sees the seq
 * jump and resumes with `since` — and anything else, or disconnect, closes with 1013. */
static int over_bound(struct tw_worker *w, tw_conn *c, tw_frame *f)
{
        const tw_config *cfg = tw_worker_cfg(w);
        tw_metrics *m = tw_worker_metrics(w);
        bool topic = f->topic_id != 0;
        int64_t dropped;

        c->flags |= TW_CF_LOSSY;
        if (c->flags & TW_CF_TLS) {
                tw_frame_unref(f);
                if (topic)
                        TW_INC(m->messages_dropped);
                if (topic && cfg->slow_consumer == TW_SLOW_CONFLATE) {
                        TW_INC(m->slow_consumer[TW_SLOW_CONFLATE]);
                        return 0;
                }
                TW_INC(m->slow_consumer[TW_SLOW_DISCONNECT]);
                tw_conn_close(w, c, TW_WS_CLOSE_TRY_AGAIN, "slow consumer", 13);
                return -ENOBUFS;
        }
        if (cfg->slow_consumer == TW_SLOW_CONFLATE) {
                if (queue_raw(w, c, f) < 0)
                        return -ENOMEM;
                dropped = tw_outq_conflate(c->out, false);
                if (dropped >= 0) {
                        TW_INC(m->slow_consumer[TW_SLOW_CONFLATE]);
                        TW_ADD(m->messages_dropped, (uint64_t)dropped);
                        if (tw_outq_unpinned_bytes(c->out) <= cfg->max_queue)
                                return 0;
                }
        } else {
                if (topic)
                        TW_INC(m->messages_dropped);
                tw_frame_unref(f);
        }
        dropped = tw_outq_conflate(c->out, true);
        TW_ADD(m->messages_dropped, (uint64_t)(dropped > 0 ? dropped : 0));
        TW_INC(m->slow_consumer[TW_SLOW_DISCONNECT]);
        tw_conn_close(w, c, TW_WS_CLOSE_TRY_AGAIN, "slow consumer", 13);
        return -ENOBUFS;
}

/* ---- TLS: the byte filter between the socket and the session ---- */

/* One call's binding of the filter's output to c. */
struct tls_out {
        tw_tls_io io;
        struct tw_worker *w;
        tw_conn *c;
};

/* wolfSSL's output: one frame per call (a record, or a flight of handshake records). */
static int tls_out(void *arg, const uint8_t *p, size_t n)
{
        struct tls_out *t = arg;
        tw_frame *f;

        if (t->c->state == TW_CONN_DEAD || t->c->state == TW_CONN_FREE)
                return -EPIPE;
        f = tw_frame_copy(p, n);
        if (!f) {
                TW_INC(tw_worker_metrics(t->w)->limit_hits);
                tw_worker_terminate(t->w, t->c, TW_WS_CLOSE_INTERNAL);
                return -ENOMEM;
        }
        return queue_raw(t->w, t->c, f);
}

static void tls_out_init(struct tls_out *t, struct tw_worker *w, tw_conn *c, const uint8_t *in,
                         size_t len)
{
        t->io = (tw_tls_io){.in = in, .in_len = len, .out = tls_out, .arg = t};
        t->w = w;
        t->c = c;
}

static int tls_start(struct tw_worker *w, tw_conn *c)
{
        tw_ext *e = tw_ext_get(c);

        if (!e || !(e->tls = tw_tls_server_new(tw_worker_tls_ctx(w))))
                return -ENOMEM;
        c->flags |= TW_CF_TLS;
        return 0;
}

/* Only when the slot is released: terminating may happen inside a wolfSSL callback, so
 * the object must outlive tw_worker_terminate(). */
static void tls_free(tw_conn *c)
{
        if (c->ext && c->ext->tls) {
                tw_tls_free(c->ext->tls);
                c->ext->tls = NULL;
                c->flags &= ~TW_CF_TLS;
        }
}

/* Input is still wanted in these states (LINGER: our last bytes are going out). */
static bool reading(const tw_conn *c)
{
        return c->state == TW_CONN_HTTP || c->state == TW_CONN_OPEN || c->state == TW_CONN_CLOSING;
}

static void tls_handshake_failed(struct tw_worker *w, tw_conn *c)
{
        TW_INC(tw_worker_metrics(w)->handshake_failures[TW_HS_TLS]);
        if (c->state == TW_CONN_DEAD)
                return;
        if (c->out)
                tw_conn_linger(w, c); /* wolfSSL queued an alert: let it out, then close */
        else
                tw_worker_terminate(w, c, 0);
}

/* Ciphertext received: every decrypted byte goes to tw_conn_on_data(), the plain
 * connection's code; the peer's close_notify is taken as TCP EOF. */
static void tls_recv(struct tw_worker *w, tw_conn *c, const uint8_t *buf, size_t len)
{
        uint8_t plain[16384]; /* the largest TLS record's plaintext */
        struct tls_out t;

        tls_out_init(&t, w, c, buf, len);
        while (reading(c)) {
                size_t n;

                switch (tw_tls_recv(c->ext->tls, &t.io, plain, sizeof(plain), &n)) {
                case TW_TLS_DATA:
                        if (n)
                                tw_conn_on_data(w, c, plain, n);
                        continue;
                case TW_TLS_WANT:
                        return;
                case TW_TLS_EOF:
                        tw_conn_on_eof(w, c);
                        return;
                case TW_TLS_FAILED:
                        tls_handshake_failed(w, c);
                        return;
                case TW_TLS_BROKEN:
                        tw_worker_terminate(w, c, TW_WS_CLOSE_ABNORMAL);
                        return;
                }
        }
}

/* Encrypts f now (each connection has its own keys, so fan-out encrypts per subscriber),
 * queues the ciphertext and drops f. */
static int tls_send(struct tw_worker *w, tw_conn *c, tw_frame *f)
{
        struct tls_out t;
        int n;

        tls_out_init(&t, w, c, NULL, 0);
        n = tw_tls_send(c->ext->tls, &t.io, f->data, f->len);
        tw_frame_unref(f);
        if (n == -ENOTCONN)
                return n; /* before the handshake: we only answer input */
        if (c->state == TW_CONN_DEAD)
                return -EPIPE;
        if (n < 0)
                tw_worker_terminate(w, c, TW_WS_CLOSE_INTERNAL);
        return n;
}

static void tls_close_notify(struct tw_worker *w, tw_conn *c)
{
        struct tls_out t;

        tls_out_init(&t, w, c, NULL, 0);
        tw_tls_close_notify(c->ext ? c->ext->tls : NULL, &t.io);
}

/* ---- output ---- */

/* Queues bytes exactly as they go on the wire: no TLS, no --max-queue bound. */
static int queue_raw(struct tw_worker *w, tw_conn *c, tw_frame *f)
{
        if (tw_outq_push(&c->out, f) < 0) {
                tw_frame_unref(f);
                TW_INC(tw_worker_metrics(w)->limit_hits);
                tw_worker_terminate(w, c, TW_WS_CLOSE_INTERNAL);
                return -ENOMEM;
        }
        tw_worker_mark_dirty(w, c);
        return 0;
}

int tw_conn_send(struct tw_worker *w, tw_conn *c, tw_frame *f)
{
        if (c->state == TW_CONN_DEAD || c->state == TW_CONN_FREE) {
                tw_frame_unref(f);
                return -EPIPE;
        }
        /* The bound applies to a live session only: once our Close is queued nothing more
         * is added but the Close itself, which always goes out behind everything else. */
        if (c->state == TW_CONN_OPEN && !(c->flags & TW_CF_CLOSE_SENT) &&
            tw_outq_bytes(c->out) + f->len > tw_worker_cfg(w)->max_queue)
                return over_bound(w, c, f);
        if (c->flags & TW_CF_TLS) /* encrypted per connection; the ciphertext goes raw */
                return tls_send(w, c, f);
        return queue_raw(w, c, f);
}

static void send_error(struct tw_worker *w, tw_conn *c, const char *code, const char *msg)
{
        char buf[256];
        size_t n = tw_proto_error(buf, sizeof(buf), code, msg);

        if (n)
                tw_worker_send_text(w, c, buf, n);
}

/* ---- closing ----
 *
 * One path ends every graceful close, whoever starts it (a Close either way, a protocol
 * error, an HTTP error answer, a TLS alert): the connection goes to LINGER with its last
 * bytes queued behind everything queued before them, and
 *   1. the queue is sent to the end, however many sends that takes; the close timeout
 *      counts from the last send that made progress, so only a peer that stopped reading
 *      can cut it short;
 *   2. then our write side is shut down (FIN) and input is read and discarded until the
 *      peer's FIN, or the close timeout from the shutdown;
 *   3. then the descriptor is closed. Closing with unread input would make the kernel
 *      answer with RST, and a peer still writing (an oversized message, a pipelined
 *      body) would lose the Close or answer it had not read yet.
 */

static void arm_close_deadline(struct tw_worker *w, tw_conn *c)
{
        tw_worker_arm(w, c, tw_worker_close_deadline(w));
}

/* Step 2, once everything queued is out. */
static void linger_drained(struct tw_worker *w, tw_conn *c)
{
        if (c->flags & TW_CF_EOF) { /* the peer is done writing: nothing to wait for */
                tw_worker_terminate(w, c, c->close_code);
                return;
        }
        if (c->flags & TW_CF_SHUT)
                return;
        c->flags |= TW_CF_SHUT;
        tw_worker_shutdown(w, c);
        tw_worker_arm(w, c, tw_worker_now(w) + tw_worker_cfg(w)->close_timeout_ms);
}

void tw_conn_linger(struct tw_worker *w, tw_conn *c)
{
        if (c->state == TW_CONN_DEAD || c->state == TW_CONN_FREE || c->state == TW_CONN_LINGER)
                return;
        c->state = TW_CONN_LINGER;
        rx_free(c);
        if (c->flags & TW_CF_TLS)
                tls_close_notify(w, c);
        if (c->state != TW_CONN_LINGER)
                return; /* queueing close_notify failed and ended it */
        arm_close_deadline(w, c);
        if (!c->out)
                linger_drained(w, c);
}

void tw_conn_on_sent(struct tw_worker *w, tw_conn *c, size_t sent, uint64_t left)
{
        const tw_config *cfg = tw_worker_cfg(w);

        switch (c->state) {
        case TW_CONN_HTTP:
                /* A client reading a backlog of answers is making progress. */
                if (sent && (c->flags & TW_CF_SERVED))
                        tw_worker_arm(w, c, tw_worker_now(w) + cfg->handshake_timeout_ms);
                tw_conn_resume(w, c);
                break;
        case TW_CONN_OPEN:
                if ((c->flags & TW_CF_REPLAY) && left <= cfg->max_queue / 2)
                        tw_topic_replay_refill(w, c);
                break;
        case TW_CONN_CLOSING:
                if (sent)
                        arm_close_deadline(w, c);
                break;
        case TW_CONN_LINGER:
                if (c->flags & TW_CF_SHUT)
                        break;
                if (sent)
                        arm_close_deadline(w, c);
                if (!left)
                        linger_drained(w, c);
                break;
        default:
                break;
        }
}

/* Queues our Close behind everything already queued. Without memory for it the
 * connection cannot be closed cleanly: it is terminated. */
static void queue_close(struct tw_worker *w, tw_conn *c, uint16_t code, const char *reason,
                        size_t reason_len)
{
        uint8_t buf[TW_WS_MAX_HEADER + TW_WS_MAX_CONTROL];
        size_t n = tw_ws_close_build(buf, code, reason, reason_len, NULL);
        tw_frame *f = tw_frame_copy(buf, n);

        c->flags |= TW_CF_CLOSE_SENT;
        c->close_code = code ? code : TW_WS_CLOSE_NO_STATUS;
        if (!f) {
                TW_INC(tw_worker_metrics(w)->limit_hits);
                tw_worker_terminate(w, c, TW_WS_CLOSE_INTERNAL);
                return;
        }
        tw_conn_send(w, c, f);
}

void tw_conn_close(struct tw_worker *w, tw_conn *c, uint16_t code, const char *reason,
                   size_t reason_len)
{
        if (c->state != TW_CONN_OPEN)
                return;
        queue_close(w, c, code, reason, reason_len);
        if (c->state == TW_CONN_DEAD)
                return;
        c->state = TW_CONN_CLOSING;
        arm_close_deadline(w, c);
}

/* Fail the WebSocket connection (RFC 6455 7.1.7): Close with the code, then TCP close. */
static void fail(struct tw_worker *w, tw_conn *c, uint16_t code, const char *why)
{
        if (!(c->flags & TW_CF_CLOSE_SENT))
                queue_close(w, c, code, why, why ? strlen(why) : 0);
        c->close_code = code;
        tw_conn_linger(w, c);
}

static void on_close_frame(struct tw_worker *w, tw_conn *c, const uint8_t *p, size_t n)
{
        const uint8_t *reason;
        size_t reason_len;
        uint16_t code;
        int err = tw_ws_close_parse(p, n, &code, &reason, &reason_len);

        if (err) {
                fail(w, c, (uint16_t)err, NULL);
                return;
        }
        if (c->flags & TW_CF_CLOSE_SENT) {
                /* The reply to our Close (or Closes that crossed): the handshake is
                 * complete once ours is out too. */
                tw_conn_linger(w, c);
                return;
        }
        /* Echo the code (none when they sent none), then close TCP: the server side
         * closes first (RFC 6455 7.1.1). */
        queue_close(w, c, code == TW_WS_CLOSE_NO_STATUS ? 0 : code, NULL, 0);
        c->close_code = code;
        tw_conn_linger(w, c);
}

/* ---- WebSocket input ---- */

static void refresh(struct tw_worker *w, tw_conn *c, const tw_msg *m);

/* ---- --max-message-rate: GCRA (the "virtual scheduling" form of a token bucket) ----
 *
 * c->tat is the time the next message is due if the client sent at exactly the rate. A
 * message arriving up to one second's worth (the burst) ahead of its due time is fine;
 * each one, taken or refused, moves tat on by one interval, so a client that keeps
 * sending over the rate runs further ahead until, a second's worth past the burst, it is
 * closed with 1008. One 32-bit field in microseconds; kept within a minute of now by
 * rate_touch() so its wrapping difference stays meaningful. */

enum { RATE_OK, RATE_REFUSED, RATE_CLOSE };

static uint32_t now_us32(const struct tw_worker *w)
{
        return (uint32_t)(tw_worker_now(w) * 1000u);
}

static void rate_touch(struct tw_worker *w, tw_conn *c)
{
        uint32_t now = now_us32(w);

        if ((uint32_t)tw_worker_now(w) - c->last_seen >= 60000u || (int32_t)(c->tat - now) < 0)
                c->tat = now;
}

static int rate_take(struct tw_worker *w, tw_conn *c)
{
        uint32_t rate = tw_worker_cfg(w)->max_message_rate;
        uint32_t t, tau;
        int32_t ahead;

        if (!rate)
                return RATE_OK;
        t = 1000000u / rate ? 1000000u / rate : 1u;
        tau = 1000000u - t; /* a burst of `rate` messages */
        ahead = (int32_t)(c->tat - now_us32(w));
        c->tat += t;
        if (ahead <= (int32_t)tau)
                return RATE_OK;
        TW_INC(tw_worker_metrics(w)->rate_limited);
        return ahead > (int32_t)tau + 1000000 ? RATE_CLOSE : RATE_REFUSED;
}

/* Whether a complete message may be handled; answers or closes when not. */
static bool rate_allows(struct tw_worker *w, tw_conn *c, bool reply)
{
        switch (rate_take(w, c)) {
        case RATE_OK:
                return true;
        case RATE_REFUSED:
                if (reply)
                        send_error(w, c, "rate_limited", "over --max-message-rate: dropped");
                return false;
        default:
                fail(w, c, TW_WS_CLOSE_POLICY, "message rate");
                return false;
        }
}

static void on_text(struct tw_worker *w, tw_conn *c, const uint8_t *p, size_t n)
{
        tw_msg m;
        tw_proto_status st;
        char buf[256];
        size_t len;

        TW_INC(tw_worker_metrics(w)->messages_received);
        if (!rate_allows(w, c, true))
                return;
        st = tw_proto_parse((const char *)p, n, &m);
        if (st != TW_PROTO_OK) {
                send_error(w, c, tw_proto_status_code(st),
                           st == TW_PROTO_UNKNOWN_TYPE ? "unknown message type"
                           : st == TW_PROTO_BAD_TOPIC  ? "topic must be 1-128 of [A-Za-z0-9._:-]"
                                                       : "message is not a valid JSON object");
                return;
        }
        switch (m.type) {
        case TW_MSG_PING:
                len = tw_proto_pong(buf, sizeof(buf), m.time);
                if (len) {
                        tw_worker_send_text(w, c, buf, len);
                } else {
                        /* A huge "time" value: echo it all the same. */
                        size_t cap = m.time.n + 32;
                        char *big = malloc(cap);

                        if (big && (len = tw_proto_pong(big, cap, m.time)))
                                tw_worker_send_text(w, c, big, len);
                        free(big);
                }
                break;
        case TW_MSG_REFRESH:
                refresh(w, c, &m);
                break;
        default:
                tw_topic_on_message(w, c, &m);
                break;
        }
}

static void on_data_event(struct tw_worker *w, tw_conn *c, const tw_ws_event *ev)
{
        struct tw_rx *rx;

        if (c->state != TW_CONN_OPEN)
                return; /* after our Close, data is discarded (RFC 6455 5.5.1) */
        if (ev->opcode == TW_WS_OP_BINARY) {
                if (ev->msg_start)
                        fail(w, c, TW_WS_CLOSE_UNSUPPORTED, "binary messages are not supported");
                return;
        }
        if (ev->msg_start && ev->msg_end && !(c->rx && c->rx->len)) {
                on_text(w, c, ev->data, ev->len);
                return;
        }
        rx = rx_get(c);
        if (!rx || rx_append(rx, ev->data, ev->len, tw_worker_cfg(w)->max_message) < 0) {
                fail(w, c, rx ? TW_WS_CLOSE_TOO_BIG : TW_WS_CLOSE_INTERNAL, NULL);
                return;
        }
        if (ev->msg_end) {
                on_text(w, c, rx->buf, rx->len);
                if (c->rx) /* on_text may have ended the connection and freed rx */
                        c->rx->len = 0;
        }
}

static void on_control_event(struct tw_worker *w, tw_conn *c, const tw_ws_event *ev)
{
        tw_frame *f;

        switch (ev->opcode) {
        case TW_WS_OP_PING:
                /* Each Ping costs us a Pong: it counts against the rate like a message. */
                if ((c->flags & TW_CF_CLOSE_SENT) || !rate_allows(w, c, false))
                        return;
                f = tw_frame_ws(TW_WS_OP_PONG, ev->data, ev->len);
                if (f)
                        tw_conn_send(w, c, f);
                else
                        tw_worker_terminate(w, c, TW_WS_CLOSE_INTERNAL);
                break;
        case TW_WS_OP_CLOSE:
                on_close_frame(w, c, ev->data, ev->len);
                break;
        default: /* Pong: last_seen is all it means */
                TW_INC(tw_worker_metrics(w)->pongs_received);
                break;
        }
}

static void ws_input(struct tw_worker *w, tw_conn *c, uint8_t *buf, size_t len)
{
        tw_ws_reader *r;
        tw_ws_event ev;

        if (tw_worker_cfg(w)->max_message_rate)
                rate_touch(w, c); /* before last_seen moves: it tells how long we were idle */
        /* Any inbound byte is a sign of life: a store, not a timer operation. */
        c->last_seen = (uint32_t)tw_worker_now(w);
        c->flags &= ~TW_CF_PING;

        if (c->rx && c->rx->has_reader) {
                r = &c->rx->reader;
        } else {
                r = tw_worker_scratch(w);
                tw_ws_reader_init(r, true, tw_worker_cfg(w)->max_message);
        }
        while (len > 0 && (c->state == TW_CONN_OPEN || c->state == TW_CONN_CLOSING)) {
                size_t used = tw_ws_read(r, buf, len, &ev);

                buf += used;
                len -= used;
                switch (ev.kind) {
                case TW_WS_EV_DATA:
                        on_data_event(w, c, &ev);
                        break;
                case TW_WS_EV_CONTROL:
                        on_control_event(w, c, &ev);
                        break;
                case TW_WS_EV_ERROR:
                        fail(w, c, ev.close_code, NULL);
                        return;
                case TW_WS_EV_NONE:
                        break;
                }
        }
        if (c->state != TW_CONN_OPEN && c->state != TW_CONN_CLOSING)
                return;
        if (r == tw_worker_scratch(w) && !tw_ws_reader_idle(r)) {
                struct tw_rx *rx = rx_get(c);

                if (!rx) {
                        tw_worker_terminate(w, c, TW_WS_CLOSE_INTERNAL);
                        return;
                }
                rx->reader = *r;
                rx->has_reader = true;
        } else if (c->rx && tw_ws_reader_idle(r) && c->rx->len == 0) {
                rx_free(c); /* between messages: own nothing */
        }
}

/* ---- tokens (--jwt-secret) ---- */

/* Worker time when a token with claim exp (Unix seconds; 0 = none) stops being valid. */
static uint64_t token_deadline(const struct tw_worker *w, int64_t exp)
{
        struct timespec ts;
        int64_t left_ms;

        if (!exp)
                return 0;
        clock_gettime(CLOCK_REALTIME, &ts);
        left_ms =
            (exp + TW_TOKEN_LEEWAY_S) * 1000 - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        return tw_worker_now(w) + (uint64_t)(left_ms > 0 ? left_ms : 0) + 1;
}

/* Gives the session its grant and arms the token's deadline when it comes before the
 * heartbeat's. */
static void keep_grant(struct tw_worker *w, tw_conn *c, tw_grant *g)
{
        tw_ext *e = c->ext;

        tw_grant_free(e->grant);
        e->grant = g;
        e->token_due_ms = token_deadline(w, tw_grant_exp(g));
        c->flags &= ~TW_CF_TOKEN_EXPIRED;
        if (e->token_due_ms && c->timer.slot &&
            e->token_due_ms < c->timer.expires * tw_worker_cfg(w)->tick_ms)
                tw_worker_arm(w, c, e->token_due_ms);
}

uint64_t tw_conn_token_due(struct tw_worker *w, tw_conn *c)
{
        tw_ext *e = c->ext;

        if (!e || !e->token_due_ms || tw_worker_now(w) < e->token_due_ms)
                return e ? e->token_due_ms : 0;
        if (c->flags & TW_CF_TOKEN_EXPIRED) {
                e->token_due_ms = 0;
                tw_conn_close(w, c, TW_CLOSE_TOKEN_EXPIRED, "token expired", 13);
                return 0;
        }
        c->flags |= TW_CF_TOKEN_EXPIRED;
        e->token_due_ms = tw_worker_now(w) + tw_worker_cfg(w)->token_grace_ms;
        send_error(w, c, "token_expired", "send {\"type\":\"refresh\",\"token\":...} to go on");
        return e->token_due_ms;
}

/* {"type":"refresh","token":T}: new credentials for the open session. The token must
 * belong to the same subject as the one it replaces, and its permissions apply at once:
 * subscriptions it no longer allows end. */
static void refresh(struct tw_worker *w, tw_conn *c, const tw_msg *m)
{
        const tw_config *cfg = tw_worker_cfg(w);
        tw_grant *g = NULL;
        tw_auth_status st;
        char buf[96];
        tw_span a, b;

        if (!cfg->jwt_secret) {
                send_error(w, c, "bad_token", "this server takes no tokens");
                return;
        }
        st = tw_endpoints_verify_token(cfg, m->token, &g);
        if (st != TW_AUTH_OK) {
                send_error(w, c, "bad_token", tw_auth_status_str(st));
                return;
        }
        a = tw_grant_sub(c->ext ? c->ext->grant : NULL);
        b = tw_grant_sub(g);
        if (a.n != b.n || memcmp(a.p, b.p, a.n) != 0) {
                tw_grant_free(g);
                send_error(w, c, "bad_token", "the token is for another subject");
                return;
        }
        keep_grant(w, c, g);
        snprintf(buf, sizeof(buf), "{\"type\":\"refreshed\",\"exp\":%lld}",
                 (long long)tw_grant_exp(g));
        tw_worker_send_text(w, c, buf, strlen(buf));
        tw_topic_recheck(w, c);
}

/* ---- HTTP ---- */

enum { HTTP_CONTINUE, HTTP_UPGRADED, HTTP_DONE };

/* The session a 101 allows: the answer, then OPEN with its grant and permissions. */
static int open_session(struct tw_worker *w, tw_conn *c, tw_reply *r)
{
        char resp[256];
        size_t n =
            tw_http_build_101(resp, sizeof(resp), r->accept, r->protocol ? TW_SUBPROTOCOL : NULL);
        tw_frame *f = n ? tw_frame_copy(resp, n) : NULL;

        if (!f || (r->grant && !tw_ext_get(c))) {
                if (f)
                        tw_frame_unref(f);
                tw_worker_terminate(w, c, 0);
                return HTTP_DONE;
        }
        if (tw_conn_send(w, c, f) < 0)
                return HTTP_DONE;
        if (r->publisher)
                c->flags |= TW_CF_PUBLISHER;
        /* OPEN: the session counts as a WebSocket close at the end; heartbeat armed. */
        c->state = TW_CONN_OPEN;
        c->flags |= TW_CF_SESSION;
        c->last_seen = (uint32_t)tw_worker_now(w);
        tw_worker_arm(w, c, tw_worker_now(w) + tw_worker_cfg(w)->ping_interval_ms);
        c->tat = now_us32(w); /* the rate counts from the session's start */
        if (r->grant) {
                keep_grant(w, c, r->grant);
                r->grant = NULL; /* the session's now */
        }
        return HTTP_UPGRADED;
}

/* Writes what the endpoints module decided, and goes on as it says. */
static int send_reply(struct tw_worker *w, tw_conn *c, tw_reply *r)
{
        size_t cap = 256 + r->headers_len + r->blen;
        tw_frame *f;
        int ret = HTTP_DONE;

        if (r->status == 101) {
                ret = open_session(w, c, r);
                tw_reply_done(r);
                return ret;
        }
        if (r->status == 0) { /* answered later: tw_conn_answer */
                c->flags |= TW_CF_WAIT | (r->close ? TW_CF_WAIT_CLOSE : 0);
                tw_reply_done(r);
                tw_worker_arm(w, c, tw_worker_now(w) + tw_worker_cfg(w)->handshake_timeout_ms);
                return HTTP_CONTINUE;
        }
        f = tw_frame_alloc(cap);
        if (!f) {
                tw_reply_done(r);
                tw_worker_terminate(w, c, 0);
                return HTTP_DONE;
        }
        f->len = (uint32_t)tw_http_build_response((char *)f->data, cap, r->status, r->ctype,
                                                  r->headers, r->body, r->blen, r->close);
        tw_reply_done(r);
        if (tw_conn_send(w, c, f) < 0)
                return HTTP_DONE;
        c->flags |= TW_CF_SERVED;
        if (r->close) {
                tw_conn_linger(w, c);
        } else {
                /* Keep-alive: the next request must be complete within the handshake
                 * timeout of this answer (partial input does not extend it). */
                tw_worker_arm(w, c, tw_worker_now(w) + tw_worker_cfg(w)->handshake_timeout_ms);
                ret = HTTP_CONTINUE;
        }
        return ret;
}

/* An answer the connection itself decides (a request it cannot parse or keep). */
static void reject(struct tw_worker *w, tw_conn *c, int status, enum tw_hs_fail why)
{
        tw_reply r = {.status = status, .ctype = "text/plain", .close = true};

        TW_INC(tw_worker_metrics(w)->handshake_failures[why]);
        r.body = tw_http_reason(status);
        r.blen = strlen(r.body);
        send_reply(w, c, &r);
}

/* The session is open: frames pipelined behind the request head, data[0..n), are its
 * first input. They may sit in our own partial-input buffer, which goes now. */
static void upgraded_input(struct tw_worker *w, tw_conn *c, uint8_t *data, size_t n)
{
        if (n && c->rx && data >= c->rx->buf && data < c->rx->buf + c->rx->cap) {
                uint8_t *tmp = malloc(n);

                if (!tmp) {
                        tw_worker_terminate(w, c, TW_WS_CLOSE_INTERNAL);
                        return;
                }
                memcpy(tmp, data, n);
                rx_free(c);
                ws_input(w, c, tmp, n);
                free(tmp);
        } else {
                rx_free(c);
                if (n)
                        ws_input(w, c, data, n);
        }
}

/* An incomplete request, data[0..n): keep the bytes (moved to the front of our own
 * buffer when they are there already). */
static void http_keep(struct tw_worker *w, tw_conn *c, uint8_t *data, size_t n, size_t limit)
{
        if (c->rx && c->rx->len && data != c->rx->buf) {
                memmove(c->rx->buf, data, n);
                c->rx->len = n;
        } else if (!(c->rx && c->rx->len)) {
                struct tw_rx *rx = rx_get(c);

                if (!rx || rx_append(rx, data, n, limit) < 0) {
                        TW_INC(tw_worker_metrics(w)->limit_hits);
                        tw_worker_terminate(w, c, 0);
                        return;
                }
        }
        /* Slowloris: the handshake deadline set at accept is not moved by partial input. */
}

static void http_input(struct tw_worker *w, tw_conn *c, uint8_t *buf, size_t len)
{
        const size_t limit = TW_HTTP_MAX_HEAD + tw_worker_cfg(w)->max_message;
        uint8_t *data = buf;
        size_t n = len;

        c->last_seen = (uint32_t)tw_worker_now(w);
        if (c->rx && c->rx->len) {
                if (rx_append(c->rx, buf, len, limit) < 0) {
                        reject(w, c, 431, TW_HS_TOO_LARGE);
                        return;
                }
                data = c->rx->buf;
                n = c->rx->len;
        }
        while (n > 0 && c->state == TW_CONN_HTTP) {
                tw_http_request req;
                tw_reply reply;

                /* A client that pipelines requests and reads no answers: stop answering
                 * until the queue drains (tw_conn_resume); what it sends meanwhile is
                 * kept up to the request limit, then it is dropped. */
                if (tw_conn_queued(c) > tw_worker_cfg(w)->max_queue || (c->flags & TW_CF_WAIT))
                        goto keep;
                int head = tw_http_parse_request((const char *)data, n, &req);
                int64_t blen = 0;
                int r;

                if (head == TW_HTTP_NEED_MORE && n < TW_HTTP_MAX_HEAD)
                        goto keep;
                if (head == TW_HTTP_INVALID) {
                        reject(w, c, 400, TW_HS_BAD_REQUEST);
                        return;
                }
                if (head < 0 || head > TW_HTTP_MAX_HEAD) {
                        reject(w, c, 431, TW_HS_TOO_LARGE);
                        return;
                }
                blen = tw_http_content_length(&req);
                if (blen < 0) {
                        reject(w, c, 400, TW_HS_BAD_REQUEST);
                        return;
                }
                if ((uint64_t)blen > tw_worker_cfg(w)->max_message) {
                        reject(w, c, 413, TW_HS_TOO_LARGE);
                        return;
                }
                memset(&reply, 0, sizeof(reply));
                if (n < (size_t)head + (size_t)blen) {
                        /* Refused from the head alone, before a body is waited for: an
                         * unauthorised client must not make us hold --max-message bytes. */
                        if (!tw_endpoints_early(w, &req, &reply))
                                goto keep;
                        send_reply(w, c, &reply);
                        return;
                }
                tw_endpoints_answer(w, c, &req, (const char *)data + head, (size_t)blen,
                                    c->flags & TW_CF_REJECT, &reply);
                r = send_reply(w, c, &reply);
                data += (size_t)head + (size_t)blen;
                n -= (size_t)head + (size_t)blen;
                if (r == HTTP_UPGRADED) {
                        upgraded_input(w, c, data, n);
                        return;
                }
        }
        if (c->rx)
                c->rx->len = 0;
        if (c->rx && c->state == TW_CONN_HTTP)
                rx_free(c);
        return;
keep:
        http_keep(w, c, data, n, limit);
}

void tw_conn_on_data(struct tw_worker *w, tw_conn *c, uint8_t *buf, size_t len)
{
        switch (c->state) {
        case TW_CONN_HTTP:
                http_input(w, c, buf, len);
                break;
        case TW_CONN_OPEN:
        case TW_CONN_CLOSING:
                ws_input(w, c, buf, len);
                break;
        default: /* LINGER: our last bytes are going out; input is moot */
                break;
        }
}

void tw_conn_answer(struct tw_worker *w, tw_conn *c, int status, tw_span origin, const char *body,
                    size_t len)
{
        tw_reply r = {.status = status,
                      .ctype = "application/json",
                      .body = body,
                      .blen = len,
                      .close = c->flags & TW_CF_WAIT_CLOSE};

        if (c->state != TW_CONN_HTTP || !(c->flags & TW_CF_WAIT))
                return;
        c->flags &= ~(TW_CF_WAIT | TW_CF_WAIT_CLOSE);
        tw_endpoints_cors(origin, &r);
        if (send_reply(w, c, &r) == HTTP_CONTINUE)
                tw_conn_resume(w, c);
}

void tw_conn_resume(struct tw_worker *w, tw_conn *c)
{
        if (c->state == TW_CONN_HTTP && c->rx && c->rx->len &&
            tw_conn_queued(c) <= tw_worker_cfg(w)->max_queue)
                http_input(w, c, NULL, 0);
}

void tw_conn_on_eof(struct tw_worker *w, tw_conn *c)
{
        switch (c->state) {
        case TW_CONN_HTTP:
                if (c->out) {
                        /* Half-closed after its request: the answer still goes out. */
                        tw_conn_linger(w, c);
                        break;
                }
                if (!(c->flags & TW_CF_SERVED))
                        TW_INC(tw_worker_metrics(w)->handshake_failures[TW_HS_CLOSED]);
                tw_worker_terminate(w, c, 0);
                break;
        case TW_CONN_OPEN:
                /* TCP closed without a Close frame: abnormal closure. */
                tw_worker_terminate(w, c, TW_WS_CLOSE_ABNORMAL);
                break;
        case TW_CONN_CLOSING:
                /* FIN instead of their Close: no reply is coming, but what we queued
                 * (our Close last) may still be read. */
                tw_conn_linger(w, c);
                break;
        case TW_CONN_LINGER:
                if ((c->flags & TW_CF_SHUT) || !c->out)
                        tw_worker_terminate(w, c, c->close_code);
                break; /* else: terminated once our last bytes are out */
        default:
                break;
        }
}

/* ---- the loop's events ---- */

void tw_conn_on_accept(struct tw_worker *w, tw_conn *c, unsigned li)
{
        if (tw_worker_cfg(w)->listen[li].tls && tls_start(w, c) < 0)
                tw_worker_nomem(w, c, "a TLS session", 0);
}

void tw_conn_on_recv(struct tw_worker *w, tw_conn *c, uint8_t *buf, size_t len)
{
        if (c->flags & TW_CF_TLS)
                tls_recv(w, c, buf, len);
        else
                tw_conn_on_data(w, c, buf, len);
}

static void heartbeat(struct tw_worker *w, tw_conn *c)
{
        const tw_config *cfg = tw_worker_cfg(w);
        uint64_t seen = tw_worker_time_of(w, c->last_seen);
        uint64_t age = tw_worker_now(w) - seen, next, token;

        if (age >= cfg->idle_timeout_ms) {
                tw_worker_expire(w, c, age);
                return;
        }
        if (age >= cfg->ping_interval_ms && !(c->flags & TW_CF_PING)) {
                tw_frame *ping = tw_frame_ws(TW_WS_OP_PING, NULL, 0);

                c->flags |= TW_CF_PING;
                TW_INC(tw_worker_metrics(w)->pings_sent);
                if (ping && tw_conn_send(w, c, ping) < 0)
                        return;
        }
        /* Lazy re-arm: inbound frames only stored last_seen; the next deadline follows
         * from it — or the session's token, if it expires sooner. With a Ping out, the
         * Pong only stores last_seen too, so look again one interval from now: the next
         * Ping is due one interval after that Pong (DESIGN 3), not at the idle deadline. */
        next = seen + cfg->ping_interval_ms;
        if (c->flags & TW_CF_PING) {
                next = tw_worker_now(w) + cfg->ping_interval_ms;
                if (seen + cfg->idle_timeout_ms < next)
                        next = seen + cfg->idle_timeout_ms;
        }
        token = tw_conn_token_due(w, c);
        if (c->state != TW_CONN_OPEN)
                return;
        tw_worker_arm(w, c, token && token < next ? token : next);
}

void tw_conn_on_timer(struct tw_worker *w, tw_conn *c)
{
        switch (c->state) {
        case TW_CONN_HTTP:
                if (c->flags & TW_CF_SESSION)
                        break;
                if (!(c->flags & TW_CF_SERVED))
                        TW_INC(tw_worker_metrics(w)->handshake_failures[TW_HS_TIMEOUT]);
                tw_worker_terminate(w, c, 0);
                break;
        case TW_CONN_OPEN:
                heartbeat(w, c);
                break;
        case TW_CONN_CLOSING:
        case TW_CONN_LINGER:
                tw_worker_terminate(w, c, c->close_code);
                break;
        default:
                break;
        }
}

void tw_conn_gone(struct tw_worker *w, tw_conn *c)
{
        tw_topic_conn_gone(w, c);
        tw_conn_release_buffers(c);
}

void tw_conn_on_release(tw_conn *c)
{
        tw_conn_release_buffers(c);
        tls_free(c);
        tw_conn_free_ext(c);
}

int tw_conn_deliver(struct tw_worker *w, tw_conn *c, tw_frame *f)
{
        if (c->state != TW_CONN_OPEN)
                return -1;
        tw_conn_send(w, c, f); /* counted in messages_sent by the caller, once per message */
        return c->state == TW_CONN_DEAD;
}

void tw_conn_drain(struct tw_worker *w, tw_conn *c)
{
        if (c->state == TW_CONN_OPEN) {
                uint64_t r = tw_worker_random(w, tw_worker_cfg(w)->reconnect_spread_ms);
                char reason[48];
                int n =
                    snprintf(reason, sizeof(reason), "{\"retry_ms\":%llu}", (unsigned long long)r);

                tw_conn_close(w, c, TW_WS_CLOSE_GOING_AWAY, reason, (size_t)n);
        } else if (c->state == TW_CONN_HTTP) {
                /* Keep-alive clients (health checkers) may ask again and see 503; they are
                 * closed at the drain deadline at the latest (the close deadline while
                 * draining). */
                tw_worker_arm(w, c, tw_worker_close_deadline(w));
        }
}
