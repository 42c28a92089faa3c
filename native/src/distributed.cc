// PyTorch's distributed engine, c10d, as libtorch ships it: a TCPStore for the rendezvous and a
// ProcessGroupGloo for the collectives (allreduce, broadcast, allgather, barrier), each waited on
// with a timeout so that a lost peer is an error, never a hang. Beside the group, a heartbeat
// thread counts up a key per rank in the store, so that after a failed collective the survivors
// can tell which rank stopped (`lostRanks`). Built when the libtorch has c10d and Gloo's headers
// are installed (VT_WITH_C10D); otherwise `distributedAvailable()` is false.
#include "tensor.h"
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#ifdef VT_WITH_C10D
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
      // The heartbeat and lostRanks share a connection of their own, under mutex_.
      hbStore_ = connectStore(host_, port_, false, false, size_, timeout_);
      beat_ = std::thread([this] { beat(); });
    })
  }

  ~ProcessGroup() override { stop(); }

 private:
  // Counts this rank's key up every heartbeat_ until stopped or the store is gone (its host,
  // rank 0, has ended).
  void beat() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_ && !storeLost_) {
      try {
        hbStore_->add(heartbeatKey(rank_), 1);
      } catch (...) {
        storeLost_ = true;
        break;
      }
      wake_.wait_for(lock, heartbeat_, [this] { return stopping_; });
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (beat_.joinable()) beat_.join();
    hbStore_.reset();
    group_.reset();
    store_.reset();
  }

  void requireOpen(Napi::Env env) {
    if (!group_) throwJs(env, "error", "the process group was shut down");
  }

  // Waits for a collective; a peer's failure or the timeout throws.
  void await(const c10::intrusive_ptr<c10d::Work>& work) { work->wait(timeout_); }

  static std::vector<at::Tensor> tensors(const Napi::Value& v) {
    auto arr = v.As<Napi::Array>();
    std::vector<at::Tensor> out;
    for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(unwrap(arr.Get(i)));
    return out;
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
      // One collective per tensor: Gloo's allreduce takes a list only as copies on several devices.
      std::vector<c10::intrusive_ptr<c10d::Work>> works;
      auto ts = tensors(info[0]);
      for (auto& t : ts) {
        std::vector<at::Tensor> one{t};
        works.push_back(group_->allreduce(one, o));
      }
      for (auto& w : works) await(w);
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
      std::vector<c10::intrusive_ptr<c10d::Work>> works;
      auto ts = tensors(info[0]);
      for (auto& t : ts) {
        std::vector<at::Tensor> one{t};
        works.push_back(group_->broadcast(one, o));
      }
      for (auto& w : works) await(w);
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
      const auto wait = ms(info[0].As<Napi::Number>().Int64Value());
      std::vector<int> lost;
      std::vector<int64_t> before(size_);
      auto counts = [this](std::vector<int64_t>& out) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (storeLost_ || !hbStore_) return false;
        try {
          for (int r = 0; r < size_; r++) out[r] = hbStore_->add(heartbeatKey(r), 0);
          return true;
        } catch (...) {
          storeLost_ = true;
          return false;
        }
      };
      bool reachable = counts(before);
      std::this_thread::sleep_for(wait);
      std::vector<int64_t> after(size_);
      reachable = reachable && counts(after);
      if (!reachable) {
        if (rank_ != 0) lost.push_back(0);
      } else {
        for (int r = 0; r < size_; r++) {
          if (r != rank_ && after[r] == before[r]) lost.push_back(r);
        }
      }
      Napi::Array arr = Napi::Array::New(env, lost.size());
      for (size_t i = 0; i < lost.size(); i++) arr.Set(static_cast<uint32_t>(i), Napi::Number::New(env, lost[i]));
      return arr;
    })
  }

  Napi::Value Shutdown(const Napi::CallbackInfo& info) {
    stop();
    return info.Env().Undefined();
  }

  int rank_ = 0, size_ = 1, port_ = 0;
  std::string host_;
  ms timeout_{30000}, heartbeat_{1000};
  c10::intrusive_ptr<c10d::TCPStore> store_, hbStore_;
  bool storeLost_ = false;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
  std::thread beat_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
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
#endif
}

}  // namespace vt
