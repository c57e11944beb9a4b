/*
 * scenario — what each scenario asks of a client, as pure decisions the engine and main
 * consult: which clients an event hits and when, how a dropped client backs off, what a
 * Close reason's retry hint says, the detection window the server promises, and when a
 * run may end early.
 *
 * Owns: the rules, not the state: no sockets, no clocks, no threads (times come in as
 * arguments). Must not touch: the ring, the report.
 *
 * What a pub/sub client does (market, slow, storm with topics) is in market.h.
 */
#ifndef LG_SCENARIO_H
#define LG_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "opts.h"

/* The scenario has a one-off event at --silent-at (silent, abort, graceful, slow). */
bool lg_scenario_has_event(const lg_opts *o);

/* Client `id` is hit by the event: exactly round(fraction * N) of any N consecutive ids,
 * spread evenly (so every thread and every source address gets its share). */
bool lg_scenario_hits(const lg_opts *o, uint32_t id);

/* Clients the event hits among ids [0, n). */
uint32_t lg_scenario_hit_count(const lg_opts *o, uint32_t n);

/* Storm: the server ending a session means "come back"; elsewhere it is a false
 * disconnect (for a client the event did not hit). */
bool lg_scenario_reconnects(const lg_opts *o);

/* Delay before reconnect attempt `attempt` (0-based): base * 2^attempt capped at cap,
 * and with full jitter a uniform draw from [0, that) (AWS "Exponential Backoff And
 * Jitter"). `r` is a uniform 64-bit random number. */
uint64_t lg_scenario_backoff_ms(const lg_opts *o, unsigned attempt, uint64_t r);

/* Parses {"retry_ms":R} from a Close reason. Returns true and R, or false. */
bool lg_scenario_retry_hint(const uint8_t *reason, size_t len, uint64_t *ms);

/* The detection window of DESIGN 8, [idle - ping, idle + tick + 50 ms], from the server's
 * heartbeat settings. False when they are unknown. */
bool lg_scenario_expected(uint64_t ping_ms, uint64_t idle_ms, uint64_t tick_ms, double *min_ms,
                          double *max_ms);

#endif
