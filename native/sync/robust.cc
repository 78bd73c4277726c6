#include "robust.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "../addon.h"
#include "../core/errors.h"
#include "../core/posix.h"
#include "../core/safe-open.h"
#include "../core/shared-words.h"
#include "../core/wait.h"
#include "segment.h"

namespace pipc {
namespace robust {

namespace {

using shared::Add;
using shared::Cas;
using shared::Futex;
using shared::Load;
using shared::Store;

constexpr int32_t kTotalWords = static_cast<int32_t>(kSegmentBytes / 4);

inline off_t SlotOffset(int32_t id) {
  return static_cast<off_t>(kHeaderBytes + kSlotBytes * static_cast<size_t>(id - 1));
}

}  // namespace

double NowMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

void StoreDouble(int32_t* words, int index, double v) {
  __builtin_memcpy(words + index, &v, sizeof v);
}
double LoadDouble(const int32_t* words, int index) {
  double v;
  __builtin_memcpy(&v, words + index, sizeof v);
  return v;
}

// True unless the kernel says nobody holds the slot's OFD lock.
bool SlotAlive(Seg* s, int32_t id) {
  return id == s->slot || shared::SlotAlive(s->fd, SlotOffset(id));
}

void Rollback(Seg* s, int32_t id) {
  int32_t* rec = SlotRec(s, id);
  int32_t n = Load(rec + kJournal);
  if (n <= 0) return;
  if (n > kMaxEntries) n = kMaxEntries;
  for (int i = n - 1; i >= 0; i--) {
    int32_t word = rec[kEntries + 2 * i];
    if (word >= 0 && word < kTotalWords) Store(s->m + word, rec[kEntries + 2 * i + 1]);
  }
  Store(rec + kJournal, 0);
}

// Under the internal lock: undoes slot id's half-done operation and returns
// the units it held to the free count, marking them recovered. Returns how
// many units came back.
int32_t RecoverSlot(Seg* s, int32_t id) {
  Rollback(s, id);
  if (s->recover != nullptr) return s->recover(s, id);
  int32_t* rec = SlotRec(s, id);
  int32_t held = rec[kHeld];
  int32_t added = 0;
  if (held > 0) {
    int32_t* m = s->m;
    int32_t v = m[kValue];
    int64_t nv = static_cast<int64_t>(v) + held;
    if (m[kMax] > 0 && nv > m[kMax]) nv = m[kMax];
    if (nv > SEM_VALUE_MAX) nv = SEM_VALUE_MAX;
    added = static_cast<int32_t>(nv - v);
    Tx tx(s);
    tx.Save(kValue);
    tx.Save(kRecovered);
    tx.Save(kDeadPid);
    tx.Save(SlotWord(id) + kHeld);
    tx.Begin();
    m[kValue] = static_cast<int32_t>(nv);
    int64_t r = static_cast<int64_t>(m[kRecovered]) + added;
    m[kRecovered] = static_cast<int32_t>(r > nv ? nv : r);
    m[kDeadPid] = rec[kPid];
    StoreDouble(m, kDeadAt, NowMs());
    rec[kHeld] = 0;
    tx.End();
    Add(m + kSeq, 1);
  }
  if (id != s->slot) rec[kPid] = 0;
  return added;
}

void UnlockInternal(Seg* s) { Store(s->m + kLock, 0); }

namespace {
RecoverFn kind_recover[4] = {nullptr, nullptr, nullptr, nullptr};
}  // namespace

void RegisterKind(int32_t kind, RecoverFn recover) {
  if (kind > kKindSemaphore && kind < 4) kind_recover[kind] = recover;
}
namespace {
void Unlock(Seg* s) { UnlockInternal(s); }
}  // namespace

// Takes the internal lock. It is held for a few instructions, so contenders
// spin, then yield, then sleep a millisecond at a time; an owner whose slot
// is dead is taken over and its half-done operation rolled back.
void LockInternal(Seg* s) {
  int32_t* l = s->m + kLock;
  for (int i = 0;; i++) {
    int32_t cur = 0;
    if (Cas(l, &cur, s->slot)) return;
    // cur == our slot: our own JavaScript thread is inside its fast path (an
    // engine thread shares the slot); wait like anyone else.
    if (i < 64) {
      __builtin_ia32_pause();
      continue;
    }
    if (i % 8 == 0 && !SlotAlive(s, cur)) {
      int32_t expected = cur;
      if (Cas(l, &expected, s->slot)) {
        if (RecoverSlot(s, cur) > 0) Futex(s->m + kSeq, FUTEX_WAKE, INT_MAX, nullptr, 0);
        return;
      }
      continue;
    }
    if (i < 256) {
      sched_yield();
    } else {
      timespec ts = {0, 1000 * 1000};
      Futex(l, FUTEX_WAIT, cur, &ts, 0);
    }
  }
}

namespace {

int AcquireLocked(Seg* s) {
  int32_t* m = s->m;
  int32_t v = m[kValue];
  if (v <= 0) return kNone;
  int32_t* rec = SlotRec(s, s->slot);
  bool recovered = m[kRecovered] > 0;
  Tx tx(s);
  tx.Save(kValue);
  tx.Save(SlotWord(s->slot) + kHeld);
  tx.Save(kTokLo);
  tx.Save(kTokHi);
  if (recovered) tx.Save(kRecovered);
  tx.Begin();
  m[kValue] = v - 1;
  rec[kHeld] += 1;
  uint32_t lo = static_cast<uint32_t>(m[kTokLo]) + 1;
  m[kTokLo] = static_cast<int32_t>(lo);
  if (lo == 0) m[kTokHi] += 1;
  if (recovered) m[kRecovered] -= 1;
  tx.End();
  rec[kSlotTokLo] = m[kTokLo];
  rec[kSlotTokHi] = m[kTokHi];
  rec[kGotRec] = recovered ? 1 : 0;
  if (recovered) {
    rec[kRecPid] = m[kDeadPid];
    StoreDouble(rec, kRecAt, LoadDouble(m, kDeadAt));
  }
  return recovered ? kTakenRecovered : kTaken;
}

uint64_t TokenLocked(const int32_t* m) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(m[kTokHi])) << 32) |
         static_cast<uint32_t>(m[kTokLo]);
}

