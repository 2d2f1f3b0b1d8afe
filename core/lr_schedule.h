// Learning-rate schedules, as functions of the 0-based optimizer step.
//
// WarmupCosine is the StructuredFFN schedule (spec §6.2), reproduced exactly against
// golden/structured_ffn/schedule_lr: W = int(warmup_fraction * T);
//   lr_k = (k + 1) / W * lr                                          for k < W
//   lr_k = eta_min + (lr - eta_min) * (1 + cos(pi (k - W) / (T - W))) / 2   otherwise,
// with eta_min = min_lr_ratio * lr and T the total number of optimizer steps.
//
//   LrSchedule s = LrSchedule::FromConfig(config.optimizer(), config.train().max_steps());
//   double lr = s.At(step);
#ifndef LOOM_CORE_LR_SCHEDULE_H_
#define LOOM_CORE_LR_SCHEDULE_H_

#include <cstdint>

#include "core/config.pb.h"

namespace loom {

class LrSchedule {
 public:
  enum class Kind { kWarmupCosine, kConstant };

  LrSchedule(Kind kind, double peak_lr, int64_t total_steps, double warmup_fraction,
             double min_lr_ratio);
  static LrSchedule FromConfig(const OptimizerConfig& optimizer, int64_t total_steps);

  // Learning rate for 0-based optimizer step `step`.
  double At(int64_t step) const;
  int64_t warmup_steps() const { return warmup_steps_; }

 private:
  Kind kind_;
  double peak_lr_;
  int64_t total_steps_;
  int64_t warmup_steps_;
  double min_lr_;
};

}  // namespace loom

#endif  // LOOM_CORE_LR_SCHEDULE_H_
