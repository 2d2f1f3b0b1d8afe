#include "models/s4.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

#include "kernels/fft_conv.h"

namespace loom::models {

FftConvLayer::FftConvLayer(const SsmKernelOptions& options) : o_(options) {
  D = register_parameter(
      "D", at::randn({o_.channels, o_.d_model}, at::TensorOptions().dtype(o_.dtype)));
  kernel_ = register_module("kernel", MakeSsmKernel(o_));
}

at::Tensor FftConvLayer::Forward(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 3 && x.size(1) == o_.d_model, "S4 layer: input must be (B, ",
              o_.d_model, ", L), got ", x.sizes());
  const int64_t L = x.size(2);
  const int64_t lk = o_.l_max > 0 ? std::min(L, o_.l_max) : L;
  at::Tensor k = kernel_->Kernel(lk).to(x.scalar_type());  // (C_k, H, lk)
  if (o_.bidirectional) {
    k = kernels::TwoSidedKernel(k.narrow(0, 0, o_.channels),
                                k.narrow(0, o_.channels, o_.channels), L);
  }
  at::Tensor y = kernels::FftLongConv(x, k, lk + L);       // (B, C, H, L)
  y = y + x.unsqueeze(1) * D.unsqueeze(0).unsqueeze(-1);
  return y.reshape({x.size(0), o_.channels * o_.d_model, L});
}

S4Block::S4Block(const S4Options& options) : o_(options) {
  TORCH_CHECK(o_.final_act == "glu" || o_.final_act == "none", "S4 final_act \"", o_.final_act,
              "\" is not glu or none");
  layer_ = register_module("layer", std::make_shared<FftConvLayer>(o_.kernel));
  const int64_t H = o_.kernel.d_model;
  output_ = register_module(
      "output_linear",
      std::make_shared<OutputLinear>(o_.kernel.channels * H, o_.final_act == "glu" ? 2 * H : H,
                                     o_.kernel.dtype));
}

at::Tensor S4Block::Head(const at::Tensor& y_flat) {
  at::Tensor y = output_->linear->Forward(at::gelu(y_flat));
  if (o_.final_act == "glu") y = at::glu(y, -1);
  return y;
}

at::Tensor S4Block::ForwardTransposed(const at::Tensor& x, at::Tensor* pre_activation) {
  at::Tensor y = layer_->Forward(x);  // (B, C·H, L)
  if (pre_activation != nullptr) *pre_activation = y;
  return Head(y.transpose(1, 2)).transpose(1, 2);
}

at::Tensor S4Block::Forward(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 3, "S4 block: input must be (B, L, H), got ", x.sizes());
  const at::Tensor y = layer_->Forward(x.transpose(1, 2));  // (B, C·H, L)
  return Head(y.transpose(1, 2));
}

std::vector<ParamOptimOverride> S4Block::OptimOverrides() const {
  std::vector<ParamOptimOverride> out;
  for (ParamOptimOverride p : layer_->kernel().OptimOverrides()) {
    p.name = "layer.kernel." + p.name;
    out.push_back(std::move(p));
  }
  return out;
}

void S4Block::SetupStep(const std::string& mode) { layer_->kernel().SetupStep(mode); }

SsmStepState S4Block::DefaultState(int64_t batch) const {
  return layer_->kernel().DefaultState(batch);
}

at::Tensor S4Block::Step(const at::Tensor& u, SsmStepState& state) {
  TORCH_CHECK(u.dim() == 2 && u.size(1) == o_.kernel.d_model, "S4 step: input must be (B, ",
              o_.kernel.d_model, "), got ", u.sizes());
  at::Tensor y = layer_->kernel().Step(u, state).to(u.scalar_type());  // (B, C, H)
  y = y + u.unsqueeze(1) * layer_->D.unsqueeze(0);
  return Head(y.reshape({u.size(0), -1}));
}

}  // namespace loom::models
