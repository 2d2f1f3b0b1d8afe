// Structured linear layers of the StructuredFFN paper (spec §2-§5), with self-guided training
// and pre-merge.
//
//   LowRankLinear       lr1 (R, N), lr2 (M, R):               y = (x lr1^T) lr2^T
//   BlockDenseLinear    blkdiag (B, R/B, N/B), lr (M, R):     y = blockdiag(x) lr^T, no shuffle
//   BlockShuffleLinear  blkdiag1 (B, q, N/B), blkdiag2 (B, M/B, q), q = min(N, M)/B:
//                       block-diagonal, stride shuffle, block-diagonal, un-shuffle (Monarch)
//
// Block-diagonal products are one batched GEMM over all blocks. Every layer can compute its dense
// equivalent (MergedWeight) and, for inference, apply whichever form is faster for the number
// of tokens in the call (SetMergedForInference).
//
// Self-guided training (EnableSelfGuided): a dense `guide_linear` (M, N), no bias of its own, and
// out = alpha * guide(x) + (1 - alpha) * S(x). alpha is the buffer `ratio`, `count` the number
// of optimizer steps taken in the guided phase; the trainer sets both once per optimizer step.
// With reduce_flop, each training forward draws u ~ U[0, 1) and outputs S(x) alone when
// u >= alpha. After the guided phase CloseSelfGuided drops the guide for good.
//
// Parameter names follow the reference (`lr1`, `blkdiag2`, `guide_linear`, `bias`), so golden
// files and checkpoints map one to one.
#ifndef LOOM_MODELS_STRUCTURED_LINEAR_H_
#define LOOM_MODELS_STRUCTURED_LINEAR_H_

#include <torch/nn/module.h>

#include <cstdint>
#include <random>
#include <string>

#include "models/layers.h"

namespace loom::models {

// kReference: the reference's init (SVD / orthogonal polar factors, float64; what training and the
// golden files use). kRandomFast: plain N(0, std^2) draws, no factorisation, for benchmarks at
// widths where the float64 SVD of a (4d, d) matrix takes longer than the measurement.
enum class InitMode { kReference, kRandomFast };

class StructuredLinear : public Projection {
 public:
  StructuredLinear(int64_t in_features, int64_t out_features) : Projection(in_features, out_features) {}

  // The structured map S(x), no bias, no guide.
  virtual at::Tensor StructuredForward(const at::Tensor& x) = 0;
  // Structured weight entries (what the FLOP accounting counts).
  virtual int64_t NumStructuredWeights() const = 0;
  virtual std::string kind() const = 0;

  at::Tensor ForwardNoBias(const at::Tensor& x) override;

  // ---- self-guided training ----
  // Adds `guide_linear` initialised to `guide_init` (M, N) and the buffers count = 0, ratio = 1.
  void EnableSelfGuided(const at::Tensor& guide_init, bool reduce_flop, uint64_t seed);
  bool self_guided() const { return guide_active_; }
  void SetSelfGuidedState(int64_t count, double alpha);
  double alpha() const;
  int64_t count() const;
  // Ends the guided phase: the guide is never computed again and gets no gradient.
  void CloseSelfGuided();
  // Forward draws that skipped / used the dense branch (reduce_flop statistics).
  int64_t guide_skips() const { return guide_skips_; }
  int64_t guide_uses() const { return guide_uses_; }
  // The reduce_flop generator and the counters, for checkpoints (exact resume).
  std::string RngState() const;
  bool SetRngState(const std::string& state);  // false: not a valid generator state
  void SetGuideCounters(int64_t skips, int64_t uses) {
    guide_skips_ = skips;
    guide_uses_ = uses;
  }

  // ---- pre-merge ----
  // Caches W_merged (no grad). In eval mode, calls with fewer than `threshold_tokens` rows use the
  // dense matrix, others the structured form. threshold 0 turns the cache off.
  void SetMergedForInference(int64_t threshold_tokens);

  // True when ForwardNoBias on `rows` rows would compute the plain structured map S(x) (no guide,
  // no merged matrix), so a caller may fuse it with its neighbours. Like ForwardNoBias, drops the
  // merged cache in training mode.
  bool PrepareStructuredCall(int64_t rows);

  at::Tensor guide_linear;  // (M, N) when self-guided
  at::Tensor ratio;         // alpha, 0-d, float64
  at::Tensor count_buffer;  // 0-d int64 ("count")

