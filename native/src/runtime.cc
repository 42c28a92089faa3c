// Process and thread settings: intra-op threads, seeds, grad mode, autocast, CUDA presence.
#include "tensor.h"
#include <chrono>
#include <ATen/Parallel.h>
#include <ATen/CPUGeneratorImpl.h>
#include <cstring>
#include <mutex>
#include <ATen/autocast_mode.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/GradMode.h>
#include <torch/version.h>

namespace vt {

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define VT_AUTOCAST_BY_DEVICE 1
#endif

static Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, {
    at::set_num_threads(info[0].As<Napi::Number>().Int32Value());
    return env.Undefined();
  })
}

static Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

static Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, {
    at::manual_seed(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()));
    return env.Undefined();
  })
}

// The default CPU generator's state (what torch.get_rng_state() returns) as bytes, for checkpoints.
static Napi::Value RngState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, {
    auto gen = at::detail::getDefaultCPUGenerator();
    at::Tensor state;
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      state = gen.get_state().contiguous();
    }
    return Napi::Buffer<uint8_t>::Copy(env, state.data_ptr<uint8_t>(), static_cast<size_t>(state.numel()));
  })
}

// setRngState(bytes): puts back a state rngState returned (torch.set_rng_state); libtorch checks its size.
static Napi::Value SetRngState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, {
    auto bytes = info[0].As<Napi::Buffer<uint8_t>>();
    at::Tensor state = at::empty({static_cast<int64_t>(bytes.Length())}, at::kByte);
    std::memcpy(state.data_ptr<uint8_t>(), bytes.Data(), bytes.Length());
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
    return env.Undefined();
  })
}

// Grad mode is thread-local in libtorch: each worker thread sets its own.
static Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  c10::GradMode::set_enabled(info[0].As<Napi::Boolean>().Value());
  return info.Env().Undefined();
}

static Napi::Value IsGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), c10::GradMode::is_enabled());
}

static bool isCuda(const std::string& device) { return device.rfind("cuda", 0) == 0; }

// autocastState(device) -> [enabled, dtypeCode]
static Napi::Value AutocastState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool cuda = isCuda(info[0].As<Napi::String>().Utf8Value());
  Napi::Array out = Napi::Array::New(env, 2);
#ifdef VT_AUTOCAST_BY_DEVICE
  auto type = cuda ? at::kCUDA : at::kCPU;
  out.Set(0u, Napi::Boolean::New(env, at::autocast::is_autocast_enabled(type)));
  out.Set(1u, Napi::Number::New(env, static_cast<int>(at::autocast::get_autocast_dtype(type))));
#else
  out.Set(0u, Napi::Boolean::New(env, cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled()));
  out.Set(1u, Napi::Number::New(env, static_cast<int>(cuda ? at::autocast::get_autocast_gpu_dtype()
                                                           : at::autocast::get_autocast_cpu_dtype())));
#endif
  return out;
}

// setAutocast(device, enabled, dtypeCode)
static Napi::Value SetAutocast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, {
    bool cuda = isCuda(info[0].As<Napi::String>().Utf8Value());
    bool enabled = info[1].As<Napi::Boolean>().Value();
    auto dtype = static_cast<at::ScalarType>(info[2].As<Napi::Number>().Int32Value());
#ifdef VT_AUTOCAST_BY_DEVICE
    auto type = cuda ? at::kCUDA : at::kCPU;
    at::autocast::set_autocast_enabled(type, enabled);
    at::autocast::set_autocast_dtype(type, dtype);
#else
    if (cuda) {
      at::autocast::set_enabled(enabled);
      at::autocast::set_autocast_gpu_dtype(dtype);
    } else {
      at::autocast::set_cpu_enabled(enabled);
      at::autocast::set_autocast_cpu_dtype(dtype);
    }
#endif
    return env.Undefined();
  })
}

// Entering and leaving autocast scopes: the weight-cast cache is cleared when the outermost
// scope closes, as torch.autocast does.
static Napi::Value AutocastEnter(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::autocast::increment_nesting());
}

static Napi::Value AutocastExit(const Napi::CallbackInfo& info) {
  int depth = at::autocast::decrement_nesting();
  if (depth == 0) at::autocast::clear_cache();
  return Napi::Number::New(info.Env(), depth);
}

static Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, {
    const auto& hooks = at::detail::getCUDAHooks();
    return Napi::Number::New(env, hooks.hasCUDA() ? hooks.getNumGPUs() : 0);
  })
}

static Napi::Value CudaSynchronize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, {
    at::detail::getCUDAHooks().deviceSynchronize(info[0].As<Napi::Number>().Int32Value());
    return env.Undefined();
  })
}

static Napi::Value Version(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("torch", Napi::String::New(env, TORCH_VERSION));
#ifdef VT_WITH_CUDA
  out.Set("cudaBuild", Napi::Boolean::New(env, true));
#else
  out.Set("cudaBuild", Napi::Boolean::New(env, false));
#endif
  return out;
}

// The mean time in microseconds of one 1-element add called from C++ through libtorch's
// dispatcher, result freed: what an op costs without any binding, for the engine benchmark.
static Napi::Value TinyOpMicros(const Napi::CallbackInfo& info) {
  const int64_t n = info[0].As<Napi::Number>().Int64Value();
  at::Tensor a = at::ones({1}), b = at::ones({1});
  for (int i = 0; i < 1000; i++) at::add(a, b);
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n; i++) at::add(a, b);
  const std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
  return Napi::Number::New(info.Env(), took.count() / static_cast<double>(n));
}

void registerRuntime(Napi::Env env, Napi::Object exports) {
  exports.Set("tinyOpMicros", Napi::Function::New(env, TinyOpMicros));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed));
  exports.Set("rngState", Napi::Function::New(env, RngState));
  exports.Set("setRngState", Napi::Function::New(env, SetRngState));
  exports.Set("setGradEnabled", Napi::Function::New(env, SetGradEnabled));
  exports.Set("isGradEnabled", Napi::Function::New(env, IsGradEnabled));
  exports.Set("autocastState", Napi::Function::New(env, AutocastState));
  exports.Set("setAutocast", Napi::Function::New(env, SetAutocast));
  exports.Set("autocastEnter", Napi::Function::New(env, AutocastEnter));
  exports.Set("autocastExit", Napi::Function::New(env, AutocastExit));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, CudaDeviceCount));
  exports.Set("cudaSynchronize", Napi::Function::New(env, CudaSynchronize));
  exports.Set("version", Napi::Function::New(env, Version));
}

}  // namespace vt
