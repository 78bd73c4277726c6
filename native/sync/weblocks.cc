// Web Locks across processes: a crash-safe segment per lock name
// (/dev/shm/pipc.NAME.lock) with the crash-safe semaphore's geometry, slots,
// internal lock and undo journal (robust.h), holding a readers-writer state
// and the head of each slot's request queue. docs/api.md ("Web Locks across
// processes") describes the layout and protocol for Python and C peers.
//
// Each slot (one per environment and name, lib/sync/locks.ts) publishes the
// oldest request it has not been granted (mode and a ticket drawn from the
// header's counter). A request is granted when no live slot publishes an older
// ticket and its mode fits what is held, as the Web Locks spec's queue: so
// requests are granted in order per name and a shared request waits behind an
// older exclusive one.
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/mman.h>

#include <memory>
#include <vector>

#include "../addon.h"
#include "../core/errors.h"
#include "../core/posix.h"
#include "../core/shared-words.h"
#include "../core/wait.h"
#include "robust.h"

namespace pipc {
namespace weblocks {

using robust::Seg;
using robust::SlotRec;
using robust::SlotWord;
using robust::Tx;

// Header words of a lock segment (the others as robust::Header).
enum LockHeader : int {
  kExclusive = 7,  // slot id holding the lock exclusively, 0: none
  kShared = 16,    // number of shared locks held, over all slots
  kTicket = 12,    // request tickets are drawn by atomic increment
  kDeadPid = 13,
  kDeadAt = 14,    // float64 (bytes 56..63)
};

// Slot words of a lock segment.
enum LockSlot : int {
  kHeld = 1,         // locks this slot holds (shared ones, or 1 exclusive)
  kHeldMode = 2,     // 0 none, 1 shared, 2 exclusive
  kPendMode = 16,    // the slot's oldest waiting request: 0 none, 1 shared, 2 exclusive
  kPendTicket = 17,  // its ticket
  kStealGen = 18,    // incremented whenever this slot's locks are stolen
  kPendShared = 19,  // informational: how many shared requests the slot has waiting
  kPendExcl = 20,    // informational: how many exclusive ones
  kNextMode = 21,    // the slot's next request after the published one (published on its grant)
  kNextTicket = 22,
};

constexpr int32_t kModeShared = 1;
constexpr int32_t kModeExclusive = 2;
constexpr int64_t kCheckNs = robust::kCheckNs;

inline int32_t Load(const int32_t* p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
inline void Store(int32_t* p, int32_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
inline int32_t Add(int32_t* p, int32_t v) { return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST); }
inline bool Before(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) - static_cast<uint32_t>(b)) < 0;
}

// Sleepers count themselves in kWaiters before they read kSeq and try, so a
// change made before a zero count is read has nobody to wake.
void WakeAll(Seg* s) {
  if (Load(s->m + robust::kWaiters) <= 0) return;
  Add(s->m + robust::kSeq, 1);
  shared::Futex(s->m + robust::kSeq, FUTEX_WAKE, INT_MAX, nullptr, 0);
}

// Registered as kind 2's RecoverFn: after the journal's rollback, slot id's
// locks and waiting request are dropped (journaled in the recoverer's slot).
int32_t RecoverLockSlot(Seg* s, int32_t id) {
  int32_t* m = s->m;
  int32_t* rec = SlotRec(s, id);
  int32_t changed = 0;
  if (rec[kHeld] != 0 || rec[kPendMode] != 0) {
    Tx tx(s);
    tx.Save(SlotWord(id) + kHeld);
    tx.Save(SlotWord(id) + kHeldMode);
    tx.Save(SlotWord(id) + kPendMode);
    tx.Save(kExclusive);
    tx.Save(kShared);
    tx.Save(kDeadPid);
    tx.Begin();
    if (m[kExclusive] == id) m[kExclusive] = 0;
    if (rec[kHeldMode] == kModeShared) {
      int32_t n = m[kShared] - rec[kHeld];
      m[kShared] = n < 0 ? 0 : n;
    }
    if (rec[kHeld] != 0) {
      m[kDeadPid] = rec[robust::kPid];
      robust::StoreDouble(m, kDeadAt, robust::NowMs());
    }
    rec[kHeld] = 0;
    rec[kHeldMode] = 0;
    rec[kPendMode] = 0;
    tx.End();
    Add(m + robust::kSeq, 1);
    changed = 1;
  }
  rec[kPendShared] = 0;
  rec[kPendExcl] = 0;
  rec[kNextMode] = 0;
  if (id != s->slot) rec[robust::kPid] = 0;
  return changed;
}

// Under the internal lock: recovers every dead slot that holds, waits or has
// a journal. Returns how many changed.
int32_t RecoverDeadLocked(Seg* s) {
  int32_t n = 0;
  for (int32_t id = 1; id <= robust::kSlotCount; id++) {
    if (id == s->slot) continue;
    int32_t* rec = SlotRec(s, id);
    if (rec[kHeld] == 0 && rec[kPendMode] == 0 && Load(rec + robust::kJournal) == 0 &&
        rec[kPendShared] == 0 && rec[kPendExcl] == 0) {
      continue;
    }
    if (!robust::SlotAlive(s, id)) n += robust::RecoverSlot(s, id) != 0 ? 1 : 0;
  }
  return n;
}

// Under the internal lock: is a request of ours with this ticket the oldest
// one waiting? A dead slot in the way is recovered on the spot.
bool First(Seg* s, int32_t ticket, int32_t* changed) {
  for (int32_t id = 1; id <= robust::kSlotCount; id++) {
    if (id == s->slot) continue;
    int32_t* rec = SlotRec(s, id);
    if (rec[kPendMode] == 0 || !Before(rec[kPendTicket], ticket)) continue;
    if (robust::SlotAlive(s, id)) return false;
    *changed += robust::RecoverSlot(s, id) != 0 ? 1 : 0;
  }
  return true;
}

// Under the internal lock: grants (mode, ticket) to our slot if it may have
// it. `head`: the request is the one our slot publishes (or is to publish);
// granted, the slot's next request (kNextMode/kNextTicket) is published in
// its place, in the same journaled change. Not granted and `publish`: the
// request is published. Returns 1 granted, 0 not.
int GrantLocked(Seg* s, int32_t mode, int32_t ticket, bool head, bool publish,
                int32_t* changed) {
  int32_t* m = s->m;
  int32_t* rec = SlotRec(s, s->slot);
  int32_t ex = m[kExclusive];
  if (ex != 0 && ex != s->slot && !robust::SlotAlive(s, ex)) {
    *changed += robust::RecoverSlot(s, ex) != 0 ? 1 : 0;
    ex = m[kExclusive];
  }
  bool fits = ex == 0 && (mode == kModeShared || m[kShared] == 0);
  if (fits && First(s, ticket, changed)) {
    int32_t next_mode = Load(rec + kNextMode);
    int32_t next_ticket = Load(rec + kNextTicket);
    Tx tx(s);
    tx.Save(SlotWord(s->slot) + kHeld);
    tx.Save(SlotWord(s->slot) + kHeldMode);
    tx.Save(mode == kModeShared ? kShared : kExclusive);
    if (head) {
      tx.Save(SlotWord(s->slot) + kPendMode);
      tx.Save(SlotWord(s->slot) + kPendTicket);
    }
    tx.Begin();
    rec[kHeld] += 1;
    rec[kHeldMode] = mode;
    if (mode == kModeShared) m[kShared] += 1;
    else m[kExclusive] = s->slot;
    if (head) {
      rec[kPendTicket] = next_ticket;
      rec[kPendMode] = next_mode == kModeShared || next_mode == kModeExclusive ? next_mode : 0;
    }
    tx.End();
    if (head) {
      Store(rec + kNextMode, 0);
      // Our published request moved on to a younger one (or to none): a
      // request of another slot may be first now.
      *changed += 1;
    }
    return 1;
  }
  if (publish && (rec[kPendMode] != mode || rec[kPendTicket] != ticket)) {
    // Replacing an older published request (ours was aborted) may make
    // another slot's request first.
    if (rec[kPendMode] != 0) *changed += 1;
    Tx tx(s);
    tx.Save(SlotWord(s->slot) + kPendMode);
    tx.Save(SlotWord(s->slot) + kPendTicket);
    tx.Begin();
    rec[kPendTicket] = ticket;
    rec[kPendMode] = mode;
    tx.End();
  }
  return 0;
}

// Releases one lock of `mode` granted under steal generation `gen`: 1, or 0
// if it was stolen meanwhile (nothing changed).
int ReleaseLocked(Seg* s, int32_t mode, int32_t gen) {
  int32_t* m = s->m;
  int32_t* rec = SlotRec(s, s->slot);
  if (rec[kStealGen] != gen || rec[kHeld] <= 0 || rec[kHeldMode] != mode) return 0;
  Tx tx(s);
  tx.Save(SlotWord(s->slot) + kHeld);
  tx.Save(SlotWord(s->slot) + kHeldMode);
  tx.Save(mode == kModeShared ? kShared : kExclusive);
  tx.Begin();
  rec[kHeld] -= 1;
  if (rec[kHeld] == 0) rec[kHeldMode] = 0;
  if (mode == kModeShared) m[kShared] = m[kShared] > 0 ? m[kShared] - 1 : 0;
  else m[kExclusive] = 0;
  tx.End();
  return 1;
}

// Takes every lock of the name from its holders (each victim slot's kStealGen
// moves on, one journaled change per victim), then grants an exclusive lock
// to our slot ahead of every waiting request.
int32_t StealLocked(Seg* s, std::vector<int32_t>* robbed) {
  int32_t* m = s->m;
  for (int32_t id = 1; id <= robust::kSlotCount; id++) {
    int32_t* rec = SlotRec(s, id);
    if (rec[kHeld] == 0) continue;
    robbed->push_back(id);
    Tx tx(s);
    tx.Save(SlotWord(id) + kHeld);
    tx.Save(SlotWord(id) + kHeldMode);
    tx.Save(SlotWord(id) + kStealGen);
    tx.Save(kShared);
    tx.Save(kExclusive);
    tx.Begin();
    if (rec[kHeldMode] == kModeShared) {
      int32_t n = m[kShared] - rec[kHeld];
      m[kShared] = n < 0 ? 0 : n;
    }
    if (m[kExclusive] == id) m[kExclusive] = 0;
    rec[kHeld] = 0;
    rec[kHeldMode] = 0;
    rec[kStealGen] = (rec[kStealGen] + 1) & INT_MAX;
    tx.End();
  }
  int32_t* rec = SlotRec(s, s->slot);
  Tx tx(s);
  tx.Save(SlotWord(s->slot) + kHeld);
  tx.Save(SlotWord(s->slot) + kHeldMode);
  tx.Save(kExclusive);
  tx.Begin();
  rec[kHeld] = 1;
  rec[kHeldMode] = kModeExclusive;
  m[kExclusive] = s->slot;
  tx.End();
  Add(m + robust::kSeq, 1);
  return rec[kStealGen];
}

// Grant attempt as the engine thread and lkTry make it. Under s->mu.
int TryMu(Seg* s, int32_t mode, int32_t ticket, bool head, bool publish, bool check_dead,
          int32_t* gen) {
  robust::LockInternal(s);
  int32_t changed = 0;
  if (check_dead) changed += RecoverDeadLocked(s);
  int r = GrantLocked(s, mode, ticket, head, publish, &changed);
  if (r == 1) *gen = SlotRec(s, s->slot)[kStealGen];
  robust::UnlockInternal(s);
  // A recovery, or our published request moving on, may let others in.
  if (changed > 0) WakeAll(s);
  return r;
}

// Blocks until granted (0), the deadline (ETIMEDOUT), a cancel (ECANCELED),
// an interrupt (EINTR from the futex) or a close (EBADF), as robust::WaitUntil.
int WaitUntil(Seg* s, int32_t mode, int32_t ticket, int64_t until_ns, int64_t* next_check,
              const std::atomic<bool>* cancel, int32_t* gen) {
  std::unique_lock<std::mutex> g(s->mu);
  for (;;) {
    if (s->fd < 0) return EBADF;
    if (cancel != nullptr && cancel->load()) return ECANCELED;
    Add(s->m + robust::kWaiters, 1);
    int32_t seq = Load(s->m + robust::kSeq);
    int64_t now = MonotonicNs();
    bool check = now >= *next_check;
    if (check) *next_check = now + kCheckNs;
    if (TryMu(s, mode, ticket, true, true, check, gen) == 1) {
      Add(s->m + robust::kWaiters, -1);
      return 0;
    }
    now = MonotonicNs();
    if (until_ns >= 0 && now >= until_ns) {
      Add(s->m + robust::kWaiters, -1);
      return ETIMEDOUT;
    }
    int64_t end = *next_check;
    if (until_ns >= 0 && until_ns < end) end = until_ns;
    timespec ts = NsToTimespec(end);
    int32_t* word = s->m + robust::kSeq;
    s->sleepers++;
    g.unlock();
    long rc = shared::Futex(word, FUTEX_WAIT_BITSET, seq, &ts, FUTEX_BITSET_MATCH_ANY);
    int e = rc == -1 ? errno : 0;
    g.lock();
    Add(s->m + robust::kWaiters, -1);
    if (--s->sleepers == 0 && s->fd < 0) {
      munmap(s->m, robust::kSegmentBytes);
      s->m = nullptr;
      return EBADF;
    }
    if (e == EINTR) return EINTR;
  }
}

// JavaScript side ------------------------------------------------------------

Seg* GetLockSeg(const Napi::CallbackInfo& info) {
  Seg* s = UnwrapOpen<RobustPtr>(info[0], "futex").get();
  if (s->kind != robust::kKindLock) throw Napi::TypeError::New(info.Env(), "not a lock segment");
  return s;
}

int32_t ModeArg(const Napi::Value& v) {
  int32_t mode = v.As<Napi::Number>().Int32Value();
  if (mode != kModeShared && mode != kModeExclusive) {
    throw Napi::RangeError::New(v.Env(), "lock mode must be 1 (shared) or 2 (exclusive)");
  }
  return mode;
}

// lkTry(h, mode, ticket, head, publish) -> steal generation when granted, -1 when not.
Napi::Value LkTry(const Napi::CallbackInfo& info) {
  Seg* s = GetLockSeg(info);
  int32_t mode = ModeArg(info[1]);
  int32_t ticket = info[2].As<Napi::Number>().Int32Value();
  bool head = info[3].ToBoolean();
  bool publish = info[4].ToBoolean();
  std::lock_guard<std::mutex> g(s->mu);
  if (s->fd < 0) ThrowIPCError(info.Env(), EBADF, "futex", s->name);
  int64_t now = MonotonicNs();
  bool check = now >= s->next_check_ns;
  if (check) s->next_check_ns = now + kCheckNs;
  int32_t gen = 0;
  int r = TryMu(s, mode, ticket, head, publish, check, &gen);
  return Napi::Number::New(info.Env(), r == 1 ? gen : -1);
}

// lkRelease(h, mode, gen) -> 1 released, 0 it had been stolen.
Napi::Value LkRelease(const Napi::CallbackInfo& info) {
  Seg* s = GetLockSeg(info);
  int32_t mode = ModeArg(info[1]);
  int32_t gen = info[2].As<Napi::Number>().Int32Value();
  std::lock_guard<std::mutex> g(s->mu);
  if (s->fd < 0) ThrowIPCError(info.Env(), EBADF, "futex", s->name);
  robust::LockInternal(s);
  int r = ReleaseLocked(s, mode, gen);
  robust::UnlockInternal(s);
  if (r == 1) WakeAll(s);
  return Napi::Number::New(info.Env(), r);
}

// lkSteal(h) -> the steal generation of the exclusive lock now ours.
Napi::Value LkSteal(const Napi::CallbackInfo& info) {
  Seg* s = GetLockSeg(info);
  std::lock_guard<std::mutex> g(s->mu);
  if (s->fd < 0) ThrowIPCError(info.Env(), EBADF, "futex", s->name);
  std::vector<int32_t> robbed;
  robust::LockInternal(s);
  int32_t gen = StealLocked(s, &robbed);
  robust::UnlockInternal(s);
  WakeAll(s);
  // The robbed slots' holders watch their generation word (lkWatchSteal).
  for (int32_t id : robbed) {
    shared::Futex(SlotRec(s, id) + kStealGen, FUTEX_WAKE, INT_MAX, nullptr, 0);
  }
  return Napi::Number::New(info.Env(), gen);
}

// lkCancel(h): our slot publishes no waiting request any more (and no next one).
Napi::Value LkCancel(const Napi::CallbackInfo& info) {
  Seg* s = GetLockSeg(info);
  std::lock_guard<std::mutex> g(s->mu);
  if (s->fd < 0) ThrowIPCError(info.Env(), EBADF, "futex", s->name);
  int32_t* rec = SlotRec(s, s->slot);
  Store(rec + kNextMode, 0);
  if (rec[kPendMode] == 0) return info.Env().Undefined();
  robust::LockInternal(s);
  Tx tx(s);
  tx.Save(SlotWord(s->slot) + kPendMode);
  tx.Begin();
  rec[kPendMode] = 0;
  tx.End();
  robust::UnlockInternal(s);
  WakeAll(s);
  return info.Env().Undefined();
}

// lkSnapshot(h) -> flat [slot, pid, held, heldMode, pendMode, pendTicket,
// pendShared, pendExcl] for every live slot that holds or waits; dead ones
// are recovered first.
Napi::Value LkSnapshot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Seg* s = GetLockSeg(info);
  std::vector<int32_t> out;
  {
    std::lock_guard<std::mutex> g(s->mu);
    if (s->fd < 0) ThrowIPCError(env, EBADF, "futex", s->name);
    robust::LockInternal(s);
    int32_t changed = RecoverDeadLocked(s);
    for (int32_t id = 1; id <= robust::kSlotCount; id++) {
      int32_t* rec = SlotRec(s, id);
      if (rec[kHeld] == 0 && rec[kPendMode] == 0 && rec[kPendShared] == 0 && rec[kPendExcl] == 0) {
        continue;
      }
      int32_t row[8] = {id, rec[robust::kPid], rec[kHeld], rec[kHeldMode], rec[kPendMode],
                        rec[kPendTicket], rec[kPendShared], rec[kPendExcl]};
      out.insert(out.end(), row, row + 8);
    }
    robust::UnlockInternal(s);
    if (changed > 0) WakeAll(s);
  }
  Napi::Array arr = Napi::Array::New(env, out.size());
  for (size_t i = 0; i < out.size(); i++) arr.Set(static_cast<uint32_t>(i), out[i]);
  return arr;
}

