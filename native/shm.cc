#include "addon.h"

namespace pipc {

void InitShm(Napi::Env, Napi::Object) {}

}  // namespace pipc
