// Feed-forward networks: the pluggable FFN of a residual block.
//
// `Ffn` is the interface every FFN implements. `FeedForward` is the StructuredFFN reference MLP:
// y = fc2(act(fc1 x + b1)) + b2, where fc1 and fc2 are any Projection (dense LinearLayer, or the
// structured layers of structured_linear.h) and act is
//   gelu:   the tanh GELU with the reference's truncated constants (fused with b1), or
//   swiglu: fc1 has width 2f; a = silu(u[:, :f]) * u[:, f:] with u = fc1 x + b1.
// Parameter names: `fc1.weight` / `fc1.lr1` / `fc1.blkdiag` ..., `fc1.bias`, `fc2.*`.
#ifndef LOOM_MODELS_FFN_H_
#define LOOM_MODELS_FFN_H_

#include <torch/nn/module.h>

#include <memory>
#include <vector>

#include "core/config.pb.h"
#include "models/layers.h"
#include "models/structured_linear.h"

namespace loom::models {

class Ffn : public torch::nn::Module {
 public:
  // x: (..., d_model) -> (..., d_model).
  virtual at::Tensor Forward(const at::Tensor& x) = 0;
  // The structured linear layers inside (empty for a dense FFN).
  virtual std::vector<std::shared_ptr<StructuredLinear>> StructuredLayers() { return {}; }
};

enum class Activation { kGelu, kSwiglu };

class FeedForward : public Ffn {
 public:
  FeedForward(std::shared_ptr<Projection> fc1, std::shared_ptr<Projection> fc2,
              Activation activation);
  at::Tensor Forward(const at::Tensor& x) override;
  std::vector<std::shared_ptr<StructuredLinear>> StructuredLayers() override;

  Projection& fc1() { return *fc1_; }
  Projection& fc2() { return *fc2_; }

 private:
  // The fused path when fc1 and fc2 are both BlockShuffle with GELU and neither uses a guide or a
  // merged matrix for this call; undefined otherwise.
  at::Tensor FusedBlockShuffleForward(const at::Tensor& x);

  std::shared_ptr<Projection> fc1_;
  std::shared_ptr<Projection> fc2_;
  Activation activation_;
};

// A projection of the configured type ("dense", "lowrank", "blockdense", "blockshuffle").
std::shared_ptr<Projection> MakeProjection(const std::string& type, int64_t in, int64_t out,
                                           int64_t rank, int64_t nblocks, bool bias,
                                           double init_std, at::ScalarType dtype);

// Builds the FFN of block `layer_index` as configured (block 0 stays dense when
// ffn.first_layer_dense).
std::shared_ptr<Ffn> MakeFfn(const ModelConfig& config, int layer_index, at::ScalarType dtype);

}  // namespace loom::models

#endif  // LOOM_MODELS_FFN_H_
