#include "parallel/mpi_communicator.h"

#include <mpi.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "parallel/host_layout.h"
#include "parallel/internal/mpi_check.h"
#include "parallel/liveness.h"
#include "parallel/watchdog.h"

namespace loom::parallel {
namespace {

absl::StatusOr<MPI_Datatype> MpiType(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kLong: return MPI_INT64_T;
    case at::kInt: return MPI_INT32_T;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "MPI communicator: dtype ", c10::toString(t.scalar_type()),
          " is not supported (float32, float64, int32, int64); bf16 reductions need NCCL"));
  }
}

absl::Status CheckTensor(const at::Tensor& t, const char* what) {
  if (!t.defined() || !t.device().is_cpu() || !t.is_contiguous()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MPI communicator: ", what, " needs a defined, contiguous CPU tensor"));
  }
  return MpiType(t).status();
}

// Work completed by the communication thread.
class FutureWork : public Work {
 public:
  explicit FutureWork(std::future<absl::Status> f) : future_(std::move(f)) {}
  absl::Status Wait() override {
    if (!done_) {
      status_ = future_.get();
      done_ = true;
    }
    return status_;
  }

 private:
  std::future<absl::Status> future_;
  absl::Status status_;
  bool done_ = false;
};

// What every rank tells the others at start-up (MPI_Allgather of raw bytes: the ranks of one job
// run the same binary on the same architecture).
struct PeerRecord {
  char host[64];
  int32_t local_rank;
  int32_t pid;
  uint64_t nonce;
  uint16_t port;  // liveness listener; 0: none
  uint16_t num_addresses;
  uint32_t addresses[8];
};

