#include "models/hippo.h"

#include <ATen/Functions.h>
#include <c10/util/Exception.h>
#include <c10/util/complex.h>

#include <cmath>
#include <optional>
#include <tuple>
#include <vector>

namespace loom::models {
namespace {

constexpr double kPi = 3.14159265358979323846;
// Entries of a unit eigenvector below this are treated as zero when choosing the phase pivot.
constexpr double kPhasePivotMin = 1e-10;

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// "legs", "legt" or "fout" (the reference's "fourier" is an alias of "fout").
std::string CanonicalMeasure(const std::string& measure, const char* caller) {
  if (measure == "fourier") return "fout";
  TORCH_CHECK(measure == "legs" || measure == "legt" || measure == "fout", caller,
              ": unknown HiPPO measure '", measure, "' (expected legs, legt, fout or fourier)");
  return measure;
}

void CheckN(int64_t N, const char* caller) {
  TORCH_CHECK(N >= 4 && N % 2 == 0, caller, ": N (d_state) must be even and >= 4, got ", N);
}

void CheckDtype(at::ScalarType dtype, const char* caller) {
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, caller,
              ": dtype must be Float (reference default) or Double, got ", dtype);
}

at::ScalarType ComplexOf(at::ScalarType dtype) {
  return dtype == at::kFloat ? at::kComplexFloat : at::kComplexDouble;
}

at::Tensor FromDoubles(std::vector<double> values, at::IntArrayRef shape) {
  return at::from_blob(values.data(), shape, at::kDouble).clone();
}

// Rotates each column of the complex128 matrix V by a unit factor so that its first entry with
// modulus > kPhasePivotMin becomes real and positive (set exactly, not just up to rounding).
at::Tensor CanonicalPhase(const at::Tensor& V) {
  at::Tensor out = V.to(at::kComplexDouble).contiguous().clone();
  auto a = out.accessor<c10::complex<double>, 2>();
  const int64_t rows = out.size(0);
  for (int64_t j = 0; j < out.size(1); ++j) {
    int64_t r = 0;
    while (r < rows && std::hypot(a[r][j].real(), a[r][j].imag()) <= kPhasePivotMin) ++r;
    TORCH_CHECK(r < rows, "Nplr: eigenvector ", j, " is numerically zero");
    const double mag = std::hypot(a[r][j].real(), a[r][j].imag());
    const c10::complex<double> rot(a[r][j].real() / mag, -a[r][j].imag() / mag);
    for (int64_t i = 0; i < rows; ++i) a[i][j] = a[i][j] * rot;
    a[r][j] = c10::complex<double>(mag, 0.0);
  }
  return out;
}

// Python's `x / t` for a number x and a tensor t is `t.reciprocal() * x`: mirrored here.
at::Tensor RDiv(double x, const at::Tensor& t) { return t.reciprocal().mul(x); }

}  // namespace

