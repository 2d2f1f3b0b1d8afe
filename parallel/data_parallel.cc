#include "parallel/data_parallel.h"

#include <ATen/Functions.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "kernels/fused_adamw.h"

namespace loom::parallel {

struct DataParallel::Bucket {
  Group* group = nullptr;
  int64_t offset = 0;  // in the group's flat buffers
  int64_t numel = 0;   // padded to a multiple of the world size
  int expected = 0;    // parameters in the bucket
  int ready = 0;
  at::Tensor grad;        // view of the flat gradient buffer
  at::Tensor param;       // view of the flat parameter buffer
  at::Tensor shard_grad;  // ZeRO-1: this rank's reduced slice (numel / world)
  at::Tensor shard_param; // ZeRO-1: view of this rank's slice of `param`
  std::unique_ptr<Work> work;
};

struct DataParallel::Group {
  std::string name;
  double lr_scale = 1.0;
  double weight_decay = 0.0;
  std::vector<at::Tensor> params;
  std::vector<at::Tensor> master_views;  // mixed precision: each param's view of flat_param
  std::vector<int64_t> offsets;          // each param's offset in the flat buffers
  std::vector<std::pair<int64_t, int64_t>> opt_ranges;  // each opt param's (offset, numel)
  at::Tensor flat_param;
  at::Tensor flat_grad;
  std::vector<std::unique_ptr<Bucket>> buckets;
  std::vector<at::Tensor> opt_params;  // what AdamW updates (with .grad set)
};

namespace {

struct ReadyHook : torch::autograd::PostAccumulateGradHook {
  ReadyHook(DataParallel* dp, DataParallel::Bucket* bucket, at::Tensor main_grad)
      : dp(dp), bucket(bucket), main_grad(std::move(main_grad)) {}
  void operator()(const torch::autograd::Variable& p) override {
    if (main_grad.defined()) {  // mixed precision: fold the bf16 gradient into float32, free it
      at::Tensor& g = const_cast<torch::autograd::Variable&>(p).mutable_grad();
      main_grad.add_(g);
      g = at::Tensor();
    }
    dp->OnGradReady(bucket);
  }
  DataParallel* dp;
  DataParallel::Bucket* bucket;
  at::Tensor main_grad;  // defined only under mixed precision
};

}  // namespace

DataParallel::DataParallel(Communicator* comm, const Options& options)
    : comm_(comm), options_(options) {}

DataParallel::~DataParallel() {
  for (auto& g : groups_) {
    for (auto& p : g->params) torch::autograd::impl::set_post_acc_grad_hooks(p, nullptr);
  }
}

absl::StatusOr<std::unique_ptr<DataParallel>> DataParallel::Create(
    Communicator* comm, std::vector<ParamGroupSpec> specs, const Options& options) {
  const bool mixed = options.compute_dtype == at::kBFloat16;
  if (options.compute_dtype != at::ScalarType::Undefined && !mixed) {
    return absl::InvalidArgumentError("compute_dtype: only bfloat16 (mixed precision) is supported");
  }
  if (options.zero_stage != 0 && options.zero_stage != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("zero_stage ", options.zero_stage, " is not supported (0 or 1)"));
  }
  const int world = comm->world_size();
  auto dp = std::unique_ptr<DataParallel>(new DataParallel(comm, options));
  at::NoGradGuard no_grad;
  for (auto& spec : specs) {
    if (spec.params.empty()) continue;
    auto g = std::make_unique<Group>();
    g->name = spec.name;
    g->params = spec.params;
    g->lr_scale = spec.lr_scale;
    g->weight_decay = spec.weight_decay.value_or(options.weight_decay);
    const at::TensorOptions topt = spec.params.front().options();
    for (const at::Tensor& p : spec.params) {
      if (mixed && p.scalar_type() != at::kFloat) {
        return absl::InvalidArgumentError(absl::StrCat(
            "mixed precision needs float32 parameters (the master weights), got ",
            c10::toString(p.scalar_type())));
      }
      if (!p.requires_grad() || p.scalar_type() != topt.dtype().toScalarType() ||
          p.device() != topt.device()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "parameter group \"", spec.name, "\": every parameter must require grad and share "
            "one dtype and device (got ", c10::toString(p.scalar_type()), " on ", p.device().str(), ")"));
      }
    }
    // Layout: reverse order, cut into buckets, each padded to a multiple of the world size.
    const int64_t elem = static_cast<int64_t>(spec.params.front().element_size());
    struct Slot { size_t param; int64_t offset; Bucket* bucket; };
    std::vector<Slot> slots;
    int64_t offset = 0;
    Bucket* cur = nullptr;
    int64_t cur_elems = 0;
    auto close = [&] {
      if (cur == nullptr) return;
      cur->numel = (cur_elems + world - 1) / world * world;
      offset = cur->offset + cur->numel;
      cur = nullptr;
      cur_elems = 0;
    };
    for (size_t i = spec.params.size(); i-- > 0;) {
      const int64_t n = spec.params[i].numel();
      if (cur != nullptr && (cur_elems + n) * elem > options.bucket_bytes) close();
      if (cur == nullptr) {
        g->buckets.push_back(std::make_unique<Bucket>());
        cur = g->buckets.back().get();
        cur->group = g.get();
        cur->offset = offset;
      }
      slots.push_back({i, cur->offset + cur_elems, cur});
      cur_elems += n;
      cur->expected += 1;
    }
    close();
    g->flat_param = at::zeros({offset}, topt.requires_grad(false));
    g->flat_grad = at::zeros({offset}, topt.requires_grad(false));
    g->master_views.resize(g->params.size());
    g->offsets.resize(g->params.size());
    for (const Slot& s : slots) {
      g->offsets[s.param] = s.offset;
      at::Tensor& p = g->params[s.param];
      at::Tensor pv = g->flat_param.narrow(0, s.offset, p.numel()).view(p.sizes());
      at::Tensor gv = g->flat_grad.narrow(0, s.offset, p.numel()).view(p.sizes());
      pv.copy_(p.detach());
      if (mixed) {
        g->master_views[s.param] = pv;
        p.set_data(pv.to(at::kBFloat16));  // the compute copy
        p.mutable_grad() = at::Tensor();
      } else {
        p.set_data(pv);
        p.mutable_grad() = gv;
      }
      torch::autograd::impl::set_post_acc_grad_hooks(
          p, std::make_unique<ReadyHook>(dp.get(), s.bucket, mixed ? gv : at::Tensor()));
    }
    for (auto& b : g->buckets) {
      b->grad = g->flat_grad.narrow(0, b->offset, b->numel);
      b->param = g->flat_param.narrow(0, b->offset, b->numel);
      if (options.zero_stage == 1) {
        const int64_t shard = b->numel / world;
        b->shard_grad = at::zeros({shard}, topt.requires_grad(false));
        b->shard_param = b->param.narrow(0, comm->rank() * shard, shard);
        at::Tensor opt = b->shard_param;
        opt.mutable_grad() = b->shard_grad;
        g->opt_params.push_back(opt);
        g->opt_ranges.push_back({b->offset + comm->rank() * shard, shard});
      }
      dp->order_.push_back(b.get());
    }
    if (options.zero_stage == 0) {
      at::Tensor opt = g->flat_param.view({-1});
      opt.mutable_grad() = g->flat_grad;
      g->opt_params.push_back(opt);
      g->opt_ranges.push_back({0, g->flat_param.numel()});
    }
    dp->groups_.push_back(std::move(g));
  }
  dp->RebuildOptimizer();
  return dp;
}

