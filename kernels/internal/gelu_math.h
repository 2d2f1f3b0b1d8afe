// The truncated-constant tanh-GELU and its derivative, shared by the CPU loop and the CUDA kernel
// so both paths evaluate the same expression.
#ifndef LOOM_KERNELS_INTERNAL_GELU_MATH_H_
#define LOOM_KERNELS_INTERNAL_GELU_MATH_H_

#include <cmath>

#if defined(__CUDACC__)
#define LOOM_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define LOOM_HOST_DEVICE inline
#endif

namespace loom::kernels::internal {

// Megatron's literals; see bias_gelu.h for why they are not sqrt(2/pi).
template <typename T>
LOOM_HOST_DEVICE T GeluForward(T u) {
  const T t = tanh(T(0.79788456) * u * (T(1) + T(0.044715) * u * u));
  return u * T(0.5) * (T(1) + t);
}

template <typename T>
LOOM_HOST_DEVICE T GeluDerivative(T u) {
  const T t = tanh(T(0.79788456) * u * (T(1) + T(0.044715) * u * u));
  return T(0.5) * u * ((T(1) - t * t) * (T(0.79788456) + T(0.1070322243) * u * u)) +
         T(0.5) * (T(1) + t);
}

}  // namespace loom::kernels::internal

#endif  // LOOM_KERNELS_INTERNAL_GELU_MATH_H_
