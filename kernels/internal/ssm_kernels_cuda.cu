// CUDA SSM kernels: the Cauchy and Vandermonde sums of ssm_kernels.h, forward and backward, in the
// storage precision (complex64 -> float, complex128 -> double). No intermediate larger than the
// inputs and outputs is ever materialised: forwards stream over the state axis n, backwards stream
// over the sequence axis k / l and reduce inside a block.
//
// Shapes: M small (1-9), H up to ~1K, N up to ~64, K / length up to 64K and beyond. Rows m are
// processed kMChunk at a time from registers, so any M works; the per-node reciprocals and
// exponentials are computed once per chunk and shared by its rows.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/internal/ssm_kernels_cuda.h"

namespace loom::kernels::internal {
namespace {

constexpr int kThreads = 256;  // A power of two: BlockSum halves it.
constexpr int kMChunk = 8;     // Rows m accumulated in registers per pass.
constexpr int kNTile = 64;     // States staged in shared memory per pass (forward kernels).
constexpr int64_t kMaxGridX = 2147483647;
constexpr int64_t kMaxGridY = 65535;

// Interleaved (re, im), laid out like c10::complex<R> / float2 / double2.
template <typename R>
struct alignas(2 * sizeof(R)) Complex {
  R re;
  R im;
};

template <typename R>
__device__ __forceinline__ Complex<R> Zero() { return {R(0), R(0)}; }
template <typename R>
__device__ __forceinline__ Complex<R> Conj(Complex<R> a) { return {a.re, -a.im}; }
template <typename R>
__device__ __forceinline__ Complex<R> operator+(Complex<R> a, Complex<R> b) {
  return {a.re + b.re, a.im + b.im};
}
template <typename R>
__device__ __forceinline__ Complex<R> operator-(Complex<R> a, Complex<R> b) {
  return {a.re - b.re, a.im - b.im};
}
template <typename R>
__device__ __forceinline__ Complex<R> operator*(Complex<R> a, Complex<R> b) {
  return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}
template <typename R>
__device__ __forceinline__ Complex<R> operator*(R s, Complex<R> a) { return {s * a.re, s * a.im}; }
template <typename R>
__device__ __forceinline__ Complex<R>& operator+=(Complex<R>& a, Complex<R> b) {
  a = a + b;
  return a;
}
// 1 / d = conj(d) / |d|^2 (IEEE division: nvcc's default -prec-div=true).
template <typename R>
__device__ __forceinline__ Complex<R> Inv(Complex<R> d) {
  const R scale = R(1) / (d.re * d.re + d.im * d.im);
  return {d.re * scale, -d.im * scale};
}

// exp(x l) = exp(Re x l) (cos(Im x l), sin(Im x l)), evaluated afresh for every l: no power
// recurrence, so errors do not compound along the sequence. The phase Im x * l reaches ~1e6 rad at
// l = 64K, where rounding the product alone would cost ~1e-10 rad in double and ~0.1 rad in float;
// so the product is kept exact (hi + lo), reduced by 2 pi in two Cody-Waite steps, and only then
// handed to sincos. exp(hi + lo) = exp(hi) (1 + lo) likewise keeps the decay's product exact
// (and, unlike an fma, stays inf rather than NaN if exp overflows).
constexpr double kInvTwoPi = 0.15915494309189535;
constexpr double kTwoPiHi = 6.283185307179586;       // 2 pi rounded to double
constexpr double kTwoPiLo = 2.4492935982947064e-16;  // 2 pi - kTwoPiHi

// (hi + lo) mod 2 pi in [-pi, pi], for |hi| >> |lo|.
__device__ __forceinline__ double ReducePhase(double hi, double lo) {
  const double turns = rint(hi * kInvTwoPi);
  return fma(-turns, kTwoPiLo, fma(-turns, kTwoPiHi, hi)) + lo;
}

__device__ __forceinline__ Complex<double> ExpTimes(Complex<double> x, int64_t l) {
  const double t = static_cast<double>(l);
  const double phase = x.im * t;
  double s;
  double c;
  sincos(ReducePhase(phase, fma(x.im, t, -phase)), &s, &c);
  const double decay = x.re * t;
  const double mag = exp(decay) * (1.0 + fma(x.re, t, -decay));
  return {mag * c, mag * s};
}
// complex64: in double a float times l < 2^29 is exact, so hi + lo comes from one cast.
__device__ __forceinline__ Complex<float> ExpTimes(Complex<float> x, int64_t l) {
  const double t = static_cast<double>(l);
  float s;
  float c;
  sincosf(static_cast<float>(ReducePhase(static_cast<double>(x.im) * t, 0.0)), &s, &c);
  const double decay = static_cast<double>(x.re) * t;
  const float decay_hi = static_cast<float>(decay);
  const float mag = expf(decay_hi) * (1.0f + static_cast<float>(decay - decay_hi));
  return {mag * c, mag * s};
}

// Sum of one value per thread of the block, in a fixed tree order (deterministic, no atomics).
// Every thread must call it; the total is returned to all of them. buf holds kThreads entries.
template <typename C>
__device__ C BlockSum(C value, C* buf) {
  buf[threadIdx.x] = value;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) buf[threadIdx.x] += buf[threadIdx.x + stride];
    __syncthreads();
  }
  const C total = buf[0];
  __syncthreads();  // buf is reused by the next call.
  return total;
}

