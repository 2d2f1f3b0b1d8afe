#include "tools/parity_cases.h"

#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "core/safetensors.h"
#include "data/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loom {
namespace parity {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::StartsWith;

class ParityCasesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* t = std::getenv("TEST_TMPDIR");
    dir_ = std::string(t ? t : "/tmp") + "/parity_test_" +
           std::to_string(::getpid());
    ASSERT_TRUE(MakeDirs(dir_ + "/sub").ok());
    options_.gpt2_vocab_dir = data::DefaultVocabDir("gpt2", nullptr);
  }
  std::string dir_;
  ParityOptions options_;
  CheckerRegistry registry_ = DefaultCheckerRegistry();
};

TEST_F(ParityCasesTest, TokenizerCasesPassAndFail) {
  std::string path = dir_ + "/tok.json";
  ASSERT_TRUE(WriteFileAtomically(
                  path,
                  R"({"tokenizer": "gpt2-bpe", "cases": [)"
                  R"({"text": "Hello world", "ids": [15496, 995]},)"
                  R"({"text": "Hello world", "ids": [15496, 996]},)"
                  R"({"text": "Hello world", "ids": [15496]}]})")
                  .ok());
  std::vector<CaseResult> r = RunCaseFile(path, registry_, options_);
  ASSERT_THAT(r, SizeIs(3));
  EXPECT_TRUE(r[0].pass) << r[0].detail;
  EXPECT_EQ(FormatCaseResult(r[0]),
            "PASS  " + path + "#0  \"Hello world\"  max_err=0 (2 tokens)");
  EXPECT_FALSE(r[1].pass);
  EXPECT_THAT(r[1].detail, HasSubstr("first mismatch at token 1: got 995, want 996"));
  EXPECT_FALSE(r[2].pass);
  EXPECT_THAT(r[2].detail, HasSubstr("at token 1: got 995, want end"));
  EXPECT_THAT(FormatCaseResult(r[2]), StartsWith("FAIL  " + path + "#2"));
}

TEST_F(ParityCasesTest, ByteTokenizerCases) {
  std::string path = dir_ + "/byte.json";
  ASSERT_TRUE(WriteFileAtomically(
                  path, R"({"tokenizer": "byte", "cases": [{"text": "hi", "ids": [104, 105]}]})")
                  .ok());
  std::vector<CaseResult> r = RunCaseFile(path, registry_, options_);
  ASSERT_THAT(r, SizeIs(1));
  EXPECT_TRUE(r[0].pass);
}

TEST_F(ParityCasesTest, LayerCasesAreUnsupportedFailures) {
  std::string path = dir_ + "/sub/layer.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, {MakeF64Tensor("input.x", {1}, {1.0})},
                               {{"layer", "lowrank_linear"}})
                  .ok());
  std::vector<CaseResult> r = RunCaseFile(path, registry_, options_);
  ASSERT_THAT(r, SizeIs(1));
  EXPECT_FALSE(r[0].pass);
  EXPECT_THAT(r[0].detail, HasSubstr("unsupported case type 'lowrank_linear' "
                                     "(not implemented yet)"));
}

TEST_F(ParityCasesTest, RegisteredLayerCheckerIsUsed) {
  std::string path = dir_ + "/sub/fake.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, {MakeF64Tensor("input.x", {1}, {1.0})},
                               {{"layer", "fake"}})
                  .ok());
  registry_.Register("layer:fake", [](const CaseFile& f, const ParityOptions&) {
    CaseResult r;
    r.pass = f.safetensors->Find("input.x") != nullptr;
    r.file = f.path;
    r.detail = "max_err=0";
    return std::vector<CaseResult>{r};
  });
  std::vector<CaseResult> r = RunCaseFile(path, registry_, options_);
  ASSERT_THAT(r, SizeIs(1));
  EXPECT_TRUE(r[0].pass);
}

TEST_F(ParityCasesTest, BadFilesFail) {
  std::string junk = dir_ + "/junk.json";
  ASSERT_TRUE(WriteFileAtomically(junk, "{\"a\": 1}").ok());
  auto r = RunCaseFile(junk, registry_, options_);
  ASSERT_THAT(r, SizeIs(1));
  EXPECT_FALSE(r[0].pass);
  EXPECT_THAT(r[0].detail, HasSubstr("not a tokenizer case file"));
  std::string broken = dir_ + "/broken.safetensors";
  ASSERT_TRUE(WriteFileAtomically(broken, "xx").ok());
  r = RunCaseFile(broken, registry_, options_);
  ASSERT_THAT(r, SizeIs(1));
  EXPECT_FALSE(r[0].pass);
  EXPECT_THAT(r[0].detail, HasSubstr(broken));
}

TEST_F(ParityCasesTest, CollectCaseFiles) {
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/b.json", "{}").ok());
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/a.json", "{}").ok());
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/README.md", "x").ok());
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/sub/c.safetensors", "x").ok());
  auto files = CollectCaseFiles(dir_ + "/," + dir_ + "/a.json");
  ASSERT_TRUE(files.ok()) << files.status();
  std::vector<std::string> want = {dir_ + "/a.json", dir_ + "/b.json",
                                   dir_ + "/sub/c.safetensors",
                                   dir_ + "/a.json"};
  // Other tests may have left files in the shared directory.
  std::vector<std::string> filtered;
  for (const auto& f : *files) {
    if (f == dir_ + "/a.json" || f == dir_ + "/b.json" ||
        f == dir_ + "/sub/c.safetensors") {
      filtered.push_back(f);
    }
  }
  EXPECT_EQ(filtered, want);
  auto missing = CollectCaseFiles(dir_ + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr(dir_ + "/nope"));
}

TEST(ShortDescriptionTest, TruncatesOnCodepoints) {
  EXPECT_EQ(ShortDescription("ab\n", 40), "\"ab\\n\"");
  EXPECT_EQ(ShortDescription("\xC3\xA9\xC3\xA9\xC3\xA9", 2),
            "\"\xC3\xA9\xC3\xA9\"...");
}

}  // namespace
}  // namespace parity
}  // namespace loom
