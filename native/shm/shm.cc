#include "shm.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <type_traits>
#include <utility>

#include "../addon.h"
#include "../core/errors.h"
#include "../core/posix.h"

namespace pipc {

Mapping::~Mapping() { Unmap(); }

void Mapping::Unmap() {
  if (addr != nullptr) {
    munmap(addr, size);
    addr = nullptr;
  }
}

namespace {

// ---------------------------------------------------------------------------
// Opening (napi-free)

enum class WhenSmaller : int32_t {
  kMapAsIs = 0,  // map the segment at whatever size it has
  kGrow = 1,     // ftruncate it up to the requested size (zero fill)
  kWait = 2,     // wait briefly for its creator to size it; map only `size`
};

struct OpenParams {
  std::string name;
  bool create = false;
  bool exclusive = false;
  bool read_only = false;
  mode_t mode = 0600;
  size_t size = 0;
  const uint8_t* init = nullptr;
  size_t init_len = 0;
  WhenSmaller when_smaller = WhenSmaller::kMapAsIs;
  // kWait: how long to wait for a racing creator to size the segment (a
  // policy of lib/shm, passed in).
  int64_t size_wait_ns = 0;
};

struct OpenResult {
  uint8_t* addr = nullptr;
  size_t size = 0;
  bool created = false;
  int err = 0;
  const char* syscall = nullptr;
};

bool Fail(OpenResult* r, const char* syscall, int err) {
  r->syscall = syscall;
  r->err = err;
  return false;
}

bool FileSize(int fd, size_t* size) {
  struct stat st;
  if (fstat(fd, &st) == -1) return false;
  *size = static_cast<size_t>(st.st_size);
  return true;
}

// Fills a segment we have just created. The initial bytes are written with
// pwrite, which extends the file and stores the data in one step, so an
// opener that sees the final size also sees the initial contents: no other
// process can observe (and act on) a zero-filled value that is later
// overwritten by its initialiser.
bool InitCreated(int fd, const OpenParams& p, OpenResult* r) {
  size_t done = 0;
  while (done < p.init_len) {
    ssize_t n = pwrite(fd, p.init + done, p.init_len - done, static_cast<off_t>(done));
    if (n == -1 && errno == EINTR) continue;
    if (n == -1) return Fail(r, "pwrite", errno);
    done += static_cast<size_t>(n);
  }
  if (p.size > p.init_len &&
      RetryEintr([&] { return ftruncate(fd, static_cast<off_t>(p.size)); }) == -1) {
    return Fail(r, "ftruncate", errno);
  }
  return true;
}

bool OpenSegment(const OpenParams& p, OpenResult* r) {
  const int access = p.read_only ? O_RDONLY : O_RDWR;
  int fd = -1;
  // With create and without exclusive, try to create first so that we know
  // whether we did (and must initialise); if another process won, open its
  // segment; if it was unlinked in between, go round again.
  for (int attempt = 0;; attempt++) {
    if (p.create) {
      fd = shm_open(p.name.c_str(), access | O_CREAT | O_EXCL | O_CLOEXEC, p.mode);
      if (fd >= 0) {
        r->created = true;
        break;
      }
      if (errno != EEXIST || p.exclusive) return Fail(r, "shm_open", errno);
    }
    fd = shm_open(p.name.c_str(), access | O_CLOEXEC, 0);
    if (fd >= 0) break;
    if (errno != ENOENT || !p.create || attempt >= 100) {
      return Fail(r, "shm_open", errno);
    }
  }

  bool ok = true;
  size_t size = 0;
  if (r->created) {
    ok = InitCreated(fd, p, r);
    size = p.size;
  } else if (!FileSize(fd, &size)) {
    ok = Fail(r, "fstat", errno);
  } else if (size < p.size && p.when_smaller == WhenSmaller::kGrow && !p.read_only) {
    // ftruncate only ever grows here: a racing creator truncates to the same
    // size, and zero fill is what it would have written.
    if (RetryEintr([&] { return ftruncate(fd, static_cast<off_t>(p.size)); }) == -1) {
      ok = Fail(r, "ftruncate", errno);
    } else {
      ok = FileSize(fd, &size) || Fail(r, "fstat", errno);
    }
  } else if (size < p.size && p.when_smaller == WhenSmaller::kWait) {
    const int64_t stop = MonotonicNs() + p.size_wait_ns;
    while (size < p.size && MonotonicNs() < stop) {
      timespec ts = {0, 1000 * 1000};
      nanosleep(&ts, nullptr);
      if (!FileSize(fd, &size)) {
        ok = Fail(r, "fstat", errno);
        break;
      }
    }
  }

  // Typed cells (kWait) map only the bytes they view, however large the
  // segment another program made.
  if (ok && p.when_smaller == WhenSmaller::kWait && size > p.size) size = p.size;

  if (ok) {
    // A read-only handle maps MAP_PRIVATE with PROT_WRITE: pages nobody wrote
    // to are the segment's own pages (other processes' writes show through),
    // and a stray write from JavaScript lands in a private copy of the page
    // instead of raising SIGSEGV in the middle of the VM. The typed APIs refuse
    // to write before it comes to that (see lib/shm.ts).
    const int flags = p.read_only ? MAP_PRIVATE : MAP_SHARED;
    void* addr = mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (addr == MAP_FAILED) {
      ok = Fail(r, "mmap", errno);
    } else {
      r->addr = static_cast<uint8_t*>(addr);
      r->size = size;
    }
  }
  // The mapping keeps the segment alive; the descriptor is not needed past
  // this point, so no descriptor is held per open segment.
  close(fd);
  if (!ok && r->created) shm_unlink(p.name.c_str());
  return ok;
}

// ---------------------------------------------------------------------------
// Handles

void DropBufferRefs(napi_env env, Mapping* m) {
  for (napi_ref ref : m->buffers) napi_delete_reference(env, ref);
  m->buffers.clear();
}

void FinalizeHandle(napi_env env, void* data, void*) {
  auto* h = static_cast<ShmHandle*>(data);
  // The weak references are only needed by close(), which can no longer be
  // called. The mapping itself lives on while an ArrayBuffer still holds it.
  DropBufferRefs(env, h->map.get());
  delete h;
}

// shmOpen(name, create, exclusive, readOnly, mode, size, init, whenSmaller,
//         sizeWaitMs)
//   -> [handle, created, size]
Napi::Value ShmOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OpenParams p;
  p.name = info[0].As<Napi::String>().Utf8Value();
  p.create = info[1].ToBoolean();
  p.exclusive = info[2].ToBoolean();
  p.read_only = info[3].ToBoolean();
  p.mode = static_cast<mode_t>(info[4].As<Napi::Number>().Uint32Value());
  double size = info[5].As<Napi::Number>().DoubleValue();
  if (!(size >= 0 && size <= 9007199254740991.0)) {
    throw Napi::RangeError::New(env, "size out of range");
  }
  p.size = static_cast<size_t>(size);
  if (info[6].IsTypedArray()) {
    Napi::Uint8Array init = info[6].As<Napi::Uint8Array>();
    p.init = init.Data();
    p.init_len = init.ByteLength();
  }
  p.when_smaller = static_cast<WhenSmaller>(info[7].As<Napi::Number>().Int32Value());
  if (p.when_smaller == WhenSmaller::kWait) {
    p.size_wait_ns = static_cast<int64_t>(info[8].As<Napi::Number>().DoubleValue() * 1e6);
  }

