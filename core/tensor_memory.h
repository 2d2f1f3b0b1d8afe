// Live and peak bytes of CPU tensor storage in this process, counted by a thin wrapper around
// LibTorch's CPU allocator. Resident memory (RSS) also holds libraries, thread stacks and freed
// heap that glibc keeps; this counts only what tensors occupy, which is what a memory plan can
// predict.
//
//   loom::InstallTensorMemoryCounter();          // once, before tensors are made
//   ... work ...
//   int64_t peak = loom::TensorMemoryPeakBytes();
//   loom::ResetTensorMemoryPeak();               // peak := live
#ifndef LOOM_CORE_TENSOR_MEMORY_H_
#define LOOM_CORE_TENSOR_MEMORY_H_

#include <cstdint>

namespace loom {

// Idempotent. Storage allocated before the call is not counted (and freeing it is harmless).
void InstallTensorMemoryCounter();
bool TensorMemoryCounterInstalled();
int64_t TensorMemoryLiveBytes();
int64_t TensorMemoryPeakBytes();
void ResetTensorMemoryPeak();

}  // namespace loom

#endif  // LOOM_CORE_TENSOR_MEMORY_H_
