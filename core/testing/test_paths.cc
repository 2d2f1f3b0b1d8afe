#include "core/testing/test_paths.h"

#include <sys/stat.h>

#include <cstdlib>
#include <vector>

namespace loom::testing {

std::string GoldenPath(const std::string& rel) {
  std::vector<std::string> candidates;
  if (const char* srcdir = std::getenv("TEST_SRCDIR")) {
    candidates.push_back(std::string(srcdir) + "/loom_shared/golden/" + rel);
  }
  if (const char* shared = std::getenv("LOOM_SHARED_DIR")) {
    candidates.push_back(std::string(shared) + "/golden/" + rel);
  }
  candidates.push_back("../shared/golden/" + rel);
  for (const auto& c : candidates) {
    struct stat st;
    if (stat(c.c_str(), &st) == 0) return c;
  }
  return candidates.front();
}

std::string TempDir() {
  const char* d = std::getenv("TEST_TMPDIR");
  return d != nullptr ? d : "/tmp";
}

}  // namespace loom::testing
