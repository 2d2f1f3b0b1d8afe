#include "models/ffn.h"

#include <ATen/Functions.h>
#include <c10/util/Exception.h>

#include "kernels/bias_gelu.h"

namespace loom::models {

DenseFfn::DenseFfn(int64_t d_model, int64_t hidden_dim, double init_std, at::ScalarType dtype) {
  fc1_ = register_module("fc1", std::make_shared<LinearLayer>(d_model, hidden_dim, true, init_std,
                                                              dtype));
  fc2_ = register_module("fc2", std::make_shared<LinearLayer>(hidden_dim, d_model, true, init_std,
                                                              dtype));
}

at::Tensor DenseFfn::Forward(const at::Tensor& x) {
  // fc1's bias enters the fused activation, as in the reference.
  at::Tensor h = kernels::BiasGelu(fc1_->ForwardNoBias(x), fc1_->bias);
  return fc2_->Forward(h);
}

std::shared_ptr<Ffn> MakeFfn(const ModelConfig& config, int /*layer_index*/,
                             at::ScalarType dtype) {
  const std::string& type = config.ffn().type();
  TORCH_CHECK(type == "dense", "model.ffn.type \"", type, "\" is not implemented");
  const int64_t hidden = config.ffn().hidden_dim() > 0 ? config.ffn().hidden_dim()
                                                      : 4 * static_cast<int64_t>(config.d_model());
  return std::make_shared<DenseFfn>(config.d_model(), hidden, config.init_std(), dtype);
}

}  // namespace loom::models
