#include "ring.h"

#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "../addon.h"
#include "../core/args.h"
#include "../core/errors.h"
#include "../core/posix.h"
#include "../core/safe-open.h"
#include "../core/shared-words.h"
#include "../core/wait.h"

namespace pipc {
namespace ring {

namespace {

using shared::Add;
using shared::Cas;
using shared::Futex;
using shared::Load;
using shared::Store;

// The level checks of a waiter run at least this often, so a wake-up handed
// to a waiter that then did not take the item delays the others by at most
// this much (the wait engine's slices make it 50 ms in practice).
constexpr int64_t kRecheckNs = 250LL * 1000 * 1000;

inline off_t SlotOffset(int32_t id) {
  return static_cast<off_t>(kHeaderBytes + kSlotBytes * static_cast<size_t>(id - 1));
}
inline int32_t* SlotRec(Ring* r, int32_t id) { return r->m + SlotOffset(id) / 4; }
inline uint32_t Align8(uint32_t n) { return (n + 7u) & ~7u; }
inline uint32_t U(int32_t v) { return static_cast<uint32_t>(v); }

constexpr const char* kBadState =
    "the queue segment is corrupt: its head, tail, used or count word is out of range (another "
    "process wrote on it); nothing was taken or put";
constexpr const char* kBadRecord =
    "the queue segment is corrupt: the next record's length runs past the ring or past what is "
    "in use; it is refused and nothing is delivered";

// Outcomes (negative: an errno).
constexpr int kDone = 1;
constexpr int kNoRoom = 0;   // put: full of items or of bytes
constexpr int kNoItem = -1;  // get: empty (never an errno: errnos are < -1 here)
// A scribbled segment: EPROTO (a peer broke the protocol), with Ring::why.
constexpr int kCorrupt = -EPROTO;

// --- the internal lock and its journal --------------------------------------

void Rollback(Ring* r) {
  int32_t* m = r->m;
  if (Load(m + kJournal) == 0) return;
  Store(m + kHead, m[kJHead]);
  Store(m + kTail, m[kJTail]);
  Store(m + kUsed, m[kJUsed]);
  Store(m + kCount, m[kJCount]);
  Store(m + kJournal, 0);
}

void Begin(Ring* r) {
  int32_t* m = r->m;
  m[kJHead] = m[kHead];
  m[kJTail] = m[kTail];
  m[kJUsed] = m[kUsed];
  m[kJCount] = m[kCount];
  Store(m + kJournal, 1);
}

void End(Ring* r) { Store(r->m + kJournal, 0); }

void Unlock(Ring* r) {
  Store(r->m + kLock, 0);
  if (Load(r->m + kLockWaiters) > 0) Futex(r->m + kLock, FUTEX_WAKE, 1, nullptr, 0);
}

// Takes the internal lock. It is held for one record's copy, so contenders
// spin, then yield, then sleep on the lock word; a holder whose slot is dead
// (its OFD lock gone: killed at any instant) is taken over and its half-done
// change rolled back from the journal.
void Lock(Ring* r) {
  int32_t* l = r->m + kLock;
  for (int i = 0;; i++) {
    int32_t cur = 0;
    if (Cas(l, &cur, r->slot)) return;
    if (i < 100) {
      cpu_relax();
      continue;
    }
    if (i % 8 == 0 && (cur < 1 || cur > kSlotCount || cur == r->slot ||
                       !shared::SlotAlive(r->fd, SlotOffset(cur)))) {
      // cur == our slot: a previous owner of our slot died holding it (we
      // never hold it across calls). Out of range: scribbled; take it too.
      int32_t expected = cur;
      if (Cas(l, &expected, r->slot)) {
        Rollback(r);
        return;
      }
      continue;
    }
    if (i < 200) {
      sched_yield();
    } else {
      Add(r->m + kLockWaiters, 1);
      timespec ts = {0, 1000 * 1000};
      Futex(l, FUTEX_WAIT, cur, &ts, 0);
      Add(r->m + kLockWaiters, -1);
    }
  }
}

// Under the lock: the state words make sense (another process may have
// scribbled on the segment).
bool StateValid(Ring* r) {
  const int32_t* m = r->m;
  uint32_t head = U(m[kHead]), tail = U(m[kTail]), used = U(m[kUsed]);
  int32_t count = m[kCount];
  return head < r->cap && tail < r->cap && used <= r->cap && (head & 7u) == 0 &&
         (tail & 7u) == 0 && count >= 0 && static_cast<uint32_t>(count) <= used / kRecordHeader;
}

// Where a record of `need` bytes goes: its offset, or -1 without room;
// *wrap when the rest of the ring from tail is skipped first.
int64_t Place(uint32_t cap, uint32_t head, uint32_t tail, uint32_t used, uint32_t need,
              bool* wrap) {
  *wrap = false;
  if (used == 0) return need <= cap ? 0 : -1;
  if (tail > head) {
    if (need <= cap - tail) return tail;
    if (need <= head) {
      *wrap = true;
      return 0;
    }
    return -1;
  }
  if (need <= head - tail) return tail;
  return -1;
}

// Lock-free guesses for waiters (the truth is decided under the lock).
bool Readable(Ring* r) { return Load(r->m + kCount) > 0; }
bool Writable(Ring* r) {
  int32_t* m = r->m;
  int32_t max = Load(m + kMaxsize);
  if (max > 0 && Load(m + kCount) >= max) return false;
  bool wrap;
  return Place(r->cap, U(Load(m + kHead)) % r->cap, U(Load(m + kTail)) % r->cap,
               U(Load(m + kUsed)), r->want_need.load(std::memory_order_relaxed), &wrap) >= 0;
}

void WakeOne(Ring* r, int seq_word, int waiters_word) {
  if (Load(r->m + waiters_word) > 0) Futex(r->m + seq_word, FUTEX_WAKE, 1, nullptr, 0);
}

// --- put and get --------------------------------------------------------------

// kDone, kNoRoom, or -errno (EMSGSIZE: larger than the ring can ever hold).
// `fill(dst)` writes the len payload bytes.
template <typename Fill>
int PutWith(Ring* r, uint32_t len, Fill fill) {
  if (len > r->cap - kRecordHeader) return -EMSGSIZE;
  uint32_t need = kRecordHeader + Align8(len);
  int32_t* m = r->m;
  Lock(r);
  if (!StateValid(r)) {
    Unlock(r);
    r->why = kBadState;
    return kCorrupt;
  }
  int32_t max = m[kMaxsize];
  uint32_t head = U(m[kHead]), tail = U(m[kTail]), used = U(m[kUsed]);
  bool wrap = false;
  int64_t pos = (max > 0 && m[kCount] >= max) ? -1 : Place(r->cap, head, tail, used, need, &wrap);
  if (pos < 0) {
    r->want_need.store(need, std::memory_order_relaxed);
    Unlock(r);
    return kNoRoom;
  }
  // The payload goes where no reader looks yet; only the journaled words
  // below make it visible.
  uint8_t* rec = r->data + pos;
  fill(rec + kRecordHeader);
  uint32_t hdr[2] = {len, 0};
  memcpy(rec, hdr, sizeof hdr);
  Begin(r);
  if (used == 0) {
    head = 0;
    Store(m + kHead, 0);
  } else if (wrap) {
    uint32_t marker = kWrapMarker;
    memcpy(r->data + tail, &marker, sizeof marker);
    used += r->cap - tail;
  }
  uint32_t next = static_cast<uint32_t>(pos) + need;
  Store(m + kTail, static_cast<int32_t>(next == r->cap ? 0 : next));
  Store(m + kUsed, static_cast<int32_t>(used + need));
  Store(m + kCount, m[kCount] + 1);
  End(r);
  Add(m + kPutSeq, 1);
  Unlock(r);
  WakeOne(r, kPutSeq, kGetWaiters);
  return kDone;
}

int Put(Ring* r, const void* src, uint32_t len) {
  return PutWith(r, len, [&](uint8_t* dst) {
    if (len > 0) memcpy(dst, src, len);
  });
}

// Copies the oldest item out with `take(src, len)` (which returns false when
// it cannot hold it: nothing is removed, -ENOBUFS), then removes it: a getter
// killed before the removal leaves the item for the others. Returns the
// length, kNoItem, or -errno.
template <typename Take>
int64_t GetWith(Ring* r, Take take) {
  int32_t* m = r->m;
  Lock(r);
  if (!StateValid(r)) {
    Unlock(r);
    r->why = kBadState;
    return kCorrupt;
  }
  if (m[kCount] == 0) {
    Unlock(r);
    return kNoItem;
  }
  uint32_t head = U(m[kHead]), used = U(m[kUsed]);
  uint32_t len;
  memcpy(&len, r->data + head, sizeof len);
  uint32_t skipped = 0;
  if (len == kWrapMarker) {
    skipped = r->cap - head;
    if (skipped >= used) {
      Unlock(r);
      r->why = kBadRecord;
      return kCorrupt;
    }
    head = 0;
    memcpy(&len, r->data, sizeof len);
  }
  // A record that runs past the ring or past what is in use is refused,
  // whatever its length word says.
  if (len > r->cap - kRecordHeader || kRecordHeader + Align8(len) > r->cap - head ||
      kRecordHeader + Align8(len) + skipped > used) {
    Unlock(r);
    r->why = kBadRecord;
    return kCorrupt;
  }
  if (!take(r->data + head + kRecordHeader, len)) {
    Unlock(r);
    return -ENOBUFS;
  }
  uint32_t need = kRecordHeader + Align8(len);
  Begin(r);
  int32_t count = m[kCount] - 1;
  if (count == 0) {
    Store(m + kHead, 0);
    Store(m + kTail, 0);
    Store(m + kUsed, 0);
  } else {
    uint32_t next = head + need;
    Store(m + kHead, static_cast<int32_t>(next == r->cap ? 0 : next));
    Store(m + kUsed, static_cast<int32_t>(used - skipped - need));
  }
  Store(m + kCount, count);
  End(r);
  Add(m + kGetSeq, 1);
  Unlock(r);
  WakeOne(r, kGetSeq, kPutWaiters);
  return len;
}

// Sleeps until `want` looks possible (0), until_ns passes (ETIMEDOUT; -1:
// never), the ring closes (EBADF), *cancel is set (ECANCELED) or a signal
// interrupts (EINTR). The waiter counts itself before it reads the sequence
// word and checks, so a putter or getter that finds no waiter after its change
// needs no system call, and one that finds a waiter wakes exactly one.
int WaitFor(Ring* r, int want, int64_t until_ns, const std::atomic<bool>* cancel) {
  int32_t* m = r->m;
  int seq_word = want == kReadable ? kPutSeq : kGetSeq;
  int waiters_word = want == kReadable ? kGetWaiters : kPutWaiters;
  int32_t* share = SlotRec(r, r->slot) + (want == kReadable ? kSlotGetWaiting : kSlotPutWaiting);
  // The global count first, our slot's share second (and the reverse on the
  // way out): a share never exceeds what its slot added to the count, so
  // taking a dead slot's share back (ClaimShares) never undercounts (see OpenRing).
  auto enter = [&] {
    Add(m + waiters_word, 1);
    Add(share, 1);
  };
  auto leave = [&] {
    Add(share, -1);
    Add(m + waiters_word, -1);
  };
  // Counted before `closed` is read (Close sets it before it reads the count).
  r->sleepers.fetch_add(1);
  struct Out {
    Ring* r;
    ~Out() {
      if (r->sleepers.fetch_sub(1) == 1 && r->closed.load()) r->CloseFd();
    }
  } out{r};
  for (;;) {
    if (r->closed.load()) return EBADF;
    if (cancel != nullptr && cancel->load()) return ECANCELED;
    enter();
    int32_t seq = Load(m + seq_word);
    if (want == kReadable ? Readable(r) : Writable(r)) {
      leave();
      return 0;
    }
    int64_t now = MonotonicNs();
    if (until_ns >= 0 && now >= until_ns) {
      leave();
      return ETIMEDOUT;
    }
    int64_t end = now + kRecheckNs;
    if (until_ns >= 0 && until_ns < end) end = until_ns;
    timespec ts = NsToTimespec(end);
    long rc = Futex(m + seq_word, FUTEX_WAIT_BITSET, seq, &ts, FUTEX_BITSET_MATCH_ANY);
    int e = rc == -1 ? errno : 0;
    leave();
    if (e == EINTR) return EINTR;
  }
}

void PollEnd(Ring* r, int want);

// One turn of WaitFor's loop for a multiplexed wait (WaitJob::Poll): 0 if
// `want` looks possible, EBADF once closed, else EAGAIN with the word to
// sleep on, counted as a waiter (and a sleeper, which keeps the descriptor
// and the slot's shares) until PollEnd.
int PollFor(Ring* r, int want, PollSleep* p) {
  int32_t* m = r->m;
  int seq_word = want == kReadable ? kPutSeq : kGetSeq;
  int waiters_word = want == kReadable ? kGetWaiters : kPutWaiters;
  int32_t* share = SlotRec(r, r->slot) + (want == kReadable ? kSlotGetWaiting : kSlotPutWaiting);
  r->sleepers.fetch_add(1);
  if (r->closed.load()) {
    if (r->sleepers.fetch_sub(1) == 1) r->CloseFd();
    return EBADF;
  }
  Add(m + waiters_word, 1);
  Add(share, 1);
  int32_t seq = Load(m + seq_word);
  if (!(want == kReadable ? Readable(r) : Writable(r))) {
    p->word = m + seq_word;
    p->expected = seq;
    p->shared = true;
    p->recheck_ns = MonotonicNs() + kRecheckNs;
    return EAGAIN;
  }
  PollEnd(r, want);
  return 0;
}

void PollEnd(Ring* r, int want) {
  Add(SlotRec(r, r->slot) + (want == kReadable ? kSlotGetWaiting : kSlotPutWaiting), -1);
  Add(r->m + (want == kReadable ? kGetWaiters : kPutWaiters), -1);
  if (r->sleepers.fetch_sub(1) == 1 && r->closed.load()) r->CloseFd();
}

// --- opening ------------------------------------------------------------------

void InitHeader(int32_t* m, uint32_t cap, int32_t maxsize) {
  m[kVersion] = kLayoutVersion;
  m[kKind] = kKindQueue;
  m[kSlotBase] = static_cast<int32_t>(kHeaderBytes);
  m[kSlots] = kSlotCount;
  m[kSlotSize] = static_cast<int32_t>(kSlotBytes);
  m[kDataOffset] = static_cast<int32_t>(kDataStart);
  m[kCapacity] = static_cast<int32_t>(cap);
  m[kMaxsize] = maxsize;
  Store(m + kMagic, kMagicValue);
}

struct OpenError {
  int err = 0;
  const char* syscall = "open";
  std::string why;
};

// Checks a mapped header; "" when it is one of ours, else what is wrong.
std::string HeaderProblem(const int32_t* m, size_t size) {
  if (Load(m + kMagic) != kMagicValue) return "is not a posix-ipc queue segment (bad magic)";
  if (m[kVersion] != kLayoutVersion) {
    return "has queue layout version " + std::to_string(m[kVersion]) + ", not " +
           std::to_string(kLayoutVersion);
  }
  if (m[kKind] != kKindQueue || m[kSlotBase] != static_cast<int32_t>(kHeaderBytes) ||
      m[kSlots] != kSlotCount || m[kSlotSize] != static_cast<int32_t>(kSlotBytes) ||
      m[kDataOffset] != static_cast<int32_t>(kDataStart)) {
    return "has a corrupt queue header";
  }
  uint32_t cap = U(m[kCapacity]);
  if (cap < kMinCapacity || cap > kMaxCapacity || (cap & 7u) != 0 ||
      kDataStart + cap != size || m[kMaxsize] < 0) {
    return "has a corrupt queue header (capacity " + std::to_string(cap) + " for a file of " +
           std::to_string(size) + " bytes)";
  }
  return "";
}

std::shared_ptr<Ring> OpenRing(const std::string& name, const std::string& path, bool create,
                               bool exclusive, mode_t mode, uint32_t cap, int32_t maxsize,
                               const OwnerPolicy& owner, bool* created, OpenError* err) {
  auto r = std::make_shared<Ring>();
  r->name = name;
  // shm_open's name for /dev/shm/<file>.
  std::string shm_name = path.substr(strlen("/dev/shm"));
  struct stat st;
  int fd = -1;
  for (int attempt = 0; attempt < 8 && fd < 0; attempt++) {
    fd = OpenShmFile(shm_name.c_str(), O_RDWR, 0, owner,
                     static_cast<off_t>(kDataStart + kMinCapacity), &st, &err->why);
    if (fd >= 0) {
      if (create && exclusive) {
        close(fd);
        err->err = EEXIST;
        err->why.clear();
        return nullptr;
      }
      break;
    }
    if (fd != -ENOENT || !create) {
      err->err = -fd;
      return nullptr;
    }
    fd = -1;
    int e = CreateLinkedShmFile(
        path.c_str(), mode, kDataStart + cap,
        [&](void* p) { InitHeader(static_cast<int32_t*>(p), cap, maxsize); }, &fd,
        &err->syscall);
    if (e == 0) {
      *created = true;
      if (fstat(fd, &st) == -1) {
        err->err = errno;
        err->syscall = "fstat";
        close(fd);
        return nullptr;
      }
      break;
    }
    fd = -1;
    if (e != EEXIST || exclusive) {
      err->err = e;
      return nullptr;
    }
    err->syscall = "open";
  }
  if (fd < 0) {
    err->err = ENOENT;
    return nullptr;
  }
  r->fd = fd;
  r->bytes = static_cast<size_t>(st.st_size);
  if (r->bytes > kDataStart + kMaxCapacity) {
    err->err = EINVAL;
    err->syscall = "fstat";
    err->why = "'" + path + "' holds " + std::to_string(st.st_size) +
               " bytes, more than any queue segment";
    return nullptr;
  }
  void* p = mmap(nullptr, r->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    err->err = errno;
    err->syscall = "mmap";
    return nullptr;
  }
  r->m = static_cast<int32_t*>(p);
  std::string problem = HeaderProblem(r->m, r->bytes);
  if (!problem.empty()) {
    err->err = EINVAL;
    err->syscall = "mmap";
    err->why = "'" + path + "' " + problem;
    return nullptr;
  }
  r->cap = U(r->m[kCapacity]);
  r->data = reinterpret_cast<uint8_t*>(r->m) + kDataStart;
  int32_t id = shared::ClaimSlot(fd, kSlotCount, SlotOffset);
  if (id < 0) {
    err->err = -id;
    err->syscall = "fcntl";
    return nullptr;
  }
  r->slot = id;
  // A previous owner of this slot that died holding the internal lock left
  // our id in it: take it over and roll its change back.
  int32_t mine = id;
  if (Cas(r->m + kLock, &mine, id)) {
    Rollback(r.get());
    Unlock(r.get());
  }
  // Waiters of a previous owner killed in its sleep still count in the
  // waiter words (so producers would make a needless FUTEX_WAKE): take their
  // share back.
  int32_t* rec = SlotRec(r.get(), id);
  Add(r->m + kGetWaiters, -__atomic_exchange_n(rec + kSlotGetWaiting, 0, __ATOMIC_SEQ_CST));
  Add(r->m + kPutWaiters, -__atomic_exchange_n(rec + kSlotPutWaiting, 0, __ATOMIC_SEQ_CST));
  Store(rec + kSlotPid, static_cast<int32_t>(getpid()));
  return r;
}

}  // namespace

Ring::~Ring() {
  Close();
  if (m != nullptr) munmap(m, bytes);
}

// Our sleepers (engine threads, whose jobs keep the mapping alive through
// their reference) wake, see `closed` and leave; the descriptor, and with it
// the slot, closes at once or when the last of them is out (a new owner of
// the slot must not take back shares that are still ours).
void Ring::Close() {
  if (closed.exchange(true)) return;
  if (m != nullptr) {
    Store(SlotRec(this, slot) + kSlotPid, 0);
    Futex(m + kPutSeq, FUTEX_WAKE, INT_MAX, nullptr, 0);
    Futex(m + kGetSeq, FUTEX_WAKE, INT_MAX, nullptr, 0);
  }
  if (sleepers.load() == 0) CloseFd();
}

void Ring::CloseFd() {
  int d = __atomic_exchange_n(&fd, -1, __ATOMIC_SEQ_CST);
  if (d >= 0) close(d);
}

namespace {

// JavaScript side ------------------------------------------------------------

// Environment teardown (a worker_thread ended): the ring is closed even if
// JavaScript never closed it, so its descriptor and slot go at once.
struct Hook {
  RingPtr ring;
  bool hooked = true;
};

void OnTeardown(void* arg) {
  auto* h = static_cast<Hook*>(arg);
  h->hooked = false;
  h->ring->Close();
}

void Unhook(napi_env env, Ring* r) {
  auto* hook = static_cast<Hook*>(r->hook);
  if (hook == nullptr) return;
  r->hook = nullptr;
  if (hook->hooked) napi_remove_env_cleanup_hook(env, OnTeardown, hook);
  delete hook;
}

void FinalizeHandle(napi_env env, void* data, void*) {
  auto* holder = static_cast<RingPtr*>(data);
  (*holder)->Close();
  Unhook(env, holder->get());
  delete holder;
}

// ringOpen(name, path, create, exclusive, mode, capacity, maxsize, owner)
//   -> [handle, capacity, maxsize, mode, uid, created]
Napi::Value RingOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  std::string path = info[1].As<Napi::String>().Utf8Value();
  bool create = info[2].ToBoolean();
  bool exclusive = info[3].ToBoolean();
  mode_t mode = static_cast<mode_t>(info[4].As<Napi::Number>().Uint32Value());
  uint32_t cap = info[5].As<Napi::Number>().Uint32Value();
  int32_t maxsize = info[6].As<Napi::Number>().Int32Value();
  OwnerPolicy owner = OwnerPolicy::FromJs(info[7].As<Napi::Number>().DoubleValue());
  if (cap < kMinCapacity || cap > kMaxCapacity || (cap & 7u) != 0 || maxsize < 0) {
    throw Napi::RangeError::New(env, "capacity or maxsize out of range");
  }
  bool created = false;
  OpenError e;
  RingPtr r = OpenRing(name, path, create, exclusive, mode, cap, maxsize, owner, &created, &e);
  if (!r) ThrowIPCError(env, e.err, e.syscall, name, e.why);
  struct stat st;
  fstat(r->fd, &st);
  auto* hook = new Hook{r};
  r->hook = hook;
  napi_add_env_cleanup_hook(env, OnTeardown, hook);
  Napi::Value handle = Wrap(env, new RingPtr(r), FinalizeHandle, [env](RingPtr* p) {
    (*p)->Close();
    Unhook(env, p->get());
    delete p;
  });
  Napi::Array out = Napi::Array::New(env, 6);
  out.Set(0u, handle);
  out.Set(1u, Napi::Number::New(env, r->cap));
  out.Set(2u, Napi::Number::New(env, r->m[kMaxsize]));
  out.Set(3u, Napi::Number::New(env, st.st_mode & 07777));
  out.Set(4u, Napi::Number::New(env, st.st_uid));
  out.Set(5u, Napi::Boolean::New(env, created));
  return out;
}

// GetBytes (core/args.h) as bytes.
inline bool GetData(napi_env env, napi_value v, const uint8_t** data, size_t* len) {
  const char* p;
  if (!GetBytes(env, v, &p, len)) return false;
  *data = reinterpret_cast<const uint8_t*>(p);
  return true;
}

// A pending IPCError for a failed put or get (-rc an errno; EPROTO says why).
napi_value Fail(napi_env env, Ring* r, int64_t rc, const char* syscall) {
  int err = static_cast<int>(-rc);
  return ThrowIPCErrorC(env, err, syscall, r->name, err == EPROTO ? r->why : "");
}

[[noreturn]] void Throw(Napi::Env env, Ring* r, int64_t rc, const char* syscall) {
  int err = static_cast<int>(-rc);
  ThrowIPCError(env, err, syscall, r->name, err == EPROTO ? r->why : "");
}

// kDone / kNoRoom as a boolean, or a pending IPCError.
napi_value PutResult(napi_env env, Ring* r, int rc) {
  if (rc < 0) return Fail(env, r, rc, "ring_put");
  napi_value result;
  napi_get_boolean(env, rc == kDone, &result);
  return result;
}

// ringSend(h, bytes) -> false when full.
napi_value RingSend(napi_env env, napi_callback_info cbinfo) {
  HandleCall<RingPtr, 2> call(env, cbinfo, "ring_put");
  if (call.self == nullptr) return nullptr;
  Ring* r = call.self->get();
  const uint8_t* data;
  size_t len;
  if (!GetData(env, call.argv[1], &data, &len)) return nullptr;
  if (len > UINT32_MAX) return ThrowIPCErrorC(env, EMSGSIZE, "ring_put", r->name);
  return PutResult(env, r, Put(r, data, static_cast<uint32_t>(len)));
}

// ringSendText(h, text) -> false when full: the UTF-8 of text, encoded
// through a scratch buffer (no Buffer per item).
napi_value RingSendText(napi_env env, napi_callback_info cbinfo) {
  HandleCall<RingPtr, 2> call(env, cbinfo, "ring_put");
  if (call.self == nullptr) return nullptr;
  Ring* r = call.self->get();
  size_t units = 0;
  if (napi_get_value_string_utf16(env, call.argv[1], nullptr, 0, &units) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "message must be a string");
    return nullptr;
  }
  thread_local std::vector<char> scratch;
  if (scratch.size() < units * 3 + 1) scratch.resize(units * 3 + 1);
  size_t len = 0;
  napi_get_value_string_utf8(env, call.argv[1], scratch.data(), scratch.size(), &len);
  if (len > UINT32_MAX) return ThrowIPCErrorC(env, EMSGSIZE, "ring_put", r->name);
  return PutResult(env, r, Put(r, scratch.data(), static_cast<uint32_t>(len)));
}

// --- JSON with long strings ---------------------------------------------------

// Bytes a JSON string literal cannot hold as they are: '"', '\\', controls.
inline bool NeedsEscape(uint8_t c) { return c < 0x20 || c == '"' || c == '\\'; }

// Skips the bytes from t[j] on that a JSON string literal holds as they
// are, sixteen at a time (GCC/Clang vector extensions: SSE2 on x86-64, NEON
// on arm64), up to the first chunk holding '"', '\\' or a byte below 0x20
// (or the last whole chunk before n); ORs what it skipped into *high, whose
// top bits then say whether any byte was not ASCII. The caller goes on byte by byte.
typedef uint8_t V16 __attribute__((vector_size(16)));
inline size_t SkipPlain(const uint8_t* t, size_t j, size_t n, V16* high) {
  while (j + 16 <= n) {
    V16 x;
    memcpy(&x, t + j, 16);
    auto stop = (x < 0x20) | (x == '"') | (x == '\\');
    uint64_t w[2];
    memcpy(w, &stop, 16);
    if ((w[0] | w[1]) != 0) break;
    *high |= x;
    j += 16;
  }
  return j;
}

inline bool AnyHigh(V16 high) {
  uint64_t w[2];
  memcpy(w, &high, 16);
  return ((w[0] | w[1]) & 0x8080808080808080ULL) != 0;
}

// A growable byte buffer that does not zero what it grows by (the UTF-8
// conversion writes it next).
struct Bytes {
  std::unique_ptr<char[]> p;
  size_t size = 0, cap = 0;
  char* Grow(size_t n) {  // room for n more bytes; returns where they go
    if (size + n > cap) {
      size_t c = cap < 4096 ? 4096 : cap;
      while (c < size + n) c *= 2;
      std::unique_ptr<char[]> q(new char[c]);
      if (size > 0) memcpy(q.get(), p.get(), size);
      p = std::move(q);
      cap = c;
    }
    return p.get() + size;
  }
  void Append(const void* src, size_t n) {
    memcpy(Grow(n), src, n);
    size += n;
  }
  void Release() {  // a large scratch is not kept for the thread's life
    if (cap > (1u << 20)) {
      p.reset();
      cap = size = 0;
    }
  }
};

// Appends the JSON string literal of the UTF-8 bytes src[0..n] to out:
// false if they hold U+FFFD (maybe a lone surrogate the conversion replaced,
// which JSON.stringify would write as \udXXX: the caller falls back to it).
bool AppendJsonString(Bytes* out, const uint8_t* src, size_t n) {
  out->Grow(n + 2);
  out->Append("\"", 1);
  V16 high = {};
  size_t i = 0, run = 0;  // src[run..i) is copied as it is
  while (i < n) {
    i = SkipPlain(src, i, n, &high);
    if (i >= n) break;
    uint8_t c = src[i];
    if (!NeedsEscape(c)) {
      high[0] |= c;
      i++;
      continue;
    }
    out->Append(src + run, i - run);
    char esc[6] = {'\\', 0, '0', '0', 0, 0};
    size_t len = 2;
    switch (c) {
      case '"': esc[1] = '"'; break;
      case '\\': esc[1] = '\\'; break;
      case '\b': esc[1] = 'b'; break;
      case '\f': esc[1] = 'f'; break;
      case '\n': esc[1] = 'n'; break;
      case '\r': esc[1] = 'r'; break;
      case '\t': esc[1] = 't'; break;
      default:
        esc[1] = 'u';
        esc[4] = "0123456789abcdef"[c >> 4];
        esc[5] = "0123456789abcdef"[c & 15];
        len = 6;
    }
    out->Append(esc, len);
    run = ++i;
  }
  // U+FFFD (EF BF BD) may stand for a lone surrogate: JSON.stringify's turn.
  if (AnyHigh(high) && memmem(src, n, "\xEF\xBF\xBD", 3) != nullptr) return false;
  out->Append(src + run, n - run);
  out->Append("\"", 1);
  return true;
}

// The UTF-8 of a JS string appended to out (through napi's conversion).
bool AppendUtf8(napi_env env, napi_value s, Bytes* out) {
  size_t units = 0;
  if (napi_get_value_string_utf16(env, s, nullptr, 0, &units) != napi_ok) return false;
  char* at = out->Grow(units * 3 + 1);
  size_t len = 0;
  napi_get_value_string_utf8(env, s, at, units * 3 + 1, &len);
  out->size += len;
  return true;
}

// ringSendJsonParts(h, parts, strings) -> 1 put, 0 full, -1 not done here
// (a string holds U+FFFD, or the item is larger than the ring: the caller
// goes through JSON.stringify). The item's JSON text is parts[0],
// the literal of strings[0], parts[1], ... parts[n]: JSON.stringify wrote the
// parts, with each long string replaced by a placeholder, so only the long
// strings are scanned and escaped here, eight bytes at a time, instead of
// by JSON.stringify one character at a time.
// Writes the JSON text of (parts, strings) to *text: 1, -1 when it is not
// done here (U+FFFD in a string), 0 with a pending exception (bad arguments).
// A long string's UTF-8 goes straight into the text, and only a string that
// needs an escape is copied out once and written again, escaped.
int BuildJson(napi_env env, napi_value parts, napi_value strings, Bytes* text) {
  uint32_t nparts = 0, nstrings = 0;
  napi_get_array_length(env, parts, &nparts);
  napi_get_array_length(env, strings, &nstrings);
  if (nparts != nstrings + 1) {
    napi_throw_range_error(env, "ERR_INVALID_ARG_VALUE", "parts must be one more than strings");
    return 0;
  }
  thread_local Bytes raw;
  text->size = 0;
  for (uint32_t i = 0; i < nparts; i++) {
    napi_value v;
    napi_get_element(env, parts, i, &v);
    if (!AppendUtf8(env, v, text)) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "parts must be strings");
      return 0;
    }
    if (i == nstrings) break;
    napi_get_element(env, strings, i, &v);
    text->Append("\"", 1);
    size_t from = text->size;
    if (!AppendUtf8(env, v, text)) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "strings must be strings");
      return 0;
    }
    const uint8_t* u = reinterpret_cast<const uint8_t*>(text->p.get()) + from;
    size_t n = text->size - from;
    V16 high = {};
    size_t j = SkipPlain(u, 0, n, &high);
    while (j < n && !NeedsEscape(u[j])) {
      high[0] |= u[j++];
      j = SkipPlain(u, j, n, &high);
    }
    if (j < n) {
      // An escape is needed: the rest goes through AppendJsonString (which
      // adds its own quotes: the opening one here goes).
      raw.size = 0;
      raw.Append(text->p.get() + from, n);
      text->size = from - 1;
      if (!AppendJsonString(text, reinterpret_cast<const uint8_t*>(raw.p.get()), raw.size)) return -1;
      raw.Release();
      continue;
    }
    if (AnyHigh(high) && memmem(u, n, "\xEF\xBF\xBD", 3) != nullptr) return -1;
    text->Append("\"", 1);
  }
  return 1;
}

