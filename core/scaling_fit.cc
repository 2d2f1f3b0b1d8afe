#include "core/scaling_fit.h"

#include <ATen/ATen.h>
#include <torch/optim/lbfgs.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "absl/strings/str_cat.h"

namespace loom {
namespace {

// Mean Huber loss of the log-space residuals; theta = (a, b, e, alpha, beta), batched over rows.
at::Tensor Objective(const at::Tensor& theta, const at::Tensor& log_n, const at::Tensor& log_d,
                     const at::Tensor& log_l, double delta) {
  at::Tensor a = theta.select(-1, 0).unsqueeze(-1), b = theta.select(-1, 1).unsqueeze(-1);
  at::Tensor e = theta.select(-1, 2).unsqueeze(-1);
  at::Tensor al = theta.select(-1, 3).unsqueeze(-1), be = theta.select(-1, 4).unsqueeze(-1);
  at::Tensor terms = at::stack({a - al * log_n, b - be * log_d, e.expand({-1, log_n.size(0)})}, -1);
  at::Tensor r = at::logsumexp(terms, -1) - log_l;
  at::Tensor absr = r.abs();
  at::Tensor h = at::where(absr <= delta, 0.5 * r * r, delta * (absr - 0.5 * delta));
  return h.mean(-1);
}

ChinchillaFit FromTheta(const at::Tensor& t, double objective) {
  ChinchillaFit f;
  f.A = std::exp(t[0].item<double>());
  f.B = std::exp(t[1].item<double>());
  f.E = std::exp(t[2].item<double>());
  f.alpha = t[3].item<double>();
  f.beta = t[4].item<double>();
  f.objective = objective;
  return f;
}

// The best fit to `points` (indices `rows`), from the grid's best starts.
std::pair<at::Tensor, double> FitOnce(const std::vector<ScalingPoint>& points,
                                      const std::vector<size_t>& rows,
                                      const ChinchillaFitOptions& o,
                                      const at::Tensor& warm = at::Tensor()) {
  auto opts = at::TensorOptions().dtype(at::kDouble);
  std::vector<double> ln, ld, ll;
  for (size_t i : rows) {
    ln.push_back(std::log(points[i].params));
    ld.push_back(std::log(points[i].tokens));
    ll.push_back(std::log(points[i].loss));
  }
  at::Tensor log_n = at::tensor(ln, opts), log_d = at::tensor(ld, opts),
             log_l = at::tensor(ll, opts);
  std::vector<double> grid;
  for (double al = 0; al <= 2.0 + 1e-9; al += 0.5)
    for (double be = 0; be <= 2.0 + 1e-9; be += 0.5)
      for (double e = -1; e <= 1.0 + 1e-9; e += 0.5)
        for (double a = 0; a <= 25 + 1e-9; a += 5)
          for (double b = 0; b <= 25 + 1e-9; b += 5) grid.insert(grid.end(), {a, b, e, al, be});
  at::Tensor starts = at::tensor(grid, opts).view({-1, 5});
  at::Tensor values;
  {
    at::NoGradGuard ng;
    values = Objective(starts, log_n, log_d, log_l, o.huber_delta);
  }
  at::Tensor order = values.argsort();
  std::vector<at::Tensor> inits;
  if (warm.defined()) inits.push_back(warm.clone());
  for (int k = 0; k < std::min<int64_t>(o.refine_starts, order.size(0)); ++k) {
    inits.push_back(starts[order[k].item<int64_t>()].clone());
  }
  at::Tensor best;
  double best_value = std::numeric_limits<double>::infinity();
  for (const at::Tensor& init : inits) {
    at::Tensor theta = init.clone().requires_grad_(true);
    torch::optim::LBFGS lbfgs({theta}, torch::optim::LBFGSOptions(1.0)
                                           .max_iter(400)
                                           .tolerance_grad(1e-14)
                                           .tolerance_change(1e-16)
                                           .history_size(50)
                                           .line_search_fn("strong_wolfe"));
    auto closure = [&] {
      lbfgs.zero_grad();
      at::Tensor loss = Objective(theta.unsqueeze(0), log_n, log_d, log_l, o.huber_delta)[0];
      loss.backward();
      return loss;
    };
    // Restart L-BFGS (fresh curvature history) until the objective stops improving.
    double v = std::numeric_limits<double>::infinity();
    for (int round = 0; round < 10; ++round) {
      lbfgs.step(closure);
      at::NoGradGuard ng;
      const double now =
          Objective(theta.detach().unsqueeze(0), log_n, log_d, log_l, o.huber_delta)[0]
              .item<double>();
      const bool stalled = !(now < v * (1 - 1e-12));
      v = std::min(v, now);
      if (stalled) break;
    }
    if (std::isfinite(v) && v < best_value) {
      best_value = v;
      best = theta.detach().clone();
    }
  }
  return {best, best_value};
}

}  // namespace

double ChinchillaFit::Predict(double n, double d) const {
  return E + A / std::pow(n, alpha) + B / std::pow(d, beta);
}

std::pair<double, double> ChinchillaFit::ComputeOptimal(double flops) const {
  const double g = std::pow(alpha * A / (beta * B), 1.0 / (alpha + beta));
  const double n = g * std::pow(flops / 6.0, beta / (alpha + beta));
  const double d = std::pow(flops / 6.0, alpha / (alpha + beta)) / g;
  return {n, d};
}

absl::StatusOr<ChinchillaFit> FitChinchilla(const std::vector<ScalingPoint>& points,
                                            const ChinchillaFitOptions& o) {
  if (points.size() < 5) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the parametric fit has 5 parameters and needs at least 5 runs, got ", points.size()));
  }
  for (const ScalingPoint& p : points) {
    if (!(p.params > 0 && p.tokens > 0 && p.loss > 0) || !std::isfinite(p.loss)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "run with N=", p.params, " D=", p.tokens, " loss=", p.loss,
          " cannot be fitted (all must be positive and finite)"));
    }
  }
  std::vector<size_t> all(points.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  auto [theta, value] = FitOnce(points, all, o);
  if (!theta.defined()) return absl::InternalError("no start of the parametric fit converged");
  ChinchillaFit fit = FromTheta(theta, value);
  if (o.bootstrap > 1) {
    std::mt19937_64 rng(o.seed);
    std::uniform_int_distribution<size_t> pick(0, points.size() - 1);
    std::vector<std::vector<double>> samples(5);
    for (int s = 0; s < o.bootstrap; ++s) {
      std::vector<size_t> rows(points.size());
      for (auto& r : rows) r = pick(rng);
      // Warm-started from the full-data optimum, plus the resample's best grid start.
      ChinchillaFitOptions quick = o;
      quick.refine_starts = 1;
      auto [t, v] = FitOnce(points, rows, quick, theta);
      if (!t.defined()) continue;
      const ChinchillaFit f = FromTheta(t, v);
      const double vals[5] = {f.E, f.A, f.B, f.alpha, f.beta};
      for (int k = 0; k < 5; ++k) samples[k].push_back(vals[k]);
    }
    auto se = [](const std::vector<double>& v) {
      if (v.size() < 2) return 0.0;
      double mean = 0, ss = 0;
      for (double x : v) mean += x;
      mean /= v.size();
      for (double x : v) ss += (x - mean) * (x - mean);
      return std::sqrt(ss / (v.size() - 1));
    };
    fit.E_se = se(samples[0]);
    fit.A_se = se(samples[1]);
    fit.B_se = se(samples[2]);
    fit.alpha_se = se(samples[3]);
    fit.beta_se = se(samples[4]);
    fit.bootstrap_samples = static_cast<int>(samples[0].size());
  }
  return fit;
}

absl::StatusOr<PowerLawFit> FitLossVsCompute(const std::vector<ScalingPoint>& points) {
  if (points.size() < 2) {
    return absl::InvalidArgumentError("a power law needs at least 2 runs");
  }
  double sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0;
  const double n = static_cast<double>(points.size());
  for (const ScalingPoint& p : points) {
    if (!(p.flops > 0 && p.loss > 0)) {
      return absl::InvalidArgumentError(absl::StrCat("run with C=", p.flops, " loss=", p.loss,
                                                     " cannot be fitted"));
    }
    const double x = std::log(p.flops), y = std::log(p.loss);
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
    syy += y * y;
  }
  const double vx = sxx - sx * sx / n, vxy = sxy - sx * sy / n, vy = syy - sy * sy / n;
  if (vx <= 0) return absl::InvalidArgumentError("all runs have the same compute");
  PowerLawFit f;
  f.slope = vxy / vx;
  f.coefficient = std::exp((sy - f.slope * sx) / n);
  f.r2 = vy > 0 ? vxy * vxy / (vx * vy) : 1.0;
  f.points = static_cast<int>(points.size());
  return f;
}

}  // namespace loom
