// Words shared with other processes through a mapping, and the per-process
// slots that say whether their owner is alive. Used by the crash-safe
// semaphores (native/sync/robust.cc) and the shared-memory queue
// (native/ring/ring.cc): a slot is one byte of the segment's file, write-locked
// with an open-file-description lock (F_OFD_SETLK) by the descriptor that owns
// it, so the kernel drops the lock, and the slot reads as dead, the instant its
// owner's descriptor closes, SIGKILL included. napi-free.
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace pipc {
namespace shared {

// Sequentially consistent access to a word of the mapping.
inline int32_t Load(const int32_t* p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
inline void Store(int32_t* p, int32_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
inline bool Cas(int32_t* p, int32_t* expected, int32_t desired) {
  return __atomic_compare_exchange_n(p, expected, desired, false, __ATOMIC_SEQ_CST,
                                     __ATOMIC_SEQ_CST);
}
inline int32_t Add(int32_t* p, int32_t v) { return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST); }

// A futex call on a word shared between processes (never FUTEX_PRIVATE_FLAG).
inline long Futex(int32_t* addr, int op, int32_t val, const timespec* ts, uint32_t bitset) {
  return syscall(SYS_futex, addr, op, val, ts, nullptr, bitset);
}

// True unless the kernel says nobody holds the OFD write lock on byte `offset`
// of the file behind `fd` (a lock of `fd`'s own description reads as free, so
// callers skip their own slot).
inline bool SlotAlive(int fd, off_t offset) {
  struct flock fl = {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = offset;
  fl.l_len = 1;
  if (fcntl(fd, F_OFD_GETLK, &fl) == -1) return true;
  return fl.l_type != F_UNLCK;
}

// Claims the first free slot of `count`, starting at a pid-dependent one so
// that openers rarely collide: write-locks byte offset_of(id) of the file.
// Returns the slot id (1..count), or -errno (-ENOSPC when all are taken).
template <typename OffsetOf>
inline int32_t ClaimSlot(int fd, int32_t count, OffsetOf offset_of) {
  int32_t start = static_cast<int32_t>(getpid() % count);
  for (int32_t i = 0; i < count; i++) {
    int32_t id = 1 + (start + i) % count;
    struct flock fl = {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = offset_of(id);
    fl.l_len = 1;
    if (fcntl(fd, F_OFD_SETLK, &fl) == 0) return id;
    if (errno != EAGAIN && errno != EACCES) return -errno;
  }
  return -ENOSPC;
}

}  // namespace shared
}  // namespace pipc
