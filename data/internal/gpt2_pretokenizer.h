// The GPT-2 pretokenizer: splits text into the pieces BPE runs on, exactly as
// the JavaScript regex of the reference encoder (npm gpt-3-encoder) does:
//
//   /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu
//
// with JavaScript's \s (ASCII whitespace plus U+00A0, U+1680, U+2000-U+200A,
// U+2028, U+2029, U+202F, U+205F, U+3000, U+FEFF). Hand-written rather than a
// regex engine for speed and to pin the semantics. Bytes that are not valid
// UTF-8 count as single "other" characters, so any input is split and the
// pieces always concatenate back to the input.
#ifndef LOOM_DATA_INTERNAL_GPT2_PRETOKENIZER_H_
#define LOOM_DATA_INTERNAL_GPT2_PRETOKENIZER_H_

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"

namespace loom {
namespace data {
namespace internal {

enum class CharClass : uint8_t { kWhitespace, kLetter, kNumber, kOther };

// Class of a code point under the regex above.
CharClass ClassifyCodepoint(uint32_t cp);

// Calls `fn(piece)` for each pretoken of `text`, in order.
template <typename Fn>
void ForEachGpt2Pretoken(absl::string_view text, Fn&& fn);

std::vector<absl::string_view> Gpt2Pretokenize(absl::string_view text);

// Decodes the code point at text[i] (i < text.size()); invalid UTF-8 yields
// the single byte with class kOther. Sets *len to the bytes consumed.
CharClass ClassAt(absl::string_view text, size_t i, size_t* len);

// Byte offset just past the maximal run of characters of class `cls`
// starting at i; *last_start receives the offset of the run's last character.
size_t RunEnd(absl::string_view text, size_t i, CharClass cls,
              size_t* last_start);

// Length of the pretoken starting at text[i].
size_t NextPretokenLength(absl::string_view text, size_t i);

template <typename Fn>
void ForEachGpt2Pretoken(absl::string_view text, Fn&& fn) {
  size_t i = 0;
  while (i < text.size()) {
    size_t n = NextPretokenLength(text, i);
    fn(text.substr(i, n));
    i += n;
  }
}

}  // namespace internal
}  // namespace data
}  // namespace loom

#endif  // LOOM_DATA_INTERNAL_GPT2_PRETOKENIZER_H_
