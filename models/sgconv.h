// SGConv (Structured Global Convolution, "What Makes Convolutional Models Great on Long Sequence
// Modeling?") as a sequence mixer: the reference's `GConv` (ctlllll/SGConv@97862df
// gconv_standalone.py), SGConv spec §2.
//
//   SgConvOptions o;  o.d_model = 256; o.l_max = 1024; o.kernel_dim = 32; o.bidirectional = true;
//   auto conv = std::make_shared<SgConv>(o);
//   at::Tensor y = conv->Forward(x);          // (B, L, H) -> (B, L, H)
//
// Kernel: S scales (S = 1 + ceil(log2(l_max / kernel_dim)) - init_scale unless given), scale i a
// (C_k, H, kernel_dim) parameter upsampled by 2^(max(0, i-1) + init_scale) (linear,
// align_corners=False; "nearest" modes nearest-neighbour), weighted by multiplier^(S-1-i) per
// feature (multiplier = linspace(decay_min, decay_max, H)), concatenated along length;
// "learnable" modes multiply by (t+1)^(-decay[h]) instead ("fixed": decay frozen). The kernel is
// divided by `kernel_norm`, the L2 norm over length of the full initial kernel, frozen from then
// on (the reference computes it on the first forward, from the same parameters; Loom does it in
// the constructor, so it never depends on the first batch). Then truncated or zero-padded to L,
// made two-sided if bidirectional, FFT-convolved (n = 2L), plus D·x, GELU, Linear(C·H -> 2H) +
// GLU (postact "glu") or Linear(C·H -> H) (postact "none").
//
// Parameter names mirror the reference: `kernel_list.i`, `D`, `decay`, `output_linear.0.*` (GLU)
// or `output_linear.*` (no postact); buffers `multiplier`, `kernel_norm` (and `decay` when fixed).
#ifndef LOOM_MODELS_SGCONV_H_
#define LOOM_MODELS_SGCONV_H_

#include <torch/nn/module.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/layers.h"
#include "models/mixer.h"

namespace loom::models {

struct SgConvOptions {
  int64_t d_model = 0;
  int64_t l_max = 0;           // required: sets the number of scales
  int64_t channels = 1;
  bool bidirectional = false;
  int64_t kernel_dim = 64;
  int64_t n_scales = 0;        // 0: from l_max
  int64_t init_scale = 0;
  double decay_min = 2.0, decay_max = 2.0;
  // cat_randn | cat_cos | cat_randn_learnable | cat_randn_learnable_fixed (+ "_nearest" variants)
  std::string mode = "cat_randn";
  std::string postact = "glu";  // "glu" or "none"
  std::optional<double> kernel_lr = 0.001;  // the reference's kernel `_optim` lr (global wd)
  at::ScalarType dtype = at::kFloat;
};

// nn.ParameterList's naming: parameters "0", "1", ... of a child module.
class ParameterList : public torch::nn::Module {
 public:
  at::Tensor Add(const at::Tensor& t) {
    return register_parameter(std::to_string(size_++), t);
  }

 private:
  int64_t size_ = 0;
};

class SgConv : public Mixer {
 public:
  explicit SgConv(const SgConvOptions& options);
  at::Tensor Forward(const at::Tensor& x) override;  // (B, L, H)
  // (B, H, L) -> (B, H, L); optional outputs: the (B, C·H, L) conv + D·x before GELU, and the
  // kernel as the reference returns it ((C, H, L), or (C, H, 2L) combined when bidirectional).
  at::Tensor ForwardTransposed(const at::Tensor& x, at::Tensor* pre_activation = nullptr,
                               at::Tensor* kernel = nullptr);
  std::vector<ParamOptimOverride> OptimOverrides() const override;

  // The concatenated, decayed kernel before normalisation, first `length` samples (zero padded
  // beyond the full length).
  at::Tensor RawKernel(int64_t length) const;
  int64_t num_scales() const { return num_scales_; }
  int64_t full_length() const { return full_length_; }

  std::vector<at::Tensor> kernel_list;
  at::Tensor D, decay, multiplier, kernel_norm;

 private:
  at::Tensor Head(const at::Tensor& y_flat);
  SgConvOptions o_;
  int64_t channels_total_;
  int64_t num_scales_;
  int64_t full_length_;
  bool learnable_, nearest_;
  std::shared_ptr<LinearLayer> linear_;
  std::shared_ptr<ParameterList> kernel_params_;
};

}  // namespace loom::models

#endif  // LOOM_MODELS_SGCONV_H_
