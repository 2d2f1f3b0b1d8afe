// Parsing and validating a checkpoint manifest (manifest.pb, core/checkpoint.proto) without
// trusting it: the manifest names the files a reader will open, so names must stay inside the
// checkpoint directory. Kept free of LibTorch so the fuzzer (checkpoint_fuzzer.cc) can drive it.
#ifndef LOOM_CORE_CHECKPOINT_MANIFEST_H_
#define LOOM_CORE_CHECKPOINT_MANIFEST_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/checkpoint.pb.h"

namespace loom {

// Parses and checks: a step, a world size >= 1, a ZeRO stage of 0 or 1, file names that are
// plain names (no '/', not "." or ".."), sizes >= 0, no duplicate files, and tensor checksums
// that refer to listed files. `source` names the manifest in errors.
absl::StatusOr<CheckpointManifest> ParseCheckpointManifest(absl::string_view bytes,
                                                           const std::string& source);

}  // namespace loom

#endif  // LOOM_CORE_CHECKPOINT_MANIFEST_H_
