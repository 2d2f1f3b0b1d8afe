#include "core/malloc_tuning.h"

#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>
#include <malloc.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace loom {
namespace {

// LibTorch's CPU allocator asks glibc for 64-byte aligned blocks (posix_memalign). For a large
// block glibc allocates a little more and frees the unaligned head as a separate small chunk,
// which lands in the thread cache (tcache) or a fastbin and is not merged back while it sits
// there. That pinned fragment keeps the freed neighbours on either side from coalescing into one
// free block, so the next large request often finds no hole big enough, extends the heap and
// faults every page of it afresh. Measured in `ffn_benchmark` (d = 2048, dense, 6 steps): the GELU
// backward's (4096 x 8192) output faulted all of its 32,767 pages (~27 ms, on a 16 ms kernel) in
// most steps, and the process grew to 2.31 GB; with glibc's tcache and fastbins switched off
// (GLIBC_TUNABLES) it faulted once and peaked at 1.49 GB. This allocator gets the same by never
// asking for alignment: it over-allocates by 64 bytes with plain malloc, aligns inside the block
// and keeps the malloc pointer just before the aligned address, so every free returns whole blocks.
constexpr uintptr_t kAlignment = 64;  // what c10's default gives (AVX-512 loads, MKL)

void FreeAligned(void* data) {
  if (data != nullptr) std::free(static_cast<void**>(data)[-1]);
}

class AlignedMallocAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) override {
    if (n == 0) return {nullptr, nullptr, &FreeAligned, c10::Device(c10::DeviceType::CPU)};
    void* raw = std::malloc(n + kAlignment);
    TORCH_CHECK(raw != nullptr, "out of CPU memory: failed to allocate ", n, " bytes");
    // malloc returns 16-byte aligned memory, so there are at least 16 bytes before `data`.
    const uintptr_t data_addr = (reinterpret_cast<uintptr_t>(raw) + kAlignment) & ~(kAlignment - 1);
    void* data = reinterpret_cast<void*>(data_addr);
    static_cast<void**>(data)[-1] = raw;
    return {data, data, &FreeAligned, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &FreeAligned; }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
};

}  // namespace

bool ConfigureAllocatorForTraining() {
  const char* env = std::getenv("LOOM_MALLOC_TUNING");
  if (env != nullptr && std::strcmp(env, "0") == 0) return false;
  // Serve large blocks from the heap instead of fresh mmaps, and never trim the heap back.
  mallopt(M_MMAP_MAX, 0);
  // -1 disables trimming altogether (mallopt(3)). A 2 GiB threshold (INT_MAX, the largest
  // positive value) was not enough: a d=512, seq-512 GPT-2-vocabulary step frees ~2.5 GB of
  // logits at once, and re-faulting them cost 15% of the step (718 -> 818 tokens/s without it).
  mallopt(M_TRIM_THRESHOLD, -1);
  mallopt(M_TOP_PAD, 64 << 20);
  // Priority 50: above LibTorch's default (0), below the tensor-memory counter (100), which must
  // be installed after this call so that it wraps this allocator.
  static AlignedMallocAllocator* allocator = new AlignedMallocAllocator();
  c10::SetCPUAllocator(allocator, /*priority=*/50);
  return true;
}

}  // namespace loom
