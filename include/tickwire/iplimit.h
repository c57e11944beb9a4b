/*
 * iplimit — connections per client address, server-wide (--max-connections-per-ip).
 *
 * Owns: a table of addresses with a count each, shared by every worker behind one mutex
 * (taken twice per connection: at accept and at the end; never on the data path). An
 * entry exists while its count is non-zero and keeps its index meanwhile, so a
 * connection remembers the index, not the 16-byte address. Must not touch: sockets.
 *
 * IPv4 and IPv4-mapped IPv6 addresses are the same client.
 */
#ifndef TICKWIRE_IPLIMIT_H
#define TICKWIRE_IPLIMIT_H

#include <stdint.h>
#include <sys/socket.h>

typedef struct tw_iplimit tw_iplimit;

/* A table allowing `max` connections per address. NULL when out of memory. */
tw_iplimit *tw_iplimit_new(uint32_t max);
void tw_iplimit_free(tw_iplimit *t);

/* Counts one more connection from sa (AF_INET or AF_INET6). Returns its entry index
 * (>= 0) for tw_iplimit_release(), -EBUSY when the address already has `max`, -ENOMEM,
 * or -EAFNOSUPPORT. */
int32_t tw_iplimit_acquire(tw_iplimit *t, const struct sockaddr *sa);

/* One connection of entry idx has ended. */
void tw_iplimit_release(tw_iplimit *t, int32_t idx);

/* Connections counted for the address (tests). */
uint32_t tw_iplimit_count(tw_iplimit *t, const struct sockaddr *sa);

#endif
