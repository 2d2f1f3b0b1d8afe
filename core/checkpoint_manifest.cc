#include "core/checkpoint_manifest.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace loom {

absl::StatusOr<CheckpointManifest> ParseCheckpointManifest(absl::string_view bytes,
                                                           const std::string& source) {
  CheckpointManifest m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) || !m.has_step()) {
    return absl::DataLossError(absl::StrCat(source, ": not a valid checkpoint manifest"));
  }
  auto bad = [&](const std::string& why) {
    return absl::DataLossError(absl::StrCat(source, ": ", why));
  };
  if (m.step() < 0) return bad(absl::StrCat("negative step ", m.step()));
  if (m.world_size() < 1) return bad(absl::StrCat("world size ", m.world_size(), " < 1"));
  if (m.zero_stage() != 0 && m.zero_stage() != 1) {
    return bad(absl::StrCat("ZeRO stage ", m.zero_stage(), " is not 0 or 1"));
  }
  std::set<std::string> names;
  for (const FileChecksum& f : m.files()) {
    const std::string& n = f.name();
    if (n.empty() || n == "." || n == ".." || absl::StrContains(n, "/") ||
        absl::StrContains(n, std::string(1, '\0'))) {
      return bad(absl::StrCat("file name \"", n, "\" is not a plain file name"));
    }
    if (f.bytes() < 0) return bad(absl::StrCat(n, ": negative size"));
    if (!names.insert(n).second) return bad(absl::StrCat(n, " is listed twice"));
  }
  for (const TensorChecksum& t : m.tensors()) {
    if (names.count(t.file()) == 0) {
      return bad(absl::StrCat("tensor ", t.name(), " refers to unlisted file ", t.file()));
    }
  }
  return m;
}

}  // namespace loom
