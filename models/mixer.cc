#include "models/mixer.h"

#include <ATen/Functions.h>
#include <c10/util/Exception.h>

#include <cmath>

namespace loom::models {

CausalSelfAttention::CausalSelfAttention(int64_t d_model, int64_t attn_dim, int64_t num_heads,
                                         int64_t num_kv_heads, double rope_base,
                                         double init_std, at::ScalarType dtype, bool causal)
    : d_model_(d_model),
      attn_dim_(attn_dim),
      num_heads_(num_heads),
      num_kv_heads_(num_kv_heads),
      head_dim_(attn_dim / num_heads),
      causal_(causal),
      rope_(attn_dim / num_heads, rope_base) {
  TORCH_CHECK(attn_dim % num_heads == 0, "attn_dim ", attn_dim, " not divisible by num_heads ",
              num_heads);
  TORCH_CHECK(num_kv_heads >= 1 && num_heads % num_kv_heads == 0, "num_kv_heads ",
              num_kv_heads, " must divide num_heads ", num_heads);
  const int64_t qkv_width = (num_heads + 2 * num_kv_heads) * head_dim_;
  qkv_ = register_module("qkv",
                         std::make_shared<LinearLayer>(d_model, qkv_width, true, init_std, dtype));
  out_ = register_module("out",
                         std::make_shared<LinearLayer>(attn_dim, d_model, true, init_std, dtype));
}

at::Tensor CausalSelfAttention::Forward(const at::Tensor& x) {
  const int64_t b = x.size(0), t = x.size(1);
  const int64_t q_width = num_heads_ * head_dim_, kv_width = num_kv_heads_ * head_dim_;
  at::Tensor qkv = qkv_->Forward(x);
  auto heads = [&](const at::Tensor& part, int64_t n) {
    return part.view({b, t, n, head_dim_}).transpose(1, 2);  // (b, n, t, hd)
  };
  at::Tensor q = rope_.Apply(heads(qkv.narrow(-1, 0, q_width), num_heads_));
  at::Tensor k = rope_.Apply(heads(qkv.narrow(-1, q_width, kv_width), num_kv_heads_));
  at::Tensor v = heads(qkv.narrow(-1, q_width + kv_width, kv_width), num_kv_heads_);
  if (num_kv_heads_ != num_heads_) {
    const int64_t group = num_heads_ / num_kv_heads_;
    k = k.repeat_interleave(group, 1);
    v = v.repeat_interleave(group, 1);
  }
  at::Tensor y = at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0,
                                                  /*is_causal=*/causal_,
                                                  /*scale=*/1.0 / std::sqrt(double(head_dim_)));
  y = y.transpose(1, 2).reshape({b, t, attn_dim_});
  return out_->Forward(y);
}

}  // namespace loom::models
