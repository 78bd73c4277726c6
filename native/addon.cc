#include "addon.h"

#include "core/errors.h"
#include "core/wait.h"

namespace pipc {

AddonData::AddonData() = default;
AddonData::~AddonData() = default;

namespace {

void Cleanup(void* arg) {
  auto* data = static_cast<AddonData*>(arg);
  if (data->engine) data->engine->Shutdown();
}

// An empty function in plain N-API: the benchmarks' measure of the cost of
// crossing from JavaScript into the addon.
napi_value Noop(napi_env, napi_callback_info) { return nullptr; }

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData(data);
  data->engine = std::make_unique<WaitEngine>(env);
  napi_add_env_cleanup_hook(env, Cleanup, data);
  napi_value noop;
  napi_create_function(env, "noop", NAPI_AUTO_LENGTH, Noop, nullptr, &noop);
  exports.Set("noop", Napi::Value(env, noop));
  InitErrors(env, exports);
  InitWait(env, exports);
  InitSemaphore(env, exports);
  InitRobust(env, exports);
  InitMq(env, exports);
  InitShm(env, exports);
  InitPipe(env, exports);
  return exports;
}

}  // namespace pipc

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  return pipc::Init(env, exports);
}

NODE_API_MODULE(posix_ipc, InitAll)
