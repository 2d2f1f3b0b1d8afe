// Fused language-model head and cross-entropy: the mean over rows of
//
//     logsumexp_v(h_n . W_v) - h_n . W_{t_n}          (rows with t_n == ignore_index left out)
//
// without materialising the (rows x vocab) logits. With the GPT-2 vocabulary the logits, their
// log-softmax and their gradient are the largest tensors of a small model's step (2048 x 50257
// floats = 412 MB each for batch 8 x seq 256) and the head is most of its FLOPs; writing them to
// fresh memory and re-reading them cost more than the head's three GEMMs. Here the rows are cut into
// chunks whose logits fit a reused buffer: per chunk one GEMM gives the logits, one pass over each
// row turns them into the softmax minus the one-hot target, already scaled by 1/rows, and two GEMMs
// give the chunk's d(loss)/dh and its share of d(loss)/dW. The gradients are therefore computed in
// the forward (when autograd needs them) and the backward only scales them by the incoming
// gradient; the total is the unfused head's three GEMMs, no recomputation.
//
//   at::Tensor loss = loom::kernels::LmHeadCrossEntropy(hidden, weight, targets);
//   loss.backward();   // hidden.grad, weight.grad as from at::cross_entropy(at::linear(h, W), t)
//
// One interface, two paths: float32 CPU tensors run a vectorised row loop (max, exp-sum and scale
// in three passes); float64 and CUDA tensors run the same chunking with ATen ops per chunk. Other
// dtypes are refused (the caller computes bf16 heads unfused, in float32).
#ifndef LOOM_KERNELS_LM_HEAD_LOSS_H_
#define LOOM_KERNELS_LM_HEAD_LOSS_H_

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace loom::kernels {

struct LmHeadLossOptions {
  // Rows whose target equals this are left out of the mean (as at::cross_entropy's ignore_index).
  int64_t ignore_index = -100;
  // Rows per chunk; 0 splits the rows evenly into chunks whose logits take at most 256 MiB.
  int64_t chunk_rows = 0;

  LmHeadLossOptions& set_ignore_index(int64_t v) {
    ignore_index = v;
    return *this;
  }
  LmHeadLossOptions& set_chunk_rows(int64_t v) {
    chunk_rows = v;
    return *this;
  }
};

// hidden (..., d), weight (vocab, d), targets (...) int64 with the shape of hidden's leading
// dimensions. Returns the scalar mean loss in hidden's dtype (float32 or float64). Autograd-aware
// for hidden and weight. As at::cross_entropy, the mean over zero valid rows is NaN. The backward
// may run once per forward (the saved gradients are scaled in place).
at::Tensor LmHeadCrossEntropy(const at::Tensor& hidden, const at::Tensor& weight,
                              const at::Tensor& targets, const LmHeadLossOptions& options = {});

// True if LmHeadCrossEntropy handles this dtype (float32, float64).
bool LmHeadCrossEntropySupports(at::ScalarType dtype);

}  // namespace loom::kernels

#endif  // LOOM_KERNELS_LM_HEAD_LOSS_H_
