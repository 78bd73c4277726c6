// Argument helpers shared by the families' exported functions.
#pragma once

#include <napi.h>

#include <cstddef>
#include <string>

#include "errors.h"
#include "handle.h"

namespace pipc {

// The start of a plain N-API function whose first argument is an open handle
// of T: up to N arguments (missing ones read as undefined) and the object,
// or self == nullptr with a pending TypeError (a wrong handle) or IPCError
// EBADF (a closed one, reported for `syscall`):
//
//   HandleCall<Mq, 3> call(env, cbinfo, "mq_send");
//   if (call.self == nullptr) return nullptr;
template <typename T, size_t N>
struct HandleCall {
  size_t argc = N;
  napi_value argv[N];
  T* self = nullptr;

  HandleCall(napi_env env, napi_callback_info cbinfo, const char* syscall) {
    napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);
    self = UnwrapOpen<T>(env, argv[0], syscall);
  }
};

// name(...) -> undefined: calls fn(name) (sem_unlink, mq_unlink, shm_unlink)
// and turns its failure into the IPCError for `syscall`.
inline Napi::Value CallWithName(const Napi::CallbackInfo& info,
                                int (*fn)(const char*), const char* syscall) {
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (fn(name.c_str()) == -1) ThrowIPCError(info.Env(), errno, syscall, name);
  return info.Env().Undefined();
}

}  // namespace pipc
