// Launchers for the CUDA SSM kernels (internal/ssm_kernels_cuda.cu): the Cauchy and Vandermonde
// sums of ssm_kernels.h, forward and backward. Plain pointers and a cudaStream_t passed as void*
// keep this header free of CUDA and LibTorch includes.
//
// dtype_code: 0 = complex64 (float re, im pairs; real tensors float), 1 = complex128 (double
// pairs; real tensors double). Every tensor is contiguous row-major, complex stored interleaved
// (re, im). Outputs are fully overwritten. Each launcher returns a cudaError_t as int.
#ifndef LOOM_KERNELS_INTERNAL_SSM_KERNELS_CUDA_H_
#define LOOM_KERNELS_INTERNAL_SSM_KERNELS_CUDA_H_

#include <cstdint>

namespace loom::kernels::internal {

// r[m,h,k] = sum_n v[m,h,n] / (z[k] - w[h,n]) + conj(v[m,h,n]) / (z[k] - conj(w[h,n])).
// v (M, H, N), z (K), w (H, N), r (M, H, K); all complex.
int LaunchCauchyForward(int dtype_code, const void* v, const void* z, const void* w, void* r,
                        int64_t M, int64_t H, int64_t N, int64_t K, void* stream);

// With a = 1 / (z[k] - w[h,n]), b = 1 / (z[k] - conj(w[h,n])) and complex grad_r (M, H, K):
//   grad_v[m,h,n] = sum_k grad_r[m,h,k] conj(a) + conj(grad_r[m,h,k]) b             (M, H, N)
//   grad_w[h,n]   = sum_{m,k} grad_r conj(v a a) + conj(grad_r) conj(v) b b          (H, N)
int LaunchCauchyBackward(int dtype_code, const void* grad_r, const void* v, const void* z,
                         const void* w, void* grad_v, void* grad_w, int64_t M, int64_t H,
                         int64_t N, int64_t K, void* stream);

// out[m,h,l] = 2 Re sum_n W[m,h,n] exp(x[h,n] l), l = 0..length-1.
// W (M, H, N) complex, x (H, N) complex, out (M, H, length) real.
int LaunchVandermondeForward(int dtype_code, const void* W, const void* x, void* out, int64_t M,
                             int64_t H, int64_t N, int64_t length, void* stream);

// With E = exp(x[h,n] l) and real grad_out (M, H, length):
//   grad_W[m,h,n] = 2 sum_l grad_out[m,h,l] conj(E)                                   (M, H, N)
//   grad_x[h,n]   = 2 sum_m conj(W[m,h,n]) sum_l grad_out[m,h,l] l conj(E)             (H, N)
int LaunchVandermondeBackward(int dtype_code, const void* grad_out, const void* W, const void* x,
                              void* grad_W, void* grad_x, int64_t M, int64_t H, int64_t N,
                              int64_t length, void* stream);

}  // namespace loom::kernels::internal

#endif  // LOOM_KERNELS_INTERNAL_SSM_KERNELS_CUDA_H_
