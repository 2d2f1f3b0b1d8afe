#include "core/malloc_tuning.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <limits>

namespace loom {

bool ConfigureAllocatorForTraining() {
  const char* env = std::getenv("LOOM_MALLOC_TUNING");
  if (env != nullptr && std::strcmp(env, "0") == 0) return false;
  // Serve large blocks from the heap instead of fresh mmaps, and never trim the heap back.
  mallopt(M_MMAP_MAX, 0);
  // INT_MAX (2 GiB) is the largest value mallopt takes; a step of the tiny model frees more than
  // 1 GiB at once, which a smaller threshold would hand back to the kernel.
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
  mallopt(M_TOP_PAD, 64 << 20);
  return true;
}

}  // namespace loom