void DataParallel::RebuildOptimizer() {
  // One AdamW parameter group per DataParallel group, in the same order (Step relies on it).
  std::vector<at::Tensor> all;
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  for (auto& g : groups_) {
    all.insert(all.end(), g->opt_params.begin(), g->opt_params.end());
    param_groups.emplace_back(g->opt_params,
                              std::make_unique<torch::optim::AdamWOptions>(
                                  torch::optim::AdamWOptions(1e-3)
                                      .betas({options_.beta1, options_.beta2})
                                      .eps(options_.eps)
                                      .weight_decay(g->weight_decay)));
  }
  // FusedAdamW: torch's AdamW (state, options) with a one-pass CPU update.
  auto fresh = std::make_unique<kernels::FusedAdamW>(
      std::move(param_groups), torch::optim::AdamWOptions(1e-3)
                                   .betas({options_.beta1, options_.beta2})
                                   .eps(options_.eps)
                                   .weight_decay(options_.weight_decay));
  if (optimizer_ != nullptr) {  // keep the state of the tensors that remain
    for (const at::Tensor& t : all) {
      auto it = optimizer_->state().find(t.unsafeGetTensorImpl());
      if (it != optimizer_->state().end()) {
        fresh->state()[t.unsafeGetTensorImpl()] = std::move(it->second);
      }
    }
  }
  optimizer_ = std::move(fresh);
}

