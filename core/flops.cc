#include "core/flops.h"

#include <ATen/Functions.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>

namespace loom {

double ForwardFlops(const ModelConfig& m, int64_t seq_len, int64_t tokens) {
  const double t = static_cast<double>(tokens);
  const double d = m.d_model();
  const double a = m.d_model();  // attention width = d_model (attn_dim arrives with GQA)
  const double nq = m.mixer().num_heads();
  const double nkv = m.mixer().num_kv_heads() > 0 ? m.mixer().num_kv_heads() : nq;
  const double f = m.ffn().hidden_dim() > 0 ? m.ffn().hidden_dim() : 4.0 * d;
  const double layers = m.num_layers();
  const double attn = 2 * t * a * d + 2 * t * (a / nq) * nkv * d + 2 * t * seq_len * a;
  const double ffn_params_per_layer = 2 * d * f;  // dense FFN weight matrices
  const double head = 2 * t * static_cast<double>(m.vocab_size()) * d;
  return 2 * layers * attn + 2 * t * layers * ffn_params_per_layer + head;
}

double TrainingFlops(const ModelConfig& m, int64_t seq_len, int64_t tokens) {
  return 3 * ForwardFlops(m, seq_len, tokens);
}

double MeasureCpuMatmulPeak(int num_threads) {
  const int saved = at::get_num_threads();
  if (num_threads > 0) at::set_num_threads(num_threads);
  const int64_t n = 1024;
  at::Tensor a = at::randn({n, n});
  at::Tensor b = at::randn({n, n});
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

}  // namespace loom
