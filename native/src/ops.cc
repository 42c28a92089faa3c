// One generic entry point for every ATen operator: resolve it once by name through the c10
// dispatcher, then call it boxed with JavaScript arguments converted by the operator's schema.
// Autograd and autocast see these calls exactly as they see Python's.
#include "tensor.h"
#include <ATen/core/dispatch/Dispatcher.h>
#include <deque>
#include <mutex>
#include <sstream>

namespace vt {

struct OpEntry {
  c10::OperatorHandle handle;
  std::string name;
};

// Operators are process-wide; handles stay valid for the life of the process.
static std::deque<OpEntry> ops;
static std::mutex opsMutex;

static const OpEntry& opAt(Napi::Env env, const Napi::Value& id) {
  uint32_t i = id.As<Napi::Number>().Uint32Value();
  std::lock_guard<std::mutex> lock(opsMutex);
  if (i >= ops.size()) throwJs(env, "value", "unknown operator id");
  return ops[i];
}

[[noreturn]] static void badArg(Napi::Env env, const c10::Argument& arg, const char* expected) {
  throwJs(env, "type", "argument '" + arg.name() + "' must be " + expected);
}

static int64_t toInt(Napi::Env env, const Napi::Value& v, const c10::Argument& arg) {
  if (!v.IsNumber()) badArg(env, arg, "an integer");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int64_t>(d))) badArg(env, arg, "an integer");
  return static_cast<int64_t>(d);
}

static c10::Scalar toScalar(Napi::Env env, const Napi::Value& v, const c10::Argument& arg) {
  if (v.IsBoolean()) return c10::Scalar(v.As<Napi::Boolean>().Value());
  if (!v.IsNumber()) badArg(env, arg, "a number");
  double d = v.As<Napi::Number>().DoubleValue();
  // An integral JavaScript number is an integer scalar, as a Python int literal is: it keeps
  // integer tensors integral and does not promote floating ones.
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9007199254740992.0) {
    return c10::Scalar(static_cast<int64_t>(d));
  }
  return c10::Scalar(d);
}

static c10::IValue toIValue(Napi::Env env, const Napi::Value& v, const c10::TypePtr& type,
                            const c10::Argument& arg);

static c10::IValue toList(Napi::Env env, const Napi::Value& v, const c10::TypePtr& elem,
                          const c10::Argument& arg) {
  auto kind = elem->kind();
  bool intLike = kind == c10::TypeKind::IntType || kind == c10::TypeKind::SymIntType;
  // A single number stands for a fixed-size list (`int[2] stride`), as in Python.
  if (v.IsNumber() && intLike && arg.N()) {
    return c10::IValue(c10::List<int64_t>(std::vector<int64_t>(*arg.N(), toInt(env, v, arg))));
  }
  if (!v.IsArray()) badArg(env, arg, "an array");
  Napi::Array a = v.As<Napi::Array>();
  uint32_t n = a.Length();
  if (intLike) {
    c10::List<int64_t> out;
    out.reserve(n);
    for (uint32_t i = 0; i < n; i++) out.push_back(toInt(env, a.Get(i), arg));
    return out;
  }
  if (kind == c10::TypeKind::FloatType) {
    c10::List<double> out;
    for (uint32_t i = 0; i < n; i++) {
      Napi::Value x = a.Get(i);
      if (!x.IsNumber()) badArg(env, arg, "an array of numbers");
      out.push_back(x.As<Napi::Number>().DoubleValue());
    }
    return out;
  }
  if (kind == c10::TypeKind::BoolType) {
    c10::List<bool> out;
    for (uint32_t i = 0; i < n; i++) out.push_back(a.Get(i).ToBoolean().Value());
    return out;
  }
  if (kind == c10::TypeKind::TensorType) {
    c10::List<at::Tensor> out;
    out.reserve(n);
    for (uint32_t i = 0; i < n; i++) out.push_back(unwrap(a.Get(i)));
    return out;
  }
  if (kind == c10::TypeKind::OptionalType &&
      elem->castRaw<c10::OptionalType>()->getElementType()->kind() == c10::TypeKind::TensorType) {
    c10::List<c10::optional<at::Tensor>> out;
    for (uint32_t i = 0; i < n; i++) {
      Napi::Value x = a.Get(i);
      out.push_back(x.IsNull() || x.IsUndefined() ? c10::optional<at::Tensor>() : unwrap(x));
    }
    return out;
  }
  badArg(env, arg, ("a list of a supported type, not " + elem->str()).c_str());
}