// Under the internal lock: recovers every dead slot that holds units or has
// a change in flight, and notes the live holders in s's memo (robust.h).
int32_t RecoverDeadLocked(Seg* s) {
  int32_t n = 0;
  int32_t slots = s->m[kSlots];
  if (slots > kSlotCount) slots = kSlotCount;
  int count = 0;
  bool fits = true;
  // Pages of the file never written are holes (tmpfs): every slot in one is
  // all zeros, and reading it would allocate the page. SEEK_DATA/SEEK_HOLE
  // (which count a swapped-out page as data) say where the written ones are;
  // under the internal lock no held or journal word can become nonzero.
  off_t data_end = 0;  // slots before it are in data; -1: no data after
  for (int32_t id = 1; id <= slots; id++) {
    if (id == s->slot) continue;
    const off_t off = SlotOffset(id);
    if (data_end >= 0 && off >= data_end) {
      off_t d = lseek(s->fd, off, SEEK_DATA);
      if (d == -1) {
        if (errno == ENXIO) break;  // nothing written from here on
        data_end = -1;              // cannot tell: read every slot
      } else {
        off_t h = lseek(s->fd, d, SEEK_HOLE);
        data_end = h == -1 ? static_cast<off_t>(kSegmentBytes) : h;
        if (d >= off + static_cast<off_t>(kSlotBytes)) {
          id = static_cast<int32_t>((d - static_cast<off_t>(kHeaderBytes)) / static_cast<off_t>(kSlotBytes));
          continue;  // resumes at the slot where data starts (id + 1 after the ++)
        }
      }
    }
    int32_t* rec = SlotRec(s, id);
    if (rec[kHeld] == 0 && Load(rec + kJournal) == 0) continue;
    if (!SlotAlive(s, id)) {
      n += RecoverSlot(s, id);
    } else if (count < Seg::kMemoSlots) {
      s->memo_slot[count++] = id;
    } else {
      fits = false;
    }
  }
  s->memo_valid = fits && s->kind == kKindSemaphore && s->recover == nullptr;
  s->memo_count = count;
  s->memo_token = TokenLocked(s->m);
  return n;
}

