#include "tools/parity_structured_ffn.h"

#include <ATen/Functions.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "core/alpha_schedule.h"
#include "core/json.h"
#include "core/lr_schedule.h"
#include "models/ffn.h"
#include "models/layers.h"
#include "models/structured_linear.h"

namespace loom::parity {
namespace {

using models::Projection;
using models::StructuredLinear;

// Raised for malformed cases; becomes a FAIL line with the message.
struct CaseError {
  std::string message;
};

at::Tensor ToTensor(const SafetensorsTensor& t) {
  at::ScalarType type;
  size_t size;
  if (t.dtype == "F64") {
    type = at::kDouble;
    size = 8;
  } else if (t.dtype == "F32") {
    type = at::kFloat;
    size = 4;
  } else if (t.dtype == "I64") {
    type = at::kLong;
    size = 8;
  } else if (t.dtype == "I32") {
    type = at::kInt;
    size = 4;
  } else {
    throw CaseError{absl::StrCat("tensor ", t.name, " has unsupported dtype ", t.dtype)};
  }
  at::Tensor out = at::empty(t.shape, at::TensorOptions().dtype(type));
  if (static_cast<size_t>(out.numel()) * size != t.data.size()) {
    throw CaseError{absl::StrCat("tensor ", t.name, " has ", t.data.size(), " bytes for shape")};
  }
  std::memcpy(out.data_ptr(), t.data.data(), t.data.size());
  return type == at::kFloat ? out.to(at::kDouble) : out;
}

class Case {
 public:
  explicit Case(const CaseFile& file) : file_(file), st_(*file.safetensors) {
    auto it = st_.metadata.find("config");
    if (it == st_.metadata.end()) throw CaseError{"no `config` in __metadata__"};
    auto parsed = Json::Parse(it->second);
    if (!parsed.ok()) throw CaseError{absl::StrCat("bad config JSON: ", parsed.status().message())};
    config_ = *parsed;
  }

  bool Has(const std::string& name) const { return st_.Find(name) != nullptr; }
  at::Tensor Get(const std::string& name) const {
    const SafetensorsTensor* t = st_.Find(name);
    if (t == nullptr) throw CaseError{absl::StrCat("missing tensor `", name, "`")};
    return ToTensor(*t);
  }
  const Json& Config(const std::string& key) const {
    const Json* v = config_.Find(key);
    if (v == nullptr) throw CaseError{absl::StrCat("config lacks `", key, "`")};
    return *v;
  }
  int64_t Int(const std::string& key) const { return Config(key).as_int64(); }
  bool Bool(const std::string& key, bool def) const {
    const Json* v = config_.Find(key);
    return v == nullptr ? def : v->as_bool();
  }
  std::string Str(const std::string& key, const std::string& def) const {
    const Json* v = config_.Find(key);
    return v == nullptr ? def : v->as_string();
  }
  std::vector<std::string> Names(const std::string& prefix) const {
    std::vector<std::string> out;
    for (const auto& t : st_.tensors) {
      if (absl::StartsWith(t.name, prefix)) out.push_back(t.name);
    }
    return out;
  }

  // Records the max error of `got` against tensor `name`.
  void Compare(const std::string& name, const at::Tensor& got) {
    at::Tensor ref = Get(name);
    if (!got.defined()) {
      failures_.push_back(absl::StrCat(name, ": not computed"));
      return;
    }
    if (got.sizes() != ref.sizes()) {
      failures_.push_back(absl::StrCat(name, ": shape ", c10::str(got.sizes()), " vs ",
                                       c10::str(ref.sizes())));
      return;
    }
    const double err = (got.to(at::kDouble) - ref).abs().max().item<double>();
    const double scale = std::max(1.0, ref.abs().max().item<double>());
    max_err_ = std::max(max_err_, err / scale);
    ++compared_;
    if (!(err <= kStructuredFfnTolerance * scale)) {
      failures_.push_back(absl::StrFormat("%s: max err %.3g", name, err));
    }
  }

