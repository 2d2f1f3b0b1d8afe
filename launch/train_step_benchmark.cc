// Training-step throughput of the tiny quickstart model (launch/configs/lm/tiny.textproto shape:
// 4 layers, d=128, GPT-2 vocabulary, seq 128, 16 sequences per step in 2 micro-batches), with and
// without Loom's allocator tuning (core/malloc_tuning.h), side by side in one run.
//
//   bazel run -c opt //launch:train_step_benchmark
//
// glibc's settings are per process and cannot be reset once changed, so every measurement runs
// in a forked child (the parent never touches LibTorch, so no OpenMP pool is forked); the child
// reports the seconds of its timed steps through a pipe. Ends with the tuned/untuned ratio.
#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <sys/wait.h>
#include <torch/optim/adamw.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>

#include "benchmark/benchmark.h"
#include "core/config.pb.h"
#include "core/malloc_tuning.h"
#include "models/registry.h"

namespace {

constexpr int kWarmupSteps = 2;
constexpr int kTimedSteps = 6;
constexpr int kSeq = 128;
constexpr int kMicro = 8;
constexpr int kAccum = 2;

// Runs in the child: returns seconds for kTimedSteps optimizer steps.
double TimeSteps(bool tuned, int threads) {
  if (tuned) loom::ConfigureAllocatorForTraining();
  at::set_num_threads(threads);
  loom::ModelConfig config;
  config.set_vocab_size(50257);
  config.set_num_layers(4);
  config.set_d_model(128);
  config.mutable_mixer()->set_num_heads(4);
  config.mutable_ffn()->set_hidden_dim(512);
  auto model = *loom::models::BuildLanguageModel(config, 1005);
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-3));
  at::Tensor x = at::randint(0, 50257, {kMicro, kSeq}, at::kLong);
  at::Tensor y = at::randint(0, 50257, {kMicro, kSeq}, at::kLong);
  auto step = [&] {
    opt.zero_grad();
    for (int m = 0; m < kAccum; ++m) (model->Loss(x, y) / kAccum).backward();
    opt.step();
  };
  for (int i = 0; i < kWarmupSteps; ++i) step();
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kTimedSteps; ++i) step();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double TimeInChild(bool tuned, int threads) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    double s = TimeSteps(tuned, threads);
    if (write(fds[1], &s, sizeof(s)) != sizeof(s)) _exit(2);
    _exit(0);
  }
  close(fds[1]);
  double s = -1;
  if (read(fds[0], &s, sizeof(s)) != sizeof(s)) s = -1;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return s;
}

std::map<std::string, double> g_tokens_per_s;

void BM_TinyTrainStep(benchmark::State& state) {
  const bool tuned = state.range(0) != 0;
  const int threads = static_cast<int>(state.range(1));
  double tok_s = 0;
  for (auto _ : state) {
    const double s = TimeInChild(tuned, threads);
    if (s <= 0) {
      state.SkipWithError("child process failed");
      return;
    }
    state.SetIterationTime(s / kTimedSteps);
    tok_s = kTimedSteps * kAccum * kMicro * kSeq / s;
  }
  state.counters["tokens_per_s"] = tok_s;
  g_tokens_per_s[std::string(tuned ? "tuned" : "untuned") + "/" + std::to_string(threads)] = tok_s;
}

BENCHMARK(BM_TinyTrainStep)
    ->ArgNames({"malloc_tuned", "threads"})
    ->Args({0, 2})
    ->Args({1, 2})
    ->Args({0, 1})
    ->Args({1, 1})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  for (int threads : {2, 1}) {
    const std::string t = std::to_string(threads);
    if (g_tokens_per_s.count("tuned/" + t) && g_tokens_per_s.count("untuned/" + t)) {
      std::printf("threads=%d: tuned %.0f tok/s, untuned %.0f tok/s, ratio %.2fx\n", threads,
                  g_tokens_per_s["tuned/" + t], g_tokens_per_s["untuned/" + t],
                  g_tokens_per_s["tuned/" + t] / g_tokens_per_s["untuned/" + t]);
    }
  }
  benchmark::Shutdown();
  return 0;
}
