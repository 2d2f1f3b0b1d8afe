#include "core/malloc_tuning.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace loom {

bool ConfigureAllocatorForTraining() {
  const char* env = std::getenv("LOOM_MALLOC_TUNING");
  if (env != nullptr && std::strcmp(env, "0") == 0) return false;
  // Serve large blocks from the heap instead of fresh mmaps, and never trim the heap back.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
  return true;
}

}  // namespace loom
