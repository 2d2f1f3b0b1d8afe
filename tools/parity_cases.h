// Golden-case checking for //tools:parity: finds case files, decides what
// kind of case each is, and runs it through the checker registered for that
// kind (format of the cases: shared/golden/README.md).
//
//   CheckerRegistry registry = DefaultCheckerRegistry();
//   LOOM_ASSIGN_OR_RETURN(auto files, CollectCaseFiles("golden/tokenizer,x.safetensors"));
//   for (const auto& f : files)
//     for (const CaseResult& r : RunCaseFile(f, registry, options))
//       std::puts(FormatCaseResult(r).c_str());
//
// Kinds: "tokenizer:<name>" for JSON tokenizer cases ({"tokenizer", "cases":
// [{"text", "ids"}]}; names starting with "gpt2" map to "tokenizer:gpt2") and
// "layer:<__metadata__.layer>" for safetensors layer cases. A case whose kind
// has no checker is a failure ("unsupported case type"), never a skip; adding
// layer support is one CheckerRegistry::Register call.
#ifndef LOOM_TOOLS_PARITY_CASES_H_
#define LOOM_TOOLS_PARITY_CASES_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/json.h"
#include "core/safetensors.h"

namespace loom {
namespace parity {

struct ParityOptions {
  // Where tokenizer vocabularies live (see data::DefaultVocabDir).
  std::string gpt2_vocab_dir;
};

struct CaseResult {
  bool pass = false;
  std::string file;
  // Case index within the file; -1 when the file is a single case.
  int index = -1;
  std::string description;
  // "max_err=<e>" on success; on failure what went wrong.
  std::string detail;
};

// One case file, loaded and classified.
struct CaseFile {
  std::string path;
  std::string kind;
  std::optional<Json> json;                    // for .json files
  std::optional<SafetensorsFile> safetensors;  // for .safetensors files
};

using CaseChecker =
    std::function<std::vector<CaseResult>(const CaseFile&, const ParityOptions&)>;

class CheckerRegistry {
 public:
  void Register(const std::string& kind, CaseChecker checker);
  // nullptr if no checker handles `kind`.
  const CaseChecker* Find(const std::string& kind) const;

 private:
  std::map<std::string, CaseChecker> checkers_;
};

// The registry with every checker Loom implements so far (tokenizers).
CheckerRegistry DefaultCheckerRegistry();

// Expands comma-separated files and directories into case files (*.json and
// *.safetensors, directories searched recursively), sorted per argument.
// NotFound naming any path that does not exist.
absl::StatusOr<std::vector<std::string>> CollectCaseFiles(
    const std::string& spec);

// Loads and classifies a case file.
absl::StatusOr<CaseFile> LoadCaseFile(const std::string& path);

// Runs every case in `path`. Files that cannot be loaded and kinds without a
// checker produce failing results.
std::vector<CaseResult> RunCaseFile(const std::string& path,
                                    const CheckerRegistry& registry,
                                    const ParityOptions& options);

// "PASS  file#3  \"Hello world\"  max_err=0".
std::string FormatCaseResult(const CaseResult& r);

// First `max_chars` code points of `text` as a JSON string literal, with
// "..." appended when cut.
std::string ShortDescription(absl::string_view text, int max_chars = 40);

}  // namespace parity
}  // namespace loom

#endif  // LOOM_TOOLS_PARITY_CASES_H_
