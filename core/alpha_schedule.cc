#include "core/alpha_schedule.h"

#include <cmath>
#include <cstdlib>
#include <cstdio>

namespace loom {

double SelfGuidedAlpha(const std::string& scheduler, int64_t t, int64_t t_max) {
  if (t_max <= 0 || t >= t_max) return 0.0;
  if (t <= 0) return 1.0;
  const double frac = static_cast<double>(t) / static_cast<double>(t_max);
  if (scheduler == "linear") return 1.0 - frac;
  if (scheduler == "cosine") return 0.5 * (1.0 + std::cos(M_PI * frac));
  std::fprintf(stderr, "SelfGuidedAlpha: unknown scheduler \"%s\"\n", scheduler.c_str());
  std::abort();
}

}  // namespace loom