HippoMatrices HippoTransition(const std::string& measure_in, int64_t N) {
  const std::string measure = CanonicalMeasure(measure_in, "HippoTransition");
  TORCH_CHECK(N >= 1, "HippoTransition: N must be >= 1, got ", N);
  if (measure == "fout") {
    TORCH_CHECK(N % 2 == 0, "HippoTransition: fout needs an even N, got ", N);
  }
  std::vector<double> A(N * N, 0.0), B(N, 0.0);
  if (measure == "legs") {
    // Reference: M = -(where(row >= col, 2q+1, 0) - diag(q)), A = T M T^-1, T = diag(sqrt(2q+1)).
    std::vector<double> t(N), tinv(N);
    for (int64_t n = 0; n < N; ++n) {
      t[n] = std::sqrt(2.0 * n + 1.0);
      tinv[n] = 1.0 / t[n];
      B[n] = t[n];
    }
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t k = 0; k <= n; ++k) {
        const double m = n > k ? -(2.0 * k + 1.0) : -(n + 1.0);
        A[n * N + k] = (t[n] * m) * tinv[k];
      }
    }
  } else if (measure == "legt") {
    // A[n,k] = -R_n R_k (k > n ? (-1)^(n-k) : 1), B = R, R = sqrt(2n+1); both halved.
    std::vector<double> R(N);
    for (int64_t n = 0; n < N; ++n) R[n] = std::sqrt(2.0 * n + 1.0);
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t k = 0; k < N; ++k) {
        const double s = (n < k && (k - n) % 2 == 1) ? -1.0 : 1.0;
        A[n * N + k] = -(R[n] * s * R[k]) * 0.5;
      }
      B[n] = R[n] * 0.5;
    }
  } else {  // fout
    // A = pi (-diag(d, 1) + diag(d, -1)) - B Bᵀ, d = [0, 0, 1, 0, 2, 0, ..., N/2-1],
    // B = [1, 0, sqrt2, 0, sqrt2, 0, ...].
    const double sqrt2 = std::pow(2.0, 0.5);
    for (int64_t n = 0; n < N; n += 2) B[n] = n == 0 ? 1.0 : sqrt2;
    for (int64_t i = 0; i + 1 < N; ++i) {
      const double d = i % 2 == 0 ? static_cast<double>(i / 2) : 0.0;
      A[i * N + i + 1] = kPi * (-d + 0.0);
      A[(i + 1) * N + i] = kPi * (-0.0 + d);
    }
    for (int64_t i = 0; i < N; ++i) {
      for (int64_t j = 0; j < N; ++j) A[i * N + j] = A[i * N + j] - B[i] * B[j];
    }
  }
  return {FromDoubles(std::move(A), {N, N}), FromDoubles(std::move(B), {N})};
}

at::Tensor HippoRankCorrection(const std::string& measure_in, int64_t N, int64_t rank,
                               at::ScalarType dtype) {
  const std::string measure = CanonicalMeasure(measure_in, "HippoRankCorrection");
  CheckDtype(dtype, "HippoRankCorrection");
  TORCH_CHECK(N >= 1, "HippoRankCorrection: N must be >= 1, got ", N);
  const auto opts = at::TensorOptions().dtype(dtype);
  at::Tensor P;
  if (measure == "legs") {
    TORCH_CHECK(rank >= 1, "HippoRankCorrection: legs needs rank >= 1, got ", rank);
    P = at::sqrt(at::arange(N, opts).add(0.5)).unsqueeze(0);  // sqrt(n + 1/2)
  } else if (measure == "legt") {
    TORCH_CHECK(rank >= 2, "HippoRankCorrection: legt needs rank >= 2, got ", rank);
    at::Tensor p = at::sqrt(at::arange(N, opts).mul(2).add(1));  // sqrt(2n + 1)
    at::Tensor p0 = p.clone(), p1 = p.clone();
    p0.slice(0, 0, N, 2).zero_();  // odd entries
    p1.slice(0, 1, N, 2).zero_();  // even entries
    P = at::stack({p0, p1}, 0).mul(std::pow(2.0, -0.5));
  } else {  // fout. The reference builds this one in the global default dtype; here in `dtype`.
    TORCH_CHECK(rank >= 1, "HippoRankCorrection: fout needs rank >= 1, got ", rank);
    P = at::zeros({N}, opts);
    P.slice(0, 0, N, 2).fill_(std::pow(2.0, 0.5));
    P.select(0, 0).fill_(1.0);
    P = P.unsqueeze(0);
  }
  if (rank > P.size(0)) P = at::cat({P, at::zeros({rank - P.size(0), N}, opts)}, 0);
  return P;
}

