#include "data/lra/lra_data.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/file_io.h"
#include "core/testing/test_paths.h"
#include "data/lra/png_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loom::data::lra {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAreArray;

// A fresh directory per test.
std::string NewDir(const std::string& name) {
  static int counter = 0;
  const std::string dir = absl::StrCat(loom::testing::TempDir(), "/lra_data_test_", ::getpid(), "_",
                                       counter++, "_", name);
  EXPECT_TRUE(MakeDirs(dir).ok());
  return dir;
}

void Write(const std::string& path, const std::string& contents) {
  const std::string dir = path.substr(0, path.rfind('/'));
  ASSERT_TRUE(MakeDirs(dir).ok()) << dir;
  ASSERT_TRUE(WriteFileAtomically(path, contents).ok()) << path;
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TaskData MustLoad(const LoadOptions& opt) {
  absl::StatusOr<TaskData> d = LoadTask(opt);
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? *std::move(d) : TaskData();
}

// ---- ListOps -----------------------------------------------------------------------------------

std::string ListOpsDir() {
  const std::string dir = NewDir("listops");
  // CRLF line endings, as Python's csv.writer writes them.
  Write(dir + "/basic_train.tsv",
        "Source\tTarget\r\n"
        "( ( ( [MAX 2 ) 9 ) ] )\t9\r\n"
        "( ( [MIN 2 ) ( ( [MAX 3 ) 4 ) ] ) ]\t2\r\n");
  Write(dir + "/basic_val.tsv",
        "Source\tTarget\r\n"
        "( ( [SM 2 ) 7 ] )\t9\r\n");
  Write(dir + "/basic_test.tsv",
        "Source\tTarget\n"
        "( ( [MAX 4 ) 3 ] )\t4\n");
  return dir;
}

TEST(ListOpsTest, TokensVocabAndSplits) {
  LoadOptions opt;
  opt.task = "listops";
  opt.data_dir = ListOpsDir();
  TaskData d = MustLoad(opt);
  EXPECT_EQ(d.task, "listops");
  EXPECT_FALSE(d.pixel_input);
  EXPECT_EQ(d.num_classes, 10);
  EXPECT_EQ(d.max_length, 2048);
  // Train symbols: [MAX 2 9 X | [MIN 2 [MAX 3 4 X X. Counts: X 3, 2 2, [MAX 2, then 1 each:
  // 3 4 9 [MIN. Ties by symbol ascending ("2" < "[MAX"; "3" < "4" < "9" < "[MIN").
  EXPECT_THAT(d.vocab.symbols, ElementsAre("<mask>", "<pad>", "<unk>", "<eos>", "X", "2", "[MAX",
                                           "3", "4", "9", "[MIN"));
  EXPECT_EQ(d.vocab.size(), 11);
  EXPECT_EQ(d.vocab.Id("[MAX"), 6);
  EXPECT_EQ(d.vocab.Id("[SM"), Vocab::kUnk);
  ASSERT_EQ(d.train.size(), 2u);
  EXPECT_THAT(d.train[0].tokens, ElementsAre(6, 5, 9, 4, Vocab::kEos));
  EXPECT_EQ(d.train[0].label, 9);
  EXPECT_THAT(d.train[1].tokens, ElementsAre(10, 5, 6, 7, 8, 4, 4, Vocab::kEos));
  EXPECT_EQ(d.train[1].label, 2);
  EXPECT_TRUE(d.train[0].tokens2.empty());
  ASSERT_EQ(d.val.size(), 1u);
  EXPECT_THAT(d.val[0].tokens, ElementsAre(Vocab::kUnk, 5, Vocab::kUnk, 4, Vocab::kEos));
  EXPECT_EQ(d.val[0].label, 9);
  ASSERT_EQ(d.test.size(), 1u);
  EXPECT_THAT(d.test[0].tokens, ElementsAre(6, 8, 7, 4, Vocab::kEos));
  EXPECT_EQ(d.test[0].label, 4);
  EXPECT_THAT(d.notes, HasSubstr("2/1/1 train/val/test"));
  EXPECT_THAT(d.notes, HasSubstr("2 val/test tokens unseen in train -> <unk>"));
}

TEST(ListOpsTest, TruncatesKeepingRoomForEosAndCapsExamples) {
  LoadOptions opt;
  opt.task = "listops";
  opt.data_dir = ListOpsDir();
  opt.max_length = 4;
  opt.max_examples = 1;
  TaskData d = MustLoad(opt);
  EXPECT_EQ(d.max_length, 4);
  ASSERT_EQ(d.train.size(), 1u);
  // Vocabulary from the one loaded (truncated) train example: [MAX 2 9.
  EXPECT_THAT(d.vocab.symbols, ElementsAre("<mask>", "<pad>", "<unk>", "<eos>", "2", "9", "[MAX"));
  EXPECT_THAT(d.train[0].tokens, ElementsAre(6, 4, 5, Vocab::kEos));
  EXPECT_EQ(d.val.size(), 1u);
  EXPECT_EQ(d.test.size(), 1u);
  EXPECT_THAT(d.notes, HasSubstr("sequences truncated to 3 tokens + <eos>"));
}

TEST(ListOpsTest, BadLabelNamesFileAndLine) {
  const std::string dir = ListOpsDir();
  Write(dir + "/basic_val.tsv",
        "Source\tTarget\r\n"
        "( [MAX 2 ] )\t3\r\n"
        "( [MAX 2 ] )\t12\r\n");
  LoadOptions opt;
  opt.task = "listops";
  opt.data_dir = dir;
  absl::StatusOr<TaskData> d = LoadTask(opt);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(Message(d.status()), HasSubstr(dir + "/basic_val.tsv:3: label '12'"));
  EXPECT_THAT(Message(d.status()), HasSubstr("0..9"));

  Write(dir + "/basic_val.tsv", "Source\tTarget\n( [MAX 2 ] )\tseven\n");
  d = LoadTask(opt);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(Message(d.status()), HasSubstr("basic_val.tsv:2: label 'seven'"));

  Write(dir + "/basic_val.tsv", "Source\tTarget\n( [MAX 2 ] )\n");
  d = LoadTask(opt);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(Message(d.status()), HasSubstr("basic_val.tsv:2: expected 2 TAB-separated columns"));

  Write(dir + "/basic_val.tsv", "( [MAX 2 ] )\t1\n");
  d = LoadTask(opt);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(Message(d.status()), HasSubstr("basic_val.tsv:1: expected the header"));
}

TEST(ListOpsTest, MissingFileIsNotFound) {
  const std::string dir = NewDir("listops_missing");
  LoadOptions opt;
  opt.task = "listops";
  opt.data_dir = dir;
  absl::StatusOr<TaskData> d = LoadTask(opt);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(d.status()), HasSubstr(dir + "/basic_train.tsv"));
}

