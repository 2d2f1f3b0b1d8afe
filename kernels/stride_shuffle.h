// The stride permutations of BlockShuffle (and of anything else that views a row of B*q values as
// a (q, B) matrix and transposes it), as single passes over memory.
//
//   at::Tensor z = loom::kernels::DeinterleaveColumns(y, B);    // y (n, q*B) -> z (B, n, q)
//   at::Tensor y = loom::kernels::InterleaveColumns(z, bias);   // the inverse, + bias (q*B) or {}
//   auto [z, sums] = loom::kernels::DeinterleaveColumnsAndSum(y, B);  // + column sums of y
//
// z[c, t, r] = y[t, r*B + c]. ATen's permute+copy does the same, but its deinterleave walks the
// input with stride B and ran at less than half the speed of a memcpy of the same bytes; these
// read whole rows and write B contiguous runs (or the reverse), and fold in the bias add of a
// layer's output and the bias gradient's column sums, which were separate passes. Not
// autograd-aware: callers are custom autograd functions. CPU float32/float64 run the loops here;
// other dtypes and devices fall back to ATen's ops with the same results.
#ifndef LOOM_KERNELS_STRIDE_SHUFFLE_H_
#define LOOM_KERNELS_STRIDE_SHUFFLE_H_

#include <ATen/core/Tensor.h>

#include <utility>

namespace loom::kernels {

at::Tensor DeinterleaveColumns(const at::Tensor& y, int64_t nblocks);

// `bias` may be undefined.
at::Tensor InterleaveColumns(const at::Tensor& z, const at::Tensor& bias);

// The column sums are added over rows in fixed chunks and then in chunk order, so they do not
// depend on the thread count.
std::pair<at::Tensor, at::Tensor> DeinterleaveColumnsAndSum(const at::Tensor& y, int64_t nblocks);

}  // namespace loom::kernels

#endif  // LOOM_KERNELS_STRIDE_SHUFFLE_H_
