// HiPPO matrices and the initialisations of S4 (NPLR / DPLR) and S4D (diagonal) state-space
// layers, ported from state-spaces/s4@e757cef5 `models/s4/s4.py` (`transition`,
// `rank_correction`, `nplr`, `dplr`, `combination`); see ../shared/specs/s4_sgconv.md §1.1-§1.2.
// Only the deterministic parts are here: the caller draws C, dt (and any random P / B).
//
//   auto [A, B] = HippoTransition("legs", 64);             // (64, 64), (64) float64
//   NplrResult nplr = Nplr("legs", 64);                    // W (32), P (1, 32), B (32), V (64, 32)
//   // With Vf = [V, conj V], Wf = [W, conj W], Pf = [P, conj P] (columns): Vf is unitary,
//   // A = Vf (diag(Wf) − Pfᵀ conj(Pf)) Vfᴴ and B_orig = 2 Re(V B_unclipped).
//   at::Tensor lambda = DiagonalInit("diag-inv", 64);      // S4D-Inv, (32) complex128
//   DplrParams init = CombinationInit("hippo", 64, /*rank=*/1, /*n_ssm=*/4);  // 2x legs + 2x fout
//
// Precision (`dtype`): the reference builds A, B, p in float32 (`dtype=torch.float`, its default),
// diagonalises in float64 and does the rest in complex64. at::kFloat (the default here) mirrors
// that op for op; at::kDouble keeps everything in float64 (as the golden file
// hippo_legs_nplr was made). Every complex result is returned as complex128 either way.
//
// Eigenvector phase (an addition to the reference, spec §1.1): LAPACK fixes each eigenvector of
// the Hermitian matrix -i·(A + p pᵀ) only up to a unit complex factor, and the B clip is not
// phase-invariant. Nplr rotates every column of V so that its first entry that is not ~0
// (|V[r,j]| > 1e-10; r = 0 for legs and legt, r = 2k for the 2x2 rotation blocks of fout) is
// real and > 0. The reference's LAPACK happened to return V[0,j] real with an arbitrary sign;
// the clip commutes with that ±1.
//
// Measures: "legs" (rank >= 1), "legt" (rank >= 2; A, B halved and p scaled by 1/sqrt(2) as the
// reference does), "fout" (alias "fourier", rank >= 1). Ranks above the measure's own are zero
// padded. N must be even and >= 4 (the reference indexes W[-2]).
#ifndef LOOM_MODELS_HIPPO_H_
#define LOOM_MODELS_HIPPO_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace loom::models {

struct HippoMatrices {
  at::Tensor A;  // (N, N) float64
  at::Tensor B;  // (N) float64
};

// The HiPPO transition (A, B) of `measure`, computed in float64 as the reference's numpy code
// (LegS as T M T⁻¹, so entries equal -sqrt(2n+1)·sqrt(2k+1) to the last ulp of that order).
HippoMatrices HippoTransition(const std::string& measure, int64_t N);

// The rank correction p (rank, N) such that A + pᵀp (= A + Σ_r p_r p_rᵀ) is normal (identity
// times a constant plus skew-symmetric). In `dtype` (kFloat or kDouble), like the reference
// (whose fout branch ignores `dtype` and uses the global default dtype).
at::Tensor HippoRankCorrection(const std::string& measure, int64_t N, int64_t rank = 1,
                               at::ScalarType dtype = at::kFloat);

// Reference `nplr()`: the unitary diagonalisation of A + pᵀp, keeping one member of each
// conjugate pair (the other half is the complex conjugate; see the example above).
struct NplrResult {
  at::Tensor W;            // (N/2) complex128, Re = mean(diag(A + pᵀp)), Im ascending, <= 0
  at::Tensor P;            // (rank, N/2) complex128, P̃ = Vᴴ p per row
  at::Tensor B;            // (N/2) complex128, Vᴴ B with Im clamped to [-B_clip, B_clip]
  at::Tensor B_unclipped;  // (N/2) complex128, Vᴴ B
  at::Tensor V;            // (N, N/2) complex128, phase-canonical eigenvectors (see above)
};

// `B_clip` = +infinity disables the clip (the reference's B_clip=None).
NplrResult Nplr(const std::string& measure, int64_t N, int64_t rank = 1, double B_clip = 2.0,
                at::ScalarType dtype = at::kFloat);

// S4D diagonal A (reference `dplr(init=...)` with P_scale = 0, real_part = 0.5), as (N/2)
// complex128, n = 0..N/2-1:
//   "diag-lin"  (also "diag-linear")   -0.5 - i·π·n
//   "diag-inv"  (also "diag-inverse")  -0.5 - i·(N/π)·(N/(2n+1) − 1)
//   "diag-inv2" (also "diag-inverse2") -0.5 - i·(N/π)·(N/(n+1) − 1)
//   "diag-quad" (also "diag-quadratic") -0.5 - i·(2n+1)²/π
//   "diag-real"                         -(n+1)
//   "diag-legs" (also "diag-hippo")     -0.5 + i·Im(Nplr("legs", N, 1, 2.0, dtype).W)
//     (the reference always takes the float32 nplr here, even in double: kFloat reproduces it)
// "diag" is not a single init: in the reference it is the combination diag-inv + diag-lin over
// the n_ssm copies (first half inv, second half lin); use CombinationInit for it.
at::Tensor DiagonalInit(const std::string& init, int64_t N, at::ScalarType dtype = at::kFloat);

// (Λ, P, B) of one SSM copy, or of n_ssm copies stacked along an S axis (CombinationInit).
struct DplrParams {
  at::Tensor Lambda;  // (N/2) or (S, N/2) complex128: the diagonal of A
  at::Tensor P;       // (rank, N/2) or (rank, S, N/2) complex128: A = diag(Λ) − Σ_r P_r P_rᴴ
  at::Tensor B;       // (N/2) or (S, N/2) complex128
};

// Reference `ssm(init, N, rank, H=1)` without its random parts:
//  - "legs", "legt", "fout"/"fourier": Nplr(init, N, rank, B_clip=2.0) -> (W, P̃, clipped B̃).
//  - "diag-*" (see DiagonalInit): Λ from DiagonalInit, P = zeros (rank, N/2) (the reference draws
//    randn·P_scale with P_scale = 0, which consumes the RNG: a caller matching its random stream
//    must draw and discard rank·H·N/2 complex normals), B = ones (B_init='constant'), except
//    "diag-legs" whose B is the clipped B̃ of Nplr("legs") (unhalved, as the reference).
// "dplr-*" inits (random P) are refused: the caller owns that randomness.
DplrParams DplrInit(const std::string& init, int64_t N, int64_t rank = 1,
                    at::ScalarType dtype = at::kFloat);

// Reference `combination(init, N, rank, n_ssm)`: "hippo" = legs + fout, "diag" = diag-inv +
// diag-lin, "all" = legs + fout + diag-inv + diag-lin, anything else one DplrInit. Each part fills
// n_ssm / (number of parts) consecutive copies (n_ssm must be a multiple of it).
DplrParams CombinationInit(const std::string& init, int64_t N, int64_t rank, int64_t n_ssm,
                           at::ScalarType dtype = at::kFloat);

}  // namespace loom::models

#endif  // LOOM_MODELS_HIPPO_H_
