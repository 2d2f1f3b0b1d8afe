#include "data/gpt2_bpe_tokenizer.h"

#include <limits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/file_io.h"
#include "core/json.h"
#include "core/status_macros.h"
#include "data/internal/gpt2_pretokenizer.h"

namespace loom {
namespace data {
namespace {

// Bounds the cache on adversarial input (e.g. random bytes), where pieces
// rarely repeat; cleared wholesale when full.
constexpr size_t kMaxCacheEntries = 1 << 20;
// Pieces longer than this are not cached: they rarely repeat.
constexpr size_t kMaxCachedPieceBytes = 64;

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes map to themselves, the
// rest to U+0100 upwards in byte order.
std::vector<uint32_t> ByteToCodepoint() {
  std::vector<uint32_t> map(256, 0);
  std::vector<bool> direct(256, false);
  for (int b = '!'; b <= '~'; ++b) direct[b] = true;
  for (int b = 0xA1; b <= 0xAC; ++b) direct[b] = true;
  for (int b = 0xAE; b <= 0xFF; ++b) direct[b] = true;
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) map[b] = direct[b] ? b : next++;
  return map;
}

// Undoes the byte-to-unicode mapping of an encoder.json / vocab.bpe token.
// False if it contains a character outside the mapping.
bool TokenStringToBytes(absl::string_view s,
                        const absl::flat_hash_map<uint32_t, uint8_t>& decoder,
                        std::string* out) {
  out->clear();
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    size_t n;
    if (c < 0x80) {
      cp = c; n = 1;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < s.size()) {
      cp = ((c & 0x1F) << 6) | (s[i + 1] & 0x3F); n = 2;
    } else {
      return false;  // The mapping only uses code points below U+0800.
    }
    auto it = decoder.find(cp);
    if (it == decoder.end()) return false;
    out->push_back(static_cast<char>(it->second));
    i += n;
  }
  return true;
}

inline uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) |
         static_cast<uint32_t>(b);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Gpt2BpeTokenizer>> Gpt2BpeTokenizer::Load(
    const std::string& vocab_dir) {
  const std::string enc_path = vocab_dir + "/encoder.json";
  const std::string bpe_path = vocab_dir + "/vocab.bpe";
  auto enc = ReadFileToString(enc_path);
  if (!enc.ok()) {
    return absl::Status(
        enc.status().code(),
        absl::StrCat("GPT-2 vocabulary not found (set --vocab_dir or "
                     "LOOM_VOCAB_DIR): ", enc.status().message()));
  }
  LOOM_ASSIGN_OR_RETURN(std::string bpe, ReadFileToString(bpe_path));
  return FromStrings(*enc, bpe, vocab_dir);
}

