#include "semaphore.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../addon.h"
#include "../core/args.h"
#include "../core/errors.h"
#include "../core/posix.h"
#include "../core/safe-open.h"
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

// Checks the file glibc's sem_open maps for `name` (/dev/shm/sem.NAME):
// glibc maps whatever is there without looking, and touching an empty or
// short one is SIGBUS. Returns 0, -ENOENT when there is none, or -errno with
// *why set.
int CheckSemFile(const std::string& name, const OwnerPolicy& owner, std::string* why) {
  const std::string file = "/sem." + name.substr(1);
  int fd = OpenShmFile(file.c_str(), O_RDWR, 0, owner,
                       static_cast<off_t>(sizeof(sem_t)), nullptr, why);
  if (fd < 0) return fd;
  close(fd);
  return 0;
}

// semOpen(name, create, exclusive, mode, initialValue, owner) -> handle.
// owner: < 0 accepts an existing semaphore of any uid, otherwise only that
// uid's (see OwnerPolicy).
Napi::Value SemOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  bool create = info[1].ToBoolean();
  bool exclusive = info[2].ToBoolean();
  mode_t mode = static_cast<mode_t>(info[3].As<Napi::Number>().Uint32Value());
  unsigned value = info[4].As<Napi::Number>().Uint32Value();
  OwnerPolicy owner = info[5].IsNumber()
                          ? OwnerPolicy::FromJs(info[5].As<Napi::Number>().DoubleValue())
                          : OwnerPolicy::Self();
  std::string why;
  // Before: refuse a planted file instead of letting glibc map it.
  if (!(create && exclusive)) {
    int r = CheckSemFile(name, owner, &why);
    if (r < 0 && r != -ENOENT) ThrowIPCError(env, -r, "sem_open", name, why);
  }
  int flags = create ? (O_CREAT | (exclusive ? O_EXCL : 0)) : 0;
  sem_t* sem = create ? sem_open(name.c_str(), flags, mode, value)
                      : sem_open(name.c_str(), flags);
  if (sem == SEM_FAILED) ThrowIPCError(env, errno, "sem_open", name);
  // After: glibc cannot say which file it mapped, so check the name again. A
  // file planted between the first check and sem_open (or one that replaced
  // a checked one) is caught here, before anything touches the mapping,
  // unless it is a good file when checked and is swapped back after:
  // possible only for a file its planter owns, so only with owner: 'any' (or
  // that uid), which trusts that user anyway. A file that another user may
  // write can also be truncated later, which no check at open prevents.
  int r = CheckSemFile(name, owner, &why);
  if (r < 0) {
    sem_close(sem);
    ThrowIPCError(env, -r == ENOENT ? EAGAIN : -r, "sem_open", name,
                  -r == ENOENT ? "was removed while being opened" : why);
  }
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
  HandleCall<SemPtr, 2> call(env, cbinfo, "sem_post");
  if (call.self == nullptr) return nullptr;
  Sem* s = call.self->get();
  uint32_t n = 1;
  if (call.argc > 1) napi_get_value_uint32(env, call.argv[1], &n);
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
  HandleCall<SemPtr, 1> call(env, cbinfo, "sem_getvalue");
  if (call.self == nullptr) return nullptr;
  Sem* s = call.self->get();
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

