// The training loop: gradient accumulation over micro-batches, global-norm clipping, AdamW with
// the warmup + cosine schedule, periodic and final evaluation, metrics.jsonl and a progress
// display. One Trainer per run directory.
//
//   LOOM_ASSIGN_OR_RETURN(auto trainer, Trainer::Create(config, "runs/tiny"));
//   LOOM_ASSIGN_OR_RETURN(TrainResult result, trainer->Run());
//
// run_dir receives `config.textproto` (the resolved config, every default spelled out) and
// `metrics.jsonl`: one JSON object per log step with step, tokens, loss, lr, grad_norm, alpha
// (null for models without self-guided layers), tokens_per_s, flops (cumulative training FLOPs),
// mfu; evaluation records carry val_loss and val_ppl.
#ifndef LOOM_CORE_TRAINER_H_
#define LOOM_CORE_TRAINER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/config.pb.h"

namespace loom {

struct TrainResult {
  int64_t steps = 0;
  int64_t tokens = 0;
  double first_train_loss = 0;
  double final_train_loss = 0;  // mean over the last log interval
  double initial_val_loss = 0;  // before the first step (NaN without validation data)
  double final_val_loss = 0;
  double tokens_per_s = 0;      // over the whole run, excluding evaluation
  double wall_seconds = 0;
  double total_flops = 0;
  int64_t num_parameters = 0;
};

class Trainer {
 public:
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(const RunConfig& config,
                                                         const std::string& run_dir);
  ~Trainer();
  absl::StatusOr<TrainResult> Run();

 private:
  struct State;
  explicit Trainer(std::unique_ptr<State> state);
  void SetupSelfGuided();
  void AdvanceSelfGuided(int64_t step);
  std::unique_ptr<State> state_;
};

}  // namespace loom

#endif  // LOOM_CORE_TRAINER_H_