static c10::IValue toIValue(Napi::Env env, const Napi::Value& v, const c10::TypePtr& type,
                            const c10::Argument& arg) {
  switch (type->kind()) {
    case c10::TypeKind::TensorType:
      return unwrap(v);
    case c10::TypeKind::OptionalType:
      if (v.IsNull() || v.IsUndefined()) return c10::IValue();
      return toIValue(env, v, type->castRaw<c10::OptionalType>()->getElementType(), arg);
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType:
    case c10::TypeKind::ScalarTypeType:
    case c10::TypeKind::LayoutType:
    case c10::TypeKind::MemoryFormatType:
      return toInt(env, v, arg);
    case c10::TypeKind::FloatType:
      if (!v.IsNumber()) badArg(env, arg, "a number");
      return v.As<Napi::Number>().DoubleValue();
    case c10::TypeKind::BoolType:
      if (!v.IsBoolean()) badArg(env, arg, "a boolean");
      return v.As<Napi::Boolean>().Value();
    case c10::TypeKind::NumberType:
      return toScalar(env, v, arg);
    case c10::TypeKind::StringType:
      if (!v.IsString()) badArg(env, arg, "a string");
      return v.As<Napi::String>().Utf8Value();
    case c10::TypeKind::DeviceObjType:
      if (!v.IsString()) badArg(env, arg, "a device string such as 'cpu' or 'cuda:0'");
      return c10::Device(v.As<Napi::String>().Utf8Value());
    case c10::TypeKind::ListType:
      return toList(env, v, type->castRaw<c10::ListType>()->getElementType(), arg);
    case c10::TypeKind::GeneratorType:
      if (v.IsNull() || v.IsUndefined()) return c10::IValue();
      badArg(env, arg, "null (explicit generators are not supported)");
    default:
      badArg(env, arg, ("of a supported type, not " + type->str()).c_str());
  }
}

static Napi::Value fromIValue(Napi::Env env, const c10::IValue& v) {
  if (v.isTensor()) return wrap(env, v.toTensor());
  if (v.isTensorList()) {
    auto list = v.toTensorList();
    Napi::Array out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) out.Set(i, wrap(env, list.get(i)));
    return out;
  }
  if (v.isTuple()) {
    const auto& elems = v.toTupleRef().elements();
    Napi::Array out = Napi::Array::New(env, elems.size());
    for (size_t i = 0; i < elems.size(); i++) out.Set(i, fromIValue(env, elems[i]));
    return out;
  }
  if (v.isNone()) return env.Null();
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isIntList()) {
    auto list = v.toIntVector();
    Napi::Array out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) out.Set(i, Napi::Number::New(env, static_cast<double>(list[i])));
    return out;
  }
  if (v.isString()) return Napi::String::New(env, v.toStringRef());
  if (v.isScalar()) return Napi::Number::New(env, v.toScalar().toDouble());
  throwJs(env, "type", "operator returned an unsupported value: " + v.tagKind());
}

// resolveOp(name, overload) -> id. Throws if libtorch has no such operator.
static Napi::Value ResolveOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, {
    std::string name = info[0].As<Napi::String>().Utf8Value();
    std::string overload = info[1].As<Napi::String>().Utf8Value();
    auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
    if (!handle) throwJs(env, "value", "libtorch has no operator " + name + (overload.empty() ? "" : "." + overload));
    std::lock_guard<std::mutex> lock(opsMutex);
    ops.push_back({*handle, name});
    return Napi::Number::New(env, static_cast<double>(ops.size() - 1));
  })
}

static Napi::Value Schema(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::ostringstream s;
  s << opAt(env, info[0]).handle.schema();
  return Napi::String::New(env, s.str());
}

// Builds the stack: positional JavaScript arguments in schema order; a missing or undefined one
// takes the schema's default.
static torch::jit::Stack buildStack(const Napi::CallbackInfo& info, const c10::FunctionSchema& schema) {
  Napi::Env env = info.Env();
  const auto& args = schema.arguments();
  size_t given = info.Length() - 1;
  if (given > args.size()) {
    throwJs(env, "type", "takes " + std::to_string(args.size()) + " arguments, got " + std::to_string(given));
  }
  torch::jit::Stack stack;
  stack.reserve(args.size());
  for (size_t i = 0; i < args.size(); i++) {
    const c10::Argument& arg = args[i];
    Napi::Value v = i < given ? info[i + 1] : env.Undefined();
    if (v.IsUndefined() && arg.default_value()) {
      stack.push_back(*arg.default_value());
    } else if (v.IsUndefined() && arg.type()->kind() != c10::TypeKind::OptionalType) {
      throwJs(env, "type", "argument '" + arg.name() + "' is required");
    } else {
      stack.push_back(toIValue(env, v, arg.type(), arg));
    }
  }
  return stack;
}

// callOp(id, ...args) -> the operator's result: a handle, a value, or an array for several.
static Napi::Value CallOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, {
    const OpEntry& op = opAt(env, info[0]);
    torch::jit::Stack stack = buildStack(info, op.handle.schema());
    op.handle.callBoxed(stack);
    if (stack.empty()) return env.Undefined();
    if (stack.size() == 1) return fromIValue(env, stack[0]);
    Napi::Array out = Napi::Array::New(env, stack.size());
    for (size_t i = 0; i < stack.size(); i++) out.Set(i, fromIValue(env, stack[i]));
    return out;
  })
}

// callOpInPlace(id, ...args): for operators that write into an argument; the result is not
// wrapped, which spares a handle per call in optimizer loops.
static Napi::Value CallOpInPlace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VT_GUARD(env, {
    const OpEntry& op = opAt(env, info[0]);
    torch::jit::Stack stack = buildStack(info, op.handle.schema());
    op.handle.callBoxed(stack);
    return env.Undefined();
  })
}

void registerOps(Napi::Env env, Napi::Object exports) {
  exports.Set("resolveOp", Napi::Function::New(env, ResolveOp));
  exports.Set("schema", Napi::Function::New(env, Schema));
  exports.Set("callOp", Napi::Function::New(env, CallOp));
  exports.Set("callOpInPlace", Napi::Function::New(env, CallOpInPlace));
}

}  // namespace vt
