// The convolution kernels of S4 (diagonal plus low rank, "DPLR"/"NPLR") and S4D (diagonal) state
// space layers, their recurrent (step) form, and how their parameters are optimised
// (S4 spec §1.2-§1.5, §1.8, §1.9; reference state-spaces/s4@e757cef `SSMKernelDiag`,
// `SSMKernelDPLR`).
//
//   SsmKernelOptions o;
//   o.d_model = 256; o.d_state = 64; o.mode = "nplr"; o.init = "legs"; o.l_max = 1024;
//   auto kernel = MakeSsmKernel(o);               // DplrSsmKernel or DiagSsmKernel
//   at::Tensor k = kernel->Kernel(1024);          // (channels_total, H, 1024), real
//   kernel->SetupStep("dense");                   // discretise once ...
//   at::Tensor y = kernel->Step(u, state);        // ... then O(N^2) (dense) or O(N) per token
//
// Parameters and names follow the reference so that its checkpoints and golden files map one to
// one: `inv_dt` (H,1), `A_real`, `A_imag` (S,N'), `B` (1,S,N',2), `C` (C_k,H,N',2), `P`
// (R,S,N',2) — complex values as real (…,2) views, N' = d_state/2, S = n_ssm (row h uses copy
// h mod S), C_k = channels (x2 if bidirectional). Λ = −f(A_real) − i g(A_imag), dt = t(inv_dt).
//
// DPLR holds C̃ = C (I − Ā^Lk) (the "C-tilde" trick) and `l_kernel` = Lk as state; the
// constructor tunes C̃ to l_max (the reference does it on the first forward), and a longer call
// doubles Lk (C̃ ← C̃ (I + Ā^Lk)) under no_grad, as the reference.
#ifndef LOOM_MODELS_SSM_KERNEL_H_
#define LOOM_MODELS_SSM_KERNEL_H_

#include <torch/nn/module.h>

#include "models/layers.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace loom::models {

struct SsmKernelOptions {
  int64_t d_model = 0;            // H
  int64_t d_state = 64;           // N (complex state N/2 after conjugate symmetry)
  int64_t channels = 1;           // outputs per feature (before doubling for bidirectional)
  bool bidirectional = false;
  int64_t n_ssm = 0;              // S; 0 means H (independent copies)
  std::string mode = "nplr";      // "nplr" / "dplr" (S4) or "diag" (S4D)
  std::string init = "legs";      // see models/hippo.h (legs, legt, fout, diag-lin, diag-inv, ...)
  int64_t rank = 1;               // DPLR low-rank size R
  std::string disc = "zoh";       // S4D: "zoh" or "bilinear" (DPLR is always bilinear)
  double dt_min = 0.001, dt_max = 0.1;
  bool dt_tie = true;             // dt (H,1); false: (H,N') (S4D only)
  std::string dt_transform = "exp";     // exp | softplus | relu | sigmoid | none
  std::string real_transform = "exp";   // for A_real
  std::string imag_transform = "none";  // for A_imag
  int64_t l_max = 0;              // kernel length to tune C̃ to; 0: the first call's length
  // Optimizer settings of the kernel parameters (spec §1.9); unset = the global value.
  std::optional<double> lr_dt, lr_A, lr_B, lr_C, wd_dt, wd_A, wd_B;
  at::ScalarType dtype = at::kFloat;  // parameter dtype (float32 or float64)
};

// Mutable state of the recurrent mode: (batch, H, state) complex.
struct SsmStepState {
  at::Tensor s;
};

class SsmKernel : public torch::nn::Module {
 public:
  explicit SsmKernel(const SsmKernelOptions& options);

  // (channels_total, H, L) real kernel. channels_total = channels x (2 if bidirectional).
  virtual at::Tensor Kernel(int64_t L) = 0;

