#include "models/transformer_lm.h"

#include <ATen/Functions.h>
#include <c10/util/Exception.h>

#include <string>

#include "models/mixer_factory.h"

namespace loom::models {

ResidualBlock::ResidualBlock(const ModelConfig& config, int layer_index, at::ScalarType dtype)
    : dropout_(config.dropout()) {
  ln1_ = register_module("ln1", std::make_shared<LayerNormLayer>(config.d_model(),
                                                                 config.layer_norm_eps(), dtype));
  mixer_ = register_module("mixer", MakeMixer(config, dtype));
  ln2_ = register_module("ln2", std::make_shared<LayerNormLayer>(config.d_model(),
                                                                 config.layer_norm_eps(), dtype));
  ffn_ = register_module("ffn", MakeFfn(config, layer_index, dtype));
}

at::Tensor ResidualBlock::Forward(const at::Tensor& h) {
  auto drop = [&](const at::Tensor& t) {
    return dropout_ > 0 && is_training() ? at::dropout(t, dropout_, /*train=*/true) : t;
  };
  at::Tensor x = h + drop(mixer_->Forward(ln1_->Forward(h)));
  return x + drop(ffn_->Forward(ln2_->Forward(x)));
}

EmbeddingLayer::EmbeddingLayer(int64_t vocab_size, int64_t dim, double init_std,
                               at::ScalarType dtype) {
  weight = register_parameter(
      "weight",
      at::empty({vocab_size, dim}, at::TensorOptions().dtype(dtype)).normal_(0.0, init_std));
}

TransformerLm::TransformerLm(const ModelConfig& config, at::ScalarType dtype) : config_(config) {
  TORCH_CHECK(config.vocab_size() > 0, "model.vocab_size must be resolved before building");
  embedding_ = register_module("embedding",
                               std::make_shared<EmbeddingLayer>(config.vocab_size(),
                                                                config.d_model(),
                                                                config.init_std(), dtype));
  block_list_ = register_module("blocks", torch::nn::ModuleList());
  for (int i = 0; i < config.num_layers(); ++i) {
    blocks_.push_back(std::make_shared<ResidualBlock>(config, i, dtype));
    block_list_->push_back(blocks_.back());
  }
  ln_f_ = register_module("ln_f", std::make_shared<LayerNormLayer>(config.d_model(),
                                                                   config.layer_norm_eps(), dtype));
}

at::Tensor TransformerLm::Hidden(const at::Tensor& tokens) {
  TORCH_CHECK(tokens.dim() == 2 && tokens.scalar_type() == at::kLong,
              "TransformerLm: tokens must be int64 (batch, seq), got ", tokens.sizes(), " ",
              tokens.scalar_type());
  at::Tensor h = at::embedding(embedding_->weight, tokens);
  for (auto& block : blocks_) h = block->Forward(h);
  return ln_f_->Forward(h);
}

at::Tensor TransformerLm::Logits(const at::Tensor& tokens) {
  return at::linear(Hidden(tokens), embedding_->weight);
}

at::Tensor TransformerLm::Loss(const at::Tensor& tokens, const at::Tensor& targets) {
  at::Tensor logits = Logits(tokens);
  // The softmax and the loss in float32 at least (bf16 logits would round the log-probabilities).
  if (logits.scalar_type() != at::kDouble) logits = logits.to(at::kFloat);
  return at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}));
}

int64_t TransformerLm::NumParameters() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

}  // namespace loom::models

namespace loom::models {

std::vector<std::shared_ptr<StructuredLinear>> TransformerLm::StructuredLayers() {
  std::vector<std::shared_ptr<StructuredLinear>> out;
  for (auto& block : blocks_) {
    for (auto& s : block->ffn().StructuredLayers()) out.push_back(s);
  }
  return out;
}

std::vector<ParamOptimOverride> TransformerLm::OptimOverrides() const {
  std::vector<ParamOptimOverride> out;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    for (ParamOptimOverride p : blocks_[i]->mixer().OptimOverrides()) {
      p.name = "blocks." + std::to_string(i) + ".mixer." + p.name;
      out.push_back(std::move(p));
    }
  }
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> TransformerLm::FunctionBuffers() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    for (const auto& item : blocks_[i]->mixer().named_buffers()) {
      out.emplace_back("blocks." + std::to_string(i) + ".mixer." + item.key(), item.value());
    }
  }
  return out;
}

}  // namespace loom::models