class LockWaitJob : public WaitJob {
 public:
  LockWaitJob(RobustPtr seg, int32_t mode, int32_t ticket)
      : s_(std::move(seg)), mode_(mode), ticket_(ticket) {}

  int WaitUntil(int64_t until_ns) override {
    return weblocks::WaitUntil(s_.get(), mode_, ticket_, until_ns, &next_check_, &cancelled, &gen_);
  }

  // Granted after the caller stopped waiting (abort, close, teardown).
  void Undo() override {
    std::lock_guard<std::mutex> g(s_->mu);
    if (s_->fd < 0) return;
    robust::LockInternal(s_.get());
    int r = ReleaseLocked(s_.get(), mode_, gen_);
    robust::UnlockInternal(s_.get());
    if (r == 1) WakeAll(s_.get());
  }

  // callback(error | null, granted, stealGeneration)
  void Deliver(Napi::Env env, Napi::Function callback, int r) override {
    if (r == 0) {
      callback.Call({env.Null(), Napi::Boolean::New(env, true), Napi::Number::New(env, gen_)});
    } else if (r == ETIMEDOUT) {
      callback.Call({env.Null(), Napi::Boolean::New(env, false), Napi::Number::New(env, -1)});
    } else {
      callback.Call({MakeIPCError(env, r, "futex", s_->name).Value(), Napi::Boolean::New(env, false),
                     Napi::Number::New(env, -1)});
    }
  }

