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
// alive (they then read as empty) and unmaps at once.
struct Mapping {
  uint8_t* addr = nullptr;  // nullptr once unmapped
  size_t size = 0;
  bool read_only = false;
  std::string name;
  // Weak references to the ArrayBuffers handed out, for detaching on close.
  std::vector<napi_ref> buffers;

  ~Mapping();
  void Unmap();
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

// Element types of the typed views (Python array typecodes).
enum class ElemType : int32_t {
  kInt8 = 0,    // b
  kUint8 = 1,   // B
  kInt16 = 2,   // h
  kUint16 = 3,  // H
  kInt32 = 4,   // i
  kUint32 = 5,  // I
  kInt64 = 6,   // l, q
  kUint64 = 7,  // L, Q
};

// A typed window on a mapping for the atomic operations: `count` elements of
// `type` starting at byte `offset`.
struct ShmView {
  ElemType type = ElemType::kInt32;
  size_t offset = 0;
  size_t count = 0;
  MappingPtr map;
};

}  // namespace pipc
