// Tensor handles: lifecycle, memory accounting, data in and out, metadata and autograd.
#include "tensor.h"
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/autograd/function.h>
#include <cstring>

namespace vt {

std::atomic<int64_t> liveTensors{0};
std::atomic<int64_t> liveBytes{0};
std::atomic<int64_t> collectedTensors{0};
// The sum of every live box's gcBytes: what V8 has been told.
static std::atomic<int64_t> unscopedBytes{0};

void throwJs(Napi::Env env, const char* kind, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("kind", Napi::String::New(env, kind));
  throw err;
}

bool release(Napi::BasicEnv env, TensorBox* box) {
  if (!box->tensor.defined()) return false;
  box->tensor.reset();
  liveTensors--;
  liveBytes -= box->accountedBytes;
  if (box->gcBytes) {
    unscopedBytes -= box->gcBytes;
    Napi::MemoryManagement::AdjustExternalMemory(env, -box->gcBytes);
  }
  box->accountedBytes = 0;
  box->gcBytes = 0;
  return true;
}

Napi::Value wrap(Napi::Env env, at::Tensor t) {
  if (!t.defined()) return env.Null();
  auto* box = new TensorBox{std::move(t), 0};
  box->accountedBytes = static_cast<int64_t>(box->tensor.nbytes());
  liveTensors++;
  liveBytes += box->accountedBytes;
  return Napi::External<TensorBox>::New(env, box, [](Napi::BasicEnv env, TensorBox* b) {
    if (release(env, b)) collectedTensors++;
    delete b;
  });
}

static TensorBox* boxOf(const Napi::Value& v) {
  if (!v.IsExternal()) throwJs(v.Env(), "type", "expected a tensor handle");
  return v.As<Napi::External<TensorBox>>().Data();
}

const at::Tensor& unwrap(const Napi::Value& v) {
  TensorBox* box = boxOf(v);
  if (!box->tensor.defined()) throwJs(v.Env(), "disposed", "tensor was disposed");
  return box->tensor;
}

static Napi::Value shapeArray(Napi::Env env, at::IntArrayRef dims) {
  Napi::Array out = Napi::Array::New(env, dims.size());
  for (size_t i = 0; i < dims.size(); i++) out.Set(i, Napi::Number::New(env, static_cast<double>(dims[i])));
  return out;
}

static std::vector<int64_t> toDims(const Napi::Value& v) {
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> dims(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) dims[i] = a.Get(i).As<Napi::Number>().Int64Value();
  return dims;
}

// fromBuffer(typedArray, shape, dtypeCode) -> handle: copies the bytes into a new CPU tensor.
static Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, {
    Napi::TypedArray src = info[0].As<Napi::TypedArray>();
    auto dtype = static_cast<at::ScalarType>(info[2].As<Napi::Number>().Int32Value());
    at::Tensor t = at::empty(toDims(info[1]), at::TensorOptions().dtype(dtype));
    if (t.nbytes() != src.ByteLength()) {
      throwJs(env, "value", "buffer holds " + std::to_string(src.ByteLength()) + " bytes, shape needs " +
                                std::to_string(t.nbytes()));
    }
    const uint8_t* bytes = static_cast<const uint8_t*>(src.ArrayBuffer().Data()) + src.ByteOffset();
    if (t.nbytes() > 0) std::memcpy(t.data_ptr(), bytes, t.nbytes());
    return wrap(env, std::move(t));
  })
}

// toBuffer(handle) -> ArrayBuffer: a copy of the elements, contiguous, on the CPU.
static Napi::Value ToBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, {
    at::Tensor t = unwrap(info[0]).detach().to(at::kCPU).contiguous();
    Napi::ArrayBuffer out = Napi::ArrayBuffer::New(env, t.nbytes());
    if (t.nbytes() > 0) std::memcpy(out.Data(), t.data_ptr(), t.nbytes());
    return out;
  })
}

static Napi::Value Item(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, {
    c10::Scalar s = unwrap(info[0]).item();
    if (s.isBoolean()) return Napi::Boolean::New(env, s.toBool());
    if (s.isIntegral(false)) return Napi::Number::New(env, static_cast<double>(s.toLong()));
    return Napi::Number::New(env, s.toDouble());
  })
}

static Napi::Value Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::Boolean::New(env, release(env, boxOf(info[0])));
}

// reportToGc(handle): tells V8 the bytes of a tensor that has left every tidy() scope, so that
// handles nobody disposes count towards V8's next collection. A tensor inside a scope is not
// reported: the scope disposes it, and reporting the bytes each step allocates and frees would
// make V8 run full collections of a heap with nothing to collect (two per batch of
// efficientnet_v2_s, whose concurrent marking takes a core from the kernels). Idempotent.
static Napi::Value ReportToGc(const Napi::CallbackInfo& info) {
  TensorBox* box = boxOf(info[0]);
  if (box->tensor.defined() && box->gcBytes == 0 && box->accountedBytes > 0) {
    box->gcBytes = box->accountedBytes;
    unscopedBytes += box->gcBytes;
    Napi::MemoryManagement::AdjustExternalMemory(info.Env(), box->gcBytes);
  }
  return info.Env().Undefined();
}

