#include "models/registry.h"

#include <ATen/Context.h>
#include <c10/util/Exception.h>

#include "absl/strings/str_cat.h"

namespace loom::models {

at::ScalarType DtypeFromName(const std::string& name) {
  if (name == "float64") return at::kDouble;
  if (name == "bfloat16") return at::kBFloat16;
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
