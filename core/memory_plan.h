// Per-rank memory plan of a training run, before any allocation: parameters, gradients, AdamW
// state and the activations of one micro-batch, for a world size and ZeRO stage, so that a user
// knows whether a model fits before submitting (`train --dry_run`).
//
//   LOOM_ASSIGN_OR_RETURN(MemoryPlan plan, PlanMemory(config, /*world_size=*/8, baseline));
//   std::printf("%s", plan.ToTable().c_str());
//
// Activations follow what Loom's layers keep for the backward pass (counted in elements, then
// times the dtype size), per block with n = micro_batch x seq_len tokens, model width d, attention
// width a, key/value width k, FFN hidden f:
//   block input, LayerNorm outputs, residual mid-point        4 n d
//   attention (flash kernel, no n x T scores):  MHA: qkv + rotated q, k + output = n (3a + 3k);
//                                               GQA: n 4a (rotated q, repeated k and v, output)
//   FFN: GELU n (f + f) (pre-activation and activation); SwiGLU n 4f;
//        structured layers add their inner width (LowRank/BlockDense R, BlockShuffle min(in, out))
//        for fc1 and fc2.
//   head: final norm input and output 2 n d, log-softmax output n V, and 2 n V of gradient
//   temporaries at the start of the backward.
// Checked against the peak tensor memory of real CPU runs (core/tensor_memory.h counts it) in
// tests/memory_plan_test.sh. The plan is for tensors; a process also holds its libraries
// (runtime_bytes, measured) and, on CPU, heap that the allocator keeps after frees.
#ifndef LOOM_CORE_MEMORY_PLAN_H_
#define LOOM_CORE_MEMORY_PLAN_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/config.pb.h"

namespace loom {

struct MemoryPlan {
  int world_size = 1;
  int zero_stage = 0;
  std::string dtype;
  int64_t parameters = 0;       // elements, guides included while they exist
  int64_t guide_parameters = 0;
  int64_t param_bytes = 0;
  int64_t grad_bytes = 0;       // flat gradient buffer (+ ZeRO-1 shard)
  int64_t optimizer_bytes = 0;  // AdamW exp_avg + exp_avg_sq held by this rank
  int64_t activation_bytes = 0; // one micro-batch, at the forward/backward turn
  int64_t runtime_bytes = 0;    // the process before any model (libraries, threads), measured
  // What tensors need at the peak (GPU memory, or train's "peak memory: tensors").
  int64_t total_tensor_bytes() const {
    return param_bytes + grad_bytes + optimizer_bytes + activation_bytes;
  }
  std::string ToTable() const;
};

// `config` is resolved and validated here. `runtime_bytes`: the resident size of the process
// without a model (PlanMemory adds it as is).
absl::StatusOr<MemoryPlan> PlanMemory(const RunConfig& config, int world_size,
                                      int64_t runtime_bytes);

// Resident set size of this process now, and its peak so far (bytes).
int64_t CurrentRssBytes();
int64_t PeakRssBytes();

}  // namespace loom

#endif  // LOOM_CORE_MEMORY_PLAN_H_
