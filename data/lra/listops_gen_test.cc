#include "data/lra/listops_gen.h"

#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/file_io.h"
#include "gtest/gtest.h"

namespace loom::data::lra {
namespace {

std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base ? base : "/tmp", "/", name);
  std::filesystem::remove_all(dir);
  return dir;
}

TEST(EvaluateListOpsTest, Operators) {
  EXPECT_EQ(EvaluateListOps("( ( ( [MAX 2 ) 9 ) ] )"), 9);
  EXPECT_EQ(EvaluateListOps("( ( ( [MIN 2 ) 9 ) ] )"), 2);
  EXPECT_EQ(EvaluateListOps("( ( ( ( [SM 5 ) 9 ) 8 ) ] )"), 2);
  // np.median of an even count averages the middle pair; int() truncates.
  EXPECT_EQ(EvaluateListOps("( ( ( ( ( [MED 1 ) 2 ) 7 ) 9 ) ] )"), 4);
  EXPECT_EQ(EvaluateListOps("( ( ( [MED 3 ) 0 ) ] )"), 1);
  EXPECT_EQ(EvaluateListOps("( ( ( ( [MED 3 ) 0 ) 8 ) ] )"), 3);
  // Nested: MAX(2, MIN(4, 7), SM(9, 9)) = MAX(2, 4, 8) = 8.
  EXPECT_EQ(EvaluateListOps("( ( ( ( [MAX 2 ) ( ( ( [MIN 4 ) 7 ) ] ) ) ( ( ( [SM 9 ) 9 ) ] ) ) ] )"),
            8);
  EXPECT_EQ(EvaluateListOps("7"), 7);
  // Malformed.
  EXPECT_EQ(EvaluateListOps(""), -1);
  EXPECT_EQ(EvaluateListOps("( ( [MAX 2 ) 9 )"), -1);        // no closer
  EXPECT_EQ(EvaluateListOps("( ( ( [MAX ) ] )"), -1);        // no argument
  EXPECT_EQ(EvaluateListOps("( ( ( [MAX 2 ) 9 ) ] ) 3"), -1);  // two expressions
  EXPECT_EQ(EvaluateListOps("( ( ( [MAX 2 ) 12 ) ] )"), -1);  // not a digit
  EXPECT_EQ(EvaluateListOps("( ( ( [MAX 2 ) 9 ) ] ) )"), -1);  // unbalanced
  EXPECT_EQ(ListOpsLength("( ( ( [MAX 2 ) 9 ) ] )"), 4);
}

ListOpsOptions Small() {
  ListOpsOptions o;
  o.num_train = 300;
  o.num_val = 40;
  o.num_test = 40;
  o.seed = 11;
  return o;
}

TEST(ListOpsGenTest, ExamplesFollowTheRules) {
  const ListOpsOptions o = Small();
  auto ex = GenerateListOpsExamples(o);
  ASSERT_TRUE(ex.ok()) << ex.status();
  ASSERT_EQ(ex->size(), 380u);
  std::set<std::string> unique;
  int counts[10] = {};
  for (const ListOpsExample& e : *ex) {
    // The independent evaluator agrees with the generator's label.
    ASSERT_EQ(EvaluateListOps(e.source), e.target) << e.source;
    ++counts[e.target];
    const int64_t len = ListOpsLength(e.source);
    EXPECT_EQ(len, e.length);
    EXPECT_GT(len, 500);
    EXPECT_LT(len, 2000);
    EXPECT_TRUE(unique.insert(e.source).second) << "duplicate tree";
    // Serialisation: single spaces, starts with the root's pairs, ends with the closer.
    EXPECT_EQ(e.source.find("  "), std::string::npos);
    EXPECT_EQ(e.source.rfind("( ( ( ", 0), 0u) << e.source.substr(0, 40);
    EXPECT_EQ(e.source.substr(e.source.size() - 4), " ] )");
    EXPECT_EQ(e.source.find('\t'), std::string::npos);
  }
  int classes = 0;
  for (int c : counts) classes += c > 0;
  EXPECT_GE(classes, 5);
}

