/*
 * io_uring plumbing shared by the server and the load generator. Everything here is a
 * thin layer over liburing 2.3 filling in what that version lacks (buffer ring
 * allocation, cancel-by-fixed-fd, fixed fd install) so the rest of the code can ask for
 * the kernel's newer features without caring which helper exists.
 */
#include "tickwire/ring.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

int tw_ring_init(struct io_uring *ring, unsigned entries, unsigned files)
{
        struct io_uring_params p;
        int ret;

        memset(&p, 0, sizeof(p));
        /* SUBMIT_ALL: an SQE that fails must not leave those behind it unsubmitted, or
         * per-turn memory they point into (sendmsg vectors) would be reused under them. */
        p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE |
                  IORING_SETUP_SUBMIT_ALL;
        p.cq_entries = entries * 4;
        ret = io_uring_queue_init_params(entries, ring, &p);
        if (ret == -EINVAL) {
                /* An older kernel: no single issuer / deferred task work. */
                memset(&p, 0, sizeof(p));
                p.flags = IORING_SETUP_CQSIZE;
                p.cq_entries = entries * 4;
                ret = io_uring_queue_init_params(entries, ring, &p);
        }
        if (ret < 0)
                return ret;
        if (files) {
                ret = io_uring_register_files_sparse(ring, files);
                if (ret < 0) {
                        io_uring_queue_exit(ring);
                        return ret;
                }
        }
        return 0;
}

struct io_uring_sqe *tw_ring_sqe(struct io_uring *ring)
{
        struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

        while (!sqe) {
                io_uring_submit(ring);
                sqe = io_uring_get_sqe(ring);
        }
        return sqe;
}

void tw_ring_reserve(struct io_uring *ring, unsigned n)
{
        while (io_uring_sq_space_left(ring) < n)
                io_uring_submit(ring);
}

bool tw_ring_has_op(struct io_uring *ring, int op)
{
        struct io_uring_probe *p = io_uring_get_probe_ring(ring);
        bool has;

        if (!p)
                return false;
        has = io_uring_opcode_supported(p, op);
        io_uring_free_probe(p);
        return has;
}

int tw_bufring_init(struct io_uring *ring, tw_bufring *b, uint16_t bgid, uint32_t count,
                    uint32_t size)
{
        struct io_uring_buf_reg reg;
        size_t ring_bytes = (size_t)count * sizeof(struct io_uring_buf);
        void *mem;
        int ret;

        if (count == 0 || (count & (count - 1)) || count > 32768)
                return -EINVAL;
        memset(b, 0, sizeof(*b));
        mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
        if (mem == MAP_FAILED)
                return -errno;
        b->br = mem;
        b->base = mmap(NULL, (size_t)count * size, PROT_READ | PROT_WRITE,
                       MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
        if (b->base == MAP_FAILED) {
                ret = -errno;
                goto err_ring;
        }
        b->count = count;
        b->size = size;
        b->bgid = bgid;

        memset(&reg, 0, sizeof(reg));
        reg.ring_addr = (uint64_t)(uintptr_t)b->br;
        reg.ring_entries = count;
        reg.bgid = bgid;
        ret = io_uring_register_buf_ring(ring, &reg, 0);
        if (ret < 0)
                goto err_bufs;

        io_uring_buf_ring_init(b->br);
        for (uint32_t i = 0; i < count; i++)
                tw_bufring_recycle(b, (uint16_t)i);
        tw_bufring_publish(b);
        return 0;

err_bufs:
        munmap(b->base, (size_t)count * size);
err_ring:
        munmap(b->br, ring_bytes);
        memset(b, 0, sizeof(*b));
        return ret;
}

void tw_bufring_free(struct io_uring *ring, tw_bufring *b)
{
        if (!b->br)
                return;
        io_uring_unregister_buf_ring(ring, b->bgid);
        munmap(b->base, (size_t)b->count * b->size);
        munmap(b->br, (size_t)b->count * sizeof(struct io_uring_buf));
        memset(b, 0, sizeof(*b));
}

void tw_prep_recv_multishot(struct io_uring_sqe *sqe, int fd, uint16_t bgid)
{
        io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
        sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
        sqe->buf_group = bgid;
}

void tw_prep_cancel_fixed_fd(struct io_uring_sqe *sqe, int fd)
{
        io_uring_prep_rw(IORING_OP_ASYNC_CANCEL, sqe, fd, NULL, 0, 0);
        sqe->cancel_flags =
            IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_FD_FIXED | IORING_ASYNC_CANCEL_ALL;
}

void tw_prep_cancel_fd(struct io_uring_sqe *sqe, int fd)
{
        io_uring_prep_rw(IORING_OP_ASYNC_CANCEL, sqe, fd, NULL, 0, 0);
        sqe->cancel_flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
}

void tw_prep_fixed_fd_install(struct io_uring_sqe *sqe, int fd)
{
        io_uring_prep_rw(TW_IORING_OP_FIXED_FD_INSTALL, sqe, fd, NULL, 0, 0);
        sqe->flags |= IOSQE_FIXED_FILE;
        /* install_fd_flags shares the union with rw_flags: 0 keeps O_CLOEXEC. */
        sqe->rw_flags = 0;
}

void tw_prep_setsockopt(struct io_uring_sqe *sqe, int fd, int level, int optname,
                        const void *optval, int optlen)
{
        /* The 6.7 SQE layout: cmd_op in the low half of off, level and optname over addr,
         * optlen over file_index, the optval pointer over addr3. */
        const uint32_t lo[2] = {(uint32_t)level, (uint32_t)optname};

        io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
        sqe->cmd_op = TW_SOCKET_URING_OP_SETSOCKOPT;
        memcpy(&sqe->addr, lo, sizeof(lo));
        sqe->file_index = (uint32_t)optlen;
        sqe->addr3 = (uint64_t)(uintptr_t)optval;
        sqe->flags |= IOSQE_FIXED_FILE;
}

void tw_prep_bind(struct io_uring_sqe *sqe, int fd, const struct sockaddr *addr, socklen_t addrlen)
{
        io_uring_prep_rw(TW_IORING_OP_BIND, sqe, fd, addr, 0, addrlen);
        sqe->flags |= IOSQE_FIXED_FILE;
}

uint64_t tw_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t tw_now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
