// Crash-safe synchronisation segments for Event, Barrier, Condition and
// JoinableQueue: /dev/shm/pipc.NAME.<kind>, a 256-byte header and a table of
// per-handle slots, each slot owned through an open-file-description lock
// (F_OFD_SETLK on its first byte) that the kernel drops when the owner dies.
// The protocols themselves run in TypeScript with Atomics on the mapping
// (lib/sync/segment.ts); this file opens and checks the file, claims a slot,
// tells whether a slot's owner is alive (F_OFD_GETLK), and sleeps and wakes
// on futex words (no private flag: shared across processes). docs/api.md,
// "Crash-safe synchronisation segments", is the contract with C and Python.
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "../core/handle.h"

namespace pipc {
namespace segment {

// Int32 word indices of the common header.
enum Header : int {
  kMagic = 0,     // 'PIPC' = 0x43504950
  kVersion = 1,   // kLayoutVersion
  kKind = 2,      // Kind below
  kSlots = 4,     // kSlotCount
  kSlotBase = 5,  // byte offset of slot 1 (kHeaderBytes)
  kFirstKindWord = 6,
};

enum Kind : int32_t {
  kEvent = 2,
  kBarrier = 3,
  kCondition = 4,
  kJoinable = 5,
};

constexpr int32_t kMagicValue = 0x43504950;
constexpr int32_t kLayoutVersion = 1;
constexpr size_t kHeaderBytes = 256;
constexpr size_t kSlotBytes = 64;
constexpr int32_t kSlotCount = 256;
constexpr size_t kSegmentBytes = kHeaderBytes + kSlotBytes * kSlotCount;

// Takes the OFD write lock on the first byte of one of `count` slots (slot
// id at header_bytes + slot_bytes * (id - 1)), starting at pid % count + 1:
// 0 and *slot, ENOSPC when every slot is taken, or another errno.
int ClaimOfdSlot(int fd, size_t header_bytes, size_t slot_bytes, int32_t count,
                 int32_t* slot);

// One open segment. The mapping lives as long as any reference (the handle,
// the ArrayBuffer over it, a wait in flight); Close() drops the slot's lock
// at once by closing the descriptor.
struct Seg {
  std::string name;
  int fd = -1;
  int32_t* m = nullptr;
  int32_t slot = 0;
  std::atomic<bool> closed{false};
  void* teardown = nullptr;  // JS thread: the cleanup hook's record

  ~Seg();
  void Close();
};

}  // namespace segment

using SegmentPtr = std::shared_ptr<segment::Seg>;

template <>
struct HandleTraits<SegmentPtr> {
  static constexpr HandleKind kind = HandleKind::kSyncSegment;
  static bool Closed(const SegmentPtr& s) {
    return s->closed.load(std::memory_order_relaxed);
  }
  static const std::string& Name(const SegmentPtr& s) { return s->name; }
};

}  // namespace pipc
