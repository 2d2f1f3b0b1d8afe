// Data-parallel training state of one rank: flat gradient buckets synchronised during the
// backward pass, and AdamW over the full parameters (ZeRO-0) or over this rank's shard (ZeRO-1).
//
//   DataParallel::Options opt;  opt.zero_stage = 1;  opt.adamw = {...};
//   LOOM_ASSIGN_OR_RETURN(auto dp, DataParallel::Create(comm, {{"model", params}}, opt));
//   LOOM_RETURN_IF_ERROR(dp->BroadcastParameters());    // rank 0's initial weights everywhere
//   for each step:
//     dp->ZeroGrad();
//     for each micro-batch m:  dp->SetLastMicroBatch(m == last);  (loss / accum).backward();
//     LOOM_RETURN_IF_ERROR(dp->FinishGradientSync());   // grads now averaged over ranks
//     LOOM_ASSIGN_OR_RETURN(double norm, dp->ClipGradNorm(max_norm));
//     LOOM_RETURN_IF_ERROR(dp->Step(lr));
//
// Layout (Megatron-style). Each parameter group owns one flat buffer of parameter values and one
// of gradients; every parameter becomes a view into the first (`set_data`) and its `.grad` a view
// into the second, so autograd accumulates in place. Parameters are laid out in reverse order
// (roughly the order the backward pass finishes them) and cut into buckets of about
// `bucket_bytes`, each padded to a multiple of the world size. A post-accumulate-grad hook counts
// finished gradients; on the last micro-batch of a step, a bucket whose gradients are all final
// starts its collective at once (all-reduce, or reduce-scatter under ZeRO-1) on the
// communicator's thread while the backward pass continues. Buckets always start in the same
// global order on every rank (a ready bucket waits for its predecessors), as MPI/NCCL require.
// Gradients are summed and divided by the world size: with equal micro-batches per rank, N
// ranks compute the same averaged gradient one rank computes over the whole global batch.
//
// ZeRO-1: rank r owns slice r of every bucket; AdamW state exists for those slices only; after
// the update every bucket is all-gathered in place. Grad-norm: squares summed over the owned
// slices, then all-reduced.
//
// Mixed precision (Options::compute_dtype = bf16): see Options. Reductions then run on the float32
// buffers, which MPI can sum (it has no bf16).
//
// Groups exist so that self-guided training can drop its dense guides (DropGroup) and free their
// buffers and optimizer state after the guided phase.
#ifndef LOOM_PARALLEL_DATA_PARALLEL_H_
#define LOOM_PARALLEL_DATA_PARALLEL_H_

#include <ATen/core/Tensor.h>
#include <torch/optim/adamw.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "parallel/communicator.h"

namespace loom::parallel {

// The full (unsharded) training state of one group, index-aligned with the group's parameters:
// what a checkpoint stores, independent of the world size and ZeRO stage.
struct GroupTrainingState {
  std::string name;
  int64_t adam_step = 0;            // AdamW steps taken (0: no state yet)
  std::vector<at::Tensor> master;   // parameter values in master precision
  std::vector<at::Tensor> exp_avg;  // undefined while adam_step == 0
  std::vector<at::Tensor> exp_avg_sq;
};

struct ParamGroupSpec {
  std::string name;
  std::vector<at::Tensor> params;  // leaf tensors that require grad, in module (forward) order
  // The group's learning rate is Step(lr)'s lr times lr_scale (so it follows the same schedule);
  // weight decay, when set, replaces Options::weight_decay for the group.
  double lr_scale = 1.0;
  std::optional<double> weight_decay;
};

// Sizes of the per-rank state, for memory planning and tests.
struct DataParallelSizes {
  int64_t param_elements = 0;     // flat parameter buffers, padding included
  int64_t grad_elements = 0;      // flat gradient buffers (+ ZeRO-1 shard gradients)
  int64_t optimizer_elements = 0; // AdamW exp_avg + exp_avg_sq held by this rank
  int64_t buckets = 0;
};

class DataParallel {
 public:
  struct Options {
    int zero_stage = 0;
    int64_t bucket_bytes = int64_t{16} << 20;
    bool overlap = true;  // false: every collective starts in FinishGradientSync
    double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
    // kBFloat16 with float32 parameters: mixed precision. The float32 values become the master
    // weights (the flat buffer); the parameters become bf16 compute copies, refreshed after
    // every step. Each backward's bf16 gradient is added into a float32 flat gradient buffer
    // (by the hook) and released, so accumulation, reduction, clipping and AdamW are float32.
    // Undefined: compute in the parameters' own dtype (float32 or float64).
    at::ScalarType compute_dtype = at::ScalarType::Undefined;
  };