napi_value Int32(napi_env env, int32_t v) {
  napi_value out;
  napi_create_int32(env, v, &out);
  return out;
}

napi_value RingSendJsonParts(napi_env env, napi_callback_info cbinfo) {
  HandleCall<RingPtr, 3> call(env, cbinfo, "ring_put");
  if (call.self == nullptr) return nullptr;
  Ring* r = call.self->get();
  thread_local Bytes text;
  int b = BuildJson(env, call.argv[1], call.argv[2], &text);
  if (b == 0) return nullptr;
  if (b < 0 || text.size > r->cap - kRecordHeader) {
    text.Release();
    return Int32(env, -1);
  }
  int rc = Put(r, text.p.get(), static_cast<uint32_t>(text.size));
  text.Release();
  if (rc < 0) return Fail(env, r, rc, "ring_put");
  return Int32(env, rc == kDone ? 1 : 0);
}

// jsonJoinBytes(parts, strings) -> Buffer | null: the bytes ringSendJsonParts
// would put, for an item that waits for room (null: not done here).
Napi::Value JsonJoinBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  thread_local Bytes text;
  int b = BuildJson(env, info[0], info[1], &text);
  if (b == 0) throw env.GetAndClearPendingException();
  if (b < 0) return env.Null();
  Napi::Value out = Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<uint8_t*>(text.p.get()), text.size);
  text.Release();
  return out;
}

