#include "core/trainer.h"

#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/alpha_schedule.h"
#include "core/config.h"
#include "core/file_io.h"
#include "core/flops.h"
#include "core/json.h"
#include "core/lr_schedule.h"
#include "core/progress.h"
#include "core/safetensors.h"
#include "core/status_macros.h"
#include "data/lm_loader.h"
#include "models/registry.h"
#include "models/structured_linear.h"
#include "parallel/data_parallel.h"

namespace loom {

struct Trainer::State {
  RunConfig config;
  std::string run_dir;
  std::string metrics_path;
  std::shared_ptr<models::TransformerLm> model;
  std::unique_ptr<parallel::Communicator> own_comm;  // when Create got none
  parallel::Communicator* comm = nullptr;
  std::unique_ptr<parallel::DataParallel> dp;
  std::unique_ptr<data::LmDataset> train_data;
  std::unique_ptr<data::LmDataset> val_data;
  std::unique_ptr<data::LmBatchLoader> train_loader;
  std::unique_ptr<data::LmBatchLoader> val_loader;
  double peak_flops = 0;
  // Self-guided training.
  std::vector<std::shared_ptr<models::StructuredLinear>> guided_layers;
  int64_t guided_steps = 0;  // optimizer steps with the guide (0: no self-guided training)
  int64_t total_steps = 0;   // max_steps, plus the repeated guided phase in fixedflop mode
  bool guides_dropped = false;
};

namespace {

std::string HumanCount(double v) {
  if (v >= 1e12) return absl::StrFormat("%.2fT", v / 1e12);
  if (v >= 1e9) return absl::StrFormat("%.2fG", v / 1e9);
  if (v >= 1e6) return absl::StrFormat("%.2fM", v / 1e6);
  if (v >= 1e3) return absl::StrFormat("%.1fk", v / 1e3);
  return absl::StrFormat("%.0f", v);
}

// run_dir/model.safetensors: every parameter under its module-tree name, as float32/float64.
// (Guides dropped after the guided phase have no elements and are left out.)
absl::Status WriteFinalWeights(const Trainer::State& s);

}  // namespace

Trainer::Trainer(std::unique_ptr<State> state) : state_(std::move(state)) {}
Trainer::~Trainer() = default;

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const RunConfig& config_in,
                                                         const std::string& run_dir,
                                                         parallel::Communicator* comm) {
  auto s = std::make_unique<State>();
  s->config = config_in;
  LOOM_RETURN_IF_ERROR(ResolveDefaults(&s->config));
  LOOM_RETURN_IF_ERROR(ValidateRunConfig(s->config));
  const RunConfig& c = s->config;
  if (comm == nullptr) {
    LOOM_ASSIGN_OR_RETURN(s->own_comm, parallel::CreateCommunicator(parallel::WorldInfo{}));
    comm = s->own_comm.get();
  }
  s->comm = comm;
  const int rank = comm->rank(), world = comm->world_size();
  if (c.parallel().expected_world_size() > 0 && c.parallel().expected_world_size() != world) {
    return absl::FailedPreconditionError(absl::StrCat(
        "parallel.expected_world_size is ", c.parallel().expected_world_size(),
        " but the job has ", world, " ranks"));
  }
  if (c.train().global_batch_size() % (int64_t{c.train().micro_batch_size()} * world) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "train.global_batch_size ", c.train().global_batch_size(),
        " is not a multiple of train.micro_batch_size ", c.train().micro_batch_size(), " x ",
        world, " ranks; every rank needs the same number of whole micro-batches"));
  }
  s->run_dir = run_dir;
  s->metrics_path = run_dir + "/metrics.jsonl";
  if (rank == 0) {  // one writer per run directory
    LOOM_RETURN_IF_ERROR(MakeDirs(run_dir));
    if (FileExists(s->metrics_path)) {
      return absl::FailedPreconditionError(absl::StrCat(
          run_dir, " already holds a run (metrics.jsonl exists) and resuming is not implemented "
                   "yet; choose another --run_dir or remove it"));
    }
    LOOM_RETURN_IF_ERROR(WriteFileAtomically(run_dir + "/config.textproto", RunConfigToText(c)));
  }

  const int threads = c.train().num_threads() > 0
                          ? c.train().num_threads()
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);

  LOOM_ASSIGN_OR_RETURN(s->train_data, data::LmDataset::Open(c.data().train_shards(),
                                                             c.train().seq_len(),
                                                             c.model().vocab_size()));
  if (!c.data().val_shards().empty()) {
    LOOM_ASSIGN_OR_RETURN(s->val_data, data::LmDataset::Open(c.data().val_shards(),
                                                             c.train().seq_len(),
                                                             c.model().vocab_size()));
  }
  try {
    s->train_loader = std::make_unique<data::LmBatchLoader>(
        s->train_data.get(), c.train().global_batch_size(), c.train().micro_batch_size(), rank,
        world, c.data().shuffle(), static_cast<uint64_t>(c.train().seed()));
    if (s->val_data) {
      const int64_t eval_rows = c.train().eval_batch_size() > 0 ? c.train().eval_batch_size()
                                                                 : c.train().micro_batch_size();
      s->val_loader = std::make_unique<data::LmBatchLoader>(s->val_data.get(), eval_rows,
                                                            eval_rows, 0, 1);
    }
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(e.what_without_backtrace());
  }
  LOOM_ASSIGN_OR_RETURN(s->model, models::BuildLanguageModel(c.model(), c.train().seed()));
  // The guides must exist before the optimizer collects the parameters.
  auto trainer = std::unique_ptr<Trainer>(new Trainer(std::move(s)));
  trainer->SetupSelfGuided();
  State* st = trainer->state_.get();
  // Two parameter groups so that the guides can be dropped after their phase. Weight decay on
  // every parameter, as the reference (AdamW, one setting for all).
  std::vector<at::Tensor> model_params, guide_params;
  for (const at::Tensor& p : st->model->parameters()) {
    bool is_guide = false;
    for (const auto& layer : st->guided_layers) is_guide |= p.is_same(layer->guide_linear);
    (is_guide ? guide_params : model_params).push_back(p);
  }
  parallel::DataParallel::Options dpo;
  dpo.zero_stage = c.optimizer().zero_stage();
  dpo.bucket_bytes = static_cast<int64_t>(c.parallel().bucket_mb() * (1 << 20));
  dpo.overlap = c.parallel().overlap() == "on" ||
                (c.parallel().overlap() == "auto" && comm->backend() == "nccl");
  dpo.beta1 = c.optimizer().beta1();
  dpo.beta2 = c.optimizer().beta2();
  dpo.eps = c.optimizer().eps();
  dpo.weight_decay = c.optimizer().weight_decay();
  if (c.model().dtype() == "bfloat16") dpo.compute_dtype = at::kBFloat16;
  LOOM_ASSIGN_OR_RETURN(st->dp, parallel::DataParallel::Create(
                                    comm, {{"model", model_params}, {"guides", guide_params}},
                                    dpo));
  LOOM_RETURN_IF_ERROR(st->dp->BroadcastParameters());
  if (rank == 0) st->peak_flops = MeasureCpuMatmulPeak(threads);
  return trainer;
}

