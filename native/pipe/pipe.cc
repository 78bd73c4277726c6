#include "pipe.h"

#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "../addon.h"
#include "../core/errors.h"
#include "../core/posix.h"
#include "../core/wait.h"

namespace pipc {

namespace {

// How often a FIFO open looks again for the other side while it has no
// event to wait on (a writer that connected but has not written, a reader that
// is blocked in its own open()).
constexpr int64_t kFirstProbeNs = 1000 * 1000;
constexpr int64_t kMaxProbeNs = 10 * 1000 * 1000;

void CloseFd(int& fd) {
  if (fd >= 0) {
    // Linux always releases the descriptor, even when close reports EINTR.
    close(fd);
    fd = -1;
  }
}

int CheckFifo(int fd) {
  struct stat st;
  if (fstat(fd, &st) == -1) return errno;
  return S_ISFIFO(st.st_mode) ? 0 : EINVAL;
}

}  // namespace

FifoOpener::~FifoOpener() { CloseFd(fd); }

int FifoOpener::Attempt(int64_t wait_ns) {
  if (write) {
    // O_NONBLOCK: fails with ENXIO while nobody has the FIFO open for
    // reading, instead of sleeping in the kernel where nothing can cancel it.
    int f = RetryEintr([&] {
      return open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    });
    if (f == -1) return errno == ENXIO ? EAGAIN : errno;
    int r = CheckFifo(f);
    if (r != 0) {
      CloseFd(f);
      syscall = "fstat";
      return r;
    }
    fd = f;
    return 0;
  }
  if (fd < 0) {
    // A non-blocking read open succeeds at once, with or without a writer;
    // a read on it with no writer yet would report end of file. So it is
    // only the means to wait: success means a writer has shown up.
    fd = RetryEintr([&] {
      return open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    });
    if (fd == -1) return errno;
    int r = CheckFifo(fd);
    if (r != 0) {
      CloseFd(fd);
      syscall = "fstat";
      return r;
    }
  }
  int queued = 0;
  if (ioctl(fd, FIONREAD, &queued) == 0 && queued > 0) return 0;
  // With nothing queued, a non-blocking read tells a connected writer (EAGAIN)
  // from no writer (0, end of file). Data that slipped in meanwhile is kept
  // as the first byte of the stream.
  unsigned char byte;
  ssize_t n = RetryEintr([&] { return read(fd, &byte, 1); });
  if (n == 1) {
    prefix = byte;
    return 0;
  }
  if (n == -1) {
    if (errno == EAGAIN) return 0;
    syscall = "read";
    return errno;
  }
  if (wait_ns > 0) {
    // Data, or a writer that came and went (POLLHUP is reported only once a
    // writer has been seen since this open), ends the wait at once.
    pollfd p = {fd, POLLIN, 0};
    timespec ts = NsToTimespec(wait_ns);
    int r = ppoll(&p, 1, &ts, nullptr);
    if (r > 0 && (p.revents & (POLLIN | POLLHUP)) != 0) return 0;
    if (r == -1 && errno != EINTR) {
      syscall = "poll";
      return errno;
    }
  }
  return EAGAIN;
}

namespace {

class FifoOpenJob : public WaitJob {
 public:
  explicit FifoOpenJob(FifoOpener opener) : o_(std::move(opener)) {}

  int WaitUntil(int64_t until_ns) override {
    int64_t step = kFirstProbeNs;
    for (;;) {
      int64_t now = MonotonicNs();
      int64_t wait = std::min(step, std::max<int64_t>(until_ns - now, 0));
      int r = o_.Attempt(o_.write ? 0 : wait);
      if (r == 0) return 0;
      const bool interrupted = r == EAGAIN && cancelled.load();
      if (r != EAGAIN || interrupted || MonotonicNs() >= until_ns) {
        // Between slices (and after a cancel) no descriptor is held, so an
        // abandoned wait leaves nothing behind whoever drops the token.
        CloseFd(o_.fd);
        return interrupted ? EINTR : r == EAGAIN ? ETIMEDOUT : r;
      }
      if (o_.write) {
        timespec ts = NsToTimespec(wait);
        nanosleep(&ts, nullptr);
      }
      step = std::min(step * 2, kMaxProbeNs);
    }
  }

  void Undo() override {
    CloseFd(o_.fd);
    o_.prefix = -1;
  }

