#include "addon.h"

namespace pipc {

void InitPipe(Napi::Env, Napi::Object) {}

}  // namespace pipc
