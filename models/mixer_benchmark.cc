// Sequence mixers on long sequences, measured side by side on CPU.
//
//   bazel run -c opt //models:mixer_benchmark
//   bazel run -c opt //models:mixer_benchmark -- --lengths=1024,4096 --skip_generation
//
// Part 1 (training): forward + backward of one mixer layer, H = 256, batch 1, float32, 2 threads,
// at L = 1K, 4K, 16K (and 64K for the convolutional mixers): causal attention (4 heads, RoPE,
// ATen's scaled_dot_product_attention), S4 (DPLR, LegS, N = 64), S4D (S4D-Inv, N = 64, ZOH) and
// SGConv (kernel_dim 64). Time (min over iterations) and peak tensor memory of the step (counted
// by core/tensor_memory), then each mixer's growth exponent: the least-squares slope of log time
// against log L (L^2 gives 2; L log L gives a little over 1) and the slope of log(time / L log L),
// which is ~0 for an L log L method; also the slope between the two longest lengths, where the
// asymptotic term dominates.
//
// Part 2 (generation): tokens/s of one S4 layer producing tokens one at a time at context
// length 4K, in recurrent step mode (dense O(N^2) and linear O(N) state updates) against
// recomputing the layer's convolution over the whole context for each new token (with the kernel
// cached, i.e. only the FFT convolution and the output projection recomputed, and without).
//
// Flags (besides Google Benchmark's): --lengths=a,b (attention stops at 16K), --skip_train,
// --skip_generation, --threads=N (default 2), --context=L (generation, default 4096).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "core/malloc_tuning.h"
#include "core/tensor_memory.h"
#include "kernels/fft_conv.h"
#include "models/mixer.h"
#include "models/s4.h"
#include "models/sgconv.h"

namespace {

using loom::models::Mixer;

constexpr int64_t kH = 256;

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::shared_ptr<Mixer> MakeMixer(const std::string& kind, int64_t L) {
  using namespace loom::models;
  if (kind == "attention") {
    return std::make_shared<CausalSelfAttention>(kH, kH, 4, 4, 10000.0, 0.02, at::kFloat);
  }
  if (kind == "sgconv") {
    SgConvOptions o;
    o.d_model = kH;
    o.l_max = L;
    o.kernel_dim = 64;
    return std::make_shared<SgConv>(o);
  }
  S4Options o;
  o.kernel.d_model = kH;
  o.kernel.d_state = 64;
  o.kernel.n_ssm = 1;
  o.kernel.l_max = L;
  o.kernel.mode = kind == "s4" ? "nplr" : "diag";
  o.kernel.init = kind == "s4" ? "legs" : "diag-inv";
  return std::make_shared<S4Block>(o);
}

// ---- part 1: fwd+bwd vs L -------------------------------------------------------------------

struct TrainResult {
  double seconds = 0;
  int64_t peak_bytes = 0;
};
std::map<std::pair<std::string, int64_t>, TrainResult> g_train;

void BM_MixerForwardBackward(benchmark::State& state, const std::string& kind, int64_t L) {
  auto mixer = MakeMixer(kind, L);
  at::Tensor x = at::randn({1, L, kH}).requires_grad_(true);
  at::Tensor gy = at::randn({1, L, kH});
  std::vector<at::Tensor> params = mixer->parameters();
  auto step = [&] {
    for (auto& p : params) p.mutable_grad() = at::Tensor();
    x.mutable_grad() = at::Tensor();
    mixer->Forward(x).backward(gy);
  };
  step();  // warm-up (first touch, thread pool, FFT plans)
  for (auto& p : params) p.mutable_grad() = at::Tensor();
  x.mutable_grad() = at::Tensor();
  const int64_t live = loom::TensorMemoryLiveBytes();
  loom::ResetTensorMemoryPeak();
  double best = 1e30;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    step();
    const double s = Seconds(start);
    state.SetIterationTime(s);
    best = std::min(best, s);
  }
  const int64_t peak = loom::TensorMemoryPeakBytes() - live;
  state.counters["min_ms"] = best * 1e3;
  state.counters["peak_MiB"] = static_cast<double>(peak) / (1 << 20);
  g_train[{kind, L}] = {best, peak};
}

