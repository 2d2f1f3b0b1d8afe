// Loading, overriding and validating RunConfig (core/config.proto).
//
//   absl::StatusOr<RunConfig> config = LoadRunConfig("launch/configs/lm/tiny.textproto",
//                                                    {"train.max_steps=50", "optimizer.lr=1e-3"});
//
// Text protos are parsed strictly: unknown fields, wrong types and malformed values are errors
// that name the file, line and field. Overrides use dotted field paths (`a.b.c=value`, value in
// text-proto syntax; strings may be bare). ValidateRunConfig checks ranges and cross-field rules
// and names the offending field, so a bad run fails before any work is done.
#ifndef LOOM_CORE_CONFIG_H_
#define LOOM_CORE_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/config.pb.h"

namespace loom {

// Parses a text-proto RunConfig. `source_name` is used in error messages.
absl::StatusOr<RunConfig> ParseRunConfig(absl::string_view text,
                                         absl::string_view source_name = "<config>");

// Applies one `a.b.c=value` override in place.
absl::Status ApplyOverride(absl::string_view assignment, RunConfig* config);

// Range and consistency checks; the message names the field (e.g. `train.seq_len`).
absl::Status ValidateRunConfig(const RunConfig& config);

// Reads `path` (if non-empty; otherwise starts from defaults), applies the overrides in order,
// fills fields that have a resolved default (for example model.vocab_size from the tokenizer)
// and validates.
absl::StatusOr<RunConfig> LoadRunConfig(const std::string& path,
                                        const std::vector<std::string>& overrides);

// Resolves derived defaults in place (vocab size from the tokenizer, ffn.hidden_dim = 4 d,
// num_kv_heads = num_heads) so the written config says exactly what ran.
absl::Status ResolveDefaults(RunConfig* config);

// Removes every `--set=a.b.c=value` / `--set a.b.c=value` from argv and returns the assignments
// in order. Binaries call it before absl::ParseCommandLine, because absl's list flags would split
// values on commas (shard globs contain them). A trailing `--set` without value is an error.
absl::StatusOr<std::vector<std::string>> ExtractOverrideFlags(int* argc, char** argv);

// The text-proto form, with every field (including defaults) spelled out.
std::string RunConfigToText(const RunConfig& config);

}  // namespace loom

#endif  // LOOM_CORE_CONFIG_H_