absl::Status DataParallel::BroadcastParameters() {
  if (comm_->world_size() == 1) return absl::OkStatus();
  std::vector<std::unique_ptr<Work>> works;
  for (auto& g : groups_) works.push_back(comm_->Broadcast(g->flat_param, 0));
  for (auto& w : works) {
    if (absl::Status s = w->Wait(); !s.ok()) return s;
  }
  RefreshComputeCopies();
  return absl::OkStatus();
}

void DataParallel::RefreshComputeCopies() {
  if (!mixed()) return;
  at::NoGradGuard no_grad;
  for (auto& g : groups_) {
    for (size_t i = 0; i < g->params.size(); ++i) g->params[i].detach().copy_(g->master_views[i]);
  }
}

void DataParallel::ZeroGrad() {
  for (auto& g : groups_) {
    g->flat_grad.zero_();
    if (mixed()) {
      for (auto& p : g->params) p.mutable_grad() = at::Tensor();
    }
  }
}

void DataParallel::SetLastMicroBatch(bool last) { last_micro_ = last; }

void DataParallel::OnGradReady(Bucket* bucket) {
  if (!last_micro_ || !options_.overlap) return;
  bucket->ready += 1;
  LaunchReadyBuckets();
}

void DataParallel::LaunchReadyBuckets() {
  while (next_launch_ < order_.size() &&
         order_[next_launch_]->ready >= order_[next_launch_]->expected) {
    Launch(*order_[next_launch_++]);
    ++started_in_backward_;
  }
}

void DataParallel::Launch(Bucket& b) {
  b.work = options_.zero_stage == 1 ? comm_->ReduceScatter(b.grad, b.shard_grad)
                                    : comm_->AllReduce(b.grad, ReduceOp::kSum);
}

absl::Status DataParallel::FinishGradientSync() {
  while (next_launch_ < order_.size()) Launch(*order_[next_launch_++]);
  absl::Status status;
  const double inv = 1.0 / comm_->world_size();
  for (Bucket* b : order_) {
    absl::Status s = b->work->Wait();
    if (status.ok() && !s.ok()) status = s;
    b->work.reset();
    b->ready = 0;
    if (comm_->world_size() > 1 && s.ok()) {
      (options_.zero_stage == 1 ? b->shard_grad : b->grad).mul_(inv);
    }
  }
  next_launch_ = 0;
  last_micro_ = true;
  return status;
}

std::vector<at::Tensor> DataParallel::OwnedGradients() {
  std::vector<at::Tensor> out;
  for (auto& g : groups_) {
    if (options_.zero_stage == 1) {
      for (auto& b : g->buckets) out.push_back(b->shard_grad);
    } else {
      out.push_back(g->flat_grad);
    }
  }
  return out;
}

absl::StatusOr<double> DataParallel::ClipGradNorm(double max_norm) {
  double sumsq = 0;
  for (const at::Tensor& g : OwnedGradients()) {
    const double n = at::linalg_vector_norm(g, 2, {}, false, at::kDouble).item<double>();
    sumsq += n * n;
  }
  if (options_.zero_stage == 1) {
    absl::StatusOr<double> total = AllReduceScalar(*comm_, sumsq);
    if (!total.ok()) return total.status();
    sumsq = *total;
  }
  const double norm = std::sqrt(sumsq);
  if (max_norm > 0 && norm > max_norm) {
    const double scale = max_norm / (norm + 1e-6);
    for (const at::Tensor& g : OwnedGradients()) g.mul_(scale);
  }
  return norm;
}