// jsonSplitLong(buffer, n, minBytes) -> [skeleton, strings] | null. The
// decoding half of ringSendJsonParts: the JSON text buffer[0..n] (valid
// UTF-8: the caller checked) with each string literal of at least minBytes
// bytes that holds no escape and no control character cut out into a JS
// string of its own (made from the bytes at once, one-byte when they are
// ASCII), and in its place "\u0000pipc:<index>" in the skeleton, which
// JSON.parse then reads with a reviver that puts the strings back. JSON.parse
// would scan those strings one character at a time. Keys stay in the
// skeleton (a reviver sees values only). null when there is no such string
// or they are less than 3/4 of the text (the reviver runs for every value), or when the text holds an escaped NUL anywhere (a string of
// its own could then look like a placeholder).
Napi::Value JsonSplitLong(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBuffer()) throw Napi::TypeError::New(env, "buffer expected");
  auto buf = info[0].As<Napi::Buffer<uint8_t>>();
  size_t n = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  size_t min = static_cast<size_t>(info[2].As<Napi::Number>().Int64Value());
  if (n > buf.Length()) n = buf.Length();
  const uint8_t* t = buf.Data();
  struct Cut {
    size_t from, to;  // the literal's content t[from..to)
    bool ascii;
  };
  std::vector<Cut> cuts;
  size_t i = 0;
  while (i < n) {
    // Outside a string: to the next quote.
    const void* q = memchr(t + i, '"', n - i);
    if (q == nullptr) break;
    size_t start = static_cast<const uint8_t*>(q) - t + 1;
    size_t j = start;
    bool plain = true;
    V16 high = {};
    for (;;) {
      j = SkipPlain(t, j, n, &high);
      if (j >= n) break;
      uint8_t c = t[j];
      high[0] |= c;
      if (c == '"') break;
      if (c == '\\') {
        plain = false;
        if (j + 5 < n && memcmp(t + j + 1, "u0000", 5) == 0) return env.Null();
        j += 2;
        continue;
      }
      if (c < 0x20) plain = false;
      j++;
    }
    if (j >= n) break;  // unterminated: JSON.parse reports it
    // A key (a ':' next) stays: the reviver sees values only.
    size_t k = j + 1;
    while (k < n && (t[k] == ' ' || t[k] == '\t' || t[k] == '\n' || t[k] == '\r')) k++;
    bool key = k < n && t[k] == ':';
    if (plain && !key && j - start >= min) cuts.push_back({start, j, !AnyHigh(high)});
    i = j + 1;
  }
  // Worth it only when the long strings are most of the text: the reviver
  // is called for every value the skeleton holds.
  size_t cut = 0;
  for (const Cut& c : cuts) cut += c.to - c.from;
  if (cuts.empty() || cut * 4 < n * 3) return env.Null();
  std::string skeleton;
  Napi::Array strings = Napi::Array::New(env, cuts.size());
  size_t at = 0;
  for (size_t k = 0; k < cuts.size(); k++) {
    const Cut& c = cuts[k];
    skeleton.append(reinterpret_cast<const char*>(t + at), c.from - at);
    skeleton += "\\u0000pipc:" + std::to_string(k);
    at = c.to;
    napi_value s;
    const char* p = reinterpret_cast<const char*>(t + c.from);
    napi_status st = c.ascii ? napi_create_string_latin1(env, p, c.to - c.from, &s)
                             : napi_create_string_utf8(env, p, c.to - c.from, &s);
    if (st != napi_ok) return env.Null();
    strings.Set(static_cast<uint32_t>(k), Napi::Value(env, s));
  }
  skeleton.append(reinterpret_cast<const char*>(t + at), n - at);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::String::New(env, skeleton));
  out.Set(1u, strings);
  return out;
}