// Least-squares slope of log(y) against log(x).
double Slope(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = x.size();
  if (n < 2) return std::nan("");
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) {
    mx += std::log(x[i]);
    my += std::log(y[i]);
  }
  mx /= n;
  my /= n;
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += (std::log(x[i]) - mx) * (std::log(y[i]) - my);
    den += (std::log(x[i]) - mx) * (std::log(x[i]) - mx);
  }
  return num / den;
}

void PrintTrainSummary(const std::vector<std::string>& kinds, const std::vector<int64_t>& lengths,
                       int threads) {
  std::printf("\n## Forward+backward of one mixer, H = %lld, batch 1, float32, %d threads\n\n",
              static_cast<long long>(kH), threads);
  std::printf("| mixer |");
  for (int64_t L : lengths) std::printf(" L=%lldK ms / MiB |", static_cast<long long>(L / 1024));
  std::printf(" exponent of L | exponent, last two L | exponent of time/(L log L) |\n|---|");
  for (size_t i = 0; i < lengths.size(); ++i) std::printf("---|");
  std::printf("---|---|---|\n");
  for (const std::string& kind : kinds) {
    std::printf("| %s |", kind.c_str());
    std::vector<double> ls, ts, tn;
    for (int64_t L : lengths) {
      auto it = g_train.find({kind, L});
      if (it == g_train.end()) {
        std::printf(" - |");
        continue;
      }
      std::printf(" %.1f / %.0f |", it->second.seconds * 1e3,
                  static_cast<double>(it->second.peak_bytes) / (1 << 20));
      ls.push_back(static_cast<double>(L));
      ts.push_back(it->second.seconds);
      tn.push_back(it->second.seconds / (L * std::log2(static_cast<double>(L))));
    }
    const size_t n = ls.size();
    const double last = n >= 2 ? Slope({ls[n - 2], ls[n - 1]}, {ts[n - 2], ts[n - 1]})
                               : std::nan("");
    std::printf(" %.2f | %.2f | %.2f |\n", Slope(ls, ts), last, Slope(ls, tn));
  }
}

// ---- part 2: generation --------------------------------------------------------------------

std::map<std::string, double> g_gen;  // tokens per second

void BM_Generate(benchmark::State& state, const std::string& how, int64_t context) {
  torch::NoGradGuard no_grad;
  loom::models::S4Options o;
  o.kernel.d_model = kH;
  o.kernel.d_state = 64;
  o.kernel.n_ssm = 1;
  o.kernel.l_max = context;
  auto block = std::make_shared<loom::models::S4Block>(o);
  at::Tensor x = at::randn({1, context, kH});
  double tokens_per_s = 0;
  if (how == "step_dense" || how == "step_linear") {
    block->SetupStep(how == "step_dense" ? "dense" : "linear");
    loom::models::SsmStepState s = block->DefaultState(1);
    const int64_t n = 256;
    for (int64_t t = 0; t < 16; ++t) block->Step(x.select(1, t), s);  // warm-up
    double best = 1e30;
    for (auto _ : state) {
      const auto start = std::chrono::steady_clock::now();
      for (int64_t t = 0; t < n; ++t) benchmark::DoNotOptimize(block->Step(x.select(1, t), s));
      const double sec = Seconds(start);
      state.SetIterationTime(sec / n);
      best = std::min(best, sec / n);
    }
    tokens_per_s = 1.0 / best;
  } else {
    // One new token = the layer over the whole context again; its output at the last position
    // is the new token's. "conv_cached_kernel" keeps the kernel (the parameters do not change
    // while generating), so only the FFT convolution, D skip and output projection are redone.
    const at::Tensor kernel = block->layer().kernel().Kernel(context);
    auto recompute = [&] {
      if (how == "conv_full") return block->Forward(x).select(1, context - 1);
      at::Tensor xt = x.transpose(1, 2);
      at::Tensor y = loom::kernels::FftLongConv(xt, kernel, 2 * context);
      y = (y + xt.unsqueeze(1) * block->layer().D.unsqueeze(0).unsqueeze(-1)).flatten(1, 2);
      at::Tensor last = y.select(-1, context - 1);
      return at::glu(block->output_linear().Forward(at::gelu(last)), -1);
    };
    recompute();
    double best = 1e30;
    for (auto _ : state) {
      const auto start = std::chrono::steady_clock::now();
      benchmark::DoNotOptimize(recompute());
      const double sec = Seconds(start);
      state.SetIterationTime(sec);
      best = std::min(best, sec);
    }
    tokens_per_s = 1.0 / best;
  }
  state.counters["tokens_per_s"] = tokens_per_s;
  g_gen[how] = tokens_per_s;
}