// ---- Text (byte-level IMDB) --------------------------------------------------------------------

std::vector<int32_t> Bytes(const std::string& s, bool eos = true) {
  std::vector<int32_t> v;
  for (unsigned char c : s) v.push_back(c + 4);
  if (eos) v.push_back(Vocab::kEos);
  return v;
}

TEST(TextTest, ByteTokensLabelsAndValIsTest) {
  const std::string dir = NewDir("aclImdb");
  Write(dir + "/train/pos/10_9.txt", "Great");
  Write(dir + "/train/pos/2_8.txt", "Caf\xC3\xA9!");  // "Café!" in UTF-8
  Write(dir + "/train/neg/0_1.txt", "Bad.");
  Write(dir + "/train/unsup/5_0.txt", "ignored");
  Write(dir + "/train/urls_pos.txt", "ignored");
  Write(dir + "/test/neg/1_2.txt", "Meh");
  Write(dir + "/test/pos/3_10.txt", "Wow");
  LoadOptions opt;
  opt.task = "text";
  opt.data_dir = dir;
  TaskData d = MustLoad(opt);
  EXPECT_EQ(d.num_classes, 2);
  EXPECT_EQ(d.max_length, 4096);
  EXPECT_EQ(d.vocab.size(), 260);
  EXPECT_EQ(d.vocab.symbols[0], "<mask>");
  EXPECT_EQ(d.vocab.symbols[3], "<eos>");
  EXPECT_EQ(d.vocab.Id("b:0x41"), 0x41 + 4);
  EXPECT_EQ(d.vocab.symbols[0xC3 + 4], "b:0xC3");
  EXPECT_EQ(d.vocab.Id("<pad>"), Vocab::kPad);
  EXPECT_EQ(d.vocab.Id("nope"), Vocab::kUnk);
  // neg, pos, pos: alternating classes, each in sorted name order ("10_9" < "2_8").
  ASSERT_EQ(d.train.size(), 3u);
  EXPECT_EQ(d.train[0].label, 0);
  EXPECT_EQ(d.train[0].tokens, Bytes("Bad."));
  EXPECT_EQ(d.train[1].label, 1);
  EXPECT_EQ(d.train[1].tokens, Bytes("Great"));
  EXPECT_EQ(d.train[2].label, 1);
  EXPECT_THAT(d.train[2].tokens,
              ElementsAre('C' + 4, 'a' + 4, 'f' + 4, 0xC3 + 4, 0xA9 + 4, '!' + 4, Vocab::kEos));
  ASSERT_EQ(d.test.size(), 2u);
  EXPECT_EQ(d.test[0].tokens, Bytes("Meh"));
  EXPECT_EQ(d.test[0].label, 0);
  EXPECT_EQ(d.test[1].tokens, Bytes("Wow"));
  EXPECT_EQ(d.test[1].label, 1);
  ASSERT_EQ(d.val.size(), 2u);
  EXPECT_EQ(d.val[0].tokens, d.test[0].tokens);
  EXPECT_EQ(d.val[1].label, d.test[1].label);
  EXPECT_THAT(d.notes, HasSubstr("val = test"));

  opt.max_length = 3;
  opt.max_examples = 2;
  d = MustLoad(opt);
  ASSERT_EQ(d.train.size(), 2u);
  EXPECT_EQ(d.train[1].tokens, Bytes("Gr"));
  EXPECT_EQ(d.train[1].tokens.size(), 3u);
  EXPECT_EQ(d.test.size(), 2u);
}