 private:
  RobustPtr s_;
  int32_t mode_;
  int32_t ticket_;
  int32_t gen_ = 0;
  int64_t next_check_ = 0;
};

// lkWaitAsync(h, mode, ticket, callback) -> token; the request must be our published one.
Napi::Value LkWaitAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  GetLockSeg(info);
  RobustPtr& holder = UnwrapOpen<RobustPtr>(info[0], "futex");
  int32_t mode = ModeArg(info[1]);
  int32_t ticket = info[2].As<Napi::Number>().Int32Value();
  WaitEngine* engine = AddonData::Get(env)->engine.get();
  auto job = std::make_shared<LockWaitJob>(holder, mode, ticket);
  engine->Submit(env, job, info[3].As<Napi::Function>());
  return JobToken(env, job);
}

// Watches this slot's steal generation (slot word 18) while the slot holds
// locks granted under generation gen: succeeds once it is no longer gen
// (another environment stole them), so the holders' request() promises can
// reject at the moment of the steal, as the Web Locks spec has it. A stealer
// wakes the word; a stealer that died between its journaled change and that
// wake is noticed at the next check (kWatchCheckNs). Multiplexed: it needs
// no thread of its own.
constexpr int64_t kWatchCheckNs = 1000 * 1000 * 1000;

class StealWatchJob : public WaitJob {
 public:
  StealWatchJob(RobustPtr seg, int32_t gen) : s_(std::move(seg)), gen_(gen) {
    keeps_alive = false;  // a held lock alone does not keep a process running
  }

