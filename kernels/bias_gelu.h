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

// True when this binary was built with the CUDA path (`--config=cuda`).
bool BiasGeluHasCuda();

}  // namespace loom::kernels

#endif  // LOOM_KERNELS_BIAS_GELU_H_
