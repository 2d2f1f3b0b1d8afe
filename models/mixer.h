// Sequence mixers: the pluggable token-mixing layer of a residual block.
//
// `Mixer` is the interface (attention now; S4, S4D and SGConv later). `CausalSelfAttention` is
// the StructuredFFN reference attention: fused QKV projection laid out
// [q (nq*hd) | k (nkv*hd) | v (nkv*hd)] with bias, RoPE on q and k, causal softmax attention with
// scale hd^-1/2, output projection attn_dim -> d_model with bias. hd = attn_dim / nq; with
// nkv < nq it is grouped-query attention (each kv head serves nq/nkv consecutive q heads).
// Parameters: `qkv.weight`, `qkv.bias`, `out.weight`, `out.bias`.
#ifndef LOOM_MODELS_MIXER_H_
#define LOOM_MODELS_MIXER_H_

#include <torch/nn/module.h>

#include <memory>

#include "core/config.pb.h"
#include "models/layers.h"

namespace loom::models {

class Mixer : public torch::nn::Module {
 public:
  // x: (batch, seq, d_model) -> (batch, seq, d_model); position t sees only positions <= t.
  virtual at::Tensor Forward(const at::Tensor& x) = 0;
};

class CausalSelfAttention : public Mixer {
 public:
  CausalSelfAttention(int64_t d_model, int64_t attn_dim, int64_t num_heads, int64_t num_kv_heads,
                      double rope_base, double init_std, at::ScalarType dtype);
  at::Tensor Forward(const at::Tensor& x) override;

 private:
  int64_t d_model_;
  int64_t attn_dim_;
  int64_t num_heads_;
  int64_t num_kv_heads_;
  int64_t head_dim_;
  std::shared_ptr<LinearLayer> qkv_;
  std::shared_ptr<LinearLayer> out_;
  RotaryEmbedding rope_;
};

std::shared_ptr<Mixer> MakeMixer(const ModelConfig& config, at::ScalarType dtype);

}  // namespace loom::models

#endif  // LOOM_MODELS_MIXER_H_
