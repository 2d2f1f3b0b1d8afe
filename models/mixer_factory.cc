#include "models/mixer_factory.h"

#include <c10/util/Exception.h>

namespace loom::models {
namespace {

std::optional<double> LrOrGlobal(double lr) {
  return lr > 0 ? std::optional<double>(lr) : std::nullopt;
}

}  // namespace

S4Options S4OptionsFromConfig(const ModelConfig& config, at::ScalarType dtype) {
  const MixerConfig& m = config.mixer();
  const S4Config& c = m.s4();
  S4Options o;
  SsmKernelOptions& k = o.kernel;
  k.d_model = config.d_model();
  k.d_state = c.d_state();
  k.channels = c.channels();
  k.bidirectional = c.bidirectional() || config.bidirectional();
  k.n_ssm = c.n_ssm();
  k.mode = m.type() == "s4" ? "nplr" : "diag";
  k.init = c.init().empty() ? (m.type() == "s4" ? "legs" : "diag-inv") : c.init();
  k.rank = c.rank();
  k.disc = c.disc();
  k.dt_min = c.dt_min();
  k.dt_max = c.dt_max();
  k.dt_transform = c.dt_transform();
  k.l_max = c.l_max();
  k.lr_A = k.lr_B = LrOrGlobal(c.lr());
  k.lr_dt = c.has_dt_lr() ? LrOrGlobal(c.dt_lr()) : k.lr_A;
  k.lr_C = LrOrGlobal(c.c_lr());
  k.wd_dt = k.wd_A = k.wd_B = c.weight_decay();
  k.dtype = dtype;
  o.final_act = c.final_act();
  return o;
}

SgConvOptions SgConvOptionsFromConfig(const ModelConfig& config, at::ScalarType dtype) {
  const SgConvConfig& c = config.mixer().sgconv();
  SgConvOptions o;
  o.d_model = config.d_model();
  o.l_max = c.l_max();
  o.channels = c.channels();
  o.bidirectional = c.bidirectional() || config.bidirectional();
  o.kernel_dim = c.kernel_dim();
  o.n_scales = c.n_scales();
  o.init_scale = c.init_scale();
  o.decay_min = c.decay_min();
  o.decay_max = c.decay_max();
  o.mode = c.mode();
  o.postact = c.postact();
  o.kernel_lr = LrOrGlobal(c.lr());
  o.dtype = dtype;
  return o;
}

std::shared_ptr<Mixer> MakeMixer(const ModelConfig& config, at::ScalarType dtype) {
  const MixerConfig& m = config.mixer();
  if (m.type() == "attention") {
    const int64_t attn_dim = m.attn_dim() > 0 ? m.attn_dim() : config.d_model();
    const int64_t kv = m.num_kv_heads() > 0 ? m.num_kv_heads() : m.num_heads();
    return std::make_shared<CausalSelfAttention>(config.d_model(), attn_dim, m.num_heads(), kv,
                                                 m.rope_base(), config.init_std(), dtype,
                                                 /*causal=*/!config.bidirectional());
  }
  if (m.type() == "s4" || m.type() == "s4d") {
    return std::make_shared<S4Block>(S4OptionsFromConfig(config, dtype));
  }
  if (m.type() == "sgconv") return std::make_shared<SgConv>(SgConvOptionsFromConfig(config, dtype));
  TORCH_CHECK(false, "model.mixer.type \"", m.type(), "\" is not implemented");
}

}  // namespace loom::models
