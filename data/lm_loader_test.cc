#include "data/lm_loader.h"

#include <ATen/ATen.h>

#include <cstdlib>
#include <numeric>
#include <set>
#include <vector>
#include <string>
#include <vector>

#include "data/token_shard.h"
#include "core/testing/test_paths.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loom::data {
namespace {

using ::loom::testing::TempDir;

// Two shards holding the stream 0, 1, 2, ..., 99 (ids mod 50).
std::string WriteShards(const std::string& name) {
  std::vector<uint16_t> a(60), b(40);
  for (int i = 0; i < 60; ++i) a[i] = i % 50;
  for (int i = 0; i < 40; ++i) b[i] = (60 + i) % 50;
  const std::string dir = TempDir() + "/" + name;
  std::system(("mkdir -p " + dir).c_str());
  EXPECT_TRUE(WriteTokenShard(dir + "/train_000000.bin", a, 50).ok());
  EXPECT_TRUE(WriteTokenShard(dir + "/train_000001.bin", b, 50).ok());
  return dir + "/train_*.bin";
}

TEST(LmLoaderTest, RowsSpanShardsAndTargetsAreShiftedByOne) {
  auto ds = LmDataset::Open(WriteShards("span"), 8, 50);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ((*ds)->num_tokens(), 100);
  EXPECT_EQ((*ds)->num_rows(), 12);  // (100 - 1) / 8
  std::vector<int64_t> in(8), tg(8);
  (*ds)->FillRow(7, in.data(), tg.data());  // tokens 56..64 cross the shard boundary at 60
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(in[i], (56 + i) % 50);
    EXPECT_EQ(tg[i], (57 + i) % 50);
  }
}

TEST(LmLoaderTest, RanksPartitionTheGlobalBatchExactly) {
  auto ds = *LmDataset::Open(WriteShards("ranks"), 4, 50);
  LmBatchLoader single(ds.get(), 8, 2, 0, 1, /*shuffle=*/true, /*seed=*/9);
  std::vector<at::Tensor> one;
  for (int m = 0; m < single.micro_batches_per_step(); ++m) one.push_back(single.Get(3, m).inputs);
  std::vector<at::Tensor> many;
  for (int r = 0; r < 2; ++r) {
    LmBatchLoader rank(ds.get(), 8, 2, r, 2, /*shuffle=*/true, /*seed=*/9);
    EXPECT_EQ(rank.micro_batches_per_step(), 2);
    for (int m = 0; m < rank.micro_batches_per_step(); ++m) many.push_back(rank.Get(3, m).inputs);
  }
  EXPECT_TRUE(at::equal(at::cat(one), at::cat(many)));
}

TEST(LmLoaderTest, SameStepSameBatchAndEpochsWrap) {
  auto ds = *LmDataset::Open(WriteShards("wrap"), 8, 50);
  LmBatchLoader loader(ds.get(), 4, 4, 0, 1);
  EXPECT_TRUE(at::equal(loader.Get(2, 0).inputs, loader.Get(2, 0).inputs));
  // 12 rows, 4 per step: step 3 is step 0 again.
  EXPECT_TRUE(at::equal(loader.Get(3, 0).inputs, loader.Get(0, 0).inputs));
  EXPECT_FALSE(at::equal(loader.Get(1, 0).inputs, loader.Get(0, 0).inputs));
}

TEST(LmLoaderTest, RowPermutationIsABijection) {
  for (int64_t n : {1, 2, 3, 7, 12, 100, 1000, 4097}) {
    RowPermutation perm(n, 42);
    std::vector<int> seen(n, 0);
    int64_t fixed_points = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t j = perm(i);
      ASSERT_GE(j, 0);
      ASSERT_LT(j, n);
      seen[j]++;
      fixed_points += (i == j);
    }
    for (int64_t j = 0; j < n; ++j) EXPECT_EQ(seen[j], 1) << "n=" << n << " j=" << j;
    if (n >= 100) EXPECT_LT(fixed_points, n / 10) << "n=" << n;
  }
  EXPECT_NE(RowPermutation(1000, 1)(5), RowPermutation(1000, 2)(5));
}

TEST(LmLoaderTest, ShuffledEpochsCoverEveryRowOnceAndDifferPerEpoch) {
  auto ds = *LmDataset::Open(WriteShards("shuffle"), 4, 50);  // 24 rows
  ASSERT_EQ(ds->num_rows(), 24);
  LmBatchLoader loader(ds.get(), 4, 4, 0, 1, /*shuffle=*/true, /*seed=*/7);
  LmBatchLoader again(ds.get(), 4, 4, 0, 1, /*shuffle=*/true, /*seed=*/7);
  LmBatchLoader plain(ds.get(), 4, 4, 0, 1);
  auto first_tokens = [](const LmBatch& b) {
    std::vector<int64_t> v;
    for (int i = 0; i < b.inputs.size(0); ++i) v.push_back(b.inputs[i][0].item<int64_t>());
    return v;
  };
  std::multiset<int64_t> epoch0, epoch1, unshuffled;
  std::vector<int64_t> order0, order1;
  for (int step = 0; step < 6; ++step) {
    for (int64_t t : first_tokens(loader.Get(step, 0))) { epoch0.insert(t); order0.push_back(t); }
    for (int64_t t : first_tokens(loader.Get(step + 6, 0))) { epoch1.insert(t); order1.push_back(t); }
    for (int64_t t : first_tokens(plain.Get(step, 0))) unshuffled.insert(t);
    EXPECT_TRUE(at::equal(loader.Get(step, 0).inputs, again.Get(step, 0).inputs));
  }
  EXPECT_EQ(epoch0, unshuffled);  // the same rows...
  EXPECT_EQ(epoch1, unshuffled);
  EXPECT_NE(order0, order1);      // ...in a different order each epoch
}

TEST(LmLoaderTest, RejectsTokensOutsideTheVocabulary) {
  auto ds = LmDataset::Open(WriteShards("vocab"), 8, 40);
  ASSERT_FALSE(ds.ok());
  EXPECT_THAT(std::string(ds.status().message()), ::testing::HasSubstr("is 40"));
}

TEST(LmLoaderTest, RejectsTooLittleDataAndMissingFiles) {
  auto small = LmDataset::Open(WriteShards("small"), 200, 50);
  ASSERT_FALSE(small.ok());
  EXPECT_THAT(std::string(small.status().message()), ::testing::HasSubstr("fewer than one row"));
  auto missing = LmDataset::Open(TempDir() + "/nope/*.bin", 8, 50);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), ::testing::HasSubstr("nope"));
}

}  // namespace
}  // namespace loom::data
