#include "segment.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

#include "../addon.h"
#include "../core/errors.h"
#include "../core/posix.h"
#include "../core/safe-open.h"
#include "../core/shared-words.h"
#include "../core/wait.h"

namespace pipc {
namespace segment {

namespace {

inline int32_t Load(const int32_t* p) {
  return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

long Futex(int32_t* addr, int op, int32_t val, const timespec* ts,
           uint32_t bitset) {
  return syscall(SYS_futex, addr, op, val, ts, nullptr, bitset);
}

inline off_t SlotOffset(int32_t id) {
  return static_cast<off_t>(kHeaderBytes +
                            kSlotBytes * static_cast<size_t>(id - 1));
}

const char* KindName(int32_t k) {
  switch (k) {
    case kEvent:
      return "an Event";
    case kBarrier:
      return "a Barrier";
    case kCondition:
      return "a Condition";
    case kJoinable:
      return "a JoinableQueue counter";
    default:
      return "an unknown kind";
  }
}

}  // namespace

Seg::~Seg() {
  if (fd >= 0) close(fd);
  if (m != nullptr) munmap(m, kSegmentBytes);
}

void Seg::Close() {
  if (closed.exchange(true)) return;
  // The kernel drops an OFD lock only with the last reference to the open
  // file description, and the mapping is one: it stays until the last
  // reference here (a wait still asleep, the ArrayBuffer until collected)
  // lets go. So the slot is given up explicitly, then the descriptor closed.
  if (fd >= 0) {
    if (slot > 0) {
      struct flock fl = {};
      fl.l_type = F_UNLCK;
      fl.l_whence = SEEK_SET;
      fl.l_start = SlotOffset(slot);
      fl.l_len = 1;
      fcntl(fd, F_OFD_SETLK, &fl);
    }
    close(fd);
  }
  fd = -1;
}

namespace {

struct OpenResult {
  int err = 0;
  const char* syscall = "open";
  std::string why;
  bool created = false;
};

}  // namespace

int ClaimOfdSlot(int fd, size_t header_bytes, size_t slot_bytes, int32_t count,
                 int32_t* slot) {
  int32_t id = shared::ClaimSlot(fd, count, [&](int32_t i) {
    return static_cast<off_t>(header_bytes + slot_bytes * static_cast<size_t>(i - 1));
  });
  if (id < 0) return -id;
  *slot = id;
  return 0;
}

namespace {

// A new segment's header: the kind's words, then the magic last.
void InitHeader(int32_t* m, int32_t kind,
                const std::vector<std::pair<int32_t, int32_t>>& init) {
  m[kVersion] = kLayoutVersion;
  m[kKind] = kind;
  m[kSlots] = kSlotCount;
  m[kSlotBase] = static_cast<int32_t>(kHeaderBytes);
  for (const auto& [word, value] : init) {
    if (word >= kFirstKindWord && word < static_cast<int32_t>(kHeaderBytes / 4))
      m[word] = value;
  }
  m[kMagic] = kMagicValue;
}

std::shared_ptr<Seg> OpenSeg(
    const std::string& name, const std::string& path, int32_t kind, bool create,
    bool exclusive, mode_t mode, const OwnerPolicy& owner,
    const std::vector<std::pair<int32_t, int32_t>>& init, OpenResult* r) {
  auto s = std::make_shared<Seg>();
  s->name = name;
  bool created = false;
  int fd = OpenOrCreateShmFile(
      path.c_str(), create, exclusive, mode, kSegmentBytes,
      [&](void* p) { InitHeader(static_cast<int32_t*>(p), kind, init); }, &created, &r->syscall);
  if (fd < 0) {
    r->err = -fd;
    if (fd == -ELOOP) r->why = "is a symbolic link (never followed)";
    return nullptr;
  }
  s->fd = fd;
  r->created = created;
  struct stat st;
  int e = CheckShmFile(s->fd, created ? OwnerPolicy{true, 0} : owner, 0, &st,
                       &r->why);
  if (e < 0) {
    r->err = -e;
    r->syscall = "fstat";
    return nullptr;
  }
  if (st.st_size != static_cast<off_t>(kSegmentBytes)) {
    r->err = EINVAL;
    r->syscall = "fstat";
    r->why = "is a " + std::to_string(st.st_size) + "-byte file, not a " +
             std::to_string(kSegmentBytes) + "-byte posix-ipc segment";
    return nullptr;
  }
  void* p = mmap(nullptr, kSegmentBytes, PROT_READ | PROT_WRITE, MAP_SHARED,
                 s->fd, 0);
  if (p == MAP_FAILED) {
    r->err = errno;
    r->syscall = "mmap";
    return nullptr;
  }
  s->m = static_cast<int32_t*>(p);
  if (Load(s->m + kMagic) != kMagicValue || s->m[kVersion] != kLayoutVersion ||
      s->m[kSlots] != kSlotCount ||
      s->m[kSlotBase] != static_cast<int32_t>(kHeaderBytes)) {
    r->err = EINVAL;
    r->syscall = "mmap";
    r->why = "has no posix-ipc synchronisation header";
    return nullptr;
  }
  if (s->m[kKind] != kind) {
    r->err = EINVAL;
    r->syscall = "mmap";
    r->why =
        std::string("is ") + KindName(s->m[kKind]) + ", not " + KindName(kind);
    return nullptr;
  }
  e = ClaimOfdSlot(s->fd, kHeaderBytes, kSlotBytes, kSlotCount, &s->slot);
  if (e != 0) {
    r->err = e;
    r->syscall = "fcntl";
    if (e == ENOSPC)
      r->why = "has no free slot (" + std::to_string(kSlotCount) +
               " handles are open)";
    return nullptr;
  }
  return s;
}

// Environment teardown (a worker ending) gives the slot up even if the
// handle was never closed nor collected.
struct Hook {
  SegmentPtr seg;
  bool hooked = true;
};

void OnTeardown(void* arg) {
  auto* h = static_cast<Hook*>(arg);
  h->hooked = false;
  h->seg->Close();
}

void FinalizeHandle(napi_env env, void* data, void*) {
  auto* holder = static_cast<SegmentPtr*>(data);
  auto* hook = static_cast<Hook*>((*holder)->teardown);
  (*holder)->Close();
  if (hook != nullptr) {
    if (hook->hooked) napi_remove_env_cleanup_hook(env, OnTeardown, hook);
    delete hook;
  }
  delete holder;
}

void FinalizeBuffer(napi_env, void*, void* hint) {
  delete static_cast<SegmentPtr*>(hint);
}

// segOpen(name, path, kind, create, exclusive, mode, owner, init[])
//   -> [handle, ArrayBuffer, slot, created]. init: flat (word, value) pairs
//   written into a new segment's header.
Napi::Value SegOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  std::string path = info[1].As<Napi::String>().Utf8Value();
  int32_t kind = info[2].As<Napi::Number>().Int32Value();
  bool create = info[3].ToBoolean();
  bool exclusive = info[4].ToBoolean();
  mode_t mode = static_cast<mode_t>(info[5].As<Napi::Number>().Uint32Value());
  OwnerPolicy owner =
      OwnerPolicy::FromJs(info[6].As<Napi::Number>().DoubleValue());
  std::vector<std::pair<int32_t, int32_t>> init;
  Napi::Array a = info[7].As<Napi::Array>();
  for (uint32_t i = 0; i + 1 < a.Length(); i += 2) {
    init.emplace_back(a.Get(i).As<Napi::Number>().Int32Value(),
                      a.Get(i + 1).As<Napi::Number>().Int32Value());
  }
  OpenResult r;
  SegmentPtr seg =
      OpenSeg(name, path, kind, create, exclusive, mode, owner, init, &r);
  if (!seg)
    ThrowIPCError(env, r.err, r.syscall, name,
                  r.why.empty() ? "" : "'" + path + "' " + r.why);
  auto* hook = new Hook{seg};
  seg->teardown = hook;
  napi_add_env_cleanup_hook(env, OnTeardown, hook);
  Napi::Value ext =
      Wrap(env, new SegmentPtr(seg), FinalizeHandle, [](SegmentPtr* p) {
        (*p)->Close();
        delete p;
      });
  napi_value ab;
  auto* keep = new SegmentPtr(seg);
  if (napi_create_external_arraybuffer(env, seg->m, kSegmentBytes,
                                       FinalizeBuffer, keep, &ab) != napi_ok) {
    delete keep;
    throw Napi::Error::New(env, "cannot map segment");
  }
  Napi::Array out = Napi::Array::New(env, 4);
  out.Set(0u, ext);
  out.Set(1u, Napi::Value(env, ab));
  out.Set(2u, Napi::Number::New(env, seg->slot));
  out.Set(3u, Napi::Boolean::New(env, r.created));
  return out;
}

int32_t WordArg(const Napi::Value& v) {
  int32_t w = v.As<Napi::Number>().Int32Value();
  if (w < 0 || w >= static_cast<int32_t>(kSegmentBytes / 4)) {
    throw Napi::RangeError::New(v.Env(), "word index out of the segment");
  }
  return w;
}

// segAlive(h, slot) -> false only when the kernel says nobody holds the slot's
// lock.
Napi::Value SegAlive(const Napi::CallbackInfo& info) {
  Seg* s = UnwrapOpen<SegmentPtr>(info[0], "fcntl").get();
  int32_t id = info[1].As<Napi::Number>().Int32Value();
  if (id < 1 || id > kSlotCount) return Napi::Boolean::New(info.Env(), false);
  if (id == s->slot) return Napi::Boolean::New(info.Env(), true);
  struct flock fl = {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = SlotOffset(id);
  fl.l_len = 1;
  if (fcntl(s->fd, F_OFD_GETLK, &fl) == -1)
    return Napi::Boolean::New(info.Env(), true);
  return Napi::Boolean::New(info.Env(), fl.l_type != F_UNLCK);
}

// segWake(h, word, n) -> how many sleepers were woken.
Napi::Value SegWake(const Napi::CallbackInfo& info) {
  Seg* s = UnwrapOpen<SegmentPtr>(info[0], "futex").get();
  int32_t w = WordArg(info[1]);
  int32_t n = info[2].As<Napi::Number>().Int32Value();
  long r = Futex(s->m + w, FUTEX_WAKE, n <= 0 ? INT_MAX : n, nullptr, 0);
  return Napi::Number::New(info.Env(), r < 0 ? 0 : static_cast<double>(r));
}

// Sleeps while word == expected, until until_ns (absolute monotonic, -1:
// forever). 0: woken or the word differs (also spuriously); ETIMEDOUT; EINTR.
int SleepOn(int32_t* word, int32_t expected, int64_t until_ns) {
  if (Load(word) != expected) return 0;
  timespec ts;
  const timespec* tp = nullptr;
  if (until_ns >= 0) {
    ts = NsToTimespec(until_ns);
    tp = &ts;
  }
  long r = Futex(word, FUTEX_WAIT_BITSET, expected, tp, FUTEX_BITSET_MATCH_ANY);
  if (r == 0) return 0;
  if (errno == EAGAIN) return 0;
  if (errno == ETIMEDOUT) return ETIMEDOUT;
  if (errno == EINTR) return EINTR;
  return errno;
}

// segWaitSync(h, word, expected, timeoutMs) -> true woken (or the word
// already differs), false timed out.
Napi::Value SegWaitSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SegmentPtr seg = UnwrapOpen<SegmentPtr>(info[0], "futex");
  int32_t w = WordArg(info[1]);
  int32_t expected = info[2].As<Napi::Number>().Int32Value();
  double timeout = info[3].As<Napi::Number>().DoubleValue();
  int64_t deadline =
      timeout < 0 ? -1 : MonotonicNs() + static_cast<int64_t>(timeout * 1e6);
  for (;;) {
    int r = SleepOn(seg->m + w, expected, deadline);
    if (r == 0) return Napi::Boolean::New(env, true);
    if (r == ETIMEDOUT) return Napi::Boolean::New(env, false);
    if (r != EINTR) ThrowIPCError(env, r, "futex", seg->name);
  }
}

class WordWaitJob : public WaitJob {
 public:
  WordWaitJob(SegmentPtr seg, int32_t word, int32_t expected)
      : s_(std::move(seg)), word_(word), expected_(expected) {}
  int WaitUntil(int64_t until_ns) override {
    if (s_->closed.load()) return EBADF;
    return SleepOn(s_->m + word_, expected_, until_ns);
  }