  OpenResult r;
  if (!OpenSegment(p, &r)) ThrowIPCError(env, r.err, r.syscall, p.name);

  auto* h = new ShmHandle();
  h->map = std::make_shared<Mapping>();
  h->map->addr = r.addr;
  h->map->size = r.size;
  h->map->read_only = p.read_only;
  h->map->name = p.name;
  Napi::Value handle = Wrap(env, h, FinalizeHandle, [](ShmHandle* x) { delete x; });
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, handle);
  out.Set(1u, Napi::Boolean::New(env, r.created));
  out.Set(2u, Napi::Number::New(env, static_cast<double>(r.size)));
  return out;
}

void FinalizeBuffer(napi_env, void*, void* hint) {
  delete static_cast<MappingPtr*>(hint);
}

// shmBuffer(handle, maxLength) -> ArrayBuffer over the whole mapping, without
// copying. maxLength is the runtime's buffer.constants.MAX_LENGTH.
Napi::Value ShmBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ShmHandle* h = &UnwrapOpen<ShmHandle>(info[0], "mmap");
  Mapping* m = h->map.get();
  // Past the runtime's limit Node refuses the buffer, having already run the
  // finalizer (which frees `hold`): refuse first, with a clear error.
  if (static_cast<double>(m->size) > info[1].As<Napi::Number>().DoubleValue()) {
    throw Napi::RangeError::New(env, "segment too large for one ArrayBuffer");
  }
  auto* hold = new MappingPtr(h->map);
  napi_value ab;
  if (napi_create_external_arraybuffer(env, m->addr, m->size, FinalizeBuffer, hold, &ab) != napi_ok) {
    // Node ran FinalizeBuffer on its way out (Node 20 does): `hold` is gone.
    throw env.GetAndClearPendingException();
  }
  // Forget references to ArrayBuffers already collected before adding one.
  std::vector<napi_ref> live;
  for (napi_ref ref : m->buffers) {
    napi_value v = nullptr;
    if (napi_get_reference_value(env, ref, &v) == napi_ok && v != nullptr) {
      live.push_back(ref);
    } else {
      napi_delete_reference(env, ref);
    }
  }
  m->buffers.swap(live);
  napi_ref ref;
  if (napi_create_reference(env, ab, 0, &ref) == napi_ok) m->buffers.push_back(ref);
  return Napi::Value(env, ab);
}

