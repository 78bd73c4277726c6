// The shared-memory queue: a byte ring of length-prefixed records in one
// segment (/dev/shm/pipc.NAME.queue), a table of per-process slots guarded by
// their owners' OFD locks, one internal lock with an undo journal, and two
// futex sequence words with waiter counts. The layout is the contract with
// JavaScript (lib/queue/ring.ts), Python and C peers; docs/api.md ("Shared-
// memory queue: segment layout and protocol") describes it.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <atomic>
#include <memory>
#include <string>

#include "../core/handle.h"

namespace pipc {
namespace ring {

// Int32 word indices of the header (little-endian, at the segment's start).
enum Header : int {
  kMagic = 0,        // 'PIPQ' = 0x51504950, written last by the creator
  kVersion = 1,      // kLayoutVersion
  kKind = 2,         // kKindQueue
  kSlotBase = 3,     // byte offset of slot 1 (kHeaderBytes)
  kSlots = 4,        // number of slots (kSlotCount)
  kSlotSize = 5,     // bytes per slot (kSlotBytes)
  kDataOffset = 6,   // byte offset of the ring (kDataStart)
  kCapacity = 7,     // ring bytes, a multiple of 8
  kMaxsize = 8,      // item bound (0: unbounded)
  kLock = 16,        // internal lock: 0 free, else the holder's slot id
  kLockWaiters = 17, // threads sleeping on kLock
  kHead = 32,        // byte offset (in the ring) of the oldest record
  kTail = 33,        // byte offset where the next record goes
  kUsed = 34,        // bytes in use, wrap padding included
  kCount = 35,       // committed items
  kJournal = 36,     // 1 while the lock holder changes kHead..kCount
  kJHead = 37,       // their values before the change
  kJTail = 38,
  kJUsed = 39,
  kJCount = 40,
  kPutSeq = 48,      // futex word: +1 by every put (consumers sleep on it)
  kGetWaiters = 49,  // consumers sleeping on kPutSeq
  kGetSeq = 56,      // futex word: +1 by every get (producers sleep on it)
  kPutWaiters = 57,  // producers sleeping on kGetSeq
};

// Int32 word indices inside a slot.
enum SlotWord : int {
  kSlotPid = 0,         // the owner's pid (informational: liveness is the OFD lock)
  kSlotGetWaiting = 1,  // this slot's share of kGetWaiters
  kSlotPutWaiting = 2,  // this slot's share of kPutWaiters
};

constexpr int32_t kMagicValue = 0x51504950;
constexpr int32_t kLayoutVersion = 1;
constexpr int32_t kKindQueue = 2;
constexpr size_t kHeaderBytes = 256;
constexpr size_t kSlotBytes = 64;
constexpr int32_t kSlotCount = 512;
constexpr size_t kDataStart = kHeaderBytes + kSlotBytes * kSlotCount;
constexpr uint32_t kRecordHeader = 8;  // u32 length, u32 reserved (0)
constexpr uint32_t kWrapMarker = 0xFFFFFFFFu;
constexpr uint32_t kMinCapacity = 64;
constexpr uint32_t kMaxCapacity = 1u << 30;

// What a waiter waits for.
enum Want : int { kReadable = 1, kWritable = 2 };

// One open queue: the descriptor whose OFD lock keeps `slot` alive and the
// mapping. Operations run on the JS thread of the environment that opened it;
// engine threads only sleep on the futex words and read the state.
struct Ring {
  std::string name;
  int fd = -1;
  int32_t* m = nullptr;    // the mapping, as int32 words
  uint8_t* data = nullptr; // the ring
  size_t bytes = 0;        // mapping size
  uint32_t cap = 0;
  int32_t slot = 0;
  std::atomic<bool> closed{false};
  // Threads inside a wait: the descriptor (and with it the slot, whose
  // waiter shares they still hold) is closed by the last one out.
  std::atomic<int> sleepers{0};
  // Record bytes the last put that found no room needed (a writable waiter
  // waits until that much fits).
  std::atomic<uint32_t> want_need{kRecordHeader};
  void* hook = nullptr;  // JS thread: the environment cleanup hook's record
  const char* why = "";  // JS thread: what the last EPROTO found

  ~Ring();
  void Close();
  void CloseFd();
};

}  // namespace ring

using RingPtr = std::shared_ptr<ring::Ring>;

template <>
struct HandleTraits<RingPtr> {
  static constexpr HandleKind kind = HandleKind::kRing;
  static bool Closed(const RingPtr& r) { return r->closed.load(std::memory_order_relaxed); }
  static const std::string& Name(const RingPtr& r) { return r->name; }
};

}  // namespace pipc
