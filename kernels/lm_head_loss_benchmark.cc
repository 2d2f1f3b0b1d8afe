// The fused LM head + cross-entropy against what a plain PyTorch loop runs (at::linear, then
// at::cross_entropy_loss, then autograd), forward + backward, at the two shapes of the throughput
// race: "small" (2048 rows = batch 8 x seq 256, d 256) and "large" (4096 rows, d 512), both with
// the GPT-2 vocabulary (50257), float32, 2 threads, tuned allocator (as in training).
//
//   bazel run -c opt //kernels:lm_head_loss_benchmark [-- --benchmark_filter=small]
//
// Prints, per shape, ms per step of each and the speed-up, then the fused path at other chunk
// sizes. GFLOP/s counts the head's three GEMMs (6 * rows * vocab * d).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "core/malloc_tuning.h"
#include "kernels/lm_head_loss.h"

namespace {

constexpr int64_t kVocab = 50257;

struct Shape {
  std::string name;
  int64_t rows, d;
};

const std::vector<Shape>& Shapes() {
  static const std::vector<Shape> shapes = {{"small", 2048, 256}, {"large", 4096, 512}};
  return shapes;
}

std::map<std::pair<std::string, int64_t>, double> g_best;  // (shape, chunk; -1 = unfused) -> s

void BM_HeadLoss(benchmark::State& state, const Shape& s, int64_t chunk) {
  at::manual_seed(1);
  at::Tensor h = at::randn({s.rows, s.d}).requires_grad_(true);
  at::Tensor w = (at::randn({kVocab, s.d}) * 0.05).requires_grad_(true);
  const at::Tensor t = at::randint(kVocab, {s.rows}, at::kLong);
  auto step = [&] {
    at::Tensor loss;
    if (chunk < 0) {
      loss = at::cross_entropy_loss(at::linear(h, w), t);
    } else {
      loss = loom::kernels::LmHeadCrossEntropy(
          h, w, t, loom::kernels::LmHeadLossOptions().set_chunk_rows(chunk));
    }
    loss.backward();
    h.mutable_grad().reset();
    w.mutable_grad().reset();
  };
  step();  // warm-up: first-touch page faults of fresh buffers are not a steady-state cost
  double best = 1e30;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(sec);
    best = std::min(best, sec);
  }
  state.counters["GFLOP/s"] = 6.0 * s.rows * kVocab * s.d / best / 1e9;
  g_best[{s.name, chunk}] = best;
}

}  // namespace

int main(int argc, char** argv) {
  loom::ConfigureAllocatorForTraining();
  at::set_num_threads(2);
  benchmark::Initialize(&argc, argv);
  const std::vector<int64_t> chunks = {-1, 0, 64, 128, 256, 512, 1024};
  for (const Shape& s : Shapes()) {
    for (int64_t c : chunks) {
      const std::string name = "head_loss/" + s.name + "/" +
                               (c < 0 ? std::string("unfused") : "fused_chunk=" + std::to_string(c));
      benchmark::RegisterBenchmark(name.c_str(), [s, c](benchmark::State& st) {
        BM_HeadLoss(st, s, c);
      })->UseManualTime()->Iterations(s.d >= 512 ? 3 : 5)->Unit(benchmark::kMillisecond);
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::printf("\n| shape | unfused ms | fused ms (default chunk) | speed-up | best chunk |\n");
  std::printf("|---|---|---|---|---|\n");
  for (const Shape& s : Shapes()) {
    auto unfused = g_best.find({s.name, -1}), fused = g_best.find({s.name, 0});
    if (unfused == g_best.end() || fused == g_best.end()) continue;
    int64_t best_chunk = 0;
    for (int64_t c : chunks) {
      auto it = g_best.find({s.name, c});
      if (c >= 0 && it != g_best.end() && it->second < g_best[{s.name, best_chunk}]) best_chunk = c;
    }
    std::printf("| %s (%lld x %lld, V %lld) | %.1f | %.1f | %.2fx | %lld (%.1f ms) |\n",
                s.name.c_str(), static_cast<long long>(s.rows), static_cast<long long>(s.d),
                static_cast<long long>(kVocab), unfused->second * 1e3, fused->second * 1e3,
                unfused->second / fused->second, static_cast<long long>(best_chunk),
                g_best[{s.name, best_chunk}] * 1e3);
  }
  return 0;
}
