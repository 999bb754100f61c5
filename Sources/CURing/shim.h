/* Raw io_uring for SwitchboardURing: the three system calls, the ring's memory ordering and the
   few submission entries the driver prepares. No liburing: the package links only libyaml,
   hiredis, OpenSSL and zlib, and the driver needs a dozen lines of what liburing does.

   Everything is `static inline`, compiled into the Swift module that imports it. System calls
   answer a negative errno instead of -1 and errno, so Swift never reads a thread-local. SQE
   helpers take `void *` so that Swift never has to name the anonymous unions of
   `struct io_uring_sqe`; each clears the whole entry first (a reused slot keeps old fields). */
#ifndef SWITCHBOARD_CURING_SHIM_H
#define SWITCHBOARD_CURING_SHIM_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/io_uring.h>
#include <linux/time_types.h>

/* ---- system calls ---------------------------------------------------------------------- */

static inline int sb_uring_setup(unsigned entries, struct io_uring_params *params) {
    long result = syscall(__NR_io_uring_setup, entries, params);
    return result < 0 ? -errno : (int)result;
}

static inline int sb_uring_register(int fd, unsigned opcode, void *arg, unsigned count) {
    long result = syscall(__NR_io_uring_register, fd, opcode, arg, count);
    return result < 0 ? -errno : (int)result;
}

/* Submits `to_submit` entries and, with `wait_for` > 0, waits until that many completions are
   ready, or `timeout_ns` passed (`timeout_ns` < 0: no timeout). One call per loop turn.
   IORING_ENTER_GETEVENTS always: with IORING_SETUP_DEFER_TASKRUN completions are produced only
   inside this call. Answers the count submitted, or -errno (-ETIME: the timeout passed). */
static inline int sb_uring_enter(int fd, unsigned to_submit, unsigned wait_for, unsigned extra_flags,
                                 long long timeout_ns) {
    unsigned flags = IORING_ENTER_GETEVENTS | extra_flags;
    long result;
    if (wait_for == 0 || timeout_ns < 0) {
        result = syscall(__NR_io_uring_enter, fd, to_submit, wait_for, flags, NULL, 0);
    } else {
        struct __kernel_timespec ts = { timeout_ns / 1000000000LL, timeout_ns % 1000000000LL };
        struct io_uring_getevents_arg arg;
        memset(&arg, 0, sizeof arg);
        arg.ts = (uint64_t)(uintptr_t)&ts;
        result = syscall(__NR_io_uring_enter, fd, to_submit, wait_for, flags | IORING_ENTER_EXT_ARG,
                         &arg, sizeof arg);
    }
    return result < 0 ? -errno : (int)result;
}

/* The loop's wake-up counter: blocking, because a ring read of a non-blocking file answers
   EAGAIN instead of waiting for it to become readable; nothing writes it often enough to
   block a writer (the counter would have to reach 2^64 - 2). */
