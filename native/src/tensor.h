// The native layer's shared pieces: the box a JavaScript tensor handle owns, and the
// translation of C++ exceptions into JavaScript errors.
#pragma once
#include <napi.h>
#include <ATen/ATen.h>
#include <atomic>

namespace vt {

// One JavaScript handle owns one at::Tensor. dispose() releases it at once; the GC finalizer
// is the backstop for handles nobody disposed; it touches no JavaScript, so it runs inside the
// garbage collection itself (a Node-API basic finalizer, see binding.gyp).
struct TensorBox {
  at::Tensor tensor;
  int64_t accountedBytes = 0;
  // Bytes reported to V8 as external memory: only for a handle outside every tidy() scope, which
  // nothing but dispose() or the garbage collector will free (see reportToGc in tensor.cc).
  int64_t gcBytes = 0;
};

extern std::atomic<int64_t> liveTensors;
extern std::atomic<int64_t> liveBytes;
// Handles the garbage collector released because nobody disposed them.
extern std::atomic<int64_t> collectedTensors;

// Returns a new JavaScript handle owning `t` (null for an undefined tensor).
Napi::Value wrap(Napi::Env env, at::Tensor t);
// Returns the tensor behind a handle; throws a TypeError for a non-handle or a disposed one.
const at::Tensor& unwrap(const Napi::Value& v);
// Releases a handle's tensor now; true if it was live.
bool release(Napi::BasicEnv env, TensorBox* box);

// Throws a JavaScript error carrying libtorch's message and a `kind` the TypeScript side maps to
// an error class (index, type, value, oom, error).
[[noreturn]] void throwJs(Napi::Env env, const char* kind, const std::string& message);

}  // namespace vt

// Runs `body`, turning any C++ exception into a JavaScript error: no input may abort the process.
#define VT_GUARD(env, body)                                                        \
  try {                                                                            \
    body                                                                           \
  } catch (const Napi::Error&) {                                                   \
    throw;                                                                         \
  } catch (const c10::IndexError& e) {                                             \
    vt::throwJs(env, "index", e.what_without_backtrace());                         \
  } catch (const c10::TypeError& e) {                                              \
    vt::throwJs(env, "type", e.what_without_backtrace());                          \
  } catch (const c10::ValueError& e) {                                             \
    vt::throwJs(env, "value", e.what_without_backtrace());                         \
  } catch (const c10::OutOfMemoryError& e) {                                       \
    vt::throwJs(env, "oom", e.what_without_backtrace());                           \
  } catch (const c10::Error& e) {                                                  \
    vt::throwJs(env, "error", e.what_without_backtrace());                         \
  } catch (const std::exception& e) {                                              \
    vt::throwJs(env, "error", e.what());                                           \
  } catch (...) {                                                                  \
    vt::throwJs(env, "error", "unknown C++ exception");                            \
  }