// ringSendMany(h, arrayOfBytes, start) -> how many were put from `start` on.
napi_value RingSendMany(napi_env env, napi_callback_info cbinfo) {
  HandleCall<RingPtr, 3> call(env, cbinfo, "ring_put");
  if (call.self == nullptr) return nullptr;
  Ring* r = call.self->get();
  uint32_t start = 0, length = 0;
  napi_get_value_uint32(env, call.argv[2], &start);
  napi_get_array_length(env, call.argv[1], &length);
  uint32_t sent = 0;
  for (uint32_t i = start; i < length; i++) {
    napi_value item;
    napi_get_element(env, call.argv[1], i, &item);
    const uint8_t* data;
    size_t len;
    if (!GetData(env, item, &data, &len)) return nullptr;
    int rc = len > UINT32_MAX ? -EMSGSIZE : Put(r, data, static_cast<uint32_t>(len));
    if (rc == kNoRoom) break;
    if (rc < 0) return Fail(env, r, rc, "ring_put");
    sent++;
  }
  napi_value result;
  napi_create_uint32(env, sent, &result);
  return result;
}

// ringReceiveInto(h, buffer) -> the item's length, -1 when empty, or
// -2 - length when the item is longer than the buffer (it is left there).
napi_value RingReceiveInto(napi_env env, napi_callback_info cbinfo) {
  HandleCall<RingPtr, 2> call(env, cbinfo, "ring_get");
  if (call.self == nullptr) return nullptr;
  Ring* r = call.self->get();
  const uint8_t* data;
  size_t room;
  if (!GetData(env, call.argv[1], &data, &room)) return nullptr;
  uint8_t* into = const_cast<uint8_t*>(data);
  uint32_t wanted = 0;
  int64_t n = GetWith(r, [&](const uint8_t* src, uint32_t len) {
    wanted = len;
    if (len > room) return false;
    if (len > 0) memcpy(into, src, len);
    return true;
  });
  // Too long for the buffer (the item stays): -2 - its length, for a larger one.
  if (n == -ENOBUFS) n = -2 - static_cast<int64_t>(wanted);
  else if (n < kNoItem) return Fail(env, r, n, "ring_get");
  napi_value result;
  napi_create_int64(env, n, &result);
  return result;
}