TEST(TextTest, MissingClassDirectoryIsNotFound) {
  const std::string dir = NewDir("aclImdb_bad");
  Write(dir + "/train/pos/0_9.txt", "x");
  LoadOptions opt;
  opt.task = "text";
  opt.data_dir = dir;
  absl::StatusOr<TaskData> d = LoadTask(opt);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(d.status()), HasSubstr(dir + "/train/neg"));
}

// ---- Retrieval (AAN) ---------------------------------------------------------------------------

TEST(RetrievalTest, TwoDocumentsQuotesAndTruncation) {
  const std::string dir = NewDir("tsv_data");
  const std::string long_doc(5000, 'a');
  Write(dir + "/new_aan_pairs.train.tsv",
        "1.0\tP00-1001\tW99-0604\tA \"quoted\" text\tsecond 'doc'\n"
        "0\tP00-1002\tW99-0605\t" +
            long_doc + "\tz\r\n");
  Write(dir + "/new_aan_pairs.eval.tsv", "0.0\ta\tb\tx\ty\n");
  Write(dir + "/new_aan_pairs.test.tsv", "1\ta\tb\t\"\t\n");
  LoadOptions opt;
  opt.task = "retrieval";
  opt.data_dir = dir;
  TaskData d = MustLoad(opt);
  EXPECT_EQ(d.num_classes, 2);
  EXPECT_EQ(d.max_length, 4000);
  EXPECT_EQ(d.vocab.size(), 260);
  ASSERT_EQ(d.train.size(), 2u);
  EXPECT_EQ(d.train[0].label, 1);
  EXPECT_EQ(d.train[0].tokens, Bytes("A \"quoted\" text"));
  EXPECT_EQ(d.train[0].tokens2, Bytes("second 'doc'"));
  EXPECT_EQ(d.train[1].label, 0);
  ASSERT_EQ(d.train[1].tokens.size(), 4000u);
  EXPECT_EQ(d.train[1].tokens[3998], 'a' + 4);
  EXPECT_EQ(d.train[1].tokens[3999], Vocab::kEos);
  EXPECT_EQ(d.train[1].tokens2, Bytes("z"));  // trailing \r stripped
  ASSERT_EQ(d.val.size(), 1u);
  EXPECT_EQ(d.val[0].label, 0);
  EXPECT_EQ(d.val[0].tokens, Bytes("x"));
  ASSERT_EQ(d.test.size(), 1u);
  EXPECT_EQ(d.test[0].label, 1);
  EXPECT_EQ(d.test[0].tokens, Bytes("\""));
  EXPECT_THAT(d.test[0].tokens2, ElementsAre(Vocab::kEos));  // an empty document
  EXPECT_THAT(d.notes, HasSubstr("1 documents truncated to 3999 bytes"));
}

