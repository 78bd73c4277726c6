#include "wait.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "../addon.h"
#include "errors.h"
#include "posix.h"

namespace pipc {

WaitJob::~WaitJob() = default;

void WaitJob::Cancel() {
  cancelled.store(true);
  if (succeeded.load()) TakeBack();
}

void WaitJob::Deliver(Napi::Env env, Napi::Function callback, int r) {
  if (r == 0 || r == ETIMEDOUT) {
    callback.Call({env.Null(), Napi::Boolean::New(env, r == 0)});
  } else {
    callback.Call({MakeIPCError(env, r, "wait", "").Value(),
                   Napi::Boolean::New(env, false)});
  }
}

namespace {

// What travels from an engine thread to the event loop.
struct Completion {
  std::shared_ptr<WaitJob> job;
};

// The wake signal (wait.h): its only effect is to make a blocking call return
// EINTR.
extern "C" void OnWakeSignal(int) {}

// The signal, installed once per process; 0 when unavailable. Real-time
// signals are used by nothing in Node, libuv or V8 (V8 profiles with
// SIGPROF); one that already has a handler is left alone.
class WakeSignal {
 public:
  WakeSignal() {
#ifdef SIGRTMIN
    const int sig = SIGRTMIN + 7;
    struct sigaction current;
    if (sig > SIGRTMAX || sigaction(sig, nullptr, &current) != 0) return;
    if ((current.sa_flags & SA_SIGINFO) != 0 || current.sa_handler != SIG_DFL) return;
    struct sigaction sa = {};
    sa.sa_handler = OnWakeSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: interrupted calls return EINTR
    if (sigaction(sig, &sa, nullptr) == 0) sig_ = sig;
#endif
  }
  // The addon being unloaded (dlclose of a worker-only load) must not leave
  // a handler pointing into unmapped code.
  ~WakeSignal() {
    if (sig_ == 0) return;
    struct sigaction current;
    if (sigaction(sig_, nullptr, &current) == 0 && current.sa_handler == OnWakeSignal) {
      signal(sig_, SIG_DFL);
    }
  }
  int sig() const { return sig_; }

 private:
  int sig_ = 0;
};

WakeSignal wake_signal;

// futex_waitv(2), Linux 5.16; the headers here may predate it.
#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef FUTEX_32
#define FUTEX_32 2
#endif
struct WaitvEntry {
  uint64_t val;
  uint64_t uaddr;
  uint32_t flags;
  uint32_t reserved;
};

long FutexWaitv(WaitvEntry* w, unsigned n, const timespec* abs_monotonic) {
  return syscall(SYS_futex_waitv, w, n, 0, abs_monotonic, CLOCK_MONOTONIC);
}

// Whether the kernel has futex_waitv: with no words it fails EINVAL if it
// does, ENOSYS if not (seccomp filters may say EPERM: treated as missing).
bool HaveWaitv() {
  static const bool have = [] {
    if (getenv("POSIX_IPC_NO_WAITV") != nullptr) return false;
    return FutexWaitv(nullptr, 0, nullptr) == -1 && errno == EINVAL;
  }();
  return have;
}

}  // namespace

WaitEngine::WaitEngine(Napi::Env env) : env_(env) {
  napi_value name;
  napi_create_string_utf8(env, "posix-ipc:wait", NAPI_AUTO_LENGTH, &name);
  napi_status s = napi_create_threadsafe_function(
      env, nullptr, nullptr, name, 0, 1, nullptr, nullptr, this, CallJs,
      &tsfn_);
  if (s != napi_ok) throw Napi::Error::New(env, "cannot create wait engine");
  napi_unref_threadsafe_function(env, tsfn_);
}

WaitEngine::~WaitEngine() { Shutdown(env_); }

void WaitEngine::Submit(Napi::Env env, std::shared_ptr<WaitJob> job,
                        Napi::Function callback) {
  napi_create_reference(env, callback, 1, &job->callback_);
  live_.emplace(job.get(), job);
  if (job->keeps_alive && pending_++ == 0 && !referenced_) {
    napi_ref_threadsafe_function(env, tsfn_);
    referenced_ = true;
  }
  std::unique_lock<std::mutex> lk(mu_);
  ReapLocked();
  if (job->Pollable() && SubmitMuxLocked(job)) return;
  if (!idle_.empty()) {
    Worker* w = idle_.back();
    idle_.pop_back();
    w->job = std::move(job);
    w->cv.notify_one();
    return;
  }
  if (workers_.size() < kMaxThreads) {
    workers_.emplace_back();
    Worker* w = &workers_.back();
    w->job = std::move(job);
    w->thread = std::thread([this, w] { ThreadMain(w); });
    return;
  }
  queue_.push_back(std::move(job));
}

void WaitEngine::ReapLocked() {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->exited) {
      it->thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = muxes_.begin(); it != muxes_.end();) {
    if (it->exited) {
      it->thread.join();
      it = muxes_.erase(it);
    } else {
      ++it;
    }
  }
}