// ringReceive(h) -> the oldest item as a Buffer of its own, or null when
// empty: one copy, for the raw codec (receiveInto and a copy out would be two).
napi_value RingReceive(napi_env env, napi_callback_info cbinfo) {
  HandleCall<RingPtr, 1> call(env, cbinfo, "ring_get");
  if (call.self == nullptr) return nullptr;
  Ring* r = call.self->get();
  napi_value out = nullptr;
  // The Buffer is made before the lock, for the length the next record seems
  // to have (a look without the lock; the allocation, and the page faults of
  // fresh memory, would otherwise hold up every other putter and getter); a
  // wrong guess (another getter came first) is made again inside.
  napi_value guess = nullptr;
  void* guess_data = nullptr;
  uint32_t guess_len = 0;
  {
    int32_t* m = r->m;
    uint32_t head = U(Load(m + kHead));
    if (Load(m + kCount) > 0 && head <= r->cap - kRecordHeader) {
      uint32_t len;
      memcpy(&len, r->data + head, sizeof len);
      if (len == kWrapMarker) memcpy(&len, r->data, sizeof len);
      // A length read in a race (or scribbled) costs at most one Buffer of
      // what is in use, never more than 64 MiB, and is then not used.
      if (len >= 4096 && len <= r->cap - kRecordHeader && len <= U(Load(m + kUsed)) &&
          len <= (64u << 20) &&
          napi_create_buffer(env, len, &guess_data, &guess) == napi_ok) {
        guess_len = len;
      }
    }
  }
  int64_t n = GetWith(r, [&](const uint8_t* src, uint32_t len) {
    if (guess != nullptr && len == guess_len) {
      memcpy(guess_data, src, len);
      out = guess;
      return true;
    }
    void* dst = nullptr;
    if (napi_create_buffer_copy(env, len, src, &dst, &out) != napi_ok) return false;
    return true;
  });
  if (n == kNoItem) {
    napi_get_null(env, &out);
    return out;
  }
  if (n == -ENOBUFS) return nullptr;  // the allocation failed: its exception is pending
  if (n < 0) return Fail(env, r, n, "ring_get");
  return out;
}

