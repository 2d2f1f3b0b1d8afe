#include "kernels/stride_shuffle.h"

#include <ATen/Dispatch.h>
#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>

#include "kernels/internal/cpu_loops.h"

namespace loom::kernels {
namespace {

#define LOOM_VECTOR_CLONES \
  __attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))

// One row: out[c * stride + r] = in[r * B + c]. With B a constant GCC turns the B loads of each r
// into whole-vector loads and shuffles.
template <typename T, int B>
LOOM_VECTOR_CLONES void DeinterleaveRowFixed(const T* __restrict in, T* __restrict out, int64_t q,
                                             int64_t stride) {
  for (int64_t r = 0; r < q; ++r) {
    for (int c = 0; c < B; ++c) out[c * stride + r] = in[r * B + c];
  }
}

template <typename T, int B>
LOOM_VECTOR_CLONES void InterleaveRowFixed(const T* __restrict in, int64_t stride,
                                           T* __restrict out, int64_t q) {
  for (int64_t r = 0; r < q; ++r) {
    for (int c = 0; c < B; ++c) out[r * B + c] = in[c * stride + r];
  }
}

template <typename T>
LOOM_VECTOR_CLONES void AddRow(T* __restrict acc, const T* __restrict x, int64_t m) {
  for (int64_t j = 0; j < m; ++j) acc[j] += x[j];
}

template <typename T>
void DeinterleaveRow(const T* in, T* out, int64_t q, int64_t b, int64_t stride) {
  switch (b) {
    case 2: return DeinterleaveRowFixed<T, 2>(in, out, q, stride);
    case 4: return DeinterleaveRowFixed<T, 4>(in, out, q, stride);
    case 8: return DeinterleaveRowFixed<T, 8>(in, out, q, stride);
    default:
      for (int64_t r = 0; r < q; ++r) {
        for (int64_t c = 0; c < b; ++c) out[c * stride + r] = in[r * b + c];
      }
  }
}

template <typename T>
void InterleaveRow(const T* in, int64_t stride, T* out, int64_t q, int64_t b) {
  switch (b) {
    case 2: return InterleaveRowFixed<T, 2>(in, stride, out, q);
    case 4: return InterleaveRowFixed<T, 4>(in, stride, out, q);
    case 8: return InterleaveRowFixed<T, 8>(in, stride, out, q);
    default:
      for (int64_t r = 0; r < q; ++r) {
        for (int64_t c = 0; c < b; ++c) out[r * b + c] = in[c * stride + r];
      }
  }
}

// Rows per parallel grain: ~32K elements, as the GELU loops.
int64_t Grain(int64_t m) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(m, 1)); }

void CheckDeinterleave(const at::Tensor& y, int64_t nblocks) {
  TORCH_CHECK(y.defined() && y.dim() == 2, "DeinterleaveColumns: y must be (n, m), got ",
              y.defined() ? y.sizes() : at::IntArrayRef{});
  TORCH_CHECK(nblocks >= 1 && y.size(1) % nblocks == 0, "DeinterleaveColumns: ", nblocks,
              " blocks do not divide the width ", y.size(1));
}

}  // namespace

at::Tensor DeinterleaveColumns(const at::Tensor& y_in, int64_t nblocks) {
  CheckDeinterleave(y_in, nblocks);
  const int64_t n = y_in.size(0), m = y_in.size(1), q = m / nblocks;
  if (!internal::CpuFloatingLoop(y_in)) return y_in.view({n, q, nblocks}).permute({2, 0, 1}).contiguous();
  at::Tensor y = y_in.contiguous();
  at::Tensor z = at::empty({nblocks, n, q}, y.options());
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "DeinterleaveColumns", [&] {
    const scalar_t* in = y.const_data_ptr<scalar_t>();
    scalar_t* out = z.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, n, Grain(m), [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) DeinterleaveRow(in + t * m, out + t * q, q, nblocks, n * q);
    });
  });
  return z;
}

std::pair<at::Tensor, at::Tensor> DeinterleaveColumnsAndSum(const at::Tensor& y_in,
                                                            int64_t nblocks) {
  CheckDeinterleave(y_in, nblocks);
  const int64_t n = y_in.size(0), m = y_in.size(1), q = m / nblocks;
  if (!internal::CpuFloatingLoop(y_in)) return {DeinterleaveColumns(y_in, nblocks), y_in.sum(0)};
  at::Tensor y = y_in.contiguous();
  at::Tensor z = at::empty({nblocks, n, q}, y.options());
  at::Tensor sums = at::empty({m}, y.options());
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "DeinterleaveColumnsAndSum", [&] {
    const scalar_t* in = y.const_data_ptr<scalar_t>();
    scalar_t* out = z.mutable_data_ptr<scalar_t>();
    internal::ForEachRowWithColumnSums<scalar_t>(
        n, m, sums.mutable_data_ptr<scalar_t>(), [&](int64_t t, scalar_t* acc) {
          DeinterleaveRow(in + t * m, out + t * q, q, nblocks, n * q);
          AddRow(acc, in + t * m, m);  // the row is in L1 now
        });
  });
  return {z, sums};
}

at::Tensor InterleaveColumns(const at::Tensor& z_in, const at::Tensor& bias) {
  TORCH_CHECK(z_in.defined() && z_in.dim() == 3, "InterleaveColumns: z must be (B, n, q), got ",
              z_in.defined() ? z_in.sizes() : at::IntArrayRef{});
  const int64_t b = z_in.size(0), n = z_in.size(1), q = z_in.size(2), m = b * q;
  if (bias.defined()) {
    TORCH_CHECK(bias.dim() == 1 && bias.size(0) == m, "InterleaveColumns: bias shape ",
                bias.sizes(), " is not (", m, ")");
    TORCH_CHECK(bias.scalar_type() == z_in.scalar_type() && bias.device() == z_in.device(),
                "InterleaveColumns: bias dtype/device differs from z");
  }
  if (!internal::CpuFloatingLoop(z_in)) {
    at::Tensor y = z_in.permute({1, 2, 0}).reshape({n, m});
    return bias.defined() ? at::add(y, bias) : y;
  }
  at::Tensor z = z_in.contiguous();
  at::Tensor bc = bias.defined() ? bias.contiguous() : bias;
  at::Tensor y = at::empty({n, m}, z.options());
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "InterleaveColumns", [&] {
    const scalar_t* in = z.const_data_ptr<scalar_t>();
    const scalar_t* bp = bc.defined() ? bc.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* out = y.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, n, Grain(m), [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        InterleaveRow(in + t * q, n * q, out + t * m, q, b);
        if (bp != nullptr) AddRow(out + t * m, bp, m);  // the row is in L1 now
      }
    });
  });
  return y;
}

}  // namespace loom::kernels
