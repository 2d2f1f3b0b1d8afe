#include "data/token_shard.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loom {
namespace data {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

std::string TempDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  std::string dir =
      std::string(t ? t : "/tmp") + "/shard_test_" + std::to_string(::getpid());
  EXPECT_TRUE(MakeDirs(dir).ok());
  return dir;
}

std::vector<uint16_t> SomeTokens(int n) {
  std::vector<uint16_t> v(n);
  for (int i = 0; i < n; ++i) v[i] = static_cast<uint16_t>((i * 7919) % 50257);
  return v;
}

TEST(TokenShardTest, RoundTrip) {
  std::string path = TempDir() + "/rt.bin";
  std::vector<uint16_t> tokens = SomeTokens(5000);
  ASSERT_TRUE(WriteTokenShard(path, tokens, 50257).ok());
  auto r = TokenShardReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->num_tokens(), 5000);
  EXPECT_EQ((*r)->vocab_size(), 50257);
  EXPECT_TRUE((*r)->has_checksum());
  EXPECT_EQ((*r)->path(), path);
  EXPECT_THAT((*r)->token_span(), ElementsAreArray(tokens));
  EXPECT_EQ((*r)->tokens()[4999], tokens[4999]);
}

TEST(TokenShardTest, EmptyShard) {
  std::string path = TempDir() + "/empty.bin";
  ASSERT_TRUE(WriteTokenShard(path, {}, 257).ok());
  auto r = TokenShardReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->num_tokens(), 0);
}

TEST(TokenShardTest, WriterRejectsTokensOutsideVocab) {
  std::vector<uint16_t> tokens = {1, 300};
  absl::Status st = WriteTokenShard(TempDir() + "/v.bin", tokens, 257);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("300"));
}

class CorruptShardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = TempDir() + "/corrupt.bin";
    ASSERT_TRUE(WriteTokenShard(path_, SomeTokens(100), 50257).ok());
    bytes_ = *ReadFileToString(path_);
  }
  void Refused(const std::string& bytes, const std::string& what) {
    ASSERT_TRUE(WriteFileAtomically(path_, bytes).ok());
    auto r = TokenShardReader::Open(path_);
    ASSERT_FALSE(r.ok()) << "accepted, expected: " << what;
    EXPECT_THAT(r.status().message(), HasSubstr(path_));
    EXPECT_THAT(r.status().message(), HasSubstr(what));
  }
  void SetInt(std::string* b, int index, int32_t v) {
    std::memcpy(&(*b)[index * 4], &v, 4);
  }
  std::string path_;
  std::string bytes_;
};

TEST_F(CorruptShardTest, Truncated) {
  Refused(bytes_.substr(0, bytes_.size() - 2), "should be 1224 bytes, but it is 1222");
  Refused(bytes_.substr(0, 100), "shorter than the 1024-byte header");
}

TEST_F(CorruptShardTest, WrongMagic) {
  std::string b = bytes_;
  SetInt(&b, 0, 12345);
  Refused(b, "bad magic 12345");
}

TEST_F(CorruptShardTest, WrongVersion) {
  std::string b = bytes_;
  SetInt(&b, 1, 2);
  Refused(b, "unsupported version 2");
}

TEST_F(CorruptShardTest, FlippedTokenByte) {
  std::string b = bytes_;
  b[1024 + 37] ^= 0x10;
  Refused(b, "checksum mismatch");
  // Without verification the (corrupt) data is still readable.
  auto r = TokenShardReader::Open(path_, /*verify_checksum=*/false);
  EXPECT_TRUE(r.ok());
}

TEST_F(CorruptShardTest, MissingFile) {
  auto r = TokenShardReader::Open(path_ + ".nope");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr(path_ + ".nope"));
}

TEST(TokenShardTest, ReadsLlmcLayoutWithoutChecksum) {
  // Exactly what llm.c's write_datafile produces: magic, version, count.
  int32_t header[256] = {};
  header[0] = 20240520;
  header[1] = 1;
  header[2] = 3;
  uint16_t toks[3] = {50256, 15496, 995};
  std::string b(reinterpret_cast<char*>(header), sizeof(header));
  b.append(reinterpret_cast<char*>(toks), sizeof(toks));
  std::string path = TempDir() + "/llmc.bin";
  ASSERT_TRUE(WriteFileAtomically(path, b).ok());
  auto r = TokenShardReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE((*r)->has_checksum());
  EXPECT_EQ((*r)->vocab_size(), 0);
  EXPECT_THAT((*r)->token_span(), ElementsAre(50256, 15496, 995));
}

TEST(TokenShardTest, ExpandShardPattern) {
  std::string dir = TempDir() + "/glob";
  ASSERT_TRUE(MakeDirs(dir).ok());
  for (const char* name : {"train_000002.bin", "train_000000.bin",
                           "train_000001.bin", "val_000000.bin"}) {
    ASSERT_TRUE(WriteTokenShard(dir + "/" + name, SomeTokens(3), 0).ok());
  }
  auto files = ExpandShardPattern(dir + "/train_*.bin");
  ASSERT_TRUE(files.ok());
  EXPECT_THAT(*files, ElementsAre(dir + "/train_000000.bin",
                                  dir + "/train_000001.bin",
                                  dir + "/train_000002.bin"));
  auto none = ExpandShardPattern(dir + "/test_*.bin");
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.status().message(), HasSubstr(dir + "/test_*.bin"));
}

}  // namespace
}  // namespace data
}  // namespace loom
