// S4 and S4D as sequence mixers: the reference's `S4Block` (state-spaces/s4@e757cef
// models/s4/s4.py), S4 spec §1.6-§1.8.
//
//   S4Options o;  o.kernel.d_model = 256; o.kernel.mode = "diag"; o.kernel.init = "diag-lin";
//   auto block = std::make_shared<S4Block>(o);
//   at::Tensor y = block->Forward(x);          // (B, L, H) -> (B, L, H)
//   block->SetupStep("dense");                 // autoregressive generation, O(1) per token:
//   auto state = block->DefaultState(batch);
//   at::Tensor y_t = block->Step(x_t, state);  // (B, H) -> (B, H), equal to Forward's row t
//
// Computation (x transposed to (B, H, L)): kernel k (C_k, H, Lk) with Lk = min(L, l_max);
// bidirectional: k = pad(k_fwd, right L) + pad(flip(k_bwd), left L); y = FFT-conv(x, k, n = Lk+L)
// [:L] + D x; flatten channels c-major (index c·H + h); GELU (exact erf); Linear(C·H -> 2H) and
// GLU a·sigmoid(b) (final_act "glu"), or Linear(C·H -> H) (final_act "none", the ICLR v1 block).
// Dropout is not applied (the reference runs with dropout 0 in every LM and golden setting).
//
// Parameter names mirror the reference: `layer.D`, `layer.kernel.{inv_dt,A_real,A_imag,B,C,P}`,
// `output_linear.0.{weight,bias}` (torch's default Linear init), buffer `layer.kernel.l_kernel`.
#ifndef LOOM_MODELS_S4_H_
#define LOOM_MODELS_S4_H_

#include <torch/nn/module.h>

#include <memory>
#include <string>
#include <vector>

#include "models/layers.h"
#include "models/mixer.h"
#include "models/ssm_kernel.h"

namespace loom::models {

struct S4Options {
  SsmKernelOptions kernel;          // d_model, d_state, channels, bidirectional, mode, init, ...
  std::string final_act = "glu";    // "glu" or "none"
};

// The FFT convolution with the skip term D (reference `FFTConv`, activation excluded).
class FftConvLayer : public torch::nn::Module {
 public:
  explicit FftConvLayer(const SsmKernelOptions& options);
  // x (B, H, L) -> (B, C·H, L): convolution plus D·x, before the activation.
  at::Tensor Forward(const at::Tensor& x);
  SsmKernel& kernel() { return *kernel_; }

  at::Tensor D;  // (C, H)

 private:
  SsmKernelOptions o_;
  std::shared_ptr<SsmKernel> kernel_;
};

class S4Block : public Mixer {
 public:
  explicit S4Block(const S4Options& options);
  at::Tensor Forward(const at::Tensor& x) override;  // (B, L, H)
  // (B, H, L) -> (B, H, L); `pre_activation`, if given, receives the (B, C·H, L) conv + D·x.
  at::Tensor ForwardTransposed(const at::Tensor& x, at::Tensor* pre_activation = nullptr);
  std::vector<ParamOptimOverride> OptimOverrides() const override;

  void SetupStep(const std::string& mode = "dense");
  SsmStepState DefaultState(int64_t batch) const;
  at::Tensor Step(const at::Tensor& u, SsmStepState& state);  // (B, H) -> (B, H)

  FftConvLayer& layer() { return *layer_; }
  LinearLayer& output_linear() { return *output_->linear; }

 private:
  at::Tensor Head(const at::Tensor& y_flat);  // (..., C·H) -> GELU -> Linear -> GLU
  S4Options o_;
  std::shared_ptr<FftConvLayer> layer_;
  std::shared_ptr<OutputLinear> output_;
};

}  // namespace loom::models

#endif  // LOOM_MODELS_S4_H_
