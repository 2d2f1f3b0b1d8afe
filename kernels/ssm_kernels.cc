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
// Both passes work on structure-of-arrays copies (real and imaginary parts in separate rows) so
// that the loops over nodes vectorise; the two reciprocals of a (node, state) pair are shared by
// all M rows. With a = 1/(z - w) and b = 1/(z - conj w):
//   v a + conj(v) b = (vr (ar+br) - vi (ai-bi)) + i (vr (ai+bi) + vi (ar-br))
//   g conj(a) + conj(g) b = (gr (ar+br) + gi (ai+bi)) + i (gi (ar-br) - gr (ai-bi))
// and the same with a^2, b^2 for the pole gradient.
constexpr int64_t kNodeTile = 128;

#define LOOM_SSM_VECTOR_CLONES \
  __attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))

// Sums and differences of the two reciprocals for nodes [0, n): P = a + b, Q = a - b.
template <typename T>
LOOM_SSM_VECTOR_CLONES void PairReciprocals(const T* zr, const T* zi, T wr, T wi, int64_t n,
                                            T* pr, T* pi, T* qr, T* qi) {
  for (int64_t j = 0; j < n; ++j) {
    const T dr = zr[j] - wr, d1 = zi[j] - wi, d2 = zi[j] + wi;
    const T s1 = T(1) / (dr * dr + d1 * d1), s2 = T(1) / (dr * dr + d2 * d2);
    const T ar = dr * s1, ai = -d1 * s1, br = dr * s2, bi = -d2 * s2;
    pr[j] = ar + br;
    pi[j] = ai + bi;
    qr[j] = ar - br;
    qi[j] = ai - bi;
  }
}

template <typename T>
LOOM_SSM_VECTOR_CLONES void AccumulateRow(T vr, T vi, const T* pr, const T* pi, const T* qr,
                                          const T* qi, int64_t n, T* acc_re, T* acc_im) {
  for (int64_t j = 0; j < n; ++j) {
    acc_re[j] += vr * pr[j] - vi * qi[j];
    acc_im[j] += vr * pi[j] + vi * qr[j];
  }
}

template <typename T>
void CauchyForwardCpu(const at::Tensor& v, const at::Tensor& z, const at::Tensor& w,
                      at::Tensor& r) {
  const int64_t M = v.size(0), H = v.size(1), N = v.size(2), K = z.size(0);
  const at::Tensor zre = at::real(z).contiguous(), zim = at::imag(z).contiguous();
  const T* zr = zre.data_ptr<T>();
  const T* zi = zim.data_ptr<T>();
  const Cx<T>* vp = CxData<T>(v);
  const Cx<T>* wp = CxData<T>(w);
  Cx<T>* rp = CxData<T>(r);
  const int64_t tiles = (K + kNodeTile - 1) / kNodeTile;
  at::parallel_for(0, H * tiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> acc(2 * M * kNodeTile), pq(4 * kNodeTile);
    T *pr = pq.data(), *pi = pr + kNodeTile, *qr = pi + kNodeTile, *qi = qr + kNodeTile;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t h = task / tiles, k0 = (task % tiles) * kNodeTile;
      const int64_t nk = std::min(kNodeTile, K - k0);
      std::fill(acc.begin(), acc.end(), T(0));
      for (int64_t n = 0; n < N; ++n) {
        const Cx<T> wn = wp[h * N + n];
        PairReciprocals<T>(zr + k0, zi + k0, wn.re, wn.im, nk, pr, pi, qr, qi);
        for (int64_t m = 0; m < M; ++m) {
          const Cx<T> vm = vp[(m * H + h) * N + n];
          T* re = acc.data() + 2 * m * kNodeTile;
          AccumulateRow<T>(vm.re, vm.im, pr, pi, qr, qi, nk, re, re + kNodeTile);
        }
      }
      for (int64_t m = 0; m < M; ++m) {
        const T* re = acc.data() + 2 * m * kNodeTile;
        Cx<T>* out = rp + (m * H + h) * K + k0;
        for (int64_t j = 0; j < nk; ++j) out[j] = {re[j], re[kNodeTile + j]};
      }
    }
  });
}

// Per state entry (h, n) and row m, the four sums over nodes
//   S1 = sum_k g conj(a) + conj(g) b,   S2 = sum_k g conj(a)^2 + conj(g) b^2.
// Without -ffast-math a scalar reduction cannot be vectorised (that would reorder the sum), so
// the sums run in kLanes independent lanes (node k goes to lane k % kLanes), added up at the end
// in a fixed order: vectorised and deterministic. The reciprocals of a chunk of nodes are
// computed once and shared by the M rows.
constexpr int64_t kLanes = 16;

