// Feed-forward networks: the pluggable FFN of a residual block.
//
// `Ffn` is the interface every FFN implements (dense now; LowRank, BlockDense, BlockShuffle and
// the self-guided wrapper later). `DenseFfn` is the baseline of the StructuredFFN paper:
// y = fc2(gelu(fc1 x + b1)) + b2 with the truncated-constant tanh GELU, fc1/fc2 weights stored
// (out, in), named `fc1.weight`, `fc1.bias`, `fc2.weight`, `fc2.bias`.
#ifndef LOOM_MODELS_FFN_H_
#define LOOM_MODELS_FFN_H_

#include <torch/nn/module.h>

#include <memory>

#include "core/config.pb.h"
#include "models/layers.h"

namespace loom::models {

class Ffn : public torch::nn::Module {
 public:
  // x: (..., d_model) -> (..., d_model).
  virtual at::Tensor Forward(const at::Tensor& x) = 0;
};

class DenseFfn : public Ffn {
 public:
  DenseFfn(int64_t d_model, int64_t hidden_dim, double init_std, at::ScalarType dtype);
  at::Tensor Forward(const at::Tensor& x) override;

 private:
  std::shared_ptr<LinearLayer> fc1_;
  std::shared_ptr<LinearLayer> fc2_;
};

// Builds the FFN of block `layer_index` as configured.
std::shared_ptr<Ffn> MakeFfn(const ModelConfig& config, int layer_index, at::ScalarType dtype);

}  // namespace loom::models

#endif  // LOOM_MODELS_FFN_H_