 private:
  at::Tensor merged_cache_;  // W_merged for pre-merged inference; dropped in training mode
  bool guide_active_ = false;
  bool reduce_flop_ = false;
  std::mt19937_64 rng_;
  int64_t guide_skips_ = 0;
  int64_t guide_uses_ = 0;
  int64_t merge_threshold_ = 0;
};

// Default for SetMergedForInference, measured (bazel run -c opt //models:ffn_benchmark, forward
// only, float32, 2 threads, one d -> 4d layer, structured vs the cached MergedWeight(), tokens
// 1 ... 4096, d = 1024 and 2048, all six paper settings): the structured form was faster at every
// token count, including 1 (e.g. d=2048 LowRank R=512: 379 us vs 1238 us at 1 token; d=1024
// BlockDense B=4 R=768, the closest: 254 us vs 303 us), because a small-batch dense product is
// bound by reading the (4d, d) matrix and the structured one reads fewer weights. Crossover = 1
// token for every variant, so merging never pays on this CPU: 0 (cache off). Re-measure on other
// hardware (GPUs) before raising it; see models/FFN_BENCHMARK_RESULTS.md.
inline constexpr int64_t kDefaultMergeBelowTokens = 0;

class LowRankLinear : public StructuredLinear {
 public:
  // Reference init ("svd"): lr1, lr2 ~ N(0, std^2) (drawn, then discarded), W0 ~ N(0, std^2)
  // (M, N); lr1 = sqrt(S_R) Vh_R, lr2 = U_R sqrt(S_R), the best rank-R approximation of W0.
  LowRankLinear(int64_t in_features, int64_t out_features, int64_t rank, bool bias,
                double init_std, at::ScalarType dtype, InitMode init = InitMode::kReference);
  at::Tensor StructuredForward(const at::Tensor& x) override;
  at::Tensor MergedWeight() override;
  int64_t NumStructuredWeights() const override;
  std::string kind() const override { return "lowrank"; }
  // The post-init from raw draws (exposed for the golden init test).
  static void SvdInit(const at::Tensor& w0, int64_t rank, at::Tensor* lr1, at::Tensor* lr2);

  at::Tensor lr1;  // (R, N)
  at::Tensor lr2;  // (M, R)
};

class BlockDenseLinear : public StructuredLinear {
 public:
  // Reference init ("ortho"): N(0, std^2) draws of blkdiag then lr, each block and lr replaced
  // by its orthogonal polar factor U Vh.
  BlockDenseLinear(int64_t in_features, int64_t out_features, int64_t rank, int64_t nblocks,
                   bool bias, double init_std, at::ScalarType dtype,
                   InitMode init = InitMode::kReference);
  at::Tensor StructuredForward(const at::Tensor& x) override;
  at::Tensor MergedWeight() override;
  int64_t NumStructuredWeights() const override;
  std::string kind() const override { return "blockdense"; }

  at::Tensor blkdiag;  // (B, R/B, N/B)
  at::Tensor lr;       // (M, R)

 private:
  int64_t nblocks_;
};

class BlockShuffleLinear : public StructuredLinear {
 public:
  BlockShuffleLinear(int64_t in_features, int64_t out_features, int64_t nblocks, bool bias,
                     double init_std, at::ScalarType dtype, InitMode init = InitMode::kReference);
  at::Tensor StructuredForward(const at::Tensor& x) override;
  at::Tensor MergedWeight() override;
  int64_t NumStructuredWeights() const override;
  std::string kind() const override { return "blockshuffle"; }
  // The reference's guide init: blockdiag(blkdiag2) * blockdiag(blkdiag1), shuffles ignored.
  at::Tensor ReferenceGuideInit();
  int64_t nblocks() const { return nblocks_; }

  // ---- fused BlockShuffle -> GELU -> BlockShuffle FFN (FeedForward uses these) ----
  // S(x) before its un-shuffle, as one batched GEMM writes it: z (B, n, M/B) with
  // z[c, t, r] = S(x)[t, r*B + c], x's leading dimensions flattened into n.
  // kernels::BiasGeluInterleaveBatches(z, ToGroupedLayout(bias, B, group), group / B) then writes
  // the activation in the grouped layout of a consumer whose input blocks are `group` wide (see
  // ToGroupedLayout), so the (n, 4d) un-shuffle of an FFN's fc1 costs no copy. CanWriteGrouped
  // says whether that layout exists: B | group | out_features.
  bool CanWriteGrouped(int64_t group) const;
  at::Tensor StructuredForwardBatched(const at::Tensor& x);
  // S(x) given x in the grouped layout made by a producer with `producer_nblocks` blocks and
  // group = this layer's input block width in_features/B; plus `with_bias` (out_features) if
  // defined, added in the un-shuffle's pass (and its gradient summed in the backward's).
  at::Tensor StructuredForwardFromGrouped(const at::Tensor& x_grouped, int64_t producer_nblocks,
                                          const at::Tensor& with_bias = at::Tensor());

  at::Tensor blkdiag1;  // (B, q, N/B)
  at::Tensor blkdiag2;  // (B, M/B, q)

 private:
  // u (B, n, q), u[c, t, a] = (blockdiag(w1) rows)[t, a*B + c]
  at::Tensor ShuffledMiddle(const at::Tensor& rows, const at::Tensor& w1);
  int64_t nblocks_;
};

// Orthogonal polar factor U Vh of each matrix in a batch (..., m, n).
at::Tensor PolarFactor(const at::Tensor& a);

// The grouped layout of a BlockShuffle output y[t, r*B + c] (B = nblocks) read by a consumer in
// blocks of `group` columns: logical column i*group + k*B + c is stored at i*group + c*group/B + k,
// i.e. within every group the (k, c) index pair is transposed. Applied to the last dimension of
// `t` (an activation, a bias or a consumer's weight columns); differentiable.
at::Tensor ToGroupedLayout(const at::Tensor& t, int64_t nblocks, int64_t group);

// Block-diagonal product: x (n, B*p) with blocks (B, q, p) -> (n, B*q), block-major.
at::Tensor BlockDiagonalApply(const at::Tensor& x, const at::Tensor& blocks);

}  // namespace loom::models

#endif  // LOOM_MODELS_STRUCTURED_LINEAR_H_
