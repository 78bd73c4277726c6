#include "addon.h"

#include <unistd.h>

#include "core/errors.h"
#include "core/wait.h"

namespace pipc {

AddonData::AddonData(Napi::Env env) : env_(env) {}

// Runs when the environment deletes its instance data, after the cleanup hook:
// Teardown has released everything already (a no-op here).
AddonData::~AddonData() { Teardown(); }

void AddonData::Teardown() {
  if (torn_down_) return;
  torn_down_ = true;
  // The order is explained in addon.h.
  if (engine) engine->Shutdown(env_);
#if PIPC_HAVE_MQ
  CloseQueues(this);
#endif
  for (int fd : owned_fds) close(fd);
  owned_fds.clear();
  error_factory.Reset();
}

namespace {

void Cleanup(void* arg) { static_cast<AddonData*>(arg)->Teardown(); }

// An empty function in plain N-API: the benchmarks' measure of the cost of
// crossing from JavaScript into the addon.
napi_value Noop(napi_env, napi_callback_info) { return nullptr; }

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData(env);
  env.SetInstanceData(data);
  data->engine = std::make_unique<WaitEngine>(env);
  // Registered after everything the engine creates (its thread-safe
  // function registers a hook of its own): hooks run newest first, so ours
  // runs while those are still alive.
  napi_add_env_cleanup_hook(env, Cleanup, data);
  napi_value noop;
  napi_create_function(env, "noop", NAPI_AUTO_LENGTH, Noop, nullptr, &noop);
  exports.Set("noop", Napi::Value(env, noop));
  InitErrors(env, exports);
  InitWait(env, exports);
  InitSemaphore(env, exports);
  InitRobust(env, exports);
  InitSegment(env, exports);
  InitWebLocks(env, exports);
#if PIPC_HAVE_MQ
  InitMq(env, exports);
#endif
  InitShm(env, exports);
  InitPipe(env, exports);
  InitRing(env, exports);
  return exports;
}

}  // namespace pipc

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  return pipc::Init(env, exports);
}

NODE_API_MODULE(posix_ipc, InitAll)
