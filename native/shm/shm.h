// POSIX shared memory (shm_open + mmap) and atomic operations on it.
#pragma once

#include <node_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../core/handle.h"

namespace pipc {

// One mmap'ed segment. The JavaScript handle owns one reference and every
// external ArrayBuffer handed out owns another, so a forgotten segment stays
// mapped while any ArrayBuffer still points into it and is unmapped by the last
// finalizer. close() is the explicit path: it detaches every ArrayBuffer still
// alive (they then read as empty) and retires the mapping at once.
//
// Retiring replaces the segment's pages with private anonymous zero pages at
// the same address instead of unmapping: an ArrayBuffer whose memory was
// moved out of close()'s reach (ArrayBuffer.prototype.transfer() makes a new
// one that close() cannot detach) then reads zeros and writes into private
// pages, never unmapped memory. The address range is unmapped for real when
// the last holder (handle, ArrayBuffer, atomic function) lets the Mapping go.
struct Mapping {
  uint8_t* addr = nullptr;  // nullptr once retired
  uint8_t* retired = nullptr;  // the range to munmap in the destructor
  size_t size = 0;
  bool read_only = false;
  std::string name;
  // Weak references to the ArrayBuffers handed out, for detaching on close.
  std::vector<napi_ref> buffers;

  ~Mapping();
  // Detaches the segment from the address range (see above). Idempotent.
  void Retire();
};

using MappingPtr = std::shared_ptr<Mapping>;

// What the JavaScript handle (an external) holds.
struct ShmHandle {
  MappingPtr map;
};

template <>
struct HandleTraits<ShmHandle> {
  static constexpr HandleKind kind = HandleKind::kSharedMemory;
  // Closed: unmapped by close().
  static bool Closed(const ShmHandle& h) { return h.map->addr == nullptr; }
  static const std::string& Name(const ShmHandle& h) { return h.map->name; }
};

}  // namespace pipc