  void Deliver(Napi::Env env, Napi::Function callback, int r) override {
    if (r == 0) {
      int fd = o_.fd, prefix = o_.prefix;
      o_.Release();
      callback.Call({env.Null(), Napi::Number::New(env, fd),
                     Napi::Number::New(env, prefix)});
      return;
    }
    CloseFd(o_.fd);
    if (r == ETIMEDOUT) {
      callback.Call({env.Null(), Napi::Number::New(env, -1),
                     Napi::Number::New(env, -1)});
      return;
    }
    callback.Call({MakeIPCError(env, r, o_.syscall, o_.path).Value(),
                   Napi::Number::New(env, -1), Napi::Number::New(env, -1)});
  }

 private:
  FifoOpener o_;
};

// socketpair() -> [fd, fd]: a duplex, connected AF_UNIX stream pair. Both ends
// stay blocking: whichever end goes to a child process must look like an
// ordinary descriptor there (libuv makes ours non-blocking when it adopts it).
// socketpair(sndbuf): each end's SO_SNDBUF asks for sndbuf bytes (the kernel
// doubles it and caps it at net.core.wmem_max; best effort, never an error).
// The bytes in flight on an AF_UNIX stream are bounded by the sender's
// SO_SNDBUF alone, and a blocked sender is woken once it is 3/4 drained: a
// larger one lets many frames go out per wake-up instead of two or three.
Napi::Value PipeSocketpair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
    ThrowIPCError(env, errno, "socketpair", "");
  }
  if (info.Length() > 0 && info[0].IsNumber()) {
    int64_t want = info[0].As<Napi::Number>().Int64Value();
    if (want > 0) {
      int v = want > (1 << 30) ? (1 << 30) : static_cast<int>(want);
      setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
      setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
    }
  }
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::Number::New(env, sv[0]));
  a.Set(1u, Napi::Number::New(env, sv[1]));
  return a;
}

// pipe() -> [readFd, writeFd]
Napi::Value PipePipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int p[2];
  if (pipe2(p, O_CLOEXEC) == -1) ThrowIPCError(env, errno, "pipe", "");
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::Number::New(env, p[0]));
  a.Set(1u, Napi::Number::New(env, p[1]));
  return a;
}

// mkfifo(path, mode)
Napi::Value PipeMkfifo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  mode_t mode = static_cast<mode_t>(info[1].As<Napi::Number>().Uint32Value());
  if (mkfifo(path.c_str(), mode) == -1) ThrowIPCError(env, errno, "mkfifo", path);
  return env.Undefined();
}

// fdInfo(fd) -> { kind: 'socket' | 'fifo' | 'other', access: 0 | 1 | 2 }
// access is O_ACCMODE: 0 read-only, 1 write-only, 2 read-write.
Napi::Value PipeFdInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct stat st;
  if (fstat(fd, &st) == -1) ThrowIPCError(env, errno, "fstat", "");
  int flags = fcntl(fd, F_GETFL);
  if (flags == -1) ThrowIPCError(env, errno, "fcntl", "");
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", S_ISSOCK(st.st_mode)   ? "socket"
                : S_ISFIFO(st.st_mode) ? "fifo"
                                       : "other");
  o.Set("access", Napi::Number::New(env, flags & O_ACCMODE));
  return o;
}

