#include "kernels/fused_adamw.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace loom::kernels {
namespace {

struct ParamSet {
  std::vector<at::Tensor> a, b;  // two parameter groups
};

ParamSet MakeParams(at::ScalarType dtype) {
  at::manual_seed(21);
  ParamSet s;
  for (int64_t n : {int64_t{1}, int64_t{37}, int64_t{70001}}) {  // 70001: several parallel chunks
    s.a.push_back(at::randn({n}, at::TensorOptions().dtype(dtype)).requires_grad_(true));
  }
  s.b.push_back(at::randn({33, 17}, at::TensorOptions().dtype(dtype)).requires_grad_(true));
  s.b.push_back(at::randn({5}, at::TensorOptions().dtype(dtype)).requires_grad_(true));
  return s;
}

template <typename Opt>
std::unique_ptr<Opt> MakeOptimizer(const ParamSet& s, bool amsgrad) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(s.a, std::make_unique<torch::optim::AdamWOptions>(
                               torch::optim::AdamWOptions(3e-3).weight_decay(0.1).amsgrad(amsgrad)));
  groups.emplace_back(s.b, std::make_unique<torch::optim::AdamWOptions>(
                               torch::optim::AdamWOptions(1e-2)
                                   .betas({0.8, 0.95})
                                   .eps(1e-6)
                                   .weight_decay(0.0)
                                   .amsgrad(amsgrad)));
  return std::make_unique<Opt>(std::move(groups), torch::optim::AdamWOptions(1e-3));
}

// Runs `steps` steps of both optimizers on identical parameters and gradients; returns the largest
// relative difference over parameters and moments.
double MaxDifference(at::ScalarType dtype, bool amsgrad, int steps) {
  ParamSet ref = MakeParams(dtype), got = MakeParams(dtype);
  auto ref_opt = MakeOptimizer<torch::optim::AdamW>(ref, amsgrad);
  auto got_opt = MakeOptimizer<FusedAdamW>(got, amsgrad);
  at::manual_seed(22);
  for (int step = 0; step < steps; ++step) {
    std::vector<at::Tensor> rp = ref.a, gp = got.a;
    rp.insert(rp.end(), ref.b.begin(), ref.b.end());
    gp.insert(gp.end(), got.b.begin(), got.b.end());
    for (size_t i = 0; i < rp.size(); ++i) {
      if (step == 1 && i == 1) {  // a parameter without a gradient this step is left alone
        rp[i].mutable_grad() = at::Tensor();
        gp[i].mutable_grad() = at::Tensor();
        continue;
      }
      const at::Tensor g = at::randn_like(rp[i]) * (1 + step);
      rp[i].mutable_grad() = g.clone();
      gp[i].mutable_grad() = g.clone();
    }
    ref_opt->step();
    got_opt->step();
  }
  double worst = 0;
  std::vector<at::Tensor> rp = ref.a, gp = got.a;
  rp.insert(rp.end(), ref.b.begin(), ref.b.end());
  gp.insert(gp.end(), got.b.begin(), got.b.end());
  auto rel = [](const at::Tensor& x, const at::Tensor& y) {
    const double scale = y.abs().max().item<double>();
    return (x.to(at::kDouble) - y.to(at::kDouble)).abs().max().item<double>() /
           std::max(scale, 1e-30);
  };
  for (size_t i = 0; i < rp.size(); ++i) {
    worst = std::max(worst, rel(gp[i].detach(), rp[i].detach()));
    auto& rs = static_cast<torch::optim::AdamWParamState&>(
        *ref_opt->state().at(rp[i].unsafeGetTensorImpl()));
    auto& gs = static_cast<torch::optim::AdamWParamState&>(
        *got_opt->state().at(gp[i].unsafeGetTensorImpl()));
    EXPECT_EQ(gs.step(), rs.step()) << "parameter " << i;
    worst = std::max(worst, rel(gs.exp_avg(), rs.exp_avg()));
    worst = std::max(worst, rel(gs.exp_avg_sq(), rs.exp_avg_sq()));
  }
  return worst;
}

TEST(FusedAdamWTest, MatchesTorchAdamWFloat64) {
  EXPECT_LT(MaxDifference(at::kDouble, /*amsgrad=*/false, 6), 1e-13);
}

TEST(FusedAdamWTest, MatchesTorchAdamWFloat32) {
  EXPECT_LT(MaxDifference(at::kFloat, /*amsgrad=*/false, 6), 2e-6);
}

TEST(FusedAdamWTest, AmsgradAndOtherDtypesRunTorchsAlgorithmExactly) {
  EXPECT_EQ(MaxDifference(at::kFloat, /*amsgrad=*/true, 4), 0.0);
  EXPECT_EQ(MaxDifference(at::kBFloat16, /*amsgrad=*/false, 4), 0.0);
}

TEST(FusedAdamWTest, UpdateDiffersFromAPlainGradientStep) {
  // Guards the comparison above against both optimizers doing nothing.
  ParamSet s = MakeParams(at::kFloat);
  const at::Tensor before = s.b[0].detach().clone();
  auto opt = MakeOptimizer<FusedAdamW>(s, false);
  s.b[0].mutable_grad() = at::ones_like(s.b[0]);
  opt->step();
  // First step of Adam: every element moves by lr * m_hat / (sqrt(v_hat) + eps) = ~lr.
  const at::Tensor moved = (before - s.b[0].detach());
  EXPECT_NEAR(moved.min().item<double>(), 1e-2, 1e-7);
  EXPECT_NEAR(moved.max().item<double>(), 1e-2, 1e-7);
}

}  // namespace
}  // namespace loom::kernels
