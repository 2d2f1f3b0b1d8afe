#include "models/transformer_lm.h"

#include <ATen/Functions.h>
#include <c10/util/Exception.h>

#include <limits>
#include <string>
#include <vector>

#include "kernels/lm_head_loss.h"
#include "models/mixer_factory.h"
#include "models/s4.h"

namespace loom::models {

ResidualBlock::ResidualBlock(const ModelConfig& config, int layer_index, at::ScalarType dtype)
    : dropout_(config.dropout()) {
  ln1_ = register_module("ln1", std::make_shared<LayerNormLayer>(config.d_model(),
                                                                 config.layer_norm_eps(), dtype));
  mixer_ = register_module("mixer", MakeMixer(config, dtype));
  if (config.ffn().type() != "none") {  // "none": mixer-only blocks (the S4/SGConv LRA models)
    ln2_ = register_module("ln2", std::make_shared<LayerNormLayer>(config.d_model(),
                                                                   config.layer_norm_eps(), dtype));
    ffn_ = register_module("ffn", MakeFfn(config, layer_index, dtype));
  }
}

at::Tensor ResidualBlock::Forward(const at::Tensor& h) {
  auto drop = [&](const at::Tensor& t) {
    return dropout_ > 0 && is_training() ? at::dropout(t, dropout_, /*train=*/true) : t;
  };
  at::Tensor x = h + drop(mixer_->Forward(ln1_->Forward(h)));
  if (ffn_ == nullptr) return x;
  return x + drop(ffn_->Forward(ln2_->Forward(x)));
}

at::Tensor ResidualBlock::Step(const at::Tensor& h, SsmStepState& state) {
  auto* s4 = dynamic_cast<S4Block*>(mixer_.get());
  TORCH_CHECK(s4 != nullptr, "recurrent generation needs S4/S4D mixers");
  at::Tensor x = h + s4->Step(ln1_->Forward(h), state);
  if (ffn_ == nullptr) return x;
  return x + ffn_->Forward(ln2_->Forward(x));
}

EmbeddingLayer::EmbeddingLayer(int64_t vocab_size, int64_t dim, double init_std,
                               at::ScalarType dtype) {
  weight = register_parameter(
      "weight",
      at::empty({vocab_size, dim}, at::TensorOptions().dtype(dtype)).normal_(0.0, init_std));
}

TransformerLm::TransformerLm(const ModelConfig& config, at::ScalarType dtype) : config_(config) {
  TORCH_CHECK(config.vocab_size() > 0 || config.input_channels() > 0,
              "model.vocab_size must be resolved before building");
  const int64_t d = config.d_model();
  if (config.input_channels() > 0) {
    input_proj_ = register_module("input_proj", std::make_shared<LinearLayer>(
                                                    config.input_channels(), d, true,
                                                    config.init_std(), dtype));
  } else {
    embedding_ = register_module("embedding",
                                 std::make_shared<EmbeddingLayer>(config.vocab_size(), d,
                                                                  config.init_std(), dtype));
  }
  const std::string& head = config.head();
  TORCH_CHECK(head == "lm" || config.num_classes() >= 2, "model.head \"", head,
              "\" needs model.num_classes >= 2 (resolved from the task's data)");
  if (head == "lm" && config.input_channels() > 0) {
    pixel_head_ = register_module("pixel_head", std::make_shared<LinearLayer>(
                                                    d, 256, true, config.init_std(), dtype));
  } else if (head == "classify") {
    classifier_ = register_module("classifier", std::make_shared<LinearLayer>(
                                                    d, config.num_classes(), true,
                                                    config.init_std(), dtype));
  } else if (head == "retrieval") {
    retrieval_fc1_ = register_module("retrieval_fc1", std::make_shared<LinearLayer>(
                                                          4 * d, d, true, config.init_std(), dtype));
    retrieval_fc2_ = register_module("retrieval_fc2", std::make_shared<LinearLayer>(
                                                          d, config.num_classes(), true,
                                                          config.init_std(), dtype));
  } else {
    TORCH_CHECK(head == "lm", "model.head \"", head, "\" is not lm, classify or retrieval");
  }
  if (config.pooling() == "cls") {
    cls_ = register_parameter("cls", at::empty({d}, at::TensorOptions().dtype(dtype))
                                         .normal_(0.0, config.init_std()));
  }
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
  TORCH_CHECK(embedding_ != nullptr, "Logits needs token inputs (model.input_channels is 0)");
  return at::linear(Hidden(tokens), embedding_->weight);
}

at::Tensor TransformerLm::Encode(const at::Tensor& inputs) {
  at::Tensor h;
  if (input_proj_ != nullptr) {
    TORCH_CHECK(inputs.dim() == 3 && inputs.size(2) == config_.input_channels(),
                "Encode: real-valued inputs must be (batch, seq, ", config_.input_channels(),
                "), got ", inputs.sizes());
    h = input_proj_->Forward(inputs.to(input_proj_->weight.scalar_type()));
  } else {
    TORCH_CHECK(inputs.dim() == 2 && inputs.scalar_type() == at::kLong,
                "Encode: token inputs must be int64 (batch, seq), got ", inputs.sizes());
    h = at::embedding(embedding_->weight, inputs);
  }
  if (cls_.defined()) h = at::cat({cls_.view({1, 1, -1}).expand({h.size(0), 1, h.size(2)}), h}, 1);
  for (auto& block : blocks_) h = block->Forward(h);
  return ln_f_->Forward(h);
}

at::Tensor TransformerLm::PositionLogits(const at::Tensor& inputs) {
  TORCH_CHECK(config_.head() == "lm", "PositionLogits needs model.head \"lm\"");
  at::Tensor h = Encode(inputs);
  if (cls_.defined()) h = h.narrow(1, 1, h.size(1) - 1);
  return pixel_head_ != nullptr ? pixel_head_->Forward(h) : at::linear(h, embedding_->weight);
}

at::Tensor TransformerLm::Pool(const at::Tensor& hidden, const at::Tensor& lengths) {
  const std::string& pooling = config_.pooling();
  if (pooling == "cls") return hidden.select(1, 0);
  const int64_t L = hidden.size(1);
  TORCH_CHECK(lengths.dim() == 1 && lengths.size(0) == hidden.size(0),
              "Pool: lengths must be (batch)");
  const at::Tensor valid =
      at::arange(L, lengths.options()).unsqueeze(0) < lengths.unsqueeze(1);  // (B, L)
  if (pooling == "mean") {
    const at::Tensor m = valid.unsqueeze(-1).to(hidden.scalar_type());
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1);
  }
  if (pooling == "max") {
    return hidden.masked_fill(~valid.unsqueeze(-1), -std::numeric_limits<double>::infinity())
        .amax(1);
  }
  TORCH_CHECK(pooling == "last", "model.pooling \"", pooling, "\" is not mean, max, last or cls");
  const at::Tensor idx = (lengths - 1).clamp_min(0).view({-1, 1, 1}).expand({-1, 1, hidden.size(2)});
  return hidden.gather(1, idx).squeeze(1);
}