// Cauchy forward. One thread per frequency node k, a block per (k tile, h): the state sum over n is
// the inner loop, so each thread reads z[k] once and its stores are coalesced along k, while
// w[h, :] and v[m-chunk, h, :], which every thread of the block needs, are staged once per block in
// shared memory (kNTile states at a time, so any N fits).
template <typename R>
__global__ void __launch_bounds__(kThreads)
    CauchyForwardKernel(const Complex<R>* __restrict__ v, const Complex<R>* __restrict__ z,
                        const Complex<R>* __restrict__ w, Complex<R>* __restrict__ r, int64_t M,
                        int64_t H, int64_t N, int64_t K) {
  __shared__ Complex<R> w_tile[kNTile];
  __shared__ Complex<R> v_tile[kMChunk][kNTile];
  const int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const bool active = k < K;
  const Complex<R> zk = active ? z[k] : Zero<R>();
  for (int64_t h = blockIdx.y; h < H; h += gridDim.y) {
    for (int64_t m0 = 0; m0 < M; m0 += kMChunk) {
      const int mc = static_cast<int>(M - m0 < kMChunk ? M - m0 : kMChunk);
      Complex<R> acc[kMChunk];
#pragma unroll
      for (int j = 0; j < kMChunk; ++j) acc[j] = Zero<R>();
      for (int64_t n0 = 0; n0 < N; n0 += kNTile) {
        const int nc = static_cast<int>(N - n0 < kNTile ? N - n0 : kNTile);
        __syncthreads();  // The previous tile is consumed.
        for (int i = threadIdx.x; i < (mc + 1) * kNTile; i += blockDim.x) {
          const int row = i / kNTile;  // 0: w; 1..mc: v rows m0..m0+mc-1.
          const int n = i % kNTile;
          if (n >= nc) continue;
          if (row == 0) {
            w_tile[n] = w[h * N + n0 + n];
          } else {
            v_tile[row - 1][n] = v[((m0 + row - 1) * H + h) * N + n0 + n];
          }
        }
        __syncthreads();
        if (!active) continue;
        for (int n = 0; n < nc; ++n) {
          const Complex<R> wn = w_tile[n];
          const Complex<R> a = Inv(zk - wn);
          const Complex<R> b = Inv(zk - Conj(wn));
#pragma unroll
          for (int j = 0; j < kMChunk; ++j) {
            if (j < mc) acc[j] += v_tile[j][n] * a + Conj(v_tile[j][n]) * b;
          }
        }
      }
      if (active) {
#pragma unroll
        for (int j = 0; j < kMChunk; ++j) {
          if (j < mc) r[((m0 + j) * H + h) * K + k] = acc[j];
        }
      }
    }
  }
}