  int WaitUntil(int64_t until_ns) override {
    PollSleep p;
    for (;;) {
      int r = Poll(&p);
      if (r != EAGAIN) return r;
      int64_t end = p.recheck_ns;
      if (until_ns >= 0 && until_ns < end) end = until_ns;
      timespec ts = NsToTimespec(end);
      long rc = shared::Futex(p.word, FUTEX_WAIT_BITSET, p.expected, &ts, FUTEX_BITSET_MATCH_ANY);
      int e = rc == -1 ? errno : 0;
      Unpoll();
      if (e == EINTR) return EINTR;
      if (until_ns >= 0 && MonotonicNs() >= until_ns) return ETIMEDOUT;
    }
  }

  bool Pollable() const override { return true; }

  int Poll(PollSleep* sleep) override {
    Seg* s = s_.get();
    std::lock_guard<std::mutex> g(s->mu);
    if (s->fd < 0) return EBADF;
    if (cancelled.load()) return ECANCELED;
    int32_t* word = SlotRec(s, s->slot) + kStealGen;
    if (Load(word) != gen_) return 0;
    s->sleepers++;
    sleep->word = word;
    sleep->expected = gen_;
    sleep->shared = true;
    sleep->recheck_ns = MonotonicNs() + kWatchCheckNs;
    return EAGAIN;
  }