// shmClose(handle): detaches every ArrayBuffer handed out, then unmaps.
Napi::Value ShmClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Mapping* m = Unwrap<ShmHandle>(info[0]).map.get();
  for (napi_ref ref : m->buffers) {
    napi_value v = nullptr;
    if (napi_get_reference_value(env, ref, &v) == napi_ok && v != nullptr) {
      napi_detach_arraybuffer(env, v);
    }
  }
  DropBufferRefs(env, m);
  m->Unmap();
  return env.Undefined();
}

// shmUnlink(name)
Napi::Value ShmUnlink(const Napi::CallbackInfo& info) {
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (shm_unlink(name.c_str()) == -1) ThrowIPCError(info.Env(), errno, "shm_unlink", name);
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------
// Atomic operations

size_t ElemSize(ElemType t) {
  switch (t) {
    case ElemType::kInt8:
    case ElemType::kUint8:
      return 1;
    case ElemType::kInt16:
    case ElemType::kUint16:
      return 2;
    case ElemType::kInt32:
    case ElemType::kUint32:
      return 4;
    case ElemType::kInt64:
    case ElemType::kUint64:
      return 8;
  }
  return 0;
}

enum class Op { kLoad, kStore, kAdd, kSub, kAnd, kOr, kXor, kExchange, kCompareExchange };

// Argument conversion. JavaScript validated types and ranges already; these
// are the cheap native guards that keep a wrong call from doing harm.
template <typename T>
bool FromJs(napi_env env, napi_value v, T* out) {
  if constexpr (sizeof(T) == 8) {
    bool lossless;
    napi_status st;
    if constexpr (std::is_signed_v<T>) {
      int64_t x;
      st = napi_get_value_bigint_int64(env, v, &x, &lossless);
      *out = static_cast<T>(x);
    } else {
      uint64_t x;
      st = napi_get_value_bigint_uint64(env, v, &x, &lossless);
      *out = static_cast<T>(x);
    }
    if (st != napi_ok) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "value must be a bigint");
      return false;
    }
  } else if constexpr (std::is_same_v<T, uint32_t>) {
    if (napi_get_value_uint32(env, v, out) != napi_ok) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "value must be a number");
      return false;
    }
  } else {
    int32_t x;
    if (napi_get_value_int32(env, v, &x) != napi_ok) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "value must be a number");
      return false;
    }
    *out = static_cast<T>(x);
  }
  return true;
}

