#include "uring.h"

#include <errno.h>
#include <linux/futex.h>
#include <linux/io_uring.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "posix.h"

// The headers here may predate futex waits on io_uring (Linux 6.7) and
// futex2's flags (include/uapi/linux/futex.h).
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif
#ifndef SYS_io_uring_enter
#define SYS_io_uring_enter 426
#endif

namespace pipc {

namespace {

constexpr uint8_t kOpFutexWait = 51;  // IORING_OP_FUTEX_WAIT
constexpr uint32_t kFutex2SizeU32 = 0x02;
constexpr uint32_t kFutex2Private = 128;
constexpr uint64_t kMatchAny = 0xffffffffu;  // FUTEX_BITSET_MATCH_ANY

void Unmap(void*& p, size_t& n) {
  if (p != nullptr) munmap(p, n);
  p = nullptr;
  n = 0;
}

}  // namespace

bool FutexRing::Open(unsigned sq_entries, unsigned cq_entries) {
  io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_CQSIZE;
  p.cq_entries = cq_entries;
  const int fd = static_cast<int>(syscall(SYS_io_uring_setup, sq_entries, &p));
  if (fd < 0) return false;
  if ((p.features & IORING_FEAT_NODROP) == 0) {
    close(fd);
    errno = ENOSYS;
    return false;
  }
  fd_ = fd;
  sq_map_size_ = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  cq_map_size_ = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
  const bool single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single && cq_map_size_ > sq_map_size_) sq_map_size_ = cq_map_size_;
  sq_map_ = mmap(nullptr, sq_map_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  if (sq_map_ == MAP_FAILED) {
    sq_map_ = nullptr;
    Close();
    return false;
  }
  if (single) {
    cq_map_ = sq_map_;
  } else {
    cq_map_ = mmap(nullptr, cq_map_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
    if (cq_map_ == MAP_FAILED) {
      cq_map_ = nullptr;
      Close();
      return false;
    }
  }
  sqes_map_size_ = p.sq_entries * sizeof(io_uring_sqe);
  sqes_map_ = mmap(nullptr, sqes_map_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (sqes_map_ == MAP_FAILED) {
    sqes_map_ = nullptr;
    Close();
    return false;
  }
  auto* sq = static_cast<char*>(sq_map_);
  auto* cq = static_cast<char*>(cq_map_);
  sq_head_ = reinterpret_cast<unsigned*>(sq + p.sq_off.head);
  sq_tail_ = reinterpret_cast<unsigned*>(sq + p.sq_off.tail);
  sq_mask_ = *reinterpret_cast<unsigned*>(sq + p.sq_off.ring_mask);
  sq_entries_ = p.sq_entries;
  sq_array_ = reinterpret_cast<unsigned*>(sq + p.sq_off.array);
  cq_head_ = reinterpret_cast<unsigned*>(cq + p.cq_off.head);
  cq_tail_ = reinterpret_cast<unsigned*>(cq + p.cq_off.tail);
  cq_mask_ = *reinterpret_cast<unsigned*>(cq + p.cq_off.ring_mask);
  cqes_ = reinterpret_cast<Cqe*>(cq + p.cq_off.cqes);
  static_assert(sizeof(Cqe) == sizeof(io_uring_cqe), "io_uring_cqe layout");
  sqes_ = sqes_map_;
  queued_ = 0;
  return true;
}

void FutexRing::Close() {
  if (cq_map_ == sq_map_) {
    cq_map_ = nullptr;
    cq_map_size_ = 0;
  }
  Unmap(sqes_map_, sqes_map_size_);
  Unmap(cq_map_, cq_map_size_);
  Unmap(sq_map_, sq_map_size_);
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  queued_ = 0;
}

// The next free submission entry, cleared, flushing the queue first if it is
// full; nullptr if that flush failed.
void* FutexRing::NextSqe() {
  if (queued_ == sq_entries_ && !Flush()) return nullptr;
  const unsigned tail = *sq_tail_;
  const unsigned i = tail & sq_mask_;
  auto* s = static_cast<io_uring_sqe*>(sqes_) + i;
  memset(s, 0, sizeof *s);
  sq_array_[i] = i;
  return s;
}

bool FutexRing::QueueWait(const int32_t* word, int32_t expected, bool shared, uint64_t user_data) {
  auto* s = static_cast<io_uring_sqe*>(NextSqe());
  if (s == nullptr) return false;
  s->opcode = kOpFutexWait;
  s->fd = static_cast<int32_t>(kFutex2SizeU32 | (shared ? 0 : kFutex2Private));
  s->addr = reinterpret_cast<uint64_t>(word);
  s->addr2 = static_cast<uint64_t>(static_cast<uint32_t>(expected));
  s->addr3 = kMatchAny;
  s->user_data = user_data;
  __atomic_store_n(sq_tail_, *sq_tail_ + 1, __ATOMIC_RELEASE);
  queued_++;
  return true;
}

bool FutexRing::QueueCancel(uint64_t target) {
  auto* s = static_cast<io_uring_sqe*>(NextSqe());
  if (s == nullptr) return false;
  s->opcode = IORING_OP_ASYNC_CANCEL;
  s->fd = -1;
  s->addr = target;
  s->user_data = kCancelTag;
  __atomic_store_n(sq_tail_, *sq_tail_ + 1, __ATOMIC_RELEASE);
  queued_++;
  return true;
}

// Submits without waiting. The kernel takes every well-formed entry (a bad
// one completes with an error); EINTR and EAGAIN/EBUSY (completions to reap
// first) leave the rest queued for the next Enter.
bool FutexRing::Flush() {
  while (queued_ > 0) {
    const long r = syscall(SYS_io_uring_enter, fd_, queued_, 0, 0, nullptr, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    queued_ -= static_cast<unsigned>(r) > queued_ ? queued_ : static_cast<unsigned>(r);
    if (r == 0) return false;
  }
  return true;
}

int FutexRing::Enter(int64_t until_ns) {
  const unsigned tail = __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE);
  const bool ready = *cq_head_ != tail;
  int64_t left = -1;
  if (until_ns >= 0) {
    left = until_ns - MonotonicNs();
    if (left < 0) left = 0;
  }
  const bool wait = !ready && left != 0;
  __kernel_timespec ts = {};
  io_uring_getevents_arg arg = {};
  arg.sigmask = 0;
  arg.sigmask_sz = _NSIG / 8;
  unsigned flags = 0;
  if (wait) {
    flags |= IORING_ENTER_GETEVENTS;
    if (left > 0) {
      ts.tv_sec = left / 1000000000;
      ts.tv_nsec = left % 1000000000;
      arg.ts = reinterpret_cast<uint64_t>(&ts);
      flags |= IORING_ENTER_EXT_ARG;
    }
  }
  if (!wait && queued_ == 0) return 0;
  const long r = syscall(SYS_io_uring_enter, fd_, queued_, wait ? 1 : 0, flags,
                         (flags & IORING_ENTER_EXT_ARG) ? static_cast<void*>(&arg) : nullptr,
                         (flags & IORING_ENTER_EXT_ARG) ? sizeof arg : 0);
  if (r < 0) return errno;
  queued_ -= static_cast<unsigned>(r) > queued_ ? queued_ : static_cast<unsigned>(r);
  return 0;
}

bool FutexRing::Available() {
  static const bool have = [] {
    if (getenv("POSIX_IPC_NO_URING") != nullptr) return false;
    FutexRing ring;
    if (!ring.Open(4, 8)) return false;
    // A wait on a word that differs from the expected value completes at
    // once with -EAGAIN where the operation exists (-EINVAL where not).
    int32_t word = 1;
    if (!ring.QueueWait(&word, 0, false, 7)) return false;
    int32_t got = 0;
    bool seen = false;
    for (int i = 0; i < 3 && !seen; i++) {
      const int e = ring.Enter(MonotonicNs() + 100 * 1000 * 1000);
      if (e != 0 && e != EINTR && e != ETIME) break;
      ring.Reap([&](uint64_t ud, int32_t res) {
        if (ud == 7) {
          got = res;
          seen = true;
        }
      });
    }
    return seen && got == -EAGAIN;
  }();
  return have;
}

}  // namespace pipc