// Reciprocal terms of nodes [k0, k0 + kLanes) (zero past K): for S1 (a, b) and S2 (a^2, b^2),
// the sums and differences the formulas above use.
template <typename T>
LOOM_SSM_VECTOR_CLONES void BackwardChunkTerms(const T* __restrict zr, const T* __restrict zi,
                                               T wr, T wi, T* __restrict t) {
  for (int64_t l = 0; l < kLanes; ++l) {
    const T dr = zr[l] - wr, d1 = zi[l] - wi, d2 = zi[l] + wi;
    const T t1 = T(1) / (dr * dr + d1 * d1), t2 = T(1) / (dr * dr + d2 * d2);
    const T ar = dr * t1, ai = -d1 * t1, br = dr * t2, bi = -d2 * t2;
    const T a2r = ar * ar - ai * ai, a2i = 2 * ar * ai, b2r = br * br - bi * bi, b2i = 2 * br * bi;
    t[0 * kLanes + l] = ar + br;
    t[1 * kLanes + l] = ai + bi;
    t[2 * kLanes + l] = ar - br;
    t[3 * kLanes + l] = ai - bi;
    t[4 * kLanes + l] = a2r + b2r;
    t[5 * kLanes + l] = a2i + b2i;
    t[6 * kLanes + l] = a2r - b2r;
    t[7 * kLanes + l] = a2i - b2i;
  }
}

template <typename T>
LOOM_SSM_VECTOR_CLONES void BackwardChunkAccumulate(const T* __restrict t, const T* __restrict gr,
                                                    const T* __restrict gi, T* __restrict s) {
  for (int64_t l = 0; l < kLanes; ++l) {
    const T g_r = gr[l], g_i = gi[l];
    s[0 * kLanes + l] += g_r * t[0 * kLanes + l] + g_i * t[1 * kLanes + l];
    s[1 * kLanes + l] += g_i * t[2 * kLanes + l] - g_r * t[3 * kLanes + l];
    s[2 * kLanes + l] += g_r * t[4 * kLanes + l] + g_i * t[5 * kLanes + l];
    s[3 * kLanes + l] += g_i * t[6 * kLanes + l] - g_r * t[7 * kLanes + l];
  }
}

// Backward, parallel over (h, n): both gradients are sums over the nodes of one state entry, so
// every task owns its outputs and the summation order is fixed (deterministic).
//   grad_v = S1;   grad_w = sum_m conj(v) S2
template <typename T>
void CauchyBackwardCpu(const at::Tensor& g, const at::Tensor& v, const at::Tensor& z,
                       const at::Tensor& w, at::Tensor& gv, at::Tensor& gw) {
  const int64_t M = v.size(0), H = v.size(1), N = v.size(2), K = z.size(0);
  const at::Tensor zre = at::real(z).contiguous(), zim = at::imag(z).contiguous();
  const T* zr = zre.data_ptr<T>();
  const T* zi = zim.data_ptr<T>();
  const Cx<T>* gp = CxData<T>(g);
  const Cx<T>* vp = CxData<T>(v);
  const Cx<T>* wp = CxData<T>(w);
  Cx<T>* gvp = CxData<T>(gv);
  Cx<T>* gwp = CxData<T>(gw);
  // Nodes and incoming gradients padded to a multiple of kLanes: a padded node is far from
  // every pole and meets a zero gradient, so it adds exactly 0.
  const int64_t Kp = (K + kLanes - 1) / kLanes * kLanes;
  std::vector<T> zpad(2 * Kp, T(0)), gpad(2 * M * H * Kp, T(0));
  for (int64_t k = 0; k < Kp; ++k) {
    zpad[k] = k < K ? zr[k] : T(0);
    zpad[Kp + k] = k < K ? zi[k] : T(1e4);
  }
  at::parallel_for(0, M * H, 1, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      T* re = gpad.data() + 2 * row * Kp;
      for (int64_t k = 0; k < K; ++k) {
        re[k] = gp[row * K + k].re;
        re[Kp + k] = gp[row * K + k].im;
      }
    }
  });
  at::parallel_for(0, H * N, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> terms(8 * kLanes), lanes(4 * kLanes * M);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t h = task / N, n = task % N;
      const Cx<T> wn = wp[h * N + n];
      std::fill(lanes.begin(), lanes.end(), T(0));
      for (int64_t k0 = 0; k0 < Kp; k0 += kLanes) {
        BackwardChunkTerms<T>(zpad.data() + k0, zpad.data() + Kp + k0, wn.re, wn.im,
                              terms.data());
        for (int64_t m = 0; m < M; ++m) {
          const T* g = gpad.data() + 2 * (m * H + h) * Kp;
          BackwardChunkAccumulate<T>(terms.data(), g + k0, g + Kp + k0,
                                     lanes.data() + 4 * kLanes * m);
        }
      }
      Cx<T> gwn{0, 0};
      for (int64_t m = 0; m < M; ++m) {
        T sum[4] = {0, 0, 0, 0};
        for (int q = 0; q < 4; ++q) {
          for (int64_t l = 0; l < kLanes; ++l) sum[q] += lanes[4 * kLanes * m + q * kLanes + l];
        }
        gvp[(m * H + h) * N + n] = {sum[0], sum[1]};
        const Cx<T> t = Mul(Conj(vp[(m * H + h) * N + n]), Cx<T>{sum[2], sum[3]});
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
// rounded values is within a few ulp of the direct exponential. Tables are structure-of-arrays
// (real and imaginary rows) so the loops over l vectorise; the backward's sums over l run in
// kLanes lanes (see the Cauchy backward) to stay vectorised and deterministic.
constexpr int64_t kLengthTile = 64;
static_assert(kLengthTile % kLanes == 0);

// table_re/im[n * kLengthTile + j] = Re/Im exp(x_n j), optionally conjugated.
template <typename T>
void PowerTable(const Cx<T>* x, int64_t N, bool conjugate, std::vector<T>& re,
                std::vector<T>& im) {
  re.resize(N * kLengthTile);
  im.resize(N * kLengthTile);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t j = 0; j < kLengthTile; ++j) {
      const Cx<T> e = Exp(Cx<T>{x[n].re * T(j), x[n].im * T(j)});
      re[n * kLengthTile + j] = e.re;
      im[n * kLengthTile + j] = conjugate ? -e.im : e.im;
    }
  }
}

