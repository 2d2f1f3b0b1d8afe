// Fused bias + GELU for the FFN's first projection: y = gelu(u + b).
//
// GELU is the Megatron tanh approximation with the truncated constants the StructuredFFN
// reference uses (0.79788456, 0.044715), not torch's exact sqrt(2/pi): the two differ by up to
// 2.6e-10, which the golden vectors resolve. The backward is the reference's hand-written
// derivative. One interface, two paths: CPU tensors run a vectorisable loop here, CUDA tensors run
// the kernel in internal/bias_gelu_cuda.cu (only in the `--config=cuda` build).
//
//   at::Tensor h = loom::kernels::BiasGelu(u, b);   // u: (..., F), b: (F) or undefined; autograd-aware
#ifndef LOOM_KERNELS_BIAS_GELU_H_
#define LOOM_KERNELS_BIAS_GELU_H_

#include <ATen/core/Tensor.h>

#include <utility>

namespace loom::kernels {

// Autograd-aware fused bias+GELU. `bias` may be undefined (no bias). float32, float64 and bfloat16
// (computed in float32) are supported on CPU; float32 and bfloat16 on CUDA.
at::Tensor BiasGelu(const at::Tensor& u, const at::Tensor& bias);

// The raw forward and backward without autograd, for tests and benchmarks.
at::Tensor BiasGeluForward(const at::Tensor& u, const at::Tensor& bias);
// Returns d(loss)/d(u + b) given d(loss)/dy.
at::Tensor BiasGeluBackward(const at::Tensor& grad_y, const at::Tensor& u, const at::Tensor& bias);

// The backward and d(loss)/d(bias) (column sums of the first) in one pass over the rows; what the
// autograd node runs when there is a bias. Deterministic: the row sum order is fixed.
std::pair<at::Tensor, at::Tensor> BiasGeluBackwardWithBiasGrad(const at::Tensor& grad_y,
                                                                const at::Tensor& u,
                                                                const at::Tensor& bias);

// Bias+GELU of a batched GEMM's output, interleaving its batches on the way. z is (B, n, s), bias
// is (B*s) or undefined, and `run` divides s; the result y is (n, B*s) with
//   y[t, (r*B + c)*run + l] = gelu(z[c, t, r*run + l] + bias[(r*B + c)*run + l]),
// i.e. the same as BiasGelu(z.view(B, n, s/run, run).permute(1, 2, 0, 3).reshape(n, B*s), bias)
// without materialising the permutation: the CPU loop reads z's contiguous runs in place, and the
// backward writes dz straight into z's (B, n, s) layout. The fused BlockShuffle FFN uses it so
// that fc1's second product stays one batched GEMM (see FeedForward). Autograd-aware; CUDA and
// bfloat16 go through the permuted view and BiasGelu.
at::Tensor BiasGeluInterleaveBatches(const at::Tensor& z, const at::Tensor& bias, int64_t run);
at::Tensor BiasGeluInterleaveBatchesForward(const at::Tensor& z, const at::Tensor& bias,
                                            int64_t run);
// Returns dz (B, n, s) and, when `bias` is defined, d(loss)/d(bias). CPU float32/float64.
std::pair<at::Tensor, at::Tensor> BiasGeluInterleaveBatchesBackward(const at::Tensor& grad_y,
                                                                    const at::Tensor& z,
                                                                    const at::Tensor& bias,
                                                                    int64_t run);

// True when this binary was built with the CUDA path (`--config=cuda`).
bool BiasGeluHasCuda();

}  // namespace loom::kernels

#endif  // LOOM_KERNELS_BIAS_GELU_H_