size_t WaitEngine::ThreadCount() {
  std::lock_guard<std::mutex> lk(mu_);
  ReapLocked();
  return workers_.size() + muxes_.size();
}

size_t WaitEngine::MuxThreadCount() {
  std::lock_guard<std::mutex> lk(mu_);
  ReapLocked();
  return muxes_.size();
}

size_t WaitEngine::MuxJobs() {
  std::lock_guard<std::mutex> lk(mu_);
  size_t n = 0;
  for (auto& m : muxes_) n += m.count;
  return n;
}

void WaitEngine::InterruptMux(Mux* m) {
  __atomic_add_fetch(&m->ctl, 1, __ATOMIC_SEQ_CST);
  syscall(SYS_futex, &m->ctl, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

bool WaitEngine::SubmitMuxLocked(JobPtr& job) {
  if (!HaveWaitv()) return false;
  Mux* target = nullptr;
  // Fill the fullest thread that has room: fewer threads, and an idle
  // thread left empty exits.
  for (auto& m : muxes_) {
    if (m.exited || m.count >= kMuxJobs) continue;
    if (target == nullptr || m.count > target->count) target = &m;
  }
  if (target == nullptr) {
    if (muxes_.size() >= kMaxMuxThreads) return false;
    muxes_.emplace_back();
    target = &muxes_.back();
    target->count = 1;
    job->mux_ = target;
    target->incoming.push_back(std::move(job));
    target->thread = std::thread([this, target] { MuxMain(target); });
    return true;
  }
  target->count++;
  job->mux_ = target;
  target->incoming.push_back(std::move(job));
  InterruptMux(target);
  return true;
}

// A multiplexing thread. Each job is tried once and, if it must wait, stays
// registered (its Poll's counts in place) while the thread sleeps in
// futex_waitv on all registered words and its own. When it wakes, only the
// jobs that need it are tried again: the one whose word was woken, those
// cancelled or whose deadline or recheck time came; all of them if the
// kernel says only that some word had changed before the sleep (EAGAIN).
void WaitEngine::MuxMain(Mux* self) {
  struct Entry {
    JobPtr job;
    bool registered = false;  // Poll said EAGAIN; Unpoll not called yet
    int64_t recheck_ns = -1;
    PollSleep sleep;
  };
  std::vector<Entry> jobs;
  std::vector<WaitvEntry> words;
  std::vector<WaitJob*> order;  // the job of words[i + 1]
  WaitJob* woken = nullptr;
  bool all = true;
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    const int32_t ctl = __atomic_load_n(&self->ctl, __ATOMIC_SEQ_CST);
    for (auto& j : self->incoming) jobs.push_back(Entry{std::move(j)});
    self->incoming.clear();
    const bool stopping = stopping_.load();
    if (jobs.empty()) {
      if (stopping) break;
      // Idle: wait for a job, exit after kIdleExitNs without one.
      lk.unlock();
      timespec ts = NsToTimespec(MonotonicNs() + kIdleExitNs);
      long r = syscall(SYS_futex, &self->ctl, FUTEX_WAIT_BITSET_PRIVATE, ctl, &ts, nullptr,
                       FUTEX_BITSET_MATCH_ANY);
      int err = r == -1 ? errno : 0;
      lk.lock();
      if (err == ETIMEDOUT && self->incoming.empty() && !stopping_.load()) break;
      continue;
    }
    lk.unlock();
    const int64_t now = MonotonicNs();
    // One try of job e (its Unpoll first if it is registered); false once it
    // has finished.
    auto step = [&](Entry& e) {
      WaitJob* job = e.job.get();
      if (e.registered) {
        job->Unpoll();
        e.registered = false;
      }
      int r;
      if (job->cancelled.load() || stopping) {
        r = ECANCELED;
      } else {
        r = job->Poll(&e.sleep);
        if (r == EAGAIN) {
          if (job->deadline_ns >= 0 && MonotonicNs() >= job->deadline_ns) {
            job->Unpoll();
            r = ETIMEDOUT;
          } else {
            e.registered = true;
            e.recheck_ns = e.sleep.recheck_ns;
            return true;
          }
        } else if (r == 0) {
          // Paired with Cancel(): one of the two sees the other's flag.
          job->succeeded.store(true);
          if (job->cancelled.load()) job->TakeBack();
        }
      }
      {
        std::lock_guard<std::mutex> g(mu_);
        job->mux_ = nullptr;
        self->count--;
      }
      Finish(e.job, r);
      e.job.reset();
      return false;
    };
    // First the jobs a wake-up, a cancel or a deadline is for (completions
    // are not held up behind rechecks), then, if one recheck is due, every
    // recheck due within kRecheckSlackNs.
    bool recheck = false;
    for (Entry& e : jobs) {
      WaitJob* job = e.job.get();
      // After EAGAIN (a word had changed before the sleep, which one is not
      // said) the words themselves say which.
      const bool changed = all && (!e.sleep.word || __atomic_load_n(e.sleep.word, __ATOMIC_SEQ_CST) != e.sleep.expected);
      const bool urgent = !e.registered || changed || job == woken || job->cancelled.load() || stopping ||
                          (job->deadline_ns >= 0 && now >= job->deadline_ns);
      if (urgent) {
        if (!step(e)) continue;
      } else if (e.recheck_ns >= 0 && now >= e.recheck_ns) {
        recheck = true;
      }
    }
    if (recheck) {
      for (Entry& e : jobs) {
        if (e.job && e.registered && e.recheck_ns >= 0 && now + kRecheckSlackNs >= e.recheck_ns) step(e);
      }
    }
    size_t kept = 0;
    for (size_t i = 0; i < jobs.size(); i++) {
      if (!jobs[i].job) continue;
      if (kept != i) jobs[kept] = std::move(jobs[i]);
      kept++;
    }
    jobs.resize(kept);
    woken = nullptr;
    all = false;
    if (!jobs.empty()) {
      words.clear();
      order.clear();
      words.push_back({static_cast<uint64_t>(static_cast<uint32_t>(ctl)),
                       reinterpret_cast<uint64_t>(&self->ctl), FUTEX_32 | FUTEX_PRIVATE_FLAG, 0});
      int64_t wake = -1;
      for (Entry& e : jobs) {
        const PollSleep& ps = e.sleep;
        words.push_back({static_cast<uint64_t>(static_cast<uint32_t>(ps.expected)),
                         reinterpret_cast<uint64_t>(ps.word),
                         static_cast<uint32_t>(FUTEX_32 | (ps.shared ? 0 : FUTEX_PRIVATE_FLAG)), 0});
        order.push_back(e.job.get());
        for (int64_t t : {e.job->deadline_ns, e.recheck_ns}) {
          if (t >= 0 && (wake < 0 || t < wake)) wake = t;
        }
      }
      timespec ts;
      if (wake >= 0) ts = NsToTimespec(wake);
      long r = FutexWaitv(words.data(), static_cast<unsigned>(words.size()), wake >= 0 ? &ts : nullptr);
      if (r >= 1 && static_cast<size_t>(r) <= order.size()) {
        woken = order[static_cast<size_t>(r) - 1];
      } else if (r == -1 && errno == EAGAIN) {
        all = true;  // try the jobs whose word has changed
      } else if (r == -1 && errno != ETIMEDOUT && errno != EINTR) {
        // EFAULT, ENOMEM: try everything again.
        all = true;
        for (Entry& e : jobs) e.sleep.word = nullptr;
      }
    }
    lk.lock();
  }
  // Stopping with no job left.
  self->exited = true;
  exited_cv_.notify_all();
}

void WaitEngine::InterruptLocked(Worker& w) {
  if (wake_signal.sig() != 0 && !w.exited) {
    pthread_kill(w.thread.native_handle(), wake_signal.sig());
  }
}

void WaitEngine::Cancel(const JobPtr& job) {
  job->Cancel();
  std::lock_guard<std::mutex> lk(mu_);
  if (job->mux_ != nullptr) {
    InterruptMux(static_cast<Mux*>(job->mux_));
    return;
  }
  for (auto& w : workers_) {
    if (w.running == job.get()) InterruptLocked(w);
  }
}

void WaitEngine::ThreadMain(Worker* self) {
  if (wake_signal.sig() != 0) {
    // Threads inherit the creator's mask: make sure ours can be interrupted.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, wake_signal.sig());
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  }
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    if (!self->job) {
      if (stopping_) break;
      if (!queue_.empty()) {
        self->job = std::move(queue_.front());
        queue_.pop_front();
      } else {
        idle_.push_back(self);
        bool got = self->cv.wait_for(
            lk, std::chrono::nanoseconds(kIdleExitNs),
            [&] { return self->job != nullptr || stopping_; });
        if (!got || (stopping_ && !self->job)) {
          auto it = std::find(idle_.begin(), idle_.end(), self);
          if (it != idle_.end()) idle_.erase(it);
          if (!self->job) break;
        }
        continue;
      }
    }
    JobPtr job = std::move(self->job);
    self->job = nullptr;
    self->running = job.get();
    lk.unlock();
    bool finished = RunJob(job);
    lk.lock();
    self->running = nullptr;
    if (!finished) queue_.push_back(std::move(job));
  }
  self->exited = true;
  exited_cv_.notify_all();
}

