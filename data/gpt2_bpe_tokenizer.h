// GPT-2's byte-level BPE tokenizer, matching the reference JavaScript encoder
// (npm gpt-3-encoder 1.1.4) token for token.
//
//   LOOM_ASSIGN_OR_RETURN(auto tok, Gpt2BpeTokenizer::Load(vocab_dir));
//   std::vector<int32_t> ids = tok->Encode(" Hello  world!!");
//   // {18435, 220, 995, 3228}
//
// `vocab_dir` holds encoder.json (token string -> id, tokens written with
// GPT-2's printable byte-to-unicode mapping) and vocab.bpe (merges by
// priority, one "left right" pair per line after a "#version" line).
// "<|endoftext|>" (id 50256) is only produced by callers, never from text.
#ifndef LOOM_DATA_GPT2_BPE_TOKENIZER_H_
#define LOOM_DATA_GPT2_BPE_TOKENIZER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "data/tokenizer_base.h"

namespace loom {
namespace data {

class Gpt2BpeTokenizer : public Tokenizer {
 public:
  // Reads vocab_dir/encoder.json and vocab_dir/vocab.bpe.
  static absl::StatusOr<std::unique_ptr<Gpt2BpeTokenizer>> Load(
      const std::string& vocab_dir);
  // From file contents; `source` names them in error messages.
  static absl::StatusOr<std::unique_ptr<Gpt2BpeTokenizer>> FromStrings(
      absl::string_view encoder_json, absl::string_view vocab_bpe,
      absl::string_view source);

  std::vector<int32_t> Encode(absl::string_view text) const override;
  absl::StatusOr<std::string> Decode(
      absl::Span<const int32_t> ids) const override;
  int32_t vocab_size() const override {
    return static_cast<int32_t>(token_bytes_.size());
  }
  int32_t eot_token() const override { return eot_; }
  std::string name() const override { return "gpt2"; }

 private:
  struct Merge {
    int32_t rank;
    int32_t merged;
  };

  Gpt2BpeTokenizer() = default;
  // Appends the BPE tokens of one pretoken.
  void EncodePiece(absl::string_view piece, std::vector<int32_t>* out) const;
  std::vector<int32_t> Bpe(absl::string_view piece) const;

  // Raw bytes of every id (the byte-to-unicode mapping undone).
  std::vector<std::string> token_bytes_;
  int32_t byte_token_[256] = {};
  // (left id << 32 | right id) -> merge.
  absl::flat_hash_map<uint64_t, Merge> merges_;
  int32_t eot_ = 50256;

  // Pretoken -> ids. Text repeats its words, so this turns BPE into one
  // hash lookup for nearly every piece.
  mutable absl::Mutex cache_mu_;
  mutable absl::flat_hash_map<std::string, std::vector<int32_t>> cache_
      ABSL_GUARDED_BY(cache_mu_);
};

}  // namespace data
}  // namespace loom

#endif  // LOOM_DATA_GPT2_BPE_TOKENIZER_H_
