// The one place where an errno becomes a JavaScript error.
#pragma once

#include <napi.h>

#include <string>

namespace pipc {

// Builds an IPCError (the class registered by lib/errors.ts) shaped like Node's
// SystemError: code, errno (negative, as Node's), syscall, path, and a message
// "CODE: description, syscall 'path'".
Napi::Error MakeIPCError(Napi::Env env, int err, const char* syscall,
                         const std::string& path);

// Throws it (C++ exception mode).
[[noreturn]] void ThrowIPCError(Napi::Env env, int err, const char* syscall,
                                const std::string& path);

// The same with a description of what was found in place of strerror's
// ("EPERM: '/dev/shm/x' is owned by uid 65534 ..., shm_open '/x'"); an empty
// description falls back to strerror's.
[[noreturn]] void ThrowIPCError(Napi::Env env, int err, const char* syscall,
                                const std::string& path,
                                const std::string& description);

// Plain N-API flavour for the hot paths written against the C API: leaves a
// pending exception and returns nullptr.
napi_value ThrowIPCErrorC(napi_env env, int err, const char* syscall,
                          const std::string& path,
                          const std::string& description = std::string());

// Registers errors' exports (setErrorFactory).
void InitErrors(Napi::Env env, Napi::Object exports);

}  // namespace pipc