// ringSize(h) -> items in the queue now.
napi_value RingSize(napi_env env, napi_callback_info cbinfo) {
  HandleCall<RingPtr, 1> call(env, cbinfo, "ring_get");
  if (call.self == nullptr) return nullptr;
  napi_value result;
  napi_create_int32(env, Load(call.self->get()->m + kCount), &result);
  return result;
}

// ringFull(h) -> true when an item of the smallest size would not fit now.
Napi::Value RingFull(const Napi::CallbackInfo& info) {
  Ring* r = UnwrapOpen<RingPtr>(info[0], "ring_put").get();
  int32_t* m = r->m;
  int32_t max = Load(m + kMaxsize);
  bool wrap;
  bool full = (max > 0 && Load(m + kCount) >= max) ||
              Place(r->cap, U(Load(m + kHead)) % r->cap, U(Load(m + kTail)) % r->cap,
                    U(Load(m + kUsed)), kRecordHeader, &wrap) < 0;
  return Napi::Boolean::New(info.Env(), full);
}

inline int64_t DeadlineFromMs(double timeout_ms) {
  return timeout_ms < 0 ? -1 : MonotonicNs() + static_cast<int64_t>(timeout_ms * 1e6);
}

// ringSendSync(h, bytes, timeoutMs) -> false when it timed out.
Napi::Value RingSendSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ring* r = UnwrapOpen<RingPtr>(info[0], "ring_put").get();
  const uint8_t* data;
  size_t len;
  if (!GetData(env, info[1], &data, &len)) throw env.GetAndClearPendingException();
  if (len > UINT32_MAX) ThrowIPCError(env, EMSGSIZE, "ring_put", r->name);
  int64_t deadline = DeadlineFromMs(info[2].As<Napi::Number>().DoubleValue());
  for (;;) {
    int rc = Put(r, data, static_cast<uint32_t>(len));
    if (rc == kDone) return Napi::Boolean::New(env, true);
    if (rc < 0) Throw(env, r, rc, "ring_put");
    int w = WaitFor(r, kWritable, deadline, nullptr);
    if (w == ETIMEDOUT) return Napi::Boolean::New(env, false);
    if (w != 0 && w != EINTR) ThrowIPCError(env, w, "futex", r->name);
  }
}