  // Discretises once for stepping; `mode` is "dense" (DPLR default) or "linear" (DPLR O(N));
  // S4D has one mode. Must be called again after the parameters change.
  virtual void SetupStep(const std::string& mode) = 0;
  virtual SsmStepState DefaultState(int64_t batch) const = 0;
  // u: (batch, H) -> (batch, channels, H); advances `state`. Causal kernels only.
  virtual at::Tensor Step(const at::Tensor& u, SsmStepState& state) = 0;

  std::vector<ParamOptimOverride> OptimOverrides() const;
  const SsmKernelOptions& options() const { return o_; }
  int64_t channels_total() const { return o_.channels * (o_.bidirectional ? 2 : 1); }

  at::Tensor inv_dt, A_real, A_imag, B, C;

  at::Tensor Dt() const;                // (H,1) or (H,N') real
  at::Tensor Lambda() const;            // (H,N') complex (copies repeated to H rows)
  at::Tensor BComplex() const;          // (1,H,N') complex
  at::Tensor CComplex() const;          // (C_k,H,N') complex

 protected:
  at::Tensor RepeatToH(const at::Tensor& t, int64_t axis) const;

  SsmKernelOptions o_;
  int64_t H_, N_, S_;  // N_ = complex state size (d_state / 2)
};

// S4D: A = diag(Λ); kernel by a Vandermonde sum (ZOH or bilinear).
class DiagSsmKernel : public SsmKernel {
 public:
  explicit DiagSsmKernel(const SsmKernelOptions& options);
  at::Tensor Kernel(int64_t L) override;
  void SetupStep(const std::string& mode) override;
  SsmStepState DefaultState(int64_t batch) const override;
  at::Tensor Step(const at::Tensor& u, SsmStepState& state) override;

 private:
  at::Tensor dA_, dB_, dC_;  // step mode: (H,N'), (H,N'), (C,H,N')
};

// S4: A = diag(Λ) − P Pᴴ, bilinear; kernel by Cauchy sums + Woodbury at the Lk-th roots of unity.
class DplrSsmKernel : public SsmKernel {
 public:
  explicit DplrSsmKernel(const SsmKernelOptions& options);
  at::Tensor Kernel(int64_t L) override;
  void SetupStep(const std::string& mode) override;
  SsmStepState DefaultState(int64_t batch) const override;
  at::Tensor Step(const at::Tensor& u, SsmStepState& state) override;

  int64_t kernel_length() const { return l_kernel.item<int64_t>(); }
  // Tunes C̃ to length L: from raw C when l_kernel is 0, else doubles until >= L (no_grad).
  void SetupC(int64_t L);
  // Discrete dense system over the full 2N' (conjugate-completed) state:
  // dA (H,2N',2N') = (I − dt/2 A)⁻¹(I + dt/2 A), dB (H,2N') = (I − dt/2 A)⁻¹ dt [B, conj B].
  std::pair<at::Tensor, at::Tensor> DenseDiscreteSystem() const;
  // C recovered from C̃ over the full state, (C,H,2N'): solves (I − Ā^Lk)ᵀ Cᵀ = [C̃, conj C̃]ᵀ.
  at::Tensor RecoverC() const;

  at::Tensor P;
  at::Tensor l_kernel;  // int64 scalar buffer

 private:
  at::Tensor PComplex() const;  // (R,H,N')
  std::string step_mode_;
  at::Tensor dA_, dB_, dC_;               // dense step
  at::Tensor lin_D_, lin_E_, lin_R_, lin_P_, lin_Q_, lin_B_, lin_C_;  // linear step
};

std::shared_ptr<SsmKernel> MakeSsmKernel(const SsmKernelOptions& options);

// param_transform / inv_transform of the reference: exp, softplus, relu, sigmoid, none.
at::Tensor ParamTransform(const at::Tensor& x, const std::string& transform);
at::Tensor InverseParamTransform(const at::Tensor& y, const std::string& transform);

}  // namespace loom::models

#endif  // LOOM_MODELS_SSM_KERNEL_H_
