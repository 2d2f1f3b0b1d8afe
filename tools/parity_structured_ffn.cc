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
#include "tools/parity_layer_case.h"

namespace loom::parity {
namespace {

using models::Projection;
using models::StructuredLinear;

void ApplyGuideBuffers(Case& c, StructuredLinear& layer, const std::string& prefix) {
  const int64_t count = c.Get("buffer." + prefix + "count").item<int64_t>();
  const double alpha = c.Get("buffer." + prefix + "ratio").item<double>();
  layer.SetSelfGuidedState(count, alpha);
}

// Forward with `input.x`, backward of sum(y * input.g); compares y, grad.x, grad.param.*.
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

}  // namespace

void RegisterStructuredFfnCheckers(CheckerRegistry* registry) {
  for (const char* base : {"CustomLinear", "LowRank", "BlockDense", "BlockShuffle"}) {
    const std::string name = base;
    registry->Register("layer:" + name, [name](const CaseFile& f, const ParityOptions&) {
      return Run(f, kStructuredFfnTolerance, [&](Case& c) { CheckLayer(c, name); });
    });
    if (name != "CustomLinear") {
      registry->Register("layer:" + name + "+SelfGuided",
                         [name](const CaseFile& f, const ParityOptions&) {
                           return Run(f, kStructuredFfnTolerance, [&](Case& c) { CheckLayer(c, name + "+SelfGuided"); });
                         });
      registry->Register("layer:" + name + " (initialization only)",
                         [name](const CaseFile& f, const ParityOptions&) {
                           return Run(f, kStructuredFfnTolerance, [&](Case& c) { CheckInit(c, name); });
                         });
    }
  }
  for (const char* mlp :
       {"FusedMLP", "FusedLowRankMLP", "FusedBlockDenseMLP", "FusedBlockShuffleMLP"}) {
    for (const std::string suffix : {"", "+SelfGuided"}) {
      const std::string name = std::string(mlp) + suffix;
      registry->Register("layer:" + name, [name](const CaseFile& f, const ParityOptions&) {
        return Run(f, kStructuredFfnTolerance, [&](Case& c) { CheckFfn(c, name); });
      });
    }
  }
  registry->Register("layer:SelfGuidedAlphaSchedule", [](const CaseFile& f, const ParityOptions&) {
    return Run(f, kStructuredFfnTolerance, CheckAlphaSchedule);
  });
  registry->Register("layer:LRSchedule(_CosineAnnealingLR)",
                     [](const CaseFile& f, const ParityOptions&) { return Run(f, kStructuredFfnTolerance, CheckLrSchedule); });
}

}  // namespace loom::parity