// Cauchy backward. Both gradients are sums over k (up to 64K+) per state (h, n), so a block owns one
// (h, n) at a time: its threads stride over k (coalesced loads of grad_r rows, which the N
// neighbouring blocks of the same h share through L2), keep private partial sums, and a shared-
// memory tree folds them in a fixed order. grad_w also sums over m; each thread folds its rows in
// first, via grad_w = sum_k conj(a)^2 sum_m g conj(v) + b^2 sum_m conj(g) conj(v).
template <typename R>
__global__ void __launch_bounds__(kThreads)
    CauchyBackwardKernel(const Complex<R>* __restrict__ grad_r, const Complex<R>* __restrict__ v,
                         const Complex<R>* __restrict__ z, const Complex<R>* __restrict__ w,
                         Complex<R>* __restrict__ grad_v, Complex<R>* __restrict__ grad_w,
                         int64_t M, int64_t H, int64_t N, int64_t K) {
  __shared__ Complex<R> buf[kThreads];
  for (int64_t p = blockIdx.x; p < H * N; p += gridDim.x) {
    const int64_t h = p / N;
    const int64_t n = p % N;
    const Complex<R> wn = w[p];
    Complex<R> acc_w = Zero<R>();
    for (int64_t m0 = 0; m0 < M; m0 += kMChunk) {
      const int mc = static_cast<int>(M - m0 < kMChunk ? M - m0 : kMChunk);
      Complex<R> conj_v[kMChunk];
      Complex<R> acc_v[kMChunk];
#pragma unroll
      for (int j = 0; j < kMChunk; ++j) {
        conj_v[j] = j < mc ? Conj(v[((m0 + j) * H + h) * N + n]) : Zero<R>();
        acc_v[j] = Zero<R>();
      }
      for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
        const Complex<R> zk = z[k];
        const Complex<R> conj_a = Conj(Inv(zk - wn));
        const Complex<R> b = Inv(zk - Conj(wn));
        Complex<R> g_conj_v = Zero<R>();       // sum_m g conj(v)
        Complex<R> conj_g_conj_v = Zero<R>();  // sum_m conj(g) conj(v)
#pragma unroll
        for (int j = 0; j < kMChunk; ++j) {
          if (j < mc) {
            const Complex<R> g = grad_r[((m0 + j) * H + h) * K + k];
            acc_v[j] += g * conj_a + Conj(g) * b;
            g_conj_v += g * conj_v[j];
            conj_g_conj_v += Conj(g) * conj_v[j];
          }
        }
        acc_w += conj_a * conj_a * g_conj_v + b * b * conj_g_conj_v;
      }
#pragma unroll
      for (int j = 0; j < kMChunk; ++j) {
        if (j < mc) {
          const Complex<R> total = BlockSum(acc_v[j], buf);
          if (threadIdx.x == 0) grad_v[((m0 + j) * H + h) * N + n] = total;
        }
      }
    }
    const Complex<R> total = BlockSum(acc_w, buf);
    if (threadIdx.x == 0) grad_w[p] = total;
  }
}

// Vandermonde forward. Same shape as the Cauchy forward: one thread per position l, a block per
// (l tile, h), the state sum inner with x[h, :] and W[m-chunk, h, :] staged in shared memory, and
// exp(x l) evaluated once per (l, n) for all rows of the chunk; stores are coalesced along l.
template <typename R>
__global__ void __launch_bounds__(kThreads)
    VandermondeForwardKernel(const Complex<R>* __restrict__ W, const Complex<R>* __restrict__ x,
                             R* __restrict__ out, int64_t M, int64_t H, int64_t N, int64_t L) {
  __shared__ Complex<R> x_tile[kNTile];
  __shared__ Complex<R> W_tile[kMChunk][kNTile];
  const int64_t l = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const bool active = l < L;
  for (int64_t h = blockIdx.y; h < H; h += gridDim.y) {
    for (int64_t m0 = 0; m0 < M; m0 += kMChunk) {
      const int mc = static_cast<int>(M - m0 < kMChunk ? M - m0 : kMChunk);
      R acc[kMChunk];
#pragma unroll
      for (int j = 0; j < kMChunk; ++j) acc[j] = R(0);
      for (int64_t n0 = 0; n0 < N; n0 += kNTile) {
        const int nc = static_cast<int>(N - n0 < kNTile ? N - n0 : kNTile);
        __syncthreads();  // The previous tile is consumed.
        for (int i = threadIdx.x; i < (mc + 1) * kNTile; i += blockDim.x) {
          const int row = i / kNTile;  // 0: x; 1..mc: W rows m0..m0+mc-1.
          const int n = i % kNTile;
          if (n >= nc) continue;
          if (row == 0) {
            x_tile[n] = x[h * N + n0 + n];
          } else {
            W_tile[row - 1][n] = W[((m0 + row - 1) * H + h) * N + n0 + n];
          }
        }
        __syncthreads();
        if (!active) continue;
        for (int n = 0; n < nc; ++n) {
          const Complex<R> e = ExpTimes(x_tile[n], l);
#pragma unroll
          for (int j = 0; j < kMChunk; ++j) {
            if (j < mc) acc[j] += W_tile[j][n].re * e.re - W_tile[j][n].im * e.im;
          }
        }
      }
      if (active) {
#pragma unroll
        for (int j = 0; j < kMChunk; ++j) {
          if (j < mc) out[((m0 + j) * H + h) * L + l] = R(2) * acc[j];
        }
      }
    }
  }
}

