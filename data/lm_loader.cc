#include "data/lm_loader.h"

#include <ATen/Functions.h>
#include <c10/util/Exception.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"

namespace loom::data {

absl::StatusOr<std::unique_ptr<LmDataset>> LmDataset::Open(const std::string& patterns,
                                                           int64_t seq_len, int64_t vocab_size) {
  auto ds = std::unique_ptr<LmDataset>(new LmDataset());
  ds->seq_len_ = seq_len;
  for (absl::string_view pattern : absl::StrSplit(patterns, ',', absl::SkipWhitespace())) {
    LOOM_ASSIGN_OR_RETURN(std::vector<std::string> files,
                          ExpandShardPattern(std::string(pattern)));
    for (const std::string& f : files) {
      LOOM_ASSIGN_OR_RETURN(auto reader, TokenShardReader::Open(f));
      if (reader->vocab_size() > 0 && reader->vocab_size() != vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat(
            f, ": shard was written for vocab size ", reader->vocab_size(),
            " but the model's vocab size is ", vocab_size, " (check data.tokenizer)"));
      }
      const uint16_t* t = reader->tokens();
      const uint16_t max = reader->num_tokens() == 0
                               ? 0
                               : *std::max_element(t, t + reader->num_tokens());
      if (reader->num_tokens() > 0 && max >= vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat(f, ": token id ", max,
                                                       " is out of range for vocab size ",
                                                       vocab_size));
      }
      ds->starts_.push_back(ds->total_tokens_);
      ds->total_tokens_ += reader->num_tokens();
      ds->files_.push_back(f);
      ds->shards_.push_back(std::move(reader));
    }
  }
  if (ds->total_tokens_ < seq_len + 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shards \"", patterns, "\" hold ", ds->total_tokens_, " tokens, fewer than one row of ",
        seq_len + 1, " (train.seq_len + 1)"));
  }
  ds->num_rows_ = (ds->total_tokens_ - 1) / seq_len;
  return ds;
}

uint16_t LmDataset::TokenAt(int64_t index) const {
  auto it = std::upper_bound(starts_.begin(), starts_.end(), index);
  const size_t s = static_cast<size_t>(it - starts_.begin()) - 1;
  return shards_[s]->tokens()[index - starts_[s]];
}

void LmDataset::FillRow(int64_t row, int64_t* inputs, int64_t* targets) const {
  const int64_t begin = row * seq_len_;
  for (int64_t i = 0; i < seq_len_; ++i) {
    inputs[i] = TokenAt(begin + i);
    targets[i] = TokenAt(begin + i + 1);
  }
}

namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

RowPermutation::RowPermutation(int64_t n, uint64_t key) : n_(n), key_(SplitMix64(key)) {
  int bits = 2;
  while ((int64_t{1} << bits) < n) ++bits;
  if (bits % 2 == 1) ++bits;
  half_bits_ = bits / 2;
  mask_ = (uint64_t{1} << half_bits_) - 1;
}

uint64_t RowPermutation::Encrypt(uint64_t x) const {
  uint64_t left = x >> half_bits_, right = x & mask_;
  for (uint64_t round = 0; round < 4; ++round) {
    const uint64_t f = SplitMix64(key_ ^ (round << 56) ^ right) & mask_;
    const uint64_t next = left ^ f;
    left = right;
    right = next;
  }
  return (left << half_bits_) | right;
}

int64_t RowPermutation::operator()(int64_t i) const {
  uint64_t y = Encrypt(static_cast<uint64_t>(i));
  // The domain is < 4n, so this takes fewer than 4 rounds on average.
  while (y >= static_cast<uint64_t>(n_)) y = Encrypt(y);
  return static_cast<int64_t>(y);
}

LmBatchLoader::LmBatchLoader(const LmDataset* dataset, int64_t global_batch, int64_t micro_batch,
                             int rank, int world_size, bool shuffle, uint64_t seed)
    : dataset_(dataset),
      shuffle_(shuffle),
      seed_(seed),
      global_batch_(global_batch),
      micro_batch_(micro_batch),
      rank_(rank),
      world_size_(world_size) {
  TORCH_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "bad rank ", rank, " of ",
              world_size);
  TORCH_CHECK(global_batch % (micro_batch * world_size) == 0, "global batch ", global_batch,
              " is not a multiple of micro batch ", micro_batch, " x world size ", world_size);
  micro_per_step_ = global_batch / (micro_batch * world_size);
}

int64_t LmBatchLoader::RowAt(int64_t position) const {
  const int64_t rows = dataset_->num_rows();
  const int64_t within = position % rows;
  if (!shuffle_) return within;
  const int64_t epoch = position / rows;
  // Building the permutation is a few arithmetic operations; no need to cache it.
  return RowPermutation(rows, seed_ * 0x100000001b3ULL + static_cast<uint64_t>(epoch))(within);
}

LmBatch LmBatchLoader::Rows(int64_t first_position, int64_t count, bool shuffled) const {
  const int64_t t = dataset_->seq_len();
  LmBatch b;
  b.inputs = at::empty({count, t}, at::kLong);
  b.targets = at::empty({count, t}, at::kLong);
  int64_t* in = b.inputs.mutable_data_ptr<int64_t>();
  int64_t* tg = b.targets.mutable_data_ptr<int64_t>();
  for (int64_t i = 0; i < count; ++i) {
    const int64_t position = first_position + i;
    const int64_t row = shuffled ? RowAt(position) : position % dataset_->num_rows();
    dataset_->FillRow(row, in + i * t, tg + i * t);
  }
  return b;
}

LmBatch LmBatchLoader::Get(int64_t step, int64_t micro_index) const {
  const int64_t per_rank = global_batch_ / world_size_;
  const int64_t first =
      step * global_batch_ + rank_ * per_rank + micro_index * micro_batch_;
  return Rows(first, micro_batch_, shuffle_);
}

int64_t LmBatchLoader::NumEvalBatches(int64_t requested) const {
  // A split smaller than one micro-batch still gives one (short) batch.
  const int64_t available = std::max<int64_t>(1, dataset_->num_rows() / micro_batch_);
  return requested <= 0 ? available : std::min(requested, available);
}

LmBatch LmBatchLoader::GetEval(int64_t index) const {
  return Rows(index * micro_batch_, std::min(micro_batch_, dataset_->num_rows()),
              /*shuffled=*/false);
}

}  // namespace loom::data
