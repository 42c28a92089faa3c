// PyTorch's distributed engine, c10d, as libtorch ships it: a TCPStore for the rendezvous and a
// ProcessGroupGloo for the collectives (allreduce, broadcast, allgather, barrier), each waited on
// with a timeout so that a lost peer is an error, never a hang. Beside the group, a heartbeat
// thread counts up a key per rank in the store, so that after a failed collective the survivors
// can tell which rank stopped (`lostRanks`). Built when the libtorch has c10d and Gloo's headers
// are installed (VT_WITH_C10D); otherwise `distributedAvailable()` is false.
#include "tensor.h"
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <system_error>
#include <thread>
#include <unistd.h>

#ifdef VT_WITH_C10D
#include <torch/csrc/autograd/custom_function.h>
#include <unordered_map>
#define USE_C10D_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace vt {

#ifdef VT_WITH_C10D

using ms = std::chrono::milliseconds;

static std::string heartbeatKey(int rank) { return "visiontune/heartbeat/" + std::to_string(rank); }

// A connection to the store; `member`: one of the worldSize that the rendezvous counts (the
// server waits for all of them), else an extra connection (the heartbeat's, a probe's).
static c10::intrusive_ptr<c10d::TCPStore> connectStore(const std::string& host, int port, bool server, bool member, int worldSize, ms timeout) {
  c10d::TCPStoreOptions o;
  o.port = static_cast<std::uint16_t>(port);
  o.isServer = server;
  o.numWorkers = member ? c10::optional<std::size_t>(worldSize) : c10::nullopt;
  o.waitWorkers = member;
  o.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(host, o);
}

// The live groups by id, for SyncBatchNorm's backward, which runs after its forward returned.
struct LiveGroup {
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
  ms timeout;
};
static std::mutex liveMutex;
static std::unordered_map<int64_t, LiveGroup> liveGroups;
static int64_t nextGroupId = 1;
static std::atomic<int> liveGroupCount{0};

// Each of libtorch 1.13's TCPStore clients runs a thread that waits for the store's watch
// callbacks. When rank 0 dies and the kernel resets that socket instead of closing it, the
// thread's recv throws std::system_error (ECONNRESET) out of the thread, and std::terminate would
// abort a surviving rank before it names the lost one (it did once in CI). While a group is live,
// a thread other than the one that made the groups (JavaScript's, whose calls all catch) that
// ends in a std::system_error is parked instead: the store is gone either way, and the
// survivor's failing collective and heartbeat probe report the loss in their one line. Any other
// exception, or none, goes to the handler that was there before. A parked thread never ends, so
// once one is parked, shutdown leaves its group and store alive (see stop()): their destructors
// would join it and hang.
static std::thread::id groupsThread;
static std::terminate_handler previousTerminate = nullptr;
static std::atomic<int> parkedThreads{0};

[[noreturn]] static void onTerminate() {
  bool park = false;
  if (std::this_thread::get_id() != groupsThread && liveGroupCount.load() > 0) {
    try {
      if (auto e = std::current_exception()) std::rethrow_exception(e);
    } catch (const std::system_error&) {
      park = true;
    } catch (...) {
    }
  }
  if (park) {
    parkedThreads++;
    for (;;) pause();
  }
  if (previousTerminate) previousTerminate();
  std::abort();
}

static int64_t registerLive(const c10::intrusive_ptr<c10d::ProcessGroupGloo>& group, ms timeout) {
  static std::once_flag installed;
  std::call_once(installed, [] {
    groupsThread = std::this_thread::get_id();
    previousTerminate = std::set_terminate(onTerminate);
  });
  std::lock_guard<std::mutex> lock(liveMutex);
  const int64_t id = nextGroupId++;
  liveGroups[id] = LiveGroup{group, timeout};
  liveGroupCount++;
  return id;
}

// For the tests: throws what a store thread throws when its socket is reset, on a thread of its own.
static Napi::Value ThrowOffThread(const Napi::CallbackInfo& info) {
  std::thread([] { throw std::system_error(ECONNRESET, std::system_category()); }).detach();
  return info.Env().Undefined();
}

