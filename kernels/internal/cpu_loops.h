// Pieces the CPU loops of several kernels share (bias_gelu.cc, stride_shuffle.cc).
#ifndef LOOM_KERNELS_INTERNAL_CPU_LOOPS_H_
#define LOOM_KERNELS_INTERNAL_CPU_LOOPS_H_

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace loom::kernels::internal {

// True when a tensor can go through the hand-written CPU loops (float32/float64 on the CPU); other
// dtypes and devices take the kernels' ATen fallbacks.
inline bool CpuFloatingLoop(const at::Tensor& t) {
  return t.device().is_cpu() && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble);
}

// Runs `row(r, acc)` for every row r in parallel, where `row` adds that row's contribution to the
// column sums into acc[0, cols), and writes the column sums into `sums`. Rows are summed in fixed
// chunks of kRowsPerChunk, each chunk into its own partial row, and the partials are added in
// chunk order, so the sums do not depend on the thread count or the scheduling (bit-identical
// runs). This is how a pass over a layer's output gradient also yields its bias gradient, without
// a second read.
constexpr int64_t kRowsPerChunk = 64;

template <typename T, typename RowFn>
void ForEachRowWithColumnSums(int64_t rows, int64_t cols, T* sums, const RowFn& row) {
  const int64_t chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  std::vector<T> partial(static_cast<size_t>(chunks * cols), T(0));
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      T* acc = partial.data() + k * cols;
      for (int64_t r = k * kRowsPerChunk; r < std::min(rows, (k + 1) * kRowsPerChunk); ++r) {
        row(r, acc);
      }
    }
  });
  at::parallel_for(0, cols, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) sums[c] = T(0);
    for (int64_t k = 0; k < chunks; ++k) {
      const T* acc = partial.data() + k * cols;
      for (int64_t c = begin; c < end; ++c) sums[c] += acc[c];
    }
  });
}

}  // namespace loom::kernels::internal

#endif  // LOOM_KERNELS_INTERNAL_CPU_LOOPS_H_
