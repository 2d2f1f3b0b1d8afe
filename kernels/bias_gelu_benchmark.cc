// Fused bias+GELU (forward, and backward with the bias gradient) against the ATen ops a plain
// PyTorch FFN runs for the same work, at an FFN activation of 4096 tokens x 8192 (d = 2048).
//
//   bazel run -c opt //kernels:bias_gelu_benchmark
//
// float32, 2 threads, tuned allocator (as in training). bytes_per_second counts the bytes the
// kernel must move (forward: read u, write y; backward: read g and u, write du). Each case warms
// up first: the first touch of a fresh 128 MiB output costs page faults that training never sees.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include "core/malloc_tuning.h"
#include "kernels/bias_gelu.h"

namespace {

constexpr int64_t kRows = 4096, kCols = 8192;

void BM_Forward(benchmark::State& state, bool fused) {
  at::Tensor u = at::randn({kRows, kCols}), b = at::randn({kCols});
  for (auto _ : state) {
    at::Tensor y = fused ? loom::kernels::BiasGeluForward(u, b) : at::gelu(u + b, "tanh");
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.SetBytesProcessed(state.iterations() * 2 * u.nbytes());
}

void BM_BackwardWithBiasGrad(benchmark::State& state, bool fused) {
  at::Tensor u = at::randn({kRows, kCols}), b = at::randn({kCols}), g = at::randn({kRows, kCols});
  for (auto _ : state) {
    at::Tensor du, db;
    if (fused) {
      std::tie(du, db) = loom::kernels::BiasGeluBackwardWithBiasGrad(g, u, b);
    } else {
      du = at::gelu_backward(g, u + b, "tanh");
      db = du.sum(0);
    }
    benchmark::DoNotOptimize(db.data_ptr());
  }
  state.SetBytesProcessed(state.iterations() * 3 * u.nbytes());
}

// The BlockShuffle FFN's variant: the input is a batched GEMM's (4, 4096, 2048) output read in
// runs of 512 (BiasGeluInterleaveBatches); the same bytes as above.
void BM_ForwardInterleaved(benchmark::State& state) {
  at::Tensor z = at::randn({4, kRows, kCols / 4}), b = at::randn({kCols});
  for (auto _ : state) {
    at::Tensor y = loom::kernels::BiasGeluInterleaveBatchesForward(z, b, 512);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.SetBytesProcessed(state.iterations() * 2 * z.nbytes());
}

void BM_BackwardInterleavedWithBiasGrad(benchmark::State& state) {
  at::Tensor z = at::randn({4, kRows, kCols / 4}), b = at::randn({kCols});
  at::Tensor g = at::randn({kRows, kCols});
  for (auto _ : state) {
    auto [dz, db] = loom::kernels::BiasGeluInterleaveBatchesBackward(g, z, b, 512);
    benchmark::DoNotOptimize(db.data_ptr());
  }
  state.SetBytesProcessed(state.iterations() * 3 * z.nbytes());
}

BENCHMARK_CAPTURE(BM_Forward, loom, true)->Unit(benchmark::kMillisecond)->MinWarmUpTime(0.3);
BENCHMARK_CAPTURE(BM_Forward, aten, false)->Unit(benchmark::kMillisecond)->MinWarmUpTime(0.3);
BENCHMARK_CAPTURE(BM_BackwardWithBiasGrad, loom, true)->Unit(benchmark::kMillisecond)->MinWarmUpTime(0.3);
BENCHMARK_CAPTURE(BM_BackwardWithBiasGrad, aten, false)->Unit(benchmark::kMillisecond)->MinWarmUpTime(0.3);
BENCHMARK(BM_ForwardInterleaved)->Unit(benchmark::kMillisecond)->MinWarmUpTime(0.3);
BENCHMARK(BM_BackwardInterleavedWithBiasGrad)->Unit(benchmark::kMillisecond)->MinWarmUpTime(0.3);

}  // namespace

int main(int argc, char** argv) {
  loom::ConfigureAllocatorForTraining();
  at::set_num_threads(2);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