absl::Status DataParallel::Step(double lr) {
  auto& param_groups = optimizer_->param_groups();
  for (size_t i = 0; i < param_groups.size(); ++i) {
    static_cast<torch::optim::AdamWOptions&>(param_groups[i].options())
        .lr(lr * groups_[i]->lr_scale);
  }
  optimizer_->step();
  if (options_.zero_stage == 1 && comm_->world_size() > 1) {
    std::vector<std::unique_ptr<Work>> works;
    for (Bucket* b : order_) works.push_back(comm_->AllGatherInPlace(b->param));
    for (auto& w : works) {
      if (absl::Status s = w->Wait(); !s.ok()) return s;
    }
  }
  RefreshComputeCopies();
  return absl::OkStatus();
}

absl::Status DataParallel::DropGroup(const std::string& name) {
  auto it = std::find_if(groups_.begin(), groups_.end(),
                         [&](const auto& g) { return g->name == name; });
  if (it == groups_.end()) {
    return absl::NotFoundError(absl::StrCat("no parameter group \"", name, "\""));
  }
  Group& g = **it;
  at::NoGradGuard no_grad;
  for (auto& p : g.params) {
    torch::autograd::impl::set_post_acc_grad_hooks(p, nullptr);
    p.mutable_grad() = at::Tensor();
    p.set_data(p.detach().clone());
  }
  for (auto& b : g.buckets) {
    order_.erase(std::remove(order_.begin(), order_.end(), b.get()), order_.end());
  }
  for (const at::Tensor& t : g.opt_params) optimizer_->state().erase(t.unsafeGetTensorImpl());
  groups_.erase(it);
  RebuildOptimizer();
  return absl::OkStatus();
}

std::optional<std::pair<std::string, size_t>> DataParallel::FirstNonFiniteGradient() const {
  for (const auto& g : groups_) {
    for (size_t i = 0; i < g->params.size(); ++i) {
      const at::Tensor slice = g->flat_grad.narrow(0, g->offsets[i], g->params[i].numel());
      if (!at::isfinite(slice).all().item<bool>()) return std::make_pair(g->name, i);
    }
  }
  return std::nullopt;
}

void DataParallel::PoisonGradientForTest() {
  if (groups_.empty()) return;
  Group& g = *groups_.front();
  // The first parameter in module order, wherever the layout put it.
  g.flat_grad.narrow(0, g.offsets[0], 1).fill_(std::numeric_limits<double>::quiet_NaN());
  if (options_.zero_stage == 1) {
    for (auto& b : g.buckets) b->shard_grad.fill_(std::numeric_limits<double>::quiet_NaN());
  }
}

std::vector<std::string> DataParallel::group_names() const {
  std::vector<std::string> out;
  for (const auto& g : groups_) out.push_back(g->name);
  return out;
}

absl::StatusOr<std::vector<GroupTrainingState>> DataParallel::GatherTrainingState() {
  std::vector<GroupTrainingState> out;
  at::NoGradGuard no_grad;
  for (auto& g : groups_) {
    GroupTrainingState st;
    st.name = g->name;
    // AdamW state of this rank's optimizer tensors, placed into full flat buffers.
    const auto& state = optimizer_->state();
    at::Tensor m, v;
    for (size_t i = 0; i < g->opt_params.size(); ++i) {
      auto it = state.find(g->opt_params[i].unsafeGetTensorImpl());
      if (it == state.end()) continue;
      auto& ps = static_cast<torch::optim::AdamWParamState&>(*it->second);
      if (!m.defined()) {
        m = at::zeros_like(g->flat_param);
        v = at::zeros_like(g->flat_param);
      }
      st.adam_step = ps.step();
      const auto [off, n] = g->opt_ranges[i];
      m.narrow(0, off, n).copy_(ps.exp_avg());
      v.narrow(0, off, n).copy_(ps.exp_avg_sq());
    }
    // Under ZeRO-1 every rank holds 1/N of each bucket: all-gather (every rank has state, or
    // none before the first step).
    if (options_.zero_stage == 1 && comm_->world_size() > 1 && m.defined()) {
      std::vector<std::unique_ptr<Work>> works;
      for (auto& b : g->buckets) {
        works.push_back(comm_->AllGatherInPlace(m.narrow(0, b->offset, b->numel)));
        works.push_back(comm_->AllGatherInPlace(v.narrow(0, b->offset, b->numel)));
      }
      for (auto& w : works) {
        if (absl::Status s = w->Wait(); !s.ok()) return s;
      }
    }
    for (size_t i = 0; i < g->params.size(); ++i) {
      const int64_t off = g->offsets[i], n = g->params[i].numel();
      const auto shape = g->params[i].sizes();
      st.master.push_back(g->flat_param.narrow(0, off, n).view(shape).clone());
      st.exp_avg.push_back(m.defined() ? m.narrow(0, off, n).view(shape).clone() : at::Tensor());
      st.exp_avg_sq.push_back(v.defined() ? v.narrow(0, off, n).view(shape).clone()
                                          : at::Tensor());
    }
    out.push_back(std::move(st));
  }
  return out;
}

