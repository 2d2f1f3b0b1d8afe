// Structured FFN speed on CPU, measured (not guessed).
//
//   bazel run -c opt //models:ffn_benchmark
//   bazel run -c opt //models:ffn_benchmark -- --widths=1024,2048 --skip_inference
//
// Part 1 (training): forward + backward of one FeedForward block (GELU, biases, f = 4d, input
// (4096 tokens, d) with requires_grad) for the dense FFN and the structured FFNs at the paper's
// 63% / 32% settings (spec structured_ffn.md §2.7: LowRank R = d/2, d/4; BlockShuffle B = 2, 4;
// BlockDense B = 4, R = 3d/4, 3d/8), widths d = 1024, 2048, 4096, float32, 2 threads. The summary
// prints each speed-up over dense next to its ideal (dense FFN matmul FLOPs / structured FFN matmul
// FLOPs = dense weight entries / structured weight entries) and the percent of ideal, then a
// `target:` line naming every variant at d >= 2048 below 90% of its ideal (the target).
//
// Part 2 (inference pre-merge threshold): forward only, no grad, of one structured layer of the
// fc1 shape (d -> 4d) applied in structured form vs as its cached merged dense matrix
// (StructuredLinear::MergedWeight()), token counts 1 ... 4096, widths 1024 and 2048; prints the
// crossover token count per variant (the smallest count at which structured is faster).
//
// Flags (besides Google Benchmark's): --widths=a,b,c (training widths), --infer_widths=a,b,
// --skip_train, --skip_inference, --threads=N (default 2), --iters=N (timed iterations per case;
// default 5 / 3 / 2 at d = 1024 / 2048 / 4096), --rounds=N (time the training part in N
// interleaved rounds, one step of every variant per round; prints minimum and median ratios).
#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "core/malloc_tuning.h"
#include "models/ffn.h"
#include "models/structured_linear.h"

namespace {

using loom::models::FeedForward;
using loom::models::MakeProjection;

constexpr int64_t kTokens = 4096;
constexpr double kInitStd = 0.02;

struct Variant {
  std::string name;   // row label, e.g. "lowrank R=1024 (63%)"
  std::string type;   // MakeProjection type
  int64_t rank = 0;
  int64_t nblocks = 0;
};

std::vector<Variant> Variants(int64_t d) {
  return {
      {"dense", "dense", 0, 0},
      {"lowrank R=" + std::to_string(d / 2) + " (63%)", "lowrank", d / 2, 0},
      {"lowrank R=" + std::to_string(d / 4) + " (32%)", "lowrank", d / 4, 0},
      {"blockdense B=4 R=" + std::to_string(3 * d / 4) + " (63%)", "blockdense", 3 * d / 4, 4},
      {"blockdense B=4 R=" + std::to_string(3 * d / 8) + " (32%)", "blockdense", 3 * d / 8, 4},
      {"blockshuffle B=2 (63%)", "blockshuffle", 0, 2},
      {"blockshuffle B=4 (32%)", "blockshuffle", 0, 4},
  };
}

int64_t NumMatmulWeights(FeedForward& ffn) {
  int64_t n = 0;
  for (const auto& p : ffn.named_parameters()) {
    if (p.value().dim() >= 2) n += p.value().numel();
  }
  return n;
}

// Structured layers use InitMode::kRandomFast: speed does not depend on the values, and the
// reference init's float64 SVDs take minutes at d = 4096.
std::shared_ptr<loom::models::Projection> MakeLayer(const Variant& v, int64_t in, int64_t out,
                                                    bool bias) {
  using namespace loom::models;
  const auto fast = InitMode::kRandomFast;
  if (v.type == "lowrank") {
    return std::make_shared<LowRankLinear>(in, out, v.rank, bias, kInitStd, at::kFloat, fast);
  }
  if (v.type == "blockdense") {
    return std::make_shared<BlockDenseLinear>(in, out, v.rank, v.nblocks, bias, kInitStd,
                                              at::kFloat, fast);
  }
  if (v.type == "blockshuffle") {
    return std::make_shared<BlockShuffleLinear>(in, out, v.nblocks, bias, kInitStd, at::kFloat,
                                                fast);
  }
  return MakeProjection(v.type, in, out, v.rank, v.nblocks, bias, kInitStd, at::kFloat);
}

std::shared_ptr<FeedForward> MakeFeedForward(const Variant& v, int64_t d) {
  return std::make_shared<FeedForward>(MakeLayer(v, d, 4 * d, true), MakeLayer(v, 4 * d, d, true),
                                       loom::models::Activation::kGelu);
}

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// ---- part 1: training fwd+bwd -----------------------------------------------------------------

// One timed unit: gradients cleared, forward, backward with a fixed output gradient.
void FwdBwdStep(FeedForward& ffn, const std::vector<at::Tensor>& params, at::Tensor& x,
                const at::Tensor& gy) {
  for (const auto& p : params) p.mutable_grad() = at::Tensor();
  x.mutable_grad() = at::Tensor();
  ffn.Forward(x).backward(gy);
}

struct TrainResult {
  double seconds = 0;  // per fwd+bwd
  int64_t weights = 0;
};
std::map<std::pair<int64_t, std::string>, TrainResult> g_train;

void BM_FfnForwardBackward(benchmark::State& state, Variant v, int64_t d) {
  auto ffn = MakeFeedForward(v, d);
  at::Tensor x = at::randn({kTokens, d}).requires_grad_(true);
  at::Tensor gy = at::randn({kTokens, d});
  const std::vector<at::Tensor> params = ffn->parameters();
  auto step = [&] { FwdBwdStep(*ffn, params, x, gy); };
  step();  // warm-up: first-touch of every buffer, OpenMP pool, oneDNN/MKL kernels
  if (const char* dir = std::getenv("FFN_BENCHMARK_TRACE_DIR")) {
    // One profiled step per benchmark (chrome trace), for finding copies; not timed.
    std::string name = "d" + std::to_string(d) + "_" + v.type + "_" +
                       std::to_string(v.rank) + "_" + std::to_string(v.nblocks) + ".trace";
    torch::autograd::profiler::RecordProfile guard(std::string(dir) + "/" + name);
    step();
  }
  double best = 1e30, total = 0;
  int64_t n = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    step();
    const double s = Seconds(start);
    state.SetIterationTime(s);
    best = std::min(best, s);
    total += s;
    ++n;
  }
  const double flops = 3.0 * 2.0 * kTokens * NumMatmulWeights(*ffn);
  state.counters["GFLOP/s"] = flops / best / 1e9;
  state.counters["min_ms"] = best * 1e3;
  // The minimum over iterations: the least perturbed by the VM's neighbours.
  g_train[{d, v.name}] = {best, NumMatmulWeights(*ffn)};
}

