// Token shards: the on-disk format of tokenized training data.
//
// Format (version 1), compatible with llm.c's GPT-2 shards (dev/data/*.py):
//
//   offset 0:    256 x int32 little-endian header
//                  [0] magic 20240520
//                  [1] version 1 (uint16 tokens)
//                  [2] number of tokens N
//                  [3] CRC32C of the N*2 token bytes      (Loom extension)
//                  [4] 1 if [3] holds a checksum, else 0  (Loom extension)
//                  [5] vocabulary size, 0 if unknown      (Loom extension)
//                  [6..255] zero
//   offset 1024: N x uint16 little-endian token ids
//
// llm.c reads only [0..2] and ignores the rest, so Loom shards load in llm.c
// and llm.c shards (with [4] == 0) load in Loom. The file size must be exactly
// 1024 + 2*N bytes.
//
//   LOOM_RETURN_IF_ERROR(WriteTokenShard(dir + "/train_000000.bin", ids, 50257));
//   LOOM_ASSIGN_OR_RETURN(auto shard, TokenShardReader::Open(path));
//   for (int64_t i = 0; i < shard->num_tokens(); ++i) use(shard->tokens()[i]);
#ifndef LOOM_DATA_TOKEN_SHARD_H_
#define LOOM_DATA_TOKEN_SHARD_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace loom {
namespace data {

inline constexpr int32_t kTokenShardMagic = 20240520;
inline constexpr int32_t kTokenShardVersion = 1;
inline constexpr int kTokenShardHeaderInts = 256;
inline constexpr int64_t kTokenShardHeaderBytes = kTokenShardHeaderInts * 4;

// Writes a version-1 shard with checksum atomically (temp file + rename).
// `vocab_size` 0 means unknown; otherwise every token must be below it.
absl::Status WriteTokenShard(const std::string& path,
                             absl::Span<const uint16_t> tokens,
                             int32_t vocab_size);

// A read-only memory mapping of one shard, validated on Open.
class TokenShardReader {
 public:
  // Maps `path` and checks magic, version, token count against the file size
  // and, if present and `verify_checksum`, the CRC32C of the tokens. Errors
  // name the file and the expected vs actual values.
  static absl::StatusOr<std::unique_ptr<TokenShardReader>> Open(
      const std::string& path, bool verify_checksum = true);

  ~TokenShardReader();
  TokenShardReader(const TokenShardReader&) = delete;
  TokenShardReader& operator=(const TokenShardReader&) = delete;

  int64_t num_tokens() const { return num_tokens_; }
  // Little-endian uint16 values; valid while this reader lives.
  const uint16_t* tokens() const { return tokens_; }
  absl::Span<const uint16_t> token_span() const {
    return absl::MakeConstSpan(tokens_, static_cast<size_t>(num_tokens_));
  }
  // 0 when the shard does not record it (e.g. written by llm.c).
  int32_t vocab_size() const { return vocab_size_; }
  bool has_checksum() const { return has_checksum_; }
  const std::string& path() const { return path_; }

 private:
  TokenShardReader() = default;

  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  const uint16_t* tokens_ = nullptr;
  int64_t num_tokens_ = 0;
  int32_t vocab_size_ = 0;
  bool has_checksum_ = false;
};

// Files matching the glob(3) `pattern`, sorted. NotFound naming the pattern
// if nothing matches.
absl::StatusOr<std::vector<std::string>> ExpandShardPattern(
    const std::string& pattern);

}  // namespace data
}  // namespace loom

#endif  // LOOM_DATA_TOKEN_SHARD_H_