  static absl::StatusOr<std::unique_ptr<DataParallel>> Create(Communicator* comm,
                                                              std::vector<ParamGroupSpec> groups,
                                                              const Options& options);
  ~DataParallel();

  // Copies rank 0's parameter values to every rank.
  absl::Status BroadcastParameters();
  // Zeroes the flat gradient buffers (the .grad views stay in place).
  void ZeroGrad();
  // Collectives start during a backward pass only when this is true (the last micro-batch).
  void SetLastMicroBatch(bool last);
  // Starts the buckets still pending, waits for all, divides by the world size.
  absl::Status FinishGradientSync();
  // Global L2 norm of the synchronised gradient; scales it to `max_norm` when above (0: never).
  absl::StatusOr<double> ClipGradNorm(double max_norm);
  // AdamW with learning rate `lr` (then the ZeRO-1 all-gather).
  absl::Status Step(double lr);
  // The state of every group, gathered (a collective under ZeRO-1: every rank must call it).
  absl::StatusOr<std::vector<GroupTrainingState>> GatherTrainingState();
  // Sets parameters (masters and compute copies) and AdamW state from full tensors; each rank
  // keeps its shard under ZeRO-1. Groups are matched by name; shapes must agree.
  absl::Status LoadTrainingState(const std::vector<GroupTrainingState>& state);
  std::vector<std::string> group_names() const;
  // Fault injection for tests: makes the synchronised gradient of the first parameter NaN.
  void PoisonGradientForTest();
  // (group, parameter index) of the first parameter whose gradient in this rank's flat buffer
  // has a NaN or Inf (after FinishGradientSync: the averaged gradient unless ZeRO-1), if any.
  std::optional<std::pair<std::string, size_t>> FirstNonFiniteGradient() const;

  // Frees a group's buffers and optimizer state; its parameters keep their last values as
  // detached copies and get no more gradients.
  absl::Status DropGroup(const std::string& name);

  DataParallelSizes sizes() const;
  // Buckets whose collective started from a hook, i.e. during a backward pass (since creation).
  int64_t buckets_started_in_backward() const { return started_in_backward_; }
  Communicator& comm() { return *comm_; }

  struct Bucket;
  struct Group;
  // Internal: called by the post-accumulate-grad hook of each parameter of `bucket`.
  void OnGradReady(Bucket* bucket);

 private:
  DataParallel(Communicator* comm, const Options& options);
  void RebuildOptimizer();
  void LaunchReadyBuckets();
  void Launch(Bucket& b);
  std::vector<at::Tensor> OwnedGradients();  // what the optimizer and the norm see
  void RefreshComputeCopies();               // mixed precision: params := bf16(master)
  bool mixed() const { return options_.compute_dtype == at::kBFloat16; }

  Communicator* comm_;
  Options options_;
  std::vector<std::unique_ptr<Group>> groups_;
  std::vector<Bucket*> order_;  // global launch order
  size_t next_launch_ = 0;
  int64_t started_in_backward_ = 0;
  bool last_micro_ = true;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
};

}  // namespace loom::parallel

#endif  // LOOM_PARALLEL_DATA_PARALLEL_H_
