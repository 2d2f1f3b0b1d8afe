#include "core/tensorboard.h"

#include <unistd.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "gtest/gtest.h"

namespace loom {
namespace {

// Bit-at-a-time CRC-32C (reflected polynomial 0x82F63B78), independent of core/crc32c.
uint32_t BitwiseCrc32c(const std::string& s) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char c : s) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

uint32_t Mask(uint32_t crc) {
  uint32_t rotated = (crc >> 15) | (crc << 17);
  return rotated + 0xa282ead8u;
}

uint64_t ReadLe(const std::string& s, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[pos + i]);
  return v;
}

std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

std::string TestDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(tmp ? tmp : "/tmp") + "/" + name;
  // Fresh per test run even if TEST_TMPDIR is reused.
  dir += "." + std::to_string(::getpid());
  return dir;
}

// Splits a TFRecord file into its payloads, checking every length and CRC independently.
std::vector<std::string> ParseRecords(const std::string& file) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < file.size()) {
    EXPECT_LE(pos + 12, file.size()) << "truncated header at " << pos;
    if (pos + 12 > file.size()) break;
    const uint64_t len = ReadLe(file, pos, 8);
    EXPECT_EQ(ReadLe(file, pos + 8, 4), Mask(BitwiseCrc32c(file.substr(pos, 8))))
        << "length CRC at " << pos;
    EXPECT_LE(pos + 12 + len + 4, file.size()) << "truncated record at " << pos;
    if (pos + 12 + len + 4 > file.size()) break;
    std::string data = file.substr(pos + 12, len);
    EXPECT_EQ(ReadLe(file, pos + 12 + len, 4), Mask(BitwiseCrc32c(data)))
        << "data CRC at " << pos;
    out.push_back(std::move(data));
    pos += 12 + len + 4;
  }
  return out;
}

TEST(TensorBoardTest, IndependentCrcMatchesKnownVector) {
  EXPECT_EQ(BitwiseCrc32c("123456789"), 0xE3069283u);  // the CRC-32C check value
}

TEST(TensorBoardTest, MaskMatchesReference) {
  for (uint32_t crc : {0u, 1u, 0x12345678u, 0xE3069283u, 0xffffffffu}) {
    EXPECT_EQ(internal::MaskTfRecordCrc(crc), Mask(crc)) << crc;
  }
}

TEST(TensorBoardTest, FrameByteByByte) {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>(i * 7 + 3));
  const std::string rec = internal::FrameTfRecord(data);
  ASSERT_EQ(rec.size(), 8 + 4 + data.size() + 4);
  // Length 300 = 0x12c, little-endian in 8 bytes.
  const unsigned char len_bytes[8] = {0x2c, 0x01, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(static_cast<unsigned char>(rec[i]), len_bytes[i]) << i;
  const uint32_t len_crc = Mask(BitwiseCrc32c(rec.substr(0, 8)));
  const uint32_t data_crc = Mask(BitwiseCrc32c(data));
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(static_cast<unsigned char>(rec[8 + i]), (len_crc >> (8 * i)) & 0xff) << i;
    EXPECT_EQ(static_cast<unsigned char>(rec[12 + data.size() + i]), (data_crc >> (8 * i)) & 0xff)
        << i;
  }
  EXPECT_EQ(rec.substr(12, data.size()), data);
  // The empty record.
  const std::string empty = internal::FrameTfRecord("");
  ASSERT_EQ(empty.size(), 16u);
  EXPECT_EQ(ReadLe(empty, 0, 8), 0u);
  EXPECT_EQ(ReadLe(empty, 8, 4), Mask(BitwiseCrc32c(std::string(8, '\0'))));
  EXPECT_EQ(ReadLe(empty, 12, 4), Mask(BitwiseCrc32c("")));
}

