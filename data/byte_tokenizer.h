// Byte-level tokenizer: token i < 256 is byte i, token 256 is end-of-text.
// Needs no vocabulary files; used for small experiments and tests.
//
//   ByteTokenizer tok;
//   std::vector<int32_t> ids = tok.Encode("hi");  // {104, 105}
#ifndef LOOM_DATA_BYTE_TOKENIZER_H_
#define LOOM_DATA_BYTE_TOKENIZER_H_

#include "data/tokenizer_base.h"

namespace loom {
namespace data {

class ByteTokenizer : public Tokenizer {
 public:
  static constexpr int32_t kEot = 256;

  std::vector<int32_t> Encode(absl::string_view text) const override;
  absl::StatusOr<std::string> Decode(
      absl::Span<const int32_t> ids) const override;
  int32_t vocab_size() const override { return 257; }
  int32_t eot_token() const override { return kEot; }
  std::string name() const override { return "byte"; }
};

}  // namespace data
}  // namespace loom

#endif  // LOOM_DATA_BYTE_TOKENIZER_H_
