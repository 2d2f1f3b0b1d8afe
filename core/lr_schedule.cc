#include "core/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace loom {

LrSchedule::LrSchedule(Kind kind, double peak_lr, int64_t total_steps, double warmup_fraction,
                       double min_lr_ratio)
    : kind_(kind),
      peak_lr_(peak_lr),
      total_steps_(total_steps),
      // int(0.1 * T) in the reference truncates toward zero, as static_cast does.
      warmup_steps_(static_cast<int64_t>(warmup_fraction * static_cast<double>(total_steps))),
      min_lr_(min_lr_ratio * peak_lr) {}

LrSchedule LrSchedule::FromConfig(const OptimizerConfig& o, int64_t total_steps) {
  return LrSchedule(o.lr_schedule() == "constant" ? Kind::kConstant : Kind::kWarmupCosine,
                    o.lr(), total_steps, o.warmup_fraction(), o.min_lr_ratio());
}

double LrSchedule::At(int64_t step) const {
  if (kind_ == Kind::kConstant) return peak_lr_;
  if (step < warmup_steps_) {
    return static_cast<double>(step + 1) / static_cast<double>(warmup_steps_) * peak_lr_;
  }
  const int64_t decay_steps = std::max<int64_t>(1, total_steps_ - warmup_steps_);
  const double progress =
      std::min(1.0, static_cast<double>(step - warmup_steps_) / static_cast<double>(decay_steps));
  return min_lr_ + (peak_lr_ - min_lr_) * (1.0 + std::cos(M_PI * progress)) / 2.0;
}

}  // namespace loom
