#include "kernels/bias_gelu.h"

#include <ATen/Dispatch.h>
#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <type_traits>
#include <utility>

#include "kernels/internal/cpu_loops.h"
#include "kernels/internal/gelu_math.h"

#ifdef LOOM_CUDA
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include "kernels/internal/bias_gelu_cuda.h"
#endif

namespace loom::kernels {
namespace {

void CheckArgs(const at::Tensor& u, const at::Tensor& bias) {
  TORCH_CHECK(u.defined() && u.dim() >= 1, "BiasGelu: input must have at least one dimension");
  if (bias.defined()) {
    TORCH_CHECK(bias.dim() == 1 && bias.size(0) == u.size(-1), "BiasGelu: bias shape ",
                bias.sizes(), " does not match the last dimension of input ", u.sizes());
    TORCH_CHECK(bias.scalar_type() == u.scalar_type(), "BiasGelu: bias dtype ",
                bias.scalar_type(), " differs from input dtype ", u.scalar_type());
    TORCH_CHECK(bias.device() == u.device(), "BiasGelu: bias and input on different devices");
  }
}

// ---- float32: a vectorisable loop -------------------------------------------------------------
// libm's scalar tanh made the GELU of a d=1024 FFN (4096 x 4096 activations) cost as much as a
// third of its fwd+bwd matmuls. float32 uses a branch-free rational tanh (Eigen's
// generic_fast_tanh_float: clamp to +-7.9, odd degree-13 / even degree-6 polynomials; within a few
// float32 ulp of tanh) that GCC vectorises, cloned for AVX-512 / AVX2 / baseline with runtime
// dispatch. float64 (what the golden parity checks) keeps the exact libm expression.
inline float FastTanh(float x) {
  const float c = 7.90531110763549805f;
  x = x > c ? c : (x < -c ? -c : x);
  const float x2 = x * x;
  float p = -2.76076847742355e-16f;
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 - 8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  float q = 1.19825839466702e-06f;
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  return x * p / q;
}

#define LOOM_VECTOR_CLONES \
  __attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))

// Separate loops with and without a bias: a per-element null test kept GCC from vectorising the
// forward (measured 1.7x slower than with the test hoisted).
LOOM_VECTOR_CLONES void GeluForwardRowF32(const float* u, const float* b, float* y, int64_t n) {
  for (int64_t c = 0; c < n; ++c) {
    const float v = u[c] + b[c];
    const float t = FastTanh(0.79788456f * v * (1.0f + 0.044715f * v * v));
    y[c] = v * 0.5f * (1.0f + t);
  }
}

LOOM_VECTOR_CLONES void GeluForwardRowNoBiasF32(const float* u, float* y, int64_t n) {
  for (int64_t c = 0; c < n; ++c) {
    const float v = u[c];
    const float t = FastTanh(0.79788456f * v * (1.0f + 0.044715f * v * v));
    y[c] = v * 0.5f * (1.0f + t);
  }
}

LOOM_VECTOR_CLONES void GeluBackwardRowF32(const float* g, const float* u, const float* b,
                                           float* gu, int64_t n) {
  for (int64_t c = 0; c < n; ++c) {
    const float v = b != nullptr ? u[c] + b[c] : u[c];
    const float t = FastTanh(0.79788456f * v * (1.0f + 0.044715f * v * v));
    const float d = 0.5f * v * ((1.0f - t * t) * (0.79788456f + 0.1070322243f * v * v)) +
                    0.5f * (1.0f + t);
    gu[c] = g[c] * d;
  }
}

LOOM_VECTOR_CLONES void GeluBackwardRowAccumulateF32(const float* g, const float* u,
                                                     const float* b, float* gu, float* acc,
                                                     int64_t n) {
  for (int64_t c = 0; c < n; ++c) {
    const float v = u[c] + b[c];
    const float t = FastTanh(0.79788456f * v * (1.0f + 0.044715f * v * v));
    const float d = 0.5f * v * ((1.0f - t * t) * (0.79788456f + 0.1070322243f * v * v)) +
                    0.5f * (1.0f + t);
    gu[c] = g[c] * d;
    acc[c] += gu[c];
  }
}

