#include "kernels/ssm_kernels.h"

#include <ATen/Dispatch.h>
#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <vector>

#ifdef LOOM_CUDA
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include "kernels/internal/ssm_kernels_cuda.h"
#endif

namespace loom::kernels {
namespace {

// Complex arithmetic on (re, im) pairs: std::complex's division checks for inf/nan on every call
// and would not vectorise.
template <typename T>
struct Cx {
  T re, im;
};
template <typename T>
inline Cx<T> Mul(Cx<T> a, Cx<T> b) {
  return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}
template <typename T>
inline Cx<T> Conj(Cx<T> a) {
  return {a.re, -a.im};
}
template <typename T>
inline Cx<T> Recip(T re, T im) {
  const T s = T(1) / (re * re + im * im);
  return {re * s, -im * s};
}
template <typename T>
inline Cx<T> Exp(Cx<T> a) {
  const T m = std::exp(a.re);
  return {m * std::cos(a.im), m * std::sin(a.im)};
}

void CheckComplex(const at::Tensor& t, const char* fn, const char* name, int64_t dim) {
  TORCH_CHECK(t.defined(), fn, ": ", name, " is undefined");
  TORCH_CHECK(t.is_complex(), fn, ": ", name, " must be complex, got ", t.scalar_type());
  TORCH_CHECK(t.dim() == dim, fn, ": ", name, " must have ", dim, " dimensions, got shape ",
              t.sizes());
}

void CheckCauchyArgs(const at::Tensor& v, const at::Tensor& z, const at::Tensor& w) {
  CheckComplex(v, "CauchyConjugateSum", "v", 3);
  CheckComplex(z, "CauchyConjugateSum", "z", 1);
  CheckComplex(w, "CauchyConjugateSum", "w", 2);
  TORCH_CHECK(w.size(0) == v.size(1) && w.size(1) == v.size(2), "CauchyConjugateSum: w shape ",
              w.sizes(), " does not match v shape ", v.sizes(), " (expected (H, N))");
  TORCH_CHECK(v.scalar_type() == w.scalar_type() && v.scalar_type() == z.scalar_type(),
              "CauchyConjugateSum: v, z and w must share one dtype");
  TORCH_CHECK(v.device() == w.device() && v.device() == z.device(),
              "CauchyConjugateSum: v, z and w must be on one device");
}

void CheckVandermondeArgs(const at::Tensor& W, const at::Tensor& x, int64_t length) {
  CheckComplex(W, "VandermondeRealSum", "W", 3);
  CheckComplex(x, "VandermondeRealSum", "x", 2);
  TORCH_CHECK(x.size(0) == W.size(1) && x.size(1) == W.size(2), "VandermondeRealSum: x shape ",
              x.sizes(), " does not match W shape ", W.sizes(), " (expected (H, N))");
  TORCH_CHECK(W.scalar_type() == x.scalar_type(), "VandermondeRealSum: W and x dtypes differ");
  TORCH_CHECK(W.device() == x.device(), "VandermondeRealSum: W and x on different devices");
  TORCH_CHECK(length >= 0, "VandermondeRealSum: length must be >= 0, got ", length);
}

template <typename T>
const Cx<T>* CxData(const at::Tensor& t) {
  return reinterpret_cast<const Cx<T>*>(t.data_ptr());
}
template <typename T>
Cx<T>* CxData(at::Tensor& t) {
  return reinterpret_cast<Cx<T>*>(t.data_ptr());
}

// ---- CPU: Cauchy ----------------------------------------------------------------------------
// Forward, parallel over (h, node tile): the two reciprocals of a (node, state) pair are shared
// by all M rows, so they are computed once and the rows accumulate them.
constexpr int64_t kNodeTile = 64;

template <typename T>
void CauchyForwardCpu(const at::Tensor& v, const at::Tensor& z, const at::Tensor& w,
                      at::Tensor& r) {
  const int64_t M = v.size(0), H = v.size(1), N = v.size(2), K = z.size(0);
  const Cx<T>* vp = CxData<T>(v);
  const Cx<T>* zp = CxData<T>(z);
  const Cx<T>* wp = CxData<T>(w);
  Cx<T>* rp = CxData<T>(r);
  const int64_t tiles = (K + kNodeTile - 1) / kNodeTile;
  at::parallel_for(0, H * tiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<Cx<T>> acc(M * kNodeTile);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t h = task / tiles, k0 = (task % tiles) * kNodeTile;
      const int64_t nk = std::min(kNodeTile, K - k0);
      std::fill(acc.begin(), acc.end(), Cx<T>{0, 0});
      for (int64_t n = 0; n < N; ++n) {
        const Cx<T> wn = wp[h * N + n];
        for (int64_t j = 0; j < nk; ++j) {
          const Cx<T> zk = zp[k0 + j];
          const Cx<T> a = Recip<T>(zk.re - wn.re, zk.im - wn.im);
          const Cx<T> b = Recip<T>(zk.re - wn.re, zk.im + wn.im);
          for (int64_t m = 0; m < M; ++m) {
            const Cx<T> vm = vp[(m * H + h) * N + n];
            const Cx<T> t = Mul(vm, a), u = Mul(Conj(vm), b);
            acc[m * kNodeTile + j].re += t.re + u.re;
            acc[m * kNodeTile + j].im += t.im + u.im;
          }
        }
      }
      for (int64_t m = 0; m < M; ++m) {
        std::copy(acc.begin() + m * kNodeTile, acc.begin() + m * kNodeTile + nk,
                  rp + (m * H + h) * K + k0);
      }
    }
  });
}

