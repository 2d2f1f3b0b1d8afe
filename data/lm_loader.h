// Language-model batches from token shards, deterministic and rank-aware.
//
// The shards (data/token_shard.h) are read as one token stream, cut into rows of seq_len + 1
// tokens that overlap by one (inputs = row[0:T], targets = row[1:T+1]), as the StructuredFFN
// reference does. Optimizer step s consumes the positions
//   p = s * global_batch + [0, global_batch)
// of an endless sequence of epochs; position p is row perm_e(p mod R) of epoch e = p / R, where
// R is the number of rows and perm_e a pseudo-random permutation keyed by (seed, e) (a Feistel
// network, O(1) memory) or the identity when shuffling is off. Rank r of W takes the contiguous
// slice [r * global_batch / W, (r + 1) * global_batch / W) of the step, split into
// micro-batches. So a batch is a pure function of (seed, step, rank, micro-batch): resuming at
// step s continues exactly, and N ranks see exactly the rows one rank would. Every row is seen
// once per epoch.
//
//   LOOM_ASSIGN_OR_RETURN(auto data, LmDataset::Open("shards/train_*.bin", 256, 50257));
//   LmBatchLoader loader(data.get(), /*global_batch=*/8, /*micro_batch=*/4, rank, world);
//   LmBatch b = loader.Get(step, micro);   // b.inputs, b.targets: int64 (4, 256)
#ifndef LOOM_DATA_LM_LOADER_H_
#define LOOM_DATA_LM_LOADER_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/token_shard.h"

namespace loom::data {

class LmDataset {
 public:
  // `patterns`: comma-separated globs. Every token is checked to be < vocab_size.
  static absl::StatusOr<std::unique_ptr<LmDataset>> Open(const std::string& patterns,
                                                         int64_t seq_len, int64_t vocab_size);
  int64_t num_tokens() const { return total_tokens_; }
  int64_t num_rows() const { return num_rows_; }
  int64_t seq_len() const { return seq_len_; }
  const std::vector<std::string>& files() const { return files_; }
  // Writes seq_len inputs and seq_len targets of row `row` (0 <= row < num_rows).
  void FillRow(int64_t row, int64_t* inputs, int64_t* targets) const;

 private:
  uint16_t TokenAt(int64_t index) const;
  std::vector<std::unique_ptr<TokenShardReader>> shards_;
  std::vector<int64_t> starts_;  // first global token index of each shard
  std::vector<std::string> files_;
  int64_t total_tokens_ = 0;
  int64_t num_rows_ = 0;
  int64_t seq_len_ = 0;
};

// A keyed pseudo-random bijection on [0, n): a 4-round Feistel network on the smallest
// even-bit-width power of two >= n, cycle-walking back into range.
class RowPermutation {
 public:
  RowPermutation(int64_t n, uint64_t key);
  int64_t operator()(int64_t i) const;

 private:
  uint64_t Encrypt(uint64_t x) const;
  int64_t n_;
  uint64_t key_;
  int half_bits_;
  uint64_t mask_;
};

struct LmBatch {
  at::Tensor inputs;   // int64 (micro_batch, seq_len)
  at::Tensor targets;  // int64 (micro_batch, seq_len)
};

class LmBatchLoader {
 public:
  LmBatchLoader(const LmDataset* dataset, int64_t global_batch, int64_t micro_batch, int rank,
                int world_size, bool shuffle = false, uint64_t seed = 0);
  int64_t micro_batches_per_step() const { return micro_per_step_; }
  LmBatch Get(int64_t step, int64_t micro_index) const;
  // The first `num_batches` micro-batches of the split, for evaluation (0 = all full ones).
  int64_t NumEvalBatches(int64_t requested) const;
  LmBatch GetEval(int64_t index) const;

 private:
  // The dataset row at stream position `position`.
  int64_t RowAt(int64_t position) const;
  LmBatch Rows(int64_t first_position, int64_t count, bool shuffled) const;
  const LmDataset* dataset_;
  bool shuffle_;
  uint64_t seed_;
  int64_t global_batch_;
  int64_t micro_batch_;
  int rank_;
  int world_size_;
  int64_t micro_per_step_;
};

}  // namespace loom::data

#endif  // LOOM_DATA_LM_LOADER_H_