// Where the pieces of one logical row of the GELU's input u (and of its gradient du) live. The
// output y and the incoming gradient dy are always (rows, cols) row-major; u is either the same
// (one run per row) or a batched GEMM's output (B, rows, s) whose batches interleave in runs of
// `run` columns: logical columns [j*run, (j+1)*run) of row t, j = r*B + c, come from
// u[c, t, r*run : (r+1)*run]. Each run is contiguous, so the vectorised row loops below serve both.
struct RowRuns {
  int64_t cols = 0;          // logical row width = runs_per_row * run
  int64_t run = 0;           // contiguous run length
  int64_t batches = 1;       // B
  int64_t batch_stride = 0;  // rows * s
  int64_t row_stride = 0;    // s (or cols)

  static RowRuns Contiguous(int64_t cols) { return {cols, cols, 1, 0, cols}; }
  static RowRuns Batched(int64_t batches, int64_t rows, int64_t s, int64_t run) {
    return {batches * s, run, batches, rows * s, s};
  }
  int64_t runs_per_row() const { return run == 0 ? 0 : cols / run; }
  // Offset in u of run j of row t.
  int64_t Offset(int64_t t, int64_t j) const {
    return (j % batches) * batch_stride + t * row_stride + (j / batches) * run;
  }
};

// Rows are independent; parallelise over them in grains of ~32K elements.
template <typename T>
void CpuForward(const T* u, const T* b, T* y, int64_t rows, const RowRuns& layout) {
  const int64_t cols = layout.cols, run = layout.run, runs = layout.runs_per_row();
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(cols, 1));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      for (int64_t j = 0; j < runs; ++j) {
        const T* ur = u + layout.Offset(r, j);
        const T* br = b != nullptr ? b + j * run : nullptr;
        T* yr = y + r * cols + j * run;
        if constexpr (std::is_same_v<T, float>) {
          if (br != nullptr) {
            GeluForwardRowF32(ur, br, yr, run);
          } else {
            GeluForwardRowNoBiasF32(ur, yr, run);
          }
          continue;
        }
        if (br != nullptr) {
          for (int64_t c = 0; c < run; ++c) yr[c] = internal::GeluForward<T>(ur[c] + br[c]);
        } else {
          for (int64_t c = 0; c < run; ++c) yr[c] = internal::GeluForward<T>(ur[c]);
        }
      }
    }
  });
}

// du is written in u's layout.
template <typename T>
void CpuBackward(const T* g, const T* u, const T* b, T* gu, int64_t rows, const RowRuns& layout) {
  const int64_t cols = layout.cols, run = layout.run, runs = layout.runs_per_row();
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(cols, 1));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      for (int64_t j = 0; j < runs; ++j) {
        const int64_t off = layout.Offset(r, j);
        const T* ur = u + off;
        const T* gr = g + r * cols + j * run;
        const T* br = b != nullptr ? b + j * run : nullptr;
        T* out = gu + off;
        if constexpr (std::is_same_v<T, float>) {
          GeluBackwardRowF32(gr, ur, br, out, run);
          continue;
        }
        for (int64_t c = 0; c < run; ++c) {
          const T v = br != nullptr ? ur[c] + br[c] : ur[c];
          out[c] = gr[c] * internal::GeluDerivative<T>(v);
        }
      }
    }
  });
}

