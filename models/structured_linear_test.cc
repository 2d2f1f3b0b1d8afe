#include "models/structured_linear.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/bias_gelu.h"
#include "models/ffn.h"

namespace loom::models {
namespace {

struct LayerCase {
  std::string name;
  std::function<std::shared_ptr<StructuredLinear>()> make;
};

std::vector<LayerCase> Cases() {
  return {
      {"lowrank_up", [] { return std::make_shared<LowRankLinear>(12, 20, 4, true, 0.3, at::kDouble); }},
      {"lowrank_down", [] { return std::make_shared<LowRankLinear>(20, 12, 5, false, 0.3, at::kDouble); }},
      {"blockdense_up", [] { return std::make_shared<BlockDenseLinear>(12, 20, 6, 3, true, 0.3, at::kDouble); }},
      {"blockdense_down", [] { return std::make_shared<BlockDenseLinear>(20, 12, 8, 4, true, 0.3, at::kDouble); }},
      {"blockshuffle_up", [] { return std::make_shared<BlockShuffleLinear>(12, 24, 3, true, 0.3, at::kDouble); }},
      {"blockshuffle_down", [] { return std::make_shared<BlockShuffleLinear>(24, 12, 4, true, 0.3, at::kDouble); }},
      {"blockshuffle_square", [] { return std::make_shared<BlockShuffleLinear>(16, 16, 2, false, 0.3, at::kDouble); }},
  };
}

class StructuredLinearTest : public ::testing::TestWithParam<LayerCase> {};

// Central finite differences of L = sum(y * g) for a sample of entries of x and every parameter.
void ExpectGradientsMatchFiniteDifferences(StructuredLinear& layer, const std::string& what) {
  at::manual_seed(3);
  at::Tensor x = at::randn({2, 3, layer.in_features()}, at::kDouble).requires_grad_(true);
  at::Tensor g = at::randn({2, 3, layer.out_features()}, at::kDouble);
  std::vector<at::Tensor> inputs = {x};
  std::vector<std::string> names = {"x"};
  for (const auto& p : layer.named_parameters()) {
    if (!p.value().requires_grad()) continue;
    inputs.push_back(p.value());
    names.push_back(p.key());
  }
  auto loss_fn = [&] { return (layer.Forward(x) * g).sum(); };
  auto grads = torch::autograd::grad({loss_fn()}, inputs);
  const double h = 1e-6;
  for (size_t i = 0; i < inputs.size(); ++i) {
    at::Tensor flat = inputs[i].detach().view({-1});
    at::Tensor grad = grads[i].reshape({-1});
    for (int64_t j : {int64_t{0}, flat.numel() / 3, flat.numel() - 1}) {
      const double orig = flat[j].item<double>();
      double lp, lm;
      {
        at::NoGradGuard no_grad;
        flat[j] = orig + h;
        lp = loss_fn().item<double>();
        flat[j] = orig - h;
        lm = loss_fn().item<double>();
        flat[j] = orig;
      }
      const double fd = (lp - lm) / (2 * h);
      EXPECT_NEAR(grad[j].item<double>(), fd, 1e-7 * std::max(1.0, std::abs(fd)))
          << what << " d/d" << names[i] << "[" << j << "]";
    }
  }
}

TEST_P(StructuredLinearTest, GradientsMatchFiniteDifferencesFloat64) {
  auto layer = GetParam().make();
  ExpectGradientsMatchFiniteDifferences(*layer, GetParam().name);
}

TEST_P(StructuredLinearTest, SelfGuidedGradientsMatchFiniteDifferences) {
  auto layer = GetParam().make();
  at::Tensor guide = at::randn({layer->out_features(), layer->in_features()}, at::kDouble);
  layer->EnableSelfGuided(guide, /*reduce_flop=*/false, 1);
  layer->SetSelfGuidedState(3, 0.37);
  ExpectGradientsMatchFiniteDifferences(*layer, GetParam().name + "+sgt");
}

TEST_P(StructuredLinearTest, MergedWeightIsTheSameLinearMap) {
  auto layer = GetParam().make();
  at::Tensor x = at::randn({7, layer->in_features()}, at::kDouble);
  at::Tensor structured = layer->StructuredForward(x);
  at::Tensor merged = at::matmul(x, layer->MergedWeight().t());
  EXPECT_LT((structured - merged).abs().max().item<double>(), 1e-12);
}

TEST_P(StructuredLinearTest, SelfGuidedMixesAndCloses) {
  auto layer = GetParam().make();
  at::NoGradGuard no_grad;
  at::Tensor x = at::randn({5, layer->in_features()}, at::kDouble);
  at::Tensor guide = at::randn({layer->out_features(), layer->in_features()}, at::kDouble);
  layer->EnableSelfGuided(guide, false, 1);
  layer->SetSelfGuidedState(2, 0.25);
  at::Tensor expect = 0.25 * at::matmul(x, guide.t()) + 0.75 * layer->StructuredForward(x);
  EXPECT_LT((layer->ForwardNoBias(x) - expect).abs().max().item<double>(), 1e-12);
  layer->CloseSelfGuided();
  EXPECT_FALSE(layer->self_guided());
  EXPECT_FALSE(layer->guide_linear.requires_grad());
  EXPECT_LT((layer->ForwardNoBias(x) - layer->StructuredForward(x)).abs().max().item<double>(), 1e-15);
}

TEST_P(StructuredLinearTest, GuideFromMergedWeightStartsAtTheStructuredMap) {
  // alpha = 1 at step 0: with the guide initialised to W_merged the network is unchanged.
  auto layer = GetParam().make();
  at::NoGradGuard no_grad;
  at::Tensor x = at::randn({5, layer->in_features()}, at::kDouble);
  at::Tensor before = layer->ForwardNoBias(x);
  layer->EnableSelfGuided(layer->MergedWeight(), false, 1);
  EXPECT_DOUBLE_EQ(layer->alpha(), 1.0);
  EXPECT_LT((layer->ForwardNoBias(x) - before).abs().max().item<double>(), 1e-12);
}

TEST_P(StructuredLinearTest, PreMergedInferenceMatchesAndIsOnlyUsedInEval) {
  auto layer = GetParam().make();
  at::NoGradGuard no_grad;
  at::Tensor few = at::randn({3, layer->in_features()}, at::kDouble);
  at::Tensor many = at::randn({40, layer->in_features()}, at::kDouble);
  at::Tensor ref_few = layer->StructuredForward(few);
  at::Tensor ref_many = layer->StructuredForward(many);
  layer->SetMergedForInference(16);
  layer->eval();
  EXPECT_LT((layer->ForwardNoBias(few) - ref_few).abs().max().item<double>(), 1e-12);
  EXPECT_LT((layer->ForwardNoBias(many) - ref_many).abs().max().item<double>(), 1e-12);
  // Training invalidates the cache: after a weight change the eval output follows the weights.
  layer->train();
  layer->ForwardNoBias(few);
  for (auto& p : layer->parameters()) p.mul_(2.0);
  layer->eval();
  at::Tensor now = layer->StructuredForward(few);
  EXPECT_LT((layer->ForwardNoBias(few) - now).abs().max().item<double>(), 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Layers, StructuredLinearTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param.name; });

TEST(SelfGuidedTest, ReduceFlopUsesTheGuideWithProbabilityAlpha) {
  auto layer = std::make_shared<LowRankLinear>(8, 8, 2, true, 0.3, at::kDouble);
  layer->EnableSelfGuided(layer->MergedWeight(), /*reduce_flop=*/true, 42);
  layer->SetSelfGuidedState(1, 0.3);
  at::NoGradGuard no_grad;
  at::Tensor x = at::randn({2, 8}, at::kDouble);
  at::Tensor s = layer->StructuredForward(x);
  const int n = 4000;
  int skipped_outputs = 0;
  for (int i = 0; i < n; ++i) {
    // A skipped draw returns exactly S(x); a used one the mixture (which differs: guide != S here
    // after the perturbation below).
    if (i == 0) layer->guide_linear.add_(1.0);
    if (at::equal(layer->ForwardNoBias(x), s)) ++skipped_outputs;
  }
  EXPECT_EQ(layer->guide_uses() + layer->guide_skips(), n);
  EXPECT_EQ(layer->guide_skips(), skipped_outputs);
  const double used = static_cast<double>(layer->guide_uses()) / n;
  EXPECT_NEAR(used, 0.3, 0.03);  // 4.1 standard deviations
  // Evaluation is deterministic: the full mixture, never a skip.
  layer->eval();
  const int64_t skips = layer->guide_skips();
  for (int i = 0; i < 100; ++i) layer->ForwardNoBias(x);
  EXPECT_EQ(layer->guide_skips(), skips);
}

TEST(SelfGuidedTest, BlockShuffleReferenceGuideIgnoresTheShuffles) {
  auto layer = std::make_shared<BlockShuffleLinear>(16, 32, 2, true, 0.02, at::kDouble);
  at::Tensor reference = layer->ReferenceGuideInit();
  at::Tensor merged = layer->MergedWeight();
  EXPECT_GT((reference - merged).abs().max().item<double>(), 0.1);
}

class LowRankInitTest : public ::testing::TestWithParam<std::vector<int64_t>> {};

// Tall (fc1: d -> 4d) and wide (fc2: 4d -> d) shapes take different Gram-matrix paths.
TEST_P(LowRankInitTest, SvdInitIsTheBestRankRApproximation) {
  at::manual_seed(5);
  at::Tensor w0 = at::randn(GetParam(), at::kDouble);
  at::Tensor lr1, lr2;
  LowRankLinear::SvdInit(w0, 4, &lr1, &lr2);
  at::Tensor s_full = std::get<1>(at::linalg_svd(w0, false));
  at::Tensor s_approx = std::get<1>(at::linalg_svd(at::matmul(lr2, lr1), false));
  EXPECT_LT((s_approx.narrow(0, 0, 4) - s_full.narrow(0, 0, 4)).abs().max().item<double>(), 1e-12);
  EXPECT_LT(s_approx[4].item<double>(), 1e-12);
  // Balanced factors: lr1 lr1^T = lr2^T lr2 = diag(S_R).
  EXPECT_LT((at::matmul(lr1, lr1.t()) - at::matmul(lr2.t(), lr2)).abs().max().item<double>(), 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Shapes, LowRankInitTest,
                         ::testing::Values(std::vector<int64_t>{20, 12},
                                           std::vector<int64_t>{12, 20}));

TEST(InitTest, RankDeficientMatrixFallsBackToTheSvd) {
  at::Tensor w0 = at::zeros({10, 6}, at::kDouble);
  w0[0][0] = 1.0;  // rank 1, asked for rank 3
  at::Tensor lr1, lr2;
  LowRankLinear::SvdInit(w0, 3, &lr1, &lr2);
  EXPECT_LT((at::matmul(lr2, lr1) - w0).abs().max().item<double>(), 1e-12);
}

TEST(InitTest, BlockLayersStartOrthogonal) {
  auto layer = std::make_shared<BlockShuffleLinear>(16, 32, 2, true, 0.02, at::kDouble);
  // Each (s, q) block of blkdiag2 has orthonormal columns: the 0.02 scale is discarded.
  at::Tensor b = layer->blkdiag2;
  at::Tensor gram = at::matmul(b.transpose(1, 2), b);
  EXPECT_LT((gram - at::eye(b.size(2), at::kDouble)).abs().max().item<double>(), 1e-12);
}

TEST(InitTest, BadShapesAreRejected) {
  EXPECT_THROW(LowRankLinear(8, 8, 9, true, 0.02, at::kDouble), c10::Error);
  EXPECT_THROW(BlockDenseLinear(9, 8, 4, 2, true, 0.02, at::kDouble), c10::Error);
  EXPECT_THROW(BlockDenseLinear(8, 8, 3, 2, true, 0.02, at::kDouble), c10::Error);
  EXPECT_THROW(BlockShuffleLinear(8, 9, 2, true, 0.02, at::kDouble), c10::Error);
}

TEST(FfnTest, FirstBlockStaysDenseAndOthersAreStructured) {
  ModelConfig config;
  config.set_d_model(16);
  config.mutable_ffn()->set_type("blockdense");
  config.mutable_ffn()->set_rank(8);
  config.mutable_ffn()->set_nblocks(2);
  auto first = MakeFfn(config, 0, at::kDouble);
  auto second = MakeFfn(config, 1, at::kDouble);
  EXPECT_TRUE(first->StructuredLayers().empty());
  EXPECT_EQ(second->StructuredLayers().size(), 2u);
  config.mutable_ffn()->set_first_layer_dense(false);
  EXPECT_EQ(MakeFfn(config, 0, at::kDouble)->StructuredLayers().size(), 2u);
}

// fc1 -> GELU -> fc2 as three separate calls: the unfused reference for the fused BlockShuffle
// path of FeedForward.
at::Tensor UnfusedFfn(FeedForward& ffn, const at::Tensor& x) {
  at::Tensor h = kernels::BiasGelu(ffn.fc1().ForwardNoBias(x), ffn.fc1().bias);
  at::Tensor y = ffn.fc2().ForwardNoBias(h);
  return ffn.fc2().bias.defined() ? y + ffn.fc2().bias : y;
}

TEST(FfnTest, ToGroupedLayoutTransposesEachGroup) {
  // width 12, group 6, B = 3: column i*6 + k*3 + c goes to i*6 + c*2 + k.
  at::Tensor t = at::arange(12, at::kDouble);
  at::Tensor g = ToGroupedLayout(t, 3, 6);
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t k = 0; k < 2; ++k) {
      for (int64_t c = 0; c < 3; ++c) {
        EXPECT_EQ(g[i * 6 + c * 2 + k].item<double>(), i * 6 + k * 3 + c);
      }
    }
  }
  EXPECT_THROW(ToGroupedLayout(t, 5, 6), c10::Error);
}

// The fused BlockShuffle FFN (grouped layouts, no un-shuffle copy) computes the same function and
// the same gradients as the three layers called one by one, in float64, for equal and unequal
// block counts; and its gradients match finite differences.
TEST(FfnTest, FusedBlockShuffleFfnMatchesTheUnfusedLayers) {
  struct Shape {
    int64_t d, hidden, b1, b2;
  };
  for (Shape sh : {Shape{8, 32, 4, 4}, Shape{12, 48, 2, 3}, Shape{16, 32, 2, 4}}) {
    SCOPED_TRACE("d=" + std::to_string(sh.d) + " B1=" + std::to_string(sh.b1) +
                 " B2=" + std::to_string(sh.b2));
    auto fc1 = std::make_shared<BlockShuffleLinear>(sh.d, sh.hidden, sh.b1, true, 0.3, at::kDouble);
    auto fc2 = std::make_shared<BlockShuffleLinear>(sh.hidden, sh.d, sh.b2, true, 0.3, at::kDouble);
    {
      at::NoGradGuard no_grad;
      fc1->bias.normal_();
      fc2->bias.normal_();
    }
    FeedForward ffn(fc1, fc2, Activation::kGelu);
    at::Tensor x = at::randn({2, 5, sh.d}, at::kDouble).requires_grad_(true);
    at::Tensor g = at::randn({2, 5, sh.d}, at::kDouble);
    std::vector<at::Tensor> inputs = {x, fc1->blkdiag1, fc1->blkdiag2, fc1->bias,
                                      fc2->blkdiag1, fc2->blkdiag2, fc2->bias};
    at::Tensor fused = ffn.Forward(x);
    at::Tensor unfused = UnfusedFfn(ffn, x);
    EXPECT_LT((fused - unfused).abs().max().item<double>(), 1e-13);
    auto gf = torch::autograd::grad({(fused * g).sum()}, inputs);
    auto gu = torch::autograd::grad({(unfused * g).sum()}, inputs);
    for (size_t i = 0; i < inputs.size(); ++i) {
      EXPECT_LT((gf[i] - gu[i]).abs().max().item<double>(), 1e-12) << "input " << i;
    }
    // Finite differences of the fused path, a few entries of every input.
    const double h = 1e-6;
    for (size_t i = 0; i < inputs.size(); ++i) {
      at::Tensor flat = inputs[i].detach().view({-1});
      for (int64_t j : {int64_t{0}, flat.numel() / 2, flat.numel() - 1}) {
        const double orig = flat[j].item<double>();
        double lp, lm;
        {
          at::NoGradGuard no_grad;
          flat[j] = orig + h;
          lp = (ffn.Forward(x) * g).sum().item<double>();
          flat[j] = orig - h;
          lm = (ffn.Forward(x) * g).sum().item<double>();
          flat[j] = orig;
        }
        const double fd = (lp - lm) / (2 * h);
        EXPECT_NEAR(gf[i].reshape({-1})[j].item<double>(), fd, 1e-7 * std::max(1.0, std::abs(fd)))
            << "input " << i << "[" << j << "]";
      }
    }
  }
}

TEST(FfnTest, GuidedBlockShuffleFfnTakesTheUnfusedPath) {
  auto fc1 = std::make_shared<BlockShuffleLinear>(8, 32, 4, true, 0.3, at::kDouble);
  auto fc2 = std::make_shared<BlockShuffleLinear>(32, 8, 4, true, 0.3, at::kDouble);
  fc1->EnableSelfGuided(at::randn({32, 8}, at::kDouble), false, 1);
  fc1->SetSelfGuidedState(1, 0.5);
  FeedForward ffn(fc1, fc2, Activation::kGelu);
  at::NoGradGuard no_grad;
  at::Tensor x = at::randn({3, 8}, at::kDouble);
  EXPECT_LT((ffn.Forward(x) - UnfusedFfn(ffn, x)).abs().max().item<double>(), 1e-13);
  EXPECT_EQ(fc1->guide_uses(), 2);  // the FFN's call and the reference's: the guide was used
}

}  // namespace
}  // namespace loom::models