// Vandermonde backward. Same shape as the Cauchy backward: a block per state (h, n), threads
// striding over l with coalesced loads of grad_out rows, exp(x l) evaluated once per (l, n) for the
// whole row chunk, and a fixed-order shared-memory tree per output. grad_x folds the rows per l
// first: grad_x = 2 sum_l l conj(E) sum_m conj(W) g.
template <typename R>
__global__ void __launch_bounds__(kThreads)
    VandermondeBackwardKernel(const R* __restrict__ grad_out, const Complex<R>* __restrict__ W,
                              const Complex<R>* __restrict__ x, Complex<R>* __restrict__ grad_W,
                              Complex<R>* __restrict__ grad_x, int64_t M, int64_t H, int64_t N,
                              int64_t L) {
  __shared__ Complex<R> buf[kThreads];
  for (int64_t p = blockIdx.x; p < H * N; p += gridDim.x) {
    const int64_t h = p / N;
    const int64_t n = p % N;
    const Complex<R> xn = x[p];
    Complex<R> acc_x = Zero<R>();
    for (int64_t m0 = 0; m0 < M; m0 += kMChunk) {
      const int mc = static_cast<int>(M - m0 < kMChunk ? M - m0 : kMChunk);
      Complex<R> conj_W[kMChunk];
      Complex<R> acc_W[kMChunk];
#pragma unroll
      for (int j = 0; j < kMChunk; ++j) {
        conj_W[j] = j < mc ? Conj(W[((m0 + j) * H + h) * N + n]) : Zero<R>();
        acc_W[j] = Zero<R>();
      }
      for (int64_t l = threadIdx.x; l < L; l += blockDim.x) {
        const Complex<R> conj_e = Conj(ExpTimes(xn, l));
        Complex<R> g_conj_W = Zero<R>();  // sum_m g conj(W)
#pragma unroll
        for (int j = 0; j < kMChunk; ++j) {
          if (j < mc) {
            const R g = grad_out[((m0 + j) * H + h) * L + l];
            acc_W[j] += g * conj_e;
            g_conj_W += g * conj_W[j];
          }
        }
        acc_x += static_cast<R>(l) * (g_conj_W * conj_e);
      }
#pragma unroll
      for (int j = 0; j < kMChunk; ++j) {
        if (j < mc) {
          const Complex<R> total = BlockSum(acc_W[j], buf);
          if (threadIdx.x == 0) grad_W[((m0 + j) * H + h) * N + n] = R(2) * total;
        }
      }
    }
    const Complex<R> total = BlockSum(acc_x, buf);
    if (threadIdx.x == 0) grad_x[p] = R(2) * total;
  }
}

// Forward grid: x over sequence tiles, y over h (kernels loop h past 65535).
dim3 ForwardGrid(int64_t length, int64_t H) {
  const int64_t tiles = (length + kThreads - 1) / kThreads;
  return dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(H < kMaxGridY ? H : kMaxGridY));
}
// Backward grid: one block per state (h, n).
dim3 BackwardGrid(int64_t H, int64_t N) {
  const int64_t states = H * N;
  return dim3(static_cast<unsigned>(states < kMaxGridX ? states : kMaxGridX));
}

template <typename R>
int CauchyForwardImpl(const void* v, const void* z, const void* w, void* r, int64_t M, int64_t H,
                      int64_t N, int64_t K, cudaStream_t stream) {
  CauchyForwardKernel<R><<<ForwardGrid(K, H), kThreads, 0, stream>>>(
      static_cast<const Complex<R>*>(v), static_cast<const Complex<R>*>(z),
      static_cast<const Complex<R>*>(w), static_cast<Complex<R>*>(r), M, H, N, K);
  return static_cast<int>(cudaGetLastError());
}

