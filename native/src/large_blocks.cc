// A cache for the CPU's large blocks, installed in front of libtorch's CPU allocator.
//
// glibc serves a block above its mmap threshold (32 MiB at most) with a fresh mmap and returns it to
// the kernel when freed, so a training step that makes and frees the same 77 MB activation every
// batch faults its 19,000 pages in (and has the kernel zero them) every batch: 40 % of the CPU's
// time went to the kernel in mobilenet_v2's fp32 steps on a Zen 5 EPYC. Here blocks of `minBytes` and
// up are kept when freed and handed out again to a request of the same size (up to an eighth larger),
// as PyTorch's CUDA caching allocator does on the GPU. Fresh blocks are aligned to 2 MiB and advised
// for transparent huge pages. A freed block goes back to the kernel when nobody has asked for its
// size for a few steps' worth of requests, or when the idle blocks pass `capBytes` (oldest first).
// Smaller requests go to the allocator that was there before (c10's posix_memalign), into glibc's
// heap, which the addon keeps from shrinking (addon.cc). That heap grows to gigabytes in a training
// step (2.5 GB for efficientnet_v2_s at batch 16) and its pages are 4 KiB, so the step's activations
// miss the TLB far more often than on huge pages; as glibc does under glibc.malloc.hugetlb=1, each
// stretch the heap grows by is advised for transparent huge pages (adviseHeapHugePages()).
#include "tensor.h"
#include <c10/core/CPUAllocator.h>
#include <torch/version.h>
#include <sys/mman.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <list>
#include <mutex>
#include <unordered_map>

namespace vt {

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define VT_ALLOCATE_CONST  // libtorch 2.3 made Allocator::allocate non-const and added copy_data
#else
#define VT_ALLOCATE_CONST const
#endif

namespace {

constexpr size_t kHugePage = size_t(2) << 20;

struct Block {
  void* ptr;
  size_t bytes;       // the mapping's length, a multiple of 2 MiB
  uint64_t released;  // the cache's clock when it was freed
};

struct Cache {
  std::mutex mutex;
  std::unordered_map<void*, size_t> live;  // blocks handed out, by address
  std::list<Block> idle;                   // freed blocks, oldest first
  size_t idleBytes = 0;
  size_t minBytes = 0;
  size_t capBytes = 0;
  c10::Allocator* fallback = nullptr;
  uint64_t hits = 0, misses = 0;
  uint64_t clock = 0;    // large requests so far
  size_t peakLive = 0;   // the most blocks handed out at once
  uintptr_t pageBytes = 4096;
  std::atomic<uintptr_t> heapAdvised{0};  // the heap is advised for huge pages up to here; 0: not at all
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: tensors may be freed during static destruction
  return *c;
}

size_t roundUp(size_t n) { return (n + kHugePage - 1) / kHugePage * kHugePage; }

// A fresh mapping of `bytes` (a multiple of 2 MiB) aligned to 2 MiB, or nullptr.
void* mapAligned(size_t bytes) {
  void* raw = mmap(nullptr, bytes + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  auto start = reinterpret_cast<uintptr_t>(raw);
  uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
  if (aligned > start) munmap(raw, aligned - start);
  uintptr_t end = start + bytes + kHugePage;
  if (end > aligned + bytes) munmap(reinterpret_cast<void*>(aligned + bytes), end - (aligned + bytes));
#ifdef MADV_HUGEPAGE
  madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);
#endif
  return reinterpret_cast<void*>(aligned);
}

void unmapOldest(Cache& c) {
  Block b = c.idle.front();
  c.idle.pop_front();
  munmap(b.ptr, b.bytes);
  c.idleBytes -= b.bytes;
}

// Returns idle blocks to the kernel, oldest first, until at most `keep` bytes lie idle; the bytes
// returned. Caller holds the lock.
size_t trimTo(Cache& c, size_t keep) {
  size_t before = c.idleBytes;
  while (c.idleBytes > keep && !c.idle.empty()) unmapOldest(c);
  return before - c.idleBytes;
}

// Returns the idle blocks nobody asked for during the last four steps' worth of large requests
// (four times the most blocks ever out at once): a size the model no longer makes, as when
// progressive resizing moves on. Caller holds the lock.
void dropStale(Cache& c) {
  uint64_t horizon = 4 * static_cast<uint64_t>(c.peakLive) + 16;
  while (!c.idle.empty() && c.clock - c.idle.front().released > horizon) unmapOldest(c);
}

// Advises the stretch the heap has grown by since the last call for transparent huge pages, as
// glibc's sysmalloc does after each sbrk under glibc.malloc.hugetlb=1, but after the allocation that
// grew it (sbrk(0) only reads the break glibc keeps). glibc has written its top chunk's header into
// the stretch by then, so the kernel keeps the stretch a mapping of its own: the addon's 64 MiB top
// pad keeps those to about 40 for a 2.5 GB heap, where growing by each request made 400.
// Pages faulted in before the advice (that header's, a block that did not come through this
// allocator) stay small until the kernel's khugepaged collapses them. Threads other than the main
// one may allocate from arenas of their own, which stay on small pages.
void adviseGrownHeap(Cache& c) {
#ifdef MADV_HUGEPAGE
  auto brk = reinterpret_cast<uintptr_t>(sbrk(0));
  if (brk == uintptr_t(-1) || brk <= c.heapAdvised.load(std::memory_order_relaxed)) return;
  std::lock_guard<std::mutex> lock(c.mutex);
  uintptr_t from = c.heapAdvised.load(std::memory_order_relaxed);
  if (brk <= from) return;
  from = from / c.pageBytes * c.pageBytes;  // madvise takes whole pages
  madvise(reinterpret_cast<void*>(from), brk - from, MADV_HUGEPAGE);
  c.heapAdvised.store(brk, std::memory_order_relaxed);
#endif
}

void release(void* ptr) {
  if (ptr == nullptr) return;
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.live.find(ptr);
    if (it != c.live.end()) {
      c.idle.push_back({ptr, it->second, c.clock});
      c.idleBytes += it->second;
      c.live.erase(it);
      trimTo(c, c.capBytes);
      return;
    }
  }
  c.fallback->raw_deleter()(ptr);  // a small block, from the allocator before ours
}

class LargeBlockAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) VT_ALLOCATE_CONST override {
    Cache& c = cache();
    if (n < c.minBytes) {
      c10::DataPtr small = c.fallback->allocate(n);
      if (c.heapAdvised.load(std::memory_order_relaxed) != 0) adviseGrownHeap(c);
      return small;
    }
    size_t want = roundUp(n), slack = want + want / 8;
    void* ptr = nullptr;
    size_t bytes = 0;
    {
      std::lock_guard<std::mutex> lock(c.mutex);
      auto best = c.idle.end();
      for (auto it = c.idle.begin(); it != c.idle.end(); ++it)
        if (it->bytes >= want && it->bytes <= slack && (best == c.idle.end() || it->bytes < best->bytes)) best = it;
      if (best != c.idle.end()) {
        ptr = best->ptr;
        bytes = best->bytes;
        c.idleBytes -= bytes;
        c.idle.erase(best);
        c.hits++;
      } else {
        c.misses++;
      }
      c.clock++;
      dropStale(c);
    }
    if (ptr == nullptr) {
      bytes = want;
      ptr = mapAligned(bytes);
      if (ptr == nullptr) {
        std::lock_guard<std::mutex> lock(c.mutex);
        trimTo(c, 0);  // the idle blocks may be what stands in the way
      }
      if (ptr == nullptr) ptr = mapAligned(bytes);
      TORCH_CHECK(ptr != nullptr, "DefaultCPUAllocator: can't allocate memory: you tried to allocate ", n, " bytes.");
    }
    {
      std::lock_guard<std::mutex> lock(c.mutex);
      c.live.emplace(ptr, bytes);
      c.peakLive = std::max(c.peakLive, c.live.size());
    }
    return {ptr, ptr, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

#ifndef VT_ALLOCATE_CONST
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
#endif
};

size_t envMegabytes(const char* name, size_t fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  // Digits only: strtoull alone would take " 8", "+8" and wrap "-8" round to 2^64 - 8.
  for (const char* p = value; *p; p++) {
    if (*p < '0' || *p > '9') return fallback;
  }
  return static_cast<size_t>(std::strtoull(value, nullptr, 10)) << 20;
}

}  // namespace