NplrResult Nplr(const std::string& measure_in, int64_t N, int64_t rank, double B_clip,
                at::ScalarType dtype) {
  const std::string measure = CanonicalMeasure(measure_in, "Nplr");
  CheckN(N, "Nplr");
  CheckDtype(dtype, "Nplr");
  TORCH_CHECK(B_clip >= 0.0, "Nplr: B_clip must be >= 0 (or +infinity for no clip), got ", B_clip);
  const at::ScalarType cdtype = ComplexOf(dtype);
  const int64_t half = N / 2;

  HippoMatrices hippo = HippoTransition(measure, N);
  const at::Tensor A = hippo.A.to(dtype);
  const at::Tensor B = hippo.B.to(dtype);
  const at::Tensor P = HippoRankCorrection(measure, N, rank, dtype);  // (rank, N)
  const at::Tensor AP = A + (P.unsqueeze(-2) * P.unsqueeze(-1)).sum(-3);
  const at::Tensor W_re = AP.diagonal().mean();  // 0-d, in dtype

  // Hermitian eigendecomposition of -i·AP in float64 (lower triangle, as torch.linalg.eigh).
  const at::Tensor H = at::mul(AP.to(at::kDouble), at::Scalar(c10::complex<double>(0.0, -1.0)));
  at::Tensor W_im, V;
  std::tie(W_im, V) = at::linalg_eigh(H, "L");
  V = CanonicalPhase(V).to(cdtype);
  W_im = W_im.to(dtype);
  at::Tensor W = at::complex(W_re.expand_as(W_im), W_im);

  // Sort by Im (eigh already returns ascending order) and keep the first half (Im < 0).
  const at::Tensor idx = std::get<1>(at::sort(W_im, std::optional<bool>(true), /*dim=*/0));
  W = W.index_select(0, idx).slice(0, 0, half).contiguous();
  V = V.index_select(1, idx).slice(1, 0, half).contiguous();
  const at::Tensor W_abs = W.abs().to(at::kDouble);
  TORCH_CHECK(W_abs[half - 2].item<double>() > 1e-4,
              "Nplr: more than one zero eigenvalue in the kept half (measure ", measure, ")");
  if (W_abs[half - 1].item<double>() < 1e-4) {
    // Reference edge case (fout): a zero eigenvalue; use (e0 + i e1)/sqrt(2) for its vector.
    const double s = std::pow(2.0, -0.5);
    V.select(1, half - 1).zero_();
    V.select(1, half - 1).select(0, 0).fill_(c10::complex<double>(s, 0.0));
    V.select(1, half - 1).select(0, 1).fill_(c10::complex<double>(0.0, s));
  }

  const at::Tensor V_inv = V.conj().transpose(-1, -2);        // (N/2, N)
  const at::Tensor B_t = at::matmul(V_inv, B.to(cdtype));     // Vᴴ B
  const at::Tensor P_t = at::matmul(P.to(cdtype), V.conj());  // (Vᴴ p_r)_r
  const at::Tensor B_clipped =
      at::complex(at::real(B_t), at::clamp(at::imag(B_t), -B_clip, B_clip));

  NplrResult out;
  out.W = W.to(at::kComplexDouble);
  out.P = P_t.to(at::kComplexDouble).resolve_conj();
  out.B = B_clipped.to(at::kComplexDouble);
  out.B_unclipped = B_t.to(at::kComplexDouble).resolve_conj();
  out.V = V.to(at::kComplexDouble).contiguous();
  return out;
}

at::Tensor DiagonalInit(const std::string& init, int64_t N, at::ScalarType dtype) {
  CheckN(N, "DiagonalInit");
  CheckDtype(dtype, "DiagonalInit");
  TORCH_CHECK(init != "diag",
              "DiagonalInit: 'diag' is a combination over the SSM copies (first half diag-inv, "
              "second half diag-lin), not one init; use CombinationInit(\"diag\", N, rank, n_ssm)");
  TORCH_CHECK(StartsWith(init, "diag-"), "DiagonalInit: unknown init '", init,
              "' (expected diag-lin, diag-inv, diag-inv2, diag-quad, diag-real or diag-legs)");
  const std::string kind = init.substr(5);
  const int64_t half = N / 2;
  const auto opts = at::TensorOptions().dtype(dtype);
  // The reference's ops, in its order: real_part = .5 * ones, imag_part from n = arange(N/2),
  // pi = torch.tensor(math.pi), then A = -real_part - 1j * imag_part.
  at::Tensor real_part = at::ones({half}, opts).mul(0.5);
  const at::Tensor n = at::arange(half, at::TensorOptions().dtype(at::kLong));
  const at::Tensor pi = at::scalar_tensor(kPi, opts);
  const at::Tensor inv_pi = RDiv(1.0, pi);  // 1/pi
  at::Tensor imag_part;
  if (kind == "lin" || kind == "linear") {
    imag_part = pi * n.to(dtype);
  } else if (kind == "inv" || kind == "inverse") {
    imag_part = inv_pi.mul(N) * RDiv(N, n.mul(2).add(1).to(dtype)).sub(1);
  } else if (kind == "inv2" || kind == "inverse2") {
    imag_part = inv_pi.mul(N) * RDiv(N, n.add(1).to(dtype)).sub(1);
  } else if (kind == "quad" || kind == "quadratic") {
    imag_part = inv_pi * n.mul(2).add(1).pow(2).to(dtype);
  } else if (kind == "real") {
    imag_part = at::zeros({half}, opts);
    real_part = n.add(1).to(dtype);  // S4D-Real: -(n+1)
  } else if (kind == "legs" || kind == "hippo") {
    imag_part = at::imag(Nplr("legs", N, 1, 2.0, dtype).W).neg().to(dtype);
  } else {
    TORCH_CHECK(false, "DiagonalInit: unknown init '", init,
                "' (expected diag-lin, diag-inv, diag-inv2, diag-quad, diag-real or diag-legs)");
  }
  // -real - 1j*imag: the imaginary part is 0 - imag (so +0, not -0, when imag is 0).
  const at::Tensor lambda = at::complex(real_part.neg(), at::rsub(imag_part, 0.0));
  TORCH_CHECK(
      (at::real(lambda) < 1e-4).all().item<bool>() && (at::imag(lambda) <= 0.0).all().item<bool>(),
      "DiagonalInit: ", init, " gave an eigenvalue with Re >= 1e-4 or Im > 0");
  return lambda.to(at::kComplexDouble);
}

