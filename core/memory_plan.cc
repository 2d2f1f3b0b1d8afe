#include "core/memory_plan.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/config.h"
#include "core/flops.h"
#include "core/status_macros.h"
#include "kernels/lm_head_chunking.h"

namespace loom {
namespace {

std::string Human(int64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024) return absl::StrFormat("%.2f GiB", b / (1024.0 * 1024 * 1024));
  return absl::StrFormat("%.1f MiB", b / (1024.0 * 1024));
}

// Elements kept for the backward pass by one block's FFN (fc1 + activation + fc2).
int64_t FfnActivationWidth(const ModelConfig& m, bool structured) {
  const FfnConfig& f = m.ffn();
  const int64_t d = m.d_model();
  const int64_t hidden = f.hidden_dim() > 0 ? f.hidden_dim() : 4 * d;
  int64_t w = f.activation() == "swiglu" ? 4 * hidden : 2 * hidden;
  if (structured) {
    if (f.type() == "lowrank" || f.type() == "blockdense") w += 2 * f.rank();
    if (f.type() == "blockshuffle") w += 2 * std::min(d, hidden);
  }
  return w;
}

}  // namespace

absl::StatusOr<MemoryPlan> PlanMemory(const RunConfig& config_in, int world_size,
                                      int64_t runtime_bytes) {
  RunConfig c = config_in;
  LOOM_RETURN_IF_ERROR(ResolveDefaults(&c));
  LOOM_RETURN_IF_ERROR(ValidateRunConfig(c));
  if (world_size < 1) return absl::InvalidArgumentError("world size must be >= 1");
  const ModelConfig& m = c.model();
  MemoryPlan p;
  p.world_size = world_size;
  p.zero_stage = c.optimizer().zero_stage();
  p.dtype = m.dtype();
  // Bytes of a compute element (parameters, activations) and of a master element (master
  // weights, gradients, AdamW state): mixed precision keeps bf16 compute copies of fp32 masters.
  const bool mixed = m.dtype() == "bfloat16";
  const int64_t s = m.dtype() == "float64" ? 8 : mixed ? 2 : 4;
  const int64_t ms = mixed ? 4 : s;
  const bool sgt = c.schedule().self_guided().enabled();
  const ModelCounts counts = CountParameters(m, /*include_guides=*/sgt);
  p.parameters = counts.params;
  p.guide_parameters = counts.guide_params;
  p.param_bytes = counts.params * s + (mixed ? counts.params * ms : 0);
  p.grad_bytes = counts.params * ms;
  if (p.zero_stage == 1) p.grad_bytes += counts.params * ms / world_size;
  p.optimizer_bytes = 2 * counts.params * ms / (p.zero_stage == 1 ? world_size : 1);

  const int64_t n = int64_t{c.train().micro_batch_size()} * c.train().seq_len();
  const int64_t d = m.d_model();
  const int64_t a = m.mixer().attn_dim() > 0 ? m.mixer().attn_dim() : d;
  const int64_t heads = m.mixer().num_heads();
  const int64_t kv_heads = m.mixer().num_kv_heads() > 0 ? m.mixer().num_kv_heads() : heads;
  const int64_t k = a / heads * kv_heads;
  // MHA: qkv (kept alive by the saved v view), rotated q and k, the output (the flash kernel
  // writes it so that merging the heads is a view). GQA: rotated q, repeated k and v, output.
  const int64_t attn = kv_heads == heads ? 3 * a + 3 * k : 4 * a;
  int64_t per_token = 0;
  for (int layer = 0; layer < m.num_layers(); ++layer) {
    const bool structured =
        m.ffn().type() != "dense" && !(layer == 0 && m.ffn().first_layer_dense());
    per_token += 4 * d + attn + heads /* log-sum-exp */ + FfnActivationWidth(m, structured);
  }
  p.activation_bytes = n * per_token * s + n * 2 * d * s;
  if (mixed) {
    // bf16: the unfused head. The loss runs in float32: the logits are widened, and the
    // log-softmax output and its gradients are float32.
    p.activation_bytes += n * 3 * m.vocab_size() * ms;
  } else {
    // The fused head + loss (kernels/lm_head_loss.h): one chunk's logits, and the gradients for
    // the hidden states and the (tied) embedding it computes in the forward.
    p.activation_bytes += kernels::LmHeadChunkRows(n, m.vocab_size(), 0) * m.vocab_size() * s +
                          n * d * s + m.vocab_size() * d * s;
  }
  if (mixed) {
    // The CPU bf16 bias+GELU backward widens gradient, input and result to float32 for one
    // layer at a time (kernels/bias_gelu.cc), on top of everything saved.
    const int64_t hidden = m.ffn().hidden_dim() > 0 ? m.ffn().hidden_dim() : 4 * d;
    p.activation_bytes += 3 * n * hidden * 4;
  }
  p.runtime_bytes = runtime_bytes;
  return p;
}

std::string MemoryPlan::ToTable() const {
  std::string out = absl::StrFormat(
      "memory plan per rank: %d rank%s, ZeRO-%d, %s, %s parameters%s\n", world_size,
      world_size == 1 ? "" : "s", zero_stage, dtype, absl::StrCat(parameters),
      guide_parameters > 0 ? absl::StrCat(" (", guide_parameters, " in self-guided guides)") : "");
  auto row = [&](const char* what, int64_t bytes, const char* note) {
    absl::StrAppendFormat(&out, "  %-24s %12s  %s\n", what, Human(bytes), note);
  };
  row("parameters", param_bytes, dtype == "bfloat16" ? "bf16 compute copies + fp32 master" : "");
  row("gradients", grad_bytes, zero_stage == 1 ? "flat buffer + reduce-scatter shard" : "flat buffer");
  row("optimizer (AdamW m, v)", optimizer_bytes, zero_stage == 1 ? "this rank's 1/N shard" : "");
  row("activations", activation_bytes, "one micro-batch, saved for backward + head temporaries");
  row("tensors, peak", total_tensor_bytes(),
      absl::StrCat("(", total_tensor_bytes(), " bytes) what device memory must hold").c_str());
  row("+ runtime", runtime_bytes, "this process's libraries and threads, measured now");
  out += "  (a CPU process's resident size adds the allocator's retained free memory on top)\n";
  return out;
}

int64_t CurrentRssBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

int64_t PeakRssBytes() {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;  // KiB on Linux
}

}  // namespace loom
