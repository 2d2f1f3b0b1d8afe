#include "kernels/lm_head_loss.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <string>

namespace loom::kernels {
namespace {

struct Grads {
  double loss;
  at::Tensor dh, dw;
};

// The unfused reference: ATen's linear + cross_entropy and autograd.
Grads Reference(const at::Tensor& h, const at::Tensor& w, const at::Tensor& t, int64_t ignore,
                double scale = 1.0) {
  at::Tensor hh = h.detach().clone().requires_grad_(true);
  at::Tensor ww = w.detach().clone().requires_grad_(true);
  at::Tensor logits = at::linear(hh, ww);
  at::Tensor loss = at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), t.reshape({-1}),
                                           {}, at::Reduction::Mean, ignore);
  (loss * scale).backward();
  return {loss.item<double>(), hh.grad(), ww.grad()};
}

Grads Fused(const at::Tensor& h, const at::Tensor& w, const at::Tensor& t,
            const LmHeadLossOptions& options, double scale = 1.0) {
  at::Tensor hh = h.detach().clone().requires_grad_(true);
  at::Tensor ww = w.detach().clone().requires_grad_(true);
  at::Tensor loss = LmHeadCrossEntropy(hh, ww, t, options);
  EXPECT_EQ(loss.dim(), 0);
  EXPECT_EQ(loss.scalar_type(), h.scalar_type());
  (loss * scale).backward();
  return {loss.item<double>(), hh.grad(), ww.grad()};
}

double MaxRelDiff(const at::Tensor& a, const at::Tensor& b) {
  const double scale = b.abs().max().item<double>();
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>() / std::max(scale, 1e-300);
}

struct Shape {
  int64_t batch, seq, d, vocab;
};

TEST(LmHeadLossTest, Float64MatchesLinearPlusCrossEntropyForEveryChunking) {
  at::manual_seed(3);
  for (const Shape& s : {Shape{2, 5, 8, 37}, Shape{3, 7, 16, 1003}, Shape{1, 9, 4, 5}}) {
    const auto opts = at::TensorOptions().dtype(at::kDouble);
    const at::Tensor h = at::randn({s.batch, s.seq, s.d}, opts);
    const at::Tensor w = at::randn({s.vocab, s.d}, opts) * 0.5;
    at::Tensor t = at::randint(s.vocab, {s.batch, s.seq}, at::kLong);
    t.view({-1})[1] = -100;  // one ignored row
    const Grads ref = Reference(h, w, t, -100);
    for (int64_t chunk : {int64_t{1}, int64_t{3}, int64_t{7}, int64_t{0}, int64_t{1000}}) {
      SCOPED_TRACE("vocab " + std::to_string(s.vocab) + " chunk " + std::to_string(chunk));
      const Grads got = Fused(h, w, t, LmHeadLossOptions().set_chunk_rows(chunk));
      EXPECT_NEAR(got.loss, ref.loss, 1e-12 * std::abs(ref.loss));
      EXPECT_LT(MaxRelDiff(got.dh, ref.dh), 1e-12);
      EXPECT_LT(MaxRelDiff(got.dw, ref.dw), 1e-12);
      EXPECT_TRUE(got.dh.view({-1, s.d})[1].abs().max().item<double>() == 0.0)
          << "the ignored row gets no gradient";
    }
  }
}

TEST(LmHeadLossTest, Float32VectorisedRowsMatchFloat64Reference) {
  at::manual_seed(4);
  // Vocabularies with and without a tail past the 16 lanes, one above a 1024-element block.
  for (int64_t vocab : {int64_t{7}, int64_t{64}, int64_t{1003}, int64_t{5000}}) {
    SCOPED_TRACE("vocab " + std::to_string(vocab));
    const at::Tensor h = at::randn({4, 6, 32});
    const at::Tensor w = at::randn({vocab, 32}) * 0.3;
    at::Tensor t = at::randint(vocab, {4, 6}, at::kLong);
    t.view({-1})[5] = 7;  // a custom ignore index below
    const Grads ref = Reference(h.to(at::kDouble), w.to(at::kDouble), t, 7);
    const Grads got = Fused(h, w, t, LmHeadLossOptions().set_ignore_index(7).set_chunk_rows(5));
    EXPECT_NEAR(got.loss, ref.loss, 2e-6 * std::abs(ref.loss));
    EXPECT_LT(MaxRelDiff(got.dh, ref.dh), 2e-5);
    EXPECT_LT(MaxRelDiff(got.dw, ref.dw), 2e-5);
  }
}

TEST(LmHeadLossTest, Float32StableForLargeLogits) {
  at::manual_seed(5);
  // Logits of magnitude ~1e3: a naive exp overflows; the shifted one must not.
  const at::Tensor h = at::randn({8, 16}) * 30;
  const at::Tensor w = at::randn({300, 16}) * 10;
  const at::Tensor t = at::randint(300, {8}, at::kLong);
  const Grads ref = Reference(h.to(at::kDouble), w.to(at::kDouble), t, -100);
  const Grads got = Fused(h, w, t, {});
  ASSERT_TRUE(std::isfinite(got.loss));
  EXPECT_NEAR(got.loss, ref.loss, 1e-5 * std::abs(ref.loss));
  EXPECT_LT(MaxRelDiff(got.dh, ref.dh), 1e-5);
  EXPECT_LT(MaxRelDiff(got.dw, ref.dw), 1e-5);
}

