// `scale_check`: can this machine hold a model? Builds the model a run config describes, runs
// forward+backward (and optionally AdamW steps) on random tokens with a short sequence, and
// prints wall times and the process's peak resident memory after each phase.
//
//   bazel run -c opt //launch:scale_check -- --config=$PWD/launch/configs/lm/xl_lowrank_r512.textproto \
//       --seq_len=64 --batch=1 --steps=2 --optimizer=true
//
// Random tokens keep it independent of data; everything else (model, init, self-guided guides,
// optimizer) is what `train` would build.
#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <sys/resource.h>
#include <torch/optim/adamw.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "core/config.h"
#include "core/file_io.h"
#include "core/flops.h"
#include "core/malloc_tuning.h"
#include "models/registry.h"

ABSL_FLAG(std::string, config, "", "Run config (text proto)");
ABSL_FLAG(int, seq_len, 64, "Sequence length of the probe batch");
ABSL_FLAG(int, batch, 1, "Sequences in the probe batch");
ABSL_FLAG(int, steps, 1, "Forward+backward passes (each followed by an optimizer step with --optimizer)");
ABSL_FLAG(bool, optimizer, true, "Also run AdamW steps (optimizer state: 2 floats per parameter)");

namespace {

double PeakRssGiB() {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / (1024.0 * 1024.0);  // ru_maxrss is in KiB
}

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  loom::ConfigureAllocatorForTraining();
  auto overrides = loom::ExtractOverrideFlags(&argc, argv);
  if (!overrides.ok()) {
    std::fprintf(stderr, "scale_check: error: %s\n", std::string(overrides.status().message()).c_str());
    return 1;
  }
  absl::ParseCommandLine(argc, argv);
  auto config = loom::LoadRunConfig(loom::ResolveInvocationPath(absl::GetFlag(FLAGS_config)), *overrides);
  if (!config.ok()) {
    std::fprintf(stderr, "scale_check: error: %s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  try {
    const auto counts = loom::CountParameters(config->model(), false);
    std::printf("scale_check: %s: %.1fM parameters (accounting), seq %d x batch %d, %d step(s)%s\n",
                config->name().c_str(), counts.params / 1e6, absl::GetFlag(FLAGS_seq_len),
                absl::GetFlag(FLAGS_batch), absl::GetFlag(FLAGS_steps),
                absl::GetFlag(FLAGS_optimizer) ? " with AdamW" : ", forward+backward only");
    auto t0 = std::chrono::steady_clock::now();
    auto model = *loom::models::BuildLanguageModel(config->model(), config->train().seed());
    std::printf("  built in %.1f s: %lld parameters, peak RSS %.2f GiB\n", Since(t0),
                static_cast<long long>(model->NumParameters()), PeakRssGiB());
    std::unique_ptr<torch::optim::AdamW> opt;
    if (absl::GetFlag(FLAGS_optimizer)) {
      opt = std::make_unique<torch::optim::AdamW>(
          model->parameters(), torch::optim::AdamWOptions(config->optimizer().lr())
                                   .weight_decay(config->optimizer().weight_decay()));
    }
    const int64_t vocab = config->model().vocab_size();
    for (int s = 0; s < absl::GetFlag(FLAGS_steps); ++s) {
      at::Tensor x = at::randint(0, vocab, {absl::GetFlag(FLAGS_batch), absl::GetFlag(FLAGS_seq_len)}, at::kLong);
      at::Tensor y = at::randint(0, vocab, x.sizes(), at::kLong);
      auto t = std::chrono::steady_clock::now();
      if (opt) opt->zero_grad();
      at::Tensor loss = model->Loss(x, y);
      loss.backward();
      const double fb = Since(t);
      double step_s = 0;
      if (opt) {
        auto ts = std::chrono::steady_clock::now();
        opt->step();
        step_s = Since(ts);
      }
      std::printf("  step %d: loss %.4f, forward+backward %.1f s%s, peak RSS %.2f GiB\n", s,
                  loss.item<double>(), fb,
                  opt ? (", optimizer " + std::to_string(step_s).substr(0, 4) + " s").c_str() : "",
                  PeakRssGiB());
    }
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "scale_check: error: %s\n", e.what_without_backtrace());
    return 1;
  }
  return 0;
}
