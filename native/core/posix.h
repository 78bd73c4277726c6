// napi-free POSIX helpers shared by the families. Each returns 0 (or a value)
// on success and -errno on failure, and retries EINTR where a retry is safe.
#pragma once

#include <errno.h>
#include <stdint.h>
#include <time.h>

namespace pipc {

constexpr int64_t kNsPerSec = 1000000000LL;

inline int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * kNsPerSec + ts.tv_nsec;
}

inline timespec NsToTimespec(int64_t ns) {
  timespec ts;
  ts.tv_sec = static_cast<time_t>(ns / kNsPerSec);
  ts.tv_nsec = static_cast<long>(ns % kNsPerSec);
  return ts;
}

// A hint to the CPU inside a spin loop (x86 PAUSE, Arm YIELD): lets a sibling
// hyperthread run and saves power; a compiler barrier where there is none.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ __volatile__("yield" ::: "memory");
#else
  __asm__ __volatile__("" ::: "memory");
#endif
}

// Retries a call returning -1/errno while it fails with EINTR.
template <typename F>
inline auto RetryEintr(F f) -> decltype(f()) {
  decltype(f()) r;
  do {
    r = f();
  } while (r == -1 && errno == EINTR);
  return r;
}

}  // namespace pipc
