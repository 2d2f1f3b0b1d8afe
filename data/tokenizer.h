// Tokenizers by name, and where to find their vocabulary files.
//
//   std::string dir = DefaultVocabDir("gpt2", argv[0]);
//   LOOM_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, MakeTokenizer("gpt2", dir));
//   std::vector<int32_t> ids = tok->Encode("Hello world");  // {15496, 995}
//   ids.push_back(tok->eot_token());
//
// Names: "byte" (UTF-8 bytes 0..255 plus end-of-text 256; needs no files)
// and "gpt2" (GPT-2 BPE from encoder.json + vocab.bpe in the vocab dir,
// bundled as //data:gpt2_vocab).
#ifndef LOOM_DATA_TOKENIZER_H_
#define LOOM_DATA_TOKENIZER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "data/tokenizer_base.h"  // IWYU pragma: export

namespace loom {
namespace data {

absl::StatusOr<std::unique_ptr<Tokenizer>> MakeTokenizer(
    absl::string_view name, const std::string& vocab_dir);

// The directory holding the bundled vocabulary of `tokenizer_name`, looked
// up in order: env LOOM_VOCAB_DIR; the runfiles of the running binary
// (`<argv0>.runfiles/loom/data/tokenizers/<name>`, then
// `$RUNFILES_DIR/loom/...` and `$TEST_SRCDIR/loom/...`); finally
// `data/tokenizers/<name>` relative to the working directory (returned even
// if missing, so loading reports that path). `argv0` may be null.
std::string DefaultVocabDir(absl::string_view tokenizer_name, const char* argv0);

}  // namespace data
}  // namespace loom

#endif  // LOOM_DATA_TOKENIZER_H_
