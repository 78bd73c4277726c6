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
  return Wrap(env, holder, FinalizeSem, [](SemPtr* h) {
    (*h)->Close();
    delete h;
  });
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
  const SemPtr& sem = UnwrapOpen<SemPtr>(info[0], "sem_trywait");
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
  SemPtr* h = UnwrapOpen<SemPtr>(env, argv[0], "sem_post");
  if (h == nullptr) return nullptr;
  Sem* s = h->get();
  uint32_t n = 1;
  if (argc > 1) napi_get_value_uint32(env, argv[1], &n);
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
  SemPtr* h = UnwrapOpen<SemPtr>(env, argv[0], "sem_getvalue");
  if (h == nullptr) return nullptr;
  Sem* s = h->get();
  int v = 0;
  if (sem_getvalue(s->sem, &v) == -1) {
    return ThrowIPCErrorC(env, errno, "sem_getvalue", s->name);
  }
  napi_value result;
  napi_create_int32(env, v < 0 ? 0 : v, &result);
  return result;
}

// Blocks the calling thread until the semaphore is taken or deadline_ns passes
// (-1: no deadline). Returns 0, ETIMEDOUT, or an errno; EINTR only if
// `interruptible` (an engine thread, interrupted by the engine), else a
// signal's EINTR is retried.
int WaitBlocking(sem_t* sem, int64_t deadline_ns, bool interruptible) {
  for (;;) {
    int r;
    if (deadline_ns < 0) {
      r = sem_wait(sem);
    } else {
      timespec ts = NsToTimespec(deadline_ns);
      r = sem_clockwait(sem, CLOCK_MONOTONIC, &ts);
    }
    if (r == 0) return 0;
    if (errno != EINTR || interruptible) return errno;
  }
}

// semWaitSync(h, timeoutMs) -> boolean; timeoutMs < 0 waits forever.
Napi::Value SemWaitSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Sem* s = UnwrapOpen<SemPtr>(info[0], "sem_clockwait").get();
  double timeout = info[1].As<Napi::Number>().DoubleValue();
  int64_t deadline =
      timeout < 0 ? -1 : MonotonicNs() + static_cast<int64_t>(timeout * 1e6);
  int r = WaitBlocking(s->sem, deadline, false);
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
        for (int i = 0; i < 64; i++) cpu_relax();
      } while (MonotonicNs() < stop);
    }
    return WaitBlocking(s_->sem, until_ns, true);
  }

  void Undo() override { sem_post(s_->sem); }

 private:
  SemPtr s_;
  int64_t spin_ns_;
};

// semWaitAsync(h, timeoutMs, callback) -> token. callback(err, acquired).
Napi::Value SemWaitAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const SemPtr& sem = UnwrapOpen<SemPtr>(info[0], "sem_clockwait");
  double timeout = info[1].As<Napi::Number>().DoubleValue();
  WaitEngine* engine = AddonData::Get(env)->engine.get();
  auto job = std::make_shared<SemWaitJob>(sem, engine->spin_ns());
  if (timeout >= 0) {
    job->deadline_ns = MonotonicNs() + static_cast<int64_t>(timeout * 1e6);
  }
  engine->Submit(env, job, info[2].As<Napi::Function>());
  return JobToken(env, job);
}

// semClose(h): idempotent.
Napi::Value SemClose(const Napi::CallbackInfo& info) {
  Unwrap<SemPtr>(info[0])->Close();
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
