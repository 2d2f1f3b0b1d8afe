// The decoder language model: token embedding -> N residual blocks
// (h += mixer(LN1 h); h += ffn(LN2 h)) -> final LayerNorm -> LM head tied to the embedding.
// No absolute position embedding (RoPE lives in the mixer), no LM-head bias, dropout 0 (the
// default of model.dropout, which drops the mixer and FFN outputs before each residual add): the
// pre-LN GPT of StructuredFFN spec §6.1.
//
//   auto model = BuildLanguageModel(config.model());          // models/registry.h
//   at::Tensor loss = model->Loss(inputs, targets);           // int64 (batch, seq) each
//
// Parameter names follow the module tree (`embedding.weight`, `blocks.3.mixer.qkv.weight`,
// `blocks.3.ffn.fc1.bias`, `ln_f.weight`), which checkpoints and exports rely on.
#ifndef LOOM_MODELS_TRANSFORMER_LM_H_
#define LOOM_MODELS_TRANSFORMER_LM_H_

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/config.pb.h"
#include "models/ffn.h"
#include "models/layers.h"
#include "models/mixer.h"

namespace loom::models {

class ResidualBlock : public torch::nn::Module {
 public:
  ResidualBlock(const ModelConfig& config, int layer_index, at::ScalarType dtype);
  at::Tensor Forward(const at::Tensor& h);
  Ffn& ffn() { return *ffn_; }
  Mixer& mixer() const { return *mixer_; }

 private:
  std::shared_ptr<LayerNormLayer> ln1_;
  std::shared_ptr<Mixer> mixer_;
  std::shared_ptr<LayerNormLayer> ln2_;
  std::shared_ptr<Ffn> ffn_;
  double dropout_;
};

// Token embedding; its weight doubles as the tied LM head.
class EmbeddingLayer : public torch::nn::Module {
 public:
  EmbeddingLayer(int64_t vocab_size, int64_t dim, double init_std, at::ScalarType dtype);
  at::Tensor weight;  // (vocab, dim)
};

class TransformerLm : public torch::nn::Module {
 public:
  TransformerLm(const ModelConfig& config, at::ScalarType dtype);

  // tokens: int64 (batch, seq) -> logits (batch, seq, vocab).
  at::Tensor Logits(const at::Tensor& tokens);
  // Mean next-token cross-entropy over all positions.
  at::Tensor Loss(const at::Tensor& tokens, const at::Tensor& targets);

  const ModelConfig& config() const { return config_; }
  int64_t NumParameters() const;
  // Parameters with their own optimizer settings (the S4 / SGConv mixers' kernels), named from
  // the model root.
  std::vector<ParamOptimOverride> OptimOverrides() const;
  // Buffers that are part of the function the model computes (S4's `l_kernel`, which C-tilde is
  // tuned to; SGConv's frozen `kernel_norm`, `multiplier`, fixed `decay`), named from the model
  // root. Checkpoints and exported weights carry them; training-schedule state (the self-guided
  // ratio) is not among them.
  std::vector<std::pair<std::string, at::Tensor>> FunctionBuffers() const;
  // Every structured linear layer, block by block, fc1 before fc2.
  std::vector<std::shared_ptr<StructuredLinear>> StructuredLayers();

 private:
  at::Tensor Hidden(const at::Tensor& tokens);

  ModelConfig config_;
  std::shared_ptr<EmbeddingLayer> embedding_;
  torch::nn::ModuleList block_list_;
  std::vector<std::shared_ptr<ResidualBlock>> blocks_;
  std::shared_ptr<LayerNormLayer> ln_f_;
};

}  // namespace loom::models

#endif  // LOOM_MODELS_TRANSFORMER_LM_H_
