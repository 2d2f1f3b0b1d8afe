#include "core/flops.h"

#include <ATen/Functions.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

namespace loom {
namespace {

using Int128 = __int128;

// The shape facts the accounting needs, with the config's 0 = default rules applied.
struct Shape {
  int64_t layers, d, vocab, attn, nq, nkv, f, fc1_out;
};

Shape ShapeOf(const ModelConfig& m) {
  Shape s;
  s.layers = m.num_layers();
  s.d = m.d_model();
  s.vocab = m.vocab_size();
  s.attn = m.mixer().attn_dim() > 0 ? m.mixer().attn_dim() : s.d;
  s.nq = std::max<int64_t>(1, m.mixer().num_heads());
  s.nkv = m.mixer().num_kv_heads() > 0 ? m.mixer().num_kv_heads() : s.nq;
  s.f = m.ffn().hidden_dim() > 0 ? m.ffn().hidden_dim() : 4 * s.d;
  s.fc1_out = m.ffn().activation() == "swiglu" ? 2 * s.f : s.f;
  return s;
}

// Weight entries of one FFN linear in -> out of the given type (spec §2).
int64_t LinearWeights(const FfnConfig& ffn, const std::string& type, int64_t in, int64_t out) {
  const int64_t r = ffn.rank();
  const int64_t b = std::max(1, ffn.nblocks());
  if (type == "lowrank") return r * (in + out);
  if (type == "blockdense") return r * in / b + out * r;
  if (type == "blockshuffle") return std::min(in, out) * (in + out) / b;
  return in * out;  // dense
}

bool IsConvolutionalMixer(const ModelConfig& m) {
  const std::string& t = m.mixer().type();
  return t == "s4" || t == "s4d" || t == "sgconv";
}

// Width of the S4 / SGConv output projection: C*H -> 2H (GLU) or H.
std::pair<int64_t, int64_t> ConvMixerProjection(const ModelConfig& m) {
  const int64_t d = m.d_model();
  if (m.mixer().type() == "sgconv") {
    const SgConvConfig& g = m.mixer().sgconv();
    return {g.channels() * d, g.postact() == "glu" ? 2 * d : d};
  }
  const S4Config& s4 = m.mixer().s4();
  return {s4.channels() * d, s4.final_act() == "glu" ? 2 * d : d};
}

// Trainable parameters of one S4 / S4D / SGConv mixer (models/s4.h, models/sgconv.h).
int64_t ConvMixerParams(const ModelConfig& m) {
  const int64_t d = m.d_model();
  const auto [in, out] = ConvMixerProjection(m);
  const int64_t projection = in * out + out;
  if (m.mixer().type() == "sgconv") {
    const SgConvConfig& g = m.mixer().sgconv();
    const int64_t ck = g.channels() * (g.bidirectional() ? 2 : 1);
    int64_t scales = g.n_scales();
    if (scales == 0) {
      const double l_max = g.l_max();
      int64_t up = 0;  // ceil(log2(l_max / kernel_dim)), exactly
      while ((g.kernel_dim() << up) < l_max) ++up;
      scales = 1 + up - g.init_scale();
    }
    const bool decay = g.mode().find("learnable") != std::string::npos &&
                       g.mode().find("fixed") == std::string::npos;
    return g.channels() * d + scales * ck * d * g.kernel_dim() + (decay ? d : 0) + projection;
  }
  const S4Config& s4 = m.mixer().s4();
  const int64_t n = s4.d_state() / 2;
  const int64_t ssm = s4.n_ssm() > 0 ? s4.n_ssm() : d;
  const int64_t ck = s4.channels() * (s4.bidirectional() ? 2 : 1);
  int64_t p = s4.channels() * d        // D
              + d                      // inv_dt (tied)
              + 2 * ssm * n            // A_real, A_imag
              + 2 * ssm * n            // B (complex)
              + 2 * ck * d * n;        // C (complex)
  if (m.mixer().type() == "s4") p += 2 * s4.rank() * ssm * n;  // P (complex)
  return p + projection;
}

bool IsStructuredBlock(const FfnConfig& ffn, int64_t layer) {
  if (ffn.type() == "dense" || ffn.type().empty()) return false;
  return !(layer == 0 && ffn.first_layer_dense());
}

// Exact forward FLOPs for `tokens` tokens (spec §7), optionally with every guide evaluated.
Int128 ForwardExact(const ModelConfig& m, int64_t seq_len, int64_t tokens, bool guides) {
  const Shape s = ShapeOf(m);
  const ModelCounts c = CountParameters(m, guides);
  const Int128 t = tokens;
  const Int128 head_dim = s.attn / s.nq;
  Int128 attn_per_layer = 2 * t * s.attn * s.d             // Q and O projections
                          + 2 * t * head_dim * s.nkv * s.d  // K and V projections
                          + 2 * t * seq_len * s.attn;       // QK^T and A V, full s x s
  if (IsConvolutionalMixer(m)) {
    // Matmul FLOPs only (the convention): the output projection. The FFT convolution and the
    // kernel construction are not matmuls and are not counted.
    const auto [in, out] = ConvMixerProjection(m);
    attn_per_layer = t * in * out;  // multiply-adds; doubled below
  }
  return 2 * s.layers * attn_per_layer + 2 * t * (c.ffn_params + c.guide_params) +
         2 * t * s.vocab * s.d;
}

std::string Int128ToString(Int128 v) {
  if (v == 0) return "0";
  const bool negative = v < 0;
  if (negative) v = -v;
  std::string out;
  while (v > 0) {
    out.push_back(static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  }
  if (negative) out.push_back('-');
  return std::string(out.rbegin(), out.rend());
}

struct RunPlan {
  int64_t tokens_per_step, total_steps, guided_steps;
  bool guides, reduce_flop;
};

RunPlan PlanOf(const RunConfig& c) {
  RunPlan p;
  p.tokens_per_step = static_cast<int64_t>(c.train().global_batch_size()) * c.train().seq_len();
  const int64_t t = c.train().max_steps();
  const SelfGuidedConfig& sg = c.schedule().self_guided();
  p.guides = sg.enabled();
  p.reduce_flop = sg.reduce_flop();
  // int(T * rho), as the reference (truncation toward zero).
  p.guided_steps = p.guides ? static_cast<int64_t>(static_cast<double>(t) * sg.max_step_ratio()) : 0;
  p.total_steps = (p.guides && sg.mode() == "fixedflop") ? t + p.guided_steps : t;
  return p;
}

// Exact training FLOPs of the first `steps_done` steps (guided steps come first).
Int128 TrainingExact(const RunConfig& c, const RunPlan& p, int64_t steps_done) {
  const Int128 f_struct = ForwardExact(c.model(), c.train().seq_len(), p.tokens_per_step, false);
  Int128 fwd = f_struct * steps_done;
  if (p.guides) {
    const ModelCounts g = CountParameters(c.model(), /*include_guides=*/true);
    // G = 2 * guide entries * tokens per step; reduce_flop runs the guide half the time.
    const Int128 guide = 2 * static_cast<Int128>(g.guide_params) * p.tokens_per_step;
    const Int128 guided = std::min(steps_done, p.guided_steps);
    fwd += p.reduce_flop ? guide * guided / 2 : guide * guided;
  }
  return 3 * fwd;
}

}  // namespace

ModelCounts CountParameters(const ModelConfig& m, bool include_guides) {
  const Shape s = ShapeOf(m);
  const FfnConfig& ffn = m.ffn();
  ModelCounts c;
  c.embedding_params = s.vocab * s.d;
  const int64_t head_dim = s.attn / s.nq;
  const int64_t qkv_out = (s.nq + 2 * s.nkv) * head_dim;
  const int64_t attn_per_layer = s.d * qkv_out + qkv_out + s.attn * s.d + s.d;
  c.attention_params = s.layers * (IsConvolutionalMixer(m) ? ConvMixerParams(m) : attn_per_layer);
  c.norm_params = (2 * s.layers + 1) * 2 * s.d;
  c.ffn_bias_params = s.layers * (s.fc1_out + s.d);
  const int64_t dense_layer = s.d * s.fc1_out + s.f * s.d;
  c.dense_ffn_params = s.layers * dense_layer;
  if (ffn.type() == "none") {  // mixer-only blocks: one LayerNorm per block, no FFN
    c.norm_params = (s.layers + 1) * 2 * s.d;
    c.ffn_bias_params = 0;
    c.dense_ffn_params = 0;
  }
  for (int64_t layer = 0; layer < s.layers && ffn.type() != "none"; ++layer) {
    if (!IsStructuredBlock(ffn, layer)) {
      c.ffn_params += dense_layer;
      continue;
    }
    ++c.structured_layers;
    c.ffn_params += LinearWeights(ffn, ffn.type(), s.d, s.fc1_out) +
                    LinearWeights(ffn, ffn.type(), s.f, s.d);
    if (include_guides) c.guide_params += dense_layer;
  }
  c.params = c.embedding_params + c.attention_params + c.norm_params + c.ffn_bias_params +
             c.ffn_params + c.guide_params;
  return c;
}

double ForwardFlops(const ModelConfig& m, int64_t seq_len, int64_t tokens) {
  return static_cast<double>(ForwardExact(m, seq_len, tokens, false));
}

double ForwardFlopsWithGuides(const ModelConfig& m, int64_t seq_len, int64_t tokens) {
  return static_cast<double>(ForwardExact(m, seq_len, tokens, true));
}

double TrainingFlops(const ModelConfig& m, int64_t seq_len, int64_t tokens) {
  return 3 * ForwardFlops(m, seq_len, tokens);
}

RunFlops ComputeRunFlops(const RunConfig& c) {
  const RunPlan p = PlanOf(c);
  const ModelCounts counts = CountParameters(c.model(), false);
  RunFlops r;
  r.params = counts.params;
  r.ffn_params = counts.ffn_params;
  r.guide_params = p.guides ? CountParameters(c.model(), true).guide_params : 0;
  r.tokens_per_step = p.tokens_per_step;
  r.tokens = c.train().max_steps() * p.tokens_per_step;
  r.tokens_processed = p.total_steps * p.tokens_per_step;
  r.total_steps = p.total_steps;
  r.guided_steps = p.guided_steps;
  r.forward_flops_per_step = ForwardFlops(c.model(), c.train().seq_len(), p.tokens_per_step);
  r.guide_forward_flops_per_step =
      2.0 * static_cast<double>(r.guide_params) * static_cast<double>(p.tokens_per_step);
  const Int128 total = TrainingExact(c, p, p.total_steps);
  r.train_flops = static_cast<double>(total);
  r.train_flops_exact = Int128ToString(total);
  r.train_flops_per_token =
      p.tokens_per_step > 0 ? 3 * r.forward_flops_per_step / static_cast<double>(p.tokens_per_step) : 0;
  return r;
}

double CumulativeTrainingFlops(const RunConfig& c, int64_t steps_done) {
  const RunPlan p = PlanOf(c);
  return static_cast<double>(TrainingExact(c, p, std::max<int64_t>(0, steps_done)));
}

double MeasureCpuMatmulPeak(int num_threads) {
  const int saved = at::get_num_threads();
  if (num_threads > 0) at::set_num_threads(num_threads);
  const int64_t n = 1024;
  // A private generator: drawing from the default one would shift the training RNG stream
  // (dropout masks) of a resumed run, which measures after restoring it.
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(/*seed_in=*/1);
  at::Tensor a = at::randn({n, n}, gen);
  at::Tensor b = at::randn({n, n}, gen);
  at::Tensor c = at::mm(a, b);  // warm up
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto start = std::chrono::steady_clock::now();
    const int iters = 4;
    for (int i = 0; i < iters; ++i) at::mm_out(c, a, b);
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, 2.0 * n * n * n * iters / s);
  }
  at::set_num_threads(saved);
  return best;
}

double GpuPeakFlops(const std::string& name) {
  auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  if (has("H100")) return has("PCIe") ? 756e12 : 989e12;
  if (has("H200")) return 989e12;
  if (has("A100")) return 312e12;
  if (has("L40S")) return 362e12;
  if (has("A10")) return 125e12;
  if (has("V100")) return 125e12;
  if (has("4090")) return 165e12;
  return 0;
}

}  // namespace loom