#if defined(__GLIBC__) && (defined(__x86_64__) || defined(__aarch64__))
  // Multiplexed waits (wait.h) speak glibc's own semaphore protocol
  // (nptl/sem_waitcommon.c, 64-bit atomics; unchanged since glibc 2.21):
  // sem_t begins with a 64-bit word holding the value in its low half and
  // the number of waiters in its high half; sem_post adds one to the value
  // and, if the waiter count is not zero, FUTEX_WAKEs one sleeper on the low
  // half (a shared futex for a named semaphore). A waiter counts itself in
  // the high half, takes a unit and uncounts itself in one compare-and-swap,
  // and sleeps on the low half while the value is 0, as glibc's do.
  bool Pollable() const override { return spin_ns_ == 0; }

  int Poll(PollSleep* sleep) override {
    uint64_t* data = Data();
    uint64_t d = __atomic_add_fetch(data, kOneWaiter, __ATOMIC_ACQUIRE);
    while ((d & kValueMask) > 0) {
      if (__atomic_compare_exchange_n(data, &d, d - 1 - kOneWaiter, true, __ATOMIC_ACQUIRE,
                                      __ATOMIC_RELAXED)) {
        return 0;
      }
    }
    sleep->word = reinterpret_cast<int32_t*>(data);  // the low half
    sleep->expected = 0;
    sleep->shared = true;
    sleep->recheck_ns = -1;
    return EAGAIN;
  }

  // A post's single wake-up may have come to us: if a unit is there and
  // others still wait, pass the wake-up on (should this job now leave by
  // cancel or timeout, a sleeper elsewhere must not miss the unit).
  void Unpoll() override {
    uint64_t d = __atomic_sub_fetch(Data(), kOneWaiter, __ATOMIC_RELAXED);
    if ((d & kValueMask) > 0 && (d >> 32) > 0) {
      syscall(SYS_futex, reinterpret_cast<int32_t*>(Data()), FUTEX_WAKE, 1, nullptr, nullptr, 0);
    }
  }

 private:
  static constexpr uint64_t kOneWaiter = uint64_t{1} << 32;
  static constexpr uint64_t kValueMask = 0xffffffffu;
  static_assert(sizeof(sem_t) >= sizeof(uint64_t) + 2 * sizeof(int), "glibc's sem_t layout");
  uint64_t* Data() const { return reinterpret_cast<uint64_t*>(s_->sem); }
#else
 private:
#endif
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

#if defined(__GLIBC__) && (defined(__x86_64__) || defined(__aarch64__))
constexpr bool kGlibcSemLayout = true;
#else
constexpr bool kGlibcSemLayout = false;
#endif

// semView(h) -> ArrayBuffer | undefined: the first 16 bytes of glibc's sem_t
// (the value as the low half of its 64-bit word, the waiter count as the
// high half; see SemWaitJob::Poll), for the JavaScript fast path, which
// takes and gives units with Atomics on the low half as sem_trywait and
// sem_post do, and calls semWake when the high half says someone sleeps.
// Undefined where the layout is not glibc's. semClose detaches it before
// sem_close unmaps the memory.
Napi::Value SemView(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const SemPtr& sem = UnwrapOpen<SemPtr>(info[0], "sem_open");
  if (!kGlibcSemLayout) return env.Undefined();
  napi_value ab;
  if (napi_create_external_arraybuffer(env, sem->sem, 16, nullptr, nullptr, &ab) != napi_ok) {
    // Runtimes that forbid external buffers: the native path serves.
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
    return env.Undefined();
  }
  return Napi::Value(env, ab);
}

// semWake(h): wakes one sleeper, what sem_post does after its increment when
// the waiter count is not zero.
napi_value SemWake(napi_env env, napi_callback_info cbinfo) {
  HandleCall<SemPtr, 1> call(env, cbinfo, "futex");
  if (call.self == nullptr) return nullptr;
  syscall(SYS_futex, reinterpret_cast<int32_t*>(call.self->get()->sem), FUTEX_WAKE, 1, nullptr,
          nullptr, 0);
  return nullptr;
}

// semClose(h, view?): idempotent; detaches the semView buffer first.
Napi::Value SemClose(const Napi::CallbackInfo& info) {
  if (info.Length() > 1 && info[1].IsArrayBuffer()) {
    napi_detach_arraybuffer(info.Env(), info[1]);
  }
  Unwrap<SemPtr>(info[0])->Close();
  return info.Env().Undefined();
}

Napi::Value SemUnlink(const Napi::CallbackInfo& info) {
  return CallWithName(info, sem_unlink, "sem_unlink");
}

}  // namespace

void InitSemaphore(Napi::Env env, Napi::Object exports) {
  exports.Set("semOpen", Napi::Function::New(env, SemOpen));
  exports.Set("semBind", Napi::Function::New(env, SemBind));
  exports.Set("semView", Napi::Function::New(env, SemView));
  SetRawFunction(env, exports, "semWake", SemWake);
  SetRawFunction(env, exports, "semPost", SemPost);
  SetRawFunction(env, exports, "semValue", SemValue);
  exports.Set("semWaitSync", Napi::Function::New(env, SemWaitSync));
  exports.Set("semWaitAsync", Napi::Function::New(env, SemWaitAsync));
  exports.Set("semClose", Napi::Function::New(env, SemClose));
  exports.Set("semUnlink", Napi::Function::New(env, SemUnlink));
  exports.Set("SEM_VALUE_MAX", Napi::Number::New(env, SEM_VALUE_MAX));
}

}  // namespace pipc