DplrParams DplrInit(const std::string& init, int64_t N, int64_t rank, at::ScalarType dtype) {
  CheckN(N, "DplrInit");
  TORCH_CHECK(rank >= 1, "DplrInit: rank must be >= 1, got ", rank);
  TORCH_CHECK(!StartsWith(init, "dplr"), "DplrInit: '", init,
              "' has a random P (randn * P_scale): draw P in the caller and take Lambda and B "
              "from the matching diag-* init");
  const int64_t half = N / 2;
  DplrParams out;
  if (StartsWith(init, "diag")) {
    out.Lambda = DiagonalInit(init, N, dtype);
    out.P = at::zeros({rank, half}, at::TensorOptions().dtype(at::kComplexDouble));
    const std::string kind = init.substr(5);
    if (kind == "legs" || kind == "hippo") {
      out.B = Nplr("legs", N, 1, 2.0, dtype).B;  // unhalved, clipped (reference)
    } else {
      out.B = at::ones({half}, at::TensorOptions().dtype(at::kComplexDouble));
    }
    return out;
  }
  NplrResult nplr = Nplr(init, N, rank, 2.0, dtype);
  out.Lambda = nplr.W;
  out.P = nplr.P;
  out.B = nplr.B;
  return out;
}

DplrParams CombinationInit(const std::string& init, int64_t N, int64_t rank, int64_t n_ssm,
                           at::ScalarType dtype) {
  std::vector<std::string> parts;
  if (init == "hippo") {
    parts = {"legs", "fout"};
  } else if (init == "diag") {
    parts = {"diag-inv", "diag-lin"};
  } else if (init == "all") {
    parts = {"legs", "fout", "diag-inv", "diag-lin"};
  } else {
    parts = {init};
  }
  const int64_t n_parts = static_cast<int64_t>(parts.size());
  TORCH_CHECK(n_ssm >= 1 && n_ssm % n_parts == 0, "CombinationInit: n_ssm = ", n_ssm,
              " independent SSM copies must be a positive multiple of the ", n_parts, " inits of '",
              init, "'");
  const int64_t copies = n_ssm / n_parts;
  const int64_t half = N / 2;
  std::vector<at::Tensor> lambdas, ps, bs;
  for (const std::string& part : parts) {
    DplrParams p = DplrInit(part, N, rank, dtype);
    lambdas.push_back(p.Lambda.unsqueeze(0).expand({copies, half}));
    ps.push_back(p.P.unsqueeze(1).expand({rank, copies, half}));
    bs.push_back(p.B.unsqueeze(0).expand({copies, half}));
  }
  return {at::cat(lambdas, 0).contiguous(), at::cat(ps, 1).contiguous(),
          at::cat(bs, 0).contiguous()};
}

}  // namespace loom::models