void Trainer::SetupSelfGuided() {
  State& s = *state_;
  const RunConfig& c = s.config;
  const SelfGuidedConfig& sg = c.schedule().self_guided();
  s.total_steps = c.train().max_steps();
  if (!sg.enabled()) return;
  s.guided_steps = static_cast<int64_t>(sg.max_step_ratio() *
                                        static_cast<double>(c.train().max_steps()));
  if (sg.mode() == "fixedflop") s.total_steps += s.guided_steps;
  s.guided_layers = s.model->StructuredLayers();
  at::NoGradGuard no_grad;
  uint64_t layer_seed = static_cast<uint64_t>(c.train().seed()) * 1000003ULL;
  for (auto& layer : s.guided_layers) {
    at::Tensor init;
    auto* shuffle = dynamic_cast<models::BlockShuffleLinear*>(layer.get());
    if (shuffle != nullptr && sg.blockshuffle_guide_init() == "reference") {
      init = shuffle->ReferenceGuideInit();
    } else {
      init = layer->MergedWeight();
    }
    layer->EnableSelfGuided(init, sg.reduce_flop(), ++layer_seed);
  }
}

// Called after optimizer step `step` (0-based): the next step uses alpha(step + 1); at the end of
// the guided phase the guides are switched off and their memory and optimizer state freed.
void Trainer::AdvanceSelfGuided(int64_t step) {
  State& s = *state_;
  if (s.guided_layers.empty() || s.guides_dropped) return;
  const int64_t count = step + 1;
  if (count < s.guided_steps) {
    const double a = SelfGuidedAlpha(s.config.schedule().self_guided().scheduler(), count,
                                     s.guided_steps);
    for (auto& layer : s.guided_layers) layer->SetSelfGuidedState(count, a);
    return;
  }
  // Frees the guides' flat buffers and AdamW state (cannot fail: the group exists until now).
  absl::Status dropped = s.dp->DropGroup("guides");
  TORCH_CHECK(dropped.ok(), dropped.ToString());
  for (auto& layer : s.guided_layers) {
    layer->CloseSelfGuided();
    layer->guide_linear.set_data(at::empty({0}, layer->guide_linear.options()));
  }
  s.guides_dropped = true;
}