int ReleaseLocked(Seg* s, int32_t n) {
  int32_t* m = s->m;
  int64_t nv = static_cast<int64_t>(m[kValue]) + n;
  if (m[kMax] > 0 && nv > m[kMax]) return kOverRelease;
  if (nv > SEM_VALUE_MAX) return -EOVERFLOW;
  int32_t* rec = SlotRec(s, s->slot);
  int32_t mine = rec[kHeld] < n ? rec[kHeld] : n;
  int32_t rest = n - mine;
  // Units released by a process that did not take them: they stop counting
  // as held by whoever took them (as a POSIX semaphore, anyone may release).
  int32_t from[kMaxEntries];
  int32_t take[kMaxEntries];
  int others = 0;
  int32_t slots = m[kSlots] > kSlotCount ? kSlotCount : m[kSlots];
  for (int32_t id = 1; rest > 0 && id <= slots && others < kMaxEntries - 2; id++) {
    if (id == s->slot) continue;
    int32_t h = SlotRec(s, id)[kHeld];
    if (h <= 0) continue;
    from[others] = id;
    take[others] = h < rest ? h : rest;
    rest -= take[others];
    others++;
  }
  Tx tx(s);
  tx.Save(kValue);
  tx.Save(SlotWord(s->slot) + kHeld);
  for (int i = 0; i < others; i++) tx.Save(SlotWord(from[i]) + kHeld);
  tx.Begin();
  m[kValue] = static_cast<int32_t>(nv);
  rec[kHeld] -= mine;
  for (int i = 0; i < others; i++) SlotRec(s, from[i])[kHeld] -= take[i];
  tx.End();
  Add(m + kSeq, 1);
  return 0;
}

}  // namespace

// Sleepers count themselves in kWaiters before they read kSeq and try, so a
// releaser that finds kWaiters 0 after its change needs to wake nobody.
void Wake(Seg* s) {
  if (Load(s->m + kWaiters) > 0) {
    Add(s->m + kSeq, 1);
    Futex(s->m + kSeq, FUTEX_WAKE, INT_MAX, nullptr, 0);
  }
}

int RecoverDead(Seg* s) {
  std::lock_guard<std::mutex> g(s->mu);
  if (s->fd < 0) return 0;
  LockInternal(s);
  int n = RecoverDeadLocked(s);
  Unlock(s);
  if (n > 0) Futex(s->m + kSeq, FUTEX_WAKE, INT_MAX, nullptr, 0);
  return n;
}

namespace {

// Under s->mu, with the slot still ours. The check for dead holders reads
// every slot under the internal lock, unless the memo (robust.h) still
// holds: then it asks the kernel about the memo's slots alone, outside the
// internal lock, and reads the slots only if one of them died.
int TryAcquireMu(Seg* s, bool check_dead) {
  LockInternal(s);
  int r = AcquireLocked(s);
  int32_t recovered = 0;
  if (r == kNone && check_dead) {
    if (s->memo_valid && s->memo_token == TokenLocked(s->m)) {
      Unlock(s);
      bool dead = false;
      for (int i = 0; i < s->memo_count && !dead; i++) dead = !SlotAlive(s, s->memo_slot[i]);
      if (!dead) return kNone;
      LockInternal(s);
      r = AcquireLocked(s);
    }
    if (r == kNone) {
      recovered = RecoverDeadLocked(s);
      if (recovered > 0) r = AcquireLocked(s);
    }
  }
  Unlock(s);
  if (recovered > 1) Futex(s->m + kSeq, FUTEX_WAKE, INT_MAX, nullptr, 0);
  return r;
}

}  // namespace