// Interleaved rounds (--rounds=N): every variant of a width is built and warmed up, then each
// round times one fwd+bwd of every variant in turn. The VM's speed drifts by several percent over
// minutes; one variant after another lets that drift land between dense and a structured variant,
// while rounds spread it over all of them. Reports the minimum (into g_train, as the default mode)
// and the median per variant.
std::map<std::pair<int64_t, std::string>, double> g_train_median;

void RunInterleaved(int64_t d, int rounds) {
  struct Case {
    Variant v;
    std::shared_ptr<FeedForward> ffn;
    std::vector<at::Tensor> params;
    std::vector<double> times;
  };
  std::vector<Case> cases;
  for (const Variant& v : Variants(d)) {
    auto ffn = MakeFeedForward(v, d);
    cases.push_back({v, ffn, ffn->parameters(), {}});
  }
  at::Tensor x = at::randn({kTokens, d}).requires_grad_(true);
  at::Tensor gy = at::randn({kTokens, d});
  auto step = [&](Case& c) { FwdBwdStep(*c.ffn, c.params, x, gy); };
  for (Case& c : cases) step(c);  // warm-up
  for (int r = 0; r < rounds; ++r) {
    for (Case& c : cases) {
      const auto start = std::chrono::steady_clock::now();
      step(c);
      c.times.push_back(Seconds(start));
    }
    std::fprintf(stderr, "d=%lld: round %d/%d\n", static_cast<long long>(d), r + 1, rounds);
  }
  for (Case& c : cases) {
    std::sort(c.times.begin(), c.times.end());
    g_train[{d, c.v.name}] = {c.times.front(), NumMatmulWeights(*c.ffn)};
    g_train_median[{d, c.v.name}] = c.times[c.times.size() / 2];
  }
}

// ---- part 2: structured vs merged inference ---------------------------------------------------

struct InferKey {
  int64_t d;
  std::string variant;
  int64_t tokens;
  bool merged;
  bool operator<(const InferKey& o) const {
    return std::tie(d, variant, tokens, merged) < std::tie(o.d, o.variant, o.tokens, o.merged);
  }
};
std::map<InferKey, double> g_infer;  // seconds per call (min over repetitions of batches)