// pollIn(fd, timeoutMs) -> boolean: readable (data, end of file or error)
// within timeoutMs (0: now; < 0: no limit). Blocks the calling thread.
// writev(fd, a, b?) -> bytes written now (0 if the descriptor is full), or
// -errno. The fast path of Connection's writes: with nothing queued in Node's
// stream, header and payload go to the (non-blocking) descriptor in one
// system call, without a write request, a callback or an event-loop turn.
// A socket is written with MSG_NOSIGNAL (no SIGPIPE); a pipe with writev
// (Node ignores SIGPIPE). The caller hands whatever is left to the stream.
Napi::Value PipeWritev(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct iovec iov[2];
  int n = 0;
  for (size_t i = 1; i < 3 && i < info.Length(); i++) {
    if (!info[i].IsTypedArray()) continue;
    Napi::Uint8Array a = info[i].As<Napi::Uint8Array>();
    if (a.ByteLength() == 0) continue;
    iov[n].iov_base = a.Data();
    iov[n].iov_len = a.ByteLength();
    n++;
  }
  if (n == 0) return Napi::Number::New(env, 0);
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = iov;
  msg.msg_iovlen = n;
  ssize_t r;
  do {
    r = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (r == -1 && errno == EINTR);
  if (r == -1 && errno == ENOTSOCK) {
    do {
      r = writev(fd, iov, n);
    } while (r == -1 && errno == EINTR);
  }
  if (r == -1) return Napi::Number::New(env, errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno);
  return Napi::Number::New(env, static_cast<double>(r));
}

Napi::Value PipePollIn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  double timeout = info[1].As<Napi::Number>().DoubleValue();
  int64_t deadline =
      timeout < 0 ? -1 : MonotonicNs() + static_cast<int64_t>(timeout * 1e6);
  for (;;) {
    pollfd p = {fd, POLLIN, 0};
    timespec ts;
    timespec* tsp = nullptr;
    if (deadline >= 0) {
      ts = NsToTimespec(std::max<int64_t>(deadline - MonotonicNs(), 0));
      tsp = &ts;
    }
    int r = ppoll(&p, 1, tsp, nullptr);
    if (r == -1) {
      if (errno == EINTR) continue;
      ThrowIPCError(env, errno, "poll", "");
    }
    if (r > 0 && (p.revents & POLLNVAL)) ThrowIPCError(env, EBADF, "poll", "");
    return Napi::Boolean::New(env, r > 0);
  }
}

// fifoOpen(path, write, timeoutMs, cb) -> { fd, prefix } when the other side
// is already there, else { token } and later cb(err, fd, prefix), fd -1 on
// timeout. The first attempt runs here, on the JS thread, without waiting.
Napi::Value PipeFifoOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FifoOpener o;
  o.path = info[0].As<Napi::String>().Utf8Value();
  o.write = info[1].ToBoolean();
  double timeout = info[2].As<Napi::Number>().DoubleValue();
  int r = o.Attempt(0);
  if (r == 0) {
    Napi::Object res = Napi::Object::New(env);
    res.Set("fd", Napi::Number::New(env, o.fd));
    res.Set("prefix", Napi::Number::New(env, o.prefix));
    o.Release();
    return res;
  }
  if (r != EAGAIN) ThrowIPCError(env, r, o.syscall, o.path);
  CloseFd(o.fd);
  auto job = std::make_shared<FifoOpenJob>(std::move(o));
  if (timeout >= 0) {
    job->deadline_ns = MonotonicNs() + static_cast<int64_t>(timeout * 1e6);
  }
  AddonData::Get(env)->engine->Submit(env, job, info[3].As<Napi::Function>());
  Napi::Object res = Napi::Object::New(env);
  res.Set("token", JobToken(env, job));
  return res;
}

// An AF_UNIX address from a path, or from a Linux abstract name (leading NUL,
// shown as "@name" in errors). Throws ENAMETOOLONG (for `syscall`) when it
// does not fit sun_path.
struct UnixAddress {
  sockaddr_un addr = {};
  socklen_t len = 0;
  bool abstract = false;
  std::string shown;

  UnixAddress(Napi::Env env, const std::string& path, const char* syscall) {
    abstract = !path.empty() && path[0] == '\0';
    shown = abstract ? "@" + path.substr(1) : path;
    addr.sun_family = AF_UNIX;
    size_t room = sizeof(addr.sun_path) - (abstract ? 0 : 1);
    if (path.empty() || path.size() > room) {
      ThrowIPCError(env, ENAMETOOLONG, syscall, shown);
    }
    memcpy(addr.sun_path, path.data(), path.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) +
                                 path.size() + (abstract ? 0 : 1));
  }
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&addr); }
};

// unixListen(address, backlog, mode) -> fd of a listening AF_UNIX stream
// socket. An address starting with NUL is a Linux abstract name (no file).
Napi::Value PipeUnixListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int backlog = info[1].As<Napi::Number>().Int32Value();
  mode_t mode = static_cast<mode_t>(info[2].As<Napi::Number>().Uint32Value());
  UnixAddress a(env, path, "bind");
  const bool abstract = a.abstract;
  const std::string& shown = a.shown;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1) ThrowIPCError(env, errno, "socket", shown);
  // Linux gives the socket file the mode of the socket's inode (less the
  // umask) at bind(): setting it first means the file never exists with
  // looser permissions, not even for an instant.
  if (!abstract && fchmod(fd, mode) == -1) {
    int e = errno;
    CloseFd(fd);
    ThrowIPCError(env, e, "fchmod", shown);
  }
  if (bind(fd, a.sa(), a.len) == -1) {
    int e = errno;
    CloseFd(fd);
    ThrowIPCError(env, e, "bind", shown);
  }
  if (listen(fd, backlog) == -1) {
    int e = errno;
    CloseFd(fd);
    if (!abstract) unlink(path.c_str());
    ThrowIPCError(env, e, "listen", shown);
  }
  return Napi::Number::New(env, fd);
}

