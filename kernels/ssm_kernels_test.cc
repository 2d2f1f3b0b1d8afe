#include "kernels/ssm_kernels.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>

namespace loom::kernels {
namespace {

at::Tensor RandC(at::IntArrayRef shape, at::ScalarType dtype = at::kComplexDouble) {
  return at::randn(shape, at::TensorOptions().dtype(dtype));
}

// The materialised formulas the reference code uses, differentiated by ATen's complex autograd.
at::Tensor NaiveCauchy(const at::Tensor& v, const at::Tensor& z, const at::Tensor& w) {
  at::Tensor zk = z.view({1, 1, 1, -1});
  at::Tensor wn = w.unsqueeze(0).unsqueeze(-1);  // (1, H, N, 1)
  at::Tensor vn = v.unsqueeze(-1);                // (M, H, N, 1)
  return (vn / (zk - wn) + vn.conj() / (zk - wn.conj())).sum(2);
}

at::Tensor NaiveVandermonde(const at::Tensor& W, const at::Tensor& x, int64_t length) {
  at::Tensor l = at::arange(length, at::TensorOptions().dtype(at::kDouble)).to(x.scalar_type());
  at::Tensor E = at::exp(x.unsqueeze(-1) * l);  // (H, N, L)
  return 2 * at::real((W.unsqueeze(-1) * E.unsqueeze(0)).sum(2));
}

double MaxRel(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item<double>();
}

// S4's shapes: poles in the left half plane, nodes on the imaginary axis.
at::Tensor Poles(int64_t H, int64_t N) {
  return at::complex(-at::rand({H, N}, at::kDouble) - 0.05, at::randn({H, N}, at::kDouble) * 3);
}
at::Tensor Nodes(int64_t K) {
  return at::complex(at::zeros({K}, at::kDouble), at::randn({K}, at::kDouble) * 4);
}

TEST(CauchyConjugateSum, MatchesMaterialisedFormulaAndItsAutograd) {
  at::manual_seed(1);
  for (auto [M, H, N, K] : {std::tuple{1, 1, 1, 1}, {3, 5, 7, 37}, {4, 2, 16, 200}}) {
    at::Tensor v = RandC({M, H, N}).requires_grad_(), w = Poles(H, N).requires_grad_();
    at::Tensor z = Nodes(K);
    at::Tensor g = RandC({M, H, K});
    at::Tensor r = CauchyConjugateSum(v, z, w);
    at::Tensor ref = NaiveCauchy(v, z, w);
    EXPECT_LT(MaxRel(r, ref), 1e-13) << M << "x" << H << "x" << N << "x" << K;
    // A real loss that uses both real and imaginary parts: Re sum(r * g).
    auto grads = torch::autograd::grad({at::real((r * g).sum())}, {v, w});
    auto ref_grads = torch::autograd::grad({at::real((ref * g).sum())}, {v, w});
    EXPECT_LT(MaxRel(grads[0], ref_grads[0]), 1e-12);
    EXPECT_LT(MaxRel(grads[1], ref_grads[1]), 1e-12);
  }
}

TEST(CauchyConjugateSum, GradientMatchesFiniteDifferences) {
  at::manual_seed(2);
  at::Tensor v = RandC({2, 3, 4}), w = Poles(3, 4), z = Nodes(9), g = RandC({2, 3, 9});
  auto loss = [&](const at::Tensor& vv, const at::Tensor& ww) {
    return at::real((CauchyForward(vv, z, ww) * g).sum()).item<double>();
  };
  at::Tensor vr = v.clone().requires_grad_(), wr = w.clone().requires_grad_();
  auto grads = torch::autograd::grad({at::real((CauchyConjugateSum(vr, z, wr) * g).sum())},
                                     {vr, wr});
  const double eps = 1e-6;
  for (int which = 0; which < 2; ++which) {
    at::Tensor base = which == 0 ? v : w;
    at::Tensor flat = at::view_as_real(base).flatten();
    at::Tensor grad_flat = at::view_as_real(grads[which]).flatten();
    for (int64_t i = 0; i < flat.numel(); i += 3) {
      at::Tensor plus = base.clone(), minus = base.clone();
      at::view_as_real(plus).flatten()[i] += eps;
      at::view_as_real(minus).flatten()[i] -= eps;
      const double fd = which == 0 ? (loss(plus, w) - loss(minus, w)) / (2 * eps)
                                   : (loss(v, plus) - loss(v, minus)) / (2 * eps);
      EXPECT_NEAR(grad_flat[i].item<double>(), fd, 1e-6 * std::max(1.0, std::abs(fd)))
          << (which == 0 ? "v" : "w") << " element " << i;
    }
  }
}

TEST(VandermondeRealSum, MatchesMaterialisedFormulaAndItsAutograd) {
  at::manual_seed(3);
  // Lengths below, at and across the 64-wide tiles of the CPU path.
  for (auto [M, H, N, L] : {std::tuple{1, 1, 1, 1}, {2, 3, 5, 64}, {3, 4, 8, 300}}) {
    at::Tensor W = RandC({M, H, N}).requires_grad_();
    at::Tensor x = at::complex(-at::rand({H, N}, at::kDouble) * 0.1,
                               at::randn({H, N}, at::kDouble)).requires_grad_();
    at::Tensor g = at::randn({M, H, L}, at::kDouble);
    at::Tensor k = VandermondeRealSum(W, x, L);
    at::Tensor ref = NaiveVandermonde(W, x, L);
    EXPECT_EQ(k.scalar_type(), at::kDouble);
    EXPECT_LT(MaxRel(k, ref), 1e-13) << M << "x" << H << "x" << N << "x" << L;
    auto grads = torch::autograd::grad({(k * g).sum()}, {W, x});
    auto ref_grads = torch::autograd::grad({(ref * g).sum()}, {W, x});
    EXPECT_LT(MaxRel(grads[0], ref_grads[0]), 1e-12);
    EXPECT_LT(MaxRel(grads[1], ref_grads[1]), 1e-12);
  }
}

TEST(VandermondeRealSum, GradientMatchesFiniteDifferences) {
  at::manual_seed(4);
  at::Tensor W = RandC({2, 2, 3});
  at::Tensor x = at::complex(-at::rand({2, 3}, at::kDouble) * 0.1, at::randn({2, 3}, at::kDouble));
  at::Tensor g = at::randn({2, 2, 70}, at::kDouble);
  auto loss = [&](const at::Tensor& WW, const at::Tensor& xx) {
    return (VandermondeForward(WW, xx, 70) * g).sum().item<double>();
  };
  at::Tensor Wr = W.clone().requires_grad_(), xr = x.clone().requires_grad_();
  auto grads = torch::autograd::grad({(VandermondeRealSum(Wr, xr, 70) * g).sum()}, {Wr, xr});
  const double eps = 1e-7;
  for (int which = 0; which < 2; ++which) {
    at::Tensor base = which == 0 ? W : x;
    at::Tensor grad_flat = at::view_as_real(grads[which]).flatten();
    for (int64_t i = 0; i < 2 * base.numel(); ++i) {
      at::Tensor plus = base.clone(), minus = base.clone();
      at::view_as_real(plus).flatten()[i] += eps;
      at::view_as_real(minus).flatten()[i] -= eps;
      const double fd = which == 0 ? (loss(plus, x) - loss(minus, x)) / (2 * eps)
                                   : (loss(W, plus) - loss(W, minus)) / (2 * eps);
      EXPECT_NEAR(grad_flat[i].item<double>(), fd, 1e-5 * std::max(1.0, std::abs(fd)))
          << (which == 0 ? "W" : "x") << " element " << i;
    }
  }
}

TEST(SsmKernels, Complex64AgreesWithComplex128) {
  at::manual_seed(5);
  at::Tensor v = RandC({2, 3, 8}), w = Poles(3, 8), z = Nodes(50);
  at::Tensor r64 = CauchyForward(v, z, w);
  at::Tensor r32 = CauchyForward(v.to(at::kComplexFloat), z.to(at::kComplexFloat),
                                 w.to(at::kComplexFloat));
  EXPECT_EQ(r32.scalar_type(), at::kComplexFloat);
  EXPECT_LT(MaxRel(r32.to(at::kComplexDouble), r64), 1e-5);
  at::Tensor x = at::complex(-at::rand({3, 8}, at::kDouble) * 0.1, at::randn({3, 8}, at::kDouble));
  at::Tensor k64 = VandermondeForward(v, x, 500);
  at::Tensor k32 = VandermondeForward(v.to(at::kComplexFloat), x.to(at::kComplexFloat), 500);
  EXPECT_EQ(k32.scalar_type(), at::kFloat);
  EXPECT_LT(MaxRel(k32.to(at::kDouble), k64), 1e-4);
}

TEST(SsmKernels, RejectsBadArguments) {
  at::Tensor v = RandC({2, 3, 4}), z = Nodes(5).to(at::kComplexDouble), w = Poles(3, 4);
  EXPECT_THROW(CauchyForward(v, z, Poles(3, 5)), c10::Error);
  EXPECT_THROW(CauchyForward(at::real(v), z, w), c10::Error);
  EXPECT_THROW(VandermondeForward(v, w, -1), c10::Error);
  EXPECT_THROW(VandermondeForward(v, Poles(2, 4), 10), c10::Error);
  try {
    CauchyForward(v, z, Poles(3, 5));
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("w shape"), std::string::npos);
  }
}

}  // namespace
}  // namespace loom::kernels