void BM_LayerInference(benchmark::State& state, Variant v, int64_t d, int64_t tokens,
                       bool merged) {
  // One layer (and merged matrix) per (d, variant), shared by every token count: the reference
  // init (SVD / polar factors in float64) is slow at these widths.
  static std::map<std::pair<int64_t, std::string>,
                  std::pair<std::shared_ptr<loom::models::StructuredLinear>, at::Tensor>>
      layers;
  at::NoGradGuard no_grad;
  auto& entry = layers[{d, v.name}];
  if (!entry.first) {
    entry.first = std::dynamic_pointer_cast<loom::models::StructuredLinear>(
        MakeLayer(v, d, 4 * d, false));
    entry.first->eval();
    // What SetMergedForInference caches.
    entry.second = entry.first->MergedWeight().detach().contiguous();
  }
  auto layer = entry.first;
  const at::Tensor& w = entry.second;
  at::Tensor x = at::randn({tokens, d});
  auto call = [&] {
    return merged ? at::linear(x, w) : layer->StructuredForward(x);
  };
  call();
  // Batches of calls sized to ~20 ms; keep the fastest batch.
  int64_t per_batch = 1;
  {
    const auto start = std::chrono::steady_clock::now();
    call();
    const double s = Seconds(start);
    per_batch = std::max<int64_t>(1, static_cast<int64_t>(0.02 / std::max(s, 1e-7)));
  }
  double best = 1e30;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < per_batch; ++i) benchmark::DoNotOptimize(call());
    const double s = Seconds(start);
    state.SetIterationTime(s / per_batch);
    best = std::min(best, s / per_batch);
  }
  state.counters["us_per_call"] = best * 1e6;
  g_infer[{d, v.name, tokens, merged}] = best;
}

// ---- flags ------------------------------------------------------------------------------------

std::vector<int64_t> ParseList(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoll(item));
  return out;
}

struct Flags {
  std::vector<int64_t> widths = {1024, 2048, 4096};
  std::vector<int64_t> infer_widths = {1024, 2048};
  bool train = true;
  bool inference = true;
  int threads = 2;
  int iters = 0;  // timed fwd+bwd iterations per case; 0: 5 / 3 / 2 by width
  int rounds = 0;  // > 0: interleaved rounds instead of one variant after another
};

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const std::string& name) -> const char* {
      return a.rfind(name + "=", 0) == 0 ? argv[i] + name.size() + 1 : nullptr;
    };
    if (const char* v = value("--widths")) {
      f.widths = ParseList(v);
    } else if (const char* v = value("--infer_widths")) {
      f.infer_widths = ParseList(v);
    } else if (const char* v = value("--rounds")) {
      f.rounds = std::atoi(v);
    } else if (const char* v = value("--iters")) {
      f.iters = std::atoi(v);
    } else if (const char* v = value("--threads")) {
      f.threads = std::atoi(v);
    } else if (a == "--skip_train") {
      f.train = false;
    } else if (a == "--skip_inference") {
      f.inference = false;
    } else {
      std::fprintf(stderr, "ffn_benchmark: unknown flag %s\n", argv[i]);
      std::exit(2);
    }
  }
  return f;
}

// ---- summary ----------------------------------------------------------------------------------

// Issue 3's target: at widths >= 2048 every structured variant reaches 90% of its ideal speed-up.
constexpr double kTargetPercentOfIdeal = 90.0;
constexpr int64_t kTargetMinWidth = 2048;

void PrintTrainSummary(const Flags& flags) {
  std::printf("\n## Forward+backward, %lld tokens, float32, %d threads (min over iterations)\n\n",
              static_cast<long long>(kTokens), flags.threads);
  const bool medians = !g_train_median.empty();
  int checked = 0;
  std::string misses;
  std::printf("| d | variant | ms | speed-up | ideal | %% of ideal |%s\n",
              medians ? " % of ideal (medians) |" : "");
  std::printf("|---|---|---|---|---|---|%s\n", medians ? "---|" : "");
  for (int64_t d : flags.widths) {
    auto dense = g_train.find({d, "dense"});
    if (dense == g_train.end()) continue;
    for (const Variant& v : Variants(d)) {
      auto it = g_train.find({d, v.name});
      if (it == g_train.end()) continue;
      if (v.type == "dense") {
        std::printf("| %lld | %s | %.1f | 1.00x | 1.00x | - |%s\n", static_cast<long long>(d),
                    v.name.c_str(), it->second.seconds * 1e3, medians ? " - |" : "");
        continue;
      }
      const double speedup = dense->second.seconds / it->second.seconds;
      const double ideal = static_cast<double>(dense->second.weights) / it->second.weights;
      std::printf("| %lld | %s | %.1f | %.2fx | %.2fx | %.0f%% |", static_cast<long long>(d),
                  v.name.c_str(), it->second.seconds * 1e3, speedup, ideal,
                  100.0 * speedup / ideal);
      auto med = g_train_median.find({d, v.name});
      auto dense_med = g_train_median.find({d, "dense"});
      if (med != g_train_median.end() && dense_med != g_train_median.end()) {
        std::printf(" %.0f%% |", 100.0 * dense_med->second / med->second / ideal);
      }
      std::printf("\n");
      if (d >= kTargetMinWidth) {
        ++checked;
        if (100.0 * speedup / ideal < kTargetPercentOfIdeal) {
          // One decimal: the table rounds 89.6% to "90%", which must not read as a pass.
          char pct[32];
          std::snprintf(pct, sizeof(pct), "%.1f%%", 100.0 * speedup / ideal);
          misses += (misses.empty() ? "" : ", ") + v.name + " at d=" + std::to_string(d) + " (" +
                    pct + ")";
        }
      }
    }
  }
  if (checked > 0) {
    // The speed target of the structured-FFN issue, on the minimum-time column.
    const std::string verdict = misses.empty()
                                    ? "met by all " + std::to_string(checked) + " variants"
                                    : "missed by " + misses;
    std::printf("\ntarget: >= %.0f%% of ideal at d >= %lld: %s\n", kTargetPercentOfIdeal,
                static_cast<long long>(kTargetMinWidth), verdict.c_str());
  }
}

