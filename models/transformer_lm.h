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
#include "models/ssm_kernel.h"

namespace loom::models {

class ResidualBlock : public torch::nn::Module {
 public:
  ResidualBlock(const ModelConfig& config, int layer_index, at::ScalarType dtype);
  at::Tensor Forward(const at::Tensor& h);
  // One token (batch, d) in recurrent mode; the mixer must be a causal S4/S4D block set up for
  // stepping.
  at::Tensor Step(const at::Tensor& h, SsmStepState& state);
  Ffn& ffn() { return *ffn_; }
  bool has_ffn() const { return ffn_ != nullptr; }
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

  // ---- Sequence models beyond the LM (LRA): model.head, model.input_channels, pooling ----
  // inputs: int64 token ids (batch, seq), or float values (batch, seq, input_channels) when
  // model.input_channels > 0. Returns the final-norm hidden states (batch, seq', d_model);
  // seq' = seq + 1 with "cls" pooling (the learned vector comes first).
  at::Tensor Encode(const at::Tensor& inputs);
  // Per-position logits of head "lm": over the vocabulary (tied embedding) for token inputs, over
  // the 256 intensities for real-valued inputs. (batch, seq, classes)
  at::Tensor PositionLogits(const at::Tensor& inputs);
  // Head "classify": (batch, num_classes). lengths: int64 (batch), valid positions per row.
  at::Tensor ClassLogits(const at::Tensor& inputs, const at::Tensor& lengths);
  // Head "retrieval": both documents through the same encoder, pooled, [u, v, u-v, u*v] -> MLP.
  at::Tensor RetrievalLogits(const at::Tensor& inputs1, const at::Tensor& lengths1,
                             const at::Tensor& inputs2, const at::Tensor& lengths2);
  // Mean next-token cross-entropy over all positions.
  at::Tensor Loss(const at::Tensor& tokens, const at::Tensor& targets);
  // The same loss from Hidden(tokens): the tied LM head and the cross-entropy (fused in
  // float32/float64, kernels/lm_head_loss.h).
  at::Tensor LossFromHidden(const at::Tensor& hidden, const at::Tensor& targets);

  const ModelConfig& config() const { return config_; }
  int64_t NumParameters() const;
  // Autoregressive generation in recurrent mode, O(1) per token in the sequence length; every
  // mixer must be a causal S4 or S4D block (attention and SGConv have no recurrent form):
  //   GenerationState g = model->StartGeneration(batch);            // zero state
  //   at::Tensor logits = model->GenerationStep(tokens_t, g);       // (batch) -> (batch, vocab)
  // The t-th step's logits equal row t of Logits(tokens). `mode`: "dense" or "linear" (S4).
  // Call StartGeneration again after the parameters change.
  struct GenerationState {
    std::vector<SsmStepState> blocks;
  };
  GenerationState StartGeneration(int64_t batch, const std::string& mode = "dense");
  at::Tensor GenerationStep(const at::Tensor& tokens, GenerationState& state);
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

  // Token ids to final-LayerNorm hidden states (batch, seq, d_model): Loss = LossFromHidden(Hidden).
  at::Tensor Hidden(const at::Tensor& tokens);

 private:
  at::Tensor Pool(const at::Tensor& hidden, const at::Tensor& lengths);

  ModelConfig config_;
  std::shared_ptr<EmbeddingLayer> embedding_;
  torch::nn::ModuleList block_list_;
  std::vector<std::shared_ptr<ResidualBlock>> blocks_;
  std::shared_ptr<LayerNormLayer> ln_f_;
  std::shared_ptr<LinearLayer> input_proj_;  // input_channels > 0
  std::shared_ptr<LinearLayer> pixel_head_;  // head "lm" with real-valued inputs
  std::shared_ptr<LinearLayer> classifier_;  // head "classify"
  std::shared_ptr<LinearLayer> retrieval_fc1_, retrieval_fc2_;  // head "retrieval"
  at::Tensor cls_;                           // pooling "cls": (d_model)
};

}  // namespace loom::models

#endif  // LOOM_MODELS_TRANSFORMER_LM_H_