// Backward, parallel over (h, n): both gradients are sums over the nodes of one state entry, so
// every task owns its outputs and the summation order is fixed (deterministic).
//   grad_v = sum_k g conj(a) + conj(g) b;   grad_w = sum_m conj(v) sum_k g conj(a)^2 + conj(g) b^2
template <typename T>
void CauchyBackwardCpu(const at::Tensor& g, const at::Tensor& v, const at::Tensor& z,
                       const at::Tensor& w, at::Tensor& gv, at::Tensor& gw) {
  const int64_t M = v.size(0), H = v.size(1), N = v.size(2), K = z.size(0);
  const Cx<T>* gp = CxData<T>(g);
  const Cx<T>* vp = CxData<T>(v);
  const Cx<T>* zp = CxData<T>(z);
  const Cx<T>* wp = CxData<T>(w);
  Cx<T>* gvp = CxData<T>(gv);
  Cx<T>* gwp = CxData<T>(gw);
  at::parallel_for(0, H * N, 1, [&](int64_t begin, int64_t end) {
    std::vector<Cx<T>> s1(M), s2(M);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t h = task / N, n = task % N;
      const Cx<T> wn = wp[h * N + n];
      std::fill(s1.begin(), s1.end(), Cx<T>{0, 0});
      std::fill(s2.begin(), s2.end(), Cx<T>{0, 0});
      for (int64_t k = 0; k < K; ++k) {
        const Cx<T> zk = zp[k];
        const Cx<T> ca = Conj(Recip<T>(zk.re - wn.re, zk.im - wn.im));
        const Cx<T> b = Recip<T>(zk.re - wn.re, zk.im + wn.im);
        const Cx<T> ca2 = Mul(ca, ca), b2 = Mul(b, b);
        for (int64_t m = 0; m < M; ++m) {
          const Cx<T> gk = gp[(m * H + h) * K + k];
          const Cx<T> t1 = Mul(gk, ca), u1 = Mul(Conj(gk), b);
          const Cx<T> t2 = Mul(gk, ca2), u2 = Mul(Conj(gk), b2);
          s1[m].re += t1.re + u1.re;
          s1[m].im += t1.im + u1.im;
          s2[m].re += t2.re + u2.re;
          s2[m].im += t2.im + u2.im;
        }
      }
      Cx<T> gwn{0, 0};
      for (int64_t m = 0; m < M; ++m) {
        gvp[(m * H + h) * N + n] = s1[m];
        const Cx<T> t = Mul(Conj(vp[(m * H + h) * N + n]), s2[m]);
        gwn.re += t.re;
        gwn.im += t.im;
      }
      gwp[h * N + n] = gwn;
    }
  });
}

// ---- CPU: Vandermonde -----------------------------------------------------------------------
// exp(x l) for l = l0 + j is exp(x l0) * exp(x j): one table of exp(x j), j < kLengthTile, per h
// and one exp per (tile, n) replace an exp/sincos per (n, l) — the product of two correctly
// rounded values is within a few ulp of the direct exponential.
constexpr int64_t kLengthTile = 64;

