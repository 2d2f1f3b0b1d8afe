// S4, S4D and SGConv mixers: float64 gradients against finite differences, the recurrent step
// mode against the convolution, causality, the C-tilde length doubling, and the FFT convolution
// against a direct sum.
#include "models/s4.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <functional>
#include <memory>
#include <string>

#include "kernels/fft_conv.h"
#include "models/sgconv.h"
#include "models/ssm_kernel.h"

namespace loom::models {
namespace {

S4Options MakeS4(const std::string& mode, const std::string& init, int64_t H, int64_t N,
                 int64_t l_max, bool bidirectional = false, int64_t channels = 1) {
  S4Options o;
  o.kernel.d_model = H;
  o.kernel.d_state = N;
  o.kernel.mode = mode;
  o.kernel.init = init;
  o.kernel.l_max = l_max;
  o.kernel.bidirectional = bidirectional;
  o.kernel.channels = channels;
  o.kernel.dtype = at::kDouble;
  o.kernel.dt_min = 0.01;  // longer memories than the default make the tests more sensitive
  o.kernel.dt_max = 0.3;
  return o;
}

SgConvOptions MakeSg(int64_t H, int64_t l_max, bool bidirectional, const std::string& mode) {
  SgConvOptions o;
  o.d_model = H;
  o.l_max = l_max;
  o.kernel_dim = 4;
  o.bidirectional = bidirectional;
  o.mode = mode;
  o.decay_min = 1.5;
  o.decay_max = 3.0;
  o.dtype = at::kDouble;
  return o;
}

double MaxAbs(const at::Tensor& t) { return t.abs().max().item<double>(); }

// Central differences of sum(f(x) * g) for a sample of the entries of x and every parameter.
void ExpectGradientsMatchFiniteDifferences(Mixer& mixer, const at::Tensor& x0) {
  at::Tensor g = at::randn_like(mixer.Forward(x0));
  auto loss = [&]() { return (mixer.Forward(x0) * g).sum().item<double>(); };
  at::Tensor x = x0.clone().requires_grad_(true);
  std::vector<at::Tensor> inputs = {x};
  std::vector<std::string> names = {"x"};
  for (const auto& item : mixer.named_parameters()) {
    if (!item.value().requires_grad()) continue;
    inputs.push_back(item.value());
    names.push_back(item.key());
  }
  auto grads = torch::autograd::grad({(mixer.Forward(x) * g).sum()}, inputs);
  torch::NoGradGuard no_grad;
  const double eps = 1e-6;
  for (size_t i = 0; i < inputs.size(); ++i) {
    at::Tensor flat = i == 0 ? x0.view(-1) : inputs[i].view(-1);
    const at::Tensor grad = grads[i].reshape(-1);
    const int64_t step = std::max<int64_t>(1, flat.numel() / 7);
    for (int64_t j = 0; j < flat.numel(); j += step) {
      const double orig = flat[j].item<double>();
      flat[j] = orig + eps;
      const double up = loss();
      flat[j] = orig - eps;
      const double down = loss();
      flat[j] = orig;
      const double fd = (up - down) / (2 * eps);
      EXPECT_NEAR(grad[j].item<double>(), fd, 1e-6 * std::max(1.0, std::abs(fd)))
          << names[i] << "[" << j << "]";
    }
  }
}

TEST(S4Block, GradientsMatchFiniteDifferences) {
  at::manual_seed(11);
  for (const S4Options& o :
       {MakeS4("nplr", "legs", 3, 8, 20), MakeS4("nplr", "legt", 2, 8, 20),
        MakeS4("diag", "diag-lin", 3, 8, 20), MakeS4("diag", "diag-inv", 2, 6, 20, true, 2)}) {
    S4Options opt = o;
    if (opt.kernel.init == "legt") opt.kernel.rank = 2;
    S4Block block(opt);
    SCOPED_TRACE(opt.kernel.mode + " " + opt.kernel.init);
    ExpectGradientsMatchFiniteDifferences(block, at::randn({2, 19, opt.kernel.d_model},
                                                           at::kDouble));
  }
}

TEST(S4Block, S4dBilinearGradientsMatchFiniteDifferences) {
  at::manual_seed(12);
  S4Options o = MakeS4("diag", "diag-lin", 2, 8, 16);
  o.kernel.disc = "bilinear";
  o.kernel.dt_tie = false;
  o.kernel.n_ssm = 1;
  S4Block block(o);
  ExpectGradientsMatchFiniteDifferences(block, at::randn({2, 16, 2}, at::kDouble));
}

TEST(SgConv, GradientsMatchFiniteDifferences) {
  at::manual_seed(13);
  for (const SgConvOptions& o :
       {MakeSg(3, 24, false, "cat_randn"), MakeSg(2, 24, true, "cat_randn_learnable"),
        MakeSg(2, 30, true, "cat_cos")}) {
    SgConv conv(o);
    SCOPED_TRACE(o.mode);
    ExpectGradientsMatchFiniteDifferences(conv, at::randn({2, 21, o.d_model}, at::kDouble));
  }
}

// Generation: stepping the recurrence one token at a time reproduces the convolution exactly.
TEST(S4Block, StepModeEqualsConvolution) {
  at::manual_seed(14);
  struct Case {
    S4Options o;
    std::string mode;
  };
  std::vector<Case> cases = {{MakeS4("nplr", "legs", 4, 16, 64), "dense"},
                             {MakeS4("nplr", "legs", 4, 16, 64), "linear"},
                             {MakeS4("nplr", "fout", 3, 8, 33), "dense"},
                             {MakeS4("diag", "diag-lin", 4, 16, 50), "dense"},
                             {MakeS4("diag", "diag-inv", 3, 8, 40, false, 2), "dense"}};
  for (Case& c : cases) {
    SCOPED_TRACE(c.o.kernel.mode + " " + c.o.kernel.init + " " + c.mode);
    S4Block block(c.o);
    // Shorter than l_max: the kernel is still evaluated at l_kernel and truncated.
    const int64_t L = c.o.kernel.l_max - 7;
    torch::NoGradGuard no_grad;
    at::Tensor x = at::randn({2, L, c.o.kernel.d_model}, at::kDouble);
    at::Tensor y = block.Forward(x);
    block.SetupStep(c.mode);
    SsmStepState state = block.DefaultState(2);
    for (int64_t t = 0; t < L; ++t) {
      at::Tensor yt = block.Step(x.select(1, t), state);
      ASSERT_LT(MaxAbs(yt - y.select(1, t)), 1e-10 * std::max(1.0, MaxAbs(y))) << "t=" << t;
    }
  }
}

TEST(S4Block, BidirectionalCannotStep) {
  S4Block block(MakeS4("diag", "diag-lin", 2, 4, 8, /*bidirectional=*/true));
  EXPECT_THROW(block.SetupStep("dense"), c10::Error);
}

// A causal mixer's output at t depends on inputs <= t only; a bidirectional one sees the future.
TEST(Mixers, CausalityHoldsUnlessBidirectional) {
  at::manual_seed(15);
  std::vector<std::pair<std::shared_ptr<Mixer>, bool>> mixers = {
      {std::make_shared<S4Block>(MakeS4("nplr", "legs", 3, 8, 24)), true},
      {std::make_shared<S4Block>(MakeS4("diag", "diag-inv", 3, 8, 24)), true},
      {std::make_shared<SgConv>(MakeSg(3, 24, false, "cat_randn")), true},
      {std::make_shared<S4Block>(MakeS4("nplr", "legs", 3, 8, 24, true)), false},
      {std::make_shared<SgConv>(MakeSg(3, 24, true, "cat_randn")), false}};
  torch::NoGradGuard no_grad;
  for (auto& [mixer, causal] : mixers) {
    at::Tensor x = at::randn({1, 24, 3}, at::kDouble);
    at::Tensor x2 = x.clone();
    x2.narrow(1, 12, 12).add_(1.0);
    const double past = MaxAbs(mixer->Forward(x).narrow(1, 0, 12) -
                               mixer->Forward(x2).narrow(1, 0, 12));
    if (causal) {
      EXPECT_LT(past, 1e-12);
    } else {
      EXPECT_GT(past, 1e-6);
    }
  }
}

// C-tilde is tuned to l_kernel; a longer call doubles it (C~ <- C~ (I + A^Lk)) and the kernel's
// first samples do not change.
TEST(DplrSsmKernel, LengthDoublingKeepsTheKernel) {
  at::manual_seed(16);
  SsmKernelOptions o = MakeS4("nplr", "legs", 3, 8, 24).kernel;
  DplrSsmKernel kernel(o);
  EXPECT_EQ(kernel.kernel_length(), 24);
  torch::NoGradGuard no_grad;
  const at::Tensor k24 = kernel.Kernel(24);
  const at::Tensor k60 = kernel.Kernel(60);
  EXPECT_EQ(kernel.kernel_length(), 96);
  EXPECT_LT(MaxAbs(k60.narrow(-1, 0, 24) - k24), 1e-10 * MaxAbs(k24));
}

TEST(SgConv, KernelNormIsFrozenAtConstruction) {
  at::manual_seed(17);
  SgConv conv(MakeSg(2, 40, false, "cat_randn"));
  const at::Tensor norm0 = conv.kernel_norm.clone();
  EXPECT_LT(MaxAbs(conv.RawKernel(conv.full_length()).norm(2, {-1}, true) - norm0), 1e-14);
  {
    torch::NoGradGuard no_grad;
    conv.kernel_list[0].mul_(3.0);
  }
  conv.Forward(at::randn({1, 40, 2}, at::kDouble));
  EXPECT_TRUE(conv.kernel_norm.equal(norm0));
  EXPECT_EQ(conv.num_scales(), 5);  // 1 + ceil(log2(40 / 4))
  EXPECT_EQ(conv.full_length(), 64);
}

TEST(Mixers, OptimizerOverridesFollowTheReference) {
  S4Options o = MakeS4("nplr", "legs", 2, 4, 8);
  o.kernel.lr_dt = o.kernel.lr_A = o.kernel.lr_B = 0.001;
  o.kernel.wd_dt = o.kernel.wd_A = o.kernel.wd_B = 0.0;
  S4Block block(o);
  std::map<std::string, ParamOptimOverride> got;
  for (const auto& p : block.OptimOverrides()) got[p.name] = p;
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(*got["layer.kernel.A_real"].lr, 0.001);
  EXPECT_EQ(*got["layer.kernel.P"].weight_decay, 0.0);
  EXPECT_FALSE(got["layer.kernel.C"].lr.has_value());
  EXPECT_FALSE(got["layer.kernel.C"].weight_decay.has_value());
  SgConv conv(MakeSg(2, 16, false, "cat_randn"));
  for (const auto& p : conv.OptimOverrides()) {
    EXPECT_EQ(*p.lr, 0.001) << p.name;
    EXPECT_FALSE(p.weight_decay.has_value()) << p.name;  // global weight decay, as the reference
  }
}

TEST(FftLongConv, MatchesDirectConvolution) {
  at::manual_seed(18);
  const int64_t B = 2, C = 2, H = 3, L = 23, Lk = 17;
  at::Tensor x = at::randn({B, H, L}, at::kDouble);
  at::Tensor k = at::randn({C, H, Lk}, at::kDouble);
  at::Tensor y = kernels::FftLongConv(x, k, Lk + L);
  at::Tensor ref = at::zeros({B, C, H, L}, at::kDouble);
  for (int64_t t = 0; t < L; ++t) {
    for (int64_t s = 0; s <= std::min(t, Lk - 1); ++s) {
      ref.select(-1, t) += k.select(-1, s).unsqueeze(0) * x.select(-1, t - s).unsqueeze(1);
    }
  }
  EXPECT_LT(MaxAbs(y - ref), 1e-12);
  // Two-sided: the backward half starts at lag +1.
  at::Tensor k1 = at::randn({C, H, L}, at::kDouble), k0 = at::randn({C, H, L}, at::kDouble);
  at::Tensor y2 = kernels::FftLongConv(x, kernels::TwoSidedKernel(k0, k1, L), 2 * L);
  at::Tensor ref2 = kernels::FftLongConv(x, k0, 2 * L);
  for (int64_t t = 0; t < L; ++t) {
    for (int64_t j = 0; t + 1 + j < L; ++j) {
      ref2.select(-1, t) += k1.select(-1, j).unsqueeze(0) * x.select(-1, t + 1 + j).unsqueeze(1);
    }
  }
  EXPECT_LT(MaxAbs(y2 - ref2), 1e-12);
  EXPECT_THROW(kernels::FftLongConv(x, k, L - 1), c10::Error);
}

}  // namespace
}  // namespace loom::models
