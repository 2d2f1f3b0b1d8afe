// How much of the gradient all-reduce hides behind the backward pass, on 2 ranks.
//
//   bazel run -c opt //parallel:overlap_benchmark                # re-launches itself: mpirun -np 2
//
// A decoder LM whose float32 gradients are large enough to matter (d = 512, 6 layers, vocab
// 8192: 27M parameters, 108 MB of gradients, 7 buckets of 16 MiB) runs forward + backward +
// gradient sync on one micro-batch (4 x 128 tokens), three ways, side by side:
//   no_sync   each rank alone (local communicator): the compute time T_compute
//   after     all collectives after the backward (parallel.overlap = false): T_after
//   overlap   buckets start during the backward (the default): T_overlap
// communication = T_after - T_compute; hidden = (T_after - T_overlap) / communication.
// One compute thread per rank (2 ranks on 2 cores), the step time is the median over iterations.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "core/config.pb.h"
#include "core/malloc_tuning.h"
#include "models/registry.h"
#include "parallel/communicator.h"
#include "parallel/data_parallel.h"
#include "parallel/internal/mpi_relaunch.h"

namespace {

loom::parallel::Communicator* g_comm = nullptr;
loom::parallel::Communicator* g_local = nullptr;
std::map<std::string, double> g_median;

void BM_Step(benchmark::State& state, const std::string& mode) {
  loom::ModelConfig config;
  config.set_vocab_size(8192);
  config.set_num_layers(6);
  config.set_d_model(512);
  config.mutable_mixer()->set_num_heads(8);
  auto model = *loom::models::BuildLanguageModel(config, 7);
  loom::parallel::DataParallel::Options opt;
  opt.overlap = mode == "overlap";
  auto dp = *loom::parallel::DataParallel::Create(mode == "no_sync" ? g_local : g_comm,
                                                  {{"model", model->parameters()}}, opt);
  at::Tensor x = at::randint(0, 8192, {4, 128}, at::kLong);
  at::Tensor y = at::randint(0, 8192, {4, 128}, at::kLong);
  auto step = [&] {
    dp->ZeroGrad();
    dp->SetLastMicroBatch(true);
    model->Loss(x, y).backward();
    absl::Status s = dp->FinishGradientSync();
    if (!s.ok()) state.SkipWithError(std::string(s.message()).c_str());
  };
  step();
  std::vector<double> times;
  for (auto _ : state) {
    g_comm->Barrier().IgnoreError();
    const auto t0 = std::chrono::steady_clock::now();
    step();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(s);
    times.push_back(s);
  }
  std::sort(times.begin(), times.end());
  g_median[mode] = times[times.size() / 2];
  state.counters["buckets"] = static_cast<double>(dp->sizes().buckets);
  state.counters["grad_MB"] = static_cast<double>(dp->sizes().grad_elements) * 4 / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  loom::parallel::internal::RelaunchUnderMpirunIfAlone(argc, argv, 2, "overlap_benchmark");
  auto world = loom::parallel::DiscoverWorld();
  if (!world.ok() || world->source == "none") return 1;
  loom::ConfigureAllocatorForTraining();
  at::set_num_threads(1);
  auto comm = loom::parallel::CreateCommunicator(*world);
  auto local = loom::parallel::CreateCommunicator(loom::parallel::WorldInfo{});
  if (!comm.ok() || !local.ok()) return 1;
  g_comm = comm->get();
  g_local = local->get();
  for (const char* mode : {"no_sync", "after", "overlap"}) {
    benchmark::RegisterBenchmark((std::string("step/") + mode).c_str(),
                                 [mode](benchmark::State& s) { BM_Step(s, mode); })
        ->UseManualTime()
        ->Iterations(9)
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::Initialize(&argc, argv);
  if (g_comm->rank() == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    loom::parallel::internal::QuietReporter quiet;
    benchmark::RunSpecifiedBenchmarks(&quiet);
  }
  if (g_comm->rank() == 0 && g_median.size() == 3) {
    const double c = g_median["no_sync"], a = g_median["after"], o = g_median["overlap"];
    std::printf("\n## Gradient sync overlap, %d ranks (median step, ms)\n\n", g_comm->world_size());
    std::printf("| compute only | sync after backward | sync overlapped | communication | hidden |\n");
    std::printf("|---|---|---|---|---|\n| %.1f | %.1f | %.1f | %.1f | %.0f%% |\n", c * 1e3,
                a * 1e3, o * 1e3, (a - c) * 1e3, a > c ? 100.0 * (a - o) / (a - c) : 0.0);
  }
  benchmark::Shutdown();
  return 0;
}