at::Tensor TransformerLm::ClassLogits(const at::Tensor& inputs, const at::Tensor& lengths) {
  TORCH_CHECK(classifier_ != nullptr, "ClassLogits needs model.head \"classify\"");
  return classifier_->Forward(Pool(Encode(inputs), lengths));
}

at::Tensor TransformerLm::RetrievalLogits(const at::Tensor& inputs1, const at::Tensor& lengths1,
                                          const at::Tensor& inputs2, const at::Tensor& lengths2) {
  TORCH_CHECK(retrieval_fc1_ != nullptr, "RetrievalLogits needs model.head \"retrieval\"");
  // Both documents in one batch (2B rows, padded to a common length), as the reference.
  const int64_t B = inputs1.size(0);
  const int64_t L = std::max(inputs1.size(1), inputs2.size(1));
  auto pad = [&](const at::Tensor& t) {
    if (t.size(1) == L) return t;
    std::vector<int64_t> p = t.dim() == 3 ? std::vector<int64_t>{0, 0, 0, L - t.size(1)}
                                          : std::vector<int64_t>{0, L - t.size(1)};
    return at::constant_pad_nd(t, p, t.dim() == 3 ? 0 : 1 /* <pad> */);
  };
  const at::Tensor pooled =
      Pool(Encode(at::cat({pad(inputs1), pad(inputs2)}, 0)), at::cat({lengths1, lengths2}, 0));
  const at::Tensor u = pooled.narrow(0, 0, B), v = pooled.narrow(0, B, B);
  const at::Tensor features = at::cat({u, v, u - v, u * v}, -1);
  return retrieval_fc2_->Forward(at::gelu(retrieval_fc1_->Forward(features)));
}

at::Tensor TransformerLm::Loss(const at::Tensor& tokens, const at::Tensor& targets) {
  TORCH_CHECK(embedding_ != nullptr, "Loss needs token inputs (model.input_channels is 0)");
  return LossFromHidden(Hidden(tokens), targets);
}

at::Tensor TransformerLm::LossFromHidden(const at::Tensor& h, const at::Tensor& targets) {
  TORCH_CHECK(embedding_ != nullptr, "Loss needs token inputs (model.input_channels is 0)");
  // float32/float64: the fused head never materialises the (tokens x vocab) logits.
  if (kernels::LmHeadCrossEntropySupports(h.scalar_type())) {
    return kernels::LmHeadCrossEntropy(h, embedding_->weight, targets);
  }
  // bf16: the logits in bf16, then the softmax and the loss in float32 (bf16 logits would round
  // the log-probabilities).
  at::Tensor logits = at::linear(h, embedding_->weight).to(at::kFloat);
  return at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}));
}

TransformerLm::GenerationState TransformerLm::StartGeneration(int64_t batch,
                                                             const std::string& mode) {
  GenerationState g;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    auto* s4 = dynamic_cast<S4Block*>(&blocks_[i]->mixer());
    TORCH_CHECK(s4 != nullptr, "recurrent generation needs S4/S4D mixers; block ", i, " has a \"",
                config_.mixer().type(), "\" mixer");
    s4->SetupStep(mode);
    g.blocks.push_back(s4->DefaultState(batch));
  }
  return g;
}

at::Tensor TransformerLm::GenerationStep(const at::Tensor& tokens, GenerationState& state) {
  TORCH_CHECK(tokens.dim() == 1 && tokens.scalar_type() == at::kLong,
              "GenerationStep: tokens must be int64 (batch), got ", tokens.sizes());
  TORCH_CHECK(state.blocks.size() == blocks_.size(), "GenerationStep before StartGeneration");
  at::Tensor h = at::embedding(embedding_->weight, tokens);
  for (size_t i = 0; i < blocks_.size(); ++i) h = blocks_[i]->Step(h, state.blocks[i]);
  return at::linear(ln_f_->Forward(h), embedding_->weight);
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
    if (!block->has_ffn()) continue;
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
