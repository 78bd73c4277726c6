// Pipes, FIFOs and AF_UNIX listening sockets: what Node itself lacks. The byte
// streams themselves are driven by libuv (net.Socket over the descriptor).
#pragma once

#include <stdint.h>

#include <string>
#include <utility>

namespace pipc {

// Non-blocking attempt at opening a FIFO, napi-free. For writing: succeeds once
// a reader exists (ENXIO until then). For reading: `fd` is opened O_NONBLOCK
// on the first call and kept; the attempt succeeds once a writer has
// connected (it wrote, is connected, or came and went).
struct FifoOpener {
  std::string path;
  bool write = false;
  int fd = -1;       // owned until handed over
  int prefix = -1;   // a byte read while probing for a writer, or -1
  FifoOpener() = default;
  FifoOpener(FifoOpener&& o) noexcept
      : path(std::move(o.path)), write(o.write), fd(o.fd), prefix(o.prefix),
        syscall(o.syscall) {
    o.Release();
  }
  FifoOpener(const FifoOpener&) = delete;
  FifoOpener& operator=(const FifoOpener&) = delete;
  ~FifoOpener();
  // 0: opened; EAGAIN: the other side is not there yet; else an errno.
  // Reading waits in poll() for up to wait_ns while probing.
  int Attempt(int64_t wait_ns);
  // Gives up ownership of the descriptor (and the probed byte).
  void Release() { fd = -1; prefix = -1; }
  const char* syscall = "open";
};

}  // namespace pipc
