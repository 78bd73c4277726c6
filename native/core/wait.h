// The wait engine: blocking waits (semaphores, FIFO opens, futexes) run on the
// addon's own threads, never on libuv's pool, and complete on the event loop.
//
// Threads are created on demand up to kMaxThreads, parked when idle and exit
// after kIdleExitNs; past the cap, jobs take turns a slice (kSliceNs) at a
// time, so any number of jobs can be pending with bounded threads. A job that
// succeeds after its caller lost interest (abort, timeout, close, teardown) is
// undone (a semaphore is posted back), so an abandoned wait consumes nothing.
//
// Interrupting a wait at once. A POSIX semaphore cannot be waited on together
// with a descriptor (no eventfd to add to its wait), and posting it to wake
// our waiter could wake another process's instead. So the engine interrupts
// the thread, not the object: cancel and teardown send the running thread a
// signal of our own (SIGRTMIN + 7, a real-time signal whose handler does
// nothing, installed without SA_RESTART), which makes whatever blocking call
// it is in (sem_clockwait, ppoll, nanosleep, futex) return EINTR; the job
// returns EINTR and the engine re-checks cancellation and teardown. Parked
// idle threads are woken by their condition variable. A signal that lands
// just before the thread enters its blocking call is lost, so slices remain
// the bound: for a cancel that is at most one slice of a thread kept busy
// (JavaScript has already moved on), and teardown re-sends every millisecond
// until every thread has exited. Where the signal is unavailable (taken by
// someone else, no real-time signals) the engine falls back to slices alone.
//
// Many waits, few threads. A job whose wait is a futex word in shared memory
// (the crash-safe semaphores) can say so (Pollable) and is then not given a
// thread of its own: up to kMuxJobs such jobs share one thread, which sleeps
// in futex_waitv (Linux 5.16) on all their words at once plus a private word
// of its own that Submit and Cancel bump to interrupt it. So a release is
// noticed at once however many distinct objects a process waits on
// (kMaxMuxThreads x kMuxJobs of them before any job takes turns), with no
// signal and no slice. Each wake-up tries the jobs it is for: a try is a
// few atomic operations on the job's mapping. Where the kernel has futex
// waits on io_uring (Linux 6.7, FutexRing in uring.h), pollable jobs go to
// io_uring threads instead (UringMain): each job's word has a wait request
// of its own queued in the kernel, so neither a wake-up nor a new job
// re-registers the others' words, as every futex_waitv sleep must (48 µs for
// 128 shared words here). Where futex_waitv is missing too (ENOSYS) pollable
// jobs run like the others.
#pragma once

#include <napi.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "handle.h"
#include "uring.h"

namespace pipc {

class WaitEngine;

// What a pollable job sleeps on between two tries (WaitJob::Poll).
struct PollSleep {
  int32_t* word = nullptr;  // a futex word
  int32_t expected = 0;     // sleep while *word == expected
  bool shared = true;       // in memory shared with other processes
  int64_t recheck_ns = -1;  // absolute CLOCK_MONOTONIC time to try again anyway
};

// A multiplexing thread tries the jobs whose recheck_ns is within this much
// of the one that woke it, all in one wake-up: a thread of 127 waits then
// wakes a few times per recheck period instead of 127 times (each a
// futex_waitv re-arm of all its words). A Poll() called up to this early
// should do what it would do at recheck_ns.
constexpr int64_t kRecheckSlackNs = 100LL * 1000 * 1000;

class WaitJob {
 public:
  virtual ~WaitJob();
  // Engine thread: blocks until success (returns 0), failure (an errno), the
  // monotonic time until_ns (returns ETIMEDOUT), or an interrupt (returns
  // EINTR: a blocking call returned EINTR; the engine looks at `cancelled`
  // and teardown and calls again if neither).
  virtual int WaitUntil(int64_t until_ns) = 0;
  // Gives back what a successful wait took, when nobody wants it any more.
  virtual void Undo() {}
  // JS thread: reports the outcome to the callback. The default calls
  // callback(error | null, succeeded: boolean); ETIMEDOUT is not an error.
  virtual void Deliver(Napi::Env env, Napi::Function callback, int result);

  // Multiplexed waits (see the top of this file). A pollable job's Poll()
  // tries once without blocking: 0 on success, an errno on failure, or EAGAIN
  // after filling *sleep, when the engine sleeps until the word changes (or
  // recheck_ns, the deadline, an interrupt) and then calls Unpoll() before
  // the next Poll(). Poll and Unpoll run on one engine thread at a time.
  virtual bool Pollable() const { return false; }
  virtual int Poll(PollSleep* sleep) {
    (void)sleep;
    return ENOTSUP;
  }
  virtual void Unpoll() {}

  // Marks the job cancelled (WaitEngine::Cancel also interrupts its thread).
  // If the wait already succeeded, what it took is given back now, so a
  // caller that cancels and then blocks on the same object (acquireSync)
  // never waits for a unit parked in the completion queue.
  void Cancel();
  // Undo() exactly once, whichever of the engine thread, Cancel() or the
  // completion sees the need first.
  void TakeBack() {
    if (!taken_back_.exchange(true)) Undo();
  }

  std::atomic<bool> cancelled{false};
  std::atomic<bool> succeeded{false};
  int64_t deadline_ns = -1;  // absolute CLOCK_MONOTONIC, -1: none
  // Whether a pending job keeps the event loop alive (a watch that only
  // reports on something else the program waits for does not).
  bool keeps_alive = true;
  int result = 0;