TEST(ListOpsGenTest, OtherBoundsAndDepth) {
  ListOpsOptions o;
  o.num_train = 200;
  o.num_val = o.num_test = 0;
  o.min_length = 5;
  o.max_length = 40;
  o.max_depth = 4;
  o.max_args = 3;
  auto ex = GenerateListOpsExamples(o);
  ASSERT_TRUE(ex.ok()) << ex.status();
  std::set<std::string> unique;
  for (const ListOpsExample& e : *ex) {
    ASSERT_EQ(EvaluateListOps(e.source), e.target) << e.source;
    EXPECT_GT(ListOpsLength(e.source), 5);
    EXPECT_LT(ListOpsLength(e.source), 40);
    EXPECT_TRUE(unique.insert(e.source).second);
    // At most 3 arguments: no operator is followed by 4 nested pairs' worth of '('.
    EXPECT_EQ(e.source.find("( ( ( ( ( ["), std::string::npos);
  }
}

TEST(ListOpsGenTest, DeterministicPerSeed) {
  ListOpsOptions o = Small();
  o.num_train = 50;
  o.num_val = o.num_test = 5;
  auto a = GenerateListOpsExamples(o);
  auto b = GenerateListOpsExamples(o);
  o.seed = 12;
  auto c = GenerateListOpsExamples(o);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  for (size_t i = 0; i < a->size(); ++i) {
    EXPECT_EQ((*a)[i].source, (*b)[i].source);
    EXPECT_EQ((*a)[i].target, (*b)[i].target);
  }
  EXPECT_NE((*a)[0].source, (*c)[0].source);
}

TEST(ListOpsGenTest, WritesTheReleaseFiles) {
  const ListOpsOptions o = Small();
  const std::string d1 = TempDir("listops1"), d2 = TempDir("listops2");
  int64_t last_done = -1;
  ASSERT_TRUE(GenerateListOps(o, d1, [&](int64_t done, int64_t total) {
                EXPECT_EQ(total, 380);
                last_done = done;
              }).ok());
  EXPECT_EQ(last_done, 380);
  ASSERT_TRUE(GenerateListOps(o, d2).ok());
  auto ex = GenerateListOpsExamples(o);
  ASSERT_TRUE(ex.ok());
  size_t next = 0;
  for (const auto& [split, n] : std::vector<std::pair<std::string, size_t>>{
           {"train", 300}, {"val", 40}, {"test", 40}}) {
    const std::string name = absl::StrCat("/basic_", split, ".tsv");
    auto t1 = ReadFileToString(d1 + name);
    auto t2 = ReadFileToString(d2 + name);
    ASSERT_TRUE(t1.ok() && t2.ok()) << name;
    EXPECT_EQ(*t1, *t2) << "same seed, same bytes";
    EXPECT_FALSE(std::filesystem::exists(d1 + name + ".tmp"));
    ASSERT_GE(t1->size(), 2u);
    EXPECT_EQ(t1->substr(t1->size() - 2), "\r\n");
    std::vector<std::string> lines = absl::StrSplit(*t1, "\r\n");
    lines.pop_back();
    ASSERT_EQ(lines.size(), n + 1);
    EXPECT_EQ(lines[0], "Source\tTarget");
    for (size_t i = 1; i < lines.size(); ++i) {
      std::vector<std::string> f = absl::StrSplit(lines[i], '\t');
      ASSERT_EQ(f.size(), 2u);
      EXPECT_EQ(f[0], (*ex)[next].source);
      EXPECT_EQ(f[1], std::to_string((*ex)[next].target));
      EXPECT_EQ(EvaluateListOps(f[0]), std::stoi(f[1]));
      ++next;
    }
  }
}

TEST(ListOpsGenTest, RejectsBadOptions) {
  ListOpsOptions o = Small();
  o.min_length = 10;
  o.max_length = 11;  // nothing fits strictly between
  EXPECT_EQ(GenerateListOpsExamples(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = Small();
  o.max_args = 1;
  EXPECT_EQ(GenerateListOpsExamples(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = Small();
  o.num_val = -1;
  EXPECT_EQ(GenerateListOps(o, TempDir("listops_bad")).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace loom::data::lra
