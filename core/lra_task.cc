#include "core/lra_task.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <limits>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status_macros.h"

namespace loom {
namespace {

constexpr int64_t kIgnore = -100;

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform in [0, 1) from 53 random bits (the same on every platform, unlike
// std::uniform_real_distribution).
double Uniform(std::mt19937_64& gen) { return static_cast<double>(gen() >> 11) * 0x1.0p-53; }

double DefaultMaskRate(const data::lra::TaskData& d) {
  if (d.pixel_input) return 0.5;
  if (d.task == "listops") return 0.1;
  return 0.15;  // text, retrieval
}

// Normalised pixel value as the references feed it.
float PixelValue(const std::string& task, int32_t v) {
  const float x = static_cast<float>(v) / 255.0f;
  if (task == "image") return (x - 122.6f / 255.0f) / (61.0f / 255.0f);
  return (x - 0.5f) / 0.5f;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LraTask>> LraTask::Create(const RunConfig& config, int rank,
                                                         int world) {
  auto task = std::unique_ptr<LraTask>(new LraTask());
  task->config_ = config;
  const LraConfig& l = config.task().lra();
  data::lra::LoadOptions o;
  o.task = l.name();
  o.data_dir = l.data_dir();
  o.max_length = l.max_length();
  o.split_seed = l.split_seed();
  o.max_examples = l.max_examples();
  o.pathfinder_difficulty = l.pathfinder_difficulty();
  LOOM_ASSIGN_OR_RETURN(task->data_, data::lra::LoadTask(o));
  const auto& d = task->data_;
  if (d.train.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("task.lra: no training examples in ",
                                                   l.data_dir()));
  }
  task->rank_ = rank;
  task->world_ = world;
  task->global_ = config.train().global_batch_size();
  task->micro_ = config.train().micro_batch_size();
  task->accum_ = task->global_ / (task->micro_ * world);
  task->spt_ = l.objective() == "spt";
  task->masked_ = task->spt_ && config.model().bidirectional();
  task->retrieval_ = d.task == "retrieval";
  task->mask_rate_ = l.mask_rate() > 0 ? l.mask_rate() : DefaultMaskRate(d);
  task->seed_ = static_cast<uint64_t>(config.train().seed());
  return task;
}

void LraTask::ResolveModel(ModelConfig* m) const {
  if (!data_.pixel_input && m->vocab_size() == 0) m->set_vocab_size(data_.vocab.size());
  if (data_.pixel_input && m->input_channels() == 0) m->set_input_channels(masked_ ? 2 : 1);
  if (!spt_ && m->num_classes() == 0) m->set_num_classes(data_.num_classes);
  if (!m->has_head()) m->set_head(spt_ ? "lm" : retrieval_ ? "retrieval" : "classify");
}

std::string LraTask::Describe() const {
  return absl::StrFormat(
      "LRA %s (%s%s): %d train / %d val / %d test examples, %s, max length %d%s%s", data_.task,
      spt_ ? (masked_ ? "self-pretraining, masked denoising" : "self-pretraining, next element")
           : "classification",
      spt_ && masked_ ? absl::StrFormat(" at %.0f%%", 100 * mask_rate_) : "", data_.train.size(),
      data_.val.size(), data_.test.size(),
      data_.pixel_input ? "pixel inputs" : absl::StrCat("vocab ", data_.vocab.size()),
      data_.max_length, data_.notes.empty() ? "" : "; ", data_.notes);
}

const std::vector<int64_t>& LraTask::EpochOrder(int64_t epoch) {
  auto it = orders_.find(epoch);
  if (it != orders_.end()) return it->second;
  if (orders_.size() > 3) orders_.erase(orders_.begin());
  std::vector<int64_t> order(data_.train.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  // Fisher-Yates with 64-bit draws: the same permutation on every platform.
  std::mt19937_64 gen(SplitMix64(seed_ ^ SplitMix64(static_cast<uint64_t>(epoch) + 17)));
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[gen() % i]);
  return orders_[epoch] = std::move(order);
}

LraTask::Batch LraTask::MakeBatch(const std::vector<const data::lra::Example*>& rows,
                                  int64_t epoch, const std::vector<int64_t>& ids) const {
  Batch b;
  // Sequences of this batch: one per example, or both documents for retrieval SPT.
  struct Seq {
    const std::vector<int32_t>* tokens;
    uint64_t mask_key;
  };
  std::vector<Seq> seqs;
  const bool both = retrieval_ && spt_;
  for (size_t i = 0; i < rows.size(); ++i) {
    const uint64_t key = SplitMix64(seed_ ^ SplitMix64(epoch * 0x100000001B3ull + ids[i]));
    seqs.push_back({&rows[i]->tokens, key});
  }
  if (both) {
    for (size_t i = 0; i < rows.size(); ++i) {
      seqs.push_back({&rows[i]->tokens2, SplitMix64(seqs[i].mask_key + 1)});
    }
  }
  int64_t L = 0;
  for (const Seq& s : seqs) L = std::max<int64_t>(L, s.tokens->size());
  const int64_t B = static_cast<int64_t>(seqs.size());
  const int64_t channels = masked_ ? 2 : 1;
  at::Tensor lengths = at::empty({B}, at::kLong);
  at::Tensor tokens, pixels;
  if (data_.pixel_input) {
    pixels = at::zeros({B, L, channels}, at::kFloat);
  } else {
    tokens = at::full({B, L}, data::lra::Vocab::kPad, at::kLong);
  }
  at::Tensor targets = spt_ ? at::full({B, L}, kIgnore, at::kLong) : at::Tensor();
  for (int64_t r = 0; r < B; ++r) {
    const std::vector<int32_t>& t = *seqs[r].tokens;
    const int64_t n = static_cast<int64_t>(t.size());
    lengths[r] = n;
    std::vector<uint8_t> mask(n, 0);
    if (masked_) {
      std::mt19937_64 gen(seqs[r].mask_key);
      for (int64_t i = 0; i < n; ++i) mask[i] = Uniform(gen) < mask_rate_;
    }
    int64_t* tok = tokens.defined() ? tokens.data_ptr<int64_t>() + r * L : nullptr;
    for (int64_t i = 0; i < n; ++i) {
      if (data_.pixel_input) {
        float* p = pixels.data_ptr<float>() + (r * L + i) * channels;
        p[0] = mask[i] ? 0.0f : PixelValue(data_.task, t[i]);
        if (masked_) p[1] = mask[i] ? 1.0f : 0.0f;
      } else {
        tok[i] = mask[i] ? data::lra::Vocab::kMask : t[i];
      }
      if (spt_) {
        int64_t* tg = targets.data_ptr<int64_t>() + r * L;
        if (masked_) {
          if (mask[i]) tg[i] = t[i];
        } else if (i + 1 < n) {
          tg[i] = t[i + 1];
        }
      }
    }
  }
  b.inputs = data_.pixel_input ? pixels : tokens;
  b.lengths = lengths;
  if (spt_) {
    b.targets = targets;
    return b;
  }
  at::Tensor labels = at::empty({static_cast<int64_t>(rows.size())}, at::kLong);
  for (size_t i = 0; i < rows.size(); ++i) labels[i] = rows[i]->label;
  b.targets = labels;
  if (retrieval_) {
    int64_t L2 = 0;
    for (const auto* e : rows) L2 = std::max<int64_t>(L2, e->tokens2.size());
    b.inputs2 = at::full({static_cast<int64_t>(rows.size()), L2}, data::lra::Vocab::kPad, at::kLong);
    b.lengths2 = at::empty({static_cast<int64_t>(rows.size())}, at::kLong);
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto& t2 = rows[i]->tokens2;
      for (size_t j = 0; j < t2.size(); ++j) b.inputs2[i][j] = t2[j];
      b.lengths2[i] = static_cast<int64_t>(t2.size());
    }
  }
  return b;
}

at::Tensor LraTask::Loss(models::TransformerLm& model, const Batch& b, at::Tensor* correct,
                         at::Tensor* counted) const {
  if (!spt_) {
    at::Tensor logits = retrieval_ ? model.RetrievalLogits(b.inputs, b.lengths, b.inputs2,
                                                           b.lengths2)
                                   : model.ClassLogits(b.inputs, b.lengths);
    if (logits.scalar_type() != at::kDouble) logits = logits.to(at::kFloat);
    if (correct) *correct = (logits.argmax(-1) == b.targets).sum();
    if (counted) *counted = at::scalar_tensor(b.targets.size(0), at::kLong);
    return at::cross_entropy_loss(logits, b.targets);
  }
  at::Tensor logits = model.PositionLogits(b.inputs);  // (B, L, V)
  if (logits.scalar_type() != at::kDouble) logits = logits.to(at::kFloat);
  const at::Tensor flat = logits.reshape({-1, logits.size(-1)});
  const at::Tensor targets = b.targets.reshape({-1});
  const at::Tensor valid = targets != kIgnore;
  const int64_t n = valid.sum().item<int64_t>();
  if (correct) *correct = ((flat.argmax(-1) == targets) & valid).sum();
  if (counted) *counted = at::scalar_tensor(n, at::kLong);
  if (n == 0) return flat.sum() * 0.0;  // nothing masked in this micro-batch
  return at::cross_entropy_loss(flat, targets, /*weight=*/{}, at::Reduction::Mean, kIgnore);
}

at::Tensor LraTask::TrainLoss(models::TransformerLm& model, int64_t data_step, int64_t micro) {
  const int64_t n = static_cast<int64_t>(data_.train.size());
  const int64_t first = data_step * global_ + rank_ * (global_ / world_) + micro * micro_;
  std::vector<const data::lra::Example*> rows;
  std::vector<int64_t> ids;
  int64_t epoch = first / n;
  for (int64_t i = 0; i < micro_; ++i) {
    const int64_t g = first + i;
    epoch = g / n;
    const int64_t id = EpochOrder(epoch)[g % n];
    rows.push_back(&data_.train[id]);
    ids.push_back(id);
  }
  // A micro-batch spanning two epochs takes the masks of the later one (rare, deterministic).
  return Loss(model, MakeBatch(rows, epoch, ids), nullptr, nullptr);
}

absl::StatusOr<LraTask::EvalResult> LraTask::Evaluate(models::TransformerLm& model,
                                                      const std::string& split,
                                                      int64_t max_batches,
                                                      parallel::Communicator& comm) {
  const std::vector<data::lra::Example>& examples = split == "test" ? data_.test : data_.val;
  const int64_t rows = config_.train().eval_batch_size() > 0 ? config_.train().eval_batch_size()
                                                             : micro_;
  int64_t batches = (static_cast<int64_t>(examples.size()) + rows - 1) / rows;
  if (max_batches > 0) batches = std::min(batches, max_batches);
  double loss_sum = 0, correct = 0, counted = 0;
  for (int64_t i = comm.rank(); i < batches; i += comm.world_size()) {
    std::vector<const data::lra::Example*> batch;
    std::vector<int64_t> ids;
    for (int64_t j = i * rows; j < std::min<int64_t>((i + 1) * rows, examples.size()); ++j) {
      batch.push_back(&examples[j]);
      ids.push_back(j);
    }
    at::Tensor c, k;
    // Evaluation masks: epoch -1, the same for every evaluation.
    const at::Tensor loss = Loss(model, MakeBatch(batch, -1, ids), &c, &k);
    const double nk = static_cast<double>(k.item<int64_t>());
    loss_sum += loss.item<double>() * nk;
    correct += static_cast<double>(c.item<int64_t>());
    counted += nk;
  }
  LOOM_ASSIGN_OR_RETURN(loss_sum, parallel::AllReduceScalar(comm, loss_sum));
  LOOM_ASSIGN_OR_RETURN(correct, parallel::AllReduceScalar(comm, correct));
  LOOM_ASSIGN_OR_RETURN(counted, parallel::AllReduceScalar(comm, counted));
  EvalResult r;
  r.examples = static_cast<int64_t>(counted);
  r.loss = counted > 0 ? loss_sum / counted : std::numeric_limits<double>::quiet_NaN();
  r.accuracy = counted > 0 ? correct / counted : std::numeric_limits<double>::quiet_NaN();
  return r;
}

}  // namespace loom
