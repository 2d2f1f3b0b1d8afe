// Shared machinery of the layer parity checkers (//tools:parity): a loaded safetensors case
// (`param.*`, `input.*`, `output.*`, `grad.*` and the JSON `config`, format in
// shared/golden/README.md), comparisons against its tensors at a relative tolerance, and the
// forward/backward comparison every layer case makes.
//
//   return Run(file, /*tolerance=*/1e-10, [](Case& c) {
//     LoadParams(c, module);
//     CompareForwardBackward(c, module, [&](const at::Tensor& x) { return module.Forward(x); });
//   });
#ifndef LOOM_TOOLS_PARITY_LAYER_CASE_H_
#define LOOM_TOOLS_PARITY_LAYER_CASE_H_

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/json.h"
#include "core/safetensors.h"
#include "tools/parity_cases.h"

namespace loom::parity {

// Raised for malformed cases; becomes a FAIL line with the message.
struct CaseError {
  std::string message;
};

inline at::Tensor ToTensor(const SafetensorsTensor& t) {
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
  Case(const CaseFile& file, double tolerance)
      : file_(file), st_(*file.safetensors), tolerance_(tolerance) {
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
  // `ref_max` overrides the tensor's own max-abs value as the scale (the real and imaginary
  // halves of a complex tensor share the complex max-abs).
  void Compare(const std::string& name, const at::Tensor& got,
               std::optional<double> ref_max_override = std::nullopt) {
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
    const double err =
        ref.numel() == 0 ? 0.0 : (got.to(at::kDouble) - ref).abs().max().item<double>();
    const double ref_max = ref_max_override ? *ref_max_override
                           : ref.numel() == 0 ? 0.0
                                              : ref.abs().max().item<double>();
    const double scale = relative_ ? std::max(ref_max, 1e-12) : std::max(1.0, ref_max);
    max_err_ = std::max(max_err_, err / scale);
    ++compared_;
    if (!(err <= tolerance_ * scale)) {
      failures_.push_back(absl::StrFormat("%s: max err %.3g", name, err));
    }
  }

  // Errors relative to each tensor's max-abs value (floored at 1e-12) instead of max(1, max-abs).
  void set_relative(bool relative) { relative_ = relative; }

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
  double tolerance_;
  bool relative_ = false;
  double max_err_ = 0;
  int compared_ = 0;
};

// Copies every `param.<prefix><name>` into the module's parameter `<name>`; both sides must
// have exactly the same names.
inline void LoadParams(Case& c, torch::nn::Module& module, const std::string& prefix = "") {
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

inline void CompareForwardBackward(Case& c, torch::nn::Module& module,
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

// Runs `check` on the case and turns its comparisons, or the error that stopped it, into one
// result line.
inline std::vector<CaseResult> Run(const CaseFile& file, double tolerance,
                                   const std::function<void(Case&)>& check) {
  const std::string layer = file.kind.substr(std::strlen("layer:"));
  std::string description = layer;
  try {
    Case c(file, tolerance);
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

}  // namespace loom::parity

#endif  // LOOM_TOOLS_PARITY_LAYER_CASE_H_
