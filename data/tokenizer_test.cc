#include "data/tokenizer.h"

#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "core/json.h"
#include "data/byte_tokenizer.h"
#include "data/gpt2_bpe_tokenizer.h"
#include "data/internal/gpt2_pretokenizer.h"
#include "gmock/gmock.h"
#include "core/testing/test_paths.h"
#include "gtest/gtest.h"

namespace loom {
namespace data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using ::loom::testing::GoldenPath;

class Gpt2Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto tok = MakeTokenizer("gpt2", DefaultVocabDir("gpt2", nullptr));
    ASSERT_TRUE(tok.ok()) << tok.status();
    tok_ = tok->release();
  }
  static void TearDownTestSuite() {
    delete tok_;
    tok_ = nullptr;
  }
  void ExpectRoundTrip(const std::string& text) {
    auto back = tok_->Decode(tok_->Encode(text));
    ASSERT_TRUE(back.ok()) << back.status();
    ASSERT_EQ(*back, text);
  }
  static Tokenizer* tok_;
};
Tokenizer* Gpt2Test::tok_ = nullptr;

TEST_F(Gpt2Test, Basics) {
  EXPECT_EQ(tok_->name(), "gpt2");
  EXPECT_EQ(tok_->vocab_size(), 50257);
  EXPECT_EQ(tok_->eot_token(), 50256);
  EXPECT_THAT(tok_->Encode("Hello world"), ElementsAre(15496, 995));
  EXPECT_TRUE(tok_->Encode("").empty());
  EXPECT_EQ(*tok_->Decode({50256}), "<|endoftext|>");
  auto bad = tok_->Decode({15496, 50257});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("50257"));
}

TEST_F(Gpt2Test, GoldenCases) {
  std::string path = GoldenPath("tokenizer/gpt2_cases.json");
  auto text = ReadFileToString(path);
  ASSERT_TRUE(text.ok()) << text.status();
  auto cases = Json::Parse(*text);
  ASSERT_TRUE(cases.ok()) << cases.status();
  ASSERT_GT((*cases)["cases"].size(), 0u);
  int i = 0;
  for (const Json& c : (*cases)["cases"].array()) {
    std::vector<int32_t> want;
    for (const Json& id : c["ids"].array()) want.push_back(id.as_int64());
    const std::string& input = c["text"].as_string();
    EXPECT_EQ(tok_->Encode(input), want) << "case " << i << ": " << input;
    ExpectRoundTrip(input);
    ++i;
  }
}

TEST_F(Gpt2Test, RoundTripsRandomUtf8AndBytes) {
  std::mt19937 rng(123);
  const std::vector<std::string> atoms = {
      "a", "Z", "7", " ", "  ", "\n", "\r\n", "\t", "'s", "'ll", "'", "!",
      "\xC2\xA0", "\xE3\x80\x80", "\xC3\xA9", "\xE6\x97\xA5", "\xF0\x9F\x98\x80",
      "\xD9\xA3", "<|endoftext|>", "\xEF\xBB\xBF", "_", "-", "\xE2\x80\xA8"};
  for (int iter = 0; iter < 300; ++iter) {
    std::string s;
    int n = rng() % 40;
    for (int k = 0; k < n; ++k) s += atoms[rng() % atoms.size()];
    ExpectRoundTrip(s);
    std::string bytes(rng() % 64, '\0');
    for (auto& ch : bytes) ch = static_cast<char>(rng());
    ExpectRoundTrip(bytes);
  }
  // Truncated and overlong sequences, lone continuation bytes, surrogates.
  for (const char* s : {"\xC3", "\xE6\x97", "\xC0\xAF", "\x80\x80 a",
                        "\xED\xA0\x80", "\xF4\x90\x80\x80", "a\xFF b"}) {
    ExpectRoundTrip(s);
  }
}

TEST_F(Gpt2Test, EncodesMegabytesQuickly) {
  std::string text;
  std::mt19937 rng(5);
  const char* words[] = {"the ", "quick ", "brown ", "fox ", "jumps, ",
                         "over ", "lazy ", "dogs.\n", "It's ", "1999 "};
  while (text.size() < 2'000'000) text += words[rng() % 10];
  auto start = std::chrono::steady_clock::now();
  std::vector<int32_t> ids = tok_->Encode(text);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                           start)
                 .count();
  EXPECT_GT(ids.size(), 300000u);
  EXPECT_LT(s, 10.0);
}

TEST(PretokenizerTest, MatchesJavaScriptRegex) {
  using internal::Gpt2Pretokenize;
  EXPECT_THAT(Gpt2Pretokenize(" Hello  world!!"),
              ElementsAre(" Hello", " ", " world", "!!"));
  EXPECT_THAT(Gpt2Pretokenize("don't I'll"),
              ElementsAre("don", "'t", " I", "'ll"));
  EXPECT_THAT(Gpt2Pretokenize("a\n\nb   "), ElementsAre("a", "\n", "\n", "b", "   "));
  EXPECT_THAT(Gpt2Pretokenize("x   \ty"), ElementsAre("x", "   ", "\t", "y"));
  EXPECT_THAT(Gpt2Pretokenize("3.14 ab12"),
              ElementsAre("3", ".", "14", " ab", "12"));
  // U+00A0 and U+3000 are whitespace in JavaScript; U+0085 is not.
  EXPECT_THAT(Gpt2Pretokenize("a\xC2\xA0\xC2\xA0" "b"),
              ElementsAre("a", "\xC2\xA0", "\xC2\xA0", "b"));
  EXPECT_THAT(Gpt2Pretokenize("a\xC2\x85" "b"), ElementsAre("a", "\xC2\x85", "b"));
  EXPECT_THAT(Gpt2Pretokenize("!'s"), ElementsAre("!'", "s"));
  EXPECT_THAT(Gpt2Pretokenize("\xFF\xFE" "a"), ElementsAre("\xFF\xFE", "a"));
}

TEST(ByteTokenizerTest, RoundTrip) {
  auto tok = MakeTokenizer("byte", "");
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ((*tok)->vocab_size(), 257);
  EXPECT_EQ((*tok)->eot_token(), 256);
  EXPECT_EQ((*tok)->name(), "byte");
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::vector<int32_t> ids = (*tok)->Encode(all);
  ASSERT_EQ(ids.size(), 256u);
  EXPECT_EQ(ids[200], 200);
  EXPECT_EQ(*(*tok)->Decode(ids), all);
  EXPECT_FALSE((*tok)->Decode({257}).ok());
}

TEST(MakeTokenizerTest, Errors) {
  auto unknown = MakeTokenizer("sentencepiece", "");
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(), HasSubstr("sentencepiece"));
  auto missing = MakeTokenizer("gpt2", "/nonexistent/vocab");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("/nonexistent/vocab"));
}

TEST(DefaultVocabDirTest, EnvOverrides) {
  ::setenv("LOOM_VOCAB_DIR", "/some/where", 1);
  EXPECT_EQ(DefaultVocabDir("gpt2", "/bin/x"), "/some/where");
  ::unsetenv("LOOM_VOCAB_DIR");
  EXPECT_NE(DefaultVocabDir("gpt2", nullptr), "/some/where");
}

}  // namespace
}  // namespace data
}  // namespace loom
