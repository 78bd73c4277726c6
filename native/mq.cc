#include "addon.h"

namespace pipc {

void InitMq(Napi::Env, Napi::Object) {}

}  // namespace pipc
