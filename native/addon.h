// Per-environment state (main thread and each worker thread get their own) and
// the families' registration functions.
#pragma once

#include <napi.h>

#include <memory>

namespace pipc {

class WaitEngine;

struct AddonData {
  AddonData();
  ~AddonData();
  // The IPCError factory registered by lib/errors.ts.
  Napi::FunctionReference error_factory;
  // The wait engine's threads belong to this environment and are joined by the
  // environment's cleanup hook.
  std::unique_ptr<WaitEngine> engine;

  static AddonData* Get(Napi::Env env) {
    return env.GetInstanceData<AddonData>();
  }
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
void InitMq(Napi::Env env, Napi::Object exports);
void InitShm(Napi::Env env, Napi::Object exports);
void InitPipe(Napi::Env env, Napi::Object exports);

Napi::Object Init(Napi::Env env, Napi::Object exports);

}  // namespace pipc
