#include "models/ffn.h"

#include <ATen/Functions.h>
#include <c10/util/Exception.h>

#include "kernels/bias_gelu.h"

namespace loom::models {

FeedForward::FeedForward(std::shared_ptr<Projection> fc1, std::shared_ptr<Projection> fc2,
                         Activation activation)
    : activation_(activation) {
  const int64_t hidden = activation == Activation::kSwiglu ? fc1->out_features() / 2
                                                           : fc1->out_features();
  TORCH_CHECK(fc2->in_features() == hidden, "FFN: fc2 input ", fc2->in_features(),
              " does not match hidden width ", hidden);
  fc1_ = register_module("fc1", std::move(fc1));
  fc2_ = register_module("fc2", std::move(fc2));
}

at::Tensor FeedForward::Forward(const at::Tensor& x) {
  if (at::Tensor y = FusedBlockShuffleForward(x); y.defined()) return y;
  at::Tensor u = fc1_->ForwardNoBias(x);
  at::Tensor a;
  if (activation_ == Activation::kGelu) {
    a = kernels::BiasGelu(u, fc1_->bias);  // fc1's bias enters the fused activation
  } else {
    if (fc1_->bias.defined()) u = u + fc1_->bias;
    const int64_t f = u.size(-1) / 2;
    a = at::silu(u.narrow(-1, 0, f)) * u.narrow(-1, f, f);
  }
  at::Tensor y = fc2_->ForwardNoBias(a);
  return fc2_->bias.defined() ? y + fc2_->bias : y;
}

at::Tensor FeedForward::FusedBlockShuffleForward(const at::Tensor& x) {
  // BlockShuffle -> bias+GELU -> BlockShuffle with fc1's output kept in the grouped layout of
  // fc2's input blocks. fc1's second product stays one batched GEMM (B, n, 4d/B); the bias+GELU
  // kernel reads it in runs and writes the grouped layout (fc1's bias permuted the same way), and
  // fc2 reads that through permuted blkdiag1 columns. Saves the (n, 4d) un-shuffle copy in both
  // directions; same arithmetic, so results agree with the unfused path to rounding.
  if (activation_ != Activation::kGelu) return {};
  auto* s1 = dynamic_cast<BlockShuffleLinear*>(fc1_.get());
  auto* s2 = dynamic_cast<BlockShuffleLinear*>(fc2_.get());
  if (s1 == nullptr || s2 == nullptr) return {};
  const int64_t group = s2->in_features() / s2->nblocks();
  if (!s1->CanWriteGrouped(group)) return {};
  const int64_t rows = x.numel() / x.size(-1);
  if (!s1->PrepareStructuredCall(rows) || !s2->PrepareStructuredCall(rows)) return {};
  at::Tensor bias = s1->bias.defined() ? ToGroupedLayout(s1->bias, s1->nblocks(), group)
                                       : at::Tensor();
  at::Tensor a = kernels::BiasGeluInterleaveBatches(s1->StructuredForwardBatched(x), bias,
                                                    group / s1->nblocks());
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = s2->out_features();
  return s2->StructuredForwardFromGrouped(a, s1->nblocks(), s2->bias).view(shape);
}

std::vector<std::shared_ptr<StructuredLinear>> FeedForward::StructuredLayers() {
  std::vector<std::shared_ptr<StructuredLinear>> out;
  for (const auto& p : {fc1_, fc2_}) {
    if (auto s = std::dynamic_pointer_cast<StructuredLinear>(p)) out.push_back(s);
  }
  return out;
}

std::shared_ptr<Projection> MakeProjection(const std::string& type, int64_t in, int64_t out,
                                           int64_t rank, int64_t nblocks, bool bias,
                                           double init_std, at::ScalarType dtype) {
  if (type == "dense") return std::make_shared<LinearLayer>(in, out, bias, init_std, dtype);
  if (type == "lowrank") {
    return std::make_shared<LowRankLinear>(in, out, rank, bias, init_std, dtype);
  }
  if (type == "blockdense") {
    return std::make_shared<BlockDenseLinear>(in, out, rank, nblocks, bias, init_std, dtype);
  }
  if (type == "blockshuffle") {
    return std::make_shared<BlockShuffleLinear>(in, out, nblocks, bias, init_std, dtype);
  }
  TORCH_CHECK(false, "unknown FFN type \"", type, "\"");
  return nullptr;
}

std::shared_ptr<Ffn> MakeFfn(const ModelConfig& config, int layer_index, at::ScalarType dtype) {
  const FfnConfig& f = config.ffn();
  const int64_t d = config.d_model();
  const int64_t hidden = f.hidden_dim() > 0 ? f.hidden_dim() : 4 * d;
  const Activation act = f.activation() == "swiglu" ? Activation::kSwiglu : Activation::kGelu;
  const int64_t fc1_out = act == Activation::kSwiglu ? 2 * hidden : hidden;
  const std::string type =
      (layer_index == 0 && f.first_layer_dense()) ? std::string("dense") : f.type();
  // fc1 before fc2, as the reference creates (and draws) them.
  auto fc1 = MakeProjection(type, d, fc1_out, f.rank(), f.nblocks(), true, config.init_std(),
                            dtype);
  auto fc2 = MakeProjection(type, hidden, d, f.rank(), f.nblocks(), true, config.init_std(),
                            dtype);
  return std::make_shared<FeedForward>(fc1, fc2, act);
}

}  // namespace loom::models
