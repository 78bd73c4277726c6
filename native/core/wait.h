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
// signal of our own (kWakeSignal, a real-time signal whose handler does
// nothing, installed without SA_RESTART), which makes whatever blocking call
// it is in (sem_clockwait, ppoll, nanosleep, futex) return EINTR; the job
// returns EINTR and the engine re-checks cancellation and teardown. Parked
// idle threads are woken by their condition variable. A signal that lands
// just before the thread enters its blocking call is lost, so slices remain
// the bound: for a cancel that is at most one slice of a thread kept busy
// (JavaScript has already moved on), and teardown re-sends every millisecond
// until every thread has exited. Where the signal is unavailable (taken by
// someone else, no real-time signals) the engine falls back to slices alone.
#pragma once

#include <napi.h>

#include <atomic>
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

namespace pipc {

class WaitEngine;

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
  int result = 0;

 private:
  friend class WaitEngine;
  // Raw reference, created and deleted on the JS thread only (a job may be
  // destroyed on an engine thread).
  napi_ref callback_ = nullptr;
  std::atomic<bool> taken_back_{false};
};

class WaitEngine {
 public:
  // The longest a blocking call runs before the engine looks at cancellation,
  // teardown and waiting jobs without a signal (see above).
  static constexpr int64_t kSliceNs = 50 * 1000 * 1000;
  static constexpr int64_t kIdleExitNs = 2000LL * 1000 * 1000;
  static constexpr size_t kMaxThreads = 64;

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

  size_t ThreadCount();
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

  void ThreadMain(Worker* self);
  // Runs a job until it finishes or yields its turn; returns false if yielded.
  bool RunJob(const JobPtr& job);
  void Finish(const JobPtr& job, int result);
  void ReapLocked();
  // Sends kWakeSignal to the thread (mu_ held: it is not joined yet).
  void InterruptLocked(Worker& w);
  static void CallJs(napi_env env, napi_value js_cb, void* context, void* data);

  std::mutex mu_;
  std::condition_variable exited_cv_;  // a thread exited
  std::deque<JobPtr> queue_;
  std::list<Worker> workers_;
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
