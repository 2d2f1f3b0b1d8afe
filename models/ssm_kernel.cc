#include "models/ssm_kernel.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>
#include <utility>

#include "kernels/ssm_kernels.h"
#include "models/hippo.h"

namespace loom::models {
namespace {

at::Tensor Complex(const at::Tensor& real_view) {
  return at::complex(real_view.select(-1, 0), real_view.select(-1, 1));
}

at::Tensor ConjFull(const at::Tensor& t) { return at::cat({t, t.conj()}, -1); }

at::ScalarType ComplexOf(at::ScalarType real) {
  return real == at::kDouble ? at::kComplexDouble : at::kComplexFloat;
}

void CheckTransform(const std::string& t, const char* field) {
  TORCH_CHECK(t == "exp" || t == "softplus" || t == "relu" || t == "sigmoid" || t == "none",
              field, " \"", t, "\" is not one of exp, softplus, relu, sigmoid, none");
}

}  // namespace

at::Tensor ParamTransform(const at::Tensor& x, const std::string& transform) {
  if (transform == "exp") return at::exp(x);
  if (transform == "softplus") return at::softplus(x);
  if (transform == "relu") return at::relu(x);
  if (transform == "sigmoid") return at::sigmoid(x);
  if (transform == "none") return x;
  TORCH_CHECK(false, "unknown parameter transform \"", transform, "\"");
}

at::Tensor InverseParamTransform(const at::Tensor& y, const std::string& transform) {
  if (transform == "exp") return at::log(y);
  if (transform == "softplus") return at::log(at::exp(y) - 1);
  if (transform == "relu") return y;
  if (transform == "sigmoid") return at::logit(y);
  if (transform == "none") return y;
  TORCH_CHECK(false, "unknown parameter transform \"", transform, "\"");
}

SsmKernel::SsmKernel(const SsmKernelOptions& options) : o_(options) {
  H_ = o_.d_model;
  TORCH_CHECK(H_ > 0, "SSM kernel: d_model must be positive, got ", H_);
  TORCH_CHECK(o_.d_state >= 2 && o_.d_state % 2 == 0, "SSM kernel: d_state must be even and >= 2, "
              "got ", o_.d_state);
  N_ = o_.d_state / 2;
  S_ = o_.n_ssm > 0 ? o_.n_ssm : H_;
  TORCH_CHECK(H_ % S_ == 0, "SSM kernel: n_ssm ", S_, " must divide d_model ", H_);
  TORCH_CHECK(o_.channels >= 1, "SSM kernel: channels must be >= 1, got ", o_.channels);
  TORCH_CHECK(o_.dt_min > 0 && o_.dt_max >= o_.dt_min, "SSM kernel: need 0 < dt_min <= dt_max, got ",
              o_.dt_min, ", ", o_.dt_max);
  TORCH_CHECK(o_.dtype == at::kFloat || o_.dtype == at::kDouble,
              "SSM kernel: parameters must be float32 or float64");
  CheckTransform(o_.dt_transform, "dt_transform");
  CheckTransform(o_.real_transform, "real_transform");
  CheckTransform(o_.imag_transform, "imag_transform");

  // dt: log-uniform in [dt_min, dt_max), stored through the inverse of its transform.
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  at::Tensor log_dt = at::rand(o_.dt_tie ? std::vector<int64_t>{H_, 1} : std::vector<int64_t>{H_, N_},
                               f64) *
                          (std::log(o_.dt_max) - std::log(o_.dt_min)) +
                      std::log(o_.dt_min);
  at::Tensor inv = o_.dt_transform == "exp" ? log_dt
                                            : InverseParamTransform(at::exp(log_dt), o_.dt_transform);
  const DplrParams init = CombinationInit(o_.init, o_.d_state, o_.rank, S_, at::kFloat);
  const at::Tensor lambda = init.Lambda.to(at::kComplexDouble);  // (S, N')
  at::Tensor c = at::randn({channels_total(), H_, N_}, f64.dtype(at::kComplexDouble));
  const auto pt = at::TensorOptions().dtype(o_.dtype);
  inv_dt = register_parameter("inv_dt", inv.to(pt));
  A_real = register_parameter(
      "A_real",
      InverseParamTransform(at::clamp_min(-at::real(lambda), 1e-4), o_.real_transform).to(pt));
  A_imag = register_parameter(
      "A_imag",
      InverseParamTransform(at::clamp_min(-at::imag(lambda), 1e-4), o_.imag_transform).to(pt));
  B = register_parameter("B", at::view_as_real(init.B.to(at::kComplexDouble).unsqueeze(0)).to(pt));
  C = register_parameter("C", at::view_as_real(c).to(pt));
}

std::vector<ParamOptimOverride> SsmKernel::OptimOverrides() const {
  std::vector<ParamOptimOverride> out = {
      {"inv_dt", inv_dt, o_.lr_dt, o_.wd_dt}, {"A_real", A_real, o_.lr_A, o_.wd_A},
      {"A_imag", A_imag, o_.lr_A, o_.wd_A},   {"B", B, o_.lr_B, o_.wd_B},
      {"C", C, o_.lr_C, std::nullopt}};
  if (auto* dplr = dynamic_cast<const DplrSsmKernel*>(this)) {
    out.push_back({"P", dplr->P, o_.lr_A, o_.wd_A});
  }
  return out;
}

at::Tensor SsmKernel::Dt() const { return ParamTransform(inv_dt, o_.dt_transform); }

at::Tensor SsmKernel::RepeatToH(const at::Tensor& t, int64_t axis) const {
  // Copy h mod S serves row h (einops '(v t)'): tile the S copies H/S times along `axis`.
  if (S_ == H_) return t;
  std::vector<int64_t> reps(t.dim(), 1);
  reps[axis] = H_ / S_;
  return t.repeat(reps);
}

at::Tensor SsmKernel::Lambda() const {
  at::Tensor re = -ParamTransform(A_real, o_.real_transform);
  at::Tensor im = -ParamTransform(A_imag, o_.imag_transform);
  return RepeatToH(at::complex(re, im), 0);
}

at::Tensor SsmKernel::BComplex() const { return RepeatToH(Complex(B), 1); }
at::Tensor SsmKernel::CComplex() const { return Complex(C); }

// ---- S4D -----------------------------------------------------------------------------------

DiagSsmKernel::DiagSsmKernel(const SsmKernelOptions& options) : SsmKernel(options) {
  TORCH_CHECK(o_.disc == "zoh" || o_.disc == "bilinear", "S4D: disc \"", o_.disc,
              "\" is not zoh or bilinear");
}

at::Tensor DiagSsmKernel::Kernel(int64_t L) {
  const at::Tensor dt = Dt();
  const at::Tensor A = Lambda();
  const at::Tensor dtA = dt * A;
  at::Tensor W = BComplex() * CComplex();  // (C_k, H, N')
  at::Tensor x;
  if (o_.disc == "zoh") {
    W = W * (at::exp(dtA) - 1) / A;
    x = dtA;
  } else {
    W = W / (1 - dtA / 2) * dt;
    x = at::log((1 + dtA / 2) / (1 - dtA / 2));
  }
  return kernels::VandermondeRealSum(W, x, L);
}

void DiagSsmKernel::SetupStep(const std::string& mode) {
  TORCH_CHECK(mode == "dense" || mode == "diagonal", "S4D step mode \"", mode,
              "\" is not supported (S4D steps its diagonal state)");
  TORCH_CHECK(!o_.bidirectional, "a bidirectional S4D layer cannot be stepped");
  torch::NoGradGuard no_grad;
  const at::Tensor dt = Dt();
  const at::Tensor A = Lambda();
  const at::Tensor dtA = dt * A;
  const at::Tensor b = BComplex().squeeze(0);
  if (o_.disc == "zoh") {
    dA_ = at::exp(dtA);
    dB_ = b * (at::exp(dtA) - 1) / A;
  } else {
    dA_ = (1 + dtA / 2) / (1 - dtA / 2);
    dB_ = b / (1 - dtA / 2) * dt;
  }
  dC_ = CComplex();
}

SsmStepState DiagSsmKernel::DefaultState(int64_t batch) const {
  return {at::zeros({batch, H_, N_}, C.options().dtype(ComplexOf(C.scalar_type())))};
}

at::Tensor DiagSsmKernel::Step(const at::Tensor& u, SsmStepState& state) {
  TORCH_CHECK(dA_.defined(), "S4D Step called before SetupStep");
  state.s = dA_ * state.s + dB_ * u.unsqueeze(-1);
  // (C,H,N') x (B,H,N') -> (B,C,H)
  return 2 * at::real((dC_.unsqueeze(0) * state.s.unsqueeze(1)).sum(-1));
}

// ---- S4 (DPLR) -----------------------------------------------------------------------------

DplrSsmKernel::DplrSsmKernel(const SsmKernelOptions& options) : SsmKernel(options) {
  TORCH_CHECK(o_.rank >= 1, "S4: rank must be >= 1, got ", o_.rank);
  TORCH_CHECK(o_.dt_tie, "S4 (DPLR) needs a tied dt (one per feature)");
  const DplrParams init = CombinationInit(o_.init, o_.d_state, o_.rank, S_, at::kFloat);
  P = register_parameter("P", at::view_as_real(init.P.to(at::kComplexDouble)).to(o_.dtype));
  l_kernel = register_buffer("l_kernel", at::zeros({}, at::kLong));
  if (o_.l_max > 0) SetupC(o_.l_max);
}

at::Tensor DplrSsmKernel::PComplex() const { return RepeatToH(Complex(P), 1); }

std::pair<at::Tensor, at::Tensor> DplrSsmKernel::DenseDiscreteSystem() const {
  const at::Tensor dt = Dt().view({H_, 1, 1});
  const at::Tensor lf = ConjFull(Lambda());       // (H, 2N')
  const at::Tensor pf = ConjFull(PComplex());     // (R, H, 2N')
  const at::Tensor A = at::diag_embed(lf) - at::einsum("rhi,rhj->hij", {pf, pf.conj()});
  const at::Tensor I = at::eye(2 * N_, lf.options());
  const at::Tensor m1 = I - dt / 2 * A;
  const at::Tensor dA = at::linalg_solve(m1, I + dt / 2 * A);
  const at::Tensor bf = ConjFull(BComplex().squeeze(0));  // (H, 2N')
  const at::Tensor dB = at::linalg_solve(m1, (dt.view({H_, 1}) * bf).unsqueeze(-1)).squeeze(-1);
  return {dA, dB};
}

void DplrSsmKernel::SetupC(int64_t L) {
  torch::NoGradGuard no_grad;
  const int64_t lk = l_kernel.item<int64_t>();
  bool double_length = false;
  int64_t power = L;
  if (lk == 0) {
    TORCH_CHECK(L > 0, "S4: kernel length must be positive, got ", L);
  } else if (L > lk) {
    double_length = true;
    power = lk;
  } else {
    return;
  }
  const at::Tensor dA = DenseDiscreteSystem().first;
  const at::Tensor dA_L = at::linalg_matrix_power(dA, power);
  const at::Tensor cf = ConjFull(CComplex());  // (C_k, H, 2N')
  at::Tensor prod = at::einsum("hnm,chn->chm", {dA_L, cf});
  if (double_length) prod = -prod;
  const at::Tensor c_tilde = (cf - prod).narrow(-1, 0, N_);
  C.copy_(at::view_as_real(c_tilde.resolve_conj()));
  l_kernel.fill_(double_length ? 2 * lk : lk + L);
}

at::Tensor DplrSsmKernel::RecoverC() const {
  torch::NoGradGuard no_grad;
  const at::Tensor cf = ConjFull(CComplex());
  const int64_t lk = l_kernel.item<int64_t>();
  if (lk == 0) return cf;
  const at::Tensor dA = DenseDiscreteSystem().first;
  const at::Tensor I = at::eye(2 * N_, dA.options());
  const at::Tensor m = I - at::linalg_matrix_power(dA, lk).transpose(-1, -2);
  return at::linalg_solve(m.unsqueeze(0), cf.unsqueeze(-1)).squeeze(-1);
}

at::Tensor DplrSsmKernel::Kernel(int64_t L) {
  TORCH_CHECK(L > 0, "S4: kernel length must be positive, got ", L);
  if (l_kernel.item<int64_t>() == 0) SetupC(o_.l_max > 0 ? o_.l_max : L);
  while (L > l_kernel.item<int64_t>()) SetupC(L);
  const int64_t lk = l_kernel.item<int64_t>();
  const int64_t ck = channels_total(), R = o_.rank;

  const at::Tensor dt = Dt();            // (H, 1)
  const at::Tensor w = Lambda() * dt;    // (H, N')
  const at::Tensor p = PComplex();       // (R, H, N')
  const at::Tensor bc = at::cat({BComplex(), p}, 0);               // (1+R, H, N')
  const at::Tensor cc = at::cat({CComplex(), p.conj()}, 0);        // (C_k+R, H, N')
  const at::Tensor v = bc.unsqueeze(1) * cc.unsqueeze(0) * dt;    // (1+R, C_k+R, H, N')

  // Nodes z_k = 2(1-ω_k)/(1+ω_k) = 2i tan(πk/Lk) and the bilinear factor 2/(1+ω_k) =
  // 1 + i tan(πk/Lk), in closed form. The Nyquist node (ω = -1, Lk even) is the limit z -> ∞:
  // Lk-th bin = Σ_n Re v00 (spec §1.10), so no inf·0 can arise.
  const bool has_nyquist = lk % 2 == 0;
  const int64_t nodes = lk / 2 + 1 - (has_nyquist ? 1 : 0);
  const at::Tensor t = at::tan(at::arange(nodes, at::TensorOptions().dtype(at::kDouble)) *
                               (M_PI / static_cast<double>(lk)));
  const at::ScalarType cdt = v.scalar_type();
  const at::Tensor z = at::complex(at::zeros_like(t), 2 * t).to(cdt);
  const at::Tensor corr = at::complex(at::ones_like(t), t).to(cdt);

  const int64_t rows = 1 + R, cols = ck + R;
  at::Tensor r = kernels::CauchyConjugateSum(v.reshape({rows * cols, H_, N_}), z, w)
                     .view({rows, cols, H_, nodes});
  const at::Tensor r00 = r.narrow(0, 0, 1).narrow(1, 0, ck);
  const at::Tensor r01 = r.narrow(0, 0, 1).narrow(1, ck, R);
  const at::Tensor r10 = r.narrow(0, 1, R).narrow(1, 0, ck);
  const at::Tensor r11 = r.narrow(0, 1, R).narrow(1, ck, R);
  at::Tensor kf;
  if (R == 1) {
    kf = r00 - r01 * r10 / (1 + r11);
  } else {
    const at::Tensor eye = at::eye(R, r11.options());
    const at::Tensor inv = at::linalg_inv(eye + r11.permute({2, 3, 0, 1})).permute({2, 3, 0, 1});
    kf = r00 - at::einsum("ijhk,jlhk,lmhk->imhk", {r01, inv, r10});
  }
  kf = kf.squeeze(0) * corr;  // (C_k, H, nodes)
  if (has_nyquist) {
    const at::Tensor nyq = at::real(v.narrow(0, 0, 1).narrow(1, 0, ck).squeeze(0)).sum(-1);
    kf = at::cat({kf, at::complex(nyq, at::zeros_like(nyq)).unsqueeze(-1)}, -1);
  }
  return at::fft_irfft(kf, lk, -1).narrow(-1, 0, L);
}

void DplrSsmKernel::SetupStep(const std::string& mode) {
  TORCH_CHECK(mode == "dense" || mode == "linear", "S4 step mode \"", mode,
              "\" is not dense or linear");
  TORCH_CHECK(!o_.bidirectional, "a bidirectional S4 layer cannot be stepped");
  torch::NoGradGuard no_grad;
  step_mode_ = mode;
  const at::Tensor c_full = RecoverC();  // (C, H, 2N')
  if (mode == "dense") {
    std::tie(dA_, dB_) = DenseDiscreteSystem();
    dC_ = c_full;
    return;
  }
  const at::Tensor dt = Dt();  // (H, 1)
  const at::Tensor A = Lambda();
  lin_P_ = PComplex();
  lin_Q_ = lin_P_.conj();
  lin_D_ = (2.0 / dt - A).reciprocal();
  lin_E_ = 2.0 / dt + A;
  const int64_t R = o_.rank;
  const at::Tensor m = at::eye(R, dt.options()) +
                       2 * at::real(at::einsum("rhn,hn,shn->hrs", {lin_Q_, lin_D_, lin_P_}));
  lin_R_ = at::linalg_solve(m.to(lin_D_.scalar_type()), (lin_Q_ * lin_D_).permute({1, 0, 2}))
               .permute({1, 0, 2});  // (R, H, N')
  lin_B_ = BComplex().squeeze(0);    // (H, N')
  lin_C_ = c_full.narrow(-1, 0, N_);
}

SsmStepState DplrSsmKernel::DefaultState(int64_t batch) const {
  const int64_t n = step_mode_ == "linear" ? N_ : 2 * N_;
  return {at::zeros({batch, H_, n}, C.options().dtype(ComplexOf(C.scalar_type())))};
}

at::Tensor DplrSsmKernel::Step(const at::Tensor& u, SsmStepState& state) {
  TORCH_CHECK(!step_mode_.empty(), "S4 Step called before SetupStep");
  if (step_mode_ == "dense") {
    state.s = at::matmul(dA_, state.s.unsqueeze(-1)).squeeze(-1) + dB_ * u.unsqueeze(-1);
    return at::real((dC_.unsqueeze(0) * state.s.unsqueeze(1)).sum(-1));
  }
  // <a, s> = 2 Re Σ_n a_n s_n pairs a (R,H,N') with s (B,H,N') into (B,R,H).
  auto inner = [](const at::Tensor& a, const at::Tensor& s) {
    return 2 * at::real((a.unsqueeze(0) * s.unsqueeze(1)).sum(-1));
  };
  auto low_rank = [&](const at::Tensor& coeff) {  // Σ_r P_r coeff_r: (B,R,H) -> (B,H,N')
    return (lin_P_.unsqueeze(0) * coeff.unsqueeze(-1)).sum(1);
  };
  at::Tensor s1 = lin_E_ * state.s - low_rank(inner(lin_Q_, state.s)) +
                  2 * lin_B_ * u.unsqueeze(-1);
  state.s = lin_D_ * (s1 - low_rank(inner(lin_R_, s1)));
  return 2 * at::real((lin_C_.unsqueeze(0) * state.s.unsqueeze(1)).sum(-1));
}

std::shared_ptr<SsmKernel> MakeSsmKernel(const SsmKernelOptions& options) {
  if (options.mode == "diag") return std::make_shared<DiagSsmKernel>(options);
  if (options.mode == "nplr" || options.mode == "dplr") {
    return std::make_shared<DplrSsmKernel>(options);
  }
  TORCH_CHECK(false, "SSM kernel mode \"", options.mode, "\" is not diag, nplr or dplr");
}

}  // namespace loom::models