bool WaitEngine::RunJob(const JobPtr& job) {
  int r;
  for (;;) {
    if (job->cancelled.load() || stopping_.load()) {
      r = ECANCELED;
      break;
    }
    int64_t now = MonotonicNs();
    if (job->deadline_ns >= 0 && now >= job->deadline_ns) {
      r = ETIMEDOUT;
      break;
    }
    int64_t until = now + kSliceNs;
    bool last = false;
    if (job->deadline_ns >= 0 && job->deadline_ns <= until) {
      until = job->deadline_ns;
      last = true;
    }
    r = job->WaitUntil(until);
    if (r == 0) {
      // Paired with Cancel(): one of the two sees the other's flag.
      job->succeeded.store(true);
      if (job->cancelled.load()) job->TakeBack();
      break;
    }
    if (r == EINTR) continue;  // interrupted: look at the flags again
    if (r != ETIMEDOUT || last) break;
    // The slice ended: give the turn to a job that has no thread, if any.
    std::lock_guard<std::mutex> lk(mu_);
    if (!queue_.empty() && !stopping_.load()) return false;
  }
  Finish(job, r);
  return true;
}

void WaitEngine::Finish(const JobPtr& job, int r) {
  job->result = r;
  auto* c = new Completion{job};
  if (napi_call_threadsafe_function(tsfn_, c, napi_tsfn_nonblocking) !=
      napi_ok) {
    // The environment is going away: nobody will take what was acquired.
    if (r == 0) job->TakeBack();
    delete c;
  }
}

