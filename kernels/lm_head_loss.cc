#include "kernels/lm_head_loss.h"

#include "kernels/lm_head_chunking.h"

#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <ATen/TensorOperators.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace loom::kernels {
namespace {

#define LOOM_VECTOR_CLONES \
  __attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))

constexpr int kLanes = 16;

// GCC vector extensions: explicit 16-wide SIMD that each target_clones variant lowers to its own
// registers (one zmm, two ymm or four xmm), so the arithmetic and the reduction order are the
// same on every machine. (The scalar formulation stayed scalar: GCC would not vectorise the
// float -> int -> bits step.)
typedef float V16f __attribute__((vector_size(64)));
typedef int32_t V16i __attribute__((vector_size(64)));
static_assert(sizeof(V16f) == kLanes * sizeof(float));

// exp for the shifted logits (x - max <= 0): Cephes' expf (range reduction by ln 2 in two parts,
// degree-5 polynomial; within 2 ulp of expf) with the rounding to an integer and 2^n done by the
// 1.5 * 2^23 trick, all branch-free. Arguments below -87 give exp(-87) ~ 1.6e-38 instead of a
// denormal or 0, which changes a 50k-term sum by less than 1e-33 relative.
__attribute__((always_inline)) inline V16f ExpNonPositive(V16f x) {
  const V16f lo = V16f{} - 87.0f;
  x = x < lo ? lo : x;
  const V16f magic = V16f{} + 12582912.0f;  // adding 1.5 * 2^23 rounds to an integer
  const V16f shifted = x * 1.44269504088896341f + magic;
  const V16f n = shifted - magic;
  const V16f r = x - n * 0.693359375f + n * 2.12194440e-4f;
  V16f p = V16f{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const V16f y = p * r * r + r + 1.0f;
  const V16i e = ((V16i)shifted - (V16i)magic + 127) << 23;  // the bits of 2^n
  return y * (V16f)e;
}

__attribute__((always_inline)) inline V16f Load(const float* x) {
  V16f v;
  std::memcpy(&v, x, sizeof(v));
  return v;
}

// Lane-wise max: a fixed reduction order (deterministic).
LOOM_VECTOR_CLONES float RowMax(const float* x, int64_t n) {
  V16f lanes = V16f{} - std::numeric_limits<float>::infinity();
  int64_t v = 0;
  for (; v + kLanes <= n; v += kLanes) {
    const V16f a = Load(x + v);
    lanes = a > lanes ? a : lanes;
  }
  float m = -std::numeric_limits<float>::infinity();
  for (int l = 0; l < kLanes; ++l) m = lanes[l] > m ? lanes[l] : m;
  for (; v < n; ++v) m = x[v] > m ? x[v] : m;
  return m;
}

// x <- exp(x - m) in place over [0, n) (n <= 1024); returns the sum, lane-wise in float then the
// lanes in double. The tail (n % 16) goes through the same vector formula.
LOOM_VECTOR_CLONES double ExpShiftBlock(float* x, float m, int64_t n) {
  V16f lanes = {};
  int64_t v = 0;
  for (; v + kLanes <= n; v += kLanes) {
    const V16f e = ExpNonPositive(Load(x + v) - m);
    std::memcpy(x + v, &e, sizeof(e));
    lanes += e;
  }
  double sum = 0;
  for (int l = 0; l < kLanes; ++l) sum += lanes[l];
  if (v < n) {
    V16f tail = {};
    std::memcpy(&tail, x + v, (n - v) * sizeof(float));
    const V16f e = ExpNonPositive(tail - m);
    std::memcpy(x + v, &e, (n - v) * sizeof(float));
    for (int64_t l = 0; l < n - v; ++l) sum += e[l];
  }
  return sum;
}

// x <- exp(x - m) in place; returns sum(exp(x - m)). Float lanes over blocks of 1024 elements,
// blocks summed in double: about float32 rounding on the total even for a 50k vocabulary.
double ExpShiftSum(float* x, float m, int64_t n) {
  constexpr int64_t kBlock = 1024;
  double total = 0;
  for (int64_t v = 0; v < n; v += kBlock) total += ExpShiftBlock(x + v, m, std::min(kBlock, n - v));
  return total;
}

LOOM_VECTOR_CLONES void ScaleRow(float* x, float s, int64_t n) {
  for (int64_t v = 0; v < n; ++v) x[v] *= s;
}

struct Result {
  at::Tensor loss;  // scalar
  at::Tensor dh;    // (rows, d) or undefined
  at::Tensor dw;    // (vocab, d) or undefined
};

int64_t ChunkRows(const LmHeadLossOptions& options, int64_t rows, int64_t vocab) {
  return LmHeadChunkRows(rows, vocab, options.chunk_rows);
}

// The chunk's d(loss)/dh and d(loss)/dW from its probabilities-minus-one-hot `p` (c, V).
void AccumulateChunkGrads(const at::Tensor& p, const at::Tensor& h, const at::Tensor& w,
                          int64_t r0, bool first, Result& out) {
  const int64_t c = p.size(0);
  if (out.dh.defined()) {
    at::Tensor dh = out.dh.narrow(0, r0, c);
    at::mm_out(dh, p, w);
  }
  if (out.dw.defined()) {
    const at::Tensor hc = h.narrow(0, r0, c);
    if (first) {
      at::mm_out(out.dw, p.t(), hc);
    } else {
      out.dw.addmm_(p.t(), hc);
    }
  }
}

// float32 on CPU: per chunk one GEMM into a reused buffer, then per row max / exp-sum / scale.
Result ComputeFloatCpu(const at::Tensor& h, const at::Tensor& w, const at::Tensor& t,
                       const LmHeadLossOptions& options, int64_t n_valid, bool need_dh,
                       bool need_dw) {
  const int64_t rows = h.size(0), vocab = w.size(0);
  const bool grad = need_dh || need_dw;
  Result out;
  if (need_dh) out.dh = at::empty_like(h);
  if (need_dw) out.dw = at::empty_like(w);
  const int64_t chunk = ChunkRows(options, rows, vocab);
  at::Tensor buf = at::empty({chunk, vocab}, h.options());
  std::vector<double> row_loss(static_cast<size_t>(rows), 0.0);
  const int64_t* targets = t.const_data_ptr<int64_t>();
  const float inv = n_valid > 0 ? 1.0f / static_cast<float>(n_valid) : 0.0f;
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t c = std::min(chunk, rows - r0);
    at::Tensor logits = buf.narrow(0, 0, c);
    at::mm_out(logits, h.narrow(0, r0, c), w.t());  // the narrow is contiguous: written in place
    float* base = logits.mutable_data_ptr<float>();
    at::parallel_for(0, c, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        float* x = base + i * vocab;
        const int64_t target = targets[r0 + i];
        if (target == options.ignore_index) {
          if (grad) std::fill(x, x + vocab, 0.0f);
          continue;
        }
        const float target_logit = x[target];
        const float m = RowMax(x, vocab);
        const double sum = ExpShiftSum(x, m, vocab);
        row_loss[static_cast<size_t>(r0 + i)] =
            static_cast<double>(m) + std::log(sum) - static_cast<double>(target_logit);
        if (grad) {
          ScaleRow(x, static_cast<float>(static_cast<double>(inv) / sum), vocab);
          x[target] -= inv;
        }
      }
    });
    if (grad) AccumulateChunkGrads(logits, h, w, r0, r0 == 0, out);
  }
  double total = 0;
  for (double l : row_loss) total += l;  // row order: deterministic
  const double mean = n_valid > 0 ? total / static_cast<double>(n_valid)
                                  : std::numeric_limits<double>::quiet_NaN();
  out.loss = at::scalar_tensor(mean, h.options());
  return out;
}