TEST(RetrievalTest, WrongColumnCountAndBadLabelNameFileAndLine) {
  const std::string dir = NewDir("tsv_bad");
  Write(dir + "/new_aan_pairs.train.tsv", "1\ta\tb\tx\ty\n");
  Write(dir + "/new_aan_pairs.eval.tsv", "1\ta\tb\tx\ty\n0\ta\tb\tx\ty\tz\n");
  Write(dir + "/new_aan_pairs.test.tsv", "1\ta\tb\tx\ty\n");
  LoadOptions opt;
  opt.task = "retrieval";
  opt.data_dir = dir;
  absl::StatusOr<TaskData> d = LoadTask(opt);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(Message(d.status()),
              HasSubstr(dir + "/new_aan_pairs.eval.tsv:2: expected 5 TAB-separated columns"));
  EXPECT_THAT(Message(d.status()), HasSubstr("found 6"));

  Write(dir + "/new_aan_pairs.eval.tsv", "2\ta\tb\tx\ty\n");
  d = LoadTask(opt);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(Message(d.status()), HasSubstr("new_aan_pairs.eval.tsv:1: label '2' is not 0 or 1"));
}

// ---- Image (CIFAR-10 binary) -------------------------------------------------------------------

// One CIFAR record: label, then R, G, B planes. Pixel 0 is (r0, g0, b0); pixel p > 0 is gray
// (v, v, v) with v = (tag + p) % 256, so the gray value is v and `tag` identifies the record.
std::string CifarRecord(int label, int tag, int r0, int g0, int b0) {
  std::string rec(3073, '\0');
  rec[0] = static_cast<char>(label);
  for (int p = 0; p < 1024; ++p) {
    for (int c = 0; c < 3; ++c) rec[1 + c * 1024 + p] = static_cast<char>((tag + p) % 256);
  }
  rec[1] = static_cast<char>(r0);
  rec[1 + 1024] = static_cast<char>(g0);
  rec[1 + 2048] = static_cast<char>(b0);
  return rec;
}

std::string CifarDir(int per_batch) {
  const std::string dir = NewDir("cifar");
  int tag = 0;
  for (int b = 1; b <= 5; ++b) {
    std::string bytes;
    for (int i = 0; i < per_batch; ++i, ++tag) bytes += CifarRecord(tag % 10, tag, 255, 0, 0);
    Write(absl::StrCat(dir, "/data_batch_", b, ".bin"), bytes);
  }
  Write(dir + "/test_batch.bin", CifarRecord(3, 200, 0, 255, 0) + CifarRecord(7, 201, 0, 0, 255) +
                                     CifarRecord(1, 202, 255, 255, 255));
  return dir;
}

