// Type-tagged handles: the one way a native object is handed to JavaScript and
// found again. Every handle is an external tagged with napi_type_tag_object
// (N-API 8; Node >= 20 accepts externals), one tag per kind, so a value that is
// not our handle of the expected kind (another family's, a wait token, a plain
// object, a number, null, undefined, another addon's external) is refused with
// TypeError "Illegal invocation" before its pointer is ever followed.
//
// A type becomes a handle by specialising HandleTraits next to its definition:
//
//   template <> struct HandleTraits<Thing> {
//     static constexpr HandleKind kind = HandleKind::kThing;   // add it below
//     static bool Closed(const Thing& t);              // for UnwrapOpen only
//     static const std::string& Name(const Thing& t);  // for UnwrapOpen only
//   };
//
// The bound fast paths (a semaphore's tryWait/post, shared memory atomics)
// carry their object as the function's data and need no unwrapping at all.
#pragma once

#include <node_api.h>

#include <cstdint>
#include <string>

#include "errors.h"

namespace pipc {

// One per type handed to JavaScript. Values are part of the tag, so never
// reuse one.
enum class HandleKind : uint64_t {
  kSemaphore = 1,
  kMessageQueue = 2,
  kSharedMemory = 3,
  kWaitToken = 4,
  kRobustSemaphore = 5,
  kRing = 6,
};

template <typename T>
struct HandleTraits;  // specialised per handle type (see above)

namespace handle_detail {

// The upper half is this addon's ("pipc" + "hndl"), so that our tags differ
// from any other addon's that tags the same objects.
constexpr uint64_t kAddonTag = 0x70697063686e646cULL;

template <typename T>
inline napi_type_tag TagOf() {
  return napi_type_tag{kAddonTag, static_cast<uint64_t>(HandleTraits<T>::kind)};
}

inline std::nullptr_t IllegalInvocation(napi_env env) {
  bool pending = false;
  // A failed N-API call may have left its own exception: ours replaces it.
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "Illegal invocation");
  return nullptr;
}

}  // namespace handle_detail

// Hands `obj` to JavaScript as a handle of its kind; `finalize(env, obj, hint)`
// runs when the handle is collected. Returns nullptr with a pending exception
// on failure, `obj` then being freed by `finalize` (as if collected) or, if the
// external could not even be created, left to the caller (*owned stays false).
template <typename T>
napi_value WrapHandle(napi_env env, T* obj, napi_finalize finalize,
                      bool* owned = nullptr) {
  if (owned != nullptr) *owned = false;
  napi_value ext;
  if (napi_create_external(env, obj, finalize, nullptr, &ext) != napi_ok) {
    return nullptr;
  }
  if (owned != nullptr) *owned = true;
  const napi_type_tag tag = handle_detail::TagOf<T>();
  if (napi_type_tag_object(env, ext, &tag) != napi_ok) {
    // An untagged handle would be refused by every function: fail now. The
    // external owns obj already; its finalizer frees it when collected.
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_error(env, nullptr, "cannot tag native handle");
    return nullptr;
  }
  return ext;
}

// The object behind a handle of T's kind, or nullptr with a pending
// TypeError "Illegal invocation". napi_get_value_external refuses anything
// that is not an external (without throwing: the tag check would throw on
// null and undefined); the tag check then refuses every external but ours of
// this kind, before the pointer is used.
template <typename T>
inline T* UnwrapHandle(napi_env env, napi_value v) {
  void* data = nullptr;
  if (v == nullptr || napi_get_value_external(env, v, &data) != napi_ok) {
    return handle_detail::IllegalInvocation(env);
  }
  const napi_type_tag tag = handle_detail::TagOf<T>();
  bool ours = false;
  if (napi_check_object_type_tag(env, v, &tag, &ours) != napi_ok || !ours ||
      data == nullptr) {
    return handle_detail::IllegalInvocation(env);
  }
  return static_cast<T*>(data);
}

// UnwrapHandle, and an object that is closed is IPCError EBADF (`syscall`
// and the object's name in the message), as the OS would say of a closed
// descriptor.
template <typename T>
inline T* UnwrapOpen(napi_env env, napi_value v, const char* syscall) {
  T* obj = UnwrapHandle<T>(env, v);
  if (obj == nullptr) return nullptr;
  if (HandleTraits<T>::Closed(*obj)) {
    ThrowIPCErrorC(env, EBADF, syscall, HandleTraits<T>::Name(*obj));
    return nullptr;
  }
  return obj;
}

// C++ exception flavours (node-addon-api code): throw instead of returning
// nullptr.
template <typename T>
inline T& Unwrap(const Napi::Value& v) {
  T* obj = UnwrapHandle<T>(v.Env(), v);
  if (obj == nullptr) throw v.Env().GetAndClearPendingException();
  return *obj;
}

template <typename T>
inline T& UnwrapOpen(const Napi::Value& v, const char* syscall) {
  T* obj = UnwrapOpen<T>(v.Env(), v, syscall);
  if (obj == nullptr) throw v.Env().GetAndClearPendingException();
  return *obj;
}

// WrapHandle for node-addon-api code: throws; on failure `obj` is freed either
// way (by `finalize` or here, through `destroy`).
template <typename T, typename Destroy>
inline Napi::Value Wrap(Napi::Env env, T* obj, napi_finalize finalize,
                        Destroy destroy) {
  bool owned = false;
  napi_value v = WrapHandle(env, obj, finalize, &owned);
  if (v == nullptr) {
    if (!owned) destroy(obj);
    throw env.GetAndClearPendingException();
  }
  return Napi::Value(env, v);
}

}  // namespace pipc
