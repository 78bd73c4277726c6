#include "semaphore.h"

#include <fcntl.h>
#include <limits.h>
#include <sched.h>

#include "../addon.h"
#include "../core/errors.h"
#include "../core/posix.h"
#include "../core/wait.h"

namespace pipc {

Sem::~Sem() {
  if (sem != nullptr) sem_close(sem);
}

void Sem::DropUser() {
  if (users.fetch_sub(1, std::memory_order_acq_rel) == 1 && sem != nullptr) {
    sem_close(sem);
    sem = nullptr;
  }
}

bool Sem::Close() {
  if (closed.exchange(true, std::memory_order_acq_rel)) return false;
  DropUser();
  return true;
}

namespace {

using SemPtr = std::shared_ptr<Sem>;

// Hot-path argument access, plain N-API: an external holding a SemPtr.
inline Sem* GetSem(napi_env env, napi_value v) {
  void* data = nullptr;
  if (napi_get_value_external(env, v, &data) != napi_ok || data == nullptr) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "not a semaphore handle");
    return nullptr;
  }
  Sem* s = static_cast<SemPtr*>(data)->get();
  if (s->magic != Sem::kMagic) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "Illegal invocation");
    return nullptr;
  }
  if (s->closed.load(std::memory_order_relaxed)) {
    ThrowIPCErrorC(env, EBADF, "sem_trywait", s->name);
    return nullptr;
  }
  return s;
}

void FinalizeSem(napi_env, void* data, void*) {
  auto* holder = static_cast<SemPtr*>(data);
  (*holder)->Close();
  delete holder;
}

// semOpen(name, create, exclusive, mode, initialValue) -> handle
Napi::Value SemOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  bool create = info[1].ToBoolean();
  bool exclusive = info[2].ToBoolean();
  mode_t mode = static_cast<mode_t>(info[3].As<Napi::Number>().Uint32Value());
  unsigned value = info[4].As<Napi::Number>().Uint32Value();
  int flags = create ? (O_CREAT | (exclusive ? O_EXCL : 0)) : 0;
  sem_t* sem = create ? sem_open(name.c_str(), flags, mode, value)
                      : sem_open(name.c_str(), flags);
  if (sem == SEM_FAILED) ThrowIPCError(env, errno, "sem_open", name);
  auto* holder = new SemPtr(std::make_shared<Sem>());
  (*holder)->sem = sem;
  (*holder)->name = name;
  napi_value ext;
  napi_status st = napi_create_external(env, holder, FinalizeSem, nullptr, &ext);
  if (st != napi_ok) {
    delete holder;
    throw Napi::Error::New(env, "cannot wrap semaphore");
  }
  return Napi::Value(env, ext);
}

// Bound fast paths: functions whose N-API data is the semaphore itself, so a
// call needs no argument unwrapping (the uncontended pair is dominated by the
// cost of crossing into the addon).
inline Sem* BoundSem(napi_env env, napi_callback_info cbinfo, const char* syscall) {
  void* data = nullptr;
  size_t argc = 0;
  napi_get_cb_info(env, cbinfo, &argc, nullptr, nullptr, &data);
  Sem* s = static_cast<SemPtr*>(data)->get();
  if (s->closed.load(std::memory_order_relaxed)) {
    ThrowIPCErrorC(env, EBADF, syscall, s->name);
    return nullptr;
  }
  return s;
}

napi_value BoundTryWait(napi_env env, napi_callback_info cbinfo) {
  Sem* s = BoundSem(env, cbinfo, "sem_trywait");
  if (s == nullptr) return nullptr;
  int r;
  while ((r = sem_trywait(s->sem)) == -1 && errno == EINTR) {
  }
  if (r == -1 && errno != EAGAIN) {
    return ThrowIPCErrorC(env, errno, "sem_trywait", s->name);
  }
  napi_value result;
  napi_get_boolean(env, r == 0, &result);
  return result;
}

napi_value BoundPost(napi_env env, napi_callback_info cbinfo) {
  Sem* s = BoundSem(env, cbinfo, "sem_post");
  if (s == nullptr) return nullptr;
  if (sem_post(s->sem) == -1) return ThrowIPCErrorC(env, errno, "sem_post", s->name);
  return nullptr;
}

void FinalizeBound(napi_env, void* data, void*) {
  delete static_cast<SemPtr*>(data);
}

napi_value Bind(napi_env env, const SemPtr& sem, const char* name, napi_callback cb) {
  auto* holder = new SemPtr(sem);
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, holder, &fn);
  napi_add_finalizer(env, fn, holder, FinalizeBound, nullptr, nullptr);
  return fn;
}

// semBind(h) -> [tryWait(), post()] bound to the semaphore.
Napi::Value SemBind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  void* data = nullptr;
  if (GetSem(env, info[0]) == nullptr) throw env.GetAndClearPendingException();
  napi_get_value_external(env, info[0], &data);
  const SemPtr& sem = *static_cast<SemPtr*>(data);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Value(env, Bind(env, sem, "tryWait", BoundTryWait)));
  out.Set(1u, Napi::Value(env, Bind(env, sem, "post", BoundPost)));
  return out;
}