namespace {
absl::Status WriteFinalWeights(const Trainer::State& s) {
  std::vector<SafetensorsTensor> tensors;
  for (const auto& item : s.model->named_parameters()) {
    const at::Tensor t = item.value().detach().contiguous();
    if (t.numel() == 0) continue;
    SafetensorsTensor out;
    out.name = item.key();
    out.dtype = t.scalar_type() == at::kDouble ? "F64" : "F32";
    const at::Tensor v = t.scalar_type() == at::kDouble ? t : t.to(at::kFloat);
    out.shape = v.sizes().vec();
    out.data.assign(static_cast<const char*>(v.data_ptr()), v.nbytes());
    tensors.push_back(std::move(out));
  }
  return WriteSafetensors(s.run_dir + "/model.safetensors", tensors,
                          {{"format", "loom-final-weights"}, {"config_name", s.config.name()}});
}
}  // namespace

absl::StatusOr<TrainResult> Trainer::Run() {
  State& s = *state_;
  const RunConfig& c = s.config;
  const TrainConfig& t = c.train();
  const int64_t tokens_per_step = int64_t{t.global_batch_size()} * t.seq_len();
  const int64_t total_steps = s.total_steps;
  // T of the cosine includes the repeated steps of fixedflop self-guided training.
  LrSchedule schedule = LrSchedule::FromConfig(c.optimizer(), total_steps);
  const int rank = s.comm->rank(), world = s.comm->world_size();
  // Ranks other than 0 train silently; rank 0 speaks for the job.
  ProgressReporter progress(rank == 0 ? ProgressReporter::ModeFromName(c.logging().progress())
                                      : ProgressReporter::Mode::kNone,
                            total_steps);
  TrainResult result;
  result.num_parameters = s.model->NumParameters();
  result.initial_val_loss = std::numeric_limits<double>::quiet_NaN();
  result.final_val_loss = std::numeric_limits<double>::quiet_NaN();

  progress.Line(absl::StrFormat(
      "loom: run \"%s\" | %s parameters | %d layers, d_model %d, vocab %d | seq %d, batch %d "
      "(micro %d) = %s tokens/step | %d steps | %s train tokens, %s val tokens | %d threads%s, "
      "CPU matmul peak %.0f GFLOP/s",
      c.name(), HumanCount(result.num_parameters), c.model().num_layers(), c.model().d_model(),
      c.model().vocab_size(), t.seq_len(), t.global_batch_size(), t.micro_batch_size(),
      HumanCount(tokens_per_step), total_steps, HumanCount(s.train_data->num_tokens()),
      s.val_data ? HumanCount(s.val_data->num_tokens()) : "no", at::get_num_threads(),
      world > 1 ? absl::StrFormat(" x %d ranks (%s, ZeRO-%d)", world, s.comm->backend(),
                                  c.optimizer().zero_stage())
                : std::string(),
      s.peak_flops / 1e9));

  // Evaluation batches are dealt round-robin to the ranks; the sum is all-reduced.
  auto evaluate = [&]() -> absl::StatusOr<double> {
    if (!s.val_loader) return std::numeric_limits<double>::quiet_NaN();
    at::NoGradGuard no_grad;
    s.model->eval();
    const int64_t n = s.val_loader->NumEvalBatches(t.eval_batches());
    double sum = 0;
    for (int64_t i = rank; i < n; i += world) {
      data::LmBatch b = s.val_loader->GetEval(i);
      sum += s.model->Loss(b.inputs, b.targets).item<double>();
    }
    s.model->train();
    LOOM_ASSIGN_OR_RETURN(sum, parallel::AllReduceScalar(*s.comm, sum));
    return sum / static_cast<double>(n);
  };
  auto log_eval = [&](int64_t step, double val_loss) -> absl::Status {
    if (rank != 0) return absl::OkStatus();
    Json rec = Json::MakeObject();
    rec["step"] = step;
    rec["tokens"] = step * tokens_per_step;
    rec["val_loss"] = val_loss;
    rec["val_ppl"] = std::exp(val_loss);
    LOOM_RETURN_IF_ERROR(AppendLine(s.metrics_path, rec.Dump()));
    progress.Line(absl::StrFormat("eval  step %d: val_loss %.4f, val_ppl %.2f", step, val_loss,
                                  std::exp(val_loss)));
    return absl::OkStatus();
  };

  const auto run_start = std::chrono::steady_clock::now();
  double train_seconds = 0;
  if (s.val_loader) {
    LOOM_ASSIGN_OR_RETURN(result.initial_val_loss, evaluate());
    LOOM_RETURN_IF_ERROR(log_eval(0, result.initial_val_loss));
  }

  const int64_t accum = s.train_loader->micro_batches_per_step();
  double interval_loss = 0;
  int64_t interval_steps = 0;
  double interval_seconds = 0;
  if (s.guided_steps > 0) {
    progress.Line(absl::StrFormat(
        "self-guided: %d structured layers, guide for %d steps (%s, %s%s)%s",
        s.guided_layers.size(), s.guided_steps, c.schedule().self_guided().mode(),
        c.schedule().self_guided().scheduler(),
        c.schedule().self_guided().reduce_flop() ? ", reduce_flop" : "",
        total_steps > t.max_steps()
            ? absl::StrFormat("; steps %d-%d repeat the guided phase's data", t.max_steps(),
                              total_steps - 1)
            : ""));
  }
  for (int64_t step = 0; step < total_steps; ++step) {
    const auto step_start = std::chrono::steady_clock::now();
    const double lr = schedule.At(step);
    s.dp->ZeroGrad();
    double step_loss = 0;
    // fixedflop: the appended steps re-read the guided phase's data from its start.
    const int64_t data_step = step < t.max_steps() ? step : step - t.max_steps();
    for (int64_t m = 0; m < accum; ++m) {
      data::LmBatch b = s.train_loader->Get(data_step, m);
      // Gradient buckets start their collectives during the last micro-batch's backward.
      s.dp->SetLastMicroBatch(m == accum - 1);
      at::Tensor loss = s.model->Loss(b.inputs, b.targets);
      (loss / static_cast<double>(accum)).backward();
      step_loss += loss.item<double>() / static_cast<double>(accum);
    }
    LOOM_RETURN_IF_ERROR(s.dp->FinishGradientSync());
    if (world > 1) {
      LOOM_ASSIGN_OR_RETURN(step_loss, parallel::AllReduceScalar(*s.comm, step_loss));
      step_loss /= world;
    }
    LOOM_ASSIGN_OR_RETURN(const double grad_norm, s.dp->ClipGradNorm(c.optimizer().grad_clip()));
    if (!std::isfinite(step_loss) || !std::isfinite(grad_norm)) {
      progress.Finish();
      return absl::InternalError(absl::StrFormat(
          "non-finite %s at step %d (loss %g, grad_norm %g); stopping before the optimizer "
          "step. Lower optimizer.lr or check the data.",
          std::isfinite(step_loss) ? "gradient norm" : "loss", step, step_loss, grad_norm));
    }
    LOOM_RETURN_IF_ERROR(s.dp->Step(lr));
    const double step_alpha = s.guided_layers.empty() || s.guides_dropped
                                  ? 0.0
                                  : s.guided_layers.front()->alpha();
    AdvanceSelfGuided(step);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
    train_seconds += secs;
    if (step == 0) result.first_train_loss = step_loss;
    interval_loss += step_loss;
    interval_steps += 1;
    interval_seconds += secs;
    const int64_t done = step + 1;
    const double tok_s = static_cast<double>(interval_steps * tokens_per_step) / interval_seconds;
    const bool log_now = done % t.log_every() == 0 || done == total_steps;
    progress.Step(done,
                  absl::StrFormat("loss %.4f ppl %.1f | lr %.2e | %s tok/s", step_loss,
                                  std::exp(step_loss), lr, HumanCount(tok_s)),
                  log_now);
    if (log_now && rank == 0) {
      const double mean_loss = interval_loss / static_cast<double>(interval_steps);
      Json rec = Json::MakeObject();
      rec["step"] = done;
      rec["tokens"] = done * tokens_per_step;
      rec["data_step"] = data_step;  // which step's batch this was (differs in fixedflop repeats)
      rec["loss"] = mean_loss;
      rec["lr"] = lr;
      rec["grad_norm"] = grad_norm;
      // alpha of the step just taken; null for models without self-guided layers.
      rec["alpha"] = s.guided_layers.empty() ? Json() : Json(step_alpha);
      rec["tokens_per_s"] = tok_s;
      // Cumulative training FLOPs, self-guided steps weighted as the accounting does.
      const double flops_done = CumulativeTrainingFlops(c, done);
      rec["flops"] = flops_done;
      rec["mfu"] = s.peak_flops > 0 ? (flops_done - CumulativeTrainingFlops(c, done - interval_steps)) /
                                          interval_seconds / s.peak_flops
                                    : 0.0;
      LOOM_RETURN_IF_ERROR(AppendLine(s.metrics_path, rec.Dump()));
      result.final_train_loss = mean_loss;
      interval_loss = 0;
      interval_steps = 0;
      interval_seconds = 0;
    }
    const bool last = done == total_steps;
    if (log_now && rank != 0) {
      result.final_train_loss = interval_loss / static_cast<double>(interval_steps);
      interval_loss = 0;
      interval_steps = 0;
      interval_seconds = 0;
    }
    if (s.val_loader && ((t.eval_every() > 0 && done % t.eval_every() == 0) || last)) {
      LOOM_ASSIGN_OR_RETURN(const double v, evaluate());
      result.final_val_loss = v;
      LOOM_RETURN_IF_ERROR(log_eval(done, v));
    }
  }
  progress.Finish();
  if (rank == 0) LOOM_RETURN_IF_ERROR(WriteFinalWeights(s));
  result.steps = total_steps;
  result.tokens = total_steps * tokens_per_step;
  result.tokens_per_s = static_cast<double>(result.tokens) / train_seconds;
  result.total_flops = ComputeRunFlops(c).train_flops;
  result.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
  return result;
}

}  // namespace loom
