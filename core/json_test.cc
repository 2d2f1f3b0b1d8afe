#include "core/json.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loom {
namespace {

using ::testing::HasSubstr;

Json MustParse(absl::string_view text) {
  auto j = Json::Parse(text);
  EXPECT_TRUE(j.ok()) << j.status() << " for " << text;
  return j.ok() ? *std::move(j) : Json();
}

TEST(JsonTest, ParsesScalars) {
  EXPECT_TRUE(MustParse("null").is_null());
  EXPECT_TRUE(MustParse(" true ").as_bool());
  EXPECT_FALSE(MustParse("false").as_bool());
  EXPECT_TRUE(MustParse("false").is_bool());
  EXPECT_EQ(MustParse("-12").as_int64(), -12);
  EXPECT_TRUE(MustParse("-12").is_int64());
  EXPECT_FALSE(MustParse("1.5").is_int64());
  EXPECT_DOUBLE_EQ(MustParse("1.5e3").as_double(), 1500.0);
  EXPECT_DOUBLE_EQ(MustParse("-0.25E-2").as_double(), -0.0025);
  EXPECT_EQ(MustParse("\"hi\"").as_string(), "hi");
}

TEST(JsonTest, KeepsLargeIntegersExact) {
  Json j = MustParse("9007199254740993");
  EXPECT_TRUE(j.is_int64());
  EXPECT_EQ(j.as_int64(), 9007199254740993LL);
  EXPECT_EQ(j.Dump(), "9007199254740993");
  EXPECT_EQ(MustParse("-9223372036854775808").as_int64(),
            std::numeric_limits<int64_t>::min());
  // Too big for int64: falls back to double.
  Json big = MustParse("18446744073709551616");
  EXPECT_FALSE(big.is_int64());
  EXPECT_DOUBLE_EQ(big.as_double(), 18446744073709551616.0);
  EXPECT_TRUE(std::isinf(MustParse("1e400").as_double()));
}

TEST(JsonTest, StringEscapesAndSurrogates) {
  EXPECT_EQ(MustParse(R"("a\"b\\c\/d\b\f\n\r\t")").as_string(),
            "a\"b\\c/d\b\f\n\r\t");
  EXPECT_EQ(MustParse(R"("\u00e9\u4e2d")").as_string(), "\xC3\xA9\xE4\xB8\xAD");
  EXPECT_EQ(MustParse(R"("\ud83d\ude00")").as_string(), "\xF0\x9F\x98\x80");
  EXPECT_EQ(MustParse(R"("\u0000")").as_string(), std::string(1, '\0'));
  EXPECT_EQ(MustParse("\"caf\xC3\xA9\"").as_string(), "caf\xC3\xA9");
}

TEST(JsonTest, ObjectsKeepInsertionOrder) {
  Json j = MustParse(R"({"z": 1, "a": [1, 2, {"k": null}], "m": "x"})");
  ASSERT_TRUE(j.is_object());
  ASSERT_EQ(j.object().size(), 3u);
  EXPECT_EQ(j.object()[0].first, "z");
  EXPECT_EQ(j.object()[1].first, "a");
  EXPECT_EQ(j.object()[2].first, "m");
  ASSERT_NE(j.Find("a"), nullptr);
  EXPECT_EQ(j["a"].size(), 3u);
  EXPECT_EQ(j["a"][1].as_int64(), 2);
  EXPECT_TRUE(j["a"][2].Find("k")->is_null());
  EXPECT_EQ(j.Find("missing"), nullptr);
  EXPECT_TRUE(std::as_const(j)["missing"].is_null());
  EXPECT_EQ(j.Dump(), R"({"z":1,"a":[1,2,{"k":null}],"m":"x"})");
  // Non-const operator[] inserts, like std::map.
  j["missing"];
  EXPECT_EQ(j.Dump(), R"({"z":1,"a":[1,2,{"k":null}],"m":"x","missing":null})");
}

TEST(JsonTest, DuplicateKeysLastWins) {
  Json j = MustParse(R"({"a":1,"b":2,"a":3})");
  EXPECT_EQ(j.size(), 2u);
  EXPECT_EQ(j["a"].as_int64(), 3);
  EXPECT_EQ(j.Dump(), R"({"a":3,"b":2})");
}

TEST(JsonTest, BuildAndDump) {
  Json j = Json::MakeObject();
  j["step"] = 10;
  j["loss"] = 2.5;
  j["name"] = "run \"1\"\n";
  j["nan"] = std::nan("");
  j["inf"] = std::numeric_limits<double>::infinity();
  j["tenth"] = 0.1;
  j["third"] = 1.0 / 3.0;
  j["big"] = int64_t{1} << 62;
  j["ok"] = true;
  j["list"].push_back(1);
  j["list"].push_back("two");
  j["ctrl"] = std::string("\x01\x1f", 2);
  EXPECT_EQ(j.Dump(),
            "{\"step\":10,\"loss\":2.5,\"name\":\"run \\\"1\\\"\\n\",\"nan\":null,"
            "\"inf\":null,\"tenth\":0.1,\"third\":0.3333333333333333,"
            "\"big\":4611686018427387904,\"ok\":true,\"list\":[1,\"two\"],"
            "\"ctrl\":\"\\u0001\\u001f\"}");
  Json back = MustParse(j.Dump());
  EXPECT_DOUBLE_EQ(back["third"].as_double(), 1.0 / 3.0);
  EXPECT_EQ(back["name"].as_string(), "run \"1\"\n");
}

TEST(JsonTest, DoublesRoundTrip) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, sizeof(d));
    if (!std::isfinite(d)) continue;
    Json j(d);
    Json back = MustParse(j.Dump());
    ASSERT_EQ(back.as_double(), d) << j.Dump();
  }
}

