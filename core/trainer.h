// The training loop: gradient accumulation over micro-batches, global-norm clipping, AdamW with
// the warmup + cosine schedule, periodic and final evaluation, metrics.jsonl and a progress
// display. One Trainer per run directory.
//
// Data-parallel: with a Communicator of N ranks, every rank builds the same model (rank 0's
// weights are broadcast), takes its slice of each global batch (data/lm_loader.h), and gradients
// are synchronised through parallel::DataParallel (bucketed, overlapped with the backward,
// ZeRO-1 when optimizer.zero_stage = 1). Only rank 0 writes the run directory and prints
// progress; losses and evaluation are averaged over ranks.
//
//   LOOM_ASSIGN_OR_RETURN(auto trainer, Trainer::Create(config, "runs/tiny"));  // one process
//   LOOM_ASSIGN_OR_RETURN(auto trainer, Trainer::Create(config, dir, comm.get()));  // N ranks
//   LOOM_ASSIGN_OR_RETURN(TrainResult result, trainer->Run());
//
// run_dir receives `config.textproto` (the resolved config, every default spelled out) and
// `metrics.jsonl`: one JSON object per log step with step, tokens, loss, lr, grad_norm, alpha
// (null for models without self-guided layers), tokens_per_s, flops (cumulative training FLOPs),
// mfu; evaluation records carry val_loss and val_ppl. At the end, `model.safetensors` holds the
// final weights (names as in the module tree).
//
// Checkpoints (format: core/checkpoint.h) every checkpoint.every_steps, at the end, and on
// SIGTERM/SIGUSR1. Create() resumes from the newest complete checkpoint in run_dir: weights,
// AdamW state (re-sharded for any world size / ZeRO stage), generators, self-guided state and
// the data position, so the resumed run continues bit for bit.
#ifndef LOOM_CORE_TRAINER_H_
#define LOOM_CORE_TRAINER_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/config.pb.h"
#include "parallel/communicator.h"

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
  int64_t resumed_from = -1;      // checkpoint step the run resumed from (-1: fresh start)
  bool stopped_by_signal = false; // SIGTERM/SIGUSR1: checkpointed and stopped early
  int64_t skipped_steps = 0;      // non-finite steps skipped (optimizer.nonfinite_policy=skip)
  std::string last_checkpoint;    // newest checkpoint written or resumed from
  // LRA tasks: accuracies of the last evaluation (NaN otherwise).
  double final_val_accuracy = std::numeric_limits<double>::quiet_NaN();
  double final_test_accuracy = std::numeric_limits<double>::quiet_NaN();
};

// Makes SIGTERM and SIGUSR1 request a checkpoint-and-stop at the end of the current step
// (what schedulers send before preemption). Idempotent.
void InstallStopSignalHandlers();

class Trainer {
 public:
  // `comm` (not owned) may be null: a single process.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(const RunConfig& config,
                                                         const std::string& run_dir,
                                                         parallel::Communicator* comm = nullptr);
  ~Trainer();
  absl::StatusOr<TrainResult> Run();

  struct State;

 private:
  explicit Trainer(std::unique_ptr<State> state);
  void SetupSelfGuided();
  void AdvanceSelfGuided(int64_t step);
  absl::Status SaveCheckpoint(int64_t steps_done, double interval_loss, int64_t interval_steps);
  absl::Status ResumeFromCheckpoint(const std::string& dir);
  std::unique_ptr<State> state_;
};

}  // namespace loom

#endif  // LOOM_CORE_TRAINER_H_
