// The self-guided-training alpha schedule (StructuredFFN spec §5.2): alpha goes from 1 to 0 over
// t_max optimizer steps and stays 0 after. Step k of the guided phase uses alpha(k).
//   cosine: alpha(t) = 0.5 (1 + cos(pi t / t_max));   linear: alpha(t) = 1 - t / t_max.
// Reproduces golden/structured_ffn/schedule_alpha.
#ifndef LOOM_CORE_ALPHA_SCHEDULE_H_
#define LOOM_CORE_ALPHA_SCHEDULE_H_

#include <cstdint>
#include <string>

namespace loom {

// `scheduler` is "cosine" or "linear" (anything else is a programming error: configs are
// validated before training).
double SelfGuidedAlpha(const std::string& scheduler, int64_t t, int64_t t_max);

}  // namespace loom

#endif  // LOOM_CORE_ALPHA_SCHEDULE_H_
