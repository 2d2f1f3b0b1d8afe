#include "data/byte_tokenizer.h"

#include "absl/strings/str_cat.h"

namespace loom {
namespace data {

std::vector<int32_t> ByteTokenizer::Encode(absl::string_view text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    ids[i] = static_cast<unsigned char>(text[i]);
  }
  return ids;
}

absl::StatusOr<std::string> ByteTokenizer::Decode(
    absl::Span<const int32_t> ids) const {
  std::string out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    int32_t id = ids[i];
    if (id >= 0 && id < 256) {
      out.push_back(static_cast<char>(id));
    } else if (id == kEot) {
      out += "<|endoftext|>";
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("byte tokenizer: token id ", id, " at position ", i,
                       " is outside [0, 257)"));
    }
  }
  return out;
}

}  // namespace data
}  // namespace loom
