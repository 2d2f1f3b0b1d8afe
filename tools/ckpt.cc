// `ckpt`: inspect, verify, compare and export Loom checkpoints from the shell.
//
//   ckpt info DIR                       manifest, files, config summary, parameters, FLOPs so far
//   ckpt tensors DIR [--filter=GLOB] [--file=model.safetensors]
//                                       name, shape, dtype, L2 norm, min, max, mean per tensor
//   ckpt diff A B [--filter=GLOB]       per-tensor max |a-b| and max relative difference; tensors
//                                       only in one of them
//   ckpt verify DIR                     every file size and CRC32C, every tensor CRC32C; exit 1
//                                       if anything is wrong
//   ckpt export DIR OUT.safetensors [--dtype=float32|bfloat16|float64]
//                                       the weights alone, optionally cast
//   ckpt logits DIR --tokens=ID,ID,...  the model's logits for one sequence
//   ckpt merge-structured DIR OUT.safetensors
//                                       every structured FFN pre-merged into dense weights (a
//                                       dense-FFN model with the same shapes loads them); the
//                                       logits of both models are compared before writing
// DIR is a checkpoint directory (…/checkpoints/step_N) or a run directory (its newest complete
// checkpoint). Every command takes --json (one JSON document on stdout). Errors name the file and
// the problem, and exit non-zero.
#include <ATen/ATen.h>
#include <fnmatch.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/checkpoint.h"
#include "core/config.h"
#include "core/file_io.h"
#include "core/json.h"
#include "core/status_macros.h"
#include "models/registry.h"
#include "models/structured_linear.h"