TEST(TensorBoardTest, WrittenFileMatchesTensorBoardsOwnEncoding) {
  const std::string dir = TestDir("framing");
  auto writer = TensorBoardWriter::Open(dir);
  ASSERT_TRUE(writer.ok()) << writer.status();
  const std::string path = (*writer)->path();
  const std::string base = path.substr(path.rfind('/') + 1);
  EXPECT_EQ(base.rfind("events.out.tfevents.", 0), 0u) << base;
  EXPECT_EQ(base.substr(base.size() - 5), ".loom") << base;
  EXPECT_NE(base.find("." + std::to_string(::getpid()) + ".loom"), std::string::npos) << base;

  tensorboard::Event ev;
  ev.set_wall_time(1700000000.25);
  ev.set_step(7);
  ev.set_file_version("brain.Event:2");
  ASSERT_TRUE((*writer)->WriteEvent(ev).ok());
  ev.Clear();
  ev.set_wall_time(1700000000.25);
  ev.set_step(3);
  auto* v = ev.mutable_summary()->add_value();
  v->set_tag("loss");
  v->set_simple_value(0.5f);
  ASSERT_TRUE((*writer)->WriteEvent(ev).ok());
  ASSERT_TRUE((*writer)->AddScalar("lr", 1e-3, 42).ok());
  ASSERT_TRUE((*writer)->Close().ok());
  EXPECT_FALSE((*writer)->AddScalar("lr", 1e-3, 43).ok());

  auto file = ReadFileToString(path);
  ASSERT_TRUE(file.ok()) << file.status();
  std::vector<std::string> records = ParseRecords(*file);
  ASSERT_EQ(records.size(), 4u);

  // Record 0: file_version, wall time now.
  tensorboard::Event first;
  ASSERT_TRUE(first.ParseFromString(records[0]));
  EXPECT_EQ(first.file_version(), "brain.Event:2");
  EXPECT_GT(first.wall_time(), 1.6e9);
  EXPECT_EQ(first.step(), 0);

  // Records 1 and 2: the exact bytes the tensorboard Python package produces for the same
  // events (event_pb2.Event(...).SerializeToString() framed with struct.pack("<Q") and
  // tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c).
  const std::string framed_1 = internal::FrameTfRecord(records[1]);
  const std::string framed_2 = internal::FrameTfRecord(records[2]);
  EXPECT_EQ(framed_1, FromHex("1a00000000000000129bd82d0900001040fc54d94110071a0d627261696e2e"
                              "4576656e743a325b9aa70b"));
  EXPECT_EQ(framed_2, FromHex("1a00000000000000129bd82d0900001040fc54d94110032a0d0a0b0a046c6f"
                              "7373150000003f017aa16c"));
  const size_t first_len = 16 + records[0].size();
  EXPECT_EQ(file->substr(first_len, framed_1.size()), framed_1);
  EXPECT_EQ(file->substr(first_len + framed_1.size(), framed_2.size()), framed_2);

  tensorboard::Event scalar;
  ASSERT_TRUE(scalar.ParseFromString(records[3]));
  EXPECT_EQ(scalar.step(), 42);
  ASSERT_EQ(scalar.summary().value_size(), 1);
  EXPECT_EQ(scalar.summary().value(0).tag(), "lr");
  EXPECT_EQ(scalar.summary().value(0).simple_value(), 1e-3f);
}

TEST(TensorBoardTest, SecondWriterGetsANewFileThatSortsAfter) {
  const std::string dir = TestDir("two_files");
  auto a = TensorBoardWriter::Open(dir);
  auto b = TensorBoardWriter::Open(dir);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE((*a)->path(), (*b)->path());
  EXPECT_LT((*a)->path(), (*b)->path());
}

TEST(TensorBoardTest, OpenNamesTheFileOnError) {
  auto w = TensorBoardWriter::Open("/proc/loom_cannot_create_this");
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("/proc/loom_cannot_create_this"), std::string::npos)
      << w.status();
}

TEST(TensorBoardTest, DefaultBucketLimits) {
  const std::vector<double>& limits = DefaultHistogramBucketLimits();
  // 1e-12 * 1.1^k < 1e20 for k = 0..773: 774 positive edges + DBL_MAX, mirrored, plus 0.
  ASSERT_EQ(limits.size(), 1551u);
  EXPECT_EQ(limits.front(), -DBL_MAX);
  EXPECT_EQ(limits.back(), DBL_MAX);
  EXPECT_EQ(limits[775], 0.0);
  EXPECT_EQ(limits[776], 1e-12);
  EXPECT_EQ(limits[774], -1e-12);
  EXPECT_NEAR(limits[777], 1.1e-12, 1e-27);
  EXPECT_LT(limits[1549], 1e20);
  EXPECT_GT(limits[1549] * 1.1, 1e20 * (1 - 1e-12));
  for (size_t i = 1; i < limits.size(); ++i) {
    ASSERT_LT(limits[i - 1], limits[i]) << i;
    EXPECT_EQ(limits[i], -limits[limits.size() - 1 - i]) << i;
  }
}

