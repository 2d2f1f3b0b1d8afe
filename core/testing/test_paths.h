// Paths tests need: the shared golden vectors (through the @loom_shared runfiles, or
// $LOOM_SHARED_DIR when run by hand) and a scratch directory.
//
//   ReadSafetensors(loom::testing::GoldenPath("structured_ffn/schedule_lr.safetensors"));
#ifndef LOOM_CORE_TESTING_TEST_PATHS_H_
#define LOOM_CORE_TESTING_TEST_PATHS_H_

#include <string>

namespace loom::testing {

// `rel` is relative to shared/golden/. Returns the first existing candidate, or the runfiles
// path (so a failing open names where the file was expected).
std::string GoldenPath(const std::string& rel);

// $TEST_TMPDIR under Bazel, else /tmp.
std::string TempDir();

}  // namespace loom::testing

#endif  // LOOM_CORE_TESTING_TEST_PATHS_H_