namespace loom {
namespace {

struct Args {
  std::string command;
  std::vector<std::string> positional;
  bool json = false;
  std::string filter = "*";
  std::string file = "model.safetensors";
  std::string dtype;
  std::string tokens;
};

absl::StatusOr<Args> ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto value = [&](const char* name) -> const char* {
      const std::string p = std::string(name) + "=";
      return s.rfind(p, 0) == 0 ? argv[i] + p.size() : nullptr;
    };
    if (s == "--json") {
      a.json = true;
    } else if (const char* v = value("--filter")) {
      a.filter = v;
    } else if (const char* v = value("--file")) {
      a.file = v;
    } else if (const char* v = value("--dtype")) {
      a.dtype = v;
    } else if (const char* v = value("--tokens")) {
      a.tokens = v;
    } else if (s.rfind("--", 0) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", s));
    } else if (a.command.empty()) {
      a.command = s;
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

// A checkpoint directory, or a run directory's newest complete checkpoint.
absl::StatusOr<std::string> ResolveDir(const std::string& path_in) {
  const std::string path = ResolveInvocationPath(path_in);
  // A checkpoint directory, possibly incomplete (files but no manifest yet): reading it then
  // reports exactly what is missing.
  if (FileExists(path + "/manifest.pb") || FileExists(path + "/DONE") ||
      (FileExists(path + "/model.safetensors") && !FileExists(path + "/checkpoints"))) {
    return path;
  }
  LOOM_ASSIGN_OR_RETURN(std::optional<std::string> latest, FindLatestCheckpoint(path));
  if (!latest) {
    return absl::NotFoundError(absl::StrCat(
        path, " is neither a checkpoint directory nor a run directory with a complete "
              "checkpoint (checkpoints/step_*/DONE)"));
  }
  return *latest;
}

std::string Human(double bytes) {
  if (bytes >= 1 << 30) return absl::StrFormat("%.2f GiB", bytes / (1 << 30));
  if (bytes >= 1 << 20) return absl::StrFormat("%.1f MiB", bytes / (1 << 20));
  return absl::StrFormat("%.1f KiB", bytes / 1024);
}

std::string Shape(const std::vector<int64_t>& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) absl::StrAppend(&out, i ? ", " : "", s[i]);
  return out + ")";
}

bool Matches(const std::string& glob, const std::string& name) {
  return fnmatch(glob.c_str(), name.c_str(), 0) == 0;
}

absl::Status Info(const Args& a) {
  if (a.positional.size() != 1) return absl::InvalidArgumentError("usage: ckpt info DIR");
  LOOM_ASSIGN_OR_RETURN(std::string dir, ResolveDir(a.positional[0]));
  LOOM_ASSIGN_OR_RETURN(LoadedCheckpoint c, ReadCheckpoint(dir));
  const CheckpointManifest& m = c.manifest;
  const ModelConfig& mc = m.config().model();
  int64_t total = 0;
  for (const auto& f : m.files()) total += f.bytes();
  if (a.json) {
    Json j = Json::MakeObject();
    j["dir"] = dir;
    j["step"] = m.step();
    j["tokens"] = m.tokens();
    j["world_size"] = m.world_size();
    j["zero_stage"] = m.zero_stage();
    j["loom_version"] = m.loom_version();
    j["format_version"] = m.format_version();
    j["created_utc"] = m.created_utc();
    j["run_name"] = m.config().name();
    j["parameters"] = m.parameters();
    j["train_flops"] = m.train_flops();
    j["bytes"] = total;
    Json files = Json::MakeArray();
    for (const auto& f : m.files()) {
      Json e = Json::MakeObject();
      e["name"] = f.name();
      e["bytes"] = f.bytes();
      e["crc32c"] = static_cast<long long>(f.crc32c());
      files.push_back(e);
    }
    j["files"] = files;
    Json model = Json::MakeObject();
    model["num_layers"] = mc.num_layers();
    model["d_model"] = mc.d_model();
    model["vocab_size"] = mc.vocab_size();
    model["ffn"] = mc.ffn().type();
    model["dtype"] = mc.dtype();
    j["model"] = model;
    std::printf("%s\n", j.Dump().c_str());
    return absl::OkStatus();
  }
  std::printf("checkpoint %s\n", dir.c_str());
  std::printf("  run \"%s\", step %lld, %lld tokens, %.3g training FLOPs so far\n",
              m.config().name().c_str(), static_cast<long long>(m.step()),
              static_cast<long long>(m.tokens()), m.train_flops());
  std::printf("  written by Loom %s (format %d) at %s, %d rank%s, ZeRO-%d\n",
              m.loom_version().c_str(), m.format_version(), m.created_utc().c_str(),
              m.world_size(), m.world_size() == 1 ? "" : "s", m.zero_stage());
  std::printf("  model: %d layers, d_model %d, vocab %d, FFN %s%s, %s, %lld parameters\n",
              mc.num_layers(), mc.d_model(), mc.vocab_size(), mc.ffn().type().c_str(),
              m.config().schedule().self_guided().enabled() ? " (self-guided)" : "",
              mc.dtype().c_str(), static_cast<long long>(m.parameters()));
  std::printf("  files (%s, all checksums verified):\n", Human(total).c_str());
  for (const auto& f : m.files()) {
    std::printf("    %-28s %12s  crc32c %08x\n", f.name().c_str(), Human(f.bytes()).c_str(),
                f.crc32c());
  }
  return absl::OkStatus();
}

absl::Status Tensors(const Args& a) {
  if (a.positional.size() != 1) return absl::InvalidArgumentError("usage: ckpt tensors DIR");
  LOOM_ASSIGN_OR_RETURN(std::string dir, ResolveDir(a.positional[0]));
  LOOM_ASSIGN_OR_RETURN(LoadedCheckpoint c, ReadCheckpoint(dir));
  auto it = c.files.find(a.file);
  if (it == c.files.end()) {
    return absl::NotFoundError(absl::StrCat(dir, " has no ", a.file));
  }
  Json rows = Json::MakeArray();
  if (!a.json) {
    std::printf("%-48s %-16s %-5s %12s %12s %12s %12s\n", "name", "shape", "dtype", "norm",
                "min", "max", "mean");
  }
  for (const SafetensorsTensor& t : it->second.tensors) {
    if (!Matches(a.filter, t.name)) continue;
    LOOM_ASSIGN_OR_RETURN(at::Tensor x, SafetensorsToTensor(t));
    at::Tensor d = x.to(at::kDouble);
    const bool empty = d.numel() == 0;
    const double norm = empty ? 0 : d.norm().item<double>();
    const double mn = empty ? 0 : d.min().item<double>();
    const double mx = empty ? 0 : d.max().item<double>();
    const double mean = empty ? 0 : d.mean().item<double>();
    if (a.json) {
      Json r = Json::MakeObject();
      r["name"] = t.name;
      Json shape = Json::MakeArray();
      for (int64_t s : t.shape) shape.push_back(Json(static_cast<long long>(s)));
      r["shape"] = shape;
      r["dtype"] = t.dtype;
      r["norm"] = norm;
      r["min"] = mn;
      r["max"] = mx;
      r["mean"] = mean;
      rows.push_back(r);
    } else {
      std::printf("%-48s %-16s %-5s %12.5g %12.5g %12.5g %12.5g\n", t.name.c_str(),
                  Shape(t.shape).c_str(), t.dtype.c_str(), norm, mn, mx, mean);
    }
  }
  if (a.json) std::printf("%s\n", rows.Dump().c_str());
  return absl::OkStatus();
}

absl::Status Diff(const Args& a) {
  if (a.positional.size() != 2) return absl::InvalidArgumentError("usage: ckpt diff A B");
  LOOM_ASSIGN_OR_RETURN(std::string da, ResolveDir(a.positional[0]));
  LOOM_ASSIGN_OR_RETURN(std::string db, ResolveDir(a.positional[1]));
  LOOM_ASSIGN_OR_RETURN(LoadedCheckpoint ca, ReadCheckpoint(da));
  LOOM_ASSIGN_OR_RETURN(LoadedCheckpoint cb, ReadCheckpoint(db));
  const SafetensorsFile& fa = ca.files.at(a.file);
  const SafetensorsFile& fb = cb.files.at(a.file);
  Json rows = Json::MakeArray(), only_a = Json::MakeArray(), only_b = Json::MakeArray();
  double worst = 0;
  for (const SafetensorsTensor& t : fa.tensors) {
    if (!Matches(a.filter, t.name)) continue;
    const SafetensorsTensor* u = fb.Find(t.name);
    if (u == nullptr) {
      only_a.push_back(Json(t.name));
      continue;
    }
    LOOM_ASSIGN_OR_RETURN(at::Tensor x, SafetensorsToTensor(t));
    LOOM_ASSIGN_OR_RETURN(at::Tensor y, SafetensorsToTensor(*u));
    Json r = Json::MakeObject();
    r["name"] = t.name;
    if (x.sizes() != y.sizes()) {
      r["shape_mismatch"] = Shape(t.shape) + " vs " + Shape(u->shape);
      if (!a.json) std::printf("%-48s shapes differ: %s vs %s\n", t.name.c_str(),
                               Shape(t.shape).c_str(), Shape(u->shape).c_str());
      worst = INFINITY;
      rows.push_back(r);
      continue;
    }
    at::Tensor dx = x.to(at::kDouble), dy = y.to(at::kDouble);
    const double abs_diff = dx.numel() ? (dx - dy).abs().max().item<double>() : 0.0;
    const double scale = dx.numel() ? std::max(dx.abs().max().item<double>(), 1e-300) : 1.0;
    r["max_abs"] = abs_diff;
    r["max_rel"] = abs_diff / scale;
    worst = std::max(worst, abs_diff / scale);
    rows.push_back(r);
    if (!a.json) {
      std::printf("%-48s max|a-b| %10.3e  relative %10.3e%s\n", t.name.c_str(), abs_diff,
                  abs_diff / scale, abs_diff == 0 ? "  (identical)" : "");
    }
  }
  for (const SafetensorsTensor& t : fb.tensors) {
    if (Matches(a.filter, t.name) && fa.Find(t.name) == nullptr) only_b.push_back(Json(t.name));
  }
  if (a.json) {
    Json j = Json::MakeObject();
    j["a"] = da;
    j["b"] = db;
    j["tensors"] = rows;
    j["only_in_a"] = only_a;
    j["only_in_b"] = only_b;
    j["max_rel"] = std::isinf(worst) ? Json("inf") : Json(worst);
    std::printf("%s\n", j.Dump().c_str());
  } else {
    for (const auto& n : only_a.array()) std::printf("only in A: %s\n", n.as_string().c_str());
    for (const auto& n : only_b.array()) std::printf("only in B: %s\n", n.as_string().c_str());
    std::printf("A = %s (step %lld), B = %s (step %lld): largest relative difference %.3e\n",
                da.c_str(), static_cast<long long>(ca.manifest.step()), db.c_str(),
                static_cast<long long>(cb.manifest.step()), worst);
  }
  return absl::OkStatus();
}

int Verify(const Args& a) {
  if (a.positional.size() != 1) {
    std::fprintf(stderr, "ckpt: usage: ckpt verify DIR\n");
    return 2;
  }
  absl::StatusOr<std::string> dir = ResolveDir(a.positional[0]);
  std::vector<std::string> problems =
      dir.ok() ? VerifyCheckpoint(*dir) : std::vector<std::string>{std::string(dir.status().message())};
  if (a.json) {
    Json j = Json::MakeObject();
    j["dir"] = dir.ok() ? *dir : a.positional[0];
    j["ok"] = problems.empty();
    Json p = Json::MakeArray();
    for (const auto& s : problems) p.push_back(Json(s));
    j["problems"] = p;
    std::printf("%s\n", j.Dump().c_str());
  } else if (problems.empty()) {
    std::printf("OK %s: every file size, file CRC32C and tensor CRC32C matches the manifest\n",
                dir->c_str());
  } else {
    for (const auto& s : problems) std::printf("CORRUPT %s\n", s.c_str());
  }
  return problems.empty() ? 0 : 1;
}

absl::Status Export(const Args& a) {
  if (a.positional.size() != 2) {
    return absl::InvalidArgumentError("usage: ckpt export DIR OUT.safetensors [--dtype=...]");
  }
  LOOM_ASSIGN_OR_RETURN(std::string dir, ResolveDir(a.positional[0]));
  LOOM_ASSIGN_OR_RETURN(LoadedCheckpoint c, ReadCheckpoint(dir));
  at::ScalarType cast = at::ScalarType::Undefined;
  if (a.dtype == "float32") cast = at::kFloat;
  else if (a.dtype == "bfloat16") cast = at::kBFloat16;
  else if (a.dtype == "float64") cast = at::kDouble;
  else if (!a.dtype.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--dtype=", a.dtype,
                                                   ": expected float32, bfloat16 or float64"));
  }
  std::vector<SafetensorsTensor> out;
  for (const SafetensorsTensor& t : c.files.at("model.safetensors").tensors) {
    if (cast == at::ScalarType::Undefined) {
      out.push_back(t);
      continue;
    }
    LOOM_ASSIGN_OR_RETURN(at::Tensor x, SafetensorsToTensor(t));
    out.push_back(TensorToSafetensors(t.name, x.to(cast)));
  }
  const std::string path = ResolveInvocationPath(a.positional[1]);
  LOOM_RETURN_IF_ERROR(WriteSafetensors(
      path, out, {{"format", "pt"}, {"source", dir}, {"step", absl::StrCat(c.manifest.step())}}));
  if (!a.json) std::printf("wrote %s: %zu tensors from %s\n", path.c_str(), out.size(), dir.c_str());
  else std::printf("{\"out\":\"%s\",\"tensors\":%zu}\n", path.c_str(), out.size());
  return absl::OkStatus();
}

