#include "kernels/bias_gelu.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>

#include "gtest/gtest.h"

namespace loom::kernels {
namespace {

// The naive composite: what the fused kernel must equal.
at::Tensor NaiveGelu(const at::Tensor& v) {
  return v * 0.5 * (1.0 + at::tanh(0.79788456 * v * (1.0 + 0.044715 * v * v)));
}

TEST(BiasGeluTest, ForwardMatchesNaiveFormulaFloat64) {
  at::manual_seed(1);
  at::Tensor u = at::randn({7, 33}, at::kDouble) * 3;
  at::Tensor b = at::randn({33}, at::kDouble);
  at::Tensor y = BiasGeluForward(u, b);
  EXPECT_LT((y - NaiveGelu(u + b)).abs().max().item<double>(), 1e-15);
  at::Tensor y_nobias = BiasGeluForward(u, at::Tensor());
  EXPECT_LT((y_nobias - NaiveGelu(u)).abs().max().item<double>(), 1e-15);
}

TEST(BiasGeluTest, TruncatedConstantDiffersFromExactTanhGelu) {
  // The reference's literal 0.79788456 is not sqrt(2/pi); at u = 3 the two differ measurably.
  at::Tensor u = at::full({1, 1}, -2.5, at::kDouble);
  at::Tensor ours = BiasGeluForward(u, at::Tensor());
  at::Tensor exact = at::gelu(u, "tanh");
  EXPECT_GT((ours - exact).abs().item<double>(), 1e-11);
}

TEST(BiasGeluTest, GradientsMatchAutogradOfNaiveFormula) {
  at::manual_seed(2);
  at::Tensor u = (at::randn({5, 4, 16}, at::kDouble) * 2).requires_grad_(true);
  at::Tensor b = at::randn({16}, at::kDouble).requires_grad_(true);
  at::Tensor g = at::randn({5, 4, 16}, at::kDouble);
  at::Tensor y = BiasGelu(u, b);
  auto grads = torch::autograd::grad({(y * g).sum()}, {u, b});
  at::Tensor u2 = u.detach().clone().requires_grad_(true);
  at::Tensor b2 = b.detach().clone().requires_grad_(true);
  auto ref = torch::autograd::grad({(NaiveGelu(u2 + b2) * g).sum()}, {u2, b2});
  EXPECT_LT((grads[0] - ref[0]).abs().max().item<double>(), 1e-11);  // spec: <= 5e-13 per unit cotangent
  EXPECT_LT((grads[1] - ref[1]).abs().max().item<double>(), 1e-11);
  // Without a bias, through autograd too.
  at::Tensor gn = torch::autograd::grad({(BiasGelu(u, at::Tensor()) * g).sum()}, {u})[0];
  at::Tensor refn = torch::autograd::grad({(NaiveGelu(u2) * g).sum()}, {u2})[0];
  EXPECT_LT((gn - refn).abs().max().item<double>(), 1e-11);
}

// The fused bias gradient (chunked column sums over many rows) equals du summed over rows, and is
// bit-identical whatever the thread count.
TEST(BiasGeluTest, FusedBiasGradientEqualsColumnSumsAndIsDeterministic) {
  at::manual_seed(5);
  for (auto dtype : {at::kDouble, at::kFloat}) {
    at::Tensor u = at::randn({300, 40}, dtype), b = at::randn({40}, dtype);
    at::Tensor g = at::randn({300, 40}, dtype);
    auto [du, db] = BiasGeluBackwardWithBiasGrad(g, u, b);
    EXPECT_TRUE(at::equal(du, BiasGeluBackward(g, u, b)));
    const double tol = dtype == at::kDouble ? 1e-12 : 1e-4;
    EXPECT_LT((db - du.to(at::kDouble).sum(0).to(dtype)).abs().max().item<double>(), tol);
    const int threads = at::get_num_threads();
    at::set_num_threads(1);
    auto [du1, db1] = BiasGeluBackwardWithBiasGrad(g, u, b);
    at::set_num_threads(threads);
    EXPECT_TRUE(at::equal(db1, db));
  }
  EXPECT_THROW(BiasGeluBackwardWithBiasGrad(at::zeros({2, 3}), at::zeros({2, 3}), at::Tensor()),
               c10::Error);
}

TEST(BiasGeluTest, DerivativeMatchesCentralFiniteDifferences) {
  at::Tensor u = at::linspace(-6, 6, 241, at::kDouble).reshape({1, -1});
  at::Tensor ones = at::ones_like(u);
  at::Tensor d = BiasGeluBackward(ones, u, at::Tensor());
  const double h = 1e-6;
  at::Tensor fd = (BiasGeluForward(u + h, at::Tensor()) - BiasGeluForward(u - h, at::Tensor())) /
                  (2 * h);
  EXPECT_LT((d - fd).abs().max().item<double>(), 1e-8);
}

TEST(BiasGeluTest, Float32AndBfloat16AgreeWithFloat64) {
  at::manual_seed(3);
  at::Tensor u = at::randn({64, 128}, at::kDouble);
  at::Tensor b = at::randn({128}, at::kDouble);
  at::Tensor ref = BiasGeluForward(u, b);
  at::Tensor f32 = BiasGeluForward(u.to(at::kFloat), b.to(at::kFloat)).to(at::kDouble);
  EXPECT_LT((f32 - ref).abs().max().item<double>(), 1e-5);
  at::Tensor bf = BiasGeluForward(u.to(at::kBFloat16), b.to(at::kBFloat16)).to(at::kDouble);
  EXPECT_LT((bf - ref).abs().max().item<double>(), 5e-2);
}

TEST(BiasGeluTest, RejectsMismatchedBias) {
  at::Tensor u = at::randn({2, 8});
  at::Tensor b = at::randn({7});
  EXPECT_THROW(BiasGeluForward(u, b), c10::Error);
  EXPECT_THROW(BiasGeluForward(u, b.to(at::kDouble).narrow(0, 0, 7)), c10::Error);
}

// BiasGeluInterleaveBatches equals BiasGelu on the explicitly permuted matrix, bit for bit (the
// same row loops over the same values, the bias sums in the same chunk order), in both directions,
// with and without a bias, for run lengths from 1 to the whole batch width and row counts that
// cross the 64-row sum chunks.
TEST(BiasGeluTest, InterleaveBatchesEqualsBiasGeluOnThePermutedMatrix) {
  at::manual_seed(6);
  const int64_t b = 3, n = 70, s = 12;
  for (auto dtype : {at::kFloat, at::kDouble}) {
    for (int64_t run : {1, 4, 12}) {
      for (bool with_bias : {true, false}) {
        SCOPED_TRACE("run=" + std::to_string(run) + " bias=" + std::to_string(with_bias));
        at::Tensor z = (at::randn({b, n, s}, dtype) * 2).requires_grad_(true);
        at::Tensor bias = with_bias ? at::randn({b * s}, dtype).requires_grad_(true)
                                    : at::Tensor();
        at::Tensor g = at::randn({n, b * s}, dtype);
        at::Tensor y = BiasGeluInterleaveBatches(z, bias, run);
        at::Tensor z2 = z.detach().clone().requires_grad_(true);
        at::Tensor bias2 = with_bias ? bias.detach().clone().requires_grad_(true) : at::Tensor();
        at::Tensor permuted = z2.view({b, n, s / run, run}).permute({1, 2, 0, 3}).reshape({n, b * s});
        at::Tensor ref = BiasGelu(permuted, bias2);
        ASSERT_EQ(y.sizes(), ref.sizes());
        EXPECT_TRUE(at::equal(y, ref));
        EXPECT_TRUE(at::equal(BiasGeluInterleaveBatchesForward(z.detach(), bias, run), ref));
        std::vector<at::Tensor> in = {z}, in2 = {z2};
        if (with_bias) {
          in.push_back(bias);
          in2.push_back(bias2);
        }
        auto grads = torch::autograd::grad({(y * g).sum()}, in);
        auto refs = torch::autograd::grad({(ref * g).sum()}, in2);
        EXPECT_TRUE(at::equal(grads[0], refs[0]));
        if (with_bias) EXPECT_TRUE(at::equal(grads[1], refs[1]));
        auto [gz, gb] = BiasGeluInterleaveBatchesBackward(g, z.detach(), bias, run);
        EXPECT_TRUE(at::equal(gz, refs[0]));
        EXPECT_EQ(gb.defined(), with_bias);
      }
    }
  }
}

TEST(BiasGeluTest, InterleaveBatchesGradientsMatchFiniteDifferences) {
  at::manual_seed(7);
  at::Tensor z = at::randn({2, 3, 4}, at::kDouble).requires_grad_(true);
  at::Tensor bias = at::randn({8}, at::kDouble).requires_grad_(true);
  at::Tensor g = at::randn({3, 8}, at::kDouble);
  auto grads = torch::autograd::grad({(BiasGeluInterleaveBatches(z, bias, 2) * g).sum()},
                                     {z, bias});
  const double h = 1e-6;
  for (int which = 0; which < 2; ++which) {
    at::Tensor flat = (which == 0 ? z : bias).detach().view({-1});
    for (int64_t j = 0; j < flat.numel(); ++j) {
      const double orig = flat[j].item<double>();
      double lp, lm;
      {
        at::NoGradGuard no_grad;
        flat[j] = orig + h;
        lp = (BiasGeluInterleaveBatchesForward(z, bias, 2) * g).sum().item<double>();
        flat[j] = orig - h;
        lm = (BiasGeluInterleaveBatchesForward(z, bias, 2) * g).sum().item<double>();
        flat[j] = orig;
      }
      EXPECT_NEAR(grads[which].reshape({-1})[j].item<double>(), (lp - lm) / (2 * h), 1e-8)
          << (which == 0 ? "z" : "bias") << "[" << j << "]";
    }
  }
}

TEST(BiasGeluTest, InterleaveBatchesRejectsBadShapes) {
  at::Tensor z = at::randn({2, 3, 6});
  EXPECT_THROW(BiasGeluInterleaveBatches(z, at::Tensor(), 4), c10::Error);   // 4 does not divide 6
  EXPECT_THROW(BiasGeluInterleaveBatches(z, at::randn({6}), 3), c10::Error);  // bias is B*s = 12
  EXPECT_THROW(BiasGeluInterleaveBatches(z.view({6, 6}), at::Tensor(), 3), c10::Error);
  EXPECT_THROW(BiasGeluInterleaveBatchesBackward(at::randn({3, 6}), z, at::Tensor(), 3),
               c10::Error);  // gradient must be (n, B*s) = (3, 12)
}

TEST(BiasGeluTest, CpuBuildReportsCudaAvailability) {
#ifdef LOOM_CUDA
  EXPECT_TRUE(BiasGeluHasCuda());
#else
  EXPECT_FALSE(BiasGeluHasCuda());
#endif
}

}  // namespace
}  // namespace loom::kernels