// Sums each tensor over the ranks of group `id`, in place, waiting up to its timeout.
static void allreduceSum(int64_t id, at::Tensor& t) {
  LiveGroup g;
  {
    std::lock_guard<std::mutex> lock(liveMutex);
    auto it = liveGroups.find(id);
    TORCH_CHECK(it != liveGroups.end(), "SyncBatchNorm: the process group was shut down");
    g = it->second;
  }
  c10d::AllreduceOptions o;
  o.timeout = g.timeout;
  std::vector<at::Tensor> one{t};
  g.group->allreduce(one, o)->wait(g.timeout);
}

// Batch norm over the whole batch of every rank (PyTorch's SyncBatchNorm, torch/nn/modules/
// _functions.py): the per-channel sum, sum of squares and count all-reduced in the forward
// pass, the per-channel sums of dy and dy·x̂ all-reduced in the backward pass. Statistics in
// float32 whatever the input's dtype; the output in the input's dtype.
struct SyncBatchNormFunction : public torch::autograd::Function<SyncBatchNormFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                            at::Tensor runningMean, at::Tensor runningVar, double momentum, double eps, int64_t group) {
    const int64_t c = x.size(1);
    std::vector<int64_t> dims{0};
    for (int64_t d = 2; d < x.dim(); d++) dims.push_back(d);
    std::vector<int64_t> shape(x.dim(), 1);
    shape[1] = c;
    at::Tensor xf = x.to(at::kFloat);
    at::Tensor stats = at::cat({xf.sum(dims), (xf * xf).sum(dims), at::full({1}, static_cast<double>(x.numel() / c), xf.options())});
    allreduceSum(group, stats);
    const double n = stats[2 * c].item<double>();
    TORCH_CHECK(n > 1, "SyncBatchNorm: expected more than 1 value per channel over all ranks when training");
    at::Tensor mean = stats.narrow(0, 0, c) / n;
    at::Tensor var = (stats.narrow(0, c, c) / n - mean * mean).clamp_min(0);
    at::Tensor invstd = (var + eps).rsqrt();
    if (runningMean.defined()) {
      at::NoGradGuard noGrad;
      runningMean.mul_(1 - momentum).add_(mean, momentum);
      runningVar.mul_(1 - momentum).add_(var * (n / (n - 1)), momentum);
    }
    at::Tensor xhat = (xf - mean.view(shape)) * invstd.view(shape);
    at::Tensor y = xhat;
    if (weight.defined()) y = y * weight.to(at::kFloat).view(shape);
    if (bias.defined()) y = y + bias.to(at::kFloat).view(shape);
    ctx->save_for_backward({xhat, weight, invstd});
    ctx->saved_data["group"] = group;
    ctx->saved_data["n"] = n;
    ctx->saved_data["hasBias"] = bias.defined();
    return y.to(x.scalar_type());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    at::Tensor xhat = saved[0], weight = saved[1], invstd = saved[2];
    const int64_t group = ctx->saved_data["group"].toInt();
    const double n = ctx->saved_data["n"].toDouble();
    const int64_t c = xhat.size(1);
    std::vector<int64_t> dims{0};
    for (int64_t d = 2; d < xhat.dim(); d++) dims.push_back(d);
    std::vector<int64_t> shape(xhat.dim(), 1);
    shape[1] = c;
    at::Tensor dy = grads[0].to(at::kFloat);
    // This rank's sums: the weight's and bias's gradients (DDP averages them over the ranks).
    at::Tensor sumDy = dy.sum(dims), sumDyXhat = (dy * xhat).sum(dims);
    at::Tensor both = at::cat({sumDy, sumDyXhat});
    allreduceSum(group, both);
    at::Tensor scale = invstd;
    if (weight.defined()) scale = scale * weight.to(at::kFloat);
    at::Tensor dx = scale.view(shape) * (dy - (both.narrow(0, 0, c) / n).view(shape) - xhat * (both.narrow(0, c, c) / n).view(shape));
    at::Tensor dWeight = weight.defined() ? sumDyXhat.to(weight.scalar_type()) : at::Tensor();
    at::Tensor dBias = ctx->saved_data["hasBias"].toBool() ? sumDy.to(weight.defined() ? weight.scalar_type() : at::kFloat) : at::Tensor();
    return {dx.to(grads[0].scalar_type()), dWeight, dBias, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// The heartbeat's state, shared with its thread: a thread blocked on a frozen store (rank 0
// stopped, machine 0 unreachable) is left behind at shutdown rather than waited for.
struct Heartbeat {
  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;
  std::promise<void> done;
};

// Runs `fn` on a thread of its own and returns its result, or nullopt when it has not finished
// within `limit` (the thread is then left to finish or block on its own; it owns what it uses).
template <typename T>
static c10::optional<T> within(ms limit, std::function<T()> fn) {
  auto task = std::make_shared<std::packaged_task<T()>>(std::move(fn));
  auto result = task->get_future();
  std::thread([task] { (*task)(); }).detach();
  if (result.wait_for(limit) != std::future_status::ready) return c10::nullopt;
  return result.get();
}

// One process's membership of a group: its store, its Gloo process group and its heartbeat.
class ProcessGroup : public Napi::ObjectWrap<ProcessGroup> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ProcessGroup", {
      InstanceMethod("allreduce", &ProcessGroup::Allreduce),
      InstanceMethod("broadcast", &ProcessGroup::Broadcast),
      InstanceMethod("allgather", &ProcessGroup::Allgather),
      InstanceMethod("barrier", &ProcessGroup::Barrier),
      InstanceMethod("lostRanks", &ProcessGroup::LostRanks),
      InstanceMethod("syncBatchNorm", &ProcessGroup::SyncBatchNorm),
      InstanceMethod("shutdown", &ProcessGroup::Shutdown),
    });
  }

  // new ProcessGroup({ rank, worldSize, host, port, timeoutMs, heartbeatMs, iface })
  explicit ProcessGroup(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessGroup>(info) {
    Napi::Env env = info.Env();
    VT_GUARD(env, {
      auto o = info[0].As<Napi::Object>();
      rank_ = o.Get("rank").As<Napi::Number>().Int32Value();
      size_ = o.Get("worldSize").As<Napi::Number>().Int32Value();
      host_ = o.Get("host").As<Napi::String>().Utf8Value();
      port_ = o.Get("port").As<Napi::Number>().Int32Value();
      timeout_ = ms(o.Get("timeoutMs").As<Napi::Number>().Int64Value());
      heartbeat_ = ms(o.Get("heartbeatMs").As<Napi::Number>().Int64Value());
      const std::string iface = o.Get("iface").IsString() ? o.Get("iface").As<Napi::String>().Utf8Value() : "";
      // Rank 0 serves the store and waits (up to the timeout) for every rank to join.
      store_ = connectStore(host_, port_, rank_ == 0, true, size_, timeout_);
      auto options = c10d::ProcessGroupGloo::Options::create(timeout_);
      // Gloo's own sockets: on the loopback address for one machine, else on the interface named
      // (GLOO_SOCKET_IFNAME's role) or the address this host's name resolves to.
      const bool loopback = host_ == "127.0.0.1" || host_ == "localhost" || host_ == "::1";
      options->devices.push_back(!iface.empty() ? c10d::ProcessGroupGloo::createDeviceForInterface(iface)
                                 : loopback      ? c10d::ProcessGroupGloo::createDeviceForHostname(host_)
                                                 : c10d::ProcessGroupGloo::createDefaultDevice());
      options->threads = 2;
      group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, rank_, size_, options);
      startHeartbeat();
      id_ = registerLive(group_, timeout_);
    })
  }

  ~ProcessGroup() override { stop(); }

 private:
  // The heartbeat counts up on a connection of its own, on a thread of its own.
  void startHeartbeat() {
    auto hbStore = connectStore(host_, port_, false, false, size_, timeout_);
    heartbeatState_ = std::make_shared<Heartbeat>();
    beatDone_ = heartbeatState_->done.get_future();
    std::thread([state = heartbeatState_, store = hbStore, key = heartbeatKey(rank_), every = heartbeat_] {
      beat(state, store, key, every);
    }).detach();
  }

  // The other ranks whose heartbeat stood still for `wait`, read on a probe connection of its
  // own, on a thread of its own: a frozen store (rank 0 stopped) answers nothing, and after the
  // wait and 5 s more that counts as rank 0 lost, as does a store that refuses the connection.
  std::vector<int> probeLost(ms wait) {
    const std::string host = host_;
    const int port = port_, size = size_, rank = rank_;
    const ms probeTimeout = std::min(timeout_, ms(5000));
    auto stalled = within<std::vector<int>>(wait + ms(5000), [=]() -> std::vector<int> {
      std::vector<int> out;
      try {
        auto store = connectStore(host, port, false, false, size, probeTimeout);
        std::vector<int64_t> before(size);
        for (int r = 0; r < size; r++) before[r] = store->add(heartbeatKey(r), 0);
        std::this_thread::sleep_for(wait);
        for (int r = 0; r < size; r++) {
          if (r != rank && store->add(heartbeatKey(r), 0) == before[r]) out.push_back(r);
        }
      } catch (const std::exception&) {
        out = {-1};
      }
      return out;
    });
    if (stalled && !(stalled->size() == 1 && (*stalled)[0] == -1)) return *stalled;
    return rank_ != 0 ? std::vector<int>{0} : std::vector<int>{};
  }

  // Counts `key` up every `every` until stopped or the store fails (its host, rank 0, has ended).
  static void beat(std::shared_ptr<Heartbeat> state, c10::intrusive_ptr<c10d::TCPStore> store, std::string key, ms every) {
    try {
      std::unique_lock<std::mutex> lock(state->mutex);
      while (!state->stopping) {
        lock.unlock();
        store->add(key, 1);  // may block on a frozen store: nothing else waits on this thread's lock
        lock.lock();
        state->wake.wait_for(lock, every, [&] { return state->stopping; });
      }
    } catch (...) {
      // The store is gone: nothing left to beat for.
    }
    state->done.set_value();
  }

  void stop() {
    if (heartbeatState_) {
      {
        std::lock_guard<std::mutex> lock(heartbeatState_->mutex);
        heartbeatState_->stopping = true;
      }
      heartbeatState_->wake.notify_all();
      // A heartbeat stuck on a frozen store is left to itself.
      beatDone_.wait_for(ms(1000));
      heartbeatState_.reset();
    }
    {
      std::lock_guard<std::mutex> lock(liveMutex);
      if (liveGroups.erase(id_)) liveGroupCount--;
    }
    if (parkedThreads.load() > 0) {
      // Never freed: a parked store thread would be joined by these destructors.
      static auto* kept = new std::vector<c10::intrusive_ptr<c10::intrusive_ptr_target>>();
      kept->push_back(group_);
      kept->push_back(store_);
    }
    group_.reset();
    store_.reset();
  }

  void requireOpen(Napi::Env env) {
    if (!group_) throwJs(env, "error", "the process group was shut down");
  }

  // Waits for a collective; a peer's failure or the timeout throws.
  void await(const c10::intrusive_ptr<c10d::Work>& work) { work->wait(timeout_); }

  // A tensor handle, or an undefined tensor for null.
  static at::Tensor optional(const Napi::Value& v) { return v.IsNull() || v.IsUndefined() ? at::Tensor() : unwrap(v); }

  static std::vector<at::Tensor> tensors(const Napi::Value& v) {
    auto arr = v.As<Napi::Array>();
    std::vector<at::Tensor> out;
    for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(unwrap(arr.Get(i)));
    return out;
  }

  // Starts a collective on each tensor of the array `arr` with `start`, then waits for them all:
  // one collective per tensor, since Gloo takes a list only as copies on several devices.
  void eachTensor(const Napi::Value& arr, const std::function<c10::intrusive_ptr<c10d::Work>(std::vector<at::Tensor>&)>& start) {
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto& t : tensors(arr)) {
      std::vector<at::Tensor> one{t};
      works.push_back(start(one));
    }
    for (auto& w : works) await(w);
  }

  // allreduce(tensors, op): in place, each tensor reduced over the ranks ('sum', 'max', 'min', 'product').
  Napi::Value Allreduce(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    VT_GUARD(env, {
      requireOpen(env);
      const std::string op = info[1].As<Napi::String>().Utf8Value();
      c10d::AllreduceOptions o;
      o.reduceOp = op == "max" ? c10d::ReduceOp::MAX : op == "min" ? c10d::ReduceOp::MIN : op == "product" ? c10d::ReduceOp::PRODUCT : c10d::ReduceOp::SUM;
      o.timeout = timeout_;
      eachTensor(info[0], [&](std::vector<at::Tensor>& one) { return group_->allreduce(one, o); });
      return env.Undefined();
    })
  }

  // broadcast(tensors, root): in place, each tensor set to the root rank's.
  Napi::Value Broadcast(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    VT_GUARD(env, {
      requireOpen(env);
      c10d::BroadcastOptions o;
      o.rootRank = info[1].As<Napi::Number>().Int64Value();
      o.timeout = timeout_;
      eachTensor(info[0], [&](std::vector<at::Tensor>& one) { return group_->broadcast(one, o); });
      return env.Undefined();
    })
  }

  // allgather(tensor) -> one tensor per rank, in rank order.
  Napi::Value Allgather(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    VT_GUARD(env, {
      requireOpen(env);
      at::Tensor t = unwrap(info[0]).contiguous();
      std::vector<std::vector<at::Tensor>> outs(1);
      for (int r = 0; r < size_; r++) outs[0].push_back(at::empty_like(t));
      std::vector<at::Tensor> in{t};
      c10d::AllgatherOptions o;
      o.timeout = timeout_;
      await(group_->allgather(outs, in, o));
      Napi::Array arr = Napi::Array::New(env, outs[0].size());
      for (size_t r = 0; r < outs[0].size(); r++) arr.Set(static_cast<uint32_t>(r), wrap(env, outs[0][r]));
      return arr;
    })
  }

  Napi::Value Barrier(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    VT_GUARD(env, {
      requireOpen(env);
      c10d::BarrierOptions o;
      o.timeout = timeout_;
      await(group_->barrier(o));
      return env.Undefined();
    })
  }

  // lostRanks(waitMs) -> the other ranks whose heartbeat did not move in waitMs; [0] when the
  // store (served by rank 0) cannot be reached.
  Napi::Value LostRanks(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    VT_GUARD(env, {
      std::vector<int> lost = probeLost(ms(info[0].As<Napi::Number>().Int64Value()));
      Napi::Array arr = Napi::Array::New(env, lost.size());
      for (size_t i = 0; i < lost.size(); i++) arr.Set(static_cast<uint32_t>(i), Napi::Number::New(env, lost[i]));
      return arr;
    })
  }

  // syncBatchNorm(x, weight, bias, runningMean, runningVar, momentum, eps) -> y: training-mode
  // batch norm with the statistics of every rank's batch; null for an absent weight, bias or
  // running statistic.
  Napi::Value SyncBatchNorm(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    VT_GUARD(env, {
      requireOpen(env);
      at::Tensor y = SyncBatchNormFunction::apply(unwrap(info[0]), optional(info[1]), optional(info[2]), optional(info[3]), optional(info[4]),
                                                  info[5].As<Napi::Number>().DoubleValue(), info[6].As<Napi::Number>().DoubleValue(), id_);
      return wrap(env, y);
    })
  }

  Napi::Value Shutdown(const Napi::CallbackInfo& info) {
    stop();
    return info.Env().Undefined();
  }

  int rank_ = 0, size_ = 1, port_ = 0;
  int64_t id_ = 0;
  std::string host_;
  ms timeout_{30000}, heartbeat_{1000};
  c10::intrusive_ptr<c10d::TCPStore> store_;
  std::shared_ptr<Heartbeat> heartbeatState_;
  std::future<void> beatDone_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
};

#endif  // VT_WITH_C10D

static Napi::Value DistributedAvailable(const Napi::CallbackInfo& info) {
#ifdef VT_WITH_C10D
  return Napi::Boolean::New(info.Env(), true);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

void registerDistributed(Napi::Env env, Napi::Object exports) {
  exports.Set("distributedAvailable", Napi::Function::New(env, DistributedAvailable));
#ifdef VT_WITH_C10D
  exports.Set("ProcessGroup", ProcessGroup::Define(env));
  exports.Set("throwOffThread", Napi::Function::New(env, ThrowOffThread));
#endif
}

}  // namespace vt
