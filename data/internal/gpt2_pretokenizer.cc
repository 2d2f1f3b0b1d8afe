#include "data/internal/gpt2_pretokenizer.h"

#include <array>

#include "data/internal/unicode_tables.h"

namespace loom {
namespace data {
namespace internal {
namespace {

bool IsJsWhitespace(uint32_t cp) {
  switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20:
    case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F:
    case 0x205F: case 0x3000: case 0xFEFF:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

std::array<CharClass, 128> MakeAsciiTable() {
  std::array<CharClass, 128> t{};
  for (uint32_t c = 0; c < 128; ++c) t[c] = ClassifyCodepoint(c);
  return t;
}

const std::array<CharClass, 128>& AsciiTable() {
  static const std::array<CharClass, 128> table = MakeAsciiTable();
  return table;
}

}  // namespace

CharClass ClassifyCodepoint(uint32_t cp) {
  if (IsJsWhitespace(cp)) return CharClass::kWhitespace;
  if (cp < 128) {
    if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return CharClass::kLetter;
    if (cp >= '0' && cp <= '9') return CharClass::kNumber;
    return CharClass::kOther;
  }
  if (IsUnicodeLetter(cp)) return CharClass::kLetter;
  if (IsUnicodeNumber(cp)) return CharClass::kNumber;
  return CharClass::kOther;
}

CharClass ClassAt(absl::string_view text, size_t i, size_t* len) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(text.data()) + i;
  const size_t avail = text.size() - i;
  unsigned char c = p[0];
  if (c < 0x80) {
    *len = 1;
    return AsciiTable()[c];
  }
  size_t n;
  uint32_t cp, min;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2; cp = c & 0x1F; min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3; cp = c & 0x0F; min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4; cp = c & 0x07; min = 0x10000;
  } else {
    *len = 1;
    return CharClass::kOther;
  }
  if (avail < n) {
    *len = 1;
    return CharClass::kOther;
  }
  for (size_t k = 1; k < n; ++k) {
    if ((p[k] & 0xC0) != 0x80) {
      *len = 1;
      return CharClass::kOther;
    }
    cp = (cp << 6) | (p[k] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    *len = 1;
    return CharClass::kOther;
  }
  *len = n;
  return ClassifyCodepoint(cp);
}

size_t RunEnd(absl::string_view text, size_t i, CharClass cls,
              size_t* last_start) {
  size_t last = i;
  while (i < text.size()) {
    size_t len;
    if (ClassAt(text, i, &len) != cls) break;
    last = i;
    i += len;
  }
  if (last_start != nullptr) *last_start = last;
  return i;
}

size_t NextPretokenLength(absl::string_view text, size_t i) {
  const size_t n = text.size();
  // 's 't 're 've 'm 'll 'd (case-sensitive, ASCII apostrophe only).
  if (text[i] == '\'' && i + 1 < n) {
    char a = text[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 < n) {
      char b = text[i + 2];
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') ||
          (a == 'l' && b == 'l')) {
        return 3;
      }
    }
  }
  size_t len;
  CharClass c0 = ClassAt(text, i, &len);
  // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": a single U+0020 may lead a
  // run of letters, numbers or other characters.
  if (text[i] == ' ' && i + 1 < n) {
    size_t len1;
    CharClass c1 = ClassAt(text, i + 1, &len1);
    if (c1 != CharClass::kWhitespace) {
      return RunEnd(text, i + 1, c1, nullptr) - i;
    }
  }
  if (c0 != CharClass::kWhitespace) return RunEnd(text, i, c0, nullptr) - i;
  // "\s+(?!\S)": whitespace up to the end, or all but the last whitespace
  // character before a non-space (which then leads the next piece);
  // otherwise "\s+" takes the single whitespace character.
  size_t last;
  size_t end = RunEnd(text, i, CharClass::kWhitespace, &last);
  if (end == n || last == i) return end - i;
  return last - i;
}

std::vector<absl::string_view> Gpt2Pretokenize(absl::string_view text) {
  std::vector<absl::string_view> out;
  ForEachGpt2Pretoken(text, [&](absl::string_view p) { out.push_back(p); });
  return out;
}

}  // namespace internal
}  // namespace data
}  // namespace loom