static inline int sb_wake_eventfd(void) {
    int fd = eventfd(0, EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* ---- memory ordering of the shared rings ------------------------------------------------ */

/* The kernel's side of a ring index (SQ head, CQ tail): read after the kernel's writes. */
static inline uint32_t sb_load_acquire(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
/* Our side (SQ tail, CQ head): the entries written before are visible to the kernel first. */
static inline void sb_store_release(uint32_t *p, uint32_t value) { __atomic_store_n(p, value, __ATOMIC_RELEASE); }

/* ---- the provided buffer ring (IORING_REGISTER_PBUF_RING) ------------------------------- */

/* Puts buffer `bid` at position `index` of the ring (not yet visible: see publish). */
static inline void sb_buf_ring_add(void *ring, uint16_t mask, uint16_t index, void *addr, uint32_t length,
                                   uint16_t bid) {
    struct io_uring_buf *buf = &((struct io_uring_buf *)ring)[index & mask];
    buf->addr = (uint64_t)(uintptr_t)addr;
    buf->len = length;
    buf->bid = bid;
}

/* Makes the buffers added up to `tail` available to the kernel. */
static inline void sb_buf_ring_publish(void *ring, uint16_t tail) {
    struct io_uring_buf_ring *br = (struct io_uring_buf_ring *)ring;
    __atomic_store_n(&br->tail, tail, __ATOMIC_RELEASE);
}

static inline int sb_register_buf_ring(int fd, void *ring, unsigned entries, uint16_t group) {
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)ring;
    reg.ring_entries = entries;
    reg.bgid = group;
    return sb_uring_register(fd, IORING_REGISTER_PBUF_RING, &reg, 1);
}

/* Registers the ring's own descriptor with the calling thread (IORING_REGISTER_RING_FDS), so
   that io_uring_enter skips the descriptor lookup; the index to pass instead, or -errno. */
static inline int sb_register_ring_fd(int fd) {
    struct io_uring_rsrc_update update;
    memset(&update, 0, sizeof update);
    update.offset = -1U;
    update.data = (uint64_t)fd;
    int result = sb_uring_register(fd, IORING_REGISTER_RING_FDS, &update, 1);
    return result == 1 ? (int)update.offset : (result < 0 ? result : -EINVAL);
}

/* Undoes sb_register_ring_fd (on the same thread): a registered descriptor keeps the ring
   alive until the thread ends. */
static inline int sb_unregister_ring_fd(int fd, unsigned index) {
    struct io_uring_rsrc_update update;
    memset(&update, 0, sizeof update);
    update.offset = index;
    return sb_uring_register(fd, IORING_UNREGISTER_RING_FDS, &update, 1);
}

/* Whether the kernel knows `opcode` (IORING_REGISTER_PROBE): 1, 0, or -errno. */
static inline int sb_probe_opcode(int fd, unsigned opcode) {
    enum { slots = 256 };
    char storage[sizeof(struct io_uring_probe) + slots * sizeof(struct io_uring_probe_op)];
    memset(storage, 0, sizeof storage);
    struct io_uring_probe *probe = (struct io_uring_probe *)storage;
    int result = sb_uring_register(fd, IORING_REGISTER_PROBE, probe, slots);
    if (result < 0) return result;
    if (opcode > probe->last_op) return 0;
    return (probe->ops[opcode].flags & IO_URING_OP_SUPPORTED) ? 1 : 0;
}

/* Whether the kernel knows every operation SwitchboardURing submits: 1, 0, or -errno. */
static inline int sb_probe_network_ops(int fd) {
    const unsigned ops[] = { IORING_OP_ACCEPT, IORING_OP_RECV, IORING_OP_SEND, IORING_OP_SENDMSG, IORING_OP_READ,
                             IORING_OP_ASYNC_CANCEL };
    for (unsigned i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        int known = sb_probe_opcode(fd, ops[i]);
        if (known != 1) return known;
    }
    return 1;
}

/* ---- submission entries ----------------------------------------------------------------- */

static inline struct io_uring_sqe *sb_sqe_clear(void *entry, uint8_t opcode, int fd, uint64_t user_data) {
    struct io_uring_sqe *sqe = (struct io_uring_sqe *)entry;
    memset(sqe, 0, sizeof *sqe);
    sqe->opcode = opcode;
    sqe->fd = fd;
    sqe->user_data = user_data;
    return sqe;
}

/* One request that accepts every connection of a listener until cancelled (Linux 5.19). */
static inline void sb_prep_accept_multishot(void *entry, int listener, uint64_t user_data) {
    struct io_uring_sqe *sqe = sb_sqe_clear(entry, IORING_OP_ACCEPT, listener, user_data);
    sqe->ioprio = IORING_ACCEPT_MULTISHOT;
    sqe->accept_flags = SOCK_CLOEXEC;
}

/* One request that receives until cancelled, each completion into a buffer the kernel takes
   from group `group` of the provided buffer ring (Linux 6.0). */
static inline void sb_prep_recv_multishot(void *entry, int fd, uint16_t group, uint64_t user_data) {
    struct io_uring_sqe *sqe = sb_sqe_clear(entry, IORING_OP_RECV, fd, user_data);
    sqe->ioprio = IORING_RECV_MULTISHOT;
    sqe->flags = IOSQE_BUFFER_SELECT;
    sqe->buf_group = group;
}

static inline void sb_prep_send(void *entry, int fd, const void *bytes, uint32_t count, uint64_t user_data) {
    struct io_uring_sqe *sqe = sb_sqe_clear(entry, IORING_OP_SEND, fd, user_data);
    sqe->addr = (uint64_t)(uintptr_t)bytes;
    sqe->len = count;
    sqe->msg_flags = MSG_NOSIGNAL;
}

/* `message` (and its iovecs) may be reused once the entry was submitted
   (IORING_FEAT_SUBMIT_STABLE); the bytes they point at must stay until the completion. */
static inline void sb_prep_sendmsg(void *entry, int fd, const void *message, uint64_t user_data) {
    struct io_uring_sqe *sqe = sb_sqe_clear(entry, IORING_OP_SENDMSG, fd, user_data);
    sqe->addr = (uint64_t)(uintptr_t)message;
    sqe->len = 1;
    sqe->msg_flags = MSG_NOSIGNAL;
}

static inline void sb_prep_read(void *entry, int fd, void *buffer, uint32_t count, uint64_t user_data) {
    struct io_uring_sqe *sqe = sb_sqe_clear(entry, IORING_OP_READ, fd, user_data);
    sqe->addr = (uint64_t)(uintptr_t)buffer;
    sqe->len = count;
}

/* Cancels the request submitted with `target`; posts nothing when that succeeded
   (IOSQE_CQE_SKIP_SUCCESS), a completion with `user_data` otherwise. */
static inline void sb_prep_cancel(void *entry, uint64_t target, uint64_t user_data) {
    struct io_uring_sqe *sqe = sb_sqe_clear(entry, IORING_OP_ASYNC_CANCEL, -1, user_data);
    sqe->addr = target;
    sqe->flags = IOSQE_CQE_SKIP_SUCCESS;
}

/* Cancels every request of the ring (Linux 5.19); no completion of its own on success. */
static inline void sb_prep_cancel_all(void *entry, uint64_t user_data) {
    struct io_uring_sqe *sqe = sb_sqe_clear(entry, IORING_OP_ASYNC_CANCEL, -1, user_data);
    sqe->cancel_flags = IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_ANY;
    sqe->flags = IOSQE_CQE_SKIP_SUCCESS;
}

#endif
