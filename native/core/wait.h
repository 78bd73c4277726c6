// The wait engine: blocking waits (semaphores, FIFO opens, futexes) run on the
// addon's own threads, never on libuv's pool, and complete on the event loop.
//
// A job waits in slices (kSliceNs) so that cancellation and environment
// teardown are noticed promptly without signals. Threads are created on demand
// up to kMaxThreads, parked when idle and exit after kIdleExitNs; past the cap,
// jobs take turns a slice at a time, so any number of jobs can be pending with
// bounded threads. A job that succeeds after its caller lost interest (abort,
// timeout, close, teardown) is undone (a semaphore is posted back), so an
// abandoned wait consumes nothing.
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
#include <vector>

#include "handle.h"

namespace pipc {

class WaitEngine;

class WaitJob {
 public:
  virtual ~WaitJob();
  // Engine thread: blocks until success (returns 0), failure (an errno), or the
  // monotonic time until_ns (returns ETIMEDOUT).
  virtual int WaitUntil(int64_t until_ns) = 0;
  // Gives back what a successful wait took, when nobody wants it any more.
  virtual void Undo() {}
  // JS thread: reports the outcome to the callback. The default calls
  // callback(error | null, succeeded: boolean); ETIMEDOUT is not an error.
  virtual void Deliver(Napi::Env env, Napi::Function callback, int result);

  // Cancels the job (JS thread). If the wait already succeeded, what it took
  // is given back now, so a caller that cancels and then blocks on the same
  // object (acquireSync) never waits for a unit parked in the completion queue.
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
  static constexpr int64_t kSliceNs = 50 * 1000 * 1000;
  static constexpr int64_t kIdleExitNs = 2000LL * 1000 * 1000;
  static constexpr size_t kMaxThreads = 64;

  explicit WaitEngine(Napi::Env env);
  ~WaitEngine();

  // JS thread. Queues a job; `callback` is called on the event loop unless the
  // job was cancelled first.
  void Submit(Napi::Env env, std::shared_ptr<WaitJob> job,
              Napi::Function callback);
  // JS thread. Stops every job and joins every thread (environment teardown).
  void Shutdown();

  size_t ThreadCount();
  size_t Pending() const { return pending_; }
  int64_t spin_ns() const { return spin_ns_.load(std::memory_order_relaxed); }
  void set_spin_ns(int64_t ns) { spin_ns_.store(ns); }

 private:
  struct Worker {
    std::thread thread;
    std::condition_variable cv;
    std::shared_ptr<WaitJob> job;
    bool exited = false;
  };
  using JobPtr = std::shared_ptr<WaitJob>;

  void ThreadMain(Worker* self);
  // Runs a job until it finishes or yields its turn; returns false if yielded.
  bool RunJob(const JobPtr& job);
  void Finish(const JobPtr& job, int result);
  void ReapLocked();
  static void CallJs(napi_env env, napi_value js_cb, void* context, void* data);

  std::mutex mu_;
  std::deque<JobPtr> queue_;
  std::list<Worker> workers_;
  std::vector<Worker*> idle_;
  bool stopping_ = false;
  std::atomic<int64_t> spin_ns_{0};

  napi_threadsafe_function tsfn_ = nullptr;
  size_t pending_ = 0;  // JS thread only
  bool referenced_ = false;
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