// ringReceiveSync(h, timeoutMs) -> Buffer, or null when it timed out.
Napi::Value RingReceiveSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ring* r = UnwrapOpen<RingPtr>(info[0], "ring_get").get();
  int64_t deadline = DeadlineFromMs(info[1].As<Napi::Number>().DoubleValue());
  for (;;) {
    Napi::Buffer<uint8_t> out;
    int64_t n = GetWith(r, [&](const uint8_t* src, uint32_t len) {
      out = Napi::Buffer<uint8_t>::Copy(env, src, len);
      return true;
    });
    if (n >= 0) return out;
    if (n < kNoItem) Throw(env, r, n, "ring_get");
    int w = WaitFor(r, kReadable, deadline, nullptr);
    if (w == ETIMEDOUT) return env.Null();
    if (w != 0 && w != EINTR) ThrowIPCError(env, w, "futex", r->name);
  }
}

// Waits on an engine thread until the ring looks readable or writable. It
// takes nothing: JavaScript serves its waiters when it fires. A job that
// was woken but whose caller lost interest passes the wake-up on.
class ReadyJob : public WaitJob {
 public:
  ReadyJob(RingPtr r, int want) : r_(std::move(r)), want_(want) {}

  int WaitUntil(int64_t until_ns) override { return WaitFor(r_.get(), want_, until_ns, &cancelled); }