// unixConnect(address) -> fd of a connected AF_UNIX stream socket, or -1
// when the listener's queue is full (a non-blocking AF_UNIX connect cannot be
// waited for: the caller tries again). Node's own connect cannot reach Linux
// abstract names, hence this.
Napi::Value PipeUnixConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  UnixAddress a(env, path, "connect");
  const std::string& shown = a.shown;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd == -1) ThrowIPCError(env, errno, "socket", shown);
  int r = RetryEintr(
      [&] { return connect(fd, a.sa(), a.len); });
  if (r == -1) {
    int e = errno;
    CloseFd(fd);
    if (e == EAGAIN) return Napi::Number::New(env, -1);
    ThrowIPCError(env, e, "connect", shown);
  }
  return Napi::Number::New(env, fd);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

// prefault(buf): maps in, writable, the whole pages inside buf's bytes, in one
// system call (MADV_POPULATE_WRITE) instead of one page fault per 4 KiB page
// as the bytes arrive: a buffer of several MiB just taken from the OS costs
// several times more in faults than in copying (a paravirtualized VM here:
// 15 ms vs 4 ms per 4 MiB). Contents are untouched. Best effort: older
// kernels (EINVAL) leave the pages to fault in as usual.
Napi::Value PipePrefault(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array b = info[0].As<Napi::Uint8Array>();
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uintptr_t start = reinterpret_cast<uintptr_t>(b.Data());
  uintptr_t first = (start + page - 1) & ~(page - 1);
  uintptr_t end = (start + b.ByteLength()) & ~(page - 1);
  if (end > first) {
    madvise(reinterpret_cast<void*>(first), end - first, MADV_POPULATE_WRITE);
  }
  return env.Undefined();
}

// The descriptors Connections own that libuv does not drive yet (an end not
// used so far in this thread) are AddonData::owned_fds, closed at teardown.

// fdOwn(fd): a Connection took ownership of fd.
Napi::Value PipeFdOwn(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  AddonData::Get(info.Env())->owned_fds.insert(fd);
  return info.Env().Undefined();
}

// fdRelease(fd): libuv drives fd from now on (and will close it).
Napi::Value PipeFdRelease(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  AddonData::Get(info.Env())->owned_fds.erase(fd);
  return info.Env().Undefined();
}

// fdClose(fd): closes an owned descriptor that libuv never drove.
Napi::Value PipeFdClose(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (AddonData::Get(info.Env())->owned_fds.erase(fd) != 0) CloseFd(fd);
  return info.Env().Undefined();
}

}  // namespace

void InitPipe(Napi::Env env, Napi::Object exports) {
  exports.Set("pipeSocketpair", Napi::Function::New(env, PipeSocketpair));
  exports.Set("pipePipe", Napi::Function::New(env, PipePipe));
  exports.Set("pipeMkfifo", Napi::Function::New(env, PipeMkfifo));
  exports.Set("pipeFdInfo", Napi::Function::New(env, PipeFdInfo));
  exports.Set("pipePollIn", Napi::Function::New(env, PipePollIn));
  exports.Set("pipeWritev", Napi::Function::New(env, PipeWritev));
  exports.Set("pipeFifoOpen", Napi::Function::New(env, PipeFifoOpen));
  exports.Set("pipeUnixListen", Napi::Function::New(env, PipeUnixListen));
  exports.Set("pipeUnixConnect", Napi::Function::New(env, PipeUnixConnect));
  exports.Set("pipePrefault", Napi::Function::New(env, PipePrefault));
  exports.Set("pipeFdOwn", Napi::Function::New(env, PipeFdOwn));
  exports.Set("pipeFdRelease", Napi::Function::New(env, PipeFdRelease));
  exports.Set("pipeFdClose", Napi::Function::New(env, PipeFdClose));
}

}  // namespace pipc
