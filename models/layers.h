// Small building blocks shared by Loom's models: Linear and LayerNorm with the reference's
// parameter names (`weight`, `bias`) and init (N(0, init_std^2) weights, zero biases, LayerNorm
// (1, 0)), and rotary position embeddings (RoPE, rotate-half, applied over the full head dim).
#ifndef LOOM_MODELS_LAYERS_H_
#define LOOM_MODELS_LAYERS_H_

#include <torch/nn/module.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace loom::models {

// A parameter with its own optimizer settings (the reference's `_optim` attribute); unset fields
// take the run's global value. The trainer groups parameters by identical settings.
struct ParamOptimOverride {
  std::string name;  // relative to the module that returns it
  at::Tensor param;
  std::optional<double> lr;
  std::optional<double> weight_decay;
};

// A linear projection y = x W^T + b, whatever the parameterisation of W (dense here; LowRank,
// BlockDense, BlockShuffle in structured_linear.h). The FFN uses ForwardNoBias and adds the bias
// itself (fc1's enters the fused activation), as the StructuredFFN reference does.
class Projection : public torch::nn::Module {
 public:
  Projection(int64_t in_features, int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}
  virtual at::Tensor ForwardNoBias(const at::Tensor& x) = 0;
  virtual at::Tensor Forward(const at::Tensor& x) {
    at::Tensor y = ForwardNoBias(x);
    return bias.defined() ? y + bias : y;
  }
  // The dense (out, in) matrix this projection applies (no bias).
  virtual at::Tensor MergedWeight() = 0;
  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }

  at::Tensor bias;  // (out); undefined without bias

 private:
  int64_t in_features_;
  int64_t out_features_;
};

// Dense: weight (out, in) as in PyTorch.
class LinearLayer : public Projection {
 public:
  LinearLayer(int64_t in_features, int64_t out_features, bool bias, double init_std,
              at::ScalarType dtype);
  at::Tensor ForwardNoBias(const at::Tensor& x) override;
  at::Tensor Forward(const at::Tensor& x) override;  // one fused addmm
  at::Tensor MergedWeight() override { return weight; }

  at::Tensor weight;
};

// torch.nn.Linear's default initialisation: weight and bias ~ U(±1/sqrt(fan_in)) (kaiming-uniform
// with a = sqrt(5)), which the S4 and SGConv references keep for their output projections.
void InitLinearTorchDefault(LinearLayer& layer);

// A torch-default-initialised Linear registered as `0`, so that a module holding it as
// `output_linear` has the reference's `output_linear.0.{weight,bias}` names (nn.Sequential).
class OutputLinear : public torch::nn::Module {
 public:
  OutputLinear(int64_t in, int64_t out, at::ScalarType dtype);
  std::shared_ptr<LinearLayer> linear;
};

class LayerNormLayer : public torch::nn::Module {
 public:
  LayerNormLayer(int64_t dim, double eps, at::ScalarType dtype);
  at::Tensor Forward(const at::Tensor& x) const;

  at::Tensor weight;
  at::Tensor bias;

 private:
  int64_t dim_;
  double eps_;
};

// Applies RoPE to q or k shaped (batch, heads, seq, head_dim); position t uses angle
// t * base^(-2i/head_dim) for the pair (i, i + head_dim/2).
class RotaryEmbedding {
 public:
  RotaryEmbedding(int64_t head_dim, double base);
  at::Tensor Apply(const at::Tensor& x);

 private:
  void Ensure(int64_t seq_len, at::ScalarType dtype, at::Device device);
  int64_t head_dim_;
  double base_;
  at::Tensor cos_;  // (seq, head_dim)
  at::Tensor sin_;
};

}  // namespace loom::models

#endif  // LOOM_MODELS_LAYERS_H_
