// Keeps glibc from returning big freed blocks to the kernel between training steps.
//
// On these VMs touching fresh memory costs ~12 us per 4 KiB page, and LibTorch's CPU allocator
// does not cache: without this, every step pays the page faults of its activations again
// (DESIGN.md measured an eager PyTorch GPT step 4.4x slower). Call once at the top of main(),
// before any large allocation. LOOM_MALLOC_TUNING=0 turns it off (for measuring the effect).
#ifndef LOOM_CORE_MALLOC_TUNING_H_
#define LOOM_CORE_MALLOC_TUNING_H_

namespace loom {

// Returns true if the tuning was applied.
bool ConfigureAllocatorForTraining();

}  // namespace loom

#endif  // LOOM_CORE_MALLOC_TUNING_H_
