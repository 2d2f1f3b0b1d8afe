// Scaling-law fits for sweeps (spec trainer_practices.md §3.2, structured_ffn.md §7.1).
//
//   Chinchilla "approach 3":  L(N, D) = E + A / N^alpha + B / D^beta, fitted by minimising the
//   mean Huber_delta(log L_hat - log L) (delta = 1e-3) over the runs, with L_hat computed as
//   logsumexp(a - alpha log N, b - beta log D, e) (A = e^a, B = e^b, E = e^e). Starts: the
//   paper's grid (alpha, beta in {0, .5, .., 2}, e in {-1, -.5, .., 1}, a, b in {0, 5, .., 25});
//   the objective is evaluated at all 4,500 and L-BFGS (strong Wolfe, tight tolerances) runs from
//   the best `refine_starts`; the best result wins. Parameters are stored unrounded; bootstrap
//   resamples of the runs give their standard errors.
//
//   Power law per family:  log L = log k + slope * log C, ordinary least squares.
//
//   LOOM_ASSIGN_OR_RETURN(ChinchillaFit f, FitChinchilla(points));
//   auto [n_opt, d_opt] = f.ComputeOptimal(1e21);
#ifndef LOOM_CORE_SCALING_FIT_H_
#define LOOM_CORE_SCALING_FIT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace loom {

struct ScalingPoint {
  double params = 0;  // N
  double tokens = 0;  // D
  double flops = 0;   // C
  double loss = 0;    // final validation loss
  std::string family;
};

struct ChinchillaFit {
  double E = 0, A = 0, B = 0, alpha = 0, beta = 0;
  double objective = 0;  // mean Huber loss at the optimum
  // Bootstrap standard errors (0 when not computed).
  double E_se = 0, A_se = 0, B_se = 0, alpha_se = 0, beta_se = 0;
  int bootstrap_samples = 0;

  double Predict(double n, double d) const;
  // Compute-optimal (N, D) for a budget C = 6 N D (Chinchilla's closed form).
  std::pair<double, double> ComputeOptimal(double flops) const;
};

struct ChinchillaFitOptions {
  double huber_delta = 1e-3;
  int refine_starts = 8;
  int bootstrap = 0;  // resamples for standard errors
  uint64_t seed = 1;
};

absl::StatusOr<ChinchillaFit> FitChinchilla(const std::vector<ScalingPoint>& points,
                                            const ChinchillaFitOptions& options = {});

struct PowerLawFit {
  double coefficient = 0;  // k
  double slope = 0;        // L = k * C^slope
  double r2 = 0;
  int points = 0;
};

absl::StatusOr<PowerLawFit> FitLossVsCompute(const std::vector<ScalingPoint>& points);

}  // namespace loom

#endif  // LOOM_CORE_SCALING_FIT_H_
