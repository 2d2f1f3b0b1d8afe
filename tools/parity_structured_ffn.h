// Golden-case checkers for the StructuredFFN layers (golden/structured_ffn/, format in
// shared/golden/README.md): dense/LowRank/BlockDense/BlockShuffle layers, their self-guided
// mixtures, full FFNs (GELU and SwiGLU), merged weights, init recipes and the LR and alpha
// schedules. Layers are rebuilt from the case's `config` metadata and loaded by parameter name,
// so any case in the format works (other seeds and sizes included). Everything runs in float64;
// a case passes when every compared tensor is within 1e-10 (absolute, scaled by max(1, |ref|)).
//
//   CheckerRegistry registry = DefaultCheckerRegistry();
//   RegisterStructuredFfnCheckers(&registry);
#ifndef LOOM_TOOLS_PARITY_STRUCTURED_FFN_H_
#define LOOM_TOOLS_PARITY_STRUCTURED_FFN_H_

#include "tools/parity_cases.h"

namespace loom::parity {

inline constexpr double kStructuredFfnTolerance = 1e-10;

void RegisterStructuredFfnCheckers(CheckerRegistry* registry);

}  // namespace loom::parity

#endif  // LOOM_TOOLS_PARITY_STRUCTURED_FFN_H_