template <typename T>
napi_value ToJs(napi_env env, T x) {
  napi_value r;
  if constexpr (std::is_same_v<T, int64_t>) {
    napi_create_bigint_int64(env, x, &r);
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    napi_create_bigint_uint64(env, x, &r);
  } else if constexpr (std::is_same_v<T, uint32_t>) {
    napi_create_uint32(env, x, &r);
  } else {
    napi_create_int32(env, static_cast<int32_t>(x), &r);
  }
  return r;
}

template <typename T, Op op>
napi_value Apply(napi_env env, T* p, napi_value* args, const Mapping* m) {
  if constexpr (op == Op::kLoad) {
    return ToJs<T>(env, __atomic_load_n(p, __ATOMIC_SEQ_CST));
  } else {
    if (m->read_only) return ThrowIPCErrorC(env, EACCES, "write", m->name);
    T a;
    if (!FromJs<T>(env, args[0], &a)) return nullptr;
    if constexpr (op == Op::kStore) {
      __atomic_store_n(p, a, __ATOMIC_SEQ_CST);
      return nullptr;
    } else if constexpr (op == Op::kAdd) {
      return ToJs<T>(env, __atomic_fetch_add(p, a, __ATOMIC_SEQ_CST));
    } else if constexpr (op == Op::kSub) {
      return ToJs<T>(env, __atomic_fetch_sub(p, a, __ATOMIC_SEQ_CST));
    } else if constexpr (op == Op::kAnd) {
      return ToJs<T>(env, __atomic_fetch_and(p, a, __ATOMIC_SEQ_CST));
    } else if constexpr (op == Op::kOr) {
      return ToJs<T>(env, __atomic_fetch_or(p, a, __ATOMIC_SEQ_CST));
    } else if constexpr (op == Op::kXor) {
      return ToJs<T>(env, __atomic_fetch_xor(p, a, __ATOMIC_SEQ_CST));
    } else if constexpr (op == Op::kExchange) {
      return ToJs<T>(env, __atomic_exchange_n(p, a, __ATOMIC_SEQ_CST));
    } else {
      T desired;
      if (!FromJs<T>(env, args[1], &desired)) return nullptr;
      // On failure `a` receives the current value; either way it is the old one.
      __atomic_compare_exchange_n(p, &a, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
      return ToJs<T>(env, a);
    }
  }
}

// What each bound atomic function carries: where its elements are, and a
// reference that keeps the Mapping object (not the mapping) alive while the
// function exists.
struct OpsFn {
  Mapping* map;
  size_t offset;
  size_t count;
  MappingPtr keep;
};

// The atomic operations are functions bound to one view (napi_create_function
// data), one instantiation per element type: the hot path is one
// napi_get_cb_info, one argument conversion, the instruction and the result,
// with no handle to unwrap and no type switch.
//   fixed (Value):        op(value[, replacement])
//   indexed (SharedArray): op(index, value[, replacement])
template <typename T, Op op, bool fixed>
napi_value BoundOp(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 3;
  napi_value argv[3];
  void* data;
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, &data);
  const OpsFn* f = static_cast<const OpsFn*>(data);
  const Mapping* m = f->map;
  if (m->addr == nullptr) return ThrowIPCErrorC(env, EBADF, "mmap", m->name);
  uint32_t index = 0;
  if constexpr (!fixed) {
    if (napi_get_value_uint32(env, argv[0], &index) != napi_ok || index >= f->count) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "index out of range");
      return nullptr;
    }
  }
  T* p = reinterpret_cast<T*>(m->addr + f->offset) + index;
  return Apply<T, op>(env, p, fixed ? argv : argv + 1, m);
}

void FinalizeOpsFn(napi_env, void* data, void*) { delete static_cast<OpsFn*>(data); }

