// Long convolutions by FFT, shared by every convolutional sequence mixer (S4, S4D, SGConv).
//
//   // x: (B, H, L) real, k: (C, H, Lk) real -> y: (B, C, H, L) with
//   // y[b,c,h,t] = sum_s k[c,h,s] x[b,h,(t - s) mod n], x zero-padded to n (n >= Lk + L - 1 makes
//   // it a linear convolution; n = Lk + L is what the S4 and SGConv references use).
//   at::Tensor y = loom::kernels::FftLongConv(x, k, n);
//   // The references' two-sided kernel: causal part k0 plus the reversed anti-causal part k1,
//   // y[t] += sum_s k0[s] x[t-s] + sum_j k1[j] x[t+1+j] (the backward branch starts at lag +1).
//   at::Tensor k2 = loom::kernels::TwoSidedKernel(k0, k1, L);   // (C, H, Lk + L)
//
// One interface, two paths: at::fft_rfft / at::fft_irfft run pocketfft (or MKL) on CPU tensors
// and cuFFT on CUDA tensors; autograd comes from ATen. Any n works (the FFT libraries handle
// lengths that are not powers of two).
#ifndef LOOM_KERNELS_FFT_CONV_H_
#define LOOM_KERNELS_FFT_CONV_H_

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace loom::kernels {

// x (B, H, L), k (C, H, Lk), n >= max(L, Lk): the first L outputs of the length-n circular
// convolution, (B, C, H, L). float32 or float64.
at::Tensor FftLongConv(const at::Tensor& x, const at::Tensor& k, int64_t n);

// pad(k0, right = L) + pad(flip(k1), left = L) along the last axis: (C, H, Lk) x 2 -> (C, H, Lk + L).
at::Tensor TwoSidedKernel(const at::Tensor& k0, const at::Tensor& k1, int64_t L);

}  // namespace loom::kernels

#endif  // LOOM_KERNELS_FFT_CONV_H_