absl::Status LoadWeights(models::TransformerLm& model, const SafetensorsFile& f,
                         const std::string& what) {
  at::NoGradGuard no_grad;
  for (auto& item : model.named_parameters()) {
    const SafetensorsTensor* t = f.Find(item.key());
    if (t == nullptr) {
      if (item.value().numel() == 0) continue;
      return absl::NotFoundError(absl::StrCat(what, ": no tensor ", item.key()));
    }
    LOOM_ASSIGN_OR_RETURN(at::Tensor x, SafetensorsToTensor(*t));
    if (x.sizes() != item.value().sizes()) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": ", item.key(), " has shape ",
                                                     Shape(t->shape)));
    }
    item.value().copy_(x);
  }
  for (auto& [name, buffer] : model.FunctionBuffers()) {
    const SafetensorsTensor* t = f.Find(name);
    if (t == nullptr) return absl::NotFoundError(absl::StrCat(what, ": no buffer ", name));
    LOOM_ASSIGN_OR_RETURN(at::Tensor x, SafetensorsToTensor(*t));
    if (x.sizes() != buffer.sizes()) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": buffer ", name, " has shape ",
                                                     Shape(t->shape)));
    }
    buffer.copy_(x);
  }
  return absl::OkStatus();
}

absl::Status MergeStructured(const Args& a) {
  if (a.positional.size() != 2) {
    return absl::InvalidArgumentError("usage: ckpt merge-structured DIR OUT.safetensors");
  }
  LOOM_ASSIGN_OR_RETURN(std::string dir, ResolveDir(a.positional[0]));
  LOOM_ASSIGN_OR_RETURN(LoadedCheckpoint c, ReadCheckpoint(dir));
  ModelConfig mc = c.manifest.config().model();
  if (mc.dtype() == "bfloat16") mc.set_dtype("float32");  // masters are float32
  LOOM_ASSIGN_OR_RETURN(auto model, models::BuildLanguageModel(mc, 1));
  LOOM_RETURN_IF_ERROR(LoadWeights(*model, c.files.at("model.safetensors"), dir));
  ModelConfig dense_cfg = mc;
  dense_cfg.mutable_ffn()->set_type("dense");
  LOOM_ASSIGN_OR_RETURN(auto dense, models::BuildLanguageModel(dense_cfg, 1));
  // Dense weights: unchanged tensors by name, plus W_merged for every structured layer.
  std::map<std::string, at::Tensor> merged;
  at::NoGradGuard no_grad;
  for (const auto& item : model->named_parameters()) merged[item.key()] = item.value();
  int64_t layers = 0;
  for (const auto& mod : model->named_modules()) {
    auto* s = dynamic_cast<models::StructuredLinear*>(mod.value().get());
    if (s == nullptr) continue;
    merged[mod.key() + ".weight"] = s->MergedWeight().detach();
    ++layers;
  }
  std::vector<SafetensorsTensor> out;
  SafetensorsFile as_file;
  for (const auto& item : dense->named_parameters()) {
    auto it = merged.find(item.key());
    if (it == merged.end()) {
      return absl::InternalError(absl::StrCat("merge-structured: no value for ", item.key()));
    }
    out.push_back(TensorToSafetensors(item.key(), it->second.to(item.value().scalar_type())));
  }
  as_file.tensors = out;
  LOOM_RETURN_IF_ERROR(LoadWeights(*dense, as_file, "merged weights"));
  model->eval();
  dense->eval();
  at::manual_seed(0);
  at::Tensor tokens = at::randint(0, mc.vocab_size(), {2, 16}, at::kLong);
  at::Tensor ls = model->Logits(tokens), ld = dense->Logits(tokens);
  const double err = (ls - ld).abs().max().item<double>() /
                     std::max(ls.abs().max().item<double>(), 1e-30);
  const double tol = mc.dtype() == "float64" ? 1e-10 : 1e-4;
  if (!(err <= tol)) {
    return absl::InternalError(absl::StrFormat(
        "merged model's logits differ from the structured model's by %.3e (tolerance %.0e); "
        "nothing written", err, tol));
  }
  const std::string path = ResolveInvocationPath(a.positional[1]);
  LOOM_RETURN_IF_ERROR(WriteSafetensors(path, out, {{"format", "pt"}, {"source", dir}}));
  if (a.json) {
    std::printf("{\"out\":\"%s\",\"merged_layers\":%lld,\"max_rel_logit_diff\":%.6g}\n",
                path.c_str(), static_cast<long long>(layers), err);
  } else {
    std::printf("wrote %s: %lld structured layers merged into dense weights; logits of both "
                "models agree to %.2e (relative)\n", path.c_str(), static_cast<long long>(layers),
                err);
  }
  return absl::OkStatus();
}