template <typename T>
void PowerTable(const Cx<T>* x, int64_t N, std::vector<Cx<T>>& table) {
  table.resize(N * kLengthTile);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t j = 0; j < kLengthTile; ++j) {
      table[n * kLengthTile + j] = Exp(Cx<T>{x[n].re * T(j), x[n].im * T(j)});
    }
  }
}

template <typename T>
void VandermondeForwardCpu(const at::Tensor& W, const at::Tensor& x, int64_t L, at::Tensor& out) {
  const int64_t M = W.size(0), H = W.size(1), N = W.size(2);
  const Cx<T>* Wp = CxData<T>(W);
  const Cx<T>* xp = CxData<T>(x);
  T* op = out.data_ptr<T>();
  const int64_t tiles = (L + kLengthTile - 1) / kLengthTile;
  at::parallel_for(0, H, 1, [&](int64_t begin, int64_t end) {
    std::vector<Cx<T>> table, u(M * N);
    std::vector<T> acc(kLengthTile);
    for (int64_t h = begin; h < end; ++h) {
      PowerTable(xp + h * N, N, table);
      for (int64_t t = 0; t < tiles; ++t) {
        const int64_t l0 = t * kLengthTile, nl = std::min(kLengthTile, L - l0);
        for (int64_t n = 0; n < N; ++n) {
          const Cx<T> xn = xp[h * N + n];
          const Cx<T> base = Exp(Cx<T>{xn.re * T(l0), xn.im * T(l0)});
          for (int64_t m = 0; m < M; ++m) u[m * N + n] = Mul(Wp[(m * H + h) * N + n], base);
        }
        for (int64_t m = 0; m < M; ++m) {
          std::fill(acc.begin(), acc.end(), T(0));
          for (int64_t n = 0; n < N; ++n) {
            const Cx<T> um = u[m * N + n];
            const Cx<T>* p = table.data() + n * kLengthTile;
            for (int64_t j = 0; j < nl; ++j) acc[j] += um.re * p[j].re - um.im * p[j].im;
          }
          T* row = op + (m * H + h) * L + l0;
          for (int64_t j = 0; j < nl; ++j) row[j] = T(2) * acc[j];
        }
      }
    }
  });
}

// grad_W = 2 sum_l g conj(E);  grad_x = 2 sum_m conj(W) sum_l g l conj(E); per (h, n) task.
template <typename T>
void VandermondeBackwardCpu(const at::Tensor& g, const at::Tensor& W, const at::Tensor& x,
                            at::Tensor& gW, at::Tensor& gx) {
  const int64_t M = W.size(0), H = W.size(1), N = W.size(2), L = g.size(2);
  const T* gp = g.data_ptr<T>();
  const Cx<T>* Wp = CxData<T>(W);
  const Cx<T>* xp = CxData<T>(x);
  Cx<T>* gWp = CxData<T>(gW);
  Cx<T>* gxp = CxData<T>(gx);
  const int64_t tiles = (L + kLengthTile - 1) / kLengthTile;
  at::parallel_for(0, H * N, 1, [&](int64_t begin, int64_t end) {
    std::vector<Cx<T>> table(kLengthTile), s0(M), s1(M);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t h = task / N, n = task % N;
      const Cx<T> xn = xp[h * N + n];
      for (int64_t j = 0; j < kLengthTile; ++j) {
        table[j] = Conj(Exp(Cx<T>{xn.re * T(j), xn.im * T(j)}));
      }
      std::fill(s0.begin(), s0.end(), Cx<T>{0, 0});
      std::fill(s1.begin(), s1.end(), Cx<T>{0, 0});
      for (int64_t t = 0; t < tiles; ++t) {
        const int64_t l0 = t * kLengthTile, nl = std::min(kLengthTile, L - l0);
        const Cx<T> base = Conj(Exp(Cx<T>{xn.re * T(l0), xn.im * T(l0)}));
        for (int64_t m = 0; m < M; ++m) {
          const T* row = gp + (m * H + h) * L + l0;
          T a_re = 0, a_im = 0, b_re = 0, b_im = 0;
          for (int64_t j = 0; j < nl; ++j) {
            const T gj = row[j], lj = gj * T(l0 + j);
            a_re += gj * table[j].re;
            a_im += gj * table[j].im;
            b_re += lj * table[j].re;
            b_im += lj * table[j].im;
          }
          const Cx<T> a = Mul(base, Cx<T>{a_re, a_im}), b = Mul(base, Cx<T>{b_re, b_im});
          s0[m].re += a.re;
          s0[m].im += a.im;
          s1[m].re += b.re;
          s1[m].im += b.im;
        }
      }
      Cx<T> gxn{0, 0};
      for (int64_t m = 0; m < M; ++m) {
        gWp[(m * H + h) * N + n] = {T(2) * s0[m].re, T(2) * s0[m].im};
        const Cx<T> t = Mul(Conj(Wp[(m * H + h) * N + n]), s1[m]);
        gxn.re += T(2) * t.re;
        gxn.im += T(2) * t.im;
      }
      gxp[h * N + n] = gxn;
    }
  });
}