// Backward plus the bias gradient (column sums of du) in the same pass over the rows: the separate
// sum re-read the whole (rows, cols) gradient. Deterministic (internal::ForEachRowWithColumnSums).
template <typename T>
void CpuBackwardWithBiasGrad(const T* g, const T* u, const T* b, T* gu, T* gb, int64_t rows,
                             const RowRuns& layout) {
  const int64_t cols = layout.cols, run = layout.run, runs = layout.runs_per_row();
  internal::ForEachRowWithColumnSums<T>(rows, cols, gb, [&](int64_t r, T* acc_row) {
    for (int64_t j = 0; j < runs; ++j) {
      const int64_t off = layout.Offset(r, j);
      const T* ur = u + off;
      const T* gr = g + r * cols + j * run;
      const T* br = b + j * run;
      T* out = gu + off;
      T* acc = acc_row + j * run;
      if constexpr (std::is_same_v<T, float>) {
        GeluBackwardRowAccumulateF32(gr, ur, br, out, acc, run);
      } else {
        for (int64_t c = 0; c < run; ++c) {
          out[c] = gr[c] * internal::GeluDerivative<T>(ur[c] + br[c]);
          acc[c] += out[c];
        }
      }
    }
  });
}

#ifdef LOOM_CUDA
int CudaDtypeCode(at::ScalarType t) {
  if (t == at::kFloat) return 0;
  if (t == at::kBFloat16) return 1;
  TORCH_CHECK(false, "BiasGelu on CUDA supports float32 and bfloat16, got ", t);
  return -1;
}

void CheckCuda(int err, const char* what) {
  TORCH_CHECK(err == 0, "CUDA error in ", what, ": ",
              cudaGetErrorString(static_cast<cudaError_t>(err)), " (", __FILE__, ")");
}
#endif

at::Tensor ForwardImpl(const at::Tensor& u_in, const at::Tensor& bias_in) {
  CheckArgs(u_in, bias_in);
  at::Tensor u = u_in.contiguous();
  at::Tensor bias = bias_in.defined() ? bias_in.contiguous() : bias_in;
  const int64_t cols = u.size(-1);
  const int64_t rows = cols == 0 ? 0 : u.numel() / cols;
  if (u.is_cuda()) {
#ifdef LOOM_CUDA
    at::Tensor y = at::empty_like(u);
    CheckCuda(internal::LaunchBiasGeluForward(
                  CudaDtypeCode(u.scalar_type()), u.data_ptr(),
                  bias.defined() ? bias.data_ptr() : nullptr, y.data_ptr(), rows, cols,
                  c10::cuda::getCurrentCUDAStream().stream()),
              "BiasGeluForward");
    return y;
#else
    TORCH_CHECK(false, "BiasGelu: got a CUDA tensor but this binary was built without "
                       "--config=cuda");
#endif
  }
  if (u.scalar_type() == at::kBFloat16) {
    return ForwardImpl(u.to(at::kFloat), bias.defined() ? bias.to(at::kFloat) : bias)
        .to(at::kBFloat16);
  }
  at::Tensor y = at::empty_like(u);
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "BiasGeluForward", [&] {
    CpuForward<scalar_t>(u.const_data_ptr<scalar_t>(),
                         bias.defined() ? bias.const_data_ptr<scalar_t>() : nullptr,
                         y.mutable_data_ptr<scalar_t>(), rows, RowRuns::Contiguous(cols));
  });
  return y;
}