int TryAcquire(Seg* s, bool check_dead) {
  std::lock_guard<std::mutex> g(s->mu);
  if (s->fd < 0) return -EBADF;
  return TryAcquireMu(s, check_dead);
}

int Release(Seg* s, int32_t n) {
  std::lock_guard<std::mutex> g(s->mu);
  if (s->fd < 0) return -EBADF;
  LockInternal(s);
  int r = ReleaseLocked(s, n);
  Unlock(s);
  if (r == 0) Wake(s);
  return r;
}

int WaitUntil(Seg* s, int64_t until_ns, int64_t* next_check, const std::atomic<bool>* cancel) {
  std::unique_lock<std::mutex> g(s->mu);
  for (;;) {
    if (s->fd < 0) return EBADF;
    if (cancel != nullptr && cancel->load()) return ECANCELED;
    Add(s->m + kWaiters, 1);
    int32_t seq = Load(s->m + kSeq);
    int64_t now = MonotonicNs();
    bool check = now >= *next_check;
    if (check) *next_check = now + kCheckNs;
    int r = TryAcquireMu(s, check);
    if (r != kNone) {
      Add(s->m + kWaiters, -1);
      return r;
    }
    now = MonotonicNs();
    if (until_ns >= 0 && now >= until_ns) {
      Add(s->m + kWaiters, -1);
      return ETIMEDOUT;
    }
    int64_t end = *next_check;
    if (until_ns >= 0 && until_ns < end) end = until_ns;
    timespec ts = NsToTimespec(end);
    int32_t* word = s->m + kSeq;
    s->sleepers++;
    g.unlock();
    Futex(word, FUTEX_WAIT_BITSET, seq, &ts, FUTEX_BITSET_MATCH_ANY);
    g.lock();
    Add(s->m + kWaiters, -1);
    if (--s->sleepers == 0 && s->fd < 0) {
      munmap(s->m, kSegmentBytes);
      s->m = nullptr;
      return EBADF;
    }
  }
}

// One try of a multiplexed wait (WaitJob::Poll): counts itself a waiter and a
// sleeper as WaitUntil does around its sleep, and says which word to sleep
// on; PollEnd undoes both once the sleep is over.
int PollTry(Seg* s, int64_t* next_check, PollSleep* p) {
  std::lock_guard<std::mutex> g(s->mu);
  if (s->fd < 0) return EBADF;
  Add(s->m + kWaiters, 1);
  int32_t seq = Load(s->m + kSeq);
  int64_t now = MonotonicNs();
  // The engine batches rechecks (kRecheckSlackNs): one that early is due.
  bool check = now + kRecheckSlackNs >= *next_check;
  if (check) *next_check = now + kCheckNs;
  int r = TryAcquireMu(s, check);
  if (r != kNone) {
    Add(s->m + kWaiters, -1);
    return r == kTaken || r == kTakenRecovered ? 0 : r;
  }
  s->sleepers++;
  p->word = s->m + kSeq;
  p->expected = seq;
  p->shared = true;
  p->recheck_ns = *next_check;
  return EAGAIN;
}

void PollEnd(Seg* s) {
  std::lock_guard<std::mutex> g(s->mu);
  Add(s->m + kWaiters, -1);
  if (--s->sleepers == 0 && s->fd < 0) {
    munmap(s->m, kSegmentBytes);
    s->m = nullptr;
  }
}

// The last user of our slot is gone: what it still holds goes back (marked
// recovered: its holder never released it), then the descriptor closes, which
// frees the slot for another opener.
static void ReleaseSlot(Seg* s) {
  if (s->fd < 0) return;
  if (s->m != nullptr && s->slot > 0) {
    LockInternal(s);
    int32_t n = RecoverSlot(s, s->slot);
    SlotRec(s, s->slot)[kPid] = 0;
    Unlock(s);
    if (n > 0) Futex(s->m + kSeq, FUTEX_WAKE, INT_MAX, nullptr, 0);
  }
  close(s->fd);
  s->fd = -1;
}