TEST(LmHeadLossTest, IncomingGradientScalesBothGradients) {
  at::manual_seed(6);
  for (at::ScalarType dtype : {at::kDouble, at::kFloat}) {
    const auto opts = at::TensorOptions().dtype(dtype);
    const at::Tensor h = at::randn({10, 8}, opts);
    const at::Tensor w = at::randn({50, 8}, opts);
    const at::Tensor t = at::randint(50, {10}, at::kLong);
    const Grads ref = Reference(h, w, t, -100, 0.25);
    const Grads got = Fused(h, w, t, LmHeadLossOptions().set_chunk_rows(4), 0.25);
    EXPECT_LT(MaxRelDiff(got.dh, ref.dh), dtype == at::kDouble ? 1e-12 : 1e-5);
    EXPECT_LT(MaxRelDiff(got.dw, ref.dw), dtype == at::kDouble ? 1e-12 : 1e-5);
  }
}

TEST(LmHeadLossTest, FiniteDifferences) {
  at::manual_seed(7);
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor h = at::randn({5, 3}, opts);
  const at::Tensor w = at::randn({11, 3}, opts);
  const at::Tensor t = at::randint(11, {5}, at::kLong);
  const Grads got = Fused(h, w, t, LmHeadLossOptions().set_chunk_rows(2));
  auto loss_at = [&](const at::Tensor& hh, const at::Tensor& ww) {
    torch::NoGradGuard no_grad;
    return LmHeadCrossEntropy(hh, ww, t, LmHeadLossOptions().set_chunk_rows(2)).item<double>();
  };
  const double eps = 1e-6;
  for (int64_t i = 0; i < h.numel(); ++i) {
    at::Tensor hp = h.clone(), hm = h.clone();
    hp.view({-1})[i] += eps;
    hm.view({-1})[i] -= eps;
    EXPECT_NEAR(got.dh.view({-1})[i].item<double>(), (loss_at(hp, w) - loss_at(hm, w)) / (2 * eps),
                1e-8);
  }
  for (int64_t i = 0; i < w.numel(); i += 3) {
    at::Tensor wp = w.clone(), wm = w.clone();
    wp.view({-1})[i] += eps;
    wm.view({-1})[i] -= eps;
    EXPECT_NEAR(got.dw.view({-1})[i].item<double>(), (loss_at(h, wp) - loss_at(h, wm)) / (2 * eps),
                1e-8);
  }
}

TEST(LmHeadLossTest, OnlyTheGradientsAutogradNeeds) {
  at::manual_seed(8);
  const at::Tensor h = at::randn({6, 4});
  at::Tensor w = at::randn({20, 4}).requires_grad_(true);
  const at::Tensor t = at::randint(20, {6}, at::kLong);
  at::Tensor loss = LmHeadCrossEntropy(h, w, t);  // h is a constant: only dW
  loss.backward();
  ASSERT_TRUE(w.grad().defined());
  const Grads ref = Reference(h, w.detach(), t, -100);
  EXPECT_LT(MaxRelDiff(w.grad(), ref.dw), 1e-5);
  {
    torch::NoGradGuard no_grad;
    EXPECT_NEAR(LmHeadCrossEntropy(h, w, t).item<double>(), ref.loss, 1e-5);
  }
}

TEST(LmHeadLossTest, AllRowsIgnoredIsNanLikeCrossEntropy) {
  const at::Tensor h = at::randn({3, 4}, at::kDouble);
  const at::Tensor w = at::randn({9, 4}, at::kDouble);
  const at::Tensor t = at::full({3}, -100, at::kLong);
  EXPECT_TRUE(std::isnan(LmHeadCrossEntropy(h, w, t).item<double>()));
  EXPECT_TRUE(std::isnan(Reference(h, w, t, -100).loss));
  EXPECT_TRUE(std::isnan(LmHeadCrossEntropy(h.to(at::kFloat), w.to(at::kFloat), t).item<double>()));
}

TEST(LmHeadLossTest, RefusesBadArguments) {
  const at::Tensor h = at::randn({3, 4});
  const at::Tensor w = at::randn({9, 4});
  auto message = [](const auto& f) {
    try {
      f();
    } catch (const c10::Error& e) {
      return std::string(e.what_without_backtrace());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] { LmHeadCrossEntropy(h, w, at::tensor({0, 9, 1}, at::kLong)); })
                .find("target 9 at row 1 is outside the vocabulary [0, 9)"),
            std::string::npos);
  EXPECT_NE(message([&] { LmHeadCrossEntropy(h, w.to(at::kDouble), at::zeros({3}, at::kLong)); })
                .find("weight dtype"),
            std::string::npos);
  EXPECT_NE(message([&] { LmHeadCrossEntropy(h, at::randn({9, 5}), at::zeros({3}, at::kLong)); })
                .find("is not (vocab, 4)"),
            std::string::npos);
  EXPECT_NE(message([&] { LmHeadCrossEntropy(h, w, at::zeros({4}, at::kLong)); })
                .find("4 targets for 3 rows"),
            std::string::npos);
  EXPECT_NE(message([&] {
              LmHeadCrossEntropy(h.to(at::kBFloat16), w.to(at::kBFloat16),
                                 at::zeros({3}, at::kLong));
            }).find("not supported"),
            std::string::npos);
  at::Tensor hh = h.clone().requires_grad_(true);
  at::Tensor loss = LmHeadCrossEntropy(hh, w, at::zeros({3}, at::kLong));
  loss.backward({}, /*retain_graph=*/true);
  EXPECT_NE(message([&] { loss.backward(); }).find("backward ran twice"), std::string::npos);
}

}  // namespace
}  // namespace loom::kernels
