// Sequence mixers: the pluggable token-mixing layer of a residual block.
//
// `Mixer` is the interface (attention here; S4/S4D in s4.h, SGConv in sgconv.h; built from config
// by mixer_factory.h). `CausalSelfAttention` is
// the StructuredFFN reference attention: fused QKV projection laid out
// [q (nq*hd) | k (nkv*hd) | v (nkv*hd)] with bias, RoPE on q and k, causal softmax attention with
// scale hd^-1/2, output projection attn_dim -> d_model with bias. hd = attn_dim / nq; with
// nkv < nq it is grouped-query attention (each kv head serves nq/nkv consecutive q heads).
// Parameters: `qkv.weight`, `qkv.bias`, `out.weight`, `out.bias`.
#ifndef LOOM_MODELS_MIXER_H_
#define LOOM_MODELS_MIXER_H_

#include <torch/nn/module.h>

#include <memory>
#include <vector>

#include "core/config.pb.h"
#include "models/layers.h"

namespace loom::models {

class Mixer : public torch::nn::Module {
 public:
  // x: (batch, seq, d_model) -> (batch, seq, d_model); position t sees only positions <= t.
  virtual at::Tensor Forward(const at::Tensor& x) = 0;
  // Parameters that do not follow the global optimizer settings (S4's SSM parameters, SGConv's
  // kernels). Empty by default.
  virtual std::vector<ParamOptimOverride> OptimOverrides() const { return {}; }
};

class CausalSelfAttention : public Mixer {
 public:
  // causal = false: every position attends to every position (encoder models, model.bidirectional).
  CausalSelfAttention(int64_t d_model, int64_t attn_dim, int64_t num_heads, int64_t num_kv_heads,
                      double rope_base, double init_std, at::ScalarType dtype, bool causal = true);
  at::Tensor Forward(const at::Tensor& x) override;

 private:
  int64_t d_model_;
  int64_t attn_dim_;
  int64_t num_heads_;
  int64_t num_kv_heads_;
  int64_t head_dim_;
  bool causal_;
  std::shared_ptr<LinearLayer> qkv_;
  std::shared_ptr<LinearLayer> out_;
  RotaryEmbedding rope_;
};

}  // namespace loom::models

#endif  // LOOM_MODELS_MIXER_H_