TEST(JsonTest, ErrorsReportLineAndColumn) {
  auto r = Json::Parse("{\n  \"a\": 1,\n  \"b\": tru\n}");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("line 3, column 8"));
  for (const char* bad :
       {"", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "1e", "\"abc",
        "\"\\x\"", "\"\\ud800\"", "\"\\udc00x\"", "[1] 2", "nul",
        "\"a\tb\"", "\"\xC3\x28\"", "{\"a\":1,}", "+1", ".5", "NaN"}) {
    auto e = Json::Parse(bad);
    EXPECT_FALSE(e.ok()) << "accepted: " << bad;
    if (!e.ok()) {
      EXPECT_THAT(e.status().message(), HasSubstr("line 1"));
    }
  }
}

TEST(JsonTest, DeepNestingRefused) {
  std::string deep(100000, '[');
  EXPECT_FALSE(Json::Parse(deep).ok());
}

TEST(JsonTest, QuoteEscapes) {
  EXPECT_EQ(JsonQuote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
  EXPECT_EQ(JsonQuote("\xE6\x97\xA5"), "\"\xE6\x97\xA5\"");
}

TEST(JsonTest, CopyKeepsLookupWorking) {
  std::string text = "{";
  for (int i = 0; i < 100; ++i) {
    if (i) text += ",";
    text += "\"k" + std::to_string(i) + "\":" + std::to_string(i);
  }
  text += "}";
  Json j = MustParse(text);
  Json copy = j;
  Json moved = std::move(j);
  EXPECT_EQ(copy["k57"].as_int64(), 57);
  EXPECT_EQ(moved["k99"].as_int64(), 99);
  EXPECT_EQ(copy, moved);
  copy["k200"] = 5;
  EXPECT_EQ(copy["k200"].as_int64(), 5);
  EXPECT_EQ(copy.size(), 101u);
}

TEST(JsonTest, LargeObjectParsesFast) {
  // Shaped like GPT-2's encoder.json: ~50k short keys with \u escapes.
  std::string text = "{";
  for (int i = 0; i < 50257; ++i) {
    if (i) text += ", ";
    text += "\"\\u0120tok" + std::to_string(i) + "\": " + std::to_string(i);
  }
  text += "}";
  auto start = std::chrono::steady_clock::now();
  Json j = MustParse(text);
  double ms = std::chrono::duration<double, std::milli>(
                  std::chrono::steady_clock::now() - start)
                  .count();
  EXPECT_EQ(j.size(), 50257u);
  EXPECT_EQ(j["\xC4\xA0tok50000"].as_int64(), 50000);
  EXPECT_LT(ms, 1000.0);  // Typically ~20 ms; generous for slow CI.
}

}  // namespace
}  // namespace loom