 private:
  SegmentPtr s_;
  int32_t word_;
  int32_t expected_;
};

// segWaitAsync(h, word, expected, timeoutMs, cb) -> token; cb(err, woken).
Napi::Value SegWaitAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SegmentPtr seg = UnwrapOpen<SegmentPtr>(info[0], "futex");
  int32_t w = WordArg(info[1]);
  int32_t expected = info[2].As<Napi::Number>().Int32Value();
  double timeout = info[3].As<Napi::Number>().DoubleValue();
  auto job = std::make_shared<WordWaitJob>(seg, w, expected);
  if (timeout >= 0)
    job->deadline_ns = MonotonicNs() + static_cast<int64_t>(timeout * 1e6);
  AddonData::Get(env)->engine->Submit(env, job, info[4].As<Napi::Function>());
  return JobToken(env, job);
}

// segClose(h, view): detaches the view and gives the slot up. Idempotent.
Napi::Value SegClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Seg* s = Unwrap<SegmentPtr>(info[0]).get();
  if (info.Length() > 1 && info[1].IsArrayBuffer())
    napi_detach_arraybuffer(env, info[1]);
  s->Close();
  return env.Undefined();
}

}  // namespace
}  // namespace segment

void InitSegment(Napi::Env env, Napi::Object exports) {
  using namespace segment;
  exports.Set("segOpen", Napi::Function::New(env, SegOpen));
  exports.Set("segAlive", Napi::Function::New(env, SegAlive));
  exports.Set("segWake", Napi::Function::New(env, SegWake));
  exports.Set("segWaitSync", Napi::Function::New(env, SegWaitSync));
  exports.Set("segWaitAsync", Napi::Function::New(env, SegWaitAsync));
  exports.Set("segClose", Napi::Function::New(env, SegClose));
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("segmentBytes",
             Napi::Number::New(env, static_cast<double>(kSegmentBytes)));
  layout.Set("headerBytes",
             Napi::Number::New(env, static_cast<double>(kHeaderBytes)));
  layout.Set("slotBytes",
             Napi::Number::New(env, static_cast<double>(kSlotBytes)));
  layout.Set("slots", Napi::Number::New(env, kSlotCount));
  exports.Set("SEGMENT_LAYOUT", layout);
}

}  // namespace pipc
