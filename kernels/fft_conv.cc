#include "kernels/fft_conv.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <optional>

namespace loom::kernels {

at::Tensor FftLongConv(const at::Tensor& x, const at::Tensor& k, int64_t n) {
  TORCH_CHECK(x.dim() == 3 && k.dim() == 3, "FftLongConv: x must be (B, H, L) and k (C, H, Lk), "
              "got ", x.sizes(), " and ", k.sizes());
  TORCH_CHECK(x.size(1) == k.size(1), "FftLongConv: x has ", x.size(1), " features, k has ",
              k.size(1));
  TORCH_CHECK(x.is_floating_point() && x.scalar_type() == k.scalar_type(),
              "FftLongConv: x and k must share a floating dtype, got ", x.scalar_type(), " and ",
              k.scalar_type());
  const int64_t L = x.size(2);
  TORCH_CHECK(n >= L && n >= k.size(2), "FftLongConv: FFT length ", n,
              " is shorter than the input (", L, ") or the kernel (", k.size(2), ")");
  const at::Tensor xf = at::fft_rfft(x, n, -1);  // (B, H, F)
  const at::Tensor kf = at::fft_rfft(k, n, -1);  // (C, H, F)
  const at::Tensor yf = xf.unsqueeze(1) * kf.unsqueeze(0);
  return at::fft_irfft(yf, n, -1).narrow(-1, 0, L);
}

at::Tensor TwoSidedKernel(const at::Tensor& k0, const at::Tensor& k1, int64_t L) {
  TORCH_CHECK(k0.sizes() == k1.sizes(), "TwoSidedKernel: halves differ in shape: ", k0.sizes(),
              " vs ", k1.sizes());
  return at::constant_pad_nd(k0, {0, L}) + at::constant_pad_nd(k1.flip(-1), {L, 0});
}

}  // namespace loom::kernels
