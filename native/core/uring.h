// A minimal io_uring for the wait engine's futex waits (raw system calls, no
// liburing): IORING_OP_FUTEX_WAIT (Linux 6.7) queues a wait on a futex word
// that stays registered in the kernel until the word is woken, so one thread
// sleeps on any number of words and a wake-up or a new wait costs the same
// with ten words registered or ten thousand. futex_waitv(2), by contrast,
// registers its (at most 128) words again on every sleep: about 0.4 µs a
// shared word here, 48 µs for a full thread, on each wake-up and each new wait.
//
// One thread owns a ring: it queues, submits and reaps. Completions say, per
// wait, 0 (woken), -EAGAIN (the word differed from the expected value when the
// kernel queued it) or -ECANCELED (QueueCancel, or the ring closing).
#pragma once

#include <cstddef>
#include <cstdint>

namespace pipc {

class FutexRing {
 public:
  FutexRing() = default;
  FutexRing(const FutexRing&) = delete;
  FutexRing& operator=(const FutexRing&) = delete;
  ~FutexRing() { Close(); }

  // Sets the ring up: up to sq_entries queued submissions between two
  // Enter()s (more are flushed as they come), cq_entries completions (the
  // kernel keeps any overflow: IORING_FEAT_NODROP, required). false on
  // failure, errno set.
  bool Open(unsigned sq_entries, unsigned cq_entries);
  // Closes the ring; the kernel cancels what is still queued.
  void Close();

  // Queues a wait for *word to be woken while it holds `expected`; shared:
  // the word is in memory shared with other processes (else private to this
  // one). false if the submission could not be flushed (errno).
  bool QueueWait(const int32_t* word, int32_t expected, bool shared, uint64_t user_data);
  // Queues the cancel of the wait whose user_data is `target`; its own
  // completion carries kCancelTag.
  bool QueueCancel(uint64_t target);
  // Submits what is queued, then waits for a completion until the
  // CLOCK_MONOTONIC time until_ns (-1: no limit; 0 or past: does not wait).
  // 0, or an errno (ETIME for the time, EINTR).
  int Enter(int64_t until_ns);
  // Calls f(user_data, res) for each completion there now, and consumes them.
  template <class F>
  void Reap(F&& f) {
    unsigned head = *cq_head_;
    const unsigned tail = __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE);
    while (head != tail) {
      const Cqe& c = cqes_[head & cq_mask_];
      const uint64_t ud = c.user_data;
      const int32_t res = c.res;
      head++;
      __atomic_store_n(cq_head_, head, __ATOMIC_RELEASE);
      f(ud, res);
    }
  }

  // Whether this kernel has futex waits on io_uring (and io_uring is not
  // disabled: kernel.io_uring_disabled, seccomp, POSIX_IPC_NO_URING set).
  static bool Available();

  // user_data of a cancel's own completion.
  static constexpr uint64_t kCancelTag = 2;

 private:
  struct Cqe {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
  };
  bool Flush();
  void* NextSqe();

  int fd_ = -1;
  void* sq_map_ = nullptr;
  size_t sq_map_size_ = 0;
  void* cq_map_ = nullptr;
  size_t cq_map_size_ = 0;
  void* sqes_map_ = nullptr;
  size_t sqes_map_size_ = 0;
  unsigned* sq_head_ = nullptr;
  unsigned* sq_tail_ = nullptr;
  unsigned sq_mask_ = 0;
  unsigned sq_entries_ = 0;
  unsigned* sq_array_ = nullptr;
  unsigned* cq_head_ = nullptr;
  unsigned* cq_tail_ = nullptr;
  unsigned cq_mask_ = 0;
  Cqe* cqes_ = nullptr;
  void* sqes_ = nullptr;
  unsigned queued_ = 0;  // written to the SQ, not submitted yet
};

}  // namespace pipc
