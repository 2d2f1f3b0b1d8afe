#include "data/lm_loader.h"

#include <ATen/ATen.h>

#include <cstdlib>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "data/token_shard.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loom::data {
namespace {

std::string TempDir() {
  const char* d = std::getenv("TEST_TMPDIR");
  return d ? d : "/tmp";
}

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
  LmBatchLoader single(ds.get(), 8, 2, 0, 1);
  std::vector<at::Tensor> one;
  for (int m = 0; m < single.micro_batches_per_step(); ++m) one.push_back(single.Get(3, m).inputs);
  std::vector<at::Tensor> many;
  for (int r = 0; r < 2; ++r) {
    LmBatchLoader rank(ds.get(), 8, 2, r, 2);
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
