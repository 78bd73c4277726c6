#include "errors.h"

#include <uv.h>

#include "../addon.h"

namespace pipc {

namespace {

Napi::Value CreateError(Napi::Env env, int err, const char* syscall,
                        const std::string& path,
                        const std::string& description = std::string()) {
  const char* code = uv_err_name(-err);
  std::string message = std::string(code) + ": " +
                        (description.empty() ? std::string(uv_strerror(-err)) : description) + ", " +
                        syscall + (path.empty() ? "" : " '" + path + "'");
  AddonData* data = AddonData::Get(env);
  if (data != nullptr && !data->error_factory.IsEmpty()) {
    return data->error_factory.Call(
        {Napi::String::New(env, message), Napi::String::New(env, code),
         Napi::Number::New(env, -err), Napi::String::New(env, syscall),
         path.empty() ? env.Undefined() : Napi::String::New(env, path)});
  }
  // Before lib/errors.ts registered its class (never in normal use).
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  return e.Value();
}

Napi::Value SetErrorFactory(const Napi::CallbackInfo& info) {
  AddonData* data = AddonData::Get(info.Env());
  if (!info[0].IsFunction()) {
    throw Napi::TypeError::New(info.Env(), "factory must be a function");
  }
  data->error_factory = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Value StrError(const Napi::CallbackInfo& info) {
  int err = info[0].As<Napi::Number>().Int32Value();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("code", uv_err_name(-err));
  o.Set("description", uv_strerror(-err));
  return o;
}

}  // namespace

Napi::Error MakeIPCError(Napi::Env env, int err, const char* syscall,
                         const std::string& path) {
  return Napi::Error(env, CreateError(env, err, syscall, path));
}

void ThrowIPCError(Napi::Env env, int err, const char* syscall,
                   const std::string& path) {
  throw MakeIPCError(env, err, syscall, path);
}

void ThrowIPCError(Napi::Env env, int err, const char* syscall,
                   const std::string& path, const std::string& description) {
  throw Napi::Error(env, CreateError(env, err, syscall, path, description));
}

napi_value ThrowIPCErrorC(napi_env env, int err, const char* syscall,
                          const std::string& path, const std::string& description) {
  try {
    Napi::Value e = CreateError(Napi::Env(env), err, syscall, path, description);
    napi_throw(env, e);
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
  }
  return nullptr;
}

void InitErrors(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrorFactory", Napi::Function::New(env, SetErrorFactory));
  exports.Set("strerror", Napi::Function::New(env, StrError));
}

}  // namespace pipc
