#include "tools/parity_s4_sgconv.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "models/hippo.h"
#include "models/s4.h"
#include "models/sgconv.h"
#include "models/ssm_kernel.h"
#include "tools/parity_layer_case.h"

namespace loom::parity {
namespace {

using models::S4Block;
using models::S4Options;
using models::SgConv;
using models::SgConvOptions;

const Json* Find(const Json& obj, const std::string& key) {
  const Json* v = obj.Find(key);
  return v == nullptr || v->is_null() ? nullptr : v;
}
int64_t IntOr(const Json& obj, const std::string& key, int64_t def) {
  const Json* v = Find(obj, key);
  return v == nullptr ? def : v->as_int64();
}
double DoubleOr(const Json& obj, const std::string& key, double def) {
  const Json* v = Find(obj, key);
  return v == nullptr ? def : v->as_double();
}
std::string StrOr(const Json& obj, const std::string& key, const std::string& def) {
  const Json* v = Find(obj, key);
  return v == nullptr ? def : v->as_string();
}
bool BoolOr(const Json& obj, const std::string& key, bool def) {
  const Json* v = Find(obj, key);
  return v == nullptr ? def : v->as_bool();
}

at::Tensor GetComplex(Case& c, const std::string& name) {
  return at::complex(c.Get(name + ".real"), c.Get(name + ".imag"));
}
// Both halves relative to the complex tensor's max |z|: a part that is zero in theory (e.g. Im of
// B·conj(P) for LegS) holds only rounding noise and has no scale of its own.
void CompareComplex(Case& c, const std::string& name, const at::Tensor& got) {
  const at::Tensor ref = GetComplex(c, name);
  const double scale = ref.numel() == 0 ? 0.0 : ref.abs().max().item<double>();
  c.Compare(name + ".real", at::real(got), scale);
  c.Compare(name + ".imag", at::imag(got), scale);
}

// Golden tensor `param.<prefix><name>` for Loom's `name`, rebuilding (..., 2) real views of
// complex parameters from their .real/.imag halves. Undefined if the file has neither.
at::Tensor GoldenParam(Case& c, const std::string& kind, const std::string& name) {
  if (c.Has(kind + name)) return c.Get(kind + name);
  if (c.Has(kind + name + ".real")) {
    return at::stack({c.Get(kind + name + ".real"), c.Get(kind + name + ".imag")}, -1);
  }
  return at::Tensor();
}

// Copies every golden parameter into `module` (by name; complex views rebuilt) and checks that
// the two sides have the same parameters. Loom may hold, as buffers, values the reference keeps
// as frozen parameters (`frozen`).
void LoadAllParams(Case& c, torch::nn::Module& module, const std::vector<std::string>& frozen = {}) {
  torch::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> targets;
  for (const auto& item : module.named_parameters()) targets[item.key()] = item.value();
  for (const std::string& name : frozen) {
    for (const auto& item : module.named_buffers()) {
      if (item.key() == name) targets[name] = item.value();
    }
  }
  size_t golden = 0;
  for (const std::string& full : c.Names("param.")) {
    if (absl::EndsWith(full, ".imag")) continue;
    ++golden;
  }
  size_t loaded = 0;
  for (auto& [name, target] : targets) {
    at::Tensor v = GoldenParam(c, "param.", name);
    if (!v.defined()) throw CaseError{absl::StrCat("golden file lacks parameter `", name, "`")};
    if (v.sizes() != target.sizes()) {
      throw CaseError{absl::StrCat("parameter `", name, "`: golden shape ", c10::str(v.sizes()),
                                   ", Loom shape ", c10::str(target.sizes()))};
    }
    target.copy_(v);
    ++loaded;
  }
  if (loaded != golden) {
    throw CaseError{absl::StrCat("golden file has ", golden, " parameters, Loom ", loaded)};
  }
}

// Forward (by `forward`), backward of sum(y * input.g); compares output.y, grad.x and every
// grad.param.* the file has (complex views split into .real/.imag).
void CompareForwardBackwardComplex(Case& c, torch::nn::Module& module,
                                   const std::function<at::Tensor(const at::Tensor&)>& forward) {
  at::Tensor x = c.Get("input.x").requires_grad_(true);
  at::Tensor y = forward(x);
  c.Compare("output.y", y.detach());
  std::vector<at::Tensor> inputs = {x};
  std::vector<std::string> names = {"x"};
  for (const auto& item : module.named_parameters()) {
    if (!item.value().requires_grad()) continue;
    inputs.push_back(item.value());
    names.push_back("param." + item.key());
  }
  auto grads = torch::autograd::grad({(y * c.Get("input.g")).sum()}, inputs, {}, false, false,
                                     /*allow_unused=*/true);
  int compared = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string g = "grad." + names[i];
    at::Tensor got = grads[i].defined() ? grads[i] : at::zeros_like(inputs[i]);
    if (c.Has(g)) {
      c.Compare(g, got);
      ++compared;
    } else if (c.Has(g + ".real")) {
      const double scale = GetComplex(c, g).abs().max().item<double>();
      c.Compare(g + ".real", got.select(-1, 0), scale);
      c.Compare(g + ".imag", got.select(-1, 1), scale);
      ++compared;
    }
  }
  if (compared == 0) throw CaseError{"no gradient of the file matched a Loom input or parameter"};
}

// ---- S4 / S4D (S4Block) --------------------------------------------------------------------

S4Options S4OptionsFromCase(const Case& c) {
  const Json& args = c.Config("layer_args");
  const Json& res = c.Config("resolved");
  S4Options o;
  models::SsmKernelOptions& k = o.kernel;
  k.d_model = c.Int("H");
  k.d_state = IntOr(args, "d_state", 64);
  k.channels = IntOr(args, "channels", 1);
  k.bidirectional = BoolOr(args, "bidirectional", false);
  k.n_ssm = IntOr(res, "n_ssm", IntOr(args, "n_ssm", 0));
  k.mode = StrOr(args, "mode", "nplr") == "diag" ? "diag" : "nplr";
  k.init = StrOr(args, "init", "legs");
  k.rank = IntOr(args, "rank", 1);
  k.disc = k.mode == "diag" ? StrOr(args, "disc", "zoh") : "zoh";
  k.dt_min = DoubleOr(args, "dt_min", 0.001);
  k.dt_max = DoubleOr(args, "dt_max", 0.1);
  k.dt_tie = BoolOr(args, "dt_tie", true);
  k.dt_transform = StrOr(args, "dt_transform", "exp");
  k.real_transform = StrOr(args, "real_transform", "exp");
  k.imag_transform = StrOr(args, "imag_transform", "none");
  k.l_max = IntOr(args, "l_max", 0);
  k.dtype = at::kDouble;
  o.final_act = StrOr(args, "final_act", "glu");
  if (o.final_act != "glu") o.final_act = "none";
  TORCH_CHECK(StrOr(args, "activation", "gelu") == "gelu", "only the GELU activation is ported");
  return o;
}

void CheckS4Block(Case& c) {
  c.set_relative(true);
  S4Block block(S4OptionsFromCase(c));
  models::SsmKernel& kernel = block.layer().kernel();
  auto* dplr = dynamic_cast<models::DplrSsmKernel*>(&kernel);
  LoadAllParams(c, block);
  if (dplr != nullptr) {
    torch::NoGradGuard no_grad;
    dplr->l_kernel.fill_(c.Get("buffer.layer.kernel.l_kernel").item<double>());
  }
  const int64_t L = c.Get("input.x").size(2);
  {
    torch::NoGradGuard no_grad;
    if (c.Has("aux.dt")) c.Compare("aux.dt", kernel.Dt());
    if (c.Has("aux.A.real")) CompareComplex(c, "aux.A", kernel.Lambda());
    // The kernel the layer uses: min(L, l_max) taps (a longer request would re-tune C-tilde).
    const int64_t l_max = kernel.options().l_max;
    c.Compare("output.kernel", kernel.Kernel(l_max > 0 ? std::min(L, l_max) : L));
  }
  at::Tensor y_ssm;
  CompareForwardBackwardComplex(c, block, [&](const at::Tensor& x) {
    return block.ForwardTransposed(x, &y_ssm);
  });
  c.Compare("output.y_ssm", y_ssm.detach());

  torch::NoGradGuard no_grad;
  const at::Tensor x = c.Get("input.x");
  for (const std::string mode : {"dense", "linear"}) {
    const std::string out = mode == "dense" ? "output.y_step" : "output.y_step_linear";
    if (!c.Has(out)) continue;
    block.SetupStep(mode);
    models::SsmStepState state = block.DefaultState(x.size(0));
    std::vector<at::Tensor> ys;
    for (int64_t t = 0; t < L; ++t) ys.push_back(block.Step(x.select(2, t), state));
    c.Compare(out, at::stack(ys, 2));
    const std::string final_state =
        mode == "dense" ? "aux.step.state_final" : "aux.step.state_final_linear";
    if (c.Has(final_state + ".real")) CompareComplex(c, final_state, state.s);
    if (mode == "dense" && dplr != nullptr && c.Has("aux.step.dA.real")) {
      auto [dA, dB] = dplr->DenseDiscreteSystem();
      CompareComplex(c, "aux.step.dA", dA);
      CompareComplex(c, "aux.step.dB", dB);
      CompareComplex(c, "aux.step.dC", dplr->RecoverC());
    }
  }
  // The C-tilde rewrite itself, from the raw C of an unperturbed case.
  if (dplr != nullptr && c.Has("aux.C_before_setup.real")) {
    const at::Tensor c_tilde = dplr->C.clone();
    dplr->C.copy_(at::stack({c.Get("aux.C_before_setup.real"), c.Get("aux.C_before_setup.imag")},
                            -1));
    const int64_t lk = dplr->kernel_length();
    dplr->l_kernel.fill_(0);
    dplr->SetupC(lk);
    c.Compare("param.layer.kernel.C.real", dplr->C.select(-1, 0));
    c.Compare("param.layer.kernel.C.imag", dplr->C.select(-1, 1));
    dplr->C.copy_(c_tilde);
  }
}

// models/s4/s4d.py: the same layer as S4D-Lin ZOH with B = 1, but A = -exp(log_A_real) +
// i·A_imag (the opposite imaginary sign), log_dt (H), D (H) and a Conv1d(k=1) output.
void CheckS4dMinimal(Case& c) {
  c.set_relative(true);
  const int64_t H = c.Int("H"), N = c.Int("d_state"), L = c.Get("input.x").size(2);
  S4Options o;
  o.kernel.d_model = H;
  o.kernel.d_state = N;
  o.kernel.mode = "diag";
  o.kernel.init = "diag-lin";
  o.kernel.disc = "zoh";
  o.kernel.dt_transform = "exp";
  o.kernel.l_max = L;
  o.kernel.dtype = at::kDouble;
  S4Block block(o);
  models::SsmKernel& k = block.layer().kernel();
  {
    torch::NoGradGuard no_grad;
    k.inv_dt.copy_(c.Get("param.kernel.log_dt").view({H, 1}));
    k.A_real.copy_(c.Get("param.kernel.log_A_real"));
    k.A_imag.copy_(-c.Get("param.kernel.A_imag"));
    k.B.zero_();
    k.B.select(-1, 0).fill_(1.0);
    k.C.copy_(GoldenParam(c, "param.", "kernel.C").unsqueeze(0));
    block.layer().D.copy_(c.Get("param.D").view({1, H}));
    block.output_linear().weight.copy_(c.Get("param.output_linear.0.weight").squeeze(-1));
    block.output_linear().bias.copy_(c.Get("param.output_linear.0.bias"));
    c.Compare("output.kernel", k.Kernel(L).squeeze(0));
  }
  at::Tensor x = c.Get("input.x").requires_grad_(true);
  at::Tensor y = block.ForwardTransposed(x);
  c.Compare("output.y", y.detach());
  auto g = torch::autograd::grad({(y * c.Get("input.g")).sum()},
                                 {x, k.inv_dt, k.A_real, k.A_imag, k.C, block.layer().D,
                                  block.output_linear().weight, block.output_linear().bias});
  c.Compare("grad.x", g[0]);
  c.Compare("grad.param.kernel.log_dt", g[1].view({H}));
  c.Compare("grad.param.kernel.log_A_real", g[2]);
  c.Compare("grad.param.kernel.A_imag", -g[3]);
  c.Compare("grad.param.kernel.C.real", g[4].squeeze(0).select(-1, 0));
  c.Compare("grad.param.kernel.C.imag", g[4].squeeze(0).select(-1, 1));
  c.Compare("grad.param.D", g[5].view({H}));
  c.Compare("grad.param.output_linear.0.weight", g[6].unsqueeze(-1));
  c.Compare("grad.param.output_linear.0.bias", g[7]);
}

// ---- SGConv --------------------------------------------------------------------------------

void CheckSgConv(Case& c) {
  c.set_relative(true);
  const Json& ctor = c.Config("ctor");
  SgConvOptions o;
  o.d_model = c.Int("H");
  o.l_max = IntOr(ctor, "l_max", 0);
  o.channels = IntOr(ctor, "channels", 1);
  o.bidirectional = BoolOr(ctor, "bidirectional", false);
  o.kernel_dim = IntOr(ctor, "kernel_dim", 64);
  o.n_scales = IntOr(ctor, "n_scales", 0);
  o.init_scale = IntOr(ctor, "init_scale", 0);
  o.decay_min = DoubleOr(ctor, "decay_min", 2.0);
  o.decay_max = DoubleOr(ctor, "decay_max", 2.0);
  o.mode = StrOr(ctor, "mode", "cat_randn");
  o.postact = StrOr(ctor, "postact", "none") == "glu" ? "glu" : "none";
  o.dtype = at::kDouble;
  TORCH_CHECK(StrOr(ctor, "activation", "gelu") == "gelu", "only the GELU activation is ported");
  SgConv conv(o);
  const Json& res = c.Config("resolved");
  if (Find(res, "num_scales") != nullptr && res.Find("num_scales")->as_int64() != conv.num_scales()) {
    throw CaseError{absl::StrCat("Loom derives ", conv.num_scales(), " scales, the reference ",
                                 res.Find("num_scales")->as_int64())};
  }
  {
    torch::NoGradGuard no_grad;
    c.Compare("buffer.multiplier", conv.multiplier);
  }
  LoadAllParams(c, conv, {"decay"});
  {
    torch::NoGradGuard no_grad;
    if (c.Bool("kernel_norm_initialised_from_these_params", false)) {
      c.Compare("buffer.kernel_norm",
                conv.RawKernel(conv.full_length()).norm(2, {-1}, /*keepdim=*/true));
    }
    conv.kernel_norm.copy_(c.Get("buffer.kernel_norm"));
  }
  at::Tensor y_conv, kernel;
  CompareForwardBackwardComplex(c, conv, [&](const at::Tensor& x) {
    return conv.ForwardTransposed(x, &y_conv, &kernel);
  });
  c.Compare("output.y_conv", y_conv.detach());
  c.Compare("output.kernel", kernel.detach());
}

// ---- HiPPO / NPLR initialisation -----------------------------------------------------------

// V, P̃ and B̃ are fixed by LAPACK only up to one ±1 per eigenvector (both sides make V[0,j]
// real); align Loom's signs to the golden V before comparing.
void CheckHippo(Case& c) {
  c.set_relative(true);
  const Json& ns = c.Config("Ns");
  for (size_t i = 0; i < ns.size(); ++i) {
    const int64_t N = ns[i].as_int64();
    const std::string p = absl::StrCat("N", N, ".");
    const models::HippoMatrices hippo = models::HippoTransition("legs", N);
    c.Compare(p + "hippo.A", hippo.A);
    c.Compare(p + "hippo.B", hippo.B);
    c.Compare(p + "hippo.P", models::HippoRankCorrection("legs", N, 1, at::kDouble));
    const models::NplrResult nplr = models::Nplr("legs", N, 1, 2.0, at::kDouble);
    CompareComplex(c, p + "nplr.W", nplr.W);
    const at::Tensor gold_v = GetComplex(c, p + "nplr.V");
    const at::Tensor sign = at::sign(at::real(nplr.V[0]) * at::real(gold_v[0]));  // (N/2)
    CompareComplex(c, p + "nplr.V", nplr.V * sign);
    CompareComplex(c, p + "nplr.P", nplr.P * sign);
    CompareComplex(c, p + "nplr.B_noclip", nplr.B_unclipped * sign);
    CompareComplex(c, p + "nplr.B_clip2", nplr.B * sign);
    c.Compare(p + "invariant.absB_noclip", nplr.B_unclipped.abs());
    c.Compare(p + "invariant.absP", nplr.P[0].abs());
    CompareComplex(c, p + "invariant.B_noclip_times_conjP", nplr.B_unclipped * nplr.P[0].conj());
    CompareComplex(c, p + "diag_lin.A", models::DiagonalInit("diag-lin", N, at::kDouble));
    CompareComplex(c, p + "diag_inv.A", models::DiagonalInit("diag-inv", N, at::kDouble));
  }
}

}  // namespace

void RegisterS4SgConvCheckers(CheckerRegistry* registry) {
  auto reg = [registry](const std::string& layer, std::function<void(Case&)> check) {
    registry->Register("layer:" + layer, [check](const CaseFile& f, const ParityOptions&) {
      return Run(f, kS4SgConvTolerance, check);
    });
  };
  reg("S4Block(FFTConv(SSMKernelDPLR))", CheckS4Block);
  reg("S4Block(FFTConv(SSMKernelDiag))", CheckS4Block);
  reg("S4D (minimal, models/s4/s4d.py)", CheckS4dMinimal);
  reg("SGConv GConv (gconv_standalone.py)", CheckSgConv);
  reg("HiPPO-LegS matrices and their NPLR/DPLR decomposition (init only)", CheckHippo);
}

}  // namespace loom::parity
