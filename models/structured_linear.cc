#include "models/structured_linear.h"

#include <ATen/Functions.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>

#include <sstream>
#include <tuple>
#include <vector>

#include "kernels/stride_shuffle.h"


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

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Layouts. A block-diagonal product keeps activations in their natural (n, B*width) row-major
// layout; the batched GEMM reads and writes them through (B, n, width) transposed views (row
// stride B*width), which BLAS takes as a leading dimension, so no transpose is ever copied. With
// x.view(n,B,p).transpose(0,1) -> bmm -> .transpose(0,1).reshape(n, B*q), the reshape copied the
// whole output (and autograd's backward copied the gradients again).

// out = a @ b, batched, written through `out` (a view into a larger buffer).
void BmmInto(at::Tensor out, const at::Tensor& a, const at::Tensor& b) { at::bmm_out(out, a, b); }

// y (n, B*q) = blockdiag(x (n, B*p)), blocks (B, q, p); writes into y.
void BlockDiagonalInto(const at::Tensor& x, const at::Tensor& blocks, const at::Tensor& y) {
  const int64_t n = x.size(0), b = blocks.size(0), q = blocks.size(1), p = blocks.size(2);
  BmmInto(y.view({n, b, q}).transpose(0, 1), x.view({n, b, p}).transpose(0, 1),
              blocks.transpose(1, 2));
}

class BlockDiagonalFunction : public torch::autograd::Function<BlockDiagonalFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x_in,
                            const at::Tensor& blocks) {
    at::Tensor x = x_in.contiguous();
    ctx->save_for_backward({x, blocks});
    at::Tensor y = at::empty({x.size(0), blocks.size(0) * blocks.size(1)}, x.options());
    BlockDiagonalInto(x, blocks, y);
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& blocks = saved[1];
    const int64_t n = x.size(0), b = blocks.size(0), q = blocks.size(1), p = blocks.size(2);
    at::Tensor g = grads[0].contiguous();
    at::Tensor gt = g.view({n, b, q}).transpose(0, 1);  // (B, n, q)
    at::Tensor gx, gw;
    if (ctx->needs_input_grad(0)) {
      gx = at::empty({n, b * p}, g.options());
      BmmInto(gx.view({n, b, p}).transpose(0, 1), gt, blocks);  // (B,n,q) x (B,q,p)
    }
    if (ctx->needs_input_grad(1)) {
      gw = at::bmm(gt.transpose(1, 2), x.view({n, b, p}).transpose(0, 1));  // (B, q, p)
    }
    return {gx, gw};
  }
};

// The stride shuffle between BlockShuffle's two block-diagonal products: u[c, t, a] =
// h[t, a*B + c]. One pass each way (kernels/stride_shuffle.h: a row-wise loop at about memcpy
// speed; ATen's permute+copy took twice as long). Folding the shuffle into the first GEMM instead
// (B GEMMs, each writing q/B strided columns) was measured slower: at d = 2048, B = 4 its GEMMs
// ran at 265-290 GFLOP/s against 330-350 for the full-width ones, which costs more than the n x d
// copy; so did MKL's pointer-array batch of the B*B (n x q/B) products (263 against 381).
class DeinterleaveFunction : public torch::autograd::Function<DeinterleaveFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& h, int64_t nblocks) {
    (void)ctx;
    return kernels::DeinterleaveColumns(h, nblocks);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    (void)ctx;
    return {kernels::InterleaveColumns(grads[0], at::Tensor()), at::Tensor()};
  }
};

// BlockShuffle's second block-diagonal product and the un-shuffle: u (B, n, q), w2 (B, s, q)
// -> y (n, s*B), y[t, r*B + c] = (u[c] w2[c]^T)[t, r] (+ bias[r*B + c]). The interleaved output
// cannot be a GEMM's output (column stride B), so it costs one pass each way; the layer's bias add
// and the bias gradient's column sums ride along in those passes.
variable_list ShuffledOutputBackward(const at::Tensor& u, const at::Tensor& w2,
                                     const at::Tensor& grad, bool input, bool weight, bool bias) {
  const int64_t b = u.size(0), n = u.size(1), s = w2.size(1);
  at::Tensor g = grad.reshape({n, s * b});
  at::Tensor gz, gb;
  if (bias) {
    std::tie(gz, gb) = kernels::DeinterleaveColumnsAndSum(g, b);  // (B, n, s), (s*B)
  } else {
    gz = kernels::DeinterleaveColumns(g, b);
  }
  at::Tensor gu, gw;
  if (input) gu = at::bmm(gz, w2);
  if (weight) gw = at::bmm(gz.transpose(1, 2), u);
  return {gu, gw, gb};
}