TEST(ImageTest, GrayscaleRasterAndSeededValSplit) {
  LoadOptions opt;
  opt.task = "image";
  opt.data_dir = CifarDir(/*per_batch=*/4);  // 20 train records, tags 0..19
  TaskData d = MustLoad(opt);
  EXPECT_TRUE(d.pixel_input);
  EXPECT_EQ(d.num_classes, 10);
  EXPECT_EQ(d.max_length, 1024);
  EXPECT_EQ(d.vocab.size(), 0);
  ASSERT_EQ(d.test.size(), 3u);
  // Pillow's L: red 76, green 150, blue 29, white 255.
  EXPECT_EQ(d.test[0].tokens[0], 150);
  EXPECT_EQ(d.test[1].tokens[0], 29);
  EXPECT_EQ(d.test[2].tokens[0], 255);
  EXPECT_EQ(d.test[0].label, 3);
  EXPECT_EQ(d.test[1].label, 7);
  for (int p = 1; p < 1024; ++p) ASSERT_EQ(d.test[1].tokens[p], (201 + p) % 256) << p;
  EXPECT_EQ(d.test[1].tokens.size(), 1024u);

  // val = 10% of 20 = 2; together with train, every record once, in SeededPermutation order.
  ASSERT_EQ(d.train.size(), 18u);
  ASSERT_EQ(d.val.size(), 2u);
  const std::vector<int64_t> perm = SeededPermutation(20, 42);
  for (size_t i = 0; i < 20; ++i) {
    const Example& ex = i < 18 ? d.train[i] : d.val[i - 18];
    const int tag = static_cast<int>(perm[i]);
    EXPECT_EQ(ex.label, tag % 10);
    EXPECT_EQ(ex.tokens[0], 76);  // red
    EXPECT_EQ(ex.tokens[1], (tag + 1) % 256);
  }
  EXPECT_THAT(d.notes, HasSubstr("seed 42"));

  // The same seed gives the same split; another seed another one.
  TaskData again = MustLoad(opt);
  EXPECT_EQ(again.val[0].tokens, d.val[0].tokens);
  opt.split_seed = 7;
  TaskData other = MustLoad(opt);
  std::set<int32_t> val42 = {d.val[0].tokens[1], d.val[1].tokens[1]};
  std::set<int32_t> val7 = {other.val[0].tokens[1], other.val[1].tokens[1]};
  EXPECT_NE(val42, val7);

  opt.max_examples = 1;
  TaskData capped = MustLoad(opt);
  EXPECT_EQ(capped.train.size(), 1u);
  EXPECT_EQ(capped.val.size(), 1u);
  EXPECT_EQ(capped.test.size(), 1u);
}

TEST(ImageTest, WrongRecordSizeNamesFileAndRecord) {
  const std::string dir = CifarDir(2);
  Write(dir + "/data_batch_3.bin",
        CifarRecord(1, 0, 0, 0, 0) + CifarRecord(2, 0, 0, 0, 0) + std::string(100, '\1'));
  LoadOptions opt;
  opt.task = "image";
  opt.data_dir = dir;
  absl::StatusOr<TaskData> d = LoadTask(opt);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(Message(d.status()),
              HasSubstr(dir + "/data_batch_3.bin: record 2 (0-based) is 100 bytes, expected 3073"));

  Write(dir + "/data_batch_3.bin", CifarRecord(1, 0, 0, 0, 0) + CifarRecord(10, 0, 0, 0, 0));
  d = LoadTask(opt);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(Message(d.status()), HasSubstr("data_batch_3.bin: record 1 (0-based) has label 10"));
}

TEST(SeededPermutationTest, IsAPermutationAndPinned) {
  const std::vector<int64_t> p = SeededPermutation(1000, 42);
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
  EXPECT_EQ(SeededPermutation(1000, 42), p);
  EXPECT_NE(SeededPermutation(1000, 43), p);
  EXPECT_TRUE(SeededPermutation(0, 42).empty());
  EXPECT_THAT(SeededPermutation(1, 42), ElementsAre(0));
  // Pinned: mt19937_64 is fully specified by the standard, so this holds everywhere.
  EXPECT_THAT(SeededPermutation(8, 42), ElementsAre(7, 0, 5, 1, 2, 4, 3, 6));
}

// ---- Pathfinder --------------------------------------------------------------------------------

GrayImage PathfinderImage(int64_t size, int id) {
  GrayImage img;
  img.height = img.width = size;
  img.pixels.resize(size * size);
  for (int64_t p = 0; p < size * size; ++p)
    img.pixels[p] = static_cast<uint8_t>((id * 7 + p) % 256);
  img.pixels[0] = static_cast<uint8_t>(id);
  return img;
}

