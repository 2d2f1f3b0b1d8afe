// flops: parameter counts, tokens and training FLOPs of a run config, in the StructuredFFN
// paper's convention (core/flops.h).
//
//   flops --config=launch/configs/lm/xl_dense.textproto [--set=a.b.c=value]... [--json]
//
// The config is loaded and validated exactly as `train` does. --json prints one JSON object
// (params, ffn_params, guide_params, tokens, tokens_processed, total_steps, guided_steps,
// forward_flops_per_step, train_flops, train_flops_exact, ...). Errors: one message, exit 1.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/config.h"
#include "core/file_io.h"
#include "core/flops.h"
#include "core/json.h"

ABSL_FLAG(std::string, config, "", "Run config (text proto), e.g. launch/configs/lm/xl_dense.textproto");
ABSL_FLAG(bool, json, false, "Print one JSON object instead of the table");

namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "flops: error: %s\n", std::string(status.message()).c_str());
  return 1;
}

std::string Millions(int64_t n) { return absl::StrFormat("%.1fM", n / 1e6); }

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "parameters and training FLOPs of a run: flops --config=FILE [--set=a.b.c=value]... "
      "[--json]");
  absl::StatusOr<std::vector<std::string>> set_flags = loom::ExtractOverrideFlags(&argc, argv);
  if (!set_flags.ok()) return Fail(set_flags.status());
  const std::vector<std::string>& overrides = *set_flags;
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("unexpected argument \"", rest[1], "\" (flags are --config, --set, --json)")));
  }
  const std::string path = absl::GetFlag(FLAGS_config);
  if (path.empty()) {
    return Fail(absl::InvalidArgumentError(
        "--config is required, e.g. --config=launch/configs/lm/xl_dense.textproto"));
  }
  absl::StatusOr<loom::RunConfig> config = loom::LoadRunConfig(loom::ResolveInvocationPath(path), overrides);
  if (!config.ok()) return Fail(config.status());

  const loom::RunFlops r = loom::ComputeRunFlops(*config);
  const loom::ModelCounts counts = loom::CountParameters(config->model());
  if (absl::GetFlag(FLAGS_json)) {
    loom::Json j = loom::Json::MakeObject();
    j["name"] = config->name();
    j["params"] = r.params;
    j["ffn_params"] = r.ffn_params;
    j["guide_params"] = r.guide_params;
    j["embedding_params"] = counts.embedding_params;
    j["attention_params"] = counts.attention_params;
    j["tokens"] = r.tokens;
    j["tokens_processed"] = r.tokens_processed;
    j["tokens_per_step"] = r.tokens_per_step;
    j["total_steps"] = r.total_steps;
    j["guided_steps"] = r.guided_steps;
    j["forward_flops_per_step"] = r.forward_flops_per_step;
    j["guide_forward_flops_per_step"] = r.guide_forward_flops_per_step;
    j["train_flops_per_token"] = r.train_flops_per_token;
    j["train_flops"] = r.train_flops;
    j["train_flops_exact"] = r.train_flops_exact;
    std::printf("%s\n", j.Dump().c_str());
    return 0;
  }
  const auto row = [](const char* what, const std::string& value) {
    std::printf("  %-28s %s\n", what, value.c_str());
  };
  std::printf("%s (%s)\n", config->name().c_str(), path.c_str());
  row("params", absl::StrCat(Millions(r.params), "  (", r.params, ")"));
  row("FFN params (weights)", absl::StrCat(Millions(r.ffn_params), "  (", r.ffn_params, ")"));
  row("  of which structured blocks", absl::StrCat(counts.structured_layers, " of ",
                                                   config->model().num_layers()));
  row("embedding (tied) / attention",
      absl::StrCat(Millions(counts.embedding_params), " / ", Millions(counts.attention_params)));
  if (r.guide_params > 0) {
    row("guide params (not in params)", absl::StrCat(Millions(r.guide_params), "  (",
                                                     r.guide_params, ")"));
  }
  row("tokens (base)", absl::StrFormat("%.4gB  (%d)", r.tokens / 1e9, r.tokens));
  if (r.tokens_processed != r.tokens) {
    row("tokens processed", absl::StrFormat("%.4gB  (%d)", r.tokens_processed / 1e9,
                                            r.tokens_processed));
  }
  row("total steps", absl::StrCat(r.total_steps, r.guided_steps > 0
                                                      ? absl::StrCat(" (", r.guided_steps,
                                                                     " guided)")
                                                      : ""));
  row("training FLOPs", absl::StrFormat("%.3e  (%s)", r.train_flops, r.train_flops_exact));
  row("training FLOPs / token", absl::StrFormat("%.4g  (model, 3 x forward)",
                                                r.train_flops_per_token));
  return 0;
}