class ShuffledOutputFunction : public torch::autograd::Function<ShuffledOutputFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& u, const at::Tensor& w2) {
    ctx->save_for_backward({u, w2});
    return kernels::InterleaveColumns(at::bmm(u, w2.transpose(1, 2)), at::Tensor());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    variable_list g = ShuffledOutputBackward(saved[0], saved[1], grads[0],
                                             ctx->needs_input_grad(0), ctx->needs_input_grad(1),
                                             false);
    return {g[0], g[1]};
  }
};

// The same with the layer's bias (a custom function cannot take an undefined tensor argument).
class ShuffledOutputBiasFunction : public torch::autograd::Function<ShuffledOutputBiasFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& u, const at::Tensor& w2,
                            const at::Tensor& bias) {
    ctx->save_for_backward({u, w2});
    return kernels::InterleaveColumns(at::bmm(u, w2.transpose(1, 2)), bias);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    return ShuffledOutputBackward(saved[0], saved[1], grads[0], ctx->needs_input_grad(0),
                                  ctx->needs_input_grad(1), ctx->needs_input_grad(2));
  }
};

// BlockShuffle's second block-diagonal product without the un-shuffle: u (B, n, q), w2 (B, s, q)
// -> z (B, n, s) = u[c] w2[c]^T, one batched GEMM each way (the gradients come out contiguous, so
// the weight's needs no copy). The fused FFN feeds z to kernels::BiasGeluInterleaveBatches, which
// writes the activation in the consumer's grouped layout; that permutation costs nothing there,
// since the GELU reads and writes every element anyway. (Writing the grouped layout from the GEMM
// instead split this product into s/group GEMMs per direction, 512 columns wide at d = 2048, and
// the weight gradients into 512 x 512 blocks over K = n tokens: about 7% slower GEMMs.)
class BatchedOutputFunction : public torch::autograd::Function<BatchedOutputFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& u, const at::Tensor& w2) {
    ctx->save_for_backward({u, w2});
    return at::bmm(u, w2.transpose(1, 2));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor& u = saved[0];
    const at::Tensor& w2 = saved[1];
    at::Tensor gz = grads[0].contiguous();
    at::Tensor gu, gw;
    if (ctx->needs_input_grad(0)) gu = at::bmm(gz, w2);
    if (ctx->needs_input_grad(1)) gw = at::bmm(gz.transpose(1, 2), u);
    return {gu, gw};
  }
};

}  // namespace

at::Tensor ToGroupedLayout(const at::Tensor& t, int64_t nblocks, int64_t group) {
  const int64_t m = t.size(-1);
  TORCH_CHECK(nblocks >= 1 && group % nblocks == 0 && m % group == 0, "ToGroupedLayout: ",
              nblocks, " blocks | group ", group, " | width ", m, " does not hold");
  std::vector<int64_t> shape = t.sizes().vec();
  std::vector<int64_t> split(shape.begin(), shape.end() - 1);
  split.insert(split.end(), {m / group, group / nblocks, nblocks});
  return t.reshape(split).transpose(-1, -2).reshape(shape);
}

at::Tensor BlockDiagonalApply(const at::Tensor& x, const at::Tensor& blocks) {
  const int64_t b = blocks.size(0), p = blocks.size(2);
  TORCH_CHECK(x.dim() == 2 && x.size(1) == b * p, "BlockDiagonalApply: input width ", x.size(1),
              " != ", b, " blocks x ", p);
  // One batched GEMM over all blocks: (B, n, p) x (B, p, q) -> (B, n, q), through views.
  return BlockDiagonalFunction::apply(x, blocks);
}

