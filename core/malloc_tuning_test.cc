#include "core/malloc_tuning.h"

#include <ATen/ATen.h>
#include <c10/core/CPUAllocator.h>
#include <sys/resource.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"

namespace loom {
namespace {

int64_t MinorFaults() {
  rusage r;
  getrusage(RUSAGE_SELF, &r);
  return r.ru_minflt;
}

// The simplest pattern of a training step: a big activation allocated, written and freed, again
// and again. Returns the page faults of the last `measured` rounds. (With LibTorch's default
// posix_memalign allocator this faults ~29k of the 32k pages of every round on glibc 2.36: the
// heap creeps, see malloc_tuning.cc.)
int64_t FaultsOfStepPattern(c10::Allocator* allocator, int rounds, int measured) {
  constexpr size_t kBig = 128 << 20;
  int64_t faults = 0;
  for (int r = 0; r < rounds; ++r) {
    const int64_t before = MinorFaults();
    {
      c10::DataPtr block = allocator->allocate(kBig);
      std::memset(block.get(), 1, kBig);
    }
    if (r >= rounds - measured) faults += MinorFaults() - before;
  }
  return faults;
}

TEST(MallocTuningTest, InstallsAnAlignedAllocatorThatReusesFreedBlocks) {
  ASSERT_TRUE(ConfigureAllocatorForTraining());
  c10::Allocator* ours = c10::GetCPUAllocator();
  EXPECT_NE(ours, c10::GetDefaultCPUAllocator());
  for (int64_t n : {1, 3, 17, 1000, 1 << 20, 9 << 20}) {
    at::Tensor t = at::empty({n}, at::kFloat);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data_ptr()) % 64, 0u) << n;
    t.fill_(2.0f);
    EXPECT_EQ(t.sum().item<float>(), 2.0f * static_cast<float>(n));
  }
  EXPECT_EQ(at::empty({0}).numel(), 0);
  // Steady state: once the heap holds the block, a round faults (almost) no pages; 6 rounds of
  // fresh 128 MiB would be ~197k faults.
  const int64_t faults = FaultsOfStepPattern(ours, 10, 6);
  const int64_t default_faults = FaultsOfStepPattern(c10::GetDefaultCPUAllocator(), 10, 6);
  std::printf("faults over 6 steady rounds of 128 MiB: Loom allocator %lld, LibTorch default %lld\n",
              static_cast<long long>(faults), static_cast<long long>(default_faults));
  EXPECT_LT(faults, 1000);
}

}  // namespace
}  // namespace loom