// How long the probe of a stalled collective waits for peers' answers, and how long Abort()
// leaves MPI_Abort before ending the process itself.
constexpr double kProbeTimeoutS = 5;
constexpr int kAbortGraceS = 10;
// After its probe, a rank waits until kProbeTimeoutS + kReportSlackS after it noticed the stall
// before ending the job, so that the other ranks (which notice within a watchdog poll interval,
// at most 1 s) can print their reports first.
constexpr double kReportSlackS = 3;

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "unknown-host";
  return buf;
}

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator(int rank, int size, int local_rank, const CommunicatorOptions& options)
      : rank_(rank),
        size_(size),
        local_rank_(local_rank),
        chunk_bytes_(options.chunk_bytes),
        host_(Hostname()),
        watchdog_(options.collective_timeout_s,
                  [this](const StalledCollective& s) { OnStalled(s); }),
        thread_([this] { Loop(); }) {}

  ~MpiCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) {
      // MPI_Finalize synchronises with the peers too; a lost one would hang it.
      finalizing_ = true;
      watchdog_.Begin("MPI_Finalize", 0);
      MPI_Finalize();
      watchdog_.End();
    }
  }

  // The start-up exchange (mpi_communicator.h, "Lost peers", 1).
  absl::Status StartUp() {
    std::random_device random;
    const uint64_t nonce = (uint64_t{random()} << 32) ^ random() ^ static_cast<uint64_t>(getpid());
    PeerRecord mine{};
    std::snprintf(mine.host, sizeof(mine.host), "%s", host_.c_str());
    mine.local_rank = local_rank_;
    mine.pid = static_cast<int32_t>(getpid());
    mine.nonce = nonce;
    const std::string spec = AddressSpecFromEnvironment();
    absl::StatusOr<std::vector<uint32_t>> addresses =
        SelectAddresses(ListIpv4Interfaces(), spec);
    if (!addresses.ok() && std::getenv("LOOM_NET_IF") != nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("LOOM_NET_IF: ", addresses.status().message()));
    }
    if (!addresses.ok()) addresses = SelectAddresses(ListIpv4Interfaces(), "");
    if (addresses.ok()) {
      absl::StatusOr<std::unique_ptr<LivenessListener>> listener =
          LivenessListener::Start(rank_, nonce);
      if (listener.ok()) {
        listener_ = std::move(*listener);
        mine.port = listener_->port();
        for (uint32_t a : *addresses) {
          if (mine.num_addresses == std::size(mine.addresses)) break;
          mine.addresses[mine.num_addresses++] = a;
        }
      } else {
        std::fprintf(stderr, "loom: rank %d: warning: %s; a stalled collective will not name "
                     "lost peers\n", rank_, std::string(listener.status().message()).c_str());
      }
    }
    std::vector<PeerRecord> all(static_cast<size_t>(size_));
    absl::Status s = Submit([&]() -> absl::Status {
      return LOOM_MPI_STATUS(MPI_Allgather(&mine, sizeof(PeerRecord), MPI_BYTE, all.data(),
                                           sizeof(PeerRecord), MPI_BYTE, MPI_COMM_WORLD));
    }, "start-up exchange", static_cast<int64_t>(sizeof(PeerRecord)) * size_)->Wait();
    if (!s.ok()) return s;
    std::vector<RankPlacement> placements;
    std::vector<ProbeTarget> targets;
    for (int r = 0; r < size_; ++r) {
      const PeerRecord& p = all[static_cast<size_t>(r)];
      RankPlacement pl;
      pl.rank = r;
      pl.host = std::string(p.host, strnlen(p.host, sizeof(p.host)));
      pl.local_rank = p.local_rank;
      ProbeTarget t;
      t.rank = r;
      t.port = p.port;
      t.nonce = p.nonce;
      for (int i = 0; i < std::min<int>(p.num_addresses, std::size(p.addresses)); ++i) {
        pl.addresses.push_back(p.addresses[i]);
        if (p.port != 0) t.addresses.push_back(p.addresses[i]);
      }
      placements.push_back(std::move(pl));
      targets.push_back(std::move(t));
    }
    if (absl::Status check = CheckLocalRanks(placements); !check.ok() && rank_ == 0) {
      std::fprintf(stderr, "loom: warning: %s\n", std::string(check.message()).c_str());
    }
    std::lock_guard<std::mutex> lock(peers_mu_);
    placements_ = std::move(placements);
    targets_ = std::move(targets);
    layout_ = DescribeLayout(placements_);
    return absl::OkStatus();
  }

  std::string Layout() const override {
    std::lock_guard<std::mutex> lock(peers_mu_);
    return layout_;
  }

  int RanksOnThisHost() const override {
    std::lock_guard<std::mutex> lock(peers_mu_);
    return RanksOnHostOf(placements_, rank_);
  }

  int rank() const override { return rank_; }
  int world_size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  std::unique_ptr<Work> AllReduce(const at::Tensor& t, ReduceOp op) override {
    if (absl::Status s = CheckTensor(t, "AllReduce"); !s.ok()) return CompletedWork(s);
    return Submit([this, t, op]() -> absl::Status {
      const MPI_Datatype type = *MpiType(t);
      const MPI_Op mop = op == ReduceOp::kSum ? MPI_SUM : MPI_MAX;
      char* base = static_cast<char*>(t.data_ptr());
      const int64_t elem = t.element_size();
      for (int64_t start = 0; start < t.numel();) {
        const int64_t count = std::min(t.numel() - start, ChunkElements(elem));
        absl::Status s = LOOM_MPI_STATUS(MPI_Allreduce(MPI_IN_PLACE, base + start * elem,
                                                       static_cast<int>(count), type, mop,
                                                       MPI_COMM_WORLD));
        if (!s.ok()) return s;
        start += count;
      }
      return absl::OkStatus();
    }, "all-reduce", t.nbytes());
  }

  std::unique_ptr<Work> ReduceScatter(const at::Tensor& input, const at::Tensor& output) override {
    if (absl::Status s = CheckTensor(input, "ReduceScatter input"); !s.ok()) return CompletedWork(s);
    if (absl::Status s = CheckTensor(output, "ReduceScatter output"); !s.ok()) {
      return CompletedWork(s);
    }
    if (input.numel() != output.numel() * size_ || input.scalar_type() != output.scalar_type()) {
      return CompletedWork(absl::InvalidArgumentError(absl::StrCat(
          "ReduceScatter: input has ", input.numel(), " elements, output ", output.numel(),
          "; need input = world_size (", size_, ") x output, same dtype")));
    }
    return Submit([this, input, output]() -> absl::Status {
      const MPI_Datatype type = *MpiType(input);
      const int64_t elem = input.element_size();
      const int64_t n = output.numel();
      const char* in = static_cast<const char*>(input.data_ptr());
      char* out = static_cast<char*>(output.data_ptr());
      // Chunk c of every rank's slice: one MPI_Reduce_scatter with per-rank counts and a strided
      // gather would need a copy; instead a block reduce-scatter per chunk of a packed buffer.
      const int64_t chunk = std::max<int64_t>(1, ChunkElements(elem) / size_);
      std::vector<char> packed;
      for (int64_t start = 0; start < n; start += chunk) {
        const int64_t count = std::min(n - start, chunk);
        const char* send = in + start * elem;
        if (count != n) {
          packed.resize(static_cast<size_t>(count * elem * size_));
          for (int r = 0; r < size_; ++r) {
            std::copy_n(in + (r * n + start) * elem, count * elem,
                        packed.data() + r * count * elem);
          }
          send = packed.data();
        }
        absl::Status s = LOOM_MPI_STATUS(MPI_Reduce_scatter_block(
            send, out + start * elem, static_cast<int>(count), type, MPI_SUM, MPI_COMM_WORLD));
        if (!s.ok()) return s;
      }
      return absl::OkStatus();
    }, "reduce-scatter", input.nbytes());
  }

  std::unique_ptr<Work> AllGatherInPlace(const at::Tensor& buffer) override {
    if (absl::Status s = CheckTensor(buffer, "AllGather"); !s.ok()) return CompletedWork(s);
    if (buffer.numel() % size_ != 0) {
      return CompletedWork(absl::InvalidArgumentError(absl::StrCat(
          "AllGather: ", buffer.numel(), " elements do not split over ", size_, " ranks")));
    }
    return Submit([this, buffer]() -> absl::Status {
      const MPI_Datatype type = *MpiType(buffer);
      const int64_t n = buffer.numel() / size_;
      return LOOM_MPI_STATUS(MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buffer.data_ptr(),
                                           static_cast<int>(n), type, MPI_COMM_WORLD));
    }, "all-gather", buffer.nbytes());
  }

  std::unique_ptr<Work> Broadcast(const at::Tensor& t, int root) override {
    if (absl::Status s = CheckTensor(t, "Broadcast"); !s.ok()) return CompletedWork(s);
    return Submit([this, t, root]() -> absl::Status {
      const MPI_Datatype type = *MpiType(t);
      char* base = static_cast<char*>(t.data_ptr());
      const int64_t elem = t.element_size();
      for (int64_t start = 0; start < t.numel();) {
        const int64_t count = std::min(t.numel() - start, ChunkElements(elem));
        absl::Status s = LOOM_MPI_STATUS(MPI_Bcast(base + start * elem, static_cast<int>(count),
                                                   type, root, MPI_COMM_WORLD));
        if (!s.ok()) return s;
        start += count;
      }
      return absl::OkStatus();
    }, "broadcast", t.nbytes());
  }

  absl::Status Barrier() override {
    return Submit([] { return LOOM_MPI_STATUS(MPI_Barrier(MPI_COMM_WORLD)); }, "barrier")->Wait();
  }

  [[noreturn]] void Abort(const std::string& message, int exit_code) override {
    std::fprintf(stderr, "loom: rank %d: %s; aborting the job\n", rank_, message.c_str());
    std::fflush(stderr);
    // MPI_Abort asks Open MPI's runtime to end every rank; if that runtime is cut off too (a
    // lost network), it may never return: end this process ourselves after a grace period.
    std::thread([exit_code] {
      std::this_thread::sleep_for(std::chrono::seconds(kAbortGraceS));
      std::_Exit(exit_code);
    }).detach();
    if (!finalizing_) MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; belt and braces
  }

 private:
  // The watchdog's handler (watchdog thread): name what this rank lost, then end the job.
  void OnStalled(const StalledCollective& s) {
    // Every rank in the stalled collective gets here within about a poll interval of the others.
    // Each reports what it sees before any of them ends the job, so the report shows both sides
    // of a partition (with three hosts or more, the isolated one is named by everyone else).
    const auto report_by = std::chrono::steady_clock::now() +
                           std::chrono::duration<double>(kProbeTimeoutS + kReportSlackS);
    std::vector<RankPlacement> placements;
    std::vector<ProbeTarget> targets;
    {
      std::lock_guard<std::mutex> lock(peers_mu_);
      placements = placements_;
      targets = targets_;
    }
    std::vector<PeerState> states;
    if (!targets.empty()) {
      std::vector<ProbeTarget> others;
      for (const ProbeTarget& t : targets) {
        if (t.rank != rank_) others.push_back(t);
      }
      std::vector<PeerState> found = ProbePeers(others, kProbeTimeoutS);
      states.assign(targets.size(), PeerState::kAlive);
      for (size_t i = 0; i < others.size(); ++i) states[others[i].rank] = found[i];
    }
    const std::string message =
        absl::StrFormat("%s did not complete within %.0f s on host %s; %s",
                        DescribeCollective(s), watchdog_.timeout_s(), host_,
                        DescribeProbe(rank_, placements, states));
    std::fprintf(stderr, "loom: rank %d: %s\n", rank_, message.c_str());
    std::fflush(stderr);
    if (size_ > 1 && !finalizing_) std::this_thread::sleep_until(report_by);
    Abort(absl::StrFormat("%s did not complete within %.0f s", DescribeCollective(s),
                          watchdog_.timeout_s()),
          1);
  }

  int64_t ChunkElements(int64_t elem) const {
    const int64_t cap = (int64_t{1} << 30) / elem;  // MPI counts are int
    return chunk_bytes_ > 0 ? std::max<int64_t>(1, std::min(cap, chunk_bytes_ / elem)) : cap;
  }

  // Messages up to kInlineBytes run on the caller's thread when the communication thread is idle
  // (nothing queued or running, so the order of collectives is unchanged): handing a 1 KiB
  // all-reduce to the thread cost ~5 us of wake-up, 4x the collective itself.
  static constexpr int64_t kInlineBytes = int64_t{1} << 20;

  std::unique_ptr<Work> Submit(std::function<absl::Status()> fn, const char* what,
                               int64_t bytes = 0) {
    if (bytes <= kInlineBytes) {
      bool claimed = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (queue_.empty() && !busy_) claimed = busy_ = true;
      }
      if (claimed) {
        watchdog_.Begin(what, bytes);
        absl::Status status = fn();
        watchdog_.End();
        {
          std::lock_guard<std::mutex> lock(mu_);
          busy_ = false;
        }
        // No notify: only this thread submits, so nothing was queued meanwhile, and waking the
        // idle thread would steal a core from the busy-polling ranks (measured: 0.56x at 256 KiB).
        return CompletedWork(std::move(status));
      }
    }
    Task task{std::packaged_task<absl::Status()>(std::move(fn)), what, bytes};
    auto work = std::make_unique<FutureWork>(task.run.get_future());
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(task));
    }
    cv_.notify_one();
    return work;
  }

  void Loop() {
    for (;;) {
      Task task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return (stop_ || !queue_.empty()) && !busy_; });
        if (queue_.empty()) return;  // stop_ and drained
        task = std::move(queue_.front());
        queue_.pop_front();
        busy_ = true;
      }
      watchdog_.Begin(task.what, task.bytes);
      task.run();
      watchdog_.End();
      {
        std::lock_guard<std::mutex> lock(mu_);
        busy_ = false;
      }
    }
  }

  const int rank_;
  const int size_;
  const int local_rank_;
  const int64_t chunk_bytes_;
  const std::string host_;
  std::atomic<bool> finalizing_{false};
  // From the start-up exchange.
  mutable std::mutex peers_mu_;
  std::vector<RankPlacement> placements_;
  std::vector<ProbeTarget> targets_;
  std::string layout_;
  std::unique_ptr<LivenessListener> listener_;
  CollectiveWatchdog watchdog_;  // before thread_: every MPI call goes through it
  std::mutex mu_;
  std::condition_variable cv_;
  struct Task {
    std::packaged_task<absl::Status()> run;
    const char* what = "";  // for the watchdog
    int64_t bytes = 0;
  };
  std::deque<Task> queue_;
  bool stop_ = false;
  bool busy_ = false;  // a collective is running (on the thread or inline on the caller)
  std::thread thread_;  // last: starts after the members it uses
};

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> CreateMpiCommunicator(
    const WorldInfo& world, const CommunicatorOptions& options) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    if (absl::Status s = LOOM_MPI_STATUS(
            MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided));
        !s.ok()) {
      return s;
    }
    if (provided < MPI_THREAD_SERIALIZED) {
      return absl::FailedPreconditionError(absl::StrCat(
          "this MPI library provides thread level ", provided,
          "; Loom's communication thread needs at least MPI_THREAD_SERIALIZED"));
    }
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (world.source != "none" && (rank != world.rank || size != world.world_size)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "MPI reports rank ", rank, " of ", size, " but the launcher environment (", world.source,
        ") says rank ", world.rank, " of ", world.world_size,
        "; start Loom with mpirun/srun directly, one process per rank"));
  }
  auto comm = std::make_unique<MpiCommunicator>(
      rank, size, world.source != "none" ? world.local_rank : rank, options);
  if (absl::Status s = comm->StartUp(); !s.ok()) return s;
  return std::unique_ptr<Communicator>(std::move(comm));
}

}  // namespace loom::parallel
