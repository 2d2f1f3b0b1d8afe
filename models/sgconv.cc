#include "models/sgconv.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>
#include <string>

#include "kernels/fft_conv.h"
#include "models/layers.h"

namespace loom::models {
namespace {

bool Contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

}  // namespace

SgConv::SgConv(const SgConvOptions& options) : o_(options) {
  const int64_t H = o_.d_model;
  TORCH_CHECK(H > 0, "SGConv: d_model must be positive, got ", H);
  TORCH_CHECK(o_.kernel_dim >= 1, "SGConv: kernel_dim must be >= 1, got ", o_.kernel_dim);
  TORCH_CHECK(o_.channels >= 1, "SGConv: channels must be >= 1, got ", o_.channels);
  TORCH_CHECK(o_.init_scale >= 0, "SGConv: init_scale must be >= 0, got ", o_.init_scale);
  TORCH_CHECK(Contains(o_.mode, "cat"), "SGConv mode \"", o_.mode,
              "\" is not implemented (only the cat_* modes the paper's configs use)");
  TORCH_CHECK(Contains(o_.mode, "randn") || Contains(o_.mode, "cos"), "SGConv mode \"", o_.mode,
              "\" names no kernel init (randn or cos)");
  TORCH_CHECK(o_.postact == "glu" || o_.postact == "none", "SGConv postact \"", o_.postact,
              "\" is not glu or none");
  learnable_ = Contains(o_.mode, "learnable");
  nearest_ = Contains(o_.mode, "nearest");
  if (o_.n_scales > 0) {
    num_scales_ = o_.n_scales;
  } else {
    TORCH_CHECK(o_.l_max > 0, "SGConv: l_max is required when n_scales is not given");
    num_scales_ = 1 +
                  static_cast<int64_t>(std::ceil(std::log2(static_cast<double>(o_.l_max) /
                                                           static_cast<double>(o_.kernel_dim)))) -
                  o_.init_scale;
    TORCH_CHECK(num_scales_ >= 1, "SGConv: l_max ", o_.l_max, " and kernel_dim ", o_.kernel_dim,
                " give ", num_scales_, " scales");
  }
  full_length_ = o_.kernel_dim * (int64_t{1} << (num_scales_ - 1 + o_.init_scale));
  channels_total_ = o_.channels * (o_.bidirectional ? 2 : 1);
  const auto opts = at::TensorOptions().dtype(o_.dtype);

  D = register_parameter("D", at::randn({o_.channels, H}, opts));
  kernel_params_ = register_module("kernel_list", std::make_shared<ParameterList>());
  for (int64_t i = 0; i < num_scales_; ++i) {
    at::Tensor init;
    if (Contains(o_.mode, "randn")) {
      init = at::randn({channels_total_, H, o_.kernel_dim}, opts);
    } else {
      // Feature j: cos(linspace(0, 2πj, d)); features shuffled by a fresh permutation per scale.
      std::vector<at::Tensor> rows;
      for (int64_t j = 0; j < H; ++j) {
        rows.push_back(at::cos(at::linspace(0, 2 * M_PI * j, o_.kernel_dim, opts)));
      }
      init = at::stack(rows).index_select(0, at::randperm(H, at::kLong))
                 .unsqueeze(0).expand({channels_total_, H, o_.kernel_dim}).contiguous();
    }
    kernel_list.push_back(kernel_params_->Add(init));
  }
  if (learnable_) {
    at::Tensor d = at::rand({H}, opts) * (o_.decay_max - o_.decay_min) + o_.decay_min;
    const bool fixed = Contains(o_.mode, "fixed");
    decay = fixed ? register_buffer("decay", d) : register_parameter("decay", d);
    multiplier = register_buffer("multiplier", at::ones({}, opts));
  } else {
    multiplier = register_buffer("multiplier",
                                 at::linspace(o_.decay_min, o_.decay_max, H, opts).view({1, H, 1}));
  }
  {
    torch::NoGradGuard no_grad;
    kernel_norm = register_buffer("kernel_norm",
                                  RawKernel(full_length_).norm(2, {-1}, /*keepdim=*/true));
  }
  const int64_t out = o_.postact == "glu" ? 2 * H : H;
  if (o_.postact == "glu") {
    auto holder = register_module("output_linear",
                                  std::make_shared<OutputLinear>(o_.channels * H, out, o_.dtype));
    linear_ = holder->linear;
  } else {
    linear_ = register_module("output_linear",
                              std::make_shared<LinearLayer>(o_.channels * H, out, true, 0.02,
                                                            o_.dtype));
    InitLinearTorchDefault(*linear_);
  }
}

at::Tensor SgConv::RawKernel(int64_t length) const {
  std::vector<at::Tensor> parts;
  int64_t offset = 0;
  for (int64_t i = 0; i < num_scales_ && offset < length; ++i) {
    const int64_t f = int64_t{1} << (std::max<int64_t>(0, i - 1) + o_.init_scale);
    // The weight commutes with the (linear) upsampling; applying it first is the reference's order.
    at::Tensor w = kernel_list[i] * at::pow(multiplier, static_cast<double>(num_scales_ - 1 - i));
    const int64_t out = o_.kernel_dim * f;
    at::Tensor up = f == 1 ? w
                    : nearest_
                        ? at::upsample_nearest1d(w, at::IntArrayRef{out},
                                                 std::optional<double>(static_cast<double>(f)))
                        : at::upsample_linear1d(w, at::IntArrayRef{out}, /*align_corners=*/false,
                                                std::optional<double>(static_cast<double>(f)));
    parts.push_back(up.narrow(-1, 0, std::min(out, length - offset)));
    offset += parts.back().size(-1);
  }
  at::Tensor k = at::cat(parts, -1);
  if (learnable_) {
    const at::Tensor t = at::arange(k.size(-1), k.options());
    k = k * at::exp(-decay.view({1, -1, 1}) * at::log(t + 1).view({1, 1, -1}));
  }
  if (k.size(-1) < length) k = at::constant_pad_nd(k, {0, length - k.size(-1)});
  return k;
}

at::Tensor SgConv::Head(const at::Tensor& y_flat) {
  at::Tensor y = linear_->Forward(at::gelu(y_flat));
  if (o_.postact == "glu") y = at::glu(y, -1);
  return y;
}

at::Tensor SgConv::ForwardTransposed(const at::Tensor& x, at::Tensor* pre_activation,
                                     at::Tensor* kernel) {
  TORCH_CHECK(x.dim() == 3 && x.size(1) == o_.d_model, "SGConv: input must be (B, ", o_.d_model,
              ", L), got ", x.sizes());
  const int64_t L = x.size(2);
  at::Tensor k = (RawKernel(L) / kernel_norm).to(x.scalar_type());  // (C_k, H, L)
  if (o_.bidirectional) {
    k = kernels::TwoSidedKernel(k.narrow(0, 0, o_.channels), k.narrow(0, o_.channels, o_.channels),
                                L);
  }
  if (kernel != nullptr) *kernel = k;
  at::Tensor y = kernels::FftLongConv(x, k, 2 * L);  // (B, C, H, L)
  y = (y + x.unsqueeze(1) * D.unsqueeze(0).unsqueeze(-1))
          .reshape({x.size(0), o_.channels * o_.d_model, L});
  if (pre_activation != nullptr) *pre_activation = y;
  return Head(y.transpose(1, 2)).transpose(1, 2);
}

at::Tensor SgConv::Forward(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 3, "SGConv: input must be (B, L, H), got ", x.sizes());
  return ForwardTransposed(x.transpose(1, 2)).transpose(1, 2);
}

std::vector<ParamOptimOverride> SgConv::OptimOverrides() const {
  std::vector<ParamOptimOverride> out;
  for (size_t i = 0; i < kernel_list.size(); ++i) {
    out.push_back({"kernel_list." + std::to_string(i), kernel_list[i], o_.kernel_lr, std::nullopt});
  }
  if (learnable_ && decay.requires_grad()) {
    out.push_back({"decay", decay, o_.kernel_lr, std::nullopt});
  }
  return out;
}

}  // namespace loom::models
