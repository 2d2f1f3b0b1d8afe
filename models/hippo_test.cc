#include "models/hippo.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "core/testing/test_paths.h"
#include "gtest/gtest.h"

namespace loom::models {
namespace {

using at::indexing::Slice;

const SafetensorsFile& Golden() {
  static const SafetensorsFile* file = [] {
    auto f = ReadSafetensors(testing::GoldenPath("s4_sgconv/hippo_legs_nplr.safetensors"));
    TORCH_CHECK(f.ok(), "cannot read the golden file: ", f.status().ToString());
    return new SafetensorsFile(*std::move(f));
  }();
  return *file;
}

at::Tensor GoldenReal(const std::string& name) {
  const SafetensorsTensor* t = Golden().Find(name);
  TORCH_CHECK(t != nullptr, "golden tensor missing: ", name);
  auto values = TensorAsDoubles(*t);
  TORCH_CHECK(values.ok(), values.status().ToString());
  return at::from_blob(values->data(), t->shape, at::kDouble).clone();
}

at::Tensor GoldenComplex(const std::string& name) {
  return at::complex(GoldenReal(name + ".real"), GoldenReal(name + ".imag"));
}

double MaxAbs(const at::Tensor& t) { return t.abs().max().item<double>(); }

// max |got - want| / max |want|.
double RelErr(const at::Tensor& got, const at::Tensor& want) {
  EXPECT_EQ(got.sizes(), want.sizes());
  return MaxAbs(got - want) / MaxAbs(want);
}

// Vf = [V, conj V] (N, N): the full unitary eigenbasis.
at::Tensor FullBasis(const at::Tensor& V) { return at::cat({V, V.conj()}, 1); }

class HippoGoldenTest : public ::testing::TestWithParam<int> {
 protected:
  std::string Key(const std::string& suffix) const {
    return "N" + std::to_string(GetParam()) + "." + suffix;
  }
};

TEST_P(HippoGoldenTest, TransitionAndRankCorrection) {
  const int N = GetParam();
  HippoMatrices h = HippoTransition("legs", N);
  ASSERT_EQ(h.A.scalar_type(), at::kDouble);
  const double err_a = MaxAbs(h.A - GoldenReal(Key("hippo.A")));
  const double err_b = MaxAbs(h.B - GoldenReal(Key("hippo.B")));
  const double err_p =
      MaxAbs(HippoRankCorrection("legs", N, 1, at::kDouble) - GoldenReal(Key("hippo.P")));
  std::printf("N=%d hippo abs err: A %.3g B %.3g P %.3g\n", N, err_a, err_b, err_p);
  EXPECT_LE(err_a, 1e-12);
  EXPECT_LE(err_b, 1e-12);
  EXPECT_LE(err_p, 1e-12);
}

// The golden file ran nplr(dtype=torch.double): compare our float64 path.
TEST_P(HippoGoldenTest, NplrFloat64MatchesGolden) {
  const int N = GetParam();
  NplrResult r = Nplr("legs", N, 1, 2.0, at::kDouble);
  ASSERT_EQ(r.W.sizes(), (std::vector<int64_t>{N / 2}));
  ASSERT_EQ(r.P.sizes(), (std::vector<int64_t>{1, N / 2}));
  ASSERT_EQ(r.V.sizes(), (std::vector<int64_t>{N, N / 2}));
  for (const at::Tensor& t : {r.W, r.P, r.B, r.B_unclipped, r.V}) {
    EXPECT_EQ(t.scalar_type(), at::kComplexDouble);
  }
  const double err_w = RelErr(r.W, GoldenComplex(Key("nplr.W")));
  EXPECT_LE(err_w, 1e-9);

  // Our phase convention: V[0, j] real and > 0, exactly.
  const at::Tensor v0 = r.V.select(0, 0);
  EXPECT_EQ(MaxAbs(at::imag(v0)), 0.0);
  EXPECT_GT(at::real(v0).min().item<double>(), 0.0);
  // The golden V[0, j] is real (LAPACK's phase) with an arbitrary sign: align that sign.
  const at::Tensor Vg = GoldenComplex(Key("nplr.V"));
  ASSERT_EQ(MaxAbs(at::imag(Vg.select(0, 0))), 0.0);
  const at::Tensor sign = at::sign(at::real(Vg.select(0, 0)));  // (N/2), ±1
  ASSERT_EQ(at::abs(sign).min().item<double>(), 1.0);

  const double err_v = RelErr(r.V * sign, Vg);
  const double err_p = RelErr(r.P * sign, GoldenComplex(Key("nplr.P")));
  const double err_b = RelErr(r.B * sign, GoldenComplex(Key("nplr.B_clip2")));
  const double err_bu = RelErr(r.B_unclipped * sign, GoldenComplex(Key("nplr.B_noclip")));
  // Phase-invariant checks, whatever the eigenvector phases.
  const double err_absb = RelErr(r.B_unclipped.abs(), GoldenReal(Key("invariant.absB_noclip")));
  const double err_absp = RelErr(r.P[0].abs(), GoldenReal(Key("invariant.absP")));
  const double err_bp =
      RelErr(r.B_unclipped * r.P[0].conj(), GoldenComplex(Key("invariant.B_noclip_times_conjP")));
  std::printf(
      "N=%d float64 nplr rel err: W %.3g V %.3g P %.3g B %.3g B_noclip %.3g |B| %.3g |P| %.3g "
      "B*conj(P) %.3g\n",
      N, err_w, err_v, err_p, err_b, err_bu, err_absb, err_absp, err_bp);
  EXPECT_LE(err_v, 1e-9);
  EXPECT_LE(err_p, 1e-9);
  EXPECT_LE(err_b, 1e-9);
  EXPECT_LE(err_bu, 1e-9);
  EXPECT_LE(err_absb, 1e-9);
  EXPECT_LE(err_absp, 1e-9);
  EXPECT_LE(err_bp, 1e-9);

  // The clip only touches the imaginary parts beyond ±2 (spec: 11 of 32 entries at N = 64).
  const int64_t clipped = (at::imag(r.B_unclipped).abs() > 2.0).sum().item<int64_t>();
  if (N == 64) EXPECT_EQ(clipped, 11);
  EXPECT_EQ(MaxAbs(at::real(r.B) - at::real(r.B_unclipped)), 0.0);
  EXPECT_LE(MaxAbs(at::imag(r.B)), 2.0);
}

// The reference default (A, B, p in float32, eigh in float64, products in complex64): close to the
// float64 golden values, at float32 accuracy.
TEST_P(HippoGoldenTest, NplrReferenceFloat32PathIsCloseToGolden) {
  const int N = GetParam();
  NplrResult r = Nplr("legs", N);  // at::kFloat
  EXPECT_EQ(r.W.scalar_type(), at::kComplexDouble);
  const at::Tensor sign = at::sign(at::real(GoldenComplex(Key("nplr.V")).select(0, 0)));
  const double err_w = RelErr(r.W, GoldenComplex(Key("nplr.W")));
  const double err_v = RelErr(r.V * sign, GoldenComplex(Key("nplr.V")));
  const double err_p = RelErr(r.P * sign, GoldenComplex(Key("nplr.P")));
  const double err_b = RelErr(r.B * sign, GoldenComplex(Key("nplr.B_clip2")));
  std::printf("N=%d float32-path nplr rel err: W %.3g V %.3g P %.3g B %.3g\n", N, err_w, err_v,
              err_p, err_b);
  EXPECT_LE(err_w, 1e-6);
  EXPECT_LE(err_v, 1e-5);
  EXPECT_LE(err_p, 1e-5);
  EXPECT_LE(err_b, 1e-5);
}

TEST_P(HippoGoldenTest, DiagonalLinAndInvInits) {
  const int N = GetParam();
  const at::Tensor lin = GoldenComplex(Key("diag_lin.A"));
  const at::Tensor inv = GoldenComplex(Key("diag_inv.A"));
  // The golden metadata says these were computed in float32 then upcast, but the stored values
  // are the float64 formulas to the last bit (-0.5 - i·π·n and -0.5 - i·(N/π)(N/(2n+1) − 1)), so
  // the float64 path is compared tightly. The reference default (float32, at::kFloat here) is off
  // by float32 rounding: relative 1e-6 covers it (observed <= 6e-8).
  const double lin64 = RelErr(DiagonalInit("diag-lin", N, at::kDouble), lin);
  const double inv64 = RelErr(DiagonalInit("diag-inv", N, at::kDouble), inv);
  const double lin32 = RelErr(DiagonalInit("diag-lin", N), lin);
  const double inv32 = RelErr(DiagonalInit("diag-inv", N), inv);
  std::printf("N=%d diag rel err: lin f64 %.3g inv f64 %.3g lin f32 %.3g inv f32 %.3g\n", N, lin64,
              inv64, lin32, inv32);
  EXPECT_LE(lin64, 1e-12);
  EXPECT_LE(inv64, 1e-12);
  EXPECT_LE(lin32, 1e-6);
  EXPECT_LE(inv32, 1e-6);
}

INSTANTIATE_TEST_SUITE_P(GoldenSizes, HippoGoldenTest, ::testing::Values(8, 16, 64),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return "N" + std::to_string(info.param);
                         });

TEST(HippoTest, LegsPlusRankCorrectionIsHalfIdentityPlusSkew) {
  for (int N : {1, 2, 8, 64, 256}) {
    HippoMatrices h = HippoTransition("legs", N);
    const at::Tensor p = HippoRankCorrection("legs", N, 1, at::kDouble);
    const at::Tensor S = h.A + p.t().matmul(p) + 0.5 * at::eye(N, at::kDouble);
    EXPECT_LE(MaxAbs(S + S.t()), 1e-12 * MaxAbs(h.A)) << "N=" << N;
    // Entry formulas of spec §1.1.
    for (int n = 0; n < N; n += 7) {
      for (int k = 0; k < N; k += 5) {
        const double want = n > k    ? -std::sqrt(2.0 * n + 1) * std::sqrt(2.0 * k + 1)
                            : n == k ? -(n + 1.0)
                                     : 0.0;
        EXPECT_NEAR(h.A[n][k].item<double>(), want, 1e-12 * std::abs(want)) << n << "," << k;
      }
    }
  }
}

TEST(HippoTest, EveryMeasureIsNormalAfterRankCorrection) {
  for (const char* measure : {"legs", "legt", "fout"}) {
    for (int N : {4, 16, 64}) {
      const int rank = std::string(measure) == "legt" ? 2 : 1;
      HippoMatrices h = HippoTransition(measure, N);
      const at::Tensor p = HippoRankCorrection(measure, N, rank, at::kDouble);
      const at::Tensor AP = h.A + p.t().matmul(p);
      const double c = AP[0][0].item<double>();  // -1/2 (legs) or 0 (legt, fout)
      const at::Tensor S = AP - c * at::eye(N, at::kDouble);
      EXPECT_LE(MaxAbs(S + S.t()), 1e-12 * MaxAbs(h.A)) << measure << " N=" << N;
    }
  }
}

TEST(HippoTest, LegsN8Eigenvalues) {
  // Spec §1.1: LegS N=8 gives Λ = −0.5 − i·{19.8574, 5.3542, 1.9578, 0.4275}; kept half sorted
  // by Im ascending.
  const std::vector<double> want_imag = {-19.8574, -5.3542, -1.9578, -0.4275};
  for (at::ScalarType dtype : {at::kFloat, at::kDouble}) {
    for (const at::Tensor& w :
         {Nplr("legs", 8, 1, 2.0, dtype).W, DiagonalInit("diag-legs", 8, dtype)}) {
      ASSERT_EQ(w.numel(), 4);
      for (int j = 0; j < 4; ++j) {
        // float32 path: Re W = mean(diag(A + ppᵀ)) in float32 = -0.49999997 (as the reference).
        EXPECT_NEAR(at::real(w)[j].item<double>(), -0.5, 1e-7);
        EXPECT_NEAR(at::imag(w)[j].item<double>(), want_imag[j], 1e-4);
      }
    }
  }
}

// Vf = [V, conj V] is unitary and diagonalises A + pᵀp; B, p and A are recovered from the
// half-size factors, for every measure and both precisions.
TEST(HippoTest, NplrReconstructsTheHippoSystem) {
  for (const char* measure : {"legs", "legt", "fout"}) {
    for (at::ScalarType dtype : {at::kDouble, at::kFloat}) {
      for (int N : {4, 16, 64}) {
        SCOPED_TRACE(std::string(measure) + " N=" + std::to_string(N) +
                     (dtype == at::kFloat ? " float32" : " float64"));
        const int rank = std::string(measure) == "legt" ? 2 : 1;
        const double tol = dtype == at::kDouble ? 1e-12 : 1e-5;
        NplrResult r = Nplr(measure, N, rank, 2.0, dtype);
        HippoMatrices h = HippoTransition(measure, N);
        const at::Tensor p = HippoRankCorrection(measure, N, rank, at::kDouble);
        const at::Tensor Vf = FullBasis(r.V);
        EXPECT_LE(MaxAbs(Vf.conj().t().matmul(Vf) - at::eye(N, at::kComplexDouble)), tol);
        const at::Tensor AP = h.A + p.t().matmul(p);
        const at::Tensor AP_rec = 2 * at::real(r.V.matmul(at::diag(r.W)).matmul(r.V.conj().t()));
        EXPECT_LE(MaxAbs(AP_rec - AP), tol * MaxAbs(AP));
        EXPECT_LE(MaxAbs(2 * at::real(r.V.matmul(r.B_unclipped)) - h.B), tol * MaxAbs(h.B));
        EXPECT_LE(MaxAbs(2 * at::real(r.P.matmul(r.V.t())) - p), tol * MaxAbs(p));
        // A = Vf (diag(Wf) − Pfᵀ conj(Pf)) Vfᴴ.
        const at::Tensor Wf = at::cat({r.W, r.W.conj()});
        const at::Tensor Pf = at::cat({r.P, r.P.conj()}, 1);
        const at::Tensor A_rec =
            Vf.matmul(at::diag(Wf) - Pf.t().matmul(Pf.conj())).matmul(Vf.conj().t());
        EXPECT_LE(MaxAbs(A_rec - h.A), tol * MaxAbs(h.A));
        // Kept half: Im ascending and <= 0, Re constant.
        const at::Tensor im = at::imag(r.W);
        EXPECT_TRUE((im.slice(0, 1) >= im.slice(0, 0, -1)).all().item<bool>());
        EXPECT_LE(im.max().item<double>(), 1e-9);
        // Phase convention: every column's first non-negligible entry is real and positive.
        for (int j = 0; j < N / 2; ++j) {
          const at::Tensor col = r.V.select(1, j);
          const int64_t pivot = (col.abs() > 1e-10).nonzero()[0][0].item<int64_t>();
          EXPECT_EQ(at::imag(col[pivot]).item<double>(), 0.0) << "column " << j;
          EXPECT_GT(at::real(col[pivot]).item<double>(), 0.0) << "column " << j;
        }
      }
    }
  }
}

TEST(HippoTest, FourierEigenvaluesAndZeroModeEdgeCase) {
  const int N = 16;
  NplrResult r = Nplr("fourier", N, 1, 2.0, at::kDouble);
  // Eigenvalues ±iπk (k = 1..N/2-1) and a double zero; the kept half ends with 0, whose
  // eigenvector the reference sets to (e0 + i e1)/sqrt(2).
  for (int j = 0; j < N / 2; ++j) {
    EXPECT_NEAR(at::real(r.W)[j].item<double>(), 0.0, 1e-12);
    EXPECT_NEAR(at::imag(r.W)[j].item<double>(), -M_PI * (N / 2 - 1 - j), 1e-12);
  }
  const at::Tensor last = r.V.select(1, N / 2 - 1);
  EXPECT_EQ(at::real(last[0]).item<double>(), std::sqrt(0.5));
  EXPECT_EQ(at::imag(last[1]).item<double>(), std::sqrt(0.5));
  EXPECT_EQ(MaxAbs(last.slice(0, 2)), 0.0);
  // Rotation blocks: B~ and P~ are 1 with the pivot-real phase (|B~| = 1, never clipped).
  EXPECT_LE(MaxAbs(r.B.slice(0, 0, -1) - 1.0), 1e-12);
  EXPECT_LE(MaxAbs(r.P.slice(1, 0, -1) - 1.0), 1e-12);
}

TEST(HippoTest, ClipAndRankPadding) {
  NplrResult no_clip = Nplr("legs", 64, 1, std::numeric_limits<double>::infinity(), at::kDouble);
  EXPECT_TRUE(at::equal(no_clip.B, no_clip.B_unclipped));
  NplrResult clip1 = Nplr("legs", 64, 1, 1.0, at::kDouble);
  EXPECT_LE(MaxAbs(at::imag(clip1.B)), 1.0);
  EXPECT_TRUE(at::equal(clip1.B_unclipped, no_clip.B_unclipped));

  const at::Tensor p3 = HippoRankCorrection("legs", 8, 3, at::kDouble);
  ASSERT_EQ(p3.sizes(), (std::vector<int64_t>{3, 8}));
  EXPECT_EQ(MaxAbs(p3.slice(0, 1)), 0.0);
  NplrResult r3 = Nplr("legs", 8, 3, 2.0, at::kDouble);
  ASSERT_EQ(r3.P.sizes(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(MaxAbs(r3.P.slice(0, 1)), 0.0);
  EXPECT_TRUE(at::allclose(r3.W, Nplr("legs", 8, 1, 2.0, at::kDouble).W));

  // LegT rank 2: p0 on odd indices, p1 on even ones, scaled by 1/sqrt(2); A and B halved.
  const at::Tensor pt = HippoRankCorrection("legt", 4, 2, at::kDouble);
  const double s = std::sqrt(0.5);
  const at::Tensor want = at::tensor({0.0, std::sqrt(3.0) * s, 0.0, std::sqrt(7.0) * s, 1.0 * s,
                                      0.0, std::sqrt(5.0) * s, 0.0},
                                     at::kDouble)
                              .view({2, 4});
  EXPECT_LE(MaxAbs(pt - want), 1e-15);
  HippoMatrices legt = HippoTransition("legt", 4);
  EXPECT_DOUBLE_EQ(legt.A[0][0].item<double>(), -0.5);
  EXPECT_DOUBLE_EQ(legt.A[0][1].item<double>(), 0.5 * std::sqrt(3.0));  // -(-1)·R0·R1/2
  EXPECT_DOUBLE_EQ(legt.A[1][0].item<double>(), -0.5 * std::sqrt(3.0));
  EXPECT_DOUBLE_EQ(legt.B[2].item<double>(), 0.5 * std::sqrt(5.0));
}

TEST(HippoTest, DiagonalInitFormulas) {
  const int N = 16;
  const at::Tensor n = at::arange(N / 2, at::kDouble);
  auto expect_close = [](const at::Tensor& got, const at::Tensor& re, const at::Tensor& im) {
    EXPECT_LE(MaxAbs(at::real(got) - re), 1e-12 * std::max(1.0, MaxAbs(re)));
    EXPECT_LE(MaxAbs(at::imag(got) - im), 1e-12 * std::max(1.0, MaxAbs(im)));
  };
  const at::Tensor half = at::full({N / 2}, -0.5, at::kDouble);
  expect_close(DiagonalInit("diag-real", N, at::kDouble), -(n + 1), at::zeros_like(n));
  expect_close(DiagonalInit("diag-inv2", N, at::kDouble), half, -(N / M_PI) * (N / (n + 1) - 1));
  expect_close(DiagonalInit("diag-quad", N, at::kDouble), half, -(2 * n + 1).pow(2) / M_PI);
  expect_close(DiagonalInit("diag-linear", N, at::kDouble), half, -M_PI * n);
  // S4D-Lin mode 0 has Im exactly +0 (the reference computes 0 - imag).
  EXPECT_FALSE(std::signbit(at::imag(DiagonalInit("diag-lin", N))[0].item<double>()));
  for (const char* init : {"diag-lin", "diag-inv", "diag-real", "diag-legs"}) {
    const at::Tensor l = DiagonalInit(init, N);
    EXPECT_EQ(l.scalar_type(), at::kComplexDouble) << init;
    EXPECT_EQ(l.sizes(), (std::vector<int64_t>{N / 2})) << init;
  }
}

TEST(HippoTest, DplrInitAndCombinations) {
  const int N = 16;
  DplrParams lin = DplrInit("diag-lin", N, 2);
  ASSERT_EQ(lin.P.sizes(), (std::vector<int64_t>{2, N / 2}));
  EXPECT_EQ(MaxAbs(lin.P), 0.0);
  EXPECT_TRUE(at::equal(lin.B, at::ones({N / 2}, at::kComplexDouble)));
  EXPECT_TRUE(at::equal(lin.Lambda, DiagonalInit("diag-lin", N)));

  NplrResult nplr = Nplr("legs", N);
  DplrParams s4d_legs = DplrInit("diag-legs", N);
  // S4D-LegS takes Im from nplr but Re = -0.5 exactly (nplr's float32 mean gives -0.49999997).
  EXPECT_TRUE(at::equal(at::imag(s4d_legs.Lambda), at::imag(nplr.W)));
  EXPECT_TRUE(at::equal(at::real(s4d_legs.Lambda), at::full({N / 2}, -0.5, at::kDouble)));
  EXPECT_TRUE(at::equal(s4d_legs.B, nplr.B));  // clipped, unhalved
  EXPECT_EQ(MaxAbs(s4d_legs.P), 0.0);

  DplrParams s4_legs = DplrInit("legs", N);
  EXPECT_TRUE(at::equal(s4_legs.Lambda, nplr.W));
  EXPECT_TRUE(at::equal(s4_legs.P, nplr.P));
  EXPECT_TRUE(at::equal(s4_legs.B, nplr.B));
  DplrParams s4_legt = DplrInit("legt", N, 2);
  EXPECT_EQ(s4_legt.P.sizes(), (std::vector<int64_t>{2, N / 2}));

  DplrParams hippo = CombinationInit("hippo", N, 1, 4);
  ASSERT_EQ(hippo.Lambda.sizes(), (std::vector<int64_t>{4, N / 2}));
  ASSERT_EQ(hippo.P.sizes(), (std::vector<int64_t>{1, 4, N / 2}));
  ASSERT_EQ(hippo.B.sizes(), (std::vector<int64_t>{4, N / 2}));
  DplrParams fout = DplrInit("fout", N);
  for (int s = 0; s < 4; ++s) {
    const DplrParams& want = s < 2 ? s4_legs : fout;
    EXPECT_TRUE(at::equal(hippo.Lambda[s], want.Lambda)) << s;
    EXPECT_TRUE(at::equal(hippo.P.select(1, s), want.P)) << s;
    EXPECT_TRUE(at::equal(hippo.B[s], want.B)) << s;
  }
  DplrParams diag = CombinationInit("diag", N, 1, 2);
  EXPECT_TRUE(at::equal(diag.Lambda[0], DiagonalInit("diag-inv", N)));
  EXPECT_TRUE(at::equal(diag.Lambda[1], DiagonalInit("diag-lin", N)));
  EXPECT_EQ(CombinationInit("all", N, 1, 8).Lambda.size(0), 8);
  DplrParams single = CombinationInit("diag-inv", N, 1, 3);
  EXPECT_TRUE(at::equal(single.Lambda[2], DiagonalInit("diag-inv", N)));
}

void ExpectThrowsWith(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning '" << needle << "'";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(HippoTest, RejectsBadArguments) {
  ExpectThrowsWith([] { HippoTransition("lagt", 8); }, "unknown HiPPO measure 'lagt'");
  ExpectThrowsWith([] { HippoRankCorrection("legt", 8, 1); }, "legt needs rank >= 2");
  ExpectThrowsWith([] { Nplr("legs", 7); }, "must be even and >= 4, got 7");
  ExpectThrowsWith([] { Nplr("legs", 2); }, "must be even and >= 4, got 2");
  ExpectThrowsWith([] { Nplr("legs", 8, 1, -1.0); }, "B_clip must be >= 0");
  ExpectThrowsWith([] { Nplr("legs", 8, 1, 2.0, at::kHalf); }, "dtype must be Float");
  ExpectThrowsWith([] { DiagonalInit("diag", 8); }, "use CombinationInit");
  ExpectThrowsWith([] { DiagonalInit("diag-foo", 8); }, "unknown init 'diag-foo'");
  ExpectThrowsWith([] { DiagonalInit("lin", 8); }, "unknown init 'lin'");
  ExpectThrowsWith([] { DplrInit("dplr-lin", 8); }, "random P");
  ExpectThrowsWith([] { DplrInit("random", 8); }, "unknown HiPPO measure 'random'");
  ExpectThrowsWith([] { DplrInit("legs", 8, 0); }, "rank must be >= 1");
  ExpectThrowsWith([] { CombinationInit("hippo", 8, 1, 3); }, "multiple of the 2 inits");
}

}  // namespace
}  // namespace loom::models
