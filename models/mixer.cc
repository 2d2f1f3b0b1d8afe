#include "models/mixer.h"

#include <ATen/Functions.h>
#include <c10/util/Exception.h>

#include <cmath>

namespace loom::models {

CausalSelfAttention::CausalSelfAttention(int64_t d_model, int64_t num_heads, double rope_base,
                                         double init_std, at::ScalarType dtype)
    : d_model_(d_model),
      num_heads_(num_heads),
      head_dim_(d_model / num_heads),
      rope_(d_model / num_heads, rope_base) {
  TORCH_CHECK(d_model % num_heads == 0, "d_model ", d_model, " not divisible by num_heads ",
              num_heads);
  qkv_ = register_module("qkv",
                         std::make_shared<LinearLayer>(d_model, 3 * d_model, true, init_std, dtype));
  out_ = register_module("out",
                         std::make_shared<LinearLayer>(d_model, d_model, true, init_std, dtype));
}

at::Tensor CausalSelfAttention::Forward(const at::Tensor& x) {
  const int64_t b = x.size(0), t = x.size(1);
  at::Tensor qkv = qkv_->Forward(x).view({b, t, 3, num_heads_, head_dim_});
  // (3, batch, heads, seq, head_dim)
  qkv = qkv.permute({2, 0, 3, 1, 4});
  at::Tensor q = rope_.Apply(qkv[0]);
  at::Tensor k = rope_.Apply(qkv[1]);
  at::Tensor v = qkv[2];
  at::Tensor y = at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0,
                                                  /*is_causal=*/true,
                                                  /*scale=*/1.0 / std::sqrt(double(head_dim_)));
  y = y.transpose(1, 2).reshape({b, t, d_model_});
  return out_->Forward(y);
}

std::shared_ptr<Mixer> MakeMixer(const ModelConfig& config, at::ScalarType dtype) {
  const std::string& type = config.mixer().type();
  TORCH_CHECK(type == "attention", "model.mixer.type \"", type, "\" is not implemented");
  return std::make_shared<CausalSelfAttention>(config.d_model(), config.mixer().num_heads(),
                                               config.mixer().rope_base(), config.init_std(),
                                               dtype);
}

}  // namespace loom::models