#ifdef LOOM_CUDA
void CheckCuda(int err, const char* what) {
  TORCH_CHECK(err == 0, what, " failed: ", cudaGetErrorString(static_cast<cudaError_t>(err)));
}
int CudaDtypeCode(const at::Tensor& t) { return t.scalar_type() == at::kComplexFloat ? 0 : 1; }
void* CurrentStream() { return c10::cuda::getCurrentCUDAStream().stream(); }
#endif

void CheckSupported(const at::Tensor& t, const char* fn) {
  TORCH_CHECK(t.scalar_type() == at::kComplexFloat || t.scalar_type() == at::kComplexDouble, fn,
              ": only complex64 and complex128 are supported, got ", t.scalar_type());
  if (t.is_cuda()) {
#ifndef LOOM_CUDA
    TORCH_CHECK(false, fn, ": CUDA tensor given but this binary was built without --config=cuda");
#endif
  } else {
    TORCH_CHECK(t.is_cpu(), fn, ": unsupported device ", t.device());
  }
}

class CauchyFunction : public torch::autograd::Function<CauchyFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& v,
                            const at::Tensor& z, const at::Tensor& w) {
    ctx->save_for_backward({v, z, w});
    return CauchyForward(v, z, w);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    auto [gv, gw] = CauchyBackward(grads[0], saved[0], saved[1], saved[2]);
    return {gv, at::Tensor(), gw};
  }
};

class VandermondeFunction : public torch::autograd::Function<VandermondeFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& W,
                            const at::Tensor& x, int64_t length) {
    ctx->save_for_backward({W, x});
    return VandermondeForward(W, x, length);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    auto [gW, gx] = VandermondeBackward(grads[0], saved[0], saved[1]);
    return {gW, gx, at::Tensor()};
  }
};

}  // namespace

at::Tensor CauchyForward(const at::Tensor& v_in, const at::Tensor& z_in, const at::Tensor& w_in) {
  CheckCauchyArgs(v_in, z_in, w_in);
  CheckSupported(v_in, "CauchyConjugateSum");
  const at::Tensor v = v_in.contiguous(), z = z_in.contiguous(), w = w_in.contiguous();
  at::Tensor r = at::empty({v.size(0), v.size(1), z.size(0)}, v.options());
  if (r.numel() == 0) return r;
  if (v.is_cuda()) {
#ifdef LOOM_CUDA
    CheckCuda(internal::LaunchCauchyForward(CudaDtypeCode(v), v.data_ptr(), z.data_ptr(),
                                            w.data_ptr(), r.data_ptr(), v.size(0), v.size(1),
                                            v.size(2), z.size(0), CurrentStream()),
              "CauchyForward kernel");
#endif
    return r;
  }
  if (v.scalar_type() == at::kComplexDouble) {
    CauchyForwardCpu<double>(v, z, w, r);
  } else {
    CauchyForwardCpu<float>(v, z, w, r);
  }
  return r;
}

