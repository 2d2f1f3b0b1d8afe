// Where one training step goes: the throughput benchmark's models (tests/throughput_benchmark.py)
// timed phase by phase, on random tokens, float32, tuned allocator.
//
//   bazel run -c opt //launch:step_profile                       # small: d 256, 4 layers, seq 256
//   bazel run -c opt //launch:step_profile -- --d_model=512 --layers=8 --heads=8 --seq=512
//
// Phases, each the median over the timed steps: the blocks' forward (embedding to the final
// LayerNorm); the fused LM head + loss, which also computes the head's gradients
// (kernels/lm_head_loss.h); the backward (the blocks and the embedding); the AdamW update;
// zeroing the gradients. Flags: --d_model --layers --heads --seq --batch --threads --steps
// --unfused_head (time at::linear + cross_entropy instead, for comparison), --torch_adamw
// (torch::optim::AdamW instead of the FusedAdamW that `train` uses).
#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config.pb.h"
#include "core/malloc_tuning.h"
#include "kernels/fused_adamw.h"
#include "models/registry.h"

namespace {

struct Flags {
  int d_model = 256, layers = 4, heads = 4, seq = 256, batch = 8, threads = 2, steps = 8;
  bool unfused_head = false;
  bool torch_adamw = false;
};

Flags Parse(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto num = [&](const char* name, int* out) {
      const std::string prefix = std::string(name) + "=";
      if (a.rfind(prefix, 0) != 0) return false;
      *out = std::atoi(a.c_str() + prefix.size());
      if (*out <= 0) {
        std::fprintf(stderr, "step_profile: %s must be a positive integer\n", a.c_str());
        std::exit(2);
      }
      return true;
    };
    if (num("--d_model", &f.d_model) || num("--layers", &f.layers) || num("--heads", &f.heads) ||
        num("--seq", &f.seq) || num("--batch", &f.batch) || num("--threads", &f.threads) ||
        num("--steps", &f.steps)) {
      continue;
    }
    if (a == "--unfused_head") {
      f.unfused_head = true;
      continue;
    }
    if (a == "--torch_adamw") {
      f.torch_adamw = true;
      continue;
    }
    std::fprintf(stderr, "step_profile: unknown flag %s\n", a.c_str());
    std::exit(2);
  }
  return f;
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  const Flags f = Parse(argc, argv);
  loom::ConfigureAllocatorForTraining();
  at::set_num_threads(f.threads);
  constexpr int kVocab = 50257;
  loom::ModelConfig config;
  config.set_vocab_size(kVocab);
  config.set_num_layers(f.layers);
  config.set_d_model(f.d_model);
  config.mutable_mixer()->set_num_heads(f.heads);
  config.mutable_ffn()->set_hidden_dim(4 * f.d_model);
  auto built = loom::models::BuildLanguageModel(config, 1005);
  if (!built.ok()) {
    std::fprintf(stderr, "step_profile: %s\n", built.status().ToString().c_str());
    return 1;
  }
  auto model = *built;
  const auto adamw_options = torch::optim::AdamWOptions(1e-3).weight_decay(0.1);
  std::unique_ptr<torch::optim::AdamW> optimizer =
      f.torch_adamw ? std::make_unique<torch::optim::AdamW>(model->parameters(), adamw_options)
                    : std::make_unique<loom::kernels::FusedAdamW>(model->parameters(), adamw_options);
  torch::optim::AdamW& opt = *optimizer;
  const at::Tensor x = at::randint(0, kVocab, {f.batch, f.seq}, at::kLong);
  const at::Tensor y = at::randint(0, kVocab, {f.batch, f.seq}, at::kLong);
  const at::Tensor emb = model->named_parameters()["embedding.weight"];  // a handle, not a reference into the temporary dict

  const std::vector<std::string> phases = {"blocks forward", "LM head + loss", "backward",
                                           "AdamW update", "zero grads"};
  std::map<std::string, std::vector<double>> times;
  std::vector<double> totals;
  const int warmup = 2;
  for (int s = 0; s < warmup + f.steps; ++s) {
    double t0 = Now();
    at::Tensor h = model->Hidden(x);
    double t1 = Now();
    at::Tensor loss =
        f.unfused_head
            ? at::cross_entropy_loss(at::linear(h, emb).reshape({-1, kVocab}), y.reshape({-1}))
            : model->LossFromHidden(h, y);
    double t2 = Now();
    loss.backward();
    double t3 = Now();
    opt.step();
    double t4 = Now();
    opt.zero_grad();
    double t5 = Now();
    if (s < warmup) continue;
    const double d[] = {t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4};
    for (size_t i = 0; i < phases.size(); ++i) times[phases[i]].push_back(d[i]);
    totals.push_back(t5 - t0);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double total = median(totals);
  const double tokens = static_cast<double>(f.batch) * f.seq;
  std::printf("step profile: d %d, %d layers, %d heads, seq %d, batch %d, vocab %d, %d threads, "
              "%s head, %s; median of %d steps\n\n",
              f.d_model, f.layers, f.heads, f.seq, f.batch, kVocab, f.threads,
              f.unfused_head ? "unfused" : "fused", f.torch_adamw ? "torch AdamW" : "FusedAdamW",
              f.steps);
  std::printf("| phase | ms | share |\n|---|---|---|\n");
  for (const std::string& p : phases) {
    const double m = median(times[p]);
    std::printf("| %s | %.1f | %.0f%% |\n", p.c_str(), m * 1e3, 100.0 * m / total);
  }
  std::printf("| step | %.1f | %.0f tokens/s |\n", total * 1e3, tokens / total);
  return 0;
}