Seg::~Seg() {
  ReleaseSlot(this);
  if (m != nullptr) munmap(m, kSegmentBytes);
}

bool Seg::Close() {
  if (closed.exchange(true, std::memory_order_acq_rel)) return false;
  std::lock_guard<std::mutex> g(mu);
  ReleaseSlot(this);
  if (m == nullptr) return true;
  if (sleepers > 0) {
    // Our sleepers (and, harmlessly, others') wake, see fd < 0 and leave;
    // the last one unmaps.
    Futex(m + kSeq, FUTEX_WAKE, INT_MAX, nullptr, 0);
  } else {
    munmap(m, kSegmentBytes);
    m = nullptr;
  }
  return true;
}

namespace {

struct OpenResult {
  int err = 0;
  const char* syscall = "open";
  bool created = false;
  std::string why;  // what was found, for the message (EPERM)
};

void InitHeader(int32_t* m, int32_t kind, int32_t initial, int32_t max) {
  m[kVersion] = kLayoutVersion;
  m[kKind] = kind;
  m[kMax] = max;
  m[kSlots] = kSlotCount;
  m[kSlotBase] = static_cast<int32_t>(kHeaderBytes);
  m[kValue] = initial;
  m[kInitial] = initial;
  m[kMagic] = kMagicValue;
}

std::shared_ptr<Seg> OpenSeg(const std::string& name, const std::string& path, bool create,
                             bool exclusive, mode_t mode, int32_t kind, int32_t initial,
                             int32_t max, const OwnerPolicy& owner, OpenResult* r) {
  auto s = std::make_shared<Seg>();
  s->name = name;
  s->kind = kind;
  s->recover = kind == kKindSemaphore ? nullptr : kind_recover[kind];
  int fd = OpenOrCreateShmFile(
      path.c_str(), create, exclusive, mode, kSegmentBytes,
      [&](void* p) { InitHeader(static_cast<int32_t*>(p), kind, initial, max); }, &r->created,
      &r->syscall);
  if (fd < 0) {
    r->err = -fd;
    return nullptr;
  }
  s->fd = fd;
  struct stat st;
  if (fstat(s->fd, &st) == -1) {
    r->err = errno;
    r->syscall = "fstat";
    return nullptr;
  }
  if (!S_ISREG(st.st_mode) || st.st_size != static_cast<off_t>(kSegmentBytes)) {
    r->err = EINVAL;
    r->syscall = "fstat";
    return nullptr;
  }
  // Another uid's segment is adopted only if the caller said so (a file its
  // owner may truncate under our mapping, or fill with a state of its choice).
  if (!r->created && !owner.any && st.st_uid != owner.uid) {
    r->err = EPERM;
    r->why = "'" + path + "' is owned by uid " + std::to_string(st.st_uid) + ", not uid " +
             std::to_string(owner.uid) + " (pass owner: 'any' or owner: " +
             std::to_string(st.st_uid) + " to accept it)";
    return nullptr;
  }
  void* p = mmap(nullptr, kSegmentBytes, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
  if (p == MAP_FAILED) {
    r->err = errno;
    r->syscall = "mmap";
    return nullptr;
  }
  s->m = static_cast<int32_t*>(p);
  if (Load(s->m + kMagic) != kMagicValue || s->m[kVersion] != kLayoutVersion ||
      s->m[kKind] != kind || s->m[kSlots] != kSlotCount ||
      s->m[kSlotBase] != static_cast<int32_t>(kHeaderBytes)) {
    r->err = EINVAL;
    r->syscall = "mmap";
    return nullptr;
  }
  int e = segment::ClaimOfdSlot(s->fd, kHeaderBytes, kSlotBytes, kSlotCount, &s->slot);
  if (e != 0) {
    r->err = e;
    r->syscall = "fcntl";
    return nullptr;
  }
  // Whatever a dead previous owner of this slot left is undone or given back,
  // also if it died holding the internal lock (which then holds our id).
  int32_t mine = s->slot;
  if (!Cas(s->m + kLock, &mine, s->slot)) LockInternal(s.get());
  int32_t n = RecoverSlot(s.get(), s->slot);
  int32_t* rec = SlotRec(s.get(), s->slot);
  rec[kPid] = static_cast<int32_t>(getpid());
  rec[kGotRec] = 0;
  Unlock(s.get());
  if (n > 0) Futex(s->m + kSeq, FUTEX_WAKE, INT_MAX, nullptr, 0);
  return s;
}

// JavaScript side ------------------------------------------------------------

using SegPtr = RobustPtr;

Seg* GetSeg(Napi::Env env, Napi::Value v, const char* syscall = "futex") {
  return UnwrapOpen<SegPtr>(v, syscall).get();
}

// Environment teardown (a worker_thread terminated): the slot is given up
// even if JavaScript never closed it. Registered per handle; runs before the
// addon's own Teardown (hooks run newest first), and Close() wakes and
// outlives any engine thread still sleeping on the segment.
struct Hook {
  SegPtr seg;
  bool hooked = true;
  bool orphan = false;  // the handle was collected while its slot held units
};

// Orphans of this thread's environment (one JS thread per environment).
thread_local std::vector<Hook*> orphans;

void OnTeardown(void* arg) {
  auto* h = static_cast<Hook*>(arg);
  h->hooked = false;
  h->seg->Close();
  if (h->orphan) {
    orphans.erase(std::remove(orphans.begin(), orphans.end(), h), orphans.end());
    delete h;
  }
}

bool HoldsUnits(Seg* s) {
  std::lock_guard<std::mutex> g(s->mu);
  return s->fd >= 0 && s->m != nullptr && Load(SlotRec(s, s->slot) + kHeld) > 0;
}

// A handle collected while it holds units keeps them (and its slot) until the
// environment ends: giving them back would admit a second holder while the
// process may still be inside the critical section, and another handle of the
// process may still release them.
void FinalizeHandle(napi_env env, void* data, void*) {
  auto* holder = static_cast<SegPtr*>(data);
  auto* hook = static_cast<Hook*>((*holder)->teardown);
  if (hook != nullptr && hook->hooked && HoldsUnits(holder->get())) {
    hook->orphan = true;
    orphans.push_back(hook);
    delete holder;
    return;
  }
  (*holder)->Close();
  if (hook != nullptr) {
    if (hook->hooked) napi_remove_env_cleanup_hook(env, OnTeardown, hook);
    delete hook;
  }
  delete holder;
}

// Orphans whose units were all released (from another handle) need their slot
// no more: closed whenever a handle is opened or closed.
void SweepOrphans(napi_env env) {
  for (size_t i = 0; i < orphans.size();) {
    Hook* h = orphans[i];
    if (HoldsUnits(h->seg.get())) {
      i++;
      continue;
    }
    orphans.erase(orphans.begin() + static_cast<std::ptrdiff_t>(i));
    napi_remove_env_cleanup_hook(env, OnTeardown, h);
    h->seg->Close();
    delete h;
  }
}

void FinalizeBuffer(napi_env, void*, void* hint) { delete static_cast<SegPtr*>(hint); }

// robOpen(name, path, create, exclusive, mode, initial, max, kind = 1, owner = self)
// owner: < 0 adopts an existing segment of any uid, otherwise only that uid's.
//   -> [handle, ArrayBuffer over the segment, slot id, created]
Napi::Value RobOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  std::string path = info[1].As<Napi::String>().Utf8Value();
  bool create = info[2].ToBoolean();
  bool exclusive = info[3].ToBoolean();
  mode_t mode = static_cast<mode_t>(info[4].As<Napi::Number>().Uint32Value());
  int32_t initial = info[5].As<Napi::Number>().Int32Value();
  int32_t max = info[6].As<Napi::Number>().Int32Value();
  int32_t kind = info.Length() > 7 ? info[7].As<Napi::Number>().Int32Value() : kKindSemaphore;
  if (kind < kKindSemaphore || kind >= 4 || (kind != kKindSemaphore && kind_recover[kind] == nullptr)) {
    throw Napi::RangeError::New(env, "unknown segment kind");
  }
  SweepOrphans(env);
  OpenResult r;
  OwnerPolicy owner = info.Length() > 8 && info[8].IsNumber()
                          ? OwnerPolicy::FromJs(info[8].As<Napi::Number>().DoubleValue())
                          : OwnerPolicy::Self();
  SegPtr seg = OpenSeg(name, path, create, exclusive, mode, kind, initial, max, owner, &r);
  if (!seg) {
    if (r.err == EINVAL) {
      throw MakeIPCError(env, EINVAL, r.syscall, name);
    }
    ThrowIPCError(env, r.err, r.syscall, name, r.why);
  }
  auto* hook = new Hook{seg};
  seg->teardown = hook;
  napi_add_env_cleanup_hook(env, OnTeardown, hook);
  Napi::Value ext = Wrap(env, new SegPtr(seg), FinalizeHandle, [](SegPtr* p) {
    (*p)->Close();  // the teardown hook finds it closed
    delete p;
  });
  napi_value ab;
  auto* keep = new SegPtr(seg);
  if (napi_create_external_arraybuffer(env, seg->m, kSegmentBytes, FinalizeBuffer, keep, &ab) !=
      napi_ok) {
    delete keep;
    throw Napi::Error::New(env, "cannot map semaphore");
  }
  Napi::Array out = Napi::Array::New(env, 4);
  out.Set(0u, ext);
  out.Set(1u, Napi::Value(env, ab));
  out.Set(2u, Napi::Number::New(env, seg->slot));
  out.Set(3u, Napi::Boolean::New(env, r.created));
  return out;
}

// robTryAcquire(h) -> 0 none, 1 taken, 2 taken a recovered unit. Checks for
// dead holders at most every kCheckNs.
Napi::Value RobTryAcquire(const Napi::CallbackInfo& info) {
  Seg* s = GetSeg(info.Env(), info[0]);
  int64_t now = MonotonicNs();
  bool check = now >= s->next_check_ns;
  if (check) s->next_check_ns = now + kCheckNs;
  int r = TryAcquire(s, check);
  if (r < 0) ThrowIPCError(info.Env(), -r, "futex", s->name);
  return Napi::Number::New(info.Env(), r);
}

// robRelease(h, n) -> 0, or -1 when it would pass the bound (nothing changed).
Napi::Value RobRelease(const Napi::CallbackInfo& info) {
  Seg* s = GetSeg(info.Env(), info[0]);
  int32_t n = info[1].As<Napi::Number>().Int32Value();
  int r = Release(s, n);
  if (r == kOverRelease) return Napi::Number::New(info.Env(), -1);
  if (r < 0) ThrowIPCError(info.Env(), -r, "sem_post", s->name);
  return Napi::Number::New(info.Env(), 0);
}

napi_value RobWake(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 1;
  napi_value argv[1] = {nullptr};
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);
  SegPtr* h = UnwrapOpen<SegPtr>(env, argv[0], "futex");
  if (h == nullptr) return nullptr;
  std::lock_guard<std::mutex> g((*h)->mu);
  if ((*h)->fd >= 0) Wake(h->get());
  return nullptr;
}

