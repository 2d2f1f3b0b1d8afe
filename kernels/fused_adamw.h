// AdamW with a one-pass CPU update: the same algorithm, options and per-parameter state as
// torch::optim::AdamW (decoupled weight decay, bias-corrected moments, no amsgrad), but for
// contiguous float32/float64 CPU parameters the update reads p, g, m, v once and writes p, m, v
// once, where torch's step runs seven ATen ops (seven passes, two temporaries) per parameter.
// On the throughput benchmark's small model (16M parameters, 13M of them the GPT-2 embedding) that
// was a fifth of the step. Anything else (CUDA, other dtypes, amsgrad) runs torch's algorithm as
// ATen ops, so one interface covers every device.
//
//   auto opt = std::make_unique<loom::kernels::FusedAdamW>(param_groups, defaults);
//   opt->step();   // state()[p.unsafeGetTensorImpl()] is a torch::optim::AdamWParamState
//
// Drop-in: it is a torch::optim::AdamW, so code that reads or restores AdamWParamState
// (checkpoints, ZeRO-1 shards) works unchanged. Results equal torch's to rounding (the one-pass
// loop rounds once per element where the ATen ops round after each op).
#ifndef LOOM_KERNELS_FUSED_ADAMW_H_
#define LOOM_KERNELS_FUSED_ADAMW_H_

#include <torch/optim/adamw.h>

#include <vector>

namespace loom::kernels {

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;

  torch::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace loom::kernels

#endif  // LOOM_KERNELS_FUSED_ADAMW_H_
