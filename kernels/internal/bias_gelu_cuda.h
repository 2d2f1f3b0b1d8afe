// Launchers for the CUDA bias+GELU kernels (internal/bias_gelu_cuda.cu). Plain pointers and a
// cudaStream_t passed as void* keep this header free of CUDA and LibTorch includes.
#ifndef LOOM_KERNELS_INTERNAL_BIAS_GELU_CUDA_H_
#define LOOM_KERNELS_INTERNAL_BIAS_GELU_CUDA_H_

#include <cstdint>

namespace loom::kernels::internal {

// dtype_code: 0 = float32, 1 = bfloat16. bias may be null. Returns a cudaError_t as int.
int LaunchBiasGeluForward(int dtype_code, const void* u, const void* bias, void* y, int64_t rows,
                          int64_t cols, void* stream);
int LaunchBiasGeluBackward(int dtype_code, const void* grad_y, const void* u, const void* bias,
                           void* grad_u, int64_t rows, int64_t cols, void* stream);

}  // namespace loom::kernels::internal

#endif  // LOOM_KERNELS_INTERNAL_BIAS_GELU_CUDA_H_
