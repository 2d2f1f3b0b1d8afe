#include "models/layers.h"

#include <ATen/Functions.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <c10/util/Exception.h>

#include <cmath>

namespace loom::models {

LinearLayer::LinearLayer(int64_t in_features, int64_t out_features, bool with_bias,
                         double init_std, at::ScalarType dtype)
    : Projection(in_features, out_features) {
  TORCH_CHECK(in_features > 0 && out_features > 0, "LinearLayer: bad shape (", out_features, ", ",
              in_features, ")");
  weight = register_parameter(
      "weight", at::empty({out_features, in_features}, at::TensorOptions().dtype(dtype))
                    .normal_(0.0, init_std));
  if (with_bias) {
    bias = register_parameter("bias", at::zeros({out_features}, at::TensorOptions().dtype(dtype)));
  }
}

at::Tensor LinearLayer::ForwardNoBias(const at::Tensor& x) { return at::linear(x, weight); }

at::Tensor LinearLayer::Forward(const at::Tensor& x) { return at::linear(x, weight, bias); }

LayerNormLayer::LayerNormLayer(int64_t dim, double eps, at::ScalarType dtype)
    : dim_(dim), eps_(eps) {
  weight = register_parameter("weight", at::ones({dim}, at::TensorOptions().dtype(dtype)));
  bias = register_parameter("bias", at::zeros({dim}, at::TensorOptions().dtype(dtype)));
}

at::Tensor LayerNormLayer::Forward(const at::Tensor& x) const {
  return at::layer_norm(x, {dim_}, weight, bias, eps_);
}

RotaryEmbedding::RotaryEmbedding(int64_t head_dim, double base)
    : head_dim_(head_dim), base_(base) {
  TORCH_CHECK(head_dim % 2 == 0, "RoPE needs an even head dim, got ", head_dim);
}

void RotaryEmbedding::Ensure(int64_t seq_len, at::ScalarType dtype, at::Device device) {
  if (cos_.defined() && cos_.size(0) >= seq_len && cos_.scalar_type() == dtype &&
      cos_.device() == device) {
    return;
  }
  // Angles in float64, then cast: the table is tiny and this keeps float32 runs accurate.
  auto opts = at::TensorOptions().dtype(at::kDouble);
  at::Tensor inv_freq =
      1.0 / at::pow(base_, at::arange(0, head_dim_, 2, opts) / static_cast<double>(head_dim_));
  at::Tensor t = at::arange(seq_len, opts);
  at::Tensor freqs = at::outer(t, inv_freq);
  at::Tensor emb = at::cat({freqs, freqs}, -1);
  cos_ = emb.cos().to(dtype).to(device);
  sin_ = emb.sin().to(dtype).to(device);
}

at::Tensor RotaryEmbedding::Apply(const at::Tensor& x) {
  const int64_t seq = x.size(-2);
  Ensure(seq, x.scalar_type(), x.device());
  at::Tensor cos = cos_.narrow(0, 0, seq);
  at::Tensor sin = sin_.narrow(0, 0, seq);
  const int64_t half = head_dim_ / 2;
  at::Tensor x1 = x.narrow(-1, 0, half);
  at::Tensor x2 = x.narrow(-1, half, half);
  at::Tensor rotated = at::cat({-x2, x1}, -1);
  return x * cos + rotated * sin;
}

void InitLinearTorchDefault(LinearLayer& layer) {
  torch::NoGradGuard no_grad;
  const double bound = 1.0 / std::sqrt(static_cast<double>(layer.in_features()));
  layer.weight.uniform_(-bound, bound);
  if (layer.bias.defined()) layer.bias.uniform_(-bound, bound);
}

OutputLinear::OutputLinear(int64_t in, int64_t out, at::ScalarType dtype) {
  linear = register_module("0", std::make_shared<LinearLayer>(in, out, true, 0.02, dtype));
  InitLinearTorchDefault(*linear);
}

}  // namespace loom::models
