// Parameter and FLOP accounting in the StructuredFFN convention (spec §7, §5.4): the one module
// `train`, `flops`, `sweep` and `ckpt info` take their numbers from.
//
// Parameters ("params" of the paper's tables)
//   every trainable parameter: embedding (tied with the LM head, so counted once; the head has
//   no bias), per block LN1 + fused QKV (weight + bias) + out projection (weight + bias) + LN2 +
//   FFN (fc1, fc2 weights + biases), final LayerNorm. Structured layers (spec §2) per linear
//   N -> M: LowRank R(N+M), BlockDense R*N/B + M*R, BlockShuffle min(N,M)(N+M)/B; with
//   ffn.first_layer_dense block 0 keeps a dense FFN. swiglu doubles fc1's output to 2f.
//   "FFN size" = FFN weight matrices only (no biases). Self-guided guides (one dense M x N matrix
//   per structured linear, no bias) are NOT in the table numbers: the SGT rows of Tables 1/2
//   report the structured model (e.g. 219M for "Ours♣"); they are counted in guide_params.
//
// FLOPs
//   matmul FLOPs only, 2 per multiply-add; no LayerNorm, softmax, activation or embedding
//   lookup. Per layer: Q and O projections 2*T*A*d each, K and V 2*T*(A/nq)*nkv*d each,
//   QK^T and A*V 2*T*s*A each over the full s x s (no causal halving). FFN 2*T*(FFN weight
//   entries), guides included when they run. LM head 2*T*V*d. Training = 3 x forward.
//   A run (ComputeRunFlops) has total_steps optimizer steps of global_batch * seq_len tokens;
//   with self-guided training the guide's forward cost G per step is added for the guided
//   steps only, halved when reduce_flop (cosine alpha: the dense branch runs half the time on
//   average), as the reference's trainer.get_info does:
//     fwd_total = F_structured * total_steps + G * guided_steps * (reduce_flop ? 1/2 : 1)
//   guided_steps = int(rho * max_steps); fixedflop appends guided_steps steps (total_steps =
//   max_steps + guided_steps), fixedstep keeps total_steps = max_steps.
//   "tokens" is the base (unique) token budget max_steps * global_batch * seq_len, as the
//   tables report it; tokens_processed includes the fixedflop repeat.
#ifndef LOOM_CORE_FLOPS_H_
#define LOOM_CORE_FLOPS_H_

#include <cstdint>
#include <string>

#include "core/config.pb.h"

namespace loom {

// Parameter counts of a model. Works on unresolved configs too (0 = default for hidden_dim,
// attn_dim and num_kv_heads); assumes the divisibility rules config validation enforces.
struct ModelCounts {
  int64_t params = 0;            // everything below, guides only if include_guides
  int64_t embedding_params = 0;  // V * d (tied LM head counted once)
  int64_t attention_params = 0;  // sequence mixers, all layers: attention QKV + out
                                 // projections (weights, biases), or S4 / SGConv layers
  int64_t ffn_params = 0;        // FFN weight matrices (structured factors), all layers
  int64_t ffn_bias_params = 0;   // fc1 + fc2 biases, all layers
  int64_t norm_params = 0;       // LayerNorm weights + biases (2 per block + final)
  int64_t guide_params = 0;      // dense guides of structured linears (0 unless include_guides)
  int64_t dense_ffn_params = 0;  // the FFN weight matrices the dense model would have
  int64_t structured_layers = 0; // blocks whose FFN is structured
};
ModelCounts CountParameters(const ModelConfig& model, bool include_guides = false);

// Forward FLOPs for `tokens` tokens in sequences of length `seq_len` (no guides).
double ForwardFlops(const ModelConfig& model, int64_t seq_len, int64_t tokens);
// The same with every structured linear's dense guide evaluated as well.
double ForwardFlopsWithGuides(const ModelConfig& model, int64_t seq_len, int64_t tokens);
// 3 x ForwardFlops.
double TrainingFlops(const ModelConfig& model, int64_t seq_len, int64_t tokens);

// A whole run as the paper's tables report it.
struct RunFlops {
  int64_t params = 0;            // CountParameters(model, false).params
  int64_t ffn_params = 0;        // FFN weight matrices, no guides
  int64_t guide_params = 0;      // 0 unless self-guided training is enabled
  int64_t tokens_per_step = 0;   // global_batch_size * seq_len
  int64_t tokens = 0;            // base (unique) tokens = max_steps * tokens_per_step
  int64_t tokens_processed = 0;  // total_steps * tokens_per_step
  int64_t total_steps = 0;       // incl. the fixedflop repeat
  int64_t guided_steps = 0;      // 0 without self-guided training
  double forward_flops_per_step = 0;        // structured model, no guide
  double guide_forward_flops_per_step = 0;  // G: the guides' forward cost per step
  double train_flops = 0;                   // the whole run, SGT-corrected
  std::string train_flops_exact;            // the same as an exact decimal integer
  double train_flops_per_token = 0;         // 3 x forward per token of the model, no guide
};
RunFlops ComputeRunFlops(const RunConfig& config);

// Expected training FLOPs after the first `steps_done` optimizer steps of the run (guided steps
// weighted as in ComputeRunFlops); equals RunFlops::train_flops at steps_done = total_steps.
double CumulativeTrainingFlops(const RunConfig& config, int64_t steps_done);

// Measures this machine's fp32 matmul rate (FLOP/s) with a short probe (~0.3 s), the MFU
// denominator on CPU.
double MeasureCpuMatmulPeak(int num_threads);

// Dense bf16 tensor-core peak (FLOP/s) of a GPU from its CUDA device name ("NVIDIA A100-SXM4-80GB",
// "NVIDIA H100 80GB HBM3", ...): A100 312e12, H100 SXM 989e12 (PCIe 756e12), H200 989e12,
// L40S 362e12, A10 125e12, V100 125e12 (fp16), RTX 4090 165e12. 0 for an unknown name.
double GpuPeakFlops(const std::string& device_name);

}  // namespace loom

#endif  // LOOM_CORE_FLOPS_H_