absl::Status DataParallel::LoadTrainingState(const std::vector<GroupTrainingState>& state) {
  at::NoGradGuard no_grad;
  for (auto& g : groups_) {
    auto it = std::find_if(state.begin(), state.end(),
                           [&](const GroupTrainingState& s) { return s.name == g->name; });
    if (it == state.end()) {
      return absl::NotFoundError(absl::StrCat("no saved state for parameter group \"", g->name,
                                              "\""));
    }
    const GroupTrainingState& st = *it;
    if (st.master.size() != g->params.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "parameter group \"", g->name, "\": saved state has ", st.master.size(),
          " tensors, the model has ", g->params.size()));
    }
    const bool have_adam = st.adam_step > 0;
    at::Tensor m = have_adam ? at::zeros_like(g->flat_param) : at::Tensor();
    at::Tensor v = have_adam ? at::zeros_like(g->flat_param) : at::Tensor();
    for (size_t i = 0; i < g->params.size(); ++i) {
      const int64_t off = g->offsets[i], n = g->params[i].numel();
      if (st.master[i].numel() != n || (have_adam && (!st.exp_avg[i].defined() ||
                                                      st.exp_avg[i].numel() != n ||
                                                      st.exp_avg_sq[i].numel() != n))) {
        return absl::InvalidArgumentError(absl::StrCat(
            "parameter group \"", g->name, "\", tensor ", i, ": saved shape ",
            c10::str(st.master[i].sizes()), " does not match the model's ",
            c10::str(g->params[i].sizes())));
      }
      g->flat_param.narrow(0, off, n).copy_(st.master[i].reshape({-1}));
      if (have_adam) {
        m.narrow(0, off, n).copy_(st.exp_avg[i].reshape({-1}));
        v.narrow(0, off, n).copy_(st.exp_avg_sq[i].reshape({-1}));
      }
    }
    for (size_t i = 0; i < g->opt_params.size(); ++i) {
      auto* key = g->opt_params[i].unsafeGetTensorImpl();
      if (!have_adam) {
        optimizer_->state().erase(key);
        continue;
      }
      const auto [off, n] = g->opt_ranges[i];
      auto ps = std::make_unique<torch::optim::AdamWParamState>();
      ps->step(st.adam_step);
      ps->exp_avg(m.narrow(0, off, n).clone());
      ps->exp_avg_sq(v.narrow(0, off, n).clone());
      optimizer_->state()[key] = std::move(ps);
    }
  }
  RefreshComputeCopies();
  return absl::OkStatus();
}

DataParallelSizes DataParallel::sizes() const {
  DataParallelSizes s;
  for (const auto& g : groups_) {
    s.param_elements += g->flat_param.numel();
    s.grad_elements += g->flat_grad.numel();
    for (const auto& b : g->buckets) {
      s.buckets += 1;
      if (b->shard_grad.defined()) s.grad_elements += b->shard_grad.numel();
    }
    for (const auto& t : g->opt_params) s.optimizer_elements += 2 * t.numel();
  }
  return s;
}

}  // namespace loom::parallel
