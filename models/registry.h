// Builds a model from its config: the single place that maps ModelConfig to modules.
//
//   auto model = BuildLanguageModel(config.model(), /*seed=*/config.train().seed());
#ifndef LOOM_MODELS_REGISTRY_H_
#define LOOM_MODELS_REGISTRY_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "core/config.pb.h"
#include "models/transformer_lm.h"

namespace loom::models {

// Initialises deterministically from `seed` (same seed, same weights, on any machine).
absl::StatusOr<std::shared_ptr<TransformerLm>> BuildLanguageModel(const ModelConfig& config,
                                                                  uint64_t seed);

at::ScalarType DtypeFromName(const std::string& name);

}  // namespace loom::models

#endif  // LOOM_MODELS_REGISTRY_H_