// float64 (any device) and CUDA: the same chunking with ATen ops per chunk.
Result ComputeGeneric(const at::Tensor& h, const at::Tensor& w, const at::Tensor& t,
                      const LmHeadLossOptions& options, int64_t n_valid, bool need_dh,
                      bool need_dw) {
  const int64_t rows = h.size(0), vocab = w.size(0);
  Result out;
  if (need_dh) out.dh = at::empty_like(h);
  if (need_dw) out.dw = at::empty_like(w);
  const int64_t chunk = ChunkRows(options, rows, vocab);
  at::Tensor total = at::zeros({}, h.options());
  const double inv = n_valid > 0 ? 1.0 / static_cast<double>(n_valid) : 0.0;
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t c = std::min(chunk, rows - r0);
    const at::Tensor hc = h.narrow(0, r0, c);
    const at::Tensor tc = t.narrow(0, r0, c);
    const at::Tensor valid = tc != options.ignore_index;
    const at::Tensor safe = at::where(valid, tc, at::zeros_like(tc)).unsqueeze(1);
    const at::Tensor logits = at::mm(hc, w.t());
    const at::Tensor lse = at::logsumexp(logits, {1});
    const at::Tensor target_logit = logits.gather(1, safe).squeeze(1);
    total.add_(((lse - target_logit) * valid.to(h.scalar_type())).sum());
    if (need_dh || need_dw) {
      at::Tensor p = at::exp(logits - lse.unsqueeze(1));
      p.scatter_add_(1, safe, at::full({c, 1}, -1.0, h.options()));
      p.mul_((valid.to(h.scalar_type()) * inv).unsqueeze(1));
      AccumulateChunkGrads(p, h, w, r0, r0 == 0, out);
    }
  }
  out.loss = n_valid > 0 ? total / static_cast<double>(n_valid)
                         : at::full({}, std::numeric_limits<double>::quiet_NaN(), h.options());
  return out;
}