TEST(TensorBoardTest, HistogramBucketCounts) {
  const std::vector<float> values = {0.0f,  1e-13f, -1e-13f, 1.0f, 1.0f,  -2.5f,
                                     0.5f,  3e25f,  -3e25f,  1e-12f, 2.0f, 0.55f};
  auto h = MakeTensorBoardHistogram(values);
  ASSERT_TRUE(h.ok()) << h.status();
  double sum = 0, sum_sq = 0;
  for (float f : values) {
    sum += f;
    sum_sq += static_cast<double>(f) * f;
  }
  EXPECT_EQ(h->num(), 12);
  EXPECT_EQ(h->min(), static_cast<double>(-3e25f));
  EXPECT_EQ(h->max(), static_cast<double>(3e25f));
  EXPECT_DOUBLE_EQ(h->sum(), sum);
  EXPECT_DOUBLE_EQ(h->sum_squares(), sum_sq);

  // Expand to {limit: count} for non-empty buckets and check them against a linear scan.
  ASSERT_EQ(h->bucket_size(), h->bucket_limit_size());
  std::map<double, double> got;
  double total = 0;
  for (int i = 0; i < h->bucket_size(); ++i) {
    if (i > 0) {
      EXPECT_LT(h->bucket_limit(i - 1), h->bucket_limit(i));
      EXPECT_FALSE(h->bucket(i - 1) == 0 && h->bucket(i) == 0) << "uncollapsed empty run at " << i;
    }
    if (h->bucket(i) > 0) got[h->bucket_limit(i)] = h->bucket(i);
    total += h->bucket(i);
  }
  EXPECT_EQ(total, 12);
  EXPECT_EQ(h->bucket_limit(h->bucket_limit_size() - 1), DBL_MAX);

  const std::vector<double>& limits = DefaultHistogramBucketLimits();
  std::map<double, double> want;
  for (float f : values) {
    size_t b = 0;
    while (!(static_cast<double>(f) < limits[b])) ++b;  // first limit > f
    want[limits[b]] += 1;
  }
  EXPECT_EQ(got, want);

  // Hand-checked buckets: [0, 1e-12) holds 0 and 1e-13; [-1e-12, 0) holds -1e-13;
  // 1e-12f is 9.99999996e-13 as a double, so it also lands in [0, 1e-12);
  // 3e25 is beyond the last finite edge (< 1e20), so it lands in the DBL_MAX bucket;
  // -3e25 in [-DBL_MAX .. ) second bucket, whose limit is -(largest edge < 1e20).
  EXPECT_EQ(got[1e-12], 3);
  EXPECT_EQ(got[0.0], 1);
  EXPECT_EQ(got[DBL_MAX], 1);
  EXPECT_EQ(got[limits[1]], 1);
  // 1.0 twice in the same bucket, 0.5 and 0.55 in different ones (edges grow by 10%).
  double one_limit = *std::upper_bound(limits.begin(), limits.end(), 1.0);
  EXPECT_EQ(got[one_limit], 2);
  EXPECT_GT(one_limit, 1.0);
  EXPECT_LE(one_limit, 1.1);
}

TEST(TensorBoardTest, HistogramEdgeCases) {
  auto empty = MakeTensorBoardHistogram({});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->num(), 0);
  EXPECT_EQ(empty->min(), 0);
  EXPECT_EQ(empty->max(), 0);
  ASSERT_EQ(empty->bucket_size(), 1);
  EXPECT_EQ(empty->bucket_limit(0), DBL_MAX);
  EXPECT_EQ(empty->bucket(0), 0);

  auto big = MakeTensorBoardHistogram({FLT_MAX, -FLT_MAX});
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->num(), 2);

  auto nan = MakeTensorBoardHistogram({1.0f, std::nanf("")});
  EXPECT_EQ(nan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(nan.status().message().find("value 1"), std::string::npos) << nan.status();
}

}  // namespace
}  // namespace loom
