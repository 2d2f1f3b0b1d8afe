#include "models/transformer_lm.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <map>
#include <string>

#include "gtest/gtest.h"
#include "core/flops.h"
#include "models/registry.h"

namespace loom::models {
namespace {

ModelConfig TinyConfig() {
  ModelConfig c;
  c.set_vocab_size(23);
  c.set_num_layers(2);
  c.set_d_model(8);
  c.mutable_mixer()->set_num_heads(2);
  c.mutable_ffn()->set_hidden_dim(16);
  c.set_dtype("float64");
  // A larger init than the default 0.02 so every path contributes visibly to the gradient.
  c.set_init_std(0.3);
  return c;
}

TEST(TransformerLmTest, ParameterNamesFollowTheModuleTree) {
  auto model = BuildLanguageModel(TinyConfig(), 1);
  ASSERT_TRUE(model.ok());
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& item : (*model)->named_parameters()) {
    shapes[item.key()] = item.value().sizes().vec();
  }
  EXPECT_EQ(shapes.at("embedding.weight"), (std::vector<int64_t>{23, 8}));
  EXPECT_EQ(shapes.at("blocks.0.mixer.qkv.weight"), (std::vector<int64_t>{24, 8}));
  EXPECT_EQ(shapes.at("blocks.1.ffn.fc1.weight"), (std::vector<int64_t>{16, 8}));
  EXPECT_EQ(shapes.at("blocks.1.ffn.fc2.bias"), (std::vector<int64_t>{8}));
  EXPECT_EQ(shapes.at("ln_f.weight"), (std::vector<int64_t>{8}));
  // V d + L (4d^2 + 4d [attn] + 2 d f + f + d [ffn] + 4d [2 LN]) + 2d [ln_f]
  const int64_t d = 8, f = 16, L = 2, V = 23;
  EXPECT_EQ((*model)->NumParameters(),
            V * d + L * (4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d) + 2 * d);
}

// The same decoder with each convolutional mixer: causal, parameter count as the FLOP accounting
// computes it, optimizer overrides and function buffers named from the model root.
TEST(TransformerLmTest, ConvolutionalMixersPlugIntoTheBlock) {
  for (const std::string type : {"s4", "s4d", "sgconv"}) {
    SCOPED_TRACE(type);
    ModelConfig c = TinyConfig();
    c.mutable_mixer()->set_type(type);
    c.mutable_mixer()->mutable_s4()->set_d_state(8);
    c.mutable_mixer()->mutable_s4()->set_l_max(6);
    c.mutable_mixer()->mutable_sgconv()->set_kernel_dim(2);
    c.mutable_mixer()->mutable_sgconv()->set_l_max(6);
    auto built = BuildLanguageModel(c, 5);
    ASSERT_TRUE(built.ok()) << built.status();
    auto model = *built;
    EXPECT_EQ(model->NumParameters(), CountParameters(c).params);
    at::Tensor tokens = at::randint(0, 23, {2, 6}, at::kLong);
    at::Tensor changed = tokens.clone();
    changed.index_put_({at::indexing::Slice(), 4}, (tokens.select(1, 4) + 1) % 23);
    at::Tensor a = model->Logits(tokens), b = model->Logits(changed);
    EXPECT_TRUE(at::allclose(a.narrow(1, 0, 4), b.narrow(1, 0, 4), 0, 1e-12));
    EXPECT_FALSE(at::allclose(a.narrow(1, 4, 2), b.narrow(1, 4, 2), 0, 1e-6));
    const auto overrides = model->OptimOverrides();
    ASSERT_FALSE(overrides.empty());
    EXPECT_EQ(overrides.front().name.rfind("blocks.0.mixer.", 0), 0u) << overrides.front().name;
    const auto buffers = model->FunctionBuffers();
    EXPECT_EQ(buffers.empty(), type == "s4d");  // S4D's kernel is a function of its parameters
    if (type == "s4") {
      EXPECT_EQ(buffers.front().first, "blocks.0.mixer.layer.kernel.l_kernel");
      EXPECT_EQ(buffers.front().second.item<int64_t>(), 6);
    }
  }
}

// Autoregressive generation in recurrent mode reproduces the convolution-mode logits.
TEST(TransformerLmTest, RecurrentGenerationEqualsConvolutionMode) {
  for (const auto& [type, mode] : std::vector<std::pair<std::string, std::string>>{
           {"s4", "dense"}, {"s4", "linear"}, {"s4d", "dense"}}) {
    SCOPED_TRACE(type + " " + mode);
    ModelConfig c = TinyConfig();
    c.set_init_std(0.1);
    c.mutable_mixer()->set_type(type);
    c.mutable_mixer()->mutable_s4()->set_d_state(8);
    c.mutable_mixer()->mutable_s4()->set_l_max(12);
    c.mutable_ffn()->set_type("lowrank");
    c.mutable_ffn()->set_rank(4);
    auto model = *BuildLanguageModel(c, 21);
    model->eval();
    at::NoGradGuard no_grad;
    at::Tensor tokens = at::randint(0, 23, {2, 10}, at::kLong);
    at::Tensor full = model->Logits(tokens);
    auto gen = model->StartGeneration(2, mode);
    for (int64_t t = 0; t < 10; ++t) {
      at::Tensor step = model->GenerationStep(tokens.select(1, t), gen);
      ASSERT_LT((step - full.select(1, t)).abs().max().item<double>(), 1e-10) << "t=" << t;
    }
  }
  auto attention = *BuildLanguageModel(TinyConfig(), 1);
  EXPECT_THROW(attention->StartGeneration(1), c10::Error);
}

TEST(TransformerLmTest, DropoutOnlyWhileTraining) {
  ModelConfig c = TinyConfig();
  c.set_dropout(0.3);
  auto model = *BuildLanguageModel(c, 9);
  at::Tensor tokens = at::randint(0, 23, {2, 6}, at::kLong);
  model->train();
  at::Tensor a = model->Logits(tokens), b = model->Logits(tokens);
  EXPECT_FALSE(at::allclose(a, b));
  model->eval();
  at::Tensor e1 = model->Logits(tokens), e2 = model->Logits(tokens);
  EXPECT_TRUE(at::equal(e1, e2));
  c.set_dropout(0.0);
  auto plain = *BuildLanguageModel(c, 9);
  EXPECT_TRUE(at::allclose(plain->Logits(tokens), e1, 0, 1e-12));
}

TEST(TransformerLmTest, SameSeedSameWeights) {
  auto a = BuildLanguageModel(TinyConfig(), 7);
  auto b = BuildLanguageModel(TinyConfig(), 7);
  auto c = BuildLanguageModel(TinyConfig(), 8);
  auto pa = (*a)->parameters(), pb = (*b)->parameters(), pc = (*c)->parameters();
  EXPECT_TRUE(at::equal(pa[0], pb[0]));
  EXPECT_FALSE(at::equal(pa[0], pc[0]));
}

TEST(TransformerLmTest, IsCausal) {
  auto model = *BuildLanguageModel(TinyConfig(), 3);
  at::Tensor tokens = at::randint(0, 23, {2, 6}, at::kLong);
  at::Tensor changed = tokens.clone();
  changed.index_put_({at::indexing::Slice(), 4}, (tokens.select(1, 4) + 1) % 23);
  at::Tensor a = model->Logits(tokens);
  at::Tensor b = model->Logits(changed);
  EXPECT_TRUE(at::allclose(a.narrow(1, 0, 4), b.narrow(1, 0, 4), 0, 1e-14));
  EXPECT_FALSE(at::allclose(a.narrow(1, 4, 2), b.narrow(1, 4, 2), 0, 1e-6));
}

TEST(TransformerLmTest, RopeMakesAttentionOrderAware) {
  // Without position information the last position attends to a *set* of earlier tokens, so
  // swapping two of them could not change its output. With RoPE it must.
  auto model = *BuildLanguageModel(TinyConfig(), 4);
  at::Tensor a = at::tensor({1, 2, 3, 4}, at::kLong).reshape({1, 4});
  at::Tensor b = at::tensor({2, 1, 3, 4}, at::kLong).reshape({1, 4});
  at::Tensor la = model->Logits(a), lb = model->Logits(b);
  EXPECT_FALSE(at::allclose(la[0][3], lb[0][3], 0, 1e-8));
}

// Float64 gradient check of the whole model: analytic gradients of the loss against central
// finite differences for a sample of entries of every parameter tensor.
void ExpectModelGradientsMatch(TransformerLm* model);

TEST(TransformerLmTest, GradientMatchesFiniteDifferencesFloat64) {
  auto model = *BuildLanguageModel(TinyConfig(), 5);
  ExpectModelGradientsMatch(model.get());
}

TEST(TransformerLmTest, StructuredGqaModelGradientMatchesFiniteDifferences) {
  ModelConfig c = TinyConfig();
  c.set_num_layers(3);
  c.mutable_mixer()->set_num_heads(4);
  c.mutable_mixer()->set_num_kv_heads(2);
  c.mutable_mixer()->set_attn_dim(16);  // wider than d_model: attention width is its own knob
  c.mutable_ffn()->set_type("blockshuffle");
  c.mutable_ffn()->set_nblocks(2);
  c.mutable_ffn()->set_activation("swiglu");
  auto model = *BuildLanguageModel(c, 6);
  EXPECT_EQ(model->StructuredLayers().size(), 4u);  // blocks 1 and 2, fc1 and fc2
  ExpectModelGradientsMatch(model.get());
}

TEST(TransformerLmTest, FusedHeadLossEqualsCrossEntropyOfLogitsFloat32) {
  // Loss runs the fused head (kernels/lm_head_loss.h); Logits + cross_entropy is the plain path.
  ModelConfig c = TinyConfig();
  c.set_dtype("float32");
  c.set_vocab_size(1003);  // past the 16-lane and 1024-element blocks of the row loop
  auto model = *BuildLanguageModel(c, 7);
  at::manual_seed(12);
  const at::Tensor tokens = at::randint(0, 1003, {3, 9}, at::kLong);
  const at::Tensor targets = at::randint(0, 1003, {3, 9}, at::kLong);
  std::vector<at::Tensor> plist;
  for (const auto& it : model->named_parameters()) plist.push_back(it.value());
  const at::Tensor fused = model->Loss(tokens, targets);
  const auto fused_grads = torch::autograd::grad({fused}, plist);
  const at::Tensor logits = model->Logits(tokens);
  const at::Tensor plain = at::cross_entropy_loss(logits.reshape({-1, 1003}), targets.reshape({-1}));
  const auto plain_grads = torch::autograd::grad({plain}, plist);
  EXPECT_NEAR(fused.item<double>(), plain.item<double>(), 1e-5);
  for (size_t i = 0; i < plist.size(); ++i) {
    const double scale = plain_grads[i].abs().max().item<double>();
    EXPECT_LE((fused_grads[i] - plain_grads[i]).abs().max().item<double>(), 1e-4 * scale + 1e-9)
        << "parameter " << i;
  }
}

void ExpectModelGradientsMatch(TransformerLm* model) {
  at::manual_seed(11);
  at::Tensor tokens = at::randint(0, 23, {2, 5}, at::kLong);
  at::Tensor targets = at::randint(0, 23, {2, 5}, at::kLong);
  auto params = model->named_parameters();
  std::vector<at::Tensor> plist;
  for (const auto& it : params) plist.push_back(it.value());
  at::Tensor loss = model->Loss(tokens, targets);
  auto grads = torch::autograd::grad({loss}, plist);

  const double h = 1e-6;
  int checked = 0;
  for (size_t i = 0; i < plist.size(); ++i) {
    at::Tensor p = plist[i];
    at::Tensor flat = p.detach().view({-1});
    at::Tensor gflat = grads[i].reshape({-1});
    const int64_t n = flat.numel();
    for (int64_t j : {int64_t{0}, n / 2, n - 1}) {
      const double orig = flat[j].item<double>();
      double lp, lm;
      {
        at::NoGradGuard no_grad;
        flat[j] = orig + h;
        lp = model->Loss(tokens, targets).item<double>();
        flat[j] = orig - h;
        lm = model->Loss(tokens, targets).item<double>();
        flat[j] = orig;
      }
      const double fd = (lp - lm) / (2 * h);
      const double an = gflat[j].item<double>();
      EXPECT_NEAR(an, fd, 1e-7 + 1e-6 * std::abs(fd)) << params[i].key() << "[" << j << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 50);
}

}  // namespace
}  // namespace loom::models
