// parity: checks Loom against golden cases produced by reference
// implementations.
//
//   parity --cases=../shared/golden/tokenizer[,more/dirs,or/file.safetensors]
//
// Prints one "PASS|FAIL  <file>#<index>  <description>  <detail>" line per
// case, then "N passed, M failed"; exits 1 if any case failed (including
// case kinds Loom cannot check yet) and 2 on usage errors.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "data/tokenizer.h"
#include "tools/parity_cases.h"
#include "tools/parity_s4_sgconv.h"
#include "tools/parity_structured_ffn.h"

ABSL_FLAG(std::string, cases, "",
          "Comma-separated case files or directories (searched recursively).");
ABSL_FLAG(std::string, vocab_dir, "",
          "GPT-2 vocabulary directory (default: the bundled one).");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("parity --cases=PATH[,PATH...]");
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    std::fprintf(stderr, "parity: error: unexpected argument '%s'\n", rest[1]);
    return 2;
  }
  const std::string spec = absl::GetFlag(FLAGS_cases);
  if (spec.empty()) {
    std::fprintf(stderr, "parity: error: --cases is required\n");
    return 2;
  }
  loom::parity::ParityOptions options;
  options.gpt2_vocab_dir = absl::GetFlag(FLAGS_vocab_dir);
  if (options.gpt2_vocab_dir.empty()) {
    options.gpt2_vocab_dir = loom::data::DefaultVocabDir("gpt2", argv[0]);
  }
  auto files = loom::parity::CollectCaseFiles(spec);
  if (!files.ok()) {
    std::fprintf(stderr, "parity: error: %s\n",
                 std::string(files.status().message()).c_str());
    return 2;
  }
  loom::parity::CheckerRegistry registry = loom::parity::DefaultCheckerRegistry();
  loom::parity::RegisterStructuredFfnCheckers(&registry);
  loom::parity::RegisterS4SgConvCheckers(&registry);
  int passed = 0;
  int failed = 0;
  for (const std::string& file : *files) {
    for (const auto& r : loom::parity::RunCaseFile(file, registry, options)) {
      std::printf("%s\n", loom::parity::FormatCaseResult(r).c_str());
      (r.pass ? passed : failed)++;
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
