// CUDA bias+GELU: one thread per element, float32 math for bfloat16 storage. Memory-bound, so a
// grid-stride loop over the flat (rows, cols) array is all it needs.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/internal/bias_gelu_cuda.h"
#include "kernels/internal/gelu_math.h"

namespace loom::kernels::internal {
namespace {

template <typename T>
__device__ __forceinline__ float ToFloat(T v) { return static_cast<float>(v); }
template <>
__device__ __forceinline__ float ToFloat<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T FromFloat(float v) { return static_cast<T>(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float v) { return __float2bfloat16(v); }

template <typename T>
__global__ void BiasGeluForwardKernel(const T* __restrict__ u, const T* __restrict__ bias,
                                      T* __restrict__ y, int64_t n, int64_t cols) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = ToFloat(u[i]);
    if (bias != nullptr) v += ToFloat(bias[i % cols]);
    y[i] = FromFloat<T>(GeluForward<float>(v));
  }
}

template <typename T>
__global__ void BiasGeluBackwardKernel(const T* __restrict__ grad_y, const T* __restrict__ u,
                                       const T* __restrict__ bias, T* __restrict__ grad_u,
                                       int64_t n, int64_t cols) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = ToFloat(u[i]);
    if (bias != nullptr) v += ToFloat(bias[i % cols]);
    grad_u[i] = FromFloat<T>(ToFloat(grad_y[i]) * GeluDerivative<float>(v));
  }
}

int GridFor(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  return static_cast<int>(blocks > 65535 * 8 ? 65535 * 8 : (blocks < 1 ? 1 : blocks));
}

}  // namespace

int LaunchBiasGeluForward(int dtype_code, const void* u, const void* bias, void* y, int64_t rows,
                          int64_t cols, void* stream) {
  const int64_t n = rows * cols;
  if (n == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  auto s = static_cast<cudaStream_t>(stream);
  if (dtype_code == 0) {
    BiasGeluForwardKernel<float><<<GridFor(n, kThreads), kThreads, 0, s>>>(
        static_cast<const float*>(u), static_cast<const float*>(bias), static_cast<float*>(y), n, cols);
  } else {
    BiasGeluForwardKernel<__nv_bfloat16><<<GridFor(n, kThreads), kThreads, 0, s>>>(
        static_cast<const __nv_bfloat16*>(u), static_cast<const __nv_bfloat16*>(bias),
        static_cast<__nv_bfloat16*>(y), n, cols);
  }
  return static_cast<int>(cudaGetLastError());
}

int LaunchBiasGeluBackward(int dtype_code, const void* grad_y, const void* u, const void* bias,
                           void* grad_u, int64_t rows, int64_t cols, void* stream) {
  const int64_t n = rows * cols;
  if (n == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  auto s = static_cast<cudaStream_t>(stream);
  if (dtype_code == 0) {
    BiasGeluBackwardKernel<float><<<GridFor(n, kThreads), kThreads, 0, s>>>(
        static_cast<const float*>(grad_y), static_cast<const float*>(u),
        static_cast<const float*>(bias), static_cast<float*>(grad_u), n, cols);
  } else {
    BiasGeluBackwardKernel<__nv_bfloat16><<<GridFor(n, kThreads), kThreads, 0, s>>>(
        static_cast<const __nv_bfloat16*>(grad_y), static_cast<const __nv_bfloat16*>(u),
        static_cast<const __nv_bfloat16*>(bias), static_cast<__nv_bfloat16*>(grad_u), n, cols);
  }
  return static_cast<int>(cudaGetLastError());
}

}  // namespace loom::kernels::internal