Napi::Value RobRecover(const Napi::CallbackInfo& info) {
  Seg* s = GetSeg(info.Env(), info[0]);
  return Napi::Number::New(info.Env(), RecoverDead(s));
}

// robWaitSync(h, timeoutMs) -> 0 timed out, 1 taken, 2 taken recovered.
Napi::Value RobWaitSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Seg* s = GetSeg(env, info[0]);
  double timeout = info[1].As<Napi::Number>().DoubleValue();
  int64_t deadline = timeout < 0 ? -1 : MonotonicNs() + static_cast<int64_t>(timeout * 1e6);
  int64_t next_check = 0;
  int r = WaitUntil(s, deadline, &next_check, nullptr);
  if (r == ETIMEDOUT) return Napi::Number::New(env, 0);
  if (r != kTaken && r != kTakenRecovered) ThrowIPCError(env, r, "futex", s->name);
  return Napi::Number::New(env, r);
}

class FutexWaitJob : public WaitJob {
 public:
  explicit FutexWaitJob(SegPtr seg) : s_(std::move(seg)) {}

  int WaitUntil(int64_t until_ns) override {
    int r = robust::WaitUntil(s_.get(), until_ns, &next_check_, &cancelled);
    return r == kTaken || r == kTakenRecovered ? 0 : r;
  }