  CaseResult Result(const std::string& what) const {
    CaseResult r;
    r.file = file_.path;
    r.description = what;
    if (compared_ == 0 && failures_.empty()) {
      r.pass = false;
      r.detail = "nothing was compared";
    } else if (failures_.empty()) {
      r.pass = true;
      r.detail = absl::StrFormat("max_err=%.2e (%d tensors)", max_err_, compared_);
    } else {
      r.pass = false;
      r.detail = absl::StrCat(failures_.size(), " mismatch(es): ", failures_.front());
    }
    return r;
  }

 private:
  const CaseFile& file_;
  const SafetensorsFile& st_;
  Json config_;
  std::vector<std::string> failures_;
  double max_err_ = 0;
  int compared_ = 0;
};

// Copies every `param.<prefix><name>` into the module's parameter `<name>`; both sides must
// have exactly the same names.
void LoadParams(Case& c, torch::nn::Module& module, const std::string& prefix = "") {
  std::map<std::string, at::Tensor> params;
  for (const auto& item : module.named_parameters()) params[item.key()] = item.value();
  at::NoGradGuard no_grad;
  size_t loaded = 0;
  for (const std::string& full : c.Names("param." + prefix)) {
    const std::string name = full.substr(std::strlen("param.") + prefix.size());
    auto it = params.find(name);
    if (it == params.end()) throw CaseError{absl::StrCat("Loom has no parameter `", name, "`")};
    at::Tensor v = c.Get(full);
    if (v.sizes() != it->second.sizes()) {
      throw CaseError{absl::StrCat("parameter `", name, "`: golden shape ", c10::str(v.sizes()),
                                   ", Loom shape ", c10::str(it->second.sizes()))};
    }
    it->second.copy_(v);
    ++loaded;
  }
  if (loaded != params.size()) {
    throw CaseError{absl::StrCat("golden file sets ", loaded, " of Loom's ", params.size(),
                                 " parameters")};
  }
}

void ApplyGuideBuffers(Case& c, StructuredLinear& layer, const std::string& prefix) {
  const int64_t count = c.Get("buffer." + prefix + "count").item<int64_t>();
  const double alpha = c.Get("buffer." + prefix + "ratio").item<double>();
  layer.SetSelfGuidedState(count, alpha);
}

// Forward with `input.x`, backward of sum(y * input.g); compares y, grad.x, grad.param.*.
void CompareForwardBackward(Case& c, torch::nn::Module& module,
                            const std::function<at::Tensor(const at::Tensor&)>& forward) {
  at::Tensor x = c.Get("input.x").requires_grad_(true);
  at::Tensor y = forward(x);
  c.Compare("output.y", y.detach());
  std::vector<at::Tensor> inputs = {x};
  std::vector<std::string> names = {"grad.x"};
  for (const auto& item : module.named_parameters()) {
    if (!item.value().requires_grad()) continue;
    inputs.push_back(item.value());
    names.push_back("grad.param." + item.key());
  }
  at::Tensor loss = (y * c.Get("input.g")).sum();
  auto grads = torch::autograd::grad({loss}, inputs, {}, false, false, /*allow_unused=*/true);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (c.Has(names[i])) c.Compare(names[i], grads[i]);
  }
}

std::shared_ptr<Projection> BuildProjection(const std::string& method, int64_t in, int64_t out,
                                            const Case& c, bool bias) {
  const int64_t rank = (method == "lowrank" || method == "blockdense") ? c.Int("rank") : 0;
  const int64_t nblocks = (method == "blockdense" || method == "blockshuffle") ? c.Int("nblocks") : 0;
  return models::MakeProjection(method == "linear" ? "dense" : method, in, out, rank, nblocks,
                                bias, 0.02, at::kDouble);
}

std::string MethodOf(const std::string& layer) {
  if (absl::StartsWith(layer, "CustomLinear")) return "linear";
  if (absl::StartsWith(layer, "LowRank")) return "lowrank";
  if (absl::StartsWith(layer, "BlockDense")) return "blockdense";
  if (absl::StartsWith(layer, "BlockShuffle")) return "blockshuffle";
  throw CaseError{absl::StrCat("unknown layer `", layer, "`")};
}

// A single linear layer, plain or self-guided.
void CheckLayer(Case& c, const std::string& layer) {
  const std::string method = MethodOf(layer);
  const bool self_guided = absl::EndsWith(layer, "+SelfGuided");
  auto proj = BuildProjection(method, c.Int("in_features"), c.Int("out_features"), c,
                              c.Bool("bias", true));
  auto structured = std::dynamic_pointer_cast<StructuredLinear>(proj);
  if (self_guided) {
    if (!structured) throw CaseError{"self-guided case for a dense layer"};
    if (c.Bool("reduce_flop", false)) throw CaseError{"reduce_flop cases are stochastic"};
    structured->EnableSelfGuided(c.Get("param.guide_linear"), false, 0);
    ApplyGuideBuffers(c, *structured, "");
  }
  LoadParams(c, *proj);
  CompareForwardBackward(c, *proj, [&](const at::Tensor& x) { return proj->Forward(x); });
  if (c.Has("output.W_merged")) c.Compare("output.W_merged", proj->MergedWeight().detach());
}

// A whole FFN: fc1 -> activation -> fc2 (+ self-guided mixing in both).
void CheckFfn(Case& c, const std::string& layer) {
  const std::string method = c.Str("method", "linear");
  const bool self_guided = absl::EndsWith(layer, "+SelfGuided");
  const int64_t d = c.Int("hidden_dim"), f = c.Int("ffn_dim"), fc1_out = c.Int("fc1_out_features");
  const std::string act = c.Str("act", "gelu");
  const bool bias = c.Bool("bias", true);
  auto fc1 = BuildProjection(method, d, fc1_out, c, bias);
  auto fc2 = BuildProjection(method, f, d, c, bias);
  auto ffn = std::make_shared<models::FeedForward>(
      fc1, fc2, act == "swiglu" ? models::Activation::kSwiglu : models::Activation::kGelu);
  if (self_guided) {
    if (c.Bool("reduce_flop", false)) throw CaseError{"reduce_flop cases are stochastic"};
    for (const auto& [prefix, proj] : {std::pair{std::string("fc1."), fc1},
                                       std::pair{std::string("fc2."), fc2}}) {
      auto s = std::dynamic_pointer_cast<StructuredLinear>(proj);
      if (!s) throw CaseError{"self-guided case for a dense FFN"};
      s->EnableSelfGuided(c.Get("param." + prefix + "guide_linear"), false, 0);
      ApplyGuideBuffers(c, *s, prefix);
    }
  }
  LoadParams(c, *ffn);
  CompareForwardBackward(c, *ffn, [&](const at::Tensor& x) { return ffn->Forward(x); });
  for (const auto& [name, proj] : {std::pair{std::string("output.fc1.W_merged"), fc1},
                                   std::pair{std::string("output.fc2.W_merged"), fc2}}) {
    if (c.Has(name)) c.Compare(name, proj->MergedWeight().detach());
  }
}

// The init recipes, from the raw draws stored in the case.
void CheckInit(Case& c, const std::string& layer) {
  const std::string method = MethodOf(layer);
  if (method == "lowrank") {
    at::Tensor lr1, lr2;
    models::LowRankLinear::SvdInit(c.Get("check.raw.org_linear"), c.Int("rank"), &lr1, &lr2);
    // SVD signs are implementation-defined: compare the product, which is sign-free.
    c.Compare("check.lr2_at_lr1", at::matmul(lr2, lr1));
    c.Compare("param.guide_linear", at::matmul(c.Get("param.lr2"), c.Get("param.lr1")));
    c.Compare("check.lr2_at_lr1", at::matmul(c.Get("param.lr2"), c.Get("param.lr1")));
  } else if (method == "blockdense") {
    at::Tensor blk = models::PolarFactor(c.Get("check.raw.blkdiag"));
    at::Tensor lr = models::PolarFactor(c.Get("check.raw.lr"));
    c.Compare("param.blkdiag", blk);
    c.Compare("param.lr", lr);
    c.Compare("param.guide_linear", at::matmul(lr, at::block_diag(blk.unbind(0))));
  } else if (method == "blockshuffle") {
    auto layer_module = std::make_shared<models::BlockShuffleLinear>(
        c.Int("in_features"), c.Int("out_features"), c.Int("nblocks"), true, 0.02, at::kDouble);
    {
      at::NoGradGuard no_grad;
      layer_module->blkdiag1.copy_(models::PolarFactor(c.Get("check.raw.blkdiag1")));
      layer_module->blkdiag2.copy_(models::PolarFactor(c.Get("check.raw.blkdiag2")));
    }
    c.Compare("param.blkdiag1", layer_module->blkdiag1.detach());
    c.Compare("param.blkdiag2", layer_module->blkdiag2.detach());
    // The reference's guide ignores the shuffles (Loom's default guide init does not; see
    // schedule.self_guided.blockshuffle_guide_init).
    c.Compare("param.guide_linear", layer_module->ReferenceGuideInit().detach());
    if (c.Has("check.W_merged")) c.Compare("check.W_merged", layer_module->MergedWeight().detach());
  }
}

void CheckAlphaSchedule(Case& c) {
  const int64_t t_max = c.Int("t_max");
  at::Tensor t = c.Get("input.t");
  for (const char* kind : {"cosine", "linear"}) {
    at::Tensor got = at::empty({t.numel()}, at::kDouble);
    for (int64_t i = 0; i < t.numel(); ++i) {
      got[i] = SelfGuidedAlpha(kind, t[i].item<int64_t>(), t_max);
    }
    c.Compare(absl::StrCat("output.alpha_", kind), got);
  }
}

void CheckLrSchedule(Case& c) {
  const double base = c.Config("base_lr").as_double();
  LrSchedule s(LrSchedule::Kind::kWarmupCosine, base, c.Int("T_max"),
               c.Config("warmup_iter_fraction").as_double(),
               c.Config("eta_min").as_double() / base);
  at::Tensor steps = c.Get("input.step");
  at::Tensor got = at::empty({steps.numel()}, at::kDouble);
  for (int64_t i = 0; i < steps.numel(); ++i) got[i] = s.At(steps[i].item<int64_t>());
  c.Compare("output.lr", got);
}

std::vector<CaseResult> Run(const CaseFile& file, const std::function<void(Case&)>& check) {
  const std::string layer = file.kind.substr(std::strlen("layer:"));
  std::string description = layer;
  try {
    Case c(file);
    check(c);
    return {c.Result(description)};
  } catch (const CaseError& e) {
    CaseResult r;
    r.file = file.path;
    r.description = description;
    r.detail = e.message;
    return {r};
  } catch (const c10::Error& e) {
    CaseResult r;
    r.file = file.path;
    r.description = description;
    r.detail = e.what_without_backtrace();
    return {r};
  }
}

}  // namespace

