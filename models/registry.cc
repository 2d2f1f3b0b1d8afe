#include "models/registry.h"

#include <ATen/Context.h>
#include <c10/util/Exception.h>

#include "absl/strings/str_cat.h"

namespace loom::models {

// "bfloat16" is mixed precision: the model is built (and initialised) in float32, the master
// precision; the trainer's DataParallel keeps those values as fp32 master weights and turns the
// parameters into bf16 compute copies.
at::ScalarType DtypeFromName(const std::string& name) {
  if (name == "float64") return at::kDouble;
  return at::kFloat;
}

absl::StatusOr<std::shared_ptr<TransformerLm>> BuildLanguageModel(const ModelConfig& config,
                                                                  uint64_t seed) {
  if (config.arch() != "transformer") {
    return absl::InvalidArgumentError(
        absl::StrCat("model.arch \"", config.arch(), "\" is not a known architecture"));
  }
  at::manual_seed(seed);
  try {
    return std::make_shared<TransformerLm>(config, DtypeFromName(config.dtype()));
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat("building the model: ", e.what_without_backtrace()));
  }
}

}  // namespace loom::models