void WaitEngine::CallJs(napi_env env, napi_value, void* context,
                        void* data) {
  std::unique_ptr<Completion> c(static_cast<Completion*>(data));
  WaitJob* job = c->job.get();
  if (env == nullptr) {
    // Teardown: JavaScript is gone, give back what the job took.
    if (job->result == 0) job->TakeBack();
    return;
  }
  auto* engine = static_cast<WaitEngine*>(context);
  engine->live_.erase(job);
  if (job->keeps_alive && --engine->pending_ == 0 && engine->referenced_) {
    napi_unref_threadsafe_function(env, engine->tsfn_);
    engine->referenced_ = false;
  }
  napi_ref ref = job->callback_;
  job->callback_ = nullptr;
  if (job->cancelled.load()) {
    if (job->result == 0) job->TakeBack();
    if (ref != nullptr) napi_delete_reference(env, ref);
    return;
  }
  napi_value cb = nullptr;
  if (ref != nullptr) {
    napi_get_reference_value(env, ref, &cb);
    napi_delete_reference(env, ref);
  }
  if (cb == nullptr) {
    if (job->result == 0) job->TakeBack();
    return;
  }
  try {
    job->Deliver(Napi::Env(env), Napi::Function(env, cb), job->result);
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
  }
}

void WaitEngine::Shutdown(napi_env env) {
  std::unique_lock<std::mutex> lk(mu_);
  if (stopping_.exchange(true)) return;
  // Queued jobs never ran to success: nothing to undo.
  queue_.clear();
  // Interrupt every thread until each has exited: a signal that came just
  // before its thread entered a blocking call is lost, so send again.
  for (;;) {
    bool alive = false;
    for (auto& w : workers_) {
      if (w.exited) continue;
      alive = true;
      if (w.job) w.job->cancelled = true;
      if (w.running != nullptr) w.running->cancelled = true;
      w.cv.notify_one();
      InterruptLocked(w);
    }
    for (auto& m : muxes_) {
      if (m.exited) continue;
      alive = true;
      InterruptMux(&m);
    }
    if (!alive) break;
    exited_cv_.wait_for(lk, std::chrono::milliseconds(1));
  }
  lk.unlock();
  for (auto& w : workers_) {
    if (w.thread.joinable()) w.thread.join();
  }
  workers_.clear();
  for (auto& m : muxes_) {
    if (m.thread.joinable()) m.thread.join();
  }
  muxes_.clear();
  idle_.clear();
  // No engine thread is left. Completions still queued for the event loop
  // will never run with an environment: free their callback references (and
  // those of jobs that never ran) while the environment can.
  for (auto& [raw, job] : live_) {
    if (job->callback_ != nullptr) napi_delete_reference(env, job->callback_);
    job->callback_ = nullptr;
    if (job->succeeded.load()) job->TakeBack();
  }
  live_.clear();
  // Aborting drains the queue through CallJs without an environment, which
  // frees each completion.
  if (tsfn_ != nullptr) {
    napi_release_threadsafe_function(tsfn_, napi_tsfn_abort);
    tsfn_ = nullptr;
  }
}

