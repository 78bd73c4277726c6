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
#include <functional>

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

// One try of a pollable job on a multiplexing thread: its Unpoll first if it
// is registered, then Poll. EAGAIN: it sleeps on sleep->word, registered
// again; anything else is its outcome (a success is given back if the job
// was cancelled meanwhile).
int TryPolled(WaitJob* job, bool* registered, PollSleep* sleep, bool stopping) {
  if (*registered) {
    job->Unpoll();
    *registered = false;
  }
  if (job->cancelled.load() || stopping) return ECANCELED;
  const int r = job->Poll(sleep);
  if (r == EAGAIN) {
    if (job->deadline_ns >= 0 && MonotonicNs() >= job->deadline_ns) {
      job->Unpoll();
      return ETIMEDOUT;
    }
    *registered = true;
    return EAGAIN;
  }
  if (r == 0) {
    // Paired with Cancel(): one of the two sees the other's flag.
    job->succeeded.store(true);
    if (job->cancelled.load()) job->TakeBack();
  }
  return r;
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

size_t WaitEngine::RingThreadCount() {
  std::lock_guard<std::mutex> lk(mu_);
  ReapLocked();
  size_t n = 0;
  for (auto& m : muxes_) n += m.ring && !m.exited ? 1 : 0;
  return n;
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
  if (FutexRing::Available()) {
    // io_uring threads of up to kRingJobs jobs each, the fullest with room
    // first (fewer threads; an idle one left empty exits).
    Mux* ring = nullptr;
    size_t rings = 0;
    for (auto& m : muxes_) {
      if (m.exited || !m.ring) continue;
      rings++;
      if (m.count < kRingJobs && (ring == nullptr || m.count > ring->count)) ring = &m;
    }
    if (ring == nullptr && rings < kMaxRingThreads) {
      auto r = std::make_unique<FutexRing>();
      if (r->Open(kRingSubmissions, kRingCompletions)) {
        muxes_.emplace_back();
        ring = &muxes_.back();
        ring->ring = std::move(r);
        ring->count = 1;
        job->mux_ = ring;
        ring->incoming.push_back(std::move(job));
        ring->thread = std::thread([this, ring] { UringMain(ring); });
        return true;
      }
      // No ring (memory, a limit): futex_waitv threads as before.
    } else if (ring != nullptr) {
      ring->count++;
      job->mux_ = ring;
      ring->incoming.push_back(std::move(job));
      InterruptMux(ring);
      return true;
    }
  }
  if (!HaveWaitv()) return false;
  Mux* target = nullptr;
  // Fill the fullest thread that has room: fewer threads, and an idle
  // thread left empty exits.
  for (auto& m : muxes_) {
    if (m.exited || m.ring || m.count >= kMuxJobs) continue;
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
      const int r = TryPolled(job, &e.registered, &e.sleep, stopping);
      if (r == EAGAIN) {
        e.recheck_ns = e.sleep.recheck_ns;
        return true;
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

// The io_uring thread: each pollable job's word has a futex wait of its own
// queued in the kernel (IORING_OP_FUTEX_WAIT), kept there while the job
// sleeps, plus one on the thread's own word (ctl) that Submit and Cancel bump
// to interrupt it. A completion (woken, or -EAGAIN: the word had changed)
// has its job tried again at once; a job cancelled or past its deadline while
// its wait is queued has that wait cancelled first and is tried when the
// cancel's completion comes; a recheck runs in place. So a wake-up costs the same
// however many jobs wait, and no job is looked at unless something is for it
// (deadlines and rechecks are kept in a heap).
void WaitEngine::UringMain(Mux* self) {
  struct Entry {
    JobPtr job;
    bool registered = false;   // Poll said EAGAIN; Unpoll not called yet
    bool queued = false;       // its futex wait is in the kernel
    bool cancelling = false;   // a cancel of that wait is on its way
    uint64_t timer_gen = 0;    // which timer of `timers` is its current one
    PollSleep sleep;
    // Set when a recheck's Poll ended the job (done >= 0: its result) or moved
    // it to another word while its wait was still queued: that wait is being
    // cancelled, and a wake-up it took meanwhile (res 0) was meant for another
    // sleeper on `stale_word`, so it is passed on.
    int done = -1;
    int32_t* stale_word = nullptr;
    bool stale_shared = true;
  };
  struct Timer {
    int64_t at;
    uint64_t id;
    uint64_t gen;
    bool deadline;  // `at` is the job's deadline (else a recheck time)
    bool operator>(const Timer& o) const { return at > o.at; }
  };
  // Rechecks due within this much of now are done together (a recheck may
  // come that early: kRecheckSlackNs), so a ring of 1,024 crash-safe waits
  // (a recheck each every 250 ms) wakes its thread a few hundred times a
  // second at most, each time for a short batch.
  constexpr int64_t kBatchNs = 5LL * 1000 * 1000;
  std::vector<Timer> later;
  constexpr uint64_t kCtlTag = 1;  // ids of jobs start above the ring's tags
  FutexRing& ring = *self->ring;
  std::unordered_map<uint64_t, Entry> jobs;
  std::unordered_map<WaitJob*, uint64_t> ids;
  std::vector<Timer> timers;  // a min-heap on `at` (std::greater)
  std::vector<uint64_t> due;
  uint64_t next_id = 16;
  bool ctl_queued = false;
  auto push_timer = [&](uint64_t id, Entry& e) {
    const int64_t deadline = e.job->deadline_ns;
    const int64_t check = e.registered ? e.sleep.recheck_ns : -1;
    const bool by_deadline = deadline >= 0 && (check < 0 || deadline <= check);
    const int64_t at = by_deadline ? deadline : check;
    e.timer_gen++;
    if (at < 0) return;
    timers.push_back(Timer{at, id, e.timer_gen, by_deadline});
    std::push_heap(timers.begin(), timers.end(), std::greater<Timer>());
    if (timers.size() > 2 * jobs.size() + 64) {
      // Superseded timers stay until they come; drop them all now and then.
      auto stale = [&](const Timer& t) {
        auto j = jobs.find(t.id);
        return j == jobs.end() || j->second.timer_gen != t.gen;
      };
      timers.erase(std::remove_if(timers.begin(), timers.end(), stale), timers.end());
      std::make_heap(timers.begin(), timers.end(), std::greater<Timer>());
    }
  };
  auto finish = [&](std::unordered_map<uint64_t, Entry>::iterator it, int r) {
    WaitJob* job = it->second.job.get();
    {
      std::lock_guard<std::mutex> g(mu_);
      job->mux_ = nullptr;
      self->count--;
    }
    Finish(it->second.job, r);
    ids.erase(job);
    jobs.erase(it);
  };
  // One try of job `id` (its Unpoll first if it is registered): queues its
  // wait again, or finishes it (and forgets it).
  auto step = [&](uint64_t id) {
    auto it = jobs.find(id);
    if (it == jobs.end()) return;
    Entry& e = it->second;
    const int r = TryPolled(e.job.get(), &e.registered, &e.sleep, stopping_.load());
    if (r == EAGAIN) {
      if (e.sleep.word != nullptr && ring.QueueWait(e.sleep.word, e.sleep.expected, e.sleep.shared, id)) {
        e.queued = true;
      } else if (e.sleep.recheck_ns < 0) {
        // No wait could be queued: look again soon.
        e.sleep.recheck_ns = MonotonicNs() + 1000 * 1000;
      }
      push_timer(id, e);
      return;
    }
    finish(it, r);
  };
  // Something is for job `id` now: try it, or first take its queued wait
  // back from the kernel (the try comes with that completion).
  auto poke = [&](uint64_t id) {
    auto it = jobs.find(id);
    if (it == jobs.end()) return;
    Entry& e = it->second;
    if (!e.queued) {
      step(id);
    } else if (!e.cancelling) {
      if (ring.QueueCancel(id)) e.cancelling = true;
    }
  };
  // A recheck came for job `id` and nothing else (no cancel, no deadline):
  // its wait stays queued in the kernel (taking it back is a walk of the
  // ring's futex list) while Unpoll and Poll run in place; only a Poll that
  // ends the job or moves it to another word takes the queued wait back.
  auto recheck = [&](uint64_t id) {
    auto it = jobs.find(id);
    if (it == jobs.end()) return;
    Entry& e = it->second;
    WaitJob* job = e.job.get();
    if (!e.queued || e.cancelling || !e.registered || job->cancelled.load() || stopping_.load() ||
        (job->deadline_ns >= 0 && MonotonicNs() >= job->deadline_ns)) {
      poke(id);
      return;
    }
    int32_t* word = e.sleep.word;
    const bool shared = e.sleep.shared;
    const int r = TryPolled(job, &e.registered, &e.sleep, false);
    if (r == EAGAIN) {
      push_timer(id, e);
      if (e.sleep.word == word && e.sleep.shared == shared) return;
    } else {
      e.done = r;
    }
    e.stale_word = word;
    e.stale_shared = shared;
    if (ring.QueueCancel(id)) e.cancelling = true;
  };
  // The completion of job `id`'s queued wait (woken, changed, cancelled).
  auto completed = [&](uint64_t id, int32_t res) {
    auto it = jobs.find(id);
    if (it == jobs.end()) return;
    Entry& e = it->second;
    e.queued = false;
    e.cancelling = false;
    if (e.stale_word != nullptr) {
      if (res == 0) {
        syscall(SYS_futex, e.stale_word, e.stale_shared ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
      }
      e.stale_word = nullptr;
    }
    if (e.done >= 0) {
      finish(it, e.done);
      return;
    }
    step(id);
  };
  std::vector<JobPtr> incoming;
  std::vector<JobPtr> cancels;
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    const int32_t ctl = __atomic_load_n(&self->ctl, __ATOMIC_SEQ_CST);
    incoming.swap(self->incoming);
    cancels.swap(self->cancels);
    const bool stopping = stopping_.load();
    if (jobs.empty() && incoming.empty() && stopping) break;
    lk.unlock();
    for (auto& j : incoming) {
      const uint64_t id = next_id++;
      ids.emplace(j.get(), id);
      jobs.emplace(id, Entry{std::move(j)});
      step(id);
    }
    incoming.clear();
    for (auto& j : cancels) {
      auto it = ids.find(j.get());
      if (it != ids.end()) poke(it->second);
    }
    cancels.clear();
    if (stopping) {
      due.clear();
      for (auto& [id, e] : jobs) due.push_back(id);
      for (uint64_t id : due) poke(id);
    }
    // Deadlines and rechecks that have come.
    const int64_t now = MonotonicNs();
    if (!timers.empty() && timers.front().at <= now) {
      while (!timers.empty() && timers.front().at <= now + kBatchNs) {
        const Timer t = timers.front();
        std::pop_heap(timers.begin(), timers.end(), std::greater<Timer>());
        timers.pop_back();
        auto it = jobs.find(t.id);
        if (it == jobs.end() || it->second.timer_gen != t.gen) continue;
        if (t.at <= now || !t.deadline) {
          recheck(t.id);
        } else {
          later.push_back(t);  // a deadline is never early
        }
      }
      for (const Timer& t : later) {
        timers.push_back(t);
        std::push_heap(timers.begin(), timers.end(), std::greater<Timer>());
      }
      later.clear();
    }
    if (!ctl_queued && ring.QueueWait(&self->ctl, ctl, false, kCtlTag)) ctl_queued = true;
    int64_t until = timers.empty() ? -1 : timers.front().at;
    if (jobs.empty()) {
      // Idle: exit after kIdleExitNs without a job.
      until = MonotonicNs() + kIdleExitNs;
    }
    const int err = ring.Enter(until);
    if (err != 0 && err != ETIME && err != EINTR) {
      // Not expected (EBUSY, ENOMEM): do not spin on it.
      timespec pause = {0, 1000 * 1000};
      nanosleep(&pause, nullptr);
    }
    bool any = false;
    ring.Reap([&](uint64_t ud, int32_t res) {
      any = true;
      if (ud == kCtlTag) {
        ctl_queued = false;
      } else if (ud != FutexRing::kCancelTag) {
        completed(ud, res);
      }
    });
    lk.lock();
    if (jobs.empty() && !any && err == ETIME && self->incoming.empty() && self->cancels.empty() && !stopping_.load()) break;
  }
  // Stopping, or idle: no job left. The kernel cancels what is still queued
  // (the ctl wait) when the ring closes. All of it under mu_, as MuxMain's
  // exit: once `exited` is seen, ReapLocked joins this thread holding mu_,
  // so the thread must not take mu_ again after setting it.
  ring.Close();
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
    auto* m = static_cast<Mux*>(job->mux_);
    if (m->ring) m->cancels.push_back(job);
    InterruptMux(m);
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
  o.Set("ringThreads", Napi::Number::New(info.Env(), e->RingThreadCount()));
  o.Set("ringAvailable", Napi::Boolean::New(info.Env(), FutexRing::Available()));
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
