#include "kernels/fused_adamw.h"

#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <ATen/TensorOperators.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>
#include <cstdint>
#include <memory>

namespace loom::kernels {
namespace {

// Per-step scalars, computed in double as torch does and used in T.
template <typename T>
struct Coefficients {
  T decay;        // 1 - lr * weight_decay
  T beta1, one_minus_beta1, beta2, one_minus_beta2;
  T inv_sqrt_bc2;  // 1 / sqrt(1 - beta2^step)
  T eps;
  T neg_step_size;  // -lr / (1 - beta1^step)
};

// One pass: p <- p * decay; m <- beta1 m + (1 - beta1) g; v <- beta2 v + (1 - beta2) g^2;
// p <- p - step_size * m / (sqrt(v) / sqrt(bc2) + eps). The operation order follows torch's.
// Plain overloads, not a template: GCC ignores target_clones on template instances. The library
// builds with -fno-math-errno, without which a loop calling sqrt does not vectorise.
#define LOOM_ADAMW_UPDATE_BODY                                                   \
  for (int64_t i = 0; i < n; ++i) {                                              \
    const auto gi = g[i];                                                        \
    const auto pi = p[i] * c.decay;                                              \
    const auto mi = m[i] * c.beta1 + c.one_minus_beta1 * gi;                     \
    const auto vi = v[i] * c.beta2 + c.one_minus_beta2 * gi * gi;                \
    m[i] = mi;                                                                   \
    v[i] = vi;                                                                   \
    p[i] = pi + c.neg_step_size * (mi / (std::sqrt(vi) * c.inv_sqrt_bc2 + c.eps)); \
  }

__attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))
void UpdateRange(float* __restrict p, const float* __restrict g, float* __restrict m,
                    float* __restrict v, int64_t n, Coefficients<float> c) {
  LOOM_ADAMW_UPDATE_BODY
}

__attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))
void UpdateRange(double* __restrict p, const double* __restrict g, double* __restrict m,
                    double* __restrict v, int64_t n, Coefficients<double> c) {
  LOOM_ADAMW_UPDATE_BODY
}

#undef LOOM_ADAMW_UPDATE_BODY

template <typename T>
void FusedUpdate(const at::Tensor& p, const at::Tensor& g, const at::Tensor& m,
                 const at::Tensor& v, const Coefficients<T>& c) {
  T* pp = p.mutable_data_ptr<T>();
  const T* gp = g.const_data_ptr<T>();
  T* mp = m.mutable_data_ptr<T>();
  T* vp = v.mutable_data_ptr<T>();
  at::parallel_for(0, p.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
    UpdateRange(pp + begin, gp + begin, mp + begin, vp + begin, end - begin, c);
  });
}

bool CanFuse(const at::Tensor& p, const at::Tensor& g, const at::Tensor& m, const at::Tensor& v) {
  const auto dtype = p.scalar_type();
  if (!p.is_cpu() || (dtype != at::kFloat && dtype != at::kDouble)) return false;
  for (const at::Tensor* t : {&g, &m, &v}) {
    if (!t->is_cpu() || t->scalar_type() != dtype || !t->is_contiguous() ||
        t->sizes() != p.sizes()) {
      return false;
    }
  }
  return p.is_contiguous();
}

}  // namespace

torch::Tensor FusedAdamW::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups()) {
    auto& options = static_cast<torch::optim::AdamWOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const at::Tensor& grad = p.grad();
      TORCH_CHECK(!grad.is_sparse(), "FusedAdamW does not support sparse gradients");
      auto& states = state();
      auto it = states.find(p.unsafeGetTensorImpl());
      if (it == states.end()) {
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->step(0);
        fresh->exp_avg(at::zeros_like(p, at::MemoryFormat::Preserve));
        fresh->exp_avg_sq(at::zeros_like(p, at::MemoryFormat::Preserve));
        if (options.amsgrad()) fresh->max_exp_avg_sq(at::zeros_like(p, at::MemoryFormat::Preserve));
        it = states.emplace(p.unsafeGetTensorImpl(), std::move(fresh)).first;
      }
      auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
      s.step(s.step() + 1);
      const double lr = options.lr(), wd = options.weight_decay(), eps = options.eps();
      const auto [beta1, beta2] = options.betas();
      const double bc1 = 1 - std::pow(beta1, static_cast<double>(s.step()));
      const double bc2 = 1 - std::pow(beta2, static_cast<double>(s.step()));
      const double step_size = lr / bc1;
      at::Tensor& m = s.exp_avg();
      at::Tensor& v = s.exp_avg_sq();
      if (!options.amsgrad() && CanFuse(p, grad, m, v)) {
        const double decay = wd != 0 ? 1 - lr * wd : 1.0;
        if (p.scalar_type() == at::kFloat) {
          FusedUpdate<float>(p, grad, m, v,
                             {static_cast<float>(decay), static_cast<float>(beta1),
                              static_cast<float>(1 - beta1), static_cast<float>(beta2),
                              static_cast<float>(1 - beta2),
                              static_cast<float>(1 / std::sqrt(bc2)), static_cast<float>(eps),
                              static_cast<float>(-step_size)});
        } else {
          FusedUpdate<double>(p, grad, m, v,
                              {decay, beta1, 1 - beta1, beta2, 1 - beta2, 1 / std::sqrt(bc2), eps,
                               -step_size});
        }
        continue;
      }
      // torch::optim::AdamW's algorithm as ATen ops (CUDA, other dtypes, amsgrad).
      if (wd != 0) p.mul_(1 - lr * wd);
      m.mul_(beta1).add_(grad, 1 - beta1);
      v.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
      at::Tensor denom;
      if (options.amsgrad()) {
        at::Tensor& vmax = s.max_exp_avg_sq();
        at::maximum_out(vmax, vmax, v);
        denom = (vmax.sqrt() / std::sqrt(bc2)).add_(eps);
      } else {
        denom = (v.sqrt() / std::sqrt(bc2)).add_(eps);
      }
      p.addcdiv_(m, denom, -step_size);
    }
  }
  return loss;
}

}  // namespace loom::kernels