// Puts the cache in front of libtorch's CPU allocator, once per process. VISIONTUNE_CPU_CACHE_MB sets
// the idle bytes kept (default a quarter of physical memory, at most 4 GiB; 0 turns the cache off).
void installLargeBlockCache() {
  Cache& c = cache();
  long pages = sysconf(_SC_PHYS_PAGES), pageSize = sysconf(_SC_PAGESIZE);
  size_t quarter = pages > 0 && pageSize > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(pageSize) / 4 : 0;
  c.capBytes = envMegabytes("VISIONTUNE_CPU_CACHE_MB", std::min(quarter, size_t(4) << 30));
  if (c.capBytes == 0) return;
  c.minBytes = size_t(32) << 20;  // glibc's largest mmap threshold: below it the tuned heap keeps freed blocks
  c.fallback = c10::GetCPUAllocator();
  static LargeBlockAllocator allocator;
  c10::SetCPUAllocator(&allocator, /*priority=*/1);
}

// Advises glibc's heap for transparent huge pages from here on, as it grows (see adviseGrownHeap).
// For a heap tuned to keep its memory (addon.cc): one that shrinks back would fault its pages in
// again at 2 MiB a time. Needs the cache, whose allocator sees the requests.
void adviseHeapHugePages() {
  Cache& c = cache();
  if (c.capBytes == 0) return;
  long pageSize = sysconf(_SC_PAGESIZE);
  auto brk = reinterpret_cast<uintptr_t>(sbrk(0));
  if (brk == uintptr_t(-1) || pageSize <= 0) return;
  c.pageBytes = static_cast<uintptr_t>(pageSize);
  c.heapAdvised.store(brk);
}

// cpuCache(): { idleBytes, liveBytes, capBytes, hits, misses } of the large-block cache.
static Napi::Value CpuCache(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  size_t liveBytes = 0;
  for (auto& entry : c.live) liveBytes += entry.second;
  Napi::Object out = Napi::Object::New(env);
  out.Set("idleBytes", Napi::Number::New(env, static_cast<double>(c.idleBytes)));
  out.Set("liveBytes", Napi::Number::New(env, static_cast<double>(liveBytes)));
  out.Set("capBytes", Napi::Number::New(env, static_cast<double>(c.capBytes)));
  out.Set("hits", Napi::Number::New(env, static_cast<double>(c.hits)));
  out.Set("misses", Napi::Number::New(env, static_cast<double>(c.misses)));
  return out;
}

// emptyCpuCache(): returns every idle block to the kernel; the bytes released.
static Napi::Value EmptyCpuCache(const Napi::CallbackInfo& info) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return Napi::Number::New(info.Env(), static_cast<double>(trimTo(c, 0)));
}

void registerCpuCache(Napi::Env env, Napi::Object exports) {
  exports.Set("cpuCache", Napi::Function::New(env, CpuCache));
  exports.Set("emptyCpuCache", Napi::Function::New(env, EmptyCpuCache));
}

}  // namespace vt
