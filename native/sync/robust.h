// Crash-safe semaphores: a shared segment holding the count, a table of
// per-holder slots (each guarded by its owner's open-file-description lock)
// and an undo journal per slot. The layout is the contract with JavaScript
// (lib/sync/robust.ts), Python and C peers; docs/api.md describes it.
#pragma once

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "../core/handle.h"

namespace pipc {
namespace robust {

// Int32 word indices of the header (the segment starts with it).
enum Header : int {
  kMagic = 0,     // 'PIPC' = 0x43504950 (little-endian bytes "PIPC")
  kVersion = 1,   // kLayoutVersion
  kKind = 2,      // 1: semaphore family
  kMax = 3,       // bound (0: unbounded)
  kSlots = 4,     // number of slots
  kSlotBase = 5,  // byte offset of slot 1
  kLock = 6,      // internal lock word: 0 free, else owner slot id
  kValue = 7,     // free units
  kSeq = 8,       // futex word: incremented by every release and recovery
  kWaiters = 9,   // number of threads sleeping on kSeq
  kTokLo = 10,    // 64-bit token counter, incremented by every acquire
  kTokHi = 11,
  kRecovered = 12,  // recovered units not yet handed to an acquirer
  kDeadPid = 13,    // pid of the last holder found dead
  kDeadAt = 14,     // float64 (bytes 56..63): ms since the epoch of that recovery
  kInitial = 16,    // initial value (informational)
};

// Int32 word indices inside a slot record.
enum Slot : int {
  kPid = 0,       // pid of the owner (informational: liveness is the OFD lock)
  kHeld = 1,      // units this slot holds
  kGotRec = 2,    // set when this slot's last acquire got a recovered unit
  kJournal = 3,   // number of valid journal entries (0: no operation in flight)
  kEntries = 4,   // 6 entries of (header-relative word index, old value)
  kSlotTokLo = 16,  // token of this slot's last acquire
  kSlotTokHi = 17,
  kRecPid = 18,     // dead pid reported with kGotRec
  kRecAt = 20,      // float64 (bytes 80..87): when that holder was found dead
};

constexpr int32_t kMagicValue = 0x43504950;
constexpr int32_t kLayoutVersion = 1;
constexpr int32_t kKindSemaphore = 1;
constexpr int32_t kKindLock = 2;  // Web Locks (native/sync/weblocks.cc)
constexpr int kMaxEntries = 6;
constexpr size_t kHeaderBytes = 256;
constexpr size_t kSlotBytes = 128;
constexpr int32_t kSlotCount = 512;
constexpr size_t kSegmentBytes = kHeaderBytes + kSlotBytes * kSlotCount;
constexpr int64_t kCheckNs = 250LL * 1000 * 1000;  // liveness check period

// Outcomes of TryAcquire / Release (negative: an errno).
constexpr int kTaken = 1;
constexpr int kTakenRecovered = 2;
constexpr int kNone = 0;
constexpr int kOverRelease = -100000;

// One open segment: the mapping, the descriptor whose OFD lock keeps `slot`
// alive, and the slot we own. Close() gives the slot up at once (what it still
// holds goes back, the descriptor closes) and unmaps, or leaves the unmapping
// to the last thread still asleep on the futex word. Native operations hold
// `mu` and fail with EBADF once the slot is given up.
struct Seg;
// How a kind gives back what a dead (or closing) slot held, under the
// internal lock, after its journal was rolled back; returns nonzero if
// anything changed (waiters are then woken).
using RecoverFn = int32_t (*)(Seg* s, int32_t id);
// Another kind of segment with this geometry (header words kLock, kSeq,
// kWaiters and the slot words kPid, kJournal, kEntries as here): its opens
// (robOpen's `kind` argument) use `recover` instead of the semaphore's.
void RegisterKind(int32_t kind, RecoverFn recover);

struct Seg {
  std::string name;
  int32_t kind = kKindSemaphore;
  RecoverFn recover = nullptr;  // nullptr: the semaphore's
  int fd = -1;
  int32_t* m = nullptr;  // the mapping, as int32 words
  int32_t slot = 0;
  std::atomic<bool> closed{false};
  std::mutex mu;
  int sleepers = 0;  // under mu: engine or sync threads inside FUTEX_WAIT
  int64_t next_check_ns = 0;  // JS thread: throttles TryAcquire's liveness check
  // Under mu: what the last dead-holder scan (made under the internal lock)
  // found: the other slots holding units, and the token then. While the
  // token is unchanged nobody has acquired since, so no other slot can hold
  // a unit: the next check asks only whether those slots live, instead of
  // reading all 512 (a wait on an unheld semaphore checks nothing).
  static constexpr int kMemoSlots = 8;
  bool memo_valid = false;
  uint64_t memo_token = 0;
  int memo_count = 0;
  int32_t memo_slot[kMemoSlots] = {};
  void* teardown = nullptr;   // JS thread: the environment cleanup hook's record

  ~Seg();
  bool Close();
};

// Shared by every kind of segment (the caller holds s->mu where it matters).
inline int32_t SlotWord(int32_t id) {
  return static_cast<int32_t>((kHeaderBytes + kSlotBytes * static_cast<size_t>(id - 1)) / 4);
}
inline int32_t* SlotRec(Seg* s, int32_t id) { return s->m + SlotWord(id); }
bool SlotAlive(Seg* s, int32_t id);  // false once the kernel says its owner is gone
void LockInternal(Seg* s);           // the internal lock word, taking over a dead owner
void UnlockInternal(Seg* s);
void Rollback(Seg* s, int32_t id);   // undoes slot id's half-done journaled change
// Under the internal lock: rolls slot id back and gives back what it held (per kind).
int32_t RecoverSlot(Seg* s, int32_t id);
double NowMs();
void StoreDouble(int32_t* words, int index, double v);

// The undo journal of our own slot: Save the words you will change, Begin,
// change them, End. A recoverer restores a dead slot's entries newest first.
struct Tx {
  Seg* s;
  int32_t* rec;
  int n = 0;
  explicit Tx(Seg* seg) : s(seg), rec(SlotRec(seg, seg->slot)) {}
  void Save(int32_t word) {
    rec[kEntries + 2 * n] = word;
    rec[kEntries + 2 * n + 1] = s->m[word];
    n++;
  }
  void Begin() { __atomic_store_n(rec + kJournal, n, __ATOMIC_SEQ_CST); }
  void End() { __atomic_store_n(rec + kJournal, 0, __ATOMIC_SEQ_CST); }
};

// napi-free protocol; each takes the internal lock itself.
int TryAcquire(Seg* s, bool check_dead);
int Release(Seg* s, int32_t n);
int RecoverDead(Seg* s);  // number of units recovered
void Wake(Seg* s);
// Blocks until taken (kTaken/kTakenRecovered), ETIMEDOUT at until_ns (-1:
// never), or an errno. *next_check carries the periodic check across calls.
int WaitUntil(Seg* s, int64_t until_ns, int64_t* next_check, const std::atomic<bool>* cancel);

}  // namespace robust

// The handle JavaScript holds: one reference to the segment.
using RobustPtr = std::shared_ptr<robust::Seg>;

template <>
struct HandleTraits<RobustPtr> {
  static constexpr HandleKind kind = HandleKind::kRobustSemaphore;
  static bool Closed(const RobustPtr& s) { return s->closed.load(std::memory_order_relaxed); }
  static const std::string& Name(const RobustPtr& s) { return s->name; }
};

}  // namespace pipc
