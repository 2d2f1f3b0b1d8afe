// FLOP accounting in the StructuredFFN convention (spec §7): matmul FLOPs only, 2 per
// multiply-add, attention scores over the full s x s (no causal halving), LM head included,
// training = 3 x forward. The one place `train` (and later `flops`, `sweep`, `ckpt info`) gets
// its numbers from.
#ifndef LOOM_CORE_FLOPS_H_
#define LOOM_CORE_FLOPS_H_

#include <cstdint>

#include "core/config.pb.h"

namespace loom {

// Forward FLOPs for `tokens` tokens in sequences of length `seq_len`.
double ForwardFlops(const ModelConfig& model, int64_t seq_len, int64_t tokens);
// 3 x forward.
double TrainingFlops(const ModelConfig& model, int64_t seq_len, int64_t tokens);

// Measures this machine's fp32 matmul rate (FLOP/s) with a short probe (~0.3 s), the MFU
// denominator on CPU.
double MeasureCpuMatmulPeak(int num_threads);

}  // namespace loom

#endif  // LOOM_CORE_FLOPS_H_
