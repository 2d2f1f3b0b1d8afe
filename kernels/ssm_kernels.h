// The two sums that turn S4-family state-space parameters into convolution kernels, with their
// hand-derived backward passes, behind one autograd-aware interface (S4 spec §1.4, §1.5).
//
//   // S4 (DPLR): Cauchy sums over the conjugate-completed state at the frequency nodes z.
//   at::Tensor r = loom::kernels::CauchyConjugateSum(v, z, w);   // (M, H, N), (K), (H, N) -> (M, H, K)
//   // S4D: the real kernel 2 Re sum_n W[m,h,n] exp(x[h,n] l), l = 0..length-1.
//   at::Tensor k = loom::kernels::VandermondeRealSum(W, x, L);    // (M, H, N), (H, N) -> (M, H, L)
//
// Why not plain ATen: the reference materialises (M, H, N, K) or (H, N, L) complex tensors, which
// ran a 24 GiB machine out of memory at L = 16K. These kernels stream over the state axis and keep
// only inputs and outputs, forward and backward.
//
// One interface, two paths: CPU tensors run the loops in ssm_kernels.cc (at::parallel_for over
// (h, node) tiles), CUDA tensors run internal/ssm_kernels_cuda.cu (built only under
// `--config=cuda`). Both compute the same formulas, so the tests of the CPU path check the
// autograd wiring the CUDA path shares. complex64 and complex128 are supported.
//
// Conventions (PyTorch's for complex autograd): the gradient of a real loss with respect to a
// complex z is dL/dRe z + i dL/dIm z.
#ifndef LOOM_KERNELS_SSM_KERNELS_H_
#define LOOM_KERNELS_SSM_KERNELS_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <tuple>

namespace loom::kernels {

// r[m,h,k] = sum_n v[m,h,n] / (z[k] - w[h,n]) + conj(v[m,h,n]) / (z[k] - conj(w[h,n])).
// v: (M, H, N) complex, z: (K) complex (constant: no gradient), w: (H, N) complex.
// Differentiable in v and w. No node may coincide with a pole (S4 keeps Re w < 0 and Re z = 0).
at::Tensor CauchyConjugateSum(const at::Tensor& v, const at::Tensor& z, const at::Tensor& w);

// K[m,h,l] = 2 Re sum_n W[m,h,n] exp(x[h,n] * l) for l = 0..length-1; real output (M, H, length)
// in W's real dtype. W: (M, H, N) complex, x: (H, N) complex. Differentiable in W and x.
at::Tensor VandermondeRealSum(const at::Tensor& W, const at::Tensor& x, int64_t length);

// Raw forward and backward passes without autograd, for tests and benchmarks.
at::Tensor CauchyForward(const at::Tensor& v, const at::Tensor& z, const at::Tensor& w);
// Returns (grad_v, grad_w) for an incoming complex gradient grad_r (M, H, K).
std::tuple<at::Tensor, at::Tensor> CauchyBackward(const at::Tensor& grad_r, const at::Tensor& v,
                                                  const at::Tensor& z, const at::Tensor& w);
at::Tensor VandermondeForward(const at::Tensor& W, const at::Tensor& x, int64_t length);
// Returns (grad_W, grad_x) for an incoming real gradient grad_k (M, H, length).
std::tuple<at::Tensor, at::Tensor> VandermondeBackward(const at::Tensor& grad_k,
                                                       const at::Tensor& W, const at::Tensor& x);

// True when this binary was built with the CUDA path (`--config=cuda`).
bool SsmKernelsHaveCuda();

}  // namespace loom::kernels

#endif  // LOOM_KERNELS_SSM_KERNELS_H_