  void Unpoll() override {
    Seg* s = s_.get();
    std::lock_guard<std::mutex> g(s->mu);
    if (--s->sleepers == 0 && s->fd < 0 && s->m != nullptr) {
      munmap(s->m, robust::kSegmentBytes);
      s->m = nullptr;
    }
  }

 private:
  RobustPtr s_;
  int32_t gen_;
};

// lkWatchSteal(h, gen, callback) -> token; callback(err, stolen) once the
// slot's steal generation is no longer gen (or an error; cancel to stop).
Napi::Value LkWatchSteal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  GetLockSeg(info);
  RobustPtr& holder = UnwrapOpen<RobustPtr>(info[0], "futex");
  int32_t gen = info[1].As<Napi::Number>().Int32Value();
  auto job = std::make_shared<StealWatchJob>(holder, gen);
  AddonData::Get(env)->engine->Submit(env, job, info[2].As<Napi::Function>());
  return JobToken(env, job);
}

}  // namespace weblocks

void InitWebLocks(Napi::Env env, Napi::Object exports) {
  using namespace weblocks;
  robust::RegisterKind(robust::kKindLock, RecoverLockSlot);
  exports.Set("lkTry", Napi::Function::New(env, LkTry));
  exports.Set("lkRelease", Napi::Function::New(env, LkRelease));
  exports.Set("lkSteal", Napi::Function::New(env, LkSteal));
  exports.Set("lkCancel", Napi::Function::New(env, LkCancel));
  exports.Set("lkSnapshot", Napi::Function::New(env, LkSnapshot));
  exports.Set("lkWaitAsync", Napi::Function::New(env, LkWaitAsync));
  exports.Set("lkWatchSteal", Napi::Function::New(env, LkWatchSteal));
}

}  // namespace pipc