class LmHeadLossFunction : public torch::autograd::Function<LmHeadLossFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& hidden,
                            const at::Tensor& weight, const at::Tensor& targets,
                            int64_t ignore_index, int64_t chunk_rows, bool need_dh,
                            bool need_dw) {
    const LmHeadLossOptions options =
        LmHeadLossOptions().set_ignore_index(ignore_index).set_chunk_rows(chunk_rows);
    const int64_t n_valid = (targets != ignore_index).sum().item<int64_t>();
    const at::Tensor h = hidden.contiguous(), w = weight.contiguous();
    Result r = hidden.is_cpu() && hidden.scalar_type() == at::kFloat
                   ? ComputeFloatCpu(h, w, targets, options, n_valid, need_dh, need_dw)
                   : ComputeGeneric(h, w, targets, options, n_valid, need_dh, need_dw);
    ctx->saved_data["dh"] = r.dh;
    ctx->saved_data["dw"] = r.dw;
    ctx->saved_data["used"] = false;
    return r.loss;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    TORCH_CHECK(!ctx->saved_data["used"].toBool(),
                "LmHeadCrossEntropy: backward ran twice through the same forward (its saved "
                "gradients are scaled in place); recompute the loss instead of retain_graph");
    ctx->saved_data["used"] = true;
    at::Tensor dh = ctx->saved_data["dh"].isNone() ? at::Tensor()
                                                   : ctx->saved_data["dh"].toTensor();
    at::Tensor dw = ctx->saved_data["dw"].isNone() ? at::Tensor()
                                                   : ctx->saved_data["dw"].toTensor();
    ctx->saved_data["dh"] = at::Tensor();
    ctx->saved_data["dw"] = at::Tensor();
    const at::Tensor& g = grads[0];
    // The usual caller's gradient is exactly 1 (or 1/accumulation steps): skip the scaling pass
    // when it is 1 and the scalar can be read without a device sync.
    const bool unit = g.is_cpu() && g.item<double>() == 1.0;
    if (!unit) {
      if (dh.defined()) dh.mul_(g);
      if (dw.defined()) dw.mul_(g);
    }
    return {dh, dw, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool LmHeadCrossEntropySupports(at::ScalarType dtype) {
  return dtype == at::kFloat || dtype == at::kDouble;
}

at::Tensor LmHeadCrossEntropy(const at::Tensor& hidden, const at::Tensor& weight,
                              const at::Tensor& targets, const LmHeadLossOptions& options) {
  TORCH_CHECK(hidden.defined() && hidden.dim() >= 1, "LmHeadCrossEntropy: hidden must be (..., d)");
  TORCH_CHECK(weight.dim() == 2 && weight.size(1) == hidden.size(-1),
              "LmHeadCrossEntropy: weight ", weight.sizes(), " is not (vocab, ", hidden.size(-1),
              ")");
  TORCH_CHECK(LmHeadCrossEntropySupports(hidden.scalar_type()),
              "LmHeadCrossEntropy: dtype ", hidden.scalar_type(),
              " is not supported (float32, float64)");
  TORCH_CHECK(weight.scalar_type() == hidden.scalar_type(), "LmHeadCrossEntropy: weight dtype ",
              weight.scalar_type(), " differs from hidden dtype ", hidden.scalar_type());
  TORCH_CHECK(weight.device() == hidden.device() && targets.device() == hidden.device(),
              "LmHeadCrossEntropy: hidden, weight and targets must be on one device");
  TORCH_CHECK(targets.scalar_type() == at::kLong, "LmHeadCrossEntropy: targets must be int64");
  const int64_t d = hidden.size(-1);
  const int64_t rows = d > 0 ? hidden.numel() / d : 0;
  TORCH_CHECK(targets.numel() == rows, "LmHeadCrossEntropy: ", targets.numel(),
              " targets for ", rows, " rows of hidden ", hidden.sizes());
  const at::Tensor t = targets.reshape({-1}).contiguous();
  const int64_t vocab = weight.size(0);
  const at::Tensor bad = (t != options.ignore_index) & ((t < 0) | (t >= vocab));
  if (bad.any().item<bool>()) {
    const int64_t first = at::nonzero(bad)[0][0].item<int64_t>();
    TORCH_CHECK(false, "LmHeadCrossEntropy: target ", t[first].item<int64_t>(), " at row ",
                first, " is outside the vocabulary [0, ", vocab, ")");
  }
  const bool grad = at::GradMode::is_enabled();
  return LmHeadLossFunction::apply(hidden.reshape({rows, d}), weight, t, options.ignore_index,
                                   options.chunk_rows, grad && hidden.requires_grad(),
                                   grad && weight.requires_grad());
}

}  // namespace loom::kernels