std::tuple<at::Tensor, at::Tensor> CauchyBackward(const at::Tensor& grad_r, const at::Tensor& v_in,
                                                  const at::Tensor& z_in,
                                                  const at::Tensor& w_in) {
  CheckCauchyArgs(v_in, z_in, w_in);
  CheckSupported(v_in, "CauchyConjugateSum");
  const at::Tensor v = v_in.contiguous(), z = z_in.contiguous(), w = w_in.contiguous();
  TORCH_CHECK(grad_r.sizes() == at::IntArrayRef({v.size(0), v.size(1), z.size(0)}),
              "CauchyBackward: grad shape ", grad_r.sizes(), " does not match the output");
  const at::Tensor g = grad_r.to(v.scalar_type()).contiguous();
  at::Tensor gv = at::zeros_like(v), gw = at::zeros_like(w);
  if (v.numel() == 0) return {gv, gw};
  if (v.is_cuda()) {
#ifdef LOOM_CUDA
    CheckCuda(internal::LaunchCauchyBackward(CudaDtypeCode(v), g.data_ptr(), v.data_ptr(),
                                             z.data_ptr(), w.data_ptr(), gv.data_ptr(),
                                             gw.data_ptr(), v.size(0), v.size(1), v.size(2),
                                             z.size(0), CurrentStream()),
              "CauchyBackward kernel");
#endif
    return {gv, gw};
  }
  if (v.scalar_type() == at::kComplexDouble) {
    CauchyBackwardCpu<double>(g, v, z, w, gv, gw);
  } else {
    CauchyBackwardCpu<float>(g, v, z, w, gv, gw);
  }
  return {gv, gw};
}

at::Tensor VandermondeForward(const at::Tensor& W_in, const at::Tensor& x_in, int64_t length) {
  CheckVandermondeArgs(W_in, x_in, length);
  CheckSupported(W_in, "VandermondeRealSum");
  const at::Tensor W = W_in.contiguous(), x = x_in.contiguous();
  const at::ScalarType real = c10::toRealValueType(W.scalar_type());
  at::Tensor out = at::empty({W.size(0), W.size(1), length}, W.options().dtype(real));
  if (out.numel() == 0) return out;
  if (W.is_cuda()) {
#ifdef LOOM_CUDA
    CheckCuda(internal::LaunchVandermondeForward(CudaDtypeCode(W), W.data_ptr(), x.data_ptr(),
                                                 out.data_ptr(), W.size(0), W.size(1), W.size(2),
                                                 length, CurrentStream()),
              "VandermondeForward kernel");
#endif
    return out;
  }
  if (real == at::kDouble) {
    VandermondeForwardCpu<double>(W, x, length, out);
  } else {
    VandermondeForwardCpu<float>(W, x, length, out);
  }
  return out;
}

std::tuple<at::Tensor, at::Tensor> VandermondeBackward(const at::Tensor& grad_k,
                                                       const at::Tensor& W_in,
                                                       const at::Tensor& x_in) {
  CheckVandermondeArgs(W_in, x_in, grad_k.dim() == 3 ? grad_k.size(2) : 0);
  CheckSupported(W_in, "VandermondeRealSum");
  const at::Tensor W = W_in.contiguous(), x = x_in.contiguous();
  TORCH_CHECK(grad_k.dim() == 3 && grad_k.size(0) == W.size(0) && grad_k.size(1) == W.size(1),
              "VandermondeBackward: grad shape ", grad_k.sizes(), " does not match W ",
              W.sizes());
  const at::Tensor g = grad_k.to(c10::toRealValueType(W.scalar_type())).contiguous();
  at::Tensor gW = at::zeros_like(W), gx = at::zeros_like(x);
  if (W.numel() == 0 || g.size(2) == 0) return {gW, gx};
  if (W.is_cuda()) {
#ifdef LOOM_CUDA
    CheckCuda(internal::LaunchVandermondeBackward(CudaDtypeCode(W), g.data_ptr(), W.data_ptr(),
                                                  x.data_ptr(), gW.data_ptr(), gx.data_ptr(),
                                                  W.size(0), W.size(1), W.size(2), g.size(2),
                                                  CurrentStream()),
              "VandermondeBackward kernel");
#endif
    return {gW, gx};
  }
  if (W.scalar_type() == at::kComplexDouble) {
    VandermondeBackwardCpu<double>(g, W, x, gW, gx);
  } else {
    VandermondeBackwardCpu<float>(g, W, x, gW, gx);
  }
  return {gW, gx};
}

at::Tensor CauchyConjugateSum(const at::Tensor& v, const at::Tensor& z, const at::Tensor& w) {
  return CauchyFunction::apply(v, z.detach(), w);
}

at::Tensor VandermondeRealSum(const at::Tensor& W, const at::Tensor& x, int64_t length) {
  return VandermondeFunction::apply(W, x, length);
}

bool SsmKernelsHaveCuda() {
#ifdef LOOM_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace loom::kernels
