// The Tokenizer interface shared by Loom's tokenizers. Include
// "data/tokenizer.h" to construct one by name.
#ifndef LOOM_DATA_TOKENIZER_BASE_H_
#define LOOM_DATA_TOKENIZER_BASE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace loom {
namespace data {

// Maps text (arbitrary bytes, normally UTF-8) to token ids and back.
// Implementations are thread-compatible for const methods: Encode and Decode
// may be called concurrently.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Never fails: bytes that are not valid UTF-8 are still encoded, so
  // Decode(Encode(text)) == text for every input. The end-of-text token is
  // never produced from text (not even from the literal "<|endoftext|>").
  virtual std::vector<int32_t> Encode(absl::string_view text) const = 0;
  // Concatenated bytes of the tokens; the end-of-text token decodes as
  // "<|endoftext|>". InvalidArgument for ids outside [0, vocab_size()).
  virtual absl::StatusOr<std::string> Decode(
      absl::Span<const int32_t> ids) const = 0;
  virtual int32_t vocab_size() const = 0;
  virtual int32_t eot_token() const = 0;
  // "byte" or "gpt2": the name MakeTokenizer accepts.
  virtual std::string name() const = 0;
};

}  // namespace data
}  // namespace loom

#endif  // LOOM_DATA_TOKENIZER_BASE_H_
