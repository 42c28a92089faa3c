// Activations on bfloat16 CPU tensors (autocast's), forward and backward in one pass each, where
// libtorch 1.13's own kernels are slow or missing.
//
// SiLU (x·sigmoid(x), Elfwing et al. 2018; Ramachandran et al.'s swish): 1.13's bfloat16 kernels
// round every intermediate to bfloat16 and run 3.5× (forward) and 5.6× (backward) slower than its
// float32 ones on an AMD Zen 4, which takes back what bfloat16 convolutions gain in EfficientNet's
// training step. Here each element is widened once, computed in float32 with ATen's formulas
// (activation.cpp: x / (1 + exp(−x)); grad · s · (1 + x · (1 − s))) and rounded to bfloat16 to
// nearest even as c10::BFloat16 rounds: PyTorch 2.x's CPU kernels compute the same way. exp is
// Cephes' expf polynomial (Moshier), within about 2 float32 ulps.
//
// ReLU6 (min(max(x, 0), 6), MobileNetV2's activation; PyTorch's hardtanh(x, 0, 6)): 1.13 has no
// bfloat16 hardtanh_backward on the CPU, and clamp's gradient takes four bfloat16 passes (two
// comparisons, a logical and, a where). Here forward and gradient are exact (every value is the
// input's or the gradient's, or 0 or 6), with hardtanh's gradient as its vectorized kernel
// computes it: the incoming one where 0 < x < 6, 0 elsewhere (NaN included).
//
// Registered as the operators visiontune::silu and visiontune::relu6, their gradients through
// autograd; other dtypes, devices and layouts go to aten::silu and aten::clamp unchanged.
// no-trapping-math lets GCC vectorize the loops below (floor, selects); it changes no value.
#pragma GCC optimize("O3", "no-trapping-math")
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>
#include <cstdint>

// Each loop is compiled for AVX-512, for AVX2 with FMA and for the baseline; the loader picks the
// best the CPU runs (GCC's function multiversioning).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VT_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VT_CLONES
#endif

namespace vt {
namespace {

inline float widen(uint16_t v) {
  return __builtin_bit_cast(float, static_cast<uint32_t>(v) << 16);
}

inline uint16_t narrow(float f) {
  uint32_t u = __builtin_bit_cast(uint32_t, f);
  uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return f != f ? static_cast<uint16_t>(0x7fc0) : static_cast<uint16_t>(rounded);
}

// e^x in float32 (Cephes expf): 0 below −87.3 (where e^x is below float32's smallest normal, and
// 1 + e^x is 1), +inf above ln(FLT_MAX) ≈ 88.7228. 2^n is applied as 2^(n−1)·2, so that n = 128
// near the top still has an exponent field.
inline float expApprox(float x) {
  constexpr float kLow = -87.3f, kHigh = 88.72283f;
  float a = x < kLow ? kLow : (x > kHigh ? kHigh : x);
  float fx = __builtin_floorf(a * 1.44269504088896341f + 0.5f);
  float r = a - fx * 0.693359375f + fx * 2.12194440e-4f;
  float z = r * r;
  float y = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r
      + 5.0000001201e-1f;
  y = y * z + r + 1.0f;
  y *= __builtin_bit_cast(float, (static_cast<int32_t>(fx) + 126) << 23);
  y *= 2.0f;
  y = x < kLow ? 0.0f : y;
  return x > kHigh ? __builtin_inff() : y;
}

VT_CLONES
void siluForward(const uint16_t* __restrict x, uint16_t* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float v = widen(x[i]);
    y[i] = narrow(v / (1.0f + expApprox(-v)));
  }
}

VT_CLONES
void siluBackward(const uint16_t* __restrict g, const uint16_t* __restrict x, uint16_t* __restrict gx, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float v = widen(x[i]);
    float s = 1.0f / (1.0f + expApprox(-v));
    gx[i] = narrow(widen(g[i]) * s * (1.0f + v * (1.0f - s)));
  }
}

VT_CLONES
void relu6Forward(const uint16_t* __restrict x, uint16_t* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float v = widen(x[i]);
    y[i] = narrow(v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v));
  }
}

VT_CLONES
void relu6Backward(const uint16_t* __restrict g, const uint16_t* __restrict x, uint16_t* __restrict gx, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float v = widen(x[i]);
    gx[i] = (v > 0.0f && v < 6.0f) ? g[i] : static_cast<uint16_t>(0);
  }
}

// Elements per task of at::parallel_for (ATen's GRAIN_SIZE).
constexpr int64_t kGrain = 32768;

// The memory format in which `t` is dense and ordered, if one is (contiguous or channels_last).
c10::optional<at::MemoryFormat> denseFormat(const at::Tensor& t) {
  if (t.is_contiguous()) return at::MemoryFormat::Contiguous;
  if (t.dim() == 4 && t.is_contiguous(at::MemoryFormat::ChannelsLast)) return at::MemoryFormat::ChannelsLast;
  return c10::nullopt;
}

bool handled(const at::Tensor& x) {
  return x.device().is_cpu() && x.scalar_type() == at::kBFloat16 && denseFormat(x).has_value();
}

using UnaryLoop = void (*)(const uint16_t*, uint16_t*, int64_t);
using GradLoop = void (*)(const uint16_t*, const uint16_t*, uint16_t*, int64_t);

at::Tensor forwardKernel(const at::Tensor& x, UnaryLoop loop) {
  at::Tensor y = at::empty_like(x, x.options(), *denseFormat(x));
  auto* in = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
  auto* out = reinterpret_cast<uint16_t*>(y.data_ptr<at::BFloat16>());
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) { loop(in + begin, out + begin, end - begin); });
  return y;
}

at::Tensor backwardKernel(const at::Tensor& grad, const at::Tensor& x, GradLoop loop) {
  at::MemoryFormat format = *denseFormat(x);
  at::Tensor g = grad.to(at::kBFloat16).contiguous(format);
  at::Tensor gx = at::empty_like(x, x.options(), format);
  auto* gp = reinterpret_cast<const uint16_t*>(g.data_ptr<at::BFloat16>());
  auto* xp = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
  auto* out = reinterpret_cast<uint16_t*>(gx.data_ptr<at::BFloat16>());
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) { loop(gp + begin, xp + begin, out + begin, end - begin); });
  return gx;
}

// One activation as an autograd function: Forward and Backward are its loops; the input is saved.
template <UnaryLoop Forward, GradLoop Backward>
struct Bf16Activation : public torch::autograd::Function<Bf16Activation<Forward, Backward>> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x) {
    ctx->save_for_backward({x});
    return forwardKernel(x, Forward);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list grads) {
    at::Tensor x = ctx->get_saved_variables()[0];
    return {backwardKernel(grads[0], x, Backward)};
  }
};

at::Tensor silu(const at::Tensor& x) {
  if (!handled(x)) return at::silu(x);
  return Bf16Activation<siluForward, siluBackward>::apply(x);
}

at::Tensor relu6(const at::Tensor& x) {
  if (!handled(x)) return at::clamp(x, 0, 6);
  return Bf16Activation<relu6Forward, relu6Backward>::apply(x);
}

}  // namespace
}  // namespace vt

TORCH_LIBRARY(visiontune, m) {
  m.def("silu(Tensor self) -> Tensor", &vt::silu);
  m.def("relu6(Tensor self) -> Tensor", &vt::relu6);
}
