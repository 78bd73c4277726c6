#include "shm.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <type_traits>
#include <utility>

#include "../addon.h"
#include "../core/args.h"
#include "../core/errors.h"
#include "../core/posix.h"
#include "../core/safe-open.h"

namespace pipc {

Mapping::~Mapping() {
  Retire();
  if (retired != nullptr) munmap(retired, size);
}

void Mapping::Retire() {
  if (addr == nullptr) return;
  // MAP_FIXED replaces the shared pages in one step: there is no instant at
  // which the range is unmapped. If it fails the segment simply stays mapped
  // until the destructor, which is safe too.
  mmap(addr, size, PROT_READ | PROT_WRITE,
       MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  retired = addr;
  addr = nullptr;
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
  OwnerPolicy owner = OwnerPolicy::Self();
};

struct OpenResult {
  uint8_t* addr = nullptr;
  size_t size = 0;
  bool created = false;
  int err = 0;
  const char* syscall = nullptr;
  std::string why;  // what was found at the name, when that is the failure
};

bool Fail(OpenResult* r, const char* syscall, int err) {
  r->syscall = syscall;
  r->err = err;
  if (std::string(syscall) != "shm_open") r->why.clear();
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
  // Every open goes through OpenShmFile: no symlink is followed, a FIFO
  // cannot block us, and an existing file must be a regular one owned as
  // p.owner allows.
  for (int attempt = 0;; attempt++) {
    if (p.create) {
      fd = OpenShmFile(p.name.c_str(), access | O_CREAT | O_EXCL, p.mode, p.owner, 0,
                       nullptr, &r->why);
      if (fd >= 0) {
        r->created = true;
        break;
      }
      if (fd != -EEXIST || p.exclusive) return Fail(r, "shm_open", -fd);
    }
    fd = OpenShmFile(p.name.c_str(), access, 0, p.owner, 0, nullptr, &r->why);
    if (fd >= 0) break;
    if (fd != -ENOENT || !p.create || attempt >= 100) {
      return Fail(r, "shm_open", -fd);
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
    void* addr = size == 0 ? MAP_FAILED
                           : mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (size == 0) {
      ok = Fail(r, "mmap", EINVAL);
      r->why = "is empty (0 bytes): nothing to map";
    } else if (addr == MAP_FAILED) {
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
//         sizeWaitMs, owner) -> [handle, created, size]. owner: see
//         OwnerPolicy::FromJs.
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
  if (info[9].IsNumber()) p.owner = OwnerPolicy::FromJs(info[9].As<Napi::Number>().DoubleValue());

  OpenResult r;
  if (!OpenSegment(p, &r)) ThrowIPCError(env, r.err, r.syscall, p.name, r.why);

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

// shmClose(handle): detaches every ArrayBuffer handed out, then retires the
// mapping (Mapping::Retire): the segment is no longer mapped.
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
  m->Retire();
  return env.Undefined();
}

// shmUnlink(name)
Napi::Value ShmUnlink(const Napi::CallbackInfo& info) {
  return CallWithName(info, shm_unlink, "shm_unlink");
}

}  // namespace

void InitShm(Napi::Env env, Napi::Object exports) {
  exports.Set("shmOpen", Napi::Function::New(env, ShmOpen));
  exports.Set("shmBuffer", Napi::Function::New(env, ShmBuffer));
  exports.Set("shmClose", Napi::Function::New(env, ShmClose));
  exports.Set("shmUnlink", Napi::Function::New(env, ShmUnlink));
  exports.Set("SHM_PAGE_SIZE", Napi::Number::New(env, static_cast<double>(sysconf(_SC_PAGESIZE))));
}

}  // namespace pipc
