#include "models/structured_linear.h"

#include <ATen/Functions.h>
#include <c10/util/Exception.h>

namespace loom::models {
namespace {

at::TensorOptions Opts(at::ScalarType dtype) { return at::TensorOptions().dtype(dtype); }

at::Tensor Normal(std::vector<int64_t> shape, double std, at::ScalarType dtype) {
  return at::empty(shape, Opts(dtype)).normal_(0.0, std);
}

// Flattens leading dimensions to rows, applies `f`, restores them.
template <typename F>
at::Tensor OnRows(const at::Tensor& x, int64_t in, int64_t out, F f) {
  TORCH_CHECK(x.size(-1) == in, "structured layer expects last dimension ", in, ", got ",
              x.sizes());
  std::vector<int64_t> shape = x.sizes().vec();
  at::Tensor y = f(x.reshape({-1, in}));
  shape.back() = out;
  return y.view(shape);
}

}  // namespace

at::Tensor PolarFactor(const at::Tensor& a) {
  // SVD in float64 whatever the parameter dtype: the factor must be orthogonal to round-off.
  auto [u, s, vh] = at::linalg_svd(a.to(at::kDouble), /*full_matrices=*/false);
  return at::matmul(u, vh).to(a.scalar_type());
}

at::Tensor BlockDiagonalApply(const at::Tensor& x, const at::Tensor& blocks) {
  const int64_t n = x.size(0), b = blocks.size(0), q = blocks.size(1), p = blocks.size(2);
  TORCH_CHECK(x.size(1) == b * p, "BlockDiagonalApply: input width ", x.size(1), " != ", b,
              " blocks x ", p);
  // One batched GEMM over all blocks: (B, n, p) x (B, p, q) -> (B, n, q).
  at::Tensor h = at::bmm(x.view({n, b, p}).transpose(0, 1), blocks.transpose(1, 2));
  return h.transpose(0, 1).reshape({n, b * q});
}

// ---- StructuredLinear -------------------------------------------------------------------------

at::Tensor StructuredLinear::ForwardNoBias(const at::Tensor& x) {
  if (is_training()) {
    merged_cache_ = at::Tensor();
  } else if (merge_threshold_ > 0 && !guide_active_ &&
             x.numel() / in_features() < merge_threshold_) {
    if (!merged_cache_.defined()) {
      at::NoGradGuard no_grad;
      merged_cache_ = MergedWeight().detach();
    }
    return at::linear(x, merged_cache_);
  }
  if (!guide_active_) return StructuredForward(x);
  const double a = alpha();
  if (reduce_flop_ && is_training()) {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
    if (u >= a) {
      ++guide_skips_;
      return StructuredForward(x);
    }
  }
  ++guide_uses_;
  return at::linear(x, guide_linear) * a + StructuredForward(x) * (1.0 - a);
}

void StructuredLinear::EnableSelfGuided(const at::Tensor& guide_init, bool reduce_flop,
                                        uint64_t seed) {
  TORCH_CHECK(guide_init.size(0) == out_features() && guide_init.size(1) == in_features(),
              "guide init shape ", guide_init.sizes(), " is not (", out_features(), ", ",
              in_features(), ")");
  guide_linear = register_parameter("guide_linear", guide_init.detach().clone());
  count_buffer = register_buffer("count", at::zeros({}, at::kLong));
  ratio = register_buffer("ratio", at::ones({}, at::kDouble));
  guide_active_ = true;
  reduce_flop_ = reduce_flop;
  rng_.seed(seed);
}

void StructuredLinear::SetSelfGuidedState(int64_t count, double alpha) {
  TORCH_CHECK(count_buffer.defined(), "layer is not self-guided");
  count_buffer.fill_(count);
  ratio.fill_(alpha);
}

double StructuredLinear::alpha() const {
  return ratio.defined() ? ratio.item<double>() : 0.0;
}

int64_t StructuredLinear::count() const {
  return count_buffer.defined() ? count_buffer.item<int64_t>() : 0;
}

void StructuredLinear::CloseSelfGuided() {
  if (!guide_active_) return;
  guide_active_ = false;
  ratio.fill_(0.0);
  // Kept in the module (the reference keeps it in the state dict) but frozen: no gradient, so
  // the optimizer leaves it alone.
  guide_linear.set_requires_grad(false);
  guide_linear.mutable_grad() = at::Tensor();
}

void StructuredLinear::SetMergedForInference(int64_t threshold_tokens) {
  merge_threshold_ = threshold_tokens;
  merged_cache_ = at::Tensor();
}

// ---- LowRank ----------------------------------------------------------------------------------

LowRankLinear::LowRankLinear(int64_t in, int64_t out, int64_t rank, bool with_bias,
                             double init_std, at::ScalarType dtype)
    : StructuredLinear(in, out) {
  TORCH_CHECK(rank >= 1 && rank <= std::min(in, out), "LowRank rank ", rank,
              " must be in [1, min(in ", in, ", out ", out, ")]");
  // The reference draws lr1 and lr2 before the SVD init and discards them; drawing them keeps the
  // RNG stream aligned with it.
  at::Tensor l1 = Normal({rank, in}, init_std, dtype);
  at::Tensor l2 = Normal({out, rank}, init_std, dtype);
  at::Tensor w0 = Normal({out, in}, init_std, dtype);
  SvdInit(w0, rank, &l1, &l2);
  lr1 = register_parameter("lr1", l1);
  lr2 = register_parameter("lr2", l2);
  if (with_bias) bias = register_parameter("bias", at::zeros({out}, Opts(dtype)));
}

void LowRankLinear::SvdInit(const at::Tensor& w0, int64_t rank, at::Tensor* lr1,
                            at::Tensor* lr2) {
  auto [u, s, vh] = at::linalg_svd(w0.to(at::kDouble), /*full_matrices=*/false);
  at::Tensor root = s.narrow(0, 0, rank).sqrt();
  *lr1 = (root.unsqueeze(1) * vh.narrow(0, 0, rank)).to(w0.scalar_type()).contiguous();
  *lr2 = (u.narrow(1, 0, rank) * root.unsqueeze(0)).to(w0.scalar_type()).contiguous();
}

at::Tensor LowRankLinear::StructuredForward(const at::Tensor& x) {
  return at::linear(at::linear(x, lr1), lr2);
}

at::Tensor LowRankLinear::MergedWeight() { return at::matmul(lr2, lr1); }

int64_t LowRankLinear::NumStructuredWeights() const { return lr1.numel() + lr2.numel(); }

// ---- BlockDense -------------------------------------------------------------------------------

BlockDenseLinear::BlockDenseLinear(int64_t in, int64_t out, int64_t rank, int64_t nblocks,
                                   bool with_bias, double init_std, at::ScalarType dtype)
    : StructuredLinear(in, out), nblocks_(nblocks) {
  TORCH_CHECK(nblocks >= 1 && in % nblocks == 0 && rank % nblocks == 0, "BlockDense: nblocks ",
              nblocks, " must divide in_features ", in, " and rank ", rank);
  TORCH_CHECK(rank >= 1, "BlockDense rank must be >= 1, got ", rank);
  at::Tensor b = Normal({nblocks, rank / nblocks, in / nblocks}, init_std, dtype);
  at::Tensor l = Normal({out, rank}, init_std, dtype);
  blkdiag = register_parameter("blkdiag", PolarFactor(b));
  lr = register_parameter("lr", PolarFactor(l));
  if (with_bias) bias = register_parameter("bias", at::zeros({out}, Opts(dtype)));
}

at::Tensor BlockDenseLinear::StructuredForward(const at::Tensor& x) {
  return OnRows(x, in_features(), out_features(), [&](const at::Tensor& rows) {
    return at::linear(BlockDiagonalApply(rows, blkdiag), lr);
  });
}

at::Tensor BlockDenseLinear::MergedWeight() {
  return at::matmul(lr, at::block_diag(blkdiag.unbind(0)));
}

int64_t BlockDenseLinear::NumStructuredWeights() const { return blkdiag.numel() + lr.numel(); }

// ---- BlockShuffle -----------------------------------------------------------------------------

BlockShuffleLinear::BlockShuffleLinear(int64_t in, int64_t out, int64_t nblocks, bool with_bias,
                                       double init_std, at::ScalarType dtype)
    : StructuredLinear(in, out), nblocks_(nblocks) {
  TORCH_CHECK(nblocks >= 1 && in % nblocks == 0 && out % nblocks == 0, "BlockShuffle: nblocks ",
              nblocks, " must divide in_features ", in, " and out_features ", out);
  const int64_t p = in / nblocks, q = std::min(in, out) / nblocks, s = out / nblocks;
  at::Tensor b1 = Normal({nblocks, q, p}, init_std, dtype);
  at::Tensor b2 = Normal({nblocks, s, q}, init_std, dtype);
  blkdiag1 = register_parameter("blkdiag1", PolarFactor(b1));
  blkdiag2 = register_parameter("blkdiag2", PolarFactor(b2));
  if (with_bias) bias = register_parameter("bias", at::zeros({out}, Opts(dtype)));
}

at::Tensor BlockShuffleLinear::StructuredForward(const at::Tensor& x) {
  return OnRows(x, in_features(), out_features(), [&](const at::Tensor& rows) {
    const int64_t n = rows.size(0), b = nblocks_, q = blkdiag1.size(1), s = blkdiag2.size(1);
    at::Tensor h = BlockDiagonalApply(rows, blkdiag1);  // (n, B*q), h[a*B + c] -> u[c, a]
    at::Tensor u = h.view({n, q, b}).permute({2, 0, 1});  // (B, n, q)
    at::Tensor z = at::bmm(u, blkdiag2.transpose(1, 2));  // (B, n, s)
    return z.permute({1, 2, 0}).reshape({n, s * b});      // y[t*B + c] = z[c, t]
  });
}

at::Tensor BlockShuffleLinear::MergedWeight() {
  // Columns of the identity through the structured map, shuffles included.
  at::Tensor eye = at::eye(in_features(), blkdiag1.options());
  return StructuredForward(eye).t().contiguous();
}

at::Tensor BlockShuffleLinear::ReferenceGuideInit() {
  return at::matmul(at::block_diag(blkdiag2.unbind(0)), at::block_diag(blkdiag1.unbind(0)));
}

int64_t BlockShuffleLinear::NumStructuredWeights() const {
  return blkdiag1.numel() + blkdiag2.numel();
}

}  // namespace loom::models