// Logits of the checkpoint's model (structured, guides as saved are ignored) for one sequence.
absl::Status Logits(const Args& a) {
  if (a.positional.size() != 1 || a.tokens.empty()) {
    return absl::InvalidArgumentError("usage: ckpt logits DIR --tokens=ID,ID,...");
  }
  LOOM_ASSIGN_OR_RETURN(std::string dir, ResolveDir(a.positional[0]));
  LOOM_ASSIGN_OR_RETURN(LoadedCheckpoint c, ReadCheckpoint(dir));
  ModelConfig mc = c.manifest.config().model();
  if (mc.dtype() == "bfloat16") mc.set_dtype("float32");
  LOOM_ASSIGN_OR_RETURN(auto model, models::BuildLanguageModel(mc, 1));
  LOOM_RETURN_IF_ERROR(LoadWeights(*model, c.files.at("model.safetensors"), dir));
  std::vector<int64_t> ids;
  for (absl::string_view piece : absl::StrSplit(a.tokens, ',')) {
    int64_t id = 0;
    if (!absl::SimpleAtoi(piece, &id) || id < 0 || id >= mc.vocab_size()) {
      return absl::InvalidArgumentError(absl::StrCat("--tokens: \"", piece,
                                                     "\" is not a token id below ",
                                                     mc.vocab_size()));
    }
    ids.push_back(id);
  }
  at::NoGradGuard no_grad;
  model->eval();
  at::Tensor tokens = at::tensor(ids, at::kLong).unsqueeze(0);
  at::Tensor logits = model->Logits(tokens).squeeze(0).to(at::kDouble).contiguous();
  Json rows = Json::MakeArray();
  for (int64_t t = 0; t < logits.size(0); ++t) {
    Json row = Json::MakeArray();
    for (int64_t v = 0; v < logits.size(1); ++v) row.push_back(Json(logits[t][v].item<double>()));
    rows.push_back(row);
  }
  if (a.json) {
    Json j = Json::MakeObject();
    j["tokens"] = static_cast<long long>(ids.size());
    j["vocab"] = static_cast<long long>(logits.size(1));
    j["logits"] = rows;
    std::printf("%s\n", j.Dump().c_str());
  } else {
    for (int64_t t = 0; t < logits.size(0); ++t) {
      const int64_t best = logits[t].argmax().item<int64_t>();
      std::printf("position %lld: argmax %lld (logit %.4f)\n", static_cast<long long>(t),
                  static_cast<long long>(best), logits[t][best].item<double>());
    }
  }
  return absl::OkStatus();
}