at::Tensor BackwardImpl(const at::Tensor& grad_in, const at::Tensor& u_in,
                        const at::Tensor& bias_in) {
  CheckArgs(u_in, bias_in);
  TORCH_CHECK(grad_in.sizes() == u_in.sizes(), "BiasGelu: gradient shape ", grad_in.sizes(),
              " differs from input shape ", u_in.sizes());
  at::Tensor u = u_in.contiguous();
  at::Tensor g = grad_in.to(u.scalar_type()).contiguous();
  at::Tensor bias = bias_in.defined() ? bias_in.contiguous() : bias_in;
  const int64_t cols = u.size(-1);
  const int64_t rows = cols == 0 ? 0 : u.numel() / cols;
  if (u.is_cuda()) {
#ifdef LOOM_CUDA
    at::Tensor gu = at::empty_like(u);
    CheckCuda(internal::LaunchBiasGeluBackward(
                  CudaDtypeCode(u.scalar_type()), g.data_ptr(), u.data_ptr(),
                  bias.defined() ? bias.data_ptr() : nullptr, gu.data_ptr(), rows, cols,
                  c10::cuda::getCurrentCUDAStream().stream()),
              "BiasGeluBackward");
    return gu;
#else
    TORCH_CHECK(false, "BiasGelu: got a CUDA tensor but this binary was built without "
                       "--config=cuda");
#endif
  }
  if (u.scalar_type() == at::kBFloat16) {
    return BackwardImpl(g.to(at::kFloat), u.to(at::kFloat),
                        bias.defined() ? bias.to(at::kFloat) : bias)
        .to(at::kBFloat16);
  }
  at::Tensor gu = at::empty_like(u);
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "BiasGeluBackward", [&] {
    CpuBackward<scalar_t>(g.const_data_ptr<scalar_t>(), u.const_data_ptr<scalar_t>(),
                          bias.defined() ? bias.const_data_ptr<scalar_t>() : nullptr,
                          gu.mutable_data_ptr<scalar_t>(), rows, RowRuns::Contiguous(cols));
  });
  return gu;
}

std::pair<at::Tensor, at::Tensor> BackwardWithBiasGradImpl(const at::Tensor& grad_in,
                                                            const at::Tensor& u_in,
                                                            const at::Tensor& bias_in) {
  CheckArgs(u_in, bias_in);
  TORCH_CHECK(bias_in.defined(), "BiasGeluBackwardWithBiasGrad: needs a bias");
  const bool cpu_loop = u_in.device().is_cpu() &&
                        (u_in.scalar_type() == at::kFloat || u_in.scalar_type() == at::kDouble);
  if (!cpu_loop) {
    at::Tensor gu = BackwardImpl(grad_in, u_in, bias_in);
    return {gu, gu.reshape({-1, gu.size(-1)}).sum(0)};
  }
  TORCH_CHECK(grad_in.sizes() == u_in.sizes(), "BiasGelu: gradient shape ", grad_in.sizes(),
              " differs from input shape ", u_in.sizes());
  at::Tensor u = u_in.contiguous();
  at::Tensor g = grad_in.to(u.scalar_type()).contiguous();
  at::Tensor bias = bias_in.contiguous();
  const int64_t cols = u.size(-1);
  const int64_t rows = cols == 0 ? 0 : u.numel() / cols;
  at::Tensor gu = at::empty_like(u);
  at::Tensor gb = at::empty_like(bias);
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "BiasGeluBackwardWithBiasGrad", [&] {
    CpuBackwardWithBiasGrad<scalar_t>(g.const_data_ptr<scalar_t>(), u.const_data_ptr<scalar_t>(),
                                      bias.const_data_ptr<scalar_t>(),
                                      gu.mutable_data_ptr<scalar_t>(),
                                      gb.mutable_data_ptr<scalar_t>(), rows,
                                      RowRuns::Contiguous(cols));
  });
  return {gu, gb};
}

class BiasGeluFunction : public torch::autograd::Function<BiasGeluFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& u,
                            const at::Tensor& bias) {
    ctx->save_for_backward({u, bias});
    return ForwardImpl(u, bias);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor& u = saved[0];
    const at::Tensor& bias = saved[1];
    if (!bias.defined()) return {BackwardImpl(grads[0], u, bias), at::Tensor()};
    auto [gu, gb] = BackwardWithBiasGradImpl(grads[0], u, bias);
    return {gu, gb};
  }
};