  // Multiplexed (wait.h): many queues waited on in one process share engine
  // threads instead of taking one each.
  bool Pollable() const override { return true; }
  int Poll(PollSleep* sleep) override { return PollFor(r_.get(), want_, sleep); }
  void Unpoll() override { PollEnd(r_.get(), want_); }

  void Undo() override {
    if (r_->closed.load()) return;
    if (want_ == kReadable) {
      WakeOne(r_.get(), kPutSeq, kGetWaiters);
    } else {
      WakeOne(r_.get(), kGetSeq, kPutWaiters);
    }
  }

 private:
  RingPtr r_;
  int want_;
};

// ringWait(h, want, callback) -> token; callback(err, ready).
Napi::Value RingWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RingPtr& r = UnwrapOpen<RingPtr>(info[0], "futex");
  int want = info[1].As<Napi::Number>().Int32Value() == kWritable ? kWritable : kReadable;
  auto job = std::make_shared<ReadyJob>(r, want);
  AddonData::Get(env)->engine->Submit(env, job, info[2].As<Napi::Function>());
  return JobToken(env, job);
}

// ringSpin(h, want, ns) -> true if the ring looked readable (1) or writable
// (2) within ns nanoseconds of spinning on this thread. A peer that answers
// within microseconds (a round trip) is caught without the engine thread's
// wake-up and hop back to the event loop; the spin is short enough that an
// idle wait costs only that much CPU before it sleeps.
Napi::Value RingSpin(const Napi::CallbackInfo& info) {
  Ring* r = UnwrapOpen<RingPtr>(info[0], "futex").get();
  bool readable = info[1].As<Napi::Number>().Int32Value() != kWritable;
  int64_t ns = info[2].As<Napi::Number>().Int64Value();
  int64_t stop = MonotonicNs() + ns;
  for (int i = 0;; i++) {
    if (readable ? Readable(r) : Writable(r)) return Napi::Boolean::New(info.Env(), true);
    if ((i & 63) == 63 && MonotonicNs() >= stop) return Napi::Boolean::New(info.Env(), false);
    cpu_relax();
  }
}

// ringView(h) -> ArrayBuffer over the header's first kHeaderBytes (the state
// words, the sequence words and the waiter counts), for JavaScript's spin:
// it watches kCount with Atomics.load and calls ringReceiveInto only when an
// item looks there, with no native call per look. The buffer keeps the ring
// (and so the mapping) alive; ringClose detaches it.
void FinalizeView(napi_env, void*, void* hint) { delete static_cast<RingPtr*>(hint); }

Napi::Value RingView(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RingPtr& r = UnwrapOpen<RingPtr>(info[0], "mmap");
  auto* keep = new RingPtr(r);
  napi_value ab;
  if (napi_create_external_arraybuffer(env, r->m, kHeaderBytes, FinalizeView, keep, &ab) !=
      napi_ok) {
    // Runtimes that forbid external buffers: the native spin serves.
    delete keep;
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
    return env.Undefined();
  }
  return Napi::Value(env, ab);
}

// ringClose(h, view?): idempotent; detaches the ringView buffer first.
Napi::Value RingClose(const Napi::CallbackInfo& info) {
  if (info.Length() > 1 && info[1].IsArrayBuffer()) napi_detach_arraybuffer(info.Env(), info[1]);
  RingPtr& r = Unwrap<RingPtr>(info[0]);
  r->Close();
  Unhook(info.Env(), r.get());
  return info.Env().Undefined();
}

// ringUnlink(path, name): removes the segment's name.
Napi::Value RingUnlink(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  if (unlink(path.c_str()) == -1) ThrowIPCError(info.Env(), errno, "unlink", name);
  return info.Env().Undefined();
}

}  // namespace
}  // namespace ring

void InitRing(Napi::Env env, Napi::Object exports) {
  using namespace ring;
  exports.Set("ringOpen", Napi::Function::New(env, RingOpen));
  SetRawFunction(env, exports, "ringSend", RingSend);
  SetRawFunction(env, exports, "ringSendText", RingSendText);
  SetRawFunction(env, exports, "ringSendMany", RingSendMany);
  SetRawFunction(env, exports, "ringSendJsonParts", RingSendJsonParts);
  exports.Set("jsonSplitLong", Napi::Function::New(env, JsonSplitLong));
  exports.Set("jsonJoinBytes", Napi::Function::New(env, JsonJoinBytes));
  SetRawFunction(env, exports, "ringReceiveInto", RingReceiveInto);
  SetRawFunction(env, exports, "ringReceive", RingReceive);
  SetRawFunction(env, exports, "ringSize", RingSize);
  exports.Set("ringFull", Napi::Function::New(env, RingFull));
  exports.Set("ringSendSync", Napi::Function::New(env, RingSendSync));
  exports.Set("ringReceiveSync", Napi::Function::New(env, RingReceiveSync));
  exports.Set("ringWait", Napi::Function::New(env, RingWait));
  exports.Set("ringSpin", Napi::Function::New(env, RingSpin));
  exports.Set("ringView", Napi::Function::New(env, RingView));
  exports.Set("ringClose", Napi::Function::New(env, RingClose));
  exports.Set("ringUnlink", Napi::Function::New(env, RingUnlink));
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("dataStart", Napi::Number::New(env, static_cast<double>(kDataStart)));
  layout.Set("lock", Napi::Number::New(env, kLock));
  layout.Set("head", Napi::Number::New(env, kHead));
  layout.Set("count", Napi::Number::New(env, kCount));
  layout.Set("putSeq", Napi::Number::New(env, kPutSeq));
  layout.Set("recordHeader", Napi::Number::New(env, kRecordHeader));
  layout.Set("minCapacity", Napi::Number::New(env, kMinCapacity));
  layout.Set("maxCapacity", Napi::Number::New(env, kMaxCapacity));
  exports.Set("RING_LAYOUT", layout);
}

}  // namespace pipc
