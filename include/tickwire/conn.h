/*
 * conn — one client connection as its worker sees it, and what happens to the bytes it
 * sends: the HTTP request (upgrade, /healthz, /metrics, /publish), then WebSocket frames,
 * control frames, the close handshake and app messages.
 *
 * Owns: the connection's state machine (tw_conn.state beyond FREE/DEAD, the session
 * flags) and its lazily allocated parts (partial input, send queue, extension); the
 * record itself (struct tw_conn) is defined in loop.h, whose slot table holds it. Each
 * connection lives and dies on the worker that accepted it; nothing here is shared or
 * locked. Must not touch: other workers' connections, the ring's submission details
 * (it asks the worker to send, flush and terminate through loop.h).
 *
 * An idle open connection is the record and nothing else: partial input and queued
 * output are allocated only while they exist. A TLS connection adds its wolfSSL object
 * (tls.c) in its extension; a plain one pays only the NULL pointer.
 */
#ifndef TICKWIRE_CONN_H
#define TICKWIRE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <sys/socket.h>

#include "tickwire/frame.h"
#include "tickwire/loop.h"
#include "tickwire/outq.h"
#include "tickwire/wheel.h"
#include "tickwire/ws.h"

/* Close code for a session whose token expired without a refresh (DESIGN 5). */
#define TW_CLOSE_TOKEN_EXPIRED 4001

/* The session's token deadline (see tw_ext.token_due_ms) has come or passed: tells the
 * client `token_expired`, or closes with 4001 once the grace is over. Returns the next
 * deadline (0: none). Called by the worker from c's timer. */
uint64_t tw_conn_token_due(struct tw_worker *w, tw_conn *c);

/* Frees the extension when the slot is released (its TLS session and subscriptions are
 * gone by then; the grant goes with it). */
void tw_conn_free_ext(tw_conn *c);

/* ---- the loop's events (tw_loop_ops, wired by server.c) ---- */

/* Accepted on listener li: starts TLS when the listener serves it. */
void tw_conn_on_accept(struct tw_worker *w, tw_conn *c, unsigned li);

/* Bytes received from the socket: through TLS when c has it, then tw_conn_on_data(). */
void tw_conn_on_recv(struct tw_worker *w, tw_conn *c, uint8_t *buf, size_t len);

/* c's deadline came: handshake timeout, heartbeat (ping, silence), close timeouts. */
void tw_conn_on_timer(struct tw_worker *w, tw_conn *c);

/* c was terminated: drop its subscriptions and buffers. */
void tw_conn_gone(struct tw_worker *w, tw_conn *c);

/* c's slot is freed: its buffers, TLS session and extension go. */
void tw_conn_on_release(tw_conn *c);

/* A topic message for c (ops->deliver): -1 unless c is open (f untouched); else f is
 * queued and counted as sent, and 1 is returned if that ended c. */
int tw_conn_deliver(struct tw_worker *w, tw_conn *c, tw_frame *f);

/* The drain began: an open session gets Close 1001 with a retry hint; an HTTP
 * connection may ask again until the drain deadline. */
void tw_conn_drain(struct tw_worker *w, tw_conn *c);

/* Bytes received on c (state HTTP, OPEN or CLOSING). buf is the worker's receive buffer
 * and may be modified (frames are unmasked in place). */
void tw_conn_on_data(struct tw_worker *w, tw_conn *c, uint8_t *buf, size_t len);

/* Output drained below --max-queue: go on with HTTP requests held back meanwhile. */
void tw_conn_resume(struct tw_worker *w, tw_conn *c);

/* The deferred answer to c's HTTP request (loop.h ops->answer): sent as a JSON body, then
 * the requests that waited behind it are read. */
void tw_conn_answer(struct tw_worker *w, tw_conn *c, int status, tw_span origin, const char *body,
                    size_t len);

/* The peer shut down its sending side (recv returned 0). */
void tw_conn_on_eof(struct tw_worker *w, tw_conn *c);

/* Queues a frame reference for sending (takes the caller's reference). Returns 0, or
 * -ENOMEM (the frame is released and the connection terminated). */
int tw_conn_send(struct tw_worker *w, tw_conn *c, tw_frame *f);

/* Sends Close with code and reason and waits close_timeout for the peer's reply. */
void tw_conn_close(struct tw_worker *w, tw_conn *c, uint16_t code, const char *reason,
                   size_t reason_len);

/* Bytes queued and not yet sent. */
uint64_t tw_conn_queued(const tw_conn *c);

/* Frees partial input and queued output not in flight. */
void tw_conn_release_buffers(tw_conn *c);

/* A send completed: `sent` bytes went out and `left` are still queued. Goes on with what
 * waited for the queue to drain (held HTTP input, a replay, the end of a lingering close). */
void tw_conn_on_sent(struct tw_worker *w, tw_conn *c, size_t sent, uint64_t left);

/* Our last bytes are queued (an error answer, a Close, a TLS alert): the lingering close
 * of DESIGN 4 — send everything, shut our write side, read and discard until the peer's
 * FIN or --close-timeout, then close. */
void tw_conn_linger(struct tw_worker *w, tw_conn *c);

#endif