  void Undo() override { Release(s_.get(), 1); }

  bool Pollable() const override { return true; }
  int Poll(PollSleep* sleep) override { return PollTry(s_.get(), &next_check_, sleep); }
  void Unpoll() override { PollEnd(s_.get()); }

 private:
  SegPtr s_;
  int64_t next_check_ = 0;
};

// robWaitAsync(h, timeoutMs, callback) -> token. callback(err, acquired).
Napi::Value RobWaitAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SegPtr* holder = &UnwrapOpen<SegPtr>(info[0], "futex");
  double timeout = info[1].As<Napi::Number>().DoubleValue();
  WaitEngine* engine = AddonData::Get(env)->engine.get();
  auto job = std::make_shared<FutexWaitJob>(*holder);
  if (timeout >= 0) job->deadline_ns = MonotonicNs() + static_cast<int64_t>(timeout * 1e6);
  engine->Submit(env, job, info[2].As<Napi::Function>());
  return JobToken(env, job);
}

// robClose(h, arrayBuffer): detaches the view, then gives the slot up once
// no wait uses it any more.
Napi::Value RobClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Seg* s = Unwrap<SegPtr>(info[0]).get();
  if (info.Length() > 1 && info[1].IsArrayBuffer()) {
    napi_detach_arraybuffer(env, info[1]);
  }
  s->Close();
  SweepOrphans(env);
  return env.Undefined();
}