absl::StatusOr<std::unique_ptr<Gpt2BpeTokenizer>> Gpt2BpeTokenizer::FromStrings(
    absl::string_view encoder_json, absl::string_view vocab_bpe,
    absl::string_view source) {
  std::unique_ptr<Gpt2BpeTokenizer> tok(new Gpt2BpeTokenizer());
  auto bad = [&](absl::string_view file, absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("GPT-2 vocabulary '", source, "/", file, "': ", what));
  };
  std::vector<uint32_t> b2u = ByteToCodepoint();
  absl::flat_hash_map<uint32_t, uint8_t> u2b;
  for (int b = 0; b < 256; ++b) u2b[b2u[b]] = static_cast<uint8_t>(b);

  auto parsed = Json::Parse(encoder_json);
  if (!parsed.ok()) return bad("encoder.json", parsed.status().message());
  if (!parsed->is_object()) return bad("encoder.json", "not a JSON object");
  const size_t n = parsed->size();
  tok->token_bytes_.assign(n, std::string());
  std::vector<bool> seen(n, false);
  absl::flat_hash_map<std::string, int32_t> bytes_to_id;
  bytes_to_id.reserve(n);
  std::string raw;
  bool have_eot = false;
  for (const auto& [key, value] : parsed->object()) {
    if (!value.is_int64() || value.as_int64() < 0 ||
        value.as_int64() >= static_cast<int64_t>(n)) {
      return bad("encoder.json", absl::StrCat("id of token ", JsonQuote(key),
                                              " is not an integer in [0, ", n,
                                              ")"));
    }
    int32_t id = static_cast<int32_t>(value.as_int64());
    if (seen[id]) {
      return bad("encoder.json", absl::StrCat("id ", id, " used twice"));
    }
    seen[id] = true;
    if (key == "<|endoftext|>") {
      tok->eot_ = id;
      have_eot = true;
      tok->token_bytes_[id] = key;
      continue;
    }
    if (!TokenStringToBytes(key, u2b, &raw)) {
      return bad("encoder.json",
                 absl::StrCat("token ", JsonQuote(key),
                              " is not in GPT-2's byte-to-unicode alphabet"));
    }
    tok->token_bytes_[id] = raw;
    bytes_to_id.emplace(raw, id);
  }
  if (!have_eot) return bad("encoder.json", "no \"<|endoftext|>\" token");
  for (int b = 0; b < 256; ++b) {
    auto it = bytes_to_id.find(std::string(1, static_cast<char>(b)));
    if (it == bytes_to_id.end()) {
      return bad("encoder.json", absl::StrCat("no token for byte ", b));
    }
    tok->byte_token_[b] = it->second;
  }

  int32_t rank = 0;
  int line_no = 0;
  std::string left, right;
  for (absl::string_view line : absl::StrSplit(vocab_bpe, '\n')) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && absl::StartsWith(line, "#version"))) {
      continue;
    }
    size_t sp = line.find(' ');
    if (sp == absl::string_view::npos || sp == 0 || sp + 1 == line.size() ||
        line.find(' ', sp + 1) != absl::string_view::npos) {
      return bad("vocab.bpe", absl::StrCat("line ", line_no,
                                           ": expected \"left right\""));
    }
    if (!TokenStringToBytes(line.substr(0, sp), u2b, &left) ||
        !TokenStringToBytes(line.substr(sp + 1), u2b, &right)) {
      return bad("vocab.bpe", absl::StrCat("line ", line_no,
                                           ": character outside GPT-2's "
                                           "byte-to-unicode alphabet"));
    }
    auto l = bytes_to_id.find(left);
    auto r = bytes_to_id.find(right);
    auto m = bytes_to_id.find(left + right);
    if (l == bytes_to_id.end() || r == bytes_to_id.end() ||
        m == bytes_to_id.end()) {
      return bad("vocab.bpe", absl::StrCat("line ", line_no, ": merge '", line,
                                           "' uses or makes a token missing "
                                           "from encoder.json"));
    }
    // The first (highest-priority) occurrence of a pair wins.
    tok->merges_.try_emplace(PairKey(l->second, r->second),
                             Merge{rank, m->second});
    ++rank;
  }
  return tok;
}

std::vector<int32_t> Gpt2BpeTokenizer::Bpe(absl::string_view piece) const {
  std::vector<int32_t> word(piece.size());
  for (size_t i = 0; i < piece.size(); ++i) {
    word[i] = byte_token_[static_cast<unsigned char>(piece[i])];
  }
  std::vector<int32_t> next;
  next.reserve(word.size());
  while (word.size() > 1) {
    int32_t best_rank = std::numeric_limits<int32_t>::max();
    int32_t a = -1, b = -1, merged = -1;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = merges_.find(PairKey(word[i], word[i + 1]));
      if (it != merges_.end() && it->second.rank < best_rank) {
        best_rank = it->second.rank;
        a = word[i];
        b = word[i + 1];
        merged = it->second.merged;
      }
    }
    if (merged < 0) break;
    // Merge every occurrence left to right, like the reference.
    next.clear();
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == a && word[i + 1] == b) {
        next.push_back(merged);
        i += 2;
      } else {
        next.push_back(word[i]);
        i += 1;
      }
    }
    word.swap(next);
  }
  return word;
}

void Gpt2BpeTokenizer::EncodePiece(absl::string_view piece,
                                   std::vector<int32_t>* out) const {
  if (piece.size() == 1) {
    out->push_back(byte_token_[static_cast<unsigned char>(piece[0])]);
    return;
  }
  const bool cacheable = piece.size() <= kMaxCachedPieceBytes;
  if (cacheable) {
    absl::MutexLock lock(&cache_mu_);
    auto it = cache_.find(piece);
    if (it != cache_.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids = Bpe(piece);
  out->insert(out->end(), ids.begin(), ids.end());
  if (cacheable) {
    absl::MutexLock lock(&cache_mu_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(std::string(piece), std::move(ids));
  }
}

std::vector<int32_t> Gpt2BpeTokenizer::Encode(absl::string_view text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 1);
  internal::ForEachGpt2Pretoken(
      text, [&](absl::string_view piece) { EncodePiece(piece, &out); });
  return out;
}

absl::StatusOr<std::string> Gpt2BpeTokenizer::Decode(
    absl::Span<const int32_t> ids) const {
  std::string out;
  out.reserve(ids.size() * 4);
  for (size_t i = 0; i < ids.size(); ++i) {
    int32_t id = ids[i];
    if (id < 0 || id >= vocab_size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("gpt2 tokenizer: token id ", id, " at position ", i,
                       " is outside [0, ", vocab_size(), ")"));
    }
    out += token_bytes_[id];
  }
  return out;
}

}  // namespace data
}  // namespace loom