static Napi::Value IsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !boxOf(info[0])->tensor.defined());
}

// meta(handle) -> [shape, dtypeCode, deviceString, requiresGrad]
static Napi::Value Meta(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, {
    const at::Tensor& t = unwrap(info[0]);
    Napi::Array out = Napi::Array::New(env, 4);
    out.Set(0u, shapeArray(env, t.sizes()));
    out.Set(1u, Napi::Number::New(env, static_cast<int>(t.scalar_type())));
    out.Set(2u, Napi::String::New(env, t.device().str()));
    out.Set(3u, Napi::Boolean::New(env, t.requires_grad()));
    return out;
  })
}

static Napi::Value Strides(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, { return shapeArray(env, unwrap(info[0]).strides()); })
}

// isContiguous(handle, memoryFormatCode)
static Napi::Value IsContiguous(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, {
    auto format = static_cast<at::MemoryFormat>(info[1].As<Napi::Number>().Int32Value());
    return Napi::Boolean::New(env, unwrap(info[0]).is_contiguous(format));
  })
}

static Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, {
    at::Tensor t = unwrap(info[0]);
    t.set_requires_grad(info[1].As<Napi::Boolean>().Value());
    return env.Undefined();
  })
}

static Napi::Value Grad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, { return wrap(env, unwrap(info[0]).grad()); })
}

// setGrad(handle, gradHandle | null): null clears the gradient, as `p.grad = None` does.
static Napi::Value SetGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, {
    at::Tensor t = unwrap(info[0]);
    t.mutable_grad() = info[1].IsNull() || info[1].IsUndefined() ? at::Tensor() : unwrap(info[1]);
    return env.Undefined();
  })
}

// backward(handle, gradHandle | null, retainGraph, createGraph)
static Napi::Value Backward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, {
    at::Tensor t = unwrap(info[0]);
    torch::autograd::variable_list grads;
    if (!info[1].IsNull() && !info[1].IsUndefined()) grads.push_back(unwrap(info[1]));
    bool retain = info[2].ToBoolean().Value();
    bool create = info[3].ToBoolean().Value();
    torch::autograd::backward({t}, grads, retain, create);
    return env.Undefined();
  })
}

// autogradInfo(handle) -> [isLeaf, gradFnName | null]
static Napi::Value AutogradInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, {
    const at::Tensor& t = unwrap(info[0]);
    Napi::Array out = Napi::Array::New(env, 2);
    out.Set(0u, Napi::Boolean::New(env, t.is_leaf()));
    auto fn = t.grad_fn();
    out.Set(1u, fn ? Napi::Value(Napi::String::New(env, fn->name())) : env.Null());
    return out;
  })
}

// sameStorage(a, b): whether two handles view the same memory (used by in-place checks and tests).
static Napi::Value SameStorage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, {
    return Napi::Boolean::New(env, unwrap(info[0]).is_alias_of(unwrap(info[1])));
  })
}

static Napi::Value Memory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("tensors", Napi::Number::New(env, static_cast<double>(liveTensors.load())));
  out.Set("bytes", Napi::Number::New(env, static_cast<double>(liveBytes.load())));
  out.Set("collected", Napi::Number::New(env, static_cast<double>(collectedTensors.load())));
  out.Set("unscopedBytes", Napi::Number::New(env, static_cast<double>(unscopedBytes.load())));
  return out;
}

void registerTensor(Napi::Env env, Napi::Object exports) {
  exports.Set("fromBuffer", Napi::Function::New(env, FromBuffer));
  exports.Set("toBuffer", Napi::Function::New(env, ToBuffer));
  exports.Set("item", Napi::Function::New(env, Item));
  exports.Set("dispose", Napi::Function::New(env, Dispose));
  exports.Set("isDisposed", Napi::Function::New(env, IsDisposed));
  exports.Set("reportToGc", Napi::Function::New(env, ReportToGc));
  exports.Set("meta", Napi::Function::New(env, Meta));
  exports.Set("strides", Napi::Function::New(env, Strides));
  exports.Set("isContiguous", Napi::Function::New(env, IsContiguous));
  exports.Set("setRequiresGrad", Napi::Function::New(env, SetRequiresGrad));
  exports.Set("grad", Napi::Function::New(env, Grad));
  exports.Set("setGrad", Napi::Function::New(env, SetGrad));
  exports.Set("backward", Napi::Function::New(env, Backward));
  exports.Set("autogradInfo", Napi::Function::New(env, AutogradInfo));
  exports.Set("sameStorage", Napi::Function::New(env, SameStorage));
  exports.Set("memory", Napi::Function::New(env, Memory));
}

}  // namespace vt
