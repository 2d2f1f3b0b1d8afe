// Long Range Arena tasks for the trainer (task.type "lra"): the examples of data/lra in batches,
// the objectives, and evaluation on the validation and test splits.
//
//   LOOM_ASSIGN_OR_RETURN(auto task, LraTask::Create(config, rank, world));
//   task->ResolveModel(config.mutable_model());         // vocab, classes, input channels
//   at::Tensor loss = task->TrainLoss(model, data_step, micro);
//   LOOM_ASSIGN_OR_RETURN(auto r, task->Evaluate(model, "test", 0, comm));   // loss, accuracy
//
// Objectives (task.lra.objective):
//  - "classify": cross-entropy of model.head "classify" (or "retrieval" for the retrieval task)
//    on the label; accuracy is reported.
//  - "spt" (self-pretraining, Amos et al. 2024, spec lra_spt.md §3.1) on the training split:
//    a causal model (model.bidirectional false) predicts the next element; a bidirectional one
//    reconstructs independently masked positions (task.lra.mask_rate, default 10% ListOps, 15%
//    Text/Retrieval, 50% pixels), fresh masks every epoch. Token inputs: masked ids become
//    <mask> (0). Pixel inputs: two channels [value * (1 - mask), mask]. Targets: the token id or
//    the 8-bit intensity (256 classes) at masked (or next) positions; "accuracy" is the
//    reconstruction accuracy. Retrieval masks and reconstructs both documents.
//
// Order: a seeded permutation of the training examples per epoch (train.seed); step s takes rows
// [s G, (s+1) G) of that stream, each rank its contiguous slice, so N ranks see what one rank sees
// with the same global batch G, and a resumed run continues the stream exactly. Masks are a
// function of (seed, epoch, example), not of the rank or the batch layout.
//
// Inputs: token rows are padded to the longest row of the micro-batch with <pad> (1) and the
// lengths go to the pooling; the mixers see the padding (as the reference models do). Pixels are
// normalised as the references: sCIFAR (x/255 - 122.6/255) / (61/255), Pathfinder (x/255 - 0.5) / 0.5.
#ifndef LOOM_CORE_LRA_TASK_H_
#define LOOM_CORE_LRA_TASK_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config.pb.h"
#include "data/lra/lra_data.h"
#include "models/transformer_lm.h"
#include "parallel/communicator.h"

namespace loom {

class LraTask {
 public:
  static absl::StatusOr<std::unique_ptr<LraTask>> Create(const RunConfig& config, int rank,
                                                         int world);

  // Sets what the data decides and the config left at 0: model.vocab_size (token tasks),
  // model.num_classes, model.input_channels (pixel tasks: 1, or 2 for masked SPT), model.head
  // ("classify"/"retrieval" for classification, "lm" for SPT).
  void ResolveModel(ModelConfig* model) const;

  int64_t micro_batches_per_step() const { return accum_; }
  // Mean loss of this rank's micro-batch `micro` of optimizer step `data_step`.
  at::Tensor TrainLoss(models::TransformerLm& model, int64_t data_step, int64_t micro);

  struct EvalResult {
    double loss = 0;
    double accuracy = 0;
    int64_t examples = 0;
  };
  // "val" or "test"; max_batches 0 = the whole split. Batches are dealt round-robin to the ranks
  // and the sums all-reduced.
  absl::StatusOr<EvalResult> Evaluate(models::TransformerLm& model, const std::string& split,
                                      int64_t max_batches, parallel::Communicator& comm);

  const data::lra::TaskData& data() const { return data_; }
  std::string Describe() const;
  bool spt() const { return spt_; }
  bool masked() const { return masked_; }

 private:
  LraTask() = default;
  struct Batch {
    at::Tensor inputs, lengths, targets;   // targets: labels (B) or per-position (B, L), -100 ignored
    at::Tensor inputs2, lengths2;          // retrieval classification
  };
  Batch MakeBatch(const std::vector<const data::lra::Example*>& rows, int64_t epoch,
                  const std::vector<int64_t>& example_ids) const;
  at::Tensor Loss(models::TransformerLm& model, const Batch& b, at::Tensor* correct,
                  at::Tensor* counted) const;
  const std::vector<int64_t>& EpochOrder(int64_t epoch);

  RunConfig config_;
  data::lra::TaskData data_;
  int rank_ = 0, world_ = 1;
  int64_t global_ = 0, micro_ = 0, accum_ = 0;
  bool spt_ = false, masked_ = false, retrieval_ = false;
  double mask_rate_ = 0;
  uint64_t seed_ = 0;
  std::map<int64_t, std::vector<int64_t>> orders_;  // epoch -> permutation (a few kept)
};

}  // namespace loom

#endif  // LOOM_CORE_LRA_TASK_H_