// Without a bias: a custom function cannot take an undefined tensor argument (the autograd node
// records every tensor input's device), so BiasGelu(u, {}) on a tensor requiring grad needs its own.
class GeluFunction : public torch::autograd::Function<GeluFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& u) {
    ctx->save_for_backward({u});
    return ForwardImpl(u, at::Tensor());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    return {BackwardImpl(grads[0], ctx->get_saved_variables()[0], at::Tensor())};
  }
};

// ---- batched input: z (B, n, s) read in interleaved runs --------------------------------------

void CheckBatchedArgs(const at::Tensor& z, const at::Tensor& bias, int64_t run) {
  TORCH_CHECK(z.defined() && z.dim() == 3, "BiasGeluInterleaveBatches: z must be (B, n, s), got ",
              z.defined() ? z.sizes() : at::IntArrayRef{});
  TORCH_CHECK(run >= 1 && z.size(2) % run == 0, "BiasGeluInterleaveBatches: run ", run,
              " does not divide the batch width ", z.size(2));
  if (bias.defined()) {
    TORCH_CHECK(bias.dim() == 1 && bias.size(0) == z.size(0) * z.size(2),
                "BiasGeluInterleaveBatches: bias shape ", bias.sizes(), " does not match B * s = ",
                z.size(0) * z.size(2));
    TORCH_CHECK(bias.scalar_type() == z.scalar_type() && bias.device() == z.device(),
                "BiasGeluInterleaveBatches: bias dtype/device differs from z");
  }
}

// The same values as BiasGelu on the interleaved matrix, as a view chain ATen can differentiate
// (CUDA and bfloat16 take this path; the CPU float loop reads the runs in place instead).
at::Tensor InterleavedView(const at::Tensor& z, int64_t run) {
  const int64_t b = z.size(0), n = z.size(1), s = z.size(2);
  return z.reshape({b, n, s / run, run}).permute({1, 2, 0, 3}).reshape({n, b * s});
}

at::Tensor BatchedForwardImpl(const at::Tensor& z_in, const at::Tensor& bias_in, int64_t run) {
  at::Tensor z = z_in.contiguous();
  at::Tensor bias = bias_in.defined() ? bias_in.contiguous() : bias_in;
  const int64_t b = z.size(0), n = z.size(1), s = z.size(2);
  at::Tensor y = at::empty({n, b * s}, z.options());
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "BiasGeluInterleaveBatches", [&] {
    CpuForward<scalar_t>(z.const_data_ptr<scalar_t>(),
                         bias.defined() ? bias.const_data_ptr<scalar_t>() : nullptr,
                         y.mutable_data_ptr<scalar_t>(), n, RowRuns::Batched(b, n, s, run));
  });
  return y;
}

// Returns dz in z's (B, n, s) layout and, with a bias, its gradient.
std::pair<at::Tensor, at::Tensor> BatchedBackwardImpl(const at::Tensor& grad_in,
                                                      const at::Tensor& z_in,
                                                      const at::Tensor& bias_in, int64_t run) {
  at::Tensor z = z_in.contiguous();
  const int64_t b = z.size(0), n = z.size(1), s = z.size(2);
  TORCH_CHECK(grad_in.dim() == 2 && grad_in.size(0) == n && grad_in.size(1) == b * s,
              "BiasGeluInterleaveBatches: gradient shape ", grad_in.sizes(), " is not (", n, ", ",
              b * s, ")");
  at::Tensor g = grad_in.to(z.scalar_type()).contiguous();
  at::Tensor bias = bias_in.defined() ? bias_in.contiguous() : bias_in;
  at::Tensor gz = at::empty_like(z);
  at::Tensor gb = bias.defined() ? at::empty_like(bias) : at::Tensor();
  const RowRuns layout = RowRuns::Batched(b, n, s, run);
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "BiasGeluInterleaveBatchesBackward", [&] {
    if (bias.defined()) {
      CpuBackwardWithBiasGrad<scalar_t>(g.const_data_ptr<scalar_t>(), z.const_data_ptr<scalar_t>(),
                                        bias.const_data_ptr<scalar_t>(),
                                        gz.mutable_data_ptr<scalar_t>(),
                                        gb.mutable_data_ptr<scalar_t>(), n, layout);
    } else {
      CpuBackward<scalar_t>(g.const_data_ptr<scalar_t>(), z.const_data_ptr<scalar_t>(), nullptr,
                            gz.mutable_data_ptr<scalar_t>(), n, layout);
    }
  });
  return {gz, gb};
}