// pathfinder32/curv_contour_length_14 with metadata/0.npy (ids 0..9) and metadata/1.npy
// (ids 10..19, sample_2 of batch 1 an empty file), label = id % 2; plus a decoy difficulty.
std::string PathfinderDir(const std::string& name, int64_t size) {
  const std::string dir = NewDir(name);
  const std::string root = dir + "/curv_contour_length_14";
  for (int k = 0; k < 2; ++k) {
    std::string meta;
    for (int i = 0; i < 10; ++i) {
      const int id = k * 10 + i;
      const std::string png = absl::StrCat(root, "/imgs/", k, "/sample_", i, ".png");
      EXPECT_TRUE(MakeDirs(absl::StrCat(root, "/imgs/", k)).ok());
      if (id == 12) {
        Write(png, "");
      } else {
        EXPECT_TRUE(WriteGrayPng(png, PathfinderImage(size, id)).ok());
      }
      absl::StrAppend(&meta, "imgs/", k, " sample_", i, ".png ", i, " ", id % 2,
                      " 1.0 14 14 2 2 0.5 1 1\n");
    }
    Write(absl::StrCat(root, "/metadata/", k, ".npy"), meta);
  }
  Write(dir + "/curv_baseline/metadata/0.npy", "imgs/0 sample_0.png 0 1 1.0 6 2 2 0.5 1 1\n");
  return dir;
}

TEST(PathfinderTest, LoadsSkipsEmptyPngAndSplits801010) {
  LoadOptions opt;
  opt.task = "pathfinder32";
  opt.data_dir = PathfinderDir("pathfinder32", 32);
  TaskData d = MustLoad(opt);
  EXPECT_TRUE(d.pixel_input);
  EXPECT_EQ(d.num_classes, 2);
  EXPECT_EQ(d.max_length, 1024);
  // 19 usable images: val = test = 1, train 17.
  ASSERT_EQ(d.train.size(), 17u);
  ASSERT_EQ(d.val.size(), 1u);
  ASSERT_EQ(d.test.size(), 1u);
  std::vector<int> ids;
  for (const auto* split : {&d.train, &d.val, &d.test}) {
    for (const Example& ex : *split) {
      ASSERT_EQ(ex.tokens.size(), 1024u);
      const int id = ex.tokens[0];
      EXPECT_EQ(ex.label, id % 2);
      EXPECT_EQ(ex.tokens[1], (id * 7 + 1) % 256);
      EXPECT_EQ(ex.tokens[1023], (id * 7 + 1023) % 256);
      ids.push_back(id);
    }
  }
  std::vector<int> want;
  for (int id = 0; id < 20; ++id) {
    if (id != 12) want.push_back(id);
  }
  EXPECT_THAT(ids, UnorderedElementsAreArray(want));
  // Entries are in metadata order (0.npy then 1.npy; id 12 skipped), then permuted.
  const std::vector<int64_t> perm = SeededPermutation(19, 42);
  EXPECT_EQ(d.val[0].tokens[0], want[perm[17]]);
  EXPECT_EQ(d.test[0].tokens[0], want[perm[18]]);
  EXPECT_THAT(d.notes, HasSubstr("Skipped 1 empty PNG file(s) before splitting: " + opt.data_dir +
                                 "/curv_contour_length_14/imgs/1/sample_2.png"));

  opt.max_examples = 2;
  TaskData capped = MustLoad(opt);
  EXPECT_EQ(capped.train.size(), 2u);
  EXPECT_EQ(capped.val.size(), 1u);
  EXPECT_EQ(capped.train[0].tokens, d.train[0].tokens);
}

TEST(PathfinderTest, MalformedMetadataLineNamesFileAndLine) {
  const std::string dir = PathfinderDir("pathfinder32_badmeta", 32);
  const std::string meta = dir + "/curv_contour_length_14/metadata/1.npy";
  Write(meta, "imgs/1 sample_0.png 0 0 1.0\nimgs/1 sample_1.png 1\n");
  LoadOptions opt;
  opt.task = "pathfinder32";
  opt.data_dir = dir;
  absl::StatusOr<TaskData> d = LoadTask(opt);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(Message(d.status()),
              HasSubstr(meta + ":2: expected at least 4 space-separated fields"));

  Write(meta, "imgs/1 sample_0.png 0 yes 1.0\n");
  d = LoadTask(opt);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(Message(d.status()), HasSubstr(meta + ":1: label (field 4) 'yes' is not 0 or 1"));

  Write(meta, "imgs/1 sample_0.png 0 1\nimgs/1 missing.png 1 0\n");
  d = LoadTask(opt);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(Message(d.status()), HasSubstr(meta + ":2: image '"));
  EXPECT_THAT(Message(d.status()), HasSubstr("missing.png"));
}

