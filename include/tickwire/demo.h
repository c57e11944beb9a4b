/*
 * demo — the synthetic market feed of --demo (DESIGN 7): a few dozen symbols on a random
 * walk, a few hundred messages a second, so the demo page shows live data with nobody
 * publishing. Topic TW_DEMO_INDEX carries the list of symbols (as its last value, for a
 * subscribe with snapshot); each symbol is a topic of its own with
 * {"px":P,"chg":C,"ts":T} (T: Unix milliseconds, for the page's latency).
 *
 * Owns: the symbols' prices and its random state. Pure: the caller passes the time and
 * publishes what it is handed (worker 0 does, from its loop).
 */
#ifndef TICKWIRE_DEMO_H
#define TICKWIRE_DEMO_H

#include <stddef.h>
#include <stdint.h>

#define TW_DEMO_INDEX "demo.symbols"
#define TW_DEMO_RATE  300 /* messages per second, all symbols together */

typedef struct tw_demo tw_demo;

typedef struct tw_demo_msg {
        const char *topic;
        char data[512]; /* the index is the longest: ~300 bytes */
        size_t len;
} tw_demo_msg;

/* A feed starting at monotonic time now_ms; NULL when out of memory. */
tw_demo *tw_demo_new(uint64_t seed, uint64_t now_ms);
void tw_demo_free(tw_demo *d);

/* The index message ({"symbols":[...]}), published once at start. */
void tw_demo_index(const tw_demo *d, tw_demo_msg *out);

/* Fills out[0..max) with the messages due by now_ms (monotonic), stamped with wall_ms;
 * returns how many. A caller that fell behind gets at most max and the rest is skipped:
 * the feed keeps its rate, it does not catch up in a burst. */
size_t tw_demo_due(tw_demo *d, uint64_t now_ms, int64_t wall_ms, tw_demo_msg *out, size_t max);

/* When the next message is due (monotonic ms). */
uint64_t tw_demo_next(const tw_demo *d);

#endif
