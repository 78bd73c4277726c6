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

// Bytes of a Uint8Array (Buffer) argument; false with a pending TypeError.
inline bool GetBytes(napi_env env, napi_value v, const char** data,
                     size_t* len) {
  bool is = false;
  napi_is_typedarray(env, v, &is);
  if (!is) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "message must be a Uint8Array");
    return false;
  }
  napi_typedarray_type type;
  void* p = nullptr;
  napi_get_typedarray_info(env, v, &type, len, &p, nullptr, nullptr);
  if (type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "message must be a Uint8Array");
    return false;
  }
  // An empty array may have no backing store at all (nullptr), and mq_send
  // and mq_receive take a pointer declared nonnull (UBSan reports it).
  static char empty;
  *data = p != nullptr ? static_cast<const char*>(p) : &empty;
  return true;
}

}  // namespace pipc
