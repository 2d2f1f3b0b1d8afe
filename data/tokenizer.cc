#include "data/tokenizer.h"

#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/file_io.h"
#include "data/byte_tokenizer.h"
#include "data/gpt2_bpe_tokenizer.h"

namespace loom {
namespace data {

absl::StatusOr<std::unique_ptr<Tokenizer>> MakeTokenizer(
    absl::string_view name, const std::string& vocab_dir) {
  if (name == "byte") return std::unique_ptr<Tokenizer>(new ByteTokenizer());
  if (name == "gpt2") {
    auto tok = Gpt2BpeTokenizer::Load(vocab_dir);
    if (!tok.ok()) return tok.status();
    return std::unique_ptr<Tokenizer>(std::move(*tok));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown tokenizer '", name, "' (expected 'byte' or 'gpt2')"));
}

std::string DefaultVocabDir(absl::string_view tokenizer_name,
                            const char* argv0) {
  if (const char* env = std::getenv("LOOM_VOCAB_DIR"); env && *env) return env;
  const std::string rel = absl::StrCat("data/tokenizers/", tokenizer_name);
  std::vector<std::string> candidates;
  if (argv0 != nullptr && *argv0) {
    candidates.push_back(absl::StrCat(argv0, ".runfiles/loom/", rel));
  }
  for (const char* var : {"RUNFILES_DIR", "TEST_SRCDIR"}) {
    if (const char* dir = std::getenv(var); dir && *dir) {
      candidates.push_back(absl::StrCat(dir, "/loom/", rel));
    }
  }
  for (const std::string& c : candidates) {
    if (FileExists(c)) return c;
  }
  return rel;
}

}  // namespace data
}  // namespace loom