void RegisterStructuredFfnCheckers(CheckerRegistry* registry) {
  for (const char* base : {"CustomLinear", "LowRank", "BlockDense", "BlockShuffle"}) {
    const std::string name = base;
    registry->Register("layer:" + name, [name](const CaseFile& f, const ParityOptions&) {
      return Run(f, [&](Case& c) { CheckLayer(c, name); });
    });
    if (name != "CustomLinear") {
      registry->Register("layer:" + name + "+SelfGuided",
                         [name](const CaseFile& f, const ParityOptions&) {
                           return Run(f, [&](Case& c) { CheckLayer(c, name + "+SelfGuided"); });
                         });
      registry->Register("layer:" + name + " (initialization only)",
                         [name](const CaseFile& f, const ParityOptions&) {
                           return Run(f, [&](Case& c) { CheckInit(c, name); });
                         });
    }
  }
  for (const char* mlp :
       {"FusedMLP", "FusedLowRankMLP", "FusedBlockDenseMLP", "FusedBlockShuffleMLP"}) {
    for (const std::string suffix : {"", "+SelfGuided"}) {
      const std::string name = std::string(mlp) + suffix;
      registry->Register("layer:" + name, [name](const CaseFile& f, const ParityOptions&) {
        return Run(f, [&](Case& c) { CheckFfn(c, name); });
      });
    }
  }
  registry->Register("layer:SelfGuidedAlphaSchedule", [](const CaseFile& f, const ParityOptions&) {
    return Run(f, CheckAlphaSchedule);
  });
  registry->Register("layer:LRSchedule(_CosineAnnealingLR)",
                     [](const CaseFile& f, const ParityOptions&) { return Run(f, CheckLrSchedule); });
}

}  // namespace loom::parity
