// Per-environment state (main thread and each worker thread get their own),
// its teardown, and the families' registration functions.
#pragma once

#include <napi.h>

#include <memory>
#include <set>
#include <unordered_set>

// binding.gyp says whether native/mq is built; a build without it (another
// build system) gets the platform's answer.
#ifndef PIPC_HAVE_MQ
#ifdef __linux__
#define PIPC_HAVE_MQ 1
#else
#define PIPC_HAVE_MQ 0
#endif
#endif

namespace pipc {

class WaitEngine;
struct Mq;

// Everything the addon keeps for one environment, in one place, released by
// one cleanup hook (Teardown) in one stated order. Nothing here is touched
// from another thread except through the wait engine's own locking.
struct AddonData {
  explicit AddonData(Napi::Env env);
  ~AddonData();

  // The environment's cleanup hook, JS thread, while the environment can
  // still run N-API calls. Idempotent. Order:
  //  1. the wait engine: cancel every job, interrupt and join every engine
  //     thread, free the callback references of jobs never delivered, release
  //     the thread-safe function. First, because engine threads use
  //     semaphores and FIFO descriptors and would call back into JavaScript.
  //  2. message queues: stop and close their uv_poll handles (the loop must
  //     hold none of ours when it closes), drop their callback references,
  //     mq_close. Their externals are finalized later and find them closed.
  //  3. descriptors owned by Connections that libuv never adopted.
  //  4. the IPCError factory, last: nothing above creates errors, and nothing
  //     finds it half gone.
  // Shared memory needs no step: each mapping is owned by its handle and its
  // ArrayBuffers, whose finalizers unmap it.
  void Teardown();

  // The IPCError factory registered by lib/core/errors.ts.
  Napi::FunctionReference error_factory;
  // The wait engine's threads belong to this environment.
  std::unique_ptr<WaitEngine> engine;
  // Open message queues (native/mq), closed at teardown.
  std::unordered_set<Mq*> queues;
  // Descriptors a Connection owns that libuv does not drive (yet): closed at
  // teardown, so a worker that ends with unused ends leaks nothing. Used on
  // the JS thread only.
  std::set<int> owned_fds;

  static AddonData* Get(Napi::Env env) {
    return env.GetInstanceData<AddonData>();
  }

 private:
  napi_env env_;
  bool torn_down_ = false;
};

// Exports a function written against the plain C N-API: the hot paths, where
// node-addon-api's C++ wrapper would add a few nanoseconds per call.
inline void SetRawFunction(Napi::Env env, Napi::Object exports,
                           const char* name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, nullptr, &fn);
  exports.Set(name, Napi::Value(env, fn));
}

void InitSemaphore(Napi::Env env, Napi::Object exports);
void InitRobust(Napi::Env env, Napi::Object exports);
void InitSegment(Napi::Env env, Napi::Object exports);
void InitWebLocks(Napi::Env env, Napi::Object exports);
void InitShm(Napi::Env env, Napi::Object exports);
void InitPipe(Napi::Env env, Napi::Object exports);
void InitRing(Napi::Env env, Napi::Object exports);
#if PIPC_HAVE_MQ
// native/mq is built where POSIX message queues exist (binding.gyp).
void InitMq(Napi::Env env, Napi::Object exports);
// Teardown step 2.
void CloseQueues(AddonData* data);
#endif

Napi::Object Init(Napi::Env env, Napi::Object exports);

}  // namespace pipc