void PrintGenerationSummary(int64_t context, int threads) {
  std::printf("\n## Generation with one S4 layer (H = %lld, N = 64) at context %lld, %d threads\n\n",
              static_cast<long long>(kH), static_cast<long long>(context), threads);
  std::printf("| mode | tokens/s | vs recomputing the convolution (cached kernel) | vs full "
              "recompute |\n|---|---|---|---|\n");
  const double cached = g_gen["conv_cached_kernel"], full = g_gen["conv_full"];
  for (const std::string how : {"step_dense", "step_linear", "conv_cached_kernel", "conv_full"}) {
    if (!g_gen.count(how)) continue;
    std::printf("| %s | %.0f | %.1fx | %.1fx |\n", how.c_str(), g_gen[how], g_gen[how] / cached,
                g_gen[how] / full);
  }
}

std::vector<int64_t> ParseList(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoll(item));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  loom::ConfigureAllocatorForTraining();
  loom::InstallTensorMemoryCounter();
  benchmark::Initialize(&argc, argv);
  std::vector<int64_t> lengths = {1024, 4096, 16384, 65536};
  bool train = true, generation = true;
  int threads = 2;
  int64_t context = 4096;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const std::string& name) -> const char* {
      return a.rfind(name + "=", 0) == 0 ? argv[i] + name.size() + 1 : nullptr;
    };
    if (const char* v = value("--lengths")) {
      lengths = ParseList(v);
    } else if (const char* v = value("--threads")) {
      threads = std::atoi(v);
    } else if (const char* v = value("--context")) {
      context = std::atoll(v);
    } else if (a == "--skip_train") {
      train = false;
    } else if (a == "--skip_generation") {
      generation = false;
    } else {
      std::fprintf(stderr, "mixer_benchmark: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  at::set_num_threads(threads);
  at::manual_seed(1005);
  const std::vector<std::string> kinds = {"attention", "s4", "s4d", "sgconv"};
  if (train) {
    for (const std::string& kind : kinds) {
      for (int64_t L : lengths) {
        if (kind == "attention" && L > 16384) continue;  // L^2: minutes per step beyond 16K
        benchmark::RegisterBenchmark(
            ("mixer_fwd_bwd/" + kind + "/L=" + std::to_string(L)).c_str(),
            [kind, L](benchmark::State& s) { BM_MixerForwardBackward(s, kind, L); })
            ->UseManualTime()
            ->Iterations(L >= 16384 ? 2 : 4)
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
  if (generation) {
    for (const std::string how : {"step_dense", "step_linear", "conv_cached_kernel", "conv_full"}) {
      benchmark::RegisterBenchmark(("generate/" + how + "/context=" + std::to_string(context)).c_str(),
                                   [how, context](benchmark::State& s) { BM_Generate(s, how, context); })
          ->UseManualTime()
          ->Iterations(5)
          ->Unit(benchmark::kMicrosecond);
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  if (train) PrintTrainSummary(kinds, lengths, threads);
  if (generation) PrintGenerationSummary(context, threads);
  benchmark::Shutdown();
  return 0;
}