template <typename T, bool fixed>
void AddOps(Napi::Env env, Napi::Object ops, const ShmView* v) {
  const std::pair<const char*, napi_callback> fns[] = {
      {"load", BoundOp<T, Op::kLoad, fixed>},
      {"store", BoundOp<T, Op::kStore, fixed>},
      {"add", BoundOp<T, Op::kAdd, fixed>},
      {"sub", BoundOp<T, Op::kSub, fixed>},
      {"and", BoundOp<T, Op::kAnd, fixed>},
      {"or", BoundOp<T, Op::kOr, fixed>},
      {"xor", BoundOp<T, Op::kXor, fixed>},
      {"exchange", BoundOp<T, Op::kExchange, fixed>},
      {"compareExchange", BoundOp<T, Op::kCompareExchange, fixed>},
  };
  for (const auto& [name, cb] : fns) {
    auto* data = new OpsFn{v->map.get(), v->offset, v->count, v->map};
    napi_value fn;
    if (napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, data, &fn) != napi_ok ||
        napi_add_finalizer(env, fn, data, FinalizeOpsFn, nullptr, nullptr) != napi_ok) {
      delete data;
      throw Napi::Error::New(env, "cannot create atomic operation");
    }
    ops.Set(name, Napi::Value(env, fn));
  }
}

template <bool fixed>
void AddOpsFor(Napi::Env env, Napi::Object ops, const ShmView* v) {
  switch (v->type) {
    case ElemType::kInt8: return AddOps<int8_t, fixed>(env, ops, v);
    case ElemType::kUint8: return AddOps<uint8_t, fixed>(env, ops, v);
    case ElemType::kInt16: return AddOps<int16_t, fixed>(env, ops, v);
    case ElemType::kUint16: return AddOps<uint16_t, fixed>(env, ops, v);
    case ElemType::kInt32: return AddOps<int32_t, fixed>(env, ops, v);
    case ElemType::kUint32: return AddOps<uint32_t, fixed>(env, ops, v);
    case ElemType::kInt64: return AddOps<int64_t, fixed>(env, ops, v);
    case ElemType::kUint64: return AddOps<uint64_t, fixed>(env, ops, v);
  }
}

// shmOps(handle, type, byteOffset, count, fixed) -> { load, store, add, sub,
// and, or, xor, exchange, compareExchange } on `count` elements of `type` at
// byteOffset; with `fixed`, on the first element only, without an index.
Napi::Value ShmOps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ShmHandle* h = &UnwrapOpen<ShmHandle>(info[0], "mmap");
  int32_t type = info[1].As<Napi::Number>().Int32Value();
  double offset = info[2].As<Napi::Number>().DoubleValue();
  double count = info[3].As<Napi::Number>().DoubleValue();
  if (type < 0 || type > static_cast<int32_t>(ElemType::kUint64)) {
    throw Napi::RangeError::New(env, "unknown element type");
  }
  size_t size = ElemSize(static_cast<ElemType>(type));
  Mapping* m = h->map.get();
  // Atomic instructions need natural alignment; the mapping is page aligned.
  if (!(offset >= 0 && count >= 1 && count <= 4294967295.0) ||
      static_cast<size_t>(offset) % size != 0 ||
      static_cast<size_t>(offset) + static_cast<size_t>(count) * size > m->size) {
    throw Napi::RangeError::New(env, "view out of the mapping's bounds or misaligned");
  }
  ShmView v;
  v.type = static_cast<ElemType>(type);
  v.offset = static_cast<size_t>(offset);
  v.count = static_cast<size_t>(count);
  v.map = h->map;
  Napi::Object ops = Napi::Object::New(env);
  if (info[4].ToBoolean()) {
    AddOpsFor<true>(env, ops, &v);
  } else {
    AddOpsFor<false>(env, ops, &v);
  }
  return ops;
}



}  // namespace

void InitShm(Napi::Env env, Napi::Object exports) {
  exports.Set("shmOpen", Napi::Function::New(env, ShmOpen));
  exports.Set("shmBuffer", Napi::Function::New(env, ShmBuffer));
  exports.Set("shmClose", Napi::Function::New(env, ShmClose));
  exports.Set("shmUnlink", Napi::Function::New(env, ShmUnlink));
  exports.Set("shmOps", Napi::Function::New(env, ShmOps));
  exports.Set("SHM_PAGE_SIZE", Napi::Number::New(env, static_cast<double>(sysconf(_SC_PAGESIZE))));
}

}  // namespace pipc
