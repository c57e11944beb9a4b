/*
 * ring — small io_uring helpers shared by the server and the load generator: ring set-up
 * with the fastest flags the kernel takes, provided-buffer rings (liburing 2.3 lacks
 * io_uring_setup_buf_ring), SQE fields liburing 2.3 has no helper for, completion tags,
 * and the monotonic clock.
 *
 * Owns: nothing long-lived but the buffer ring memory it maps. Must not touch:
 * connection or protocol state.
 */
#ifndef TICKWIRE_RING_H
#define TICKWIRE_RING_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

/* Opcodes and commands newer than liburing 2.3's header (and the 6.1 uapi headers). */
#define TW_IORING_OP_FIXED_FD_INSTALL 54 /* kernel 6.8 */
#define TW_IORING_OP_BIND             56 /* kernel 6.11 */
#define TW_SOCKET_URING_OP_SETSOCKOPT 3  /* IORING_OP_URING_CMD on a socket, kernel 6.7 */

/* A completion's user_data: (kind, slot, generation). A completion whose generation no
 * longer matches its slot belongs to a connection that is gone and is ignored. */
static inline uint64_t tw_ud(uint8_t kind, uint32_t slot, uint32_t gen)
{
        return ((uint64_t)kind << 56) | ((uint64_t)(slot & 0xffffffu) << 32) | gen;
}
static inline uint8_t tw_ud_kind(uint64_t ud)
{
        return (uint8_t)(ud >> 56);
}
static inline uint32_t tw_ud_slot(uint64_t ud)
{
        return (uint32_t)(ud >> 32) & 0xffffffu;
}
static inline uint32_t tw_ud_gen(uint64_t ud)
{
        return (uint32_t)ud;
}

/* Creates a ring on the calling thread: SINGLE_ISSUER | DEFER_TASKRUN when the kernel
 * has them, a CQ of 4x entries, and a sparse fixed-file table of `files` slots (0 for
 * none). Returns 0 or a negative errno. */
int tw_ring_init(struct io_uring *ring, unsigned entries, unsigned files);

/* An SQE, submitting pending ones first if the SQ is full. Never NULL. */
struct io_uring_sqe *tw_ring_sqe(struct io_uring *ring);

/* Makes room for n SQEs taken back to back, submitting pending ones first if needed: a
 * linked chain must go to the kernel in one submission, since the kernel ends a chain at
 * the end of each submission and would run the rest unlinked. */
void tw_ring_reserve(struct io_uring *ring, unsigned n);

/* Whether the running kernel knows opcode op (io_uring probe). */
bool tw_ring_has_op(struct io_uring *ring, int op);

/* A provided-buffer ring: `count` buffers of `size` bytes in group `bgid`. */
typedef struct tw_bufring {
        struct io_uring_buf_ring *br; /* the shared ring of buffer descriptors */
        uint8_t *base;                /* count * size bytes of buffers */
        uint32_t count;               /* power of two */
        uint32_t size;
        uint16_t bgid;
        uint16_t pending; /* recycled since the last publish */
} tw_bufring;

int tw_bufring_init(struct io_uring *ring, tw_bufring *b, uint16_t bgid, uint32_t count,
                    uint32_t size);
void tw_bufring_free(struct io_uring *ring, tw_bufring *b);

static inline uint8_t *tw_bufring_buf(const tw_bufring *b, uint16_t bid)
{
        return b->base + (size_t)bid * b->size;
}

/* Gives buffer bid back to the kernel; visible after tw_bufring_publish(). */
static inline void tw_bufring_recycle(tw_bufring *b, uint16_t bid)
{
        io_uring_buf_ring_add(b->br, tw_bufring_buf(b, bid), b->size, bid,
                              io_uring_buf_ring_mask(b->count), b->pending++);
}
static inline void tw_bufring_publish(tw_bufring *b)
{
        if (b->pending) {
                io_uring_buf_ring_advance(b->br, b->pending);
                b->pending = 0;
        }
}

/* Multishot recv on fixed file `fd` into buffer group bgid. */
void tw_prep_recv_multishot(struct io_uring_sqe *sqe, int fd, uint16_t bgid);

/* Cancels every request on fixed file `fd`. */
void tw_prep_cancel_fixed_fd(struct io_uring_sqe *sqe, int fd);

/* Cancels every request on regular descriptor `fd` (a listener's accepts). */
void tw_prep_cancel_fd(struct io_uring_sqe *sqe, int fd);

/* Installs fixed file `fd` as a regular descriptor (O_CLOEXEC); res = the new fd. */
void tw_prep_fixed_fd_install(struct io_uring_sqe *sqe, int fd);

/* setsockopt on fixed file `fd` (URING_CMD, any level since the kernel calls
 * do_sock_setsockopt). The kernel reads *optval when the request runs, which for a linked
 * request is long after submission: optval must stay valid until it completes. */
void tw_prep_setsockopt(struct io_uring_sqe *sqe, int fd, int level, int optname,
                        const void *optval, int optlen);

/* bind on fixed file `fd`; the kernel copies *addr at submission. */
void tw_prep_bind(struct io_uring_sqe *sqe, int fd, const struct sockaddr *addr, socklen_t addrlen);

/* Monotonic clock in milliseconds and microseconds. */
uint64_t tw_now_ms(void);
uint64_t tw_now_us(void);

#endif