// ---- StructuredLinear -------------------------------------------------------------------------

bool StructuredLinear::PrepareStructuredCall(int64_t rows) {
  if (is_training()) {
    merged_cache_ = at::Tensor();  // the weights are about to change
    return !guide_active_;
  }
  return !guide_active_ && !(merge_threshold_ > 0 && rows < merge_threshold_);
}

at::Tensor StructuredLinear::ForwardNoBias(const at::Tensor& x) {
  if (PrepareStructuredCall(x.numel() / in_features())) return StructuredForward(x);
  if (!guide_active_) {  // eval with few rows: the cached dense matrix
    if (!merged_cache_.defined()) {
      at::NoGradGuard no_grad;
      merged_cache_ = MergedWeight().detach();
    }
    return at::linear(x, merged_cache_);
  }
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

std::string StructuredLinear::RngState() const {
  std::ostringstream out;
  out << rng_;
  return out.str();
}

bool StructuredLinear::SetRngState(const std::string& state) {
  std::istringstream in(state);
  std::mt19937_64 rng;
  in >> rng;
  if (in.fail()) return false;
  rng_ = rng;
  return true;
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
                             double init_std, at::ScalarType dtype, InitMode init)
    : StructuredLinear(in, out) {
  TORCH_CHECK(rank >= 1 && rank <= std::min(in, out), "LowRank rank ", rank,
              " must be in [1, min(in ", in, ", out ", out, ")]");
  // The reference draws lr1 and lr2 before the SVD init and discards them; drawing them keeps the
  // RNG stream aligned with it.
  at::Tensor l1 = Normal({rank, in}, init_std, dtype);
  at::Tensor l2 = Normal({out, rank}, init_std, dtype);
  if (init == InitMode::kReference) {
    at::Tensor w0 = Normal({out, in}, init_std, dtype);
    SvdInit(w0, rank, &l1, &l2);
  }
  lr1 = register_parameter("lr1", l1);
  lr2 = register_parameter("lr2", l2);
  if (with_bias) bias = register_parameter("bias", at::zeros({out}, Opts(dtype)));
}

namespace {

// Top-`rank` singular triplets of w (M, N) through the eigendecomposition of the smaller Gram
// matrix: 3.5x faster than a thin SVD for the xl FFN shapes (8192 x 2048: 1.0 s vs 3.5 s), which
// matters with 46 of them per model. Squaring the condition number costs nothing for the
// well-conditioned Gaussian matrices this initialises from; a rank-deficient w returns false and
// the caller falls back to the SVD.
bool TopSingularTriplets(const at::Tensor& w, int64_t rank, at::Tensor* u, at::Tensor* s,
                         at::Tensor* vh) {
  const bool tall = w.size(0) >= w.size(1);
  at::Tensor gram = tall ? at::matmul(w.t(), w) : at::matmul(w, w.t());
  auto [evals, evecs] = at::linalg_eigh(gram);  // ascending
  at::Tensor top_vals = evals.flip(0).narrow(0, 0, rank);
  at::Tensor top_vecs = evecs.flip(1).narrow(1, 0, rank);
  const double largest = top_vals[0].item<double>();
  if (!(largest > 0) || top_vals[rank - 1].item<double>() < 1e-12 * largest) return false;
  *s = top_vals.sqrt();
  if (tall) {
    *vh = top_vecs.t();                       // (R, N)
    *u = at::matmul(w, top_vecs) / *s;        // (M, R)
  } else {
    *u = top_vecs;                            // (M, R)
    *vh = (at::matmul(w.t(), top_vecs) / *s).t();  // (R, N)
  }
  return true;
}

}  // namespace

void LowRankLinear::SvdInit(const at::Tensor& w0, int64_t rank, at::Tensor* lr1,
                            at::Tensor* lr2) {
  at::Tensor w = w0.to(at::kDouble);
  at::Tensor u, s, vh;
  if (!TopSingularTriplets(w, rank, &u, &s, &vh)) {
    std::tie(u, s, vh) = at::linalg_svd(w, /*full_matrices=*/false);
  }
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
                                   bool with_bias, double init_std, at::ScalarType dtype,
                                   InitMode init)
    : StructuredLinear(in, out), nblocks_(nblocks) {
  TORCH_CHECK(nblocks >= 1 && in % nblocks == 0 && rank % nblocks == 0, "BlockDense: nblocks ",
              nblocks, " must divide in_features ", in, " and rank ", rank);
  TORCH_CHECK(rank >= 1, "BlockDense rank must be >= 1, got ", rank);
  at::Tensor b = Normal({nblocks, rank / nblocks, in / nblocks}, init_std, dtype);
  at::Tensor l = Normal({out, rank}, init_std, dtype);
  const bool ref = init == InitMode::kReference;
  blkdiag = register_parameter("blkdiag", ref ? PolarFactor(b) : b);
  lr = register_parameter("lr", ref ? PolarFactor(l) : l);
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
                                       double init_std, at::ScalarType dtype, InitMode init)
    : StructuredLinear(in, out), nblocks_(nblocks) {
  TORCH_CHECK(nblocks >= 1 && in % nblocks == 0 && out % nblocks == 0, "BlockShuffle: nblocks ",
              nblocks, " must divide in_features ", in, " and out_features ", out);
  const int64_t p = in / nblocks, q = std::min(in, out) / nblocks, s = out / nblocks;
  at::Tensor b1 = Normal({nblocks, q, p}, init_std, dtype);
  at::Tensor b2 = Normal({nblocks, s, q}, init_std, dtype);
  const bool ref = init == InitMode::kReference;
  blkdiag1 = register_parameter("blkdiag1", ref ? PolarFactor(b1) : b1);
  blkdiag2 = register_parameter("blkdiag2", ref ? PolarFactor(b2) : b2);
  if (with_bias) bias = register_parameter("bias", at::zeros({out}, Opts(dtype)));
}

at::Tensor BlockShuffleLinear::ShuffledMiddle(const at::Tensor& rows, const at::Tensor& w1) {
  // h = blockdiag1(rows) (n, B*q) in full-width GEMMs, then u[c, t, a] = h[t, a*B + c].
  return DeinterleaveFunction::apply(BlockDiagonalApply(rows, w1), nblocks_);
}

at::Tensor BlockShuffleLinear::StructuredForward(const at::Tensor& x) {
  return OnRows(x, in_features(), out_features(), [&](const at::Tensor& rows) {
    // y[t, r*B + c] = (u[c] blkdiag2[c]^T)[t, r]
    return ShuffledOutputFunction::apply(ShuffledMiddle(rows, blkdiag1), blkdiag2);
  });
}

bool BlockShuffleLinear::CanWriteGrouped(int64_t group) const {
  return group > 0 && group % nblocks_ == 0 && out_features() % group == 0;
}

at::Tensor BlockShuffleLinear::StructuredForwardBatched(const at::Tensor& x) {
  TORCH_CHECK(x.size(-1) == in_features(), "structured layer expects last dimension ",
              in_features(), ", got ", x.sizes());
  return BatchedOutputFunction::apply(ShuffledMiddle(x.reshape({-1, in_features()}), blkdiag1),
                                      blkdiag2);
}

at::Tensor BlockShuffleLinear::StructuredForwardFromGrouped(const at::Tensor& x_grouped,
                                                           int64_t producer_nblocks,
                                                           const at::Tensor& with_bias) {
  const int64_t p = in_features() / nblocks_;
  TORCH_CHECK(producer_nblocks >= 1 && p % producer_nblocks == 0, "BlockShuffle: input block ",
              p, " is not divisible by the producer's ", producer_nblocks, " blocks");
  // Permuting blkdiag1's columns the same way makes the grouped input an ordinary block input.
  const at::Tensor w1 = ToGroupedLayout(blkdiag1, producer_nblocks, p);
  return OnRows(x_grouped, in_features(), out_features(), [&](const at::Tensor& rows) {
    at::Tensor u = ShuffledMiddle(rows, w1);
    if (with_bias.defined()) return ShuffledOutputBiasFunction::apply(u, blkdiag2, with_bias);
    return ShuffledOutputFunction::apply(u, blkdiag2);
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
