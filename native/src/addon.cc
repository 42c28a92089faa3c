// visiontune's native addon: context-aware (NAPI_MODULE_INIT), so it loads in worker threads.
#include "tensor.h"

namespace vt {
void registerTensor(Napi::Env env, Napi::Object exports);
void registerOps(Napi::Env env, Napi::Object exports);
void registerRuntime(Napi::Env env, Napi::Object exports);
}  // namespace vt

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  vt::registerTensor(env, exports);
  vt::registerOps(env, exports);
  vt::registerRuntime(env, exports);
  return exports;
}

NODE_API_MODULE(visiontune, Init)
