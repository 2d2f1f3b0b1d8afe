// Loom's MPI all-reduce (Communicator::AllReduce: communication thread, chunked) against a raw
// MPI_Allreduce of the same buffer, 1 KiB ... 256 MiB, float32, in one run.
//
//   bazel run -c opt //parallel:allreduce_benchmark                # re-launches itself: mpirun -np 2
//   bazel run -c opt //parallel:allreduce_benchmark -- --np=4 --chunk_kib=4096
//
// Bus bandwidth = 2 (N - 1) / N x bytes / time (the NCCL-tests convention: what each link
// carries). Each sample is one collective between barriers; the table shows the best of the
// iterations on rank 0. glibc's allocator is left at its defaults on purpose: Loom's path must
// not depend on the process's malloc tuning (see mpi_communicator.h).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "parallel/communicator.h"
#include "parallel/internal/mpi_relaunch.h"

namespace {

loom::parallel::Communicator* g_comm = nullptr;
std::map<std::pair<int64_t, bool>, double> g_best;  // (bytes, loom?) -> seconds

double BusGBps(int64_t bytes, double seconds, int world) {
  return 2.0 * (world - 1) / world * static_cast<double>(bytes) / seconds / 1e9;
}

void BM_AllReduce(benchmark::State& state, bool loom) {
  const int64_t bytes = state.range(0);
  at::Tensor buf = at::ones({bytes / 4}, at::kFloat);
  double best = 1e30;
  for (auto _ : state) {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto t0 = std::chrono::steady_clock::now();
    if (loom) {
      absl::Status s = g_comm->AllReduce(buf, loom::parallel::ReduceOp::kSum)->Wait();
      if (!s.ok()) state.SkipWithError(std::string(s.message()).c_str());
    } else {
      MPI_Allreduce(MPI_IN_PLACE, buf.data_ptr(), static_cast<int>(buf.numel()), MPI_FLOAT,
                    MPI_SUM, MPI_COMM_WORLD);
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(s);
    best = std::min(best, s);
    buf.fill_(1.0f);  // keep values bounded; outside the timed region
  }
  state.counters["busGB/s"] = BusGBps(bytes, best, g_comm->world_size());
  g_best[{bytes, loom}] = best;
}

std::vector<int64_t> Sizes() {
  std::vector<int64_t> v;
  for (int64_t b = 1 << 10; b <= (int64_t{256} << 20); b *= 4) v.push_back(b);
  v.push_back(int64_t{32} << 20);
  v.push_back(int64_t{128} << 20);
  std::sort(v.begin(), v.end());
  return v;
}

// Fixed iteration counts: every rank must run the same number of collectives.
int Iterations(int64_t bytes) { return bytes <= (1 << 20) ? 200 : bytes <= (16 << 20) ? 20 : 6; }

std::string Human(int64_t b) {
  if (b >= (1 << 20)) return std::to_string(b >> 20) + " MiB";
  return std::to_string(b >> 10) + " KiB";
}

}  // namespace

int main(int argc, char** argv) {
  // Started by `bazel run` (no launcher): run ourselves under mpirun.
  auto world = loom::parallel::DiscoverWorld();
  if (!world.ok()) {
    std::fprintf(stderr, "allreduce_benchmark: %s\n", std::string(world.status().message()).c_str());
    return 1;
  }
  int np = 2;
  int64_t chunk_kib = 4096;
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--np=", 0) == 0) {
      np = std::atoi(a.c_str() + 5);
    } else if (a.rfind("--chunk_kib=", 0) == 0) {
      chunk_kib = std::atoll(a.c_str() + 12);
    } else {
      rest.push_back(argv[i]);
    }
  }
  loom::parallel::internal::RelaunchUnderMpirunIfAlone(argc, argv, np, "allreduce_benchmark");
  if (world->source == "none") return 1;  // exec failed
  at::set_num_threads(1);
  auto comm = loom::parallel::CreateCommunicator(
      *world, loom::parallel::CommunicatorOptions().set_backend("mpi").set_chunk_bytes(chunk_kib << 10));
  if (!comm.ok()) {
    std::fprintf(stderr, "allreduce_benchmark: %s\n", std::string(comm.status().message()).c_str());
    return 1;
  }
  g_comm = comm->get();
  for (int64_t bytes : Sizes()) {
    for (bool loom : {true, false}) {
      benchmark::RegisterBenchmark(
          (std::string("allreduce/") + (loom ? "loom/" : "raw_mpi/") + Human(bytes)).c_str(),
          [loom](benchmark::State& s) { BM_AllReduce(s, loom); })
          ->Arg(bytes)
          ->UseManualTime()
          ->Iterations(Iterations(bytes))
          ->Unit(benchmark::kMicrosecond);
    }
  }
  int rargc = static_cast<int>(rest.size());
  benchmark::Initialize(&rargc, rest.data());
  if (g_comm->rank() == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    loom::parallel::internal::QuietReporter quiet;
    benchmark::RunSpecifiedBenchmarks(&quiet);
  }
  if (g_comm->rank() == 0) {
    std::printf("\n## All-reduce bus bandwidth, %d ranks, float32 (best of the iterations)\n\n",
                g_comm->world_size());
    std::printf("| size | raw MPI_Allreduce GB/s | Loom GB/s | Loom / raw |\n|---|---|---|---|\n");
    for (int64_t bytes : Sizes()) {
      if (!g_best.count({bytes, false}) || !g_best.count({bytes, true})) continue;  // filtered out
      const double raw = g_best[{bytes, false}], ours = g_best[{bytes, true}];
      std::printf("| %s | %.2f | %.2f | %.2fx |\n", Human(bytes).c_str(),
                  BusGBps(bytes, raw, g_comm->world_size()),
                  BusGBps(bytes, ours, g_comm->world_size()), raw / ours);
    }
  }
  benchmark::Shutdown();
  return 0;
}