constexpr char kUsage[] =
    "usage: ckpt COMMAND ... [--json]\n"
    "  info DIR | tensors DIR [--filter=GLOB] [--file=NAME] | diff A B [--filter=GLOB]\n"
    "  verify DIR | export DIR OUT.safetensors [--dtype=float32|bfloat16|float64]\n"
    "  merge-structured DIR OUT.safetensors | logits DIR --tokens=ID,ID,...\n"
    "DIR: a checkpoint directory or a run directory (its newest complete checkpoint)\n";

}  // namespace
}  // namespace loom

int main(int argc, char** argv) {
  absl::StatusOr<loom::Args> args = loom::ParseArgs(argc, argv);
  if (!args.ok() || args->command.empty() || args->command == "help") {
    if (!args.ok()) std::fprintf(stderr, "ckpt: %s\n", std::string(args.status().message()).c_str());
    std::fprintf(stderr, "%s", loom::kUsage);
    return 2;
  }
  try {
    if (args->command == "verify") return loom::Verify(*args);
    absl::Status s;
    if (args->command == "info") s = loom::Info(*args);
    else if (args->command == "tensors") s = loom::Tensors(*args);
    else if (args->command == "diff") s = loom::Diff(*args);
    else if (args->command == "export") s = loom::Export(*args);
    else if (args->command == "merge-structured") s = loom::MergeStructured(*args);
    else if (args->command == "logits") s = loom::Logits(*args);
    else s = absl::InvalidArgumentError(absl::StrCat("unknown command \"", args->command, "\"\n", loom::kUsage));
    if (!s.ok()) {
      std::fprintf(stderr, "ckpt: error: %s\n", std::string(s.message()).c_str());
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ckpt: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