class InterleaveBiasGeluFunction
    : public torch::autograd::Function<InterleaveBiasGeluFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& z,
                            const at::Tensor& bias, int64_t run) {
    ctx->save_for_backward({z, bias});
    ctx->saved_data["run"] = run;
    return BatchedForwardImpl(z, bias, run);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto [gz, gb] = BatchedBackwardImpl(grads[0], saved[0], saved[1],
                                        ctx->saved_data["run"].toInt());
    return {gz, gb, at::Tensor()};
  }
};

// Without a bias (see GeluFunction).
class InterleaveGeluFunction : public torch::autograd::Function<InterleaveGeluFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& z,
                            int64_t run) {
    ctx->save_for_backward({z});
    ctx->saved_data["run"] = run;
    return BatchedForwardImpl(z, at::Tensor(), run);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto [gz, gb] = BatchedBackwardImpl(grads[0], saved[0], at::Tensor(),
                                        ctx->saved_data["run"].toInt());
    return {gz, at::Tensor()};
  }
};

}  // namespace

at::Tensor BiasGelu(const at::Tensor& u, const at::Tensor& bias) {
  if (!bias.defined()) return GeluFunction::apply(u);
  return BiasGeluFunction::apply(u, bias);
}

at::Tensor BiasGeluForward(const at::Tensor& u, const at::Tensor& bias) {
  return ForwardImpl(u, bias);
}

at::Tensor BiasGeluBackward(const at::Tensor& grad_y, const at::Tensor& u,
                            const at::Tensor& bias) {
  return BackwardImpl(grad_y, u, bias);
}

std::pair<at::Tensor, at::Tensor> BiasGeluBackwardWithBiasGrad(const at::Tensor& grad_y,
                                                                const at::Tensor& u,
                                                                const at::Tensor& bias) {
  return BackwardWithBiasGradImpl(grad_y, u, bias);
}

at::Tensor BiasGeluInterleaveBatches(const at::Tensor& z, const at::Tensor& bias, int64_t run) {
  CheckBatchedArgs(z, bias, run);
  if (!internal::CpuFloatingLoop(z)) return BiasGelu(InterleavedView(z, run), bias);
  if (!bias.defined()) return InterleaveGeluFunction::apply(z, run);
  return InterleaveBiasGeluFunction::apply(z, bias, run);
}

at::Tensor BiasGeluInterleaveBatchesForward(const at::Tensor& z, const at::Tensor& bias,
                                            int64_t run) {
  CheckBatchedArgs(z, bias, run);
  if (!internal::CpuFloatingLoop(z)) return ForwardImpl(InterleavedView(z, run), bias);
  return BatchedForwardImpl(z, bias, run);
}

std::pair<at::Tensor, at::Tensor> BiasGeluInterleaveBatchesBackward(const at::Tensor& grad_y,
                                                                    const at::Tensor& z,
                                                                    const at::Tensor& bias,
                                                                    int64_t run) {
  CheckBatchedArgs(z, bias, run);
  TORCH_CHECK(internal::CpuFloatingLoop(z), "BiasGeluInterleaveBatchesBackward: CPU float32/float64 only "
              "(other devices and dtypes differentiate BiasGeluInterleaveBatches through autograd)");
  return BatchedBackwardImpl(grad_y, z, bias, run);
}

bool BiasGeluHasCuda() {
#ifdef LOOM_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace loom::kernels
