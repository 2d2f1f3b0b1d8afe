// Keeps freed activations in the process's heap, reusable, between training steps.
//
// On these VMs touching fresh memory costs ~0.8-12 us per 4 KiB page, and LibTorch's CPU allocator
// does not cache: without this, every step pays the page faults of its activations again
// (DESIGN.md measured an eager PyTorch GPT step 4.4x slower). Two parts: glibc keeps big freed
// blocks (no mmap, no trim), and LibTorch's CPU allocator is replaced by one that takes its 64-byte
// alignment inside a plain malloc block, because posix_memalign's split-off heads pin the heap
// and make it creep (malloc_tuning.cc has the measurements). Call once at the top of main(),
// before any large allocation and before InstallTensorMemoryCounter (which then wraps it).
// LOOM_MALLOC_TUNING=0 turns both off (for measuring the effect).
#ifndef LOOM_CORE_MALLOC_TUNING_H_
#define LOOM_CORE_MALLOC_TUNING_H_

namespace loom {

// Returns true if the tuning was applied.
bool ConfigureAllocatorForTraining();

}  // namespace loom

#endif  // LOOM_CORE_MALLOC_TUNING_H_