// acc[j] += Re(u * e_j) for one state entry.
template <typename T>
LOOM_SSM_VECTOR_CLONES void VandermondeAccumulate(T ur, T ui, const T* __restrict tre,
                                                  const T* __restrict tim, int64_t n,
                                                  T* __restrict acc) {
  for (int64_t j = 0; j < n; ++j) acc[j] += ur * tre[j] - ui * tim[j];
}

template <typename T>
void VandermondeForwardCpu(const at::Tensor& W, const at::Tensor& x, int64_t L, at::Tensor& out) {
  const int64_t M = W.size(0), H = W.size(1), N = W.size(2);
  const Cx<T>* Wp = CxData<T>(W);
  const Cx<T>* xp = CxData<T>(x);
  T* op = out.data_ptr<T>();
  const int64_t tiles = (L + kLengthTile - 1) / kLengthTile;
  at::parallel_for(0, H, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> tre, tim, acc(kLengthTile);
    std::vector<Cx<T>> u(M * N);
    for (int64_t h = begin; h < end; ++h) {
      PowerTable(xp + h * N, N, /*conjugate=*/false, tre, tim);
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
            VandermondeAccumulate<T>(u[m * N + n].re, u[m * N + n].im, tre.data() + n * kLengthTile,
                                     tim.data() + n * kLengthTile, nl, acc.data());
          }
          T* row = op + (m * H + h) * L + l0;
          for (int64_t j = 0; j < nl; ++j) row[j] = T(2) * acc[j];
        }
      }
    }
  });
}

// Lane sums over one full tile: sum_j g_j conj(e_j) and sum_j g_j (l0 + j) conj(e_j), where
// (cre, cim) hold conj(e_j).
template <typename T>
LOOM_SSM_VECTOR_CLONES void VandermondeTileSums(const T* __restrict g, const T* __restrict cre,
                                                const T* __restrict cim, T l0,
                                                T* __restrict lanes) {
  for (int64_t c = 0; c < kLengthTile; c += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) {
      const T gj = g[c + l], lj = gj * (l0 + T(c + l));
      lanes[0 * kLanes + l] += gj * cre[c + l];
      lanes[1 * kLanes + l] += gj * cim[c + l];
      lanes[2 * kLanes + l] += lj * cre[c + l];
      lanes[3 * kLanes + l] += lj * cim[c + l];
    }
  }
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
    std::vector<T> cre, cim, lanes(4 * kLanes), tail(kLengthTile);
    std::vector<Cx<T>> s0(M), s1(M);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t h = task / N, n = task % N;
      const Cx<T> xn = xp[h * N + n];
      PowerTable(&xn, 1, /*conjugate=*/true, cre, cim);
      std::fill(s0.begin(), s0.end(), Cx<T>{0, 0});
      std::fill(s1.begin(), s1.end(), Cx<T>{0, 0});
      for (int64_t t = 0; t < tiles; ++t) {
        const int64_t l0 = t * kLengthTile, nl = std::min(kLengthTile, L - l0);
        const Cx<T> base = Conj(Exp(Cx<T>{xn.re * T(l0), xn.im * T(l0)}));
        for (int64_t m = 0; m < M; ++m) {
          const T* row = gp + (m * H + h) * L + l0;
          if (nl < kLengthTile) {  // the last, partial tile: zero-padded copy
            std::fill(tail.begin(), tail.end(), T(0));
            std::copy(row, row + nl, tail.begin());
            row = tail.data();
          }
          std::fill(lanes.begin(), lanes.end(), T(0));
          VandermondeTileSums<T>(row, cre.data(), cim.data(), T(l0), lanes.data());
          T sum[4] = {0, 0, 0, 0};
          for (int q = 0; q < 4; ++q) {
            for (int64_t l = 0; l < kLanes; ++l) sum[q] += lanes[q * kLanes + l];
          }
          const Cx<T> a = Mul(base, Cx<T>{sum[0], sum[1]}), b = Mul(base, Cx<T>{sum[2], sum[3]});
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
