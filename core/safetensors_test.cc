#include "core/safetensors.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "core/json.h"
#include "gmock/gmock.h"
#include "core/testing/test_paths.h"
#include "gtest/gtest.h"

namespace loom {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using ::loom::testing::GoldenPath;

std::string TempPath(const std::string& name) {
  const char* t = std::getenv("TEST_TMPDIR");
  return std::string(t ? t : "/tmp") + "/st_" + std::to_string(::getpid()) +
         "_" + name;
}

TEST(SafetensorsTest, ReadsGoldenScheduleFile) {
  std::string path = GoldenPath("structured_ffn/schedule_lr.safetensors");
  auto f = ReadSafetensors(path);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->tensors.size(), 2u);
  EXPECT_EQ(f->tensors[0].name, "input.step");
  EXPECT_EQ(f->tensors[0].dtype, "I64");
  EXPECT_THAT(f->tensors[0].shape, ElementsAre(51));
  const SafetensorsTensor* lr = f->Find("output.lr");
  ASSERT_NE(lr, nullptr);
  EXPECT_EQ(lr->dtype, "F64");
  EXPECT_THAT(lr->shape, ElementsAre(51));
  EXPECT_EQ(f->Find("nope"), nullptr);
  EXPECT_EQ(f->metadata.count("layer"), 1u);
  EXPECT_TRUE(Json::Parse(f->metadata.at("config")).ok());
  auto steps = TensorAsDoubles(*f->Find("input.step"));
  ASSERT_TRUE(steps.ok());
  EXPECT_EQ(steps->size(), 51u);
  EXPECT_EQ((*steps)[0], 0.0);
}

TEST(SafetensorsTest, RoundTrip) {
  std::vector<SafetensorsTensor> tensors;
  tensors.push_back(MakeF64Tensor("b.weight", {2, 3}, {1, 2, 3, 4, 5, 6.5}));
  tensors.push_back(MakeF32Tensor("a.bias", {3}, {0.5f, -1.f, 2.f}));
  tensors.push_back(MakeI64Tensor("count", {}, {7}));
  SafetensorsTensor u8;
  u8.name = "mask";
  u8.dtype = "U8";
  u8.shape = {3};
  u8.data = std::string("\x01\x00\x01", 3);
  tensors.push_back(u8);
  SafetensorsTensor empty;
  empty.name = "empty";
  empty.dtype = "F32";
  empty.shape = {0, 4};
  tensors.push_back(empty);
  std::string path = TempPath("rt.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, tensors,
                               {{"step", "10"}, {"quote", "a\"b"}})
                  .ok());
  std::string bytes = *ReadFileToString(path);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  auto f = ReadSafetensors(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->metadata.at("step"), "10");
  EXPECT_EQ(f->metadata.at("quote"), "a\"b");
  ASSERT_EQ(f->tensors.size(), 5u);
  for (const auto& t : tensors) {
    const SafetensorsTensor* got = f->Find(t.name);
    ASSERT_NE(got, nullptr) << t.name;
    EXPECT_EQ(got->dtype, t.dtype);
    EXPECT_EQ(got->shape, t.shape);
    EXPECT_EQ(got->data, t.data);
  }
  EXPECT_THAT(*TensorAsDoubles(*f->Find("b.weight")),
              ElementsAre(1, 2, 3, 4, 5, 6.5));
  EXPECT_THAT(*TensorAsDoubles(*f->Find("a.bias")), ElementsAre(0.5, -1, 2));
  EXPECT_THAT(*TensorAsDoubles(*f->Find("count")), ElementsAre(7));
  EXPECT_THAT(*TensorAsDoubles(*f->Find("mask")), ElementsAre(1, 0, 1));
  // 8-byte dtypes first so every tensor is aligned.
  EXPECT_EQ(f->tensors[0].name, "b.weight");
  EXPECT_EQ(f->tensors[1].name, "count");
}

TEST(SafetensorsTest, WriterRejectsInconsistentTensors) {
  SafetensorsTensor t = MakeF64Tensor("w", {3}, {1, 2});
  absl::Status st = WriteSafetensors(TempPath("bad"), {t}, {});
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("'w'"));
  SafetensorsTensor a = MakeF64Tensor("x", {1}, {1});
  EXPECT_FALSE(WriteSafetensors(TempPath("dup"), {a, a}, {}).ok());
}

class CorruptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto bytes = SerializeSafetensors(
        {MakeF64Tensor("x", {2}, {1, 2}), MakeF64Tensor("y", {1}, {3})},
        {{"k", "v"}});
    ASSERT_TRUE(bytes.ok());
    good_ = *bytes;
    std::memcpy(&header_len_, good_.data(), 8);
  }

  // Writes `bytes` to a file and expects it refused with a message naming it
  // and containing `what`.
  void ExpectRefused(const std::string& bytes, const std::string& what) {
    std::string path = TempPath("corrupt.safetensors");
    ASSERT_TRUE(WriteFileAtomically(path, bytes).ok());
    auto f = ReadSafetensors(path);
    ASSERT_FALSE(f.ok()) << "accepted corrupt file expecting " << what;
    EXPECT_THAT(f.status().message(), HasSubstr(path));
    EXPECT_THAT(f.status().message(), HasSubstr(what));
  }

  std::string WithHeader(const std::string& json) {
    uint64_t n = json.size();
    return std::string(reinterpret_cast<const char*>(&n), 8) + json +
           good_.substr(8 + header_len_);
  }

  std::string good_;
  uint64_t header_len_ = 0;
};

TEST_F(CorruptTest, Truncated) {
  ExpectRefused(good_.substr(0, good_.size() - 1), "'y'");
  ExpectRefused(good_.substr(0, 5), "shorter than");
  ExpectRefused(good_.substr(0, 20), "header length");
}

TEST_F(CorruptTest, BadHeaderLength) {
  std::string b = good_;
  uint64_t huge = 1ull << 40;
  std::memcpy(&b[0], &huge, 8);
  ExpectRefused(b, "header length");
  uint64_t small = 4;
  std::memcpy(&b[0], &small, 8);
  ExpectRefused(b, "JSON");
}

TEST_F(CorruptTest, OffsetsOutOfRangeOrOverlapping) {
  ExpectRefused(
      WithHeader(R"({"x":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},)"
                 R"("y":{"dtype":"F64","shape":[1],"data_offsets":[24,32]}})"),
      "out of range");
  ExpectRefused(
      WithHeader(R"({"x":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},)"
                 R"("y":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}})"),
      "overlap");
  ExpectRefused(
      WithHeader(R"({"x":{"dtype":"F64","shape":[3],"data_offsets":[0,16]}})"),
      "'x'");
  ExpectRefused(
      WithHeader(R"({"x":{"dtype":"Q7","shape":[2],"data_offsets":[0,16]}})"),
      "unknown dtype");
  ExpectRefused(
      WithHeader(R"({"x":{"dtype":"F64","shape":[-2],"data_offsets":[0,16]}})"),
      "negative");
  ExpectRefused(
      WithHeader(R"({"x":{"dtype":"F64","shape":[2],"data_offsets":[16,0]}})"),
      "out of range");
  ExpectRefused(WithHeader(R"({"__metadata__":{"a":1}})"), "__metadata__");
}

}  // namespace
}  // namespace loom