TEST(PathfinderTest, CorruptPngAndWrongSizeAreErrors) {
  const std::string dir = PathfinderDir("pathfinder32_corrupt", 32);
  const std::string root = dir + "/curv_contour_length_14";
  Write(root + "/imgs/0/sample_3.png", "not a png");
  LoadOptions opt;
  opt.task = "pathfinder32";
  opt.data_dir = dir;
  absl::StatusOr<TaskData> d = LoadTask(opt);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(Message(d.status()), HasSubstr(root + "/metadata/0.npy:4: "));
  EXPECT_THAT(Message(d.status()), HasSubstr("sample_3.png"));

  // 32 x 32 images where pathfinder64 expects 64 x 64.
  opt.task = "pathfinder64";
  opt.data_dir = PathfinderDir("pathfinder64_wrong", 32);
  d = LoadTask(opt);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(Message(d.status()), HasSubstr("is 32 x 32, expected 64 x 64"));
}

TEST(PathfinderTest, ReadsTheChosenDifficultyDirectory) {
  const std::string dir = PathfinderDir("pathfinder32_difficulty", 32);
  // The one curv_baseline image is added here (the decoy's metadata names imgs/0/sample_0.png).
  ASSERT_TRUE(MakeDirs(dir + "/curv_baseline/imgs/0").ok());
  ASSERT_TRUE(WriteGrayPng(dir + "/curv_baseline/imgs/0/sample_0.png", PathfinderImage(32, 5)).ok());
  LoadOptions opt;
  opt.task = "pathfinder32";
  opt.data_dir = dir;
  opt.pathfinder_difficulty = "curv_baseline";
  TaskData d = MustLoad(opt);
  ASSERT_EQ(d.train.size() + d.val.size() + d.test.size(), 1u);
  const Example& ex = d.train.empty() ? (d.val.empty() ? d.test[0] : d.val[0]) : d.train[0];
  EXPECT_EQ(ex.tokens[0], 5);
  EXPECT_EQ(ex.label, 1);
  EXPECT_THAT(d.notes, HasSubstr("from curv_baseline/"));

  opt.pathfinder_difficulty = "curv_contour_length_9";  // not in this directory
  absl::StatusOr<TaskData> missing = LoadTask(opt);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(Message(missing.status()), HasSubstr("curv_contour_length_9"));

  opt.pathfinder_difficulty = "curv_contour_length_12";
  absl::StatusOr<TaskData> bad = LoadTask(opt);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(Message(bad.status()), HasSubstr("\"curv_contour_length_12\" is not one of"));
}

TEST(PathfinderTest, PathXAliasAndLength) {
  LoadOptions opt;
  opt.task = "pathfinder128";
  opt.data_dir = PathfinderDir("pathfinder128", 128);
  opt.max_examples = 3;
  TaskData d = MustLoad(opt);
  EXPECT_EQ(d.task, "pathx");
  EXPECT_EQ(d.max_length, 16384);
  ASSERT_EQ(d.train.size(), 3u);
  EXPECT_EQ(d.train[0].tokens.size(), 16384u);
}

// ---- Options -----------------------------------------------------------------------------------

TEST(LoadTaskTest, RejectsBadOptions) {
  LoadOptions opt;
  opt.task = "imdb";
  opt.data_dir = "/";
  EXPECT_THAT(Message(LoadTask(opt).status()), HasSubstr("LRA task 'imdb' is unknown"));
  opt.task = "image";
  opt.max_length = 512;
  EXPECT_THAT(Message(LoadTask(opt).status()), HasSubstr("0 or 1024"));
  opt.task = "listops";
  opt.max_length = 1;
  EXPECT_THAT(Message(LoadTask(opt).status()), HasSubstr("max_length 1 is invalid"));
  opt.max_length = 0;
  opt.data_dir = "/nonexistent/lra";
  absl::StatusOr<TaskData> d = LoadTask(opt);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(d.status()), HasSubstr("/nonexistent/lra"));
}

}  // namespace
}  // namespace loom::data::lra
