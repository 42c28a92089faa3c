// visiontune's native addon: context-aware (NAPI_MODULE_INIT), so it loads in worker threads.
#include "tensor.h"
#include <cstdlib>
#include <cstring>
#include <mutex>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace vt {
void registerTensor(Napi::Env env, Napi::Object exports);
void registerOps(Napi::Env env, Napi::Object exports);
void registerRuntime(Napi::Env env, Napi::Object exports);
void registerDistributed(Napi::Env env, Napi::Object exports);
void registerCpuCache(Napi::Env env, Napi::Object exports);
void installLargeBlockCache();
void adviseHeapHugePages();
}  // namespace vt

// glibc's defaults return a freed activation buffer above its dynamic mmap threshold to the
// kernel and fault its pages in again at the next step: about a million page faults and a tenth
// of the wall time per training epoch of a small CNN. Keeping freed memory in the heap for reuse
// (as jemalloc or tcmalloc, which PyTorch recommends on CPU, also do) removes that; the process
// then holds its peak memory. glibc maps blocks above 32 MiB whatever its settings, so those go to
// the large-block cache (large_blocks.cc). VISIONTUNE_MALLOC=default leaves both glibc and
// libtorch's allocator as they are; the user's own MALLOC_*_ or GLIBC_TUNABLES settings leave
// glibc's settings alone.
static void tuneAllocator() {
  const char* choice = std::getenv("VISIONTUNE_MALLOC");
  if (choice != nullptr && std::strcmp(choice, "default") == 0) return;
  vt::installLargeBlockCache();
#if defined(__GLIBC__)
  if (std::getenv("GLIBC_TUNABLES") || std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_")) return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest: blocks up to 32 MiB come from the heap
  mallopt(M_TRIM_THRESHOLD, 1 << 30);   // give memory back only when 1 GiB lies free at the top
  mallopt(M_TOP_PAD, 64 << 20);         // grow it 64 MiB at a time (see adviseGrownHeap)
  vt::adviseHeapHugePages();            // on 2 MiB pages, as glibc.malloc.hugetlb=1 would
#endif
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  static std::once_flag tuned;
  std::call_once(tuned, tuneAllocator);
  vt::registerTensor(env, exports);
  vt::registerOps(env, exports);
  vt::registerRuntime(env, exports);
  vt::registerDistributed(env, exports);
  vt::registerCpuCache(env, exports);
  return exports;
}

NODE_API_MODULE(visiontune, Init)