// JavaScript side ------------------------------------------------------------

namespace {

void FinalizeToken(napi_env, void* data, void*) {
  delete static_cast<WaitJobPtr*>(data);
}

// cancelWait(token): idempotent, and harmless once the job has finished.
Napi::Value CancelWait(const Napi::CallbackInfo& info) {
  const WaitJobPtr& job = Unwrap<WaitJobPtr>(info[0]);
  AddonData::Get(info.Env())->engine->Cancel(job);
  return info.Env().Undefined();
}

Napi::Value EngineStats(const Napi::CallbackInfo& info) {
  WaitEngine* e = AddonData::Get(info.Env())->engine.get();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("threads", Napi::Number::New(info.Env(), e->ThreadCount()));
  o.Set("pending", Napi::Number::New(info.Env(), e->Pending()));
  o.Set("spinNs", Napi::Number::New(info.Env(), e->spin_ns()));
  o.Set("muxThreads", Napi::Number::New(info.Env(), e->MuxThreadCount()));
  o.Set("muxJobs", Napi::Number::New(info.Env(), e->MuxJobs()));
  return o;
}

Napi::Value SetSpin(const Napi::CallbackInfo& info) {
  WaitEngine* e = AddonData::Get(info.Env())->engine.get();
  e->set_spin_ns(info[0].As<Napi::Number>().Int64Value());
  return info.Env().Undefined();
}

}  // namespace

Napi::Value JobToken(Napi::Env env, std::shared_ptr<WaitJob> job) {
  return Wrap(env, new WaitJobPtr(std::move(job)), FinalizeToken,
              [](WaitJobPtr* h) { delete h; });
}

void InitWait(Napi::Env env, Napi::Object exports) {
  exports.Set("cancelWait", Napi::Function::New(env, CancelWait));
  exports.Set("engineStats", Napi::Function::New(env, EngineStats));
  exports.Set("setSpin", Napi::Function::New(env, SetSpin));
}

}  // namespace pipc
