// Builds the sequence mixer a ModelConfig names (model.mixer.type): "attention" (mixer.h), "s4" /
// "s4d" (s4.h) or "sgconv" (sgconv.h), with the settings of model.mixer.{s4,sgconv}.
//
//   std::shared_ptr<Mixer> mixer = MakeMixer(config.model(), at::kFloat);
#ifndef LOOM_MODELS_MIXER_FACTORY_H_
#define LOOM_MODELS_MIXER_FACTORY_H_

#include <memory>

#include "core/config.pb.h"
#include "models/mixer.h"
#include "models/s4.h"
#include "models/sgconv.h"

namespace loom::models {

std::shared_ptr<Mixer> MakeMixer(const ModelConfig& config, at::ScalarType dtype);

// The options MakeMixer uses, for tools and tests that build the layers directly.
S4Options S4OptionsFromConfig(const ModelConfig& config, at::ScalarType dtype);
SgConvOptions SgConvOptionsFromConfig(const ModelConfig& config, at::ScalarType dtype);

}  // namespace loom::models

#endif  // LOOM_MODELS_MIXER_FACTORY_H_