Napi::Value RobUnlink(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  if (unlink(path.c_str()) == -1) ThrowIPCError(info.Env(), errno, "unlink", name);
  return info.Env().Undefined();
}

// robKindAt(path) -> 'file' | 'none' | 'other': what is at a path (lstat),
// for the one-name-one-object check.
Napi::Value RobKindAt(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>().Utf8Value();
  struct stat st;
  const char* kind = "other";
  if (lstat(path.c_str(), &st) == -1) {
    kind = errno == ENOENT || errno == ENAMETOOLONG ? "none" : "other";
  }
  else if (S_ISREG(st.st_mode)) kind = "file";
  return Napi::String::New(info.Env(), kind);
}

}  // namespace
}  // namespace robust

void InitRobust(Napi::Env env, Napi::Object exports) {
  using namespace robust;
  exports.Set("robOpen", Napi::Function::New(env, RobOpen));
  exports.Set("robTryAcquire", Napi::Function::New(env, RobTryAcquire));
  exports.Set("robRelease", Napi::Function::New(env, RobRelease));
  SetRawFunction(env, exports, "robWake", RobWake);
  exports.Set("robRecover", Napi::Function::New(env, RobRecover));
  exports.Set("robWaitSync", Napi::Function::New(env, RobWaitSync));
  exports.Set("robWaitAsync", Napi::Function::New(env, RobWaitAsync));
  exports.Set("robClose", Napi::Function::New(env, RobClose));
  exports.Set("robUnlink", Napi::Function::New(env, RobUnlink));
  exports.Set("robKindAt", Napi::Function::New(env, RobKindAt));
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("segmentBytes", Napi::Number::New(env, static_cast<double>(kSegmentBytes)));
  layout.Set("headerBytes", Napi::Number::New(env, static_cast<double>(kHeaderBytes)));
  layout.Set("slotBytes", Napi::Number::New(env, static_cast<double>(kSlotBytes)));
  layout.Set("slots", Napi::Number::New(env, kSlotCount));
  exports.Set("ROBUST_LAYOUT", layout);
}

}  // namespace pipc