template <typename R>
int CauchyBackwardImpl(const void* grad_r, const void* v, const void* z, const void* w,
                       void* grad_v, void* grad_w, int64_t M, int64_t H, int64_t N, int64_t K,
                       cudaStream_t stream) {
  CauchyBackwardKernel<R><<<BackwardGrid(H, N), kThreads, 0, stream>>>(
      static_cast<const Complex<R>*>(grad_r), static_cast<const Complex<R>*>(v),
      static_cast<const Complex<R>*>(z), static_cast<const Complex<R>*>(w),
      static_cast<Complex<R>*>(grad_v), static_cast<Complex<R>*>(grad_w), M, H, N, K);
  return static_cast<int>(cudaGetLastError());
}

template <typename R>
int VandermondeForwardImpl(const void* W, const void* x, void* out, int64_t M, int64_t H, int64_t N,
                           int64_t L, cudaStream_t stream) {
  VandermondeForwardKernel<R><<<ForwardGrid(L, H), kThreads, 0, stream>>>(
      static_cast<const Complex<R>*>(W), static_cast<const Complex<R>*>(x), static_cast<R*>(out),
      M, H, N, L);
  return static_cast<int>(cudaGetLastError());
}

template <typename R>
int VandermondeBackwardImpl(const void* grad_out, const void* W, const void* x, void* grad_W,
                            void* grad_x, int64_t M, int64_t H, int64_t N, int64_t L,
                            cudaStream_t stream) {
  VandermondeBackwardKernel<R><<<BackwardGrid(H, N), kThreads, 0, stream>>>(
      static_cast<const R*>(grad_out), static_cast<const Complex<R>*>(W),
      static_cast<const Complex<R>*>(x), static_cast<Complex<R>*>(grad_W),
      static_cast<Complex<R>*>(grad_x), M, H, N, L);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

// Empty outputs launch nothing. Empty reductions (N, K, length or M = 0) still launch, so the
// outputs are written as zeros.
int LaunchCauchyForward(int dtype_code, const void* v, const void* z, const void* w, void* r,
                        int64_t M, int64_t H, int64_t N, int64_t K, void* stream) {
  if (M == 0 || H == 0 || K == 0) return cudaSuccess;
  auto s = static_cast<cudaStream_t>(stream);
  if (dtype_code == 0) return CauchyForwardImpl<float>(v, z, w, r, M, H, N, K, s);
  if (dtype_code == 1) return CauchyForwardImpl<double>(v, z, w, r, M, H, N, K, s);
  return cudaErrorInvalidValue;
}

int LaunchCauchyBackward(int dtype_code, const void* grad_r, const void* v, const void* z,
                         const void* w, void* grad_v, void* grad_w, int64_t M, int64_t H,
                         int64_t N, int64_t K, void* stream) {
  if (H == 0 || N == 0) return cudaSuccess;
  auto s = static_cast<cudaStream_t>(stream);
  if (dtype_code == 0) {
    return CauchyBackwardImpl<float>(grad_r, v, z, w, grad_v, grad_w, M, H, N, K, s);
  }
  if (dtype_code == 1) {
    return CauchyBackwardImpl<double>(grad_r, v, z, w, grad_v, grad_w, M, H, N, K, s);
  }
  return cudaErrorInvalidValue;
}

int LaunchVandermondeForward(int dtype_code, const void* W, const void* x, void* out, int64_t M,
                             int64_t H, int64_t N, int64_t length, void* stream) {
  if (M == 0 || H == 0 || length == 0) return cudaSuccess;
  auto s = static_cast<cudaStream_t>(stream);
  if (dtype_code == 0) return VandermondeForwardImpl<float>(W, x, out, M, H, N, length, s);
  if (dtype_code == 1) return VandermondeForwardImpl<double>(W, x, out, M, H, N, length, s);
  return cudaErrorInvalidValue;
}

int LaunchVandermondeBackward(int dtype_code, const void* grad_out, const void* W, const void* x,
                              void* grad_W, void* grad_x, int64_t M, int64_t H, int64_t N,
                              int64_t length, void* stream) {
  if (H == 0 || N == 0) return cudaSuccess;
  auto s = static_cast<cudaStream_t>(stream);
  if (dtype_code == 0) {
    return VandermondeBackwardImpl<float>(grad_out, W, x, grad_W, grad_x, M, H, N, length, s);
  }
  if (dtype_code == 1) {
    return VandermondeBackwardImpl<double>(grad_out, W, x, grad_W, grad_x, M, H, N, length, s);
  }
  return cudaErrorInvalidValue;
}

}  // namespace loom::kernels::internal