void PrintInferenceSummary(const Flags& flags, const std::vector<int64_t>& token_counts) {
  std::printf("\n## Inference, one d -> 4d layer: structured / merged time per call (us), "
              "float32, %d threads\n\n", flags.threads);
  std::printf("| d | variant |");
  for (int64_t t : token_counts) std::printf(" %lld |", static_cast<long long>(t));
  std::printf(" crossover |\n|---|---|");
  for (size_t i = 0; i < token_counts.size(); ++i) std::printf("---|");
  std::printf("---|\n");
  std::vector<int64_t> crossovers;
  for (int64_t d : flags.infer_widths) {
    for (const Variant& v : Variants(d)) {
      if (v.type == "dense") continue;
      std::printf("| %lld | %s |", static_cast<long long>(d), v.name.c_str());
      int64_t crossover = -1;
      for (int64_t t : token_counts) {
        const double s = g_infer[{d, v.name, t, false}], m = g_infer[{d, v.name, t, true}];
        std::printf(" %.0f / %.0f |", s * 1e6, m * 1e6);
        if (crossover < 0 && s < m) crossover = t;
      }
      if (crossover < 0) {
        std::printf(" > %lld |\n", static_cast<long long>(token_counts.back()));
      } else {
        std::printf(" %lld |\n", static_cast<long long>(crossover));
        crossovers.push_back(crossover);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  loom::ConfigureAllocatorForTraining();
  benchmark::Initialize(&argc, argv);
  const Flags flags = ParseFlags(argc, argv);
  at::set_num_threads(flags.threads);
  at::manual_seed(1005);

  if (flags.train && flags.rounds > 0) {
    for (int64_t d : flags.widths) RunInterleaved(d, flags.rounds);
  }
  if (flags.train && flags.rounds == 0) {
    for (int64_t d : flags.widths) {
      // ~3.3 TFLOP per dense fwd+bwd at d = 4096: few iterations at the big widths.
      const int64_t iters = flags.iters > 0 ? flags.iters : d >= 4096 ? 2 : d >= 2048 ? 3 : 5;
      for (const Variant& v : Variants(d)) {
        benchmark::RegisterBenchmark(
            ("ffn_fwd_bwd/d=" + std::to_string(d) + "/" + v.name).c_str(),
            [v, d](benchmark::State& s) { BM_FfnForwardBackward(s, v, d); })
            ->UseManualTime()
            ->Iterations(iters)
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
  const std::vector<int64_t> token_counts = {1, 4, 16, 64, 256, 1024, 4096};
  if (flags.inference) {
    for (int64_t d : flags.infer_widths) {
      for (const Variant& v : Variants(d)) {
        if (v.type == "dense") continue;
        for (int64_t t : token_counts) {
          for (bool merged : {false, true}) {
            benchmark::RegisterBenchmark(
                ("layer_infer/d=" + std::to_string(d) + "/" + v.name + "/tokens=" +
                 std::to_string(t) + (merged ? "/merged" : "/structured"))
                    .c_str(),
                [v, d, t, merged](benchmark::State& s) { BM_LayerInference(s, v, d, t, merged); })
                ->UseManualTime()
                ->Iterations(5)
                ->Unit(benchmark::kMicrosecond);
          }
        }
      }
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  if (flags.train) PrintTrainSummary(flags);
  if (flags.inference) PrintInferenceSummary(flags, token_counts);
  benchmark::Shutdown();
  return 0;
}
