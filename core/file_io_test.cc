#include "core/file_io.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loom {
namespace {

using ::testing::HasSubstr;

std::string TempDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  std::string base = t ? t : "/tmp";
  std::string dir = base + "/file_io_test_" + std::to_string(::getpid());
  EXPECT_TRUE(MakeDirs(dir).ok());
  return dir;
}

int CountEntries(const std::string& dir) {
  int n = 0;
  DIR* d = ::opendir(dir.c_str());
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") ++n;
  }
  ::closedir(d);
  return n;
}

TEST(FileIoTest, WriteReadRoundTrip) {
  std::string dir = TempDir() + "/rt";
  ASSERT_TRUE(MakeDirs(dir).ok());
  std::string path = dir + "/a.bin";
  std::string data("hello\0world", 11);
  ASSERT_TRUE(WriteFileAtomically(path, data).ok());
  auto got = ReadFileToString(path);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, data);
  ASSERT_TRUE(WriteFileAtomically(path, "second").ok());
  EXPECT_EQ(*ReadFileToString(path), "second");
  EXPECT_EQ(CountEntries(dir), 1);  // No temp files left behind.
  EXPECT_TRUE(FileExists(path));
}

TEST(FileIoTest, ReadMissingNamesPath) {
  auto got = ReadFileToString("/nonexistent/dir/file.txt");
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(absl::IsNotFound(got.status()));
  EXPECT_THAT(got.status().message(), HasSubstr("/nonexistent/dir/file.txt"));
  EXPECT_THAT(got.status().message(), HasSubstr("No such file"));
}

TEST(FileIoTest, AtomicWriteFailureNamesPathAndLeavesNoTemp) {
  std::string dir = TempDir();
  // Renaming a file over a non-empty directory fails after the temp exists.
  std::string target = dir + "/blocker";
  ASSERT_TRUE(MakeDirs(target + "/child").ok());
  absl::Status st = WriteFileAtomically(target, "x");
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr(target));
  EXPECT_FALSE(FileExists(target + ".tmp." + std::to_string(::getpid())));
  absl::Status st2 = WriteFileAtomically("/nonexistent_dir_xyz/f", "x");
  ASSERT_FALSE(st2.ok());
  EXPECT_THAT(st2.message(), HasSubstr("/nonexistent_dir_xyz/f"));
}

TEST(FileIoTest, AppendLine) {
  std::string path = TempDir() + "/m.jsonl";
  ::unlink(path.c_str());
  ASSERT_TRUE(AppendLine(path, "{\"a\":1}").ok());
  ASSERT_TRUE(AppendLine(path, "{\"a\":2}").ok());
  EXPECT_EQ(*ReadFileToString(path), "{\"a\":1}\n{\"a\":2}\n");
}

TEST(FileIoTest, MakeDirs) {
  std::string dir = TempDir();
  ASSERT_TRUE(MakeDirs(dir + "/x/y/z").ok());
  EXPECT_TRUE(FileExists(dir + "/x/y/z"));
  ASSERT_TRUE(MakeDirs(dir + "/x/y/z/").ok());  // Idempotent.
  ASSERT_TRUE(WriteFileAtomically(dir + "/file", "x").ok());
  absl::Status st = MakeDirs(dir + "/file/sub");
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr(dir + "/file"));
  EXPECT_FALSE(FileExists(dir + "/nope"));
}

}  // namespace
}  // namespace loom

namespace loom {
namespace {

TEST(ResolveInvocationPathTest, RelativeMissingPathsResolveAgainstTheBazelRunDirectory) {
  unsetenv("BUILD_WORKING_DIRECTORY");
  EXPECT_EQ(ResolveInvocationPath("configs/x.textproto"), "configs/x.textproto");
  setenv("BUILD_WORKING_DIRECTORY", "/home/user/loom", 1);
  EXPECT_EQ(ResolveInvocationPath("configs/x.textproto"), "/home/user/loom/configs/x.textproto");
  EXPECT_EQ(ResolveInvocationPath("/abs/x.textproto"), "/abs/x.textproto");
  EXPECT_EQ(ResolveInvocationPath(""), "");
  unsetenv("BUILD_WORKING_DIRECTORY");
}

}  // namespace
}  // namespace loom