// semPost(h) -> undefined, or semPost(h, n) posting n times.
napi_value SemPost(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);
  Sem* s = GetSem(env, argv[0]);
  if (s == nullptr) return nullptr;
  uint32_t n = 1;
  if (argc > 1) napi_get_value_uint32(env, argv[1], &n);
  // Past SEM_VALUE_MAX nothing is posted (sem_post would fail part-way).
  int v = 0;
  if (n > 1 && sem_getvalue(s->sem, &v) == 0 &&
      static_cast<int64_t>(v) + n > SEM_VALUE_MAX) {
    return ThrowIPCErrorC(env, EOVERFLOW, "sem_post", s->name);
  }
  for (uint32_t i = 0; i < n; i++) {
    if (sem_post(s->sem) == -1) {
      return ThrowIPCErrorC(env, errno, "sem_post", s->name);
    }
  }
  return nullptr;
}

// semValue(h) -> number
napi_value SemValue(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);
  Sem* s = GetSem(env, argv[0]);
  if (s == nullptr) return nullptr;
  int v = 0;
  if (sem_getvalue(s->sem, &v) == -1) {
    return ThrowIPCErrorC(env, errno, "sem_getvalue", s->name);
  }
  napi_value result;
  napi_create_int32(env, v < 0 ? 0 : v, &result);
  return result;
}

// Blocks the calling thread until the semaphore is taken or deadline_ns passes
// (-1: no deadline). Returns 0, ETIMEDOUT, or an errno.
int WaitBlocking(sem_t* sem, int64_t deadline_ns) {
  for (;;) {
    int r;
    if (deadline_ns < 0) {
      r = sem_wait(sem);
    } else {
      timespec ts = NsToTimespec(deadline_ns);
      r = sem_clockwait(sem, CLOCK_MONOTONIC, &ts);
    }
    if (r == 0) return 0;
    if (errno != EINTR) return errno;
  }
}

// semWaitSync(h, timeoutMs) -> boolean; timeoutMs < 0 waits forever.
Napi::Value SemWaitSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Sem* s = GetSem(env, info[0]);
  if (s == nullptr) throw env.GetAndClearPendingException();
  double timeout = info[1].As<Napi::Number>().DoubleValue();
  int64_t deadline =
      timeout < 0 ? -1 : MonotonicNs() + static_cast<int64_t>(timeout * 1e6);
  int r = WaitBlocking(s->sem, deadline);
  if (r == ETIMEDOUT) return Napi::Boolean::New(env, false);
  if (r != 0) ThrowIPCError(env, r, "sem_clockwait", s->name);
  return Napi::Boolean::New(env, true);
}

class SemWaitJob : public WaitJob {
 public:
  SemWaitJob(SemPtr sem, int64_t spin_ns) : s_(std::move(sem)), spin_ns_(spin_ns) {
    s_->AddUser();
  }
  ~SemWaitJob() override { s_->DropUser(); }

  int WaitUntil(int64_t until_ns) override {
    if (spin_ns_ > 0) {
      // A short bounded spin: a hand-off that arrives within it costs no
      // sleep/wake-up of this thread.
      int64_t stop = MonotonicNs() + spin_ns_;
      if (stop > until_ns) stop = until_ns;
      spin_ns_ = 0;
      do {
        if (sem_trywait(s_->sem) == 0) return 0;
        for (int i = 0; i < 64; i++) __builtin_ia32_pause();
      } while (MonotonicNs() < stop);
    }
    return WaitBlocking(s_->sem, until_ns);
  }

  void Undo() override { sem_post(s_->sem); }

 private:
  SemPtr s_;
  int64_t spin_ns_;
};

// semWaitAsync(h, timeoutMs, callback) -> token. callback(err, acquired).
Napi::Value SemWaitAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  void* data = nullptr;
  Sem* s = GetSem(env, info[0]);
  if (s == nullptr) throw env.GetAndClearPendingException();
  napi_get_value_external(env, info[0], &data);
  double timeout = info[1].As<Napi::Number>().DoubleValue();
  WaitEngine* engine = AddonData::Get(env)->engine.get();
  auto job = std::make_shared<SemWaitJob>(*static_cast<SemPtr*>(data),
                                          engine->spin_ns());
  if (timeout >= 0) {
    job->deadline_ns = MonotonicNs() + static_cast<int64_t>(timeout * 1e6);
  }
  engine->Submit(env, job, info[2].As<Napi::Function>());
  return JobToken(env, job);
}

Napi::Value SemClose(const Napi::CallbackInfo& info) {
  void* data = nullptr;
  if (napi_get_value_external(info.Env(), info[0], &data) == napi_ok && data) {
    (*static_cast<SemPtr*>(data))->Close();
  }
  return info.Env().Undefined();
}

Napi::Value SemUnlink(const Napi::CallbackInfo& info) {
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (sem_unlink(name.c_str()) == -1) {
    ThrowIPCError(info.Env(), errno, "sem_unlink", name);
  }
  return info.Env().Undefined();
}


}  // namespace

void InitSemaphore(Napi::Env env, Napi::Object exports) {
  exports.Set("semOpen", Napi::Function::New(env, SemOpen));
  exports.Set("semBind", Napi::Function::New(env, SemBind));
  SetRawFunction(env, exports, "semPost", SemPost);
  SetRawFunction(env, exports, "semValue", SemValue);
  exports.Set("semWaitSync", Napi::Function::New(env, SemWaitSync));
  exports.Set("semWaitAsync", Napi::Function::New(env, SemWaitAsync));
  exports.Set("semClose", Napi::Function::New(env, SemClose));
  exports.Set("semUnlink", Napi::Function::New(env, SemUnlink));
  exports.Set("SEM_VALUE_MAX", Napi::Number::New(env, SEM_VALUE_MAX));
}

}  // namespace pipc