 private:
  friend class WaitEngine;
  // Raw reference, created and deleted on the JS thread only (a job may be
  // destroyed on an engine thread).
  napi_ref callback_ = nullptr;
  std::atomic<bool> taken_back_{false};
  void* mux_ = nullptr;  // the multiplexing thread it is on (engine's mu_)
};

class WaitEngine {
 public:
  // The longest a blocking call runs before the engine looks at cancellation,
  // teardown and waiting jobs without a signal (see above).
  static constexpr int64_t kSliceNs = 50 * 1000 * 1000;
  static constexpr int64_t kIdleExitNs = 2000LL * 1000 * 1000;
  static constexpr size_t kMaxThreads = 64;
  // futex_waitv takes at most 128 words: each multiplexing thread waits on
  // its own word and kMuxJobs jobs' words.
  static constexpr size_t kMuxJobs = 127;
  static constexpr size_t kMaxMuxThreads = 128;
  // The io_uring thread's ring: submissions between two enters (more are
  // flushed as they come) and completions (the kernel keeps any overflow).
  static constexpr unsigned kRingSubmissions = 256;
  static constexpr unsigned kRingCompletions = 4096;
  // Jobs per io_uring thread: taking a queued wait back (a cancel, a
  // deadline) walks the ring's list of futex waits in the kernel, so rings
  // are kept this small; kMaxRingThreads x kRingJobs jobs before the
  // futex_waitv threads take the rest.
  static constexpr size_t kRingJobs = 1024;
  static constexpr size_t kMaxRingThreads = 64;

  explicit WaitEngine(Napi::Env env);
  ~WaitEngine();

  // JS thread. Queues a job; `callback` is called on the event loop unless the
  // job was cancelled first.
  void Submit(Napi::Env env, std::shared_ptr<WaitJob> job,
              Napi::Function callback);
  // JS thread. Cancels the job and interrupts the thread waiting for it.
  void Cancel(const std::shared_ptr<WaitJob>& job);
  // JS thread, environment teardown (AddonData::Teardown). Cancels every job,
  // interrupts and joins every thread, frees the callback references of jobs
  // not delivered, releases the thread-safe function. Idempotent.
  void Shutdown(napi_env env);

  // Every engine thread (waiting and multiplexing); MuxThreadCount() the
  // multiplexing ones alone, MuxJobs() the jobs they hold.
  size_t ThreadCount();
  size_t MuxThreadCount();
  size_t MuxJobs();
  // io_uring threads alive: each holds one io_uring descriptor.
  size_t RingThreadCount();
  size_t Pending() const { return pending_; }
  int64_t spin_ns() const { return spin_ns_.load(std::memory_order_relaxed); }
  void set_spin_ns(int64_t ns) { spin_ns_.store(ns); }

 private:
  struct Worker {
    std::thread thread;
    std::condition_variable cv;
    std::shared_ptr<WaitJob> job;  // handed over, not started yet
    WaitJob* running = nullptr;    // the job it is waiting for
    bool exited = false;
  };
  using JobPtr = std::shared_ptr<WaitJob>;
  struct Mux {
    std::thread thread;
    alignas(4) int32_t ctl = 0;   // futex word: bumped to interrupt the sleep
    std::vector<JobPtr> incoming;  // submitted, not yet taken (mu_)
    size_t count = 0;              // jobs it holds, incoming included (mu_)
    bool exited = false;           // (mu_)
    // The io_uring form (UringMain): up to kRingJobs jobs; Cancel() names
    // the jobs to cancel here (mu_).
    std::unique_ptr<FutexRing> ring;
    std::vector<JobPtr> cancels;
  };

  // mu_ held. Hands a pollable job to a multiplexing thread; false if every
  // one is full (or futex_waitv is missing).
  bool SubmitMuxLocked(JobPtr& job);
  void MuxMain(Mux* self);
  void UringMain(Mux* self);
  static void InterruptMux(Mux* m);

  void ThreadMain(Worker* self);
  // Runs a job until it finishes or yields its turn; returns false if yielded.
  bool RunJob(const JobPtr& job);
  void Finish(const JobPtr& job, int result);
  void ReapLocked();
  // Sends the wake signal to the thread (mu_ held: it is not joined yet).
  void InterruptLocked(Worker& w);
  static void CallJs(napi_env env, napi_value js_cb, void* context, void* data);

  std::mutex mu_;
  std::condition_variable exited_cv_;  // a thread exited
  std::deque<JobPtr> queue_;
  std::list<Worker> workers_;
  std::list<Mux> muxes_;
  std::vector<Worker*> idle_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> spin_ns_{0};

  napi_env env_;
  napi_threadsafe_function tsfn_ = nullptr;
  size_t pending_ = 0;  // JS thread only
  bool referenced_ = false;
  // Jobs whose callback reference is still held (JS thread only): what
  // Shutdown must free if their completion never reaches JavaScript.
  std::unordered_map<WaitJob*, JobPtr> live_;
};

// What a wait token (the handle returned to JavaScript for cancelWait) holds.
using WaitJobPtr = std::shared_ptr<WaitJob>;

template <>
struct HandleTraits<WaitJobPtr> {
  static constexpr HandleKind kind = HandleKind::kWaitToken;
};

// Registers the engine's exports (cancelWait, engineStats, setSpin).
void InitWait(Napi::Env env, Napi::Object exports);

// Wraps a job as the token returned to JavaScript (for cancelWait).
Napi::Value JobToken(Napi::Env env, std::shared_ptr<WaitJob> job);

}  // namespace pipc
