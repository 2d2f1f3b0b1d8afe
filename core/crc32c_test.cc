#include "core/crc32c.h"

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace loom {
namespace {

uint32_t NaiveCrc32c(const std::string& s) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1) ? 0x82F63B78u : 0);
  }
  return ~c;
}

TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);
  std::string zeros(32, '\0');
  EXPECT_EQ(Crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  std::string ones(32, '\xff');
  EXPECT_EQ(Crc32c(ones.data(), ones.size()), 0x62A8AB43u);
  EXPECT_EQ(Crc32c("", 0), 0u);
  EXPECT_EQ(internal::Crc32cExtendPortable(0, "123456789", 9), 0xE3069283u);
}

TEST(Crc32cTest, MatchesNaiveOnRandomDataWithRandomSplits) {
  std::mt19937_64 rng(42);
  for (int iter = 0; iter < 200; ++iter) {
    size_t n = rng() % 3000;
    std::string s(n, '\0');
    for (auto& ch : s) ch = static_cast<char>(rng());
    uint32_t want = NaiveCrc32c(s);
    // Unaligned starts exercise the head/tail loops of both paths.
    ASSERT_EQ(Crc32c(s.data(), n), want) << "n=" << n;
    ASSERT_EQ(internal::Crc32cExtendPortable(0, s.data(), n), want);
    size_t a = n ? rng() % (n + 1) : 0;
    size_t b = a + (n - a ? rng() % (n - a + 1) : 0);
    uint32_t c = Crc32c(s.data(), a);
    c = Crc32cExtend(c, s.data() + a, b - a);
    c = Crc32cExtend(c, s.data() + b, n - b);
    ASSERT_EQ(c, want) << "n=" << n << " a=" << a << " b=" << b;
    uint32_t p = internal::Crc32cExtendPortable(0, s.data(), a);
    p = internal::Crc32cExtendPortable(p, s.data() + a, n - a);
    ASSERT_EQ(p, want);
  }
}

}  // namespace
}  // namespace loom
