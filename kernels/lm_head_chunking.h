// How the fused LM head + cross-entropy (kernels/lm_head_loss.h) cuts its rows into chunks. A
// separate, dependency-free header so memory plans (core/memory_plan) size the logits buffer
// with the kernel's own rule.
//
//   int64_t chunk = loom::kernels::LmHeadChunkRows(rows, vocab, /*requested=*/0);
#ifndef LOOM_KERNELS_LM_HEAD_CHUNKING_H_
#define LOOM_KERNELS_LM_HEAD_CHUNKING_H_

#include <algorithm>
#include <cstdint>

namespace loom::kernels {

// The logits buffer of one chunk holds at most this many bytes (float32) by default.
inline constexpr int64_t kLmHeadChunkBytes = int64_t{256} << 20;

// Rows per chunk: `requested` if > 0, else the rows split evenly into chunks whose float32
// logits fit kLmHeadChunkBytes. Large chunks because the head's GEMMs lose up to half their
// speed below ~512 rows (K = rows is the weight gradient's inner dimension; measured by
// //kernels:lm_head_loss_benchmark).
inline int64_t LmHeadChunkRows(int64_t rows, int64_t vocab, int64_t requested) {
  if (requested > 0) return std::max<int64_t>(1, std::min(requested, rows));
  const int64_t cap = std::max<int64_t>(64, kLmHeadChunkBytes / (4 * std::max<int64_t>(vocab, 1)));
  const int64_t chunks = std::max<int64_t>(1, (rows + cap - 1) / cap);
  return std::max<int64_t>(1, (rows + chunks - 1) / chunks);
}

}  // namespace loom::kernels

#endif  // LOOM_KERNELS_LM_HEAD_CHUNKING_H_
