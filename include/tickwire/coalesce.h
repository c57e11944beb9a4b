/*
 * coalesce — when a worker flushes its output: at once, or held so that more messages per
 * subscriber share one send (--coalesce).
 *
 * Owns: the decision, as pure functions over times the caller measures (wall clock in
 * µs, the thread's CPU demand in ns), so it is testable without a loop. Must not touch:
 * sockets, the ring, connections.
 *
 * A send costs the kernel several microseconds whatever it carries (on loopback it also
 * runs the receiver's TCP), so what a worker delivers per core depends on messages per
 * send. A worker that keeps up flushes every turn and adds no delay. One whose thread
 * wanted a core for at least TW_COALESCE_ON_PCT of the last sample (demand over wall
 * time, each TW_COALESCE_SAMPLE_US) is loaded: when its last flush took F, the next one
 * waits until F has passed again (at most the cap). Meanwhile it reads on, and whatever
 * reaches a subscriber in that time goes out in the same send: sending takes about half
 * of the worker's time and the batches grow with the load. It stops being loaded when
 * its demand falls below TW_COALESCE_OFF_PCT, low enough that flushing every turn will
 * not overload it again at once.
 *
 * Demand is the time the thread ran plus the time it was runnable but waited for a core
 * (the kernel's schedstat). CPU time alone is not enough once workers share cores with
 * each other or with other processes: two workers on two busy cores each run ~55 % of
 * the time, never look loaded, and never coalesce, though each would be busy given the
 * core (measured: half the messages per send and per core-second of one worker).
 */
#ifndef TICKWIRE_COALESCE_H
#define TICKWIRE_COALESCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TW_COALESCE_SAMPLE_US 25000
#define TW_COALESCE_ON_PCT    90
#define TW_COALESCE_OFF_PCT   50

typedef struct tw_coalesce {
        uint64_t cap_us;               /* the longest hold; 0 = never hold */
        uint64_t sample_us, sample_ns; /* when the current sample began: wall, CPU */
        uint64_t flush_at_us;          /* while loaded, the next flush waits for this */
        bool loaded;
} tw_coalesce;

/* A controller holding output at most cap_us, starting its first sample now. */
void tw_coalesce_init(tw_coalesce *c, uint64_t cap_us, uint64_t now_us, uint64_t cpu_ns);

/* Demand in ns from the text of /proc/thread-self/schedstat ("run_ns wait_ns slices"):
 * run + wait. False when buf does not start with two numbers. */
bool tw_coalesce_demand_parse(const char *buf, size_t len, uint64_t *demand_ns);

/* Whether a sample is over (the caller then reads its demand for tw_coalesce_sample: that
 * is a system call, so it is read once per sample, not per turn). */
bool tw_coalesce_sample_due(const tw_coalesce *c, uint64_t now_us);

/* Ends the sample at (now_us, cpu_ns: the demand so far) and decides whether the worker
 * is loaded; a cpu_ns below the sample's start (the caller changed clocks) only restarts
 * the sample. */
void tw_coalesce_sample(tw_coalesce *c, uint64_t now_us, uint64_t cpu_ns);

/* Whether a connection's output goes out at once even while its worker holds the rest:
 * at least TW_COALESCE_FULL_SEND frames (a full send: holding it gains nothing), or an
 * eighth of the connection's bound. Holding is the server's choice; it must never be what
 * pushes a client that reads over its bound (slow-consumer policy is for clients that do
 * not): with one send in flight and this much held behind it, a hold adds at most an
 * eighth of the bound to what a reading client has queued. */
#define TW_COALESCE_FULL_SEND 1024
bool tw_coalesce_sends_now(uint32_t frames, uint64_t bytes, uint64_t max_queue);

/* How long output marked now must still wait before its flush: 0 = flush now. */
uint64_t tw_coalesce_wait_us(const tw_coalesce *c, uint64_t now_us);

/* A flush began at t0_us and took cost_us: sets when the next may begin. */
void tw_coalesce_flushed(tw_coalesce *c, uint64_t t0_us, uint64_t cost_us);

#endif
