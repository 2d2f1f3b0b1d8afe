#include "core/trainer.h"

#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>
#include <cmath>
#include <limits>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include <google/protobuf/util/message_differencer.h>
#include "core/alpha_schedule.h"
#include "core/checkpoint.h"
#include "core/config.h"
#include "core/file_io.h"
#include "core/flops.h"
#include "core/intra_op_threads.h"
#include "core/json.h"
#include "core/lr_schedule.h"
#include "core/lra_task.h"
#include "core/run_plot.h"
#include "core/tensorboard.h"
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
  std::unique_ptr<LraTask> lra;  // task.type "lra" instead of the LM loaders
  std::unique_ptr<TensorBoardWriter> tensorboard;  // rank 0, logging.tensorboard
  // LRA: the last evaluation's accuracies, logged with the validation loss.
  double val_accuracy = std::numeric_limits<double>::quiet_NaN();
  double test_accuracy = std::numeric_limits<double>::quiet_NaN();
  double peak_flops = 0;
  // Self-guided training.
  std::vector<std::shared_ptr<models::StructuredLinear>> guided_layers;
  int64_t guided_steps = 0;  // optimizer steps with the guide (0: no self-guided training)
  int64_t total_steps = 0;   // max_steps, plus the repeated guided phase in fixedflop mode
  bool guides_dropped = false;
  // Checkpoints: module-tree names of the DataParallel groups' parameters, index-aligned.
  std::map<std::string, std::vector<std::string>> group_param_names;
  int64_t start_step = 0;
  double resume_interval_loss = 0;
  int64_t resume_interval_steps = 0;
  int64_t skipped_steps = 0;
  std::string last_checkpoint;
};

namespace {
std::atomic<bool> g_stop_requested{false};
extern "C" void OnStopSignal(int) { g_stop_requested = true; }
}  // namespace

void InstallStopSignalHandlers() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}

namespace {

std::string HumanCount(double v) {
  if (v >= 1e12) return absl::StrFormat("%.2fT", v / 1e12);
  if (v >= 1e9) return absl::StrFormat("%.2fG", v / 1e9);
  if (v >= 1e6) return absl::StrFormat("%.2fM", v / 1e6);
  if (v >= 1e3) return absl::StrFormat("%.1fk", v / 1e3);
  return absl::StrFormat("%.0f", v);
}

// An optimizer override's group: name (stable, it keys checkpoints), lr relative to the run's
// peak lr, weight decay.
struct ParamGroupKey {
  std::string name;
  double lr_scale = 1.0;
  std::optional<double> weight_decay;
};

ParamGroupKey OverrideGroup(const models::ParamOptimOverride& o, const OptimizerConfig& opt) {
  ParamGroupKey k;
  const double lr = o.lr.value_or(opt.lr());
  k.lr_scale = opt.lr() > 0 ? lr / opt.lr() : 1.0;
  k.weight_decay = o.weight_decay;
  k.name = absl::StrCat("override:lr=", o.lr ? absl::StrCat(*o.lr) : "global", ",wd=",
                        o.weight_decay ? absl::StrCat(*o.weight_decay) : "global");
  return k;
}

// task.lra.init_from: a self-pretraining run's weights into a finetuning model. Heads are new
// (the pretraining head is dropped, the classification head keeps its fresh init); a pixel
// model's mask-indicator input column is dropped (2 input channels -> 1); everything else must
// be present with the same shape.
absl::Status LoadPretrainedBackbone(models::TransformerLm& model, const std::string& from) {
  std::string path = from;
  if (std::filesystem::is_directory(from)) {
    path = from + "/model.safetensors";
    // A run directory without final weights: its newest complete checkpoint.
    if (!FileExists(path)) {
      LOOM_ASSIGN_OR_RETURN(std::optional<std::string> ckpt, FindLatestCheckpoint(from));
      if (!ckpt) {
        return absl::NotFoundError(absl::StrCat("task.lra.init_from: ", from,
                                                " has no model.safetensors and no checkpoint"));
      }
      path = *ckpt + "/model.safetensors";
    }
  }
  LOOM_ASSIGN_OR_RETURN(SafetensorsFile f, ReadSafetensors(path));
  at::NoGradGuard no_grad;
  for (const auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    if (absl::StartsWith(name, "classifier.") || absl::StartsWith(name, "retrieval_fc") ||
        absl::StartsWith(name, "pixel_head.") || name == "cls") {
      continue;
    }
    const SafetensorsTensor* t = f.Find(name);
    if (t == nullptr) {
      return absl::NotFoundError(absl::StrCat("task.lra.init_from: ", path, " has no tensor ",
                                              name, " (a different architecture?)"));
    }
    LOOM_ASSIGN_OR_RETURN(at::Tensor x, SafetensorsToTensor(*t));
    at::Tensor p = item.value();
    if (name == "input_proj.weight" && x.dim() == 2 && p.dim() == 2 &&
        x.size(1) == p.size(1) + 1) {
      x = x.narrow(1, 0, p.size(1));  // the mask-indicator channel of masked pixel SPT
    }
    if (x.sizes() != p.sizes()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "task.lra.init_from: ", path, ": ", name, " has shape ", c10::str(x.sizes()),
          ", the model ", c10::str(p.sizes())));
    }
    p.copy_(x);
  }
  for (const auto& [name, buffer] : model.FunctionBuffers()) {
    if (const SafetensorsTensor* t = f.Find(name)) {
      LOOM_ASSIGN_OR_RETURN(at::Tensor x, SafetensorsToTensor(*t));
      if (x.sizes() == buffer.sizes()) const_cast<at::Tensor&>(buffer).copy_(x);
    }
  }
  return absl::OkStatus();
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
  // A run directory with a complete checkpoint resumes; one with metrics but no checkpoint
  // cannot (nothing to continue from) and is refused rather than overwritten.
  LOOM_ASSIGN_OR_RETURN(std::optional<std::string> resume_dir, FindLatestCheckpoint(run_dir));
  if (!resume_dir && FileExists(s->metrics_path)) {
    return absl::FailedPreconditionError(absl::StrCat(
        run_dir, " already holds a run (metrics.jsonl) but no complete checkpoint to resume "
                 "from; choose another --run_dir or remove it"));
  }
  if (rank == 0) {  // one writer per run directory
    LOOM_RETURN_IF_ERROR(MakeDirs(run_dir));
    LOOM_RETURN_IF_ERROR(WriteFileAtomically(run_dir + "/config.textproto", RunConfigToText(c)));
  }

  // 0: OMP_NUM_THREADS if set, else this rank's share of the host's cores (intra_op_threads.h).
  // Every rank taking every core made unbound multi-rank CPU jobs 4.5x slower (oversubscribed
  // OpenMP barriers).
  const int threads = ResolveIntraOpThreads(c.train().num_threads(), comm->RanksOnThisHost());
  at::set_num_threads(threads);

  if (c.task().type() == "lra") {
    LOOM_ASSIGN_OR_RETURN(s->lra, LraTask::Create(c, rank, world));
    s->lra->ResolveModel(s->config.mutable_model());
    LOOM_RETURN_IF_ERROR(ValidateRunConfig(s->config));
    if (rank == 0) {
      LOOM_RETURN_IF_ERROR(
          WriteFileAtomically(run_dir + "/config.textproto", RunConfigToText(c)));
    }
  }
  if (s->lra) {
    // The LRA task holds its data; no token shards.
  } else {
    LOOM_ASSIGN_OR_RETURN(s->train_data, data::LmDataset::Open(c.data().train_shards(),
                                                               c.train().seq_len(),
                                                               c.model().vocab_size()));
  }
  if (!s->lra && !c.data().val_shards().empty()) {
    LOOM_ASSIGN_OR_RETURN(s->val_data, data::LmDataset::Open(c.data().val_shards(),
                                                             c.train().seq_len(),
                                                             c.model().vocab_size()));
  }
  if (!s->lra) try {
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
  if (s->lra && !c.task().lra().init_from().empty() && !resume_dir) {
    LOOM_RETURN_IF_ERROR(LoadPretrainedBackbone(*s->model, c.task().lra().init_from()));
  }
  // The guides must exist before the optimizer collects the parameters.
  auto trainer = std::unique_ptr<Trainer>(new Trainer(std::move(s)));
  trainer->SetupSelfGuided();
  State* st = trainer->state_.get();
  // Parameter groups: "model"; "guides", so that the guides can be dropped after their phase;
  // and one group per distinct optimizer override of the sequence mixers (S4's SSM parameters,
  // SGConv's kernels), named after its settings, as the S4 reference groups by `_optim`.
  // Weight decay on every other parameter, as the StructuredFFN reference.
  std::map<const c10::TensorImpl*, ParamGroupKey> overrides;
  for (const models::ParamOptimOverride& o : st->model->OptimOverrides()) {
    if (!o.lr && !o.weight_decay) continue;  // nothing overridden: the model group
    overrides[o.param.unsafeGetTensorImpl()] = OverrideGroup(o, c.optimizer());
  }
  std::map<std::string, parallel::ParamGroupSpec> override_groups;
  std::vector<at::Tensor> model_params, guide_params;
  for (const auto& item : st->model->named_parameters()) {
    const at::Tensor& p = item.value();
    if (!p.requires_grad()) continue;
    bool is_guide = false;
    for (const auto& layer : st->guided_layers) is_guide |= p.is_same(layer->guide_linear);
    auto o = overrides.find(p.unsafeGetTensorImpl());
    if (is_guide || o == overrides.end()) {
      (is_guide ? guide_params : model_params).push_back(p);
      st->group_param_names[is_guide ? "guides" : "model"].push_back(item.key());
      continue;
    }
    parallel::ParamGroupSpec& g = override_groups[o->second.name];
    g.name = o->second.name;
    g.lr_scale = o->second.lr_scale;
    g.weight_decay = o->second.weight_decay;
    g.params.push_back(p);
    st->group_param_names[g.name].push_back(item.key());
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
  std::vector<parallel::ParamGroupSpec> groups = {{"model", model_params},
                                                  {"guides", guide_params}};
  for (auto& [name, g] : override_groups) groups.push_back(std::move(g));
  LOOM_ASSIGN_OR_RETURN(st->dp, parallel::DataParallel::Create(comm, std::move(groups), dpo));
  LOOM_RETURN_IF_ERROR(st->dp->BroadcastParameters());
  if (resume_dir) LOOM_RETURN_IF_ERROR(trainer->ResumeFromCheckpoint(*resume_dir));
  // MFU denominator: given, else (CPU training) measured. GPU names map through GpuPeakFlops()
  // once training runs on CUDA devices.
  if (rank == 0) {
    st->peak_flops = c.logging().peak_flops() > 0 ? c.logging().peak_flops()
                                                   : MeasureCpuMatmulPeak(threads);
  }
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
  for (const auto& [name, buffer] : s.model->FunctionBuffers()) {
    tensors.push_back(TensorToSafetensors(name, buffer));
  }
  return WriteSafetensors(s.run_dir + "/model.safetensors", tensors,
                          {{"format", "loom-final-weights"}, {"config_name", s.config.name()}});
}
}  // namespace

namespace {

// The config with what may change between a run and its resumption cleared: parallel layout,
// threads, logging, checkpoint cadence, evaluation cadence and shard paths (data moves between
// clusters). Everything else (model, optimizer, schedule, batch, seed) must match.
RunConfig ResumeFingerprint(RunConfig c) {
  c.clear_parallel();
  c.clear_logging();
  c.clear_checkpoint();
  c.mutable_optimizer()->clear_zero_stage();
  c.mutable_optimizer()->clear_nonfinite_policy();
  c.mutable_data()->clear_train_shards();
  c.mutable_data()->clear_val_shards();
  TrainConfig* t = c.mutable_train();
  t->clear_num_threads();
  t->clear_micro_batch_size();
  t->clear_log_every();
  t->clear_eval_every();
  t->clear_eval_batches();
  t->clear_eval_batch_size();
  return c;
}

SafetensorsTensor BytesTensor(const std::string& name, const std::string& bytes) {
  SafetensorsTensor t;
  t.name = name;
  t.dtype = "U8";
  t.shape = {static_cast<int64_t>(bytes.size())};
  t.data = bytes;
  return t;
}

SafetensorsTensor Int64Tensor(const std::string& name, const std::vector<int64_t>& v) {
  SafetensorsTensor t;
  t.name = name;
  t.dtype = "I64";
  t.shape = {static_cast<int64_t>(v.size())};
  t.data.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int64_t));
  return t;
}

std::vector<int64_t> Int64Values(const SafetensorsTensor& t) {
  std::vector<int64_t> v(t.data.size() / sizeof(int64_t));
  std::memcpy(v.data(), t.data.data(), v.size() * sizeof(int64_t));
  return v;
}

}  // namespace

absl::Status Trainer::SaveCheckpoint(int64_t steps_done, double interval_loss,
                                     int64_t interval_steps) {
  State& s = *state_;
  const RunConfig& c = s.config;
  const int rank = s.comm->rank();
  const std::string dir = s.run_dir + "/checkpoints/" + CheckpointDirName(steps_done);
  LOOM_ASSIGN_OR_RETURN(std::vector<parallel::GroupTrainingState> groups,
                        s.dp->GatherTrainingState());
  // This rank's own state.
  std::vector<SafetensorsTensor> own;
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    at::Tensor st = gen.get_state();
    own.push_back(BytesTensor("torch_cpu_generator",
                              std::string(static_cast<const char*>(st.data_ptr()), st.nbytes())));
  }
  for (size_t i = 0; i < s.guided_layers.size(); ++i) {
    own.push_back(BytesTensor(absl::StrCat("self_guided/", i, "/rng"),
                              s.guided_layers[i]->RngState()));
    own.push_back(Int64Tensor(absl::StrCat("self_guided/", i, "/skips_uses"),
                              {s.guided_layers[i]->guide_skips(), s.guided_layers[i]->guide_uses()}));
  }
  own.push_back(Int64Tensor("data/step", {steps_done}));
  own.push_back(Int64Tensor("logging/interval_steps", {interval_steps}));
  own.push_back(TensorToSafetensors("logging/interval_loss",
                                    at::full({1}, interval_loss, at::kDouble)));
  own.push_back(Int64Tensor("skipped_steps", {s.skipped_steps}));
  LOOM_RETURN_IF_ERROR(WriteCheckpointFile(dir, RankFileName(rank), own,
                                           {{"format", "loom-checkpoint-rank"}}));
  LOOM_RETURN_IF_ERROR(s.comm->Barrier());  // every rank file is on disk
  if (rank == 0) {
    std::vector<SafetensorsTensor> model, optimizer;
    for (const auto& g : groups) {
      const std::vector<std::string>& names = s.group_param_names[g.name];
      for (size_t i = 0; i < g.master.size(); ++i) {
        model.push_back(TensorToSafetensors(names[i], g.master[i]));
        if (g.adam_step > 0) {
          optimizer.push_back(TensorToSafetensors("exp_avg/" + names[i], g.exp_avg[i]));
          optimizer.push_back(TensorToSafetensors("exp_avg_sq/" + names[i], g.exp_avg_sq[i]));
        }
      }
      optimizer.push_back(Int64Tensor("step/" + g.name, {g.adam_step}));
    }
    for (const auto& [name, buffer] : s.model->FunctionBuffers()) {
      model.push_back(TensorToSafetensors(name, buffer));
    }
    const std::map<std::string, std::string> meta = {{"format", "loom-checkpoint"},
                                                     {"step", absl::StrCat(steps_done)}};
    LOOM_RETURN_IF_ERROR(WriteCheckpointFile(dir, "model.safetensors", model, meta));
    LOOM_RETURN_IF_ERROR(WriteCheckpointFile(dir, "optimizer.safetensors", optimizer, meta));
    CheckpointManifest manifest;
    *manifest.mutable_config() = c;
    manifest.set_step(steps_done);
    manifest.set_tokens(steps_done * int64_t{c.train().global_batch_size()} * c.train().seq_len());
    manifest.set_world_size(s.comm->world_size());
    manifest.set_zero_stage(c.optimizer().zero_stage());
    manifest.set_train_flops(CumulativeTrainingFlops(c, steps_done));
    manifest.set_parameters(s.model->NumParameters());
    LOOM_RETURN_IF_ERROR(FinalizeCheckpoint(dir, manifest));
    LOOM_RETURN_IF_ERROR(PruneCheckpoints(s.run_dir, c.checkpoint().keep_last()));
  }
  s.last_checkpoint = dir;
  return s.comm->Barrier();  // nobody goes on (or exits) before DONE
}

absl::Status Trainer::ResumeFromCheckpoint(const std::string& dir) {
  State& s = *state_;
  const RunConfig& c = s.config;
  LOOM_ASSIGN_OR_RETURN(LoadedCheckpoint ckpt, ReadCheckpoint(dir));
  {
    std::string diff;
    google::protobuf::util::MessageDifferencer differ;
    differ.ReportDifferencesToString(&diff);
    const RunConfig a = ResumeFingerprint(ckpt.manifest.config());
    const RunConfig b = ResumeFingerprint(c);
    if (!differ.Compare(a, b)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot resume ", dir, ": the config differs from the checkpoint's in fields that "
          "change the training (only parallel.*, logging.*, checkpoint.*, shard paths, threads, "
          "micro-batch and eval cadence may change):\n", diff));
    }
  }
  const int64_t step = ckpt.manifest.step();
  {
    at::NoGradGuard no_grad;
    for (const auto& [name, buffer] : s.model->FunctionBuffers()) {
      const SafetensorsTensor* t = ckpt.Find("model.safetensors", name);
      if (t == nullptr) {
        return absl::DataLossError(absl::StrCat(dir, "/model.safetensors: no buffer ", name));
      }
      LOOM_ASSIGN_OR_RETURN(at::Tensor v, SafetensorsToTensor(*t));
      if (v.sizes() != buffer.sizes()) {
        return absl::DataLossError(absl::StrCat(dir, "/model.safetensors: buffer ", name,
                                                " has the wrong shape"));
      }
      const_cast<at::Tensor&>(buffer).copy_(v);
    }
  }
  // Self-guided state as of `step` (guides dropped if the guided phase had ended).
  if (step > 0) AdvanceSelfGuided(step - 1);
  std::vector<parallel::GroupTrainingState> groups;
  for (const std::string& name : s.dp->group_names()) {
    parallel::GroupTrainingState g;
    g.name = name;
    const SafetensorsTensor* st = ckpt.Find("optimizer.safetensors", "step/" + name);
    if (st == nullptr) {
      return absl::DataLossError(absl::StrCat(dir, "/optimizer.safetensors: no step/", name));
    }
    g.adam_step = Int64Values(*st).at(0);
    for (const std::string& pname : s.group_param_names[name]) {
      const SafetensorsTensor* w = ckpt.Find("model.safetensors", pname);
      if (w == nullptr) {
        return absl::DataLossError(absl::StrCat(dir, "/model.safetensors: no tensor ", pname));
      }
      LOOM_ASSIGN_OR_RETURN(at::Tensor wt, SafetensorsToTensor(*w));
      g.master.push_back(wt);
      at::Tensor m, v;
      if (g.adam_step > 0) {
        const SafetensorsTensor* mt = ckpt.Find("optimizer.safetensors", "exp_avg/" + pname);
        const SafetensorsTensor* vt = ckpt.Find("optimizer.safetensors", "exp_avg_sq/" + pname);
        if (mt == nullptr || vt == nullptr) {
          return absl::DataLossError(absl::StrCat(dir, "/optimizer.safetensors: no AdamW state for ",
                                                  pname));
        }
        LOOM_ASSIGN_OR_RETURN(m, SafetensorsToTensor(*mt));
        LOOM_ASSIGN_OR_RETURN(v, SafetensorsToTensor(*vt));
      }
      g.exp_avg.push_back(m);
      g.exp_avg_sq.push_back(v);
    }
    groups.push_back(std::move(g));
  }
  LOOM_RETURN_IF_ERROR(s.dp->LoadTrainingState(groups));
  // This rank's file; a rank that did not exist in the old world takes rank 0's (the states
  // are identical across ranks: same seeds, same draws).
  std::string own = RankFileName(s.comm->rank());
  if (ckpt.files.count(own) == 0) own = RankFileName(0);
  const SafetensorsFile& rf = ckpt.files.at(own);
  if (const SafetensorsTensor* g = rf.Find("torch_cpu_generator")) {
    at::Tensor st = at::empty({static_cast<int64_t>(g->data.size())}, at::kByte);
    std::memcpy(st.data_ptr(), g->data.data(), g->data.size());
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(st);
  }
  for (size_t i = 0; i < s.guided_layers.size(); ++i) {
    const SafetensorsTensor* r = rf.Find(absl::StrCat("self_guided/", i, "/rng"));
    const SafetensorsTensor* n = rf.Find(absl::StrCat("self_guided/", i, "/skips_uses"));
    if (r == nullptr || n == nullptr || !s.guided_layers[i]->SetRngState(r->data)) {
      return absl::DataLossError(absl::StrCat(dir, "/", own, ": self-guided state of layer ", i,
                                              " is missing or invalid"));
    }
    const std::vector<int64_t> su = Int64Values(*n);
    s.guided_layers[i]->SetGuideCounters(su.at(0), su.at(1));
  }
  if (const SafetensorsTensor* t = rf.Find("logging/interval_steps")) {
    s.resume_interval_steps = Int64Values(*t).at(0);
  }
  if (const SafetensorsTensor* t = rf.Find("logging/interval_loss")) {
    LOOM_ASSIGN_OR_RETURN(at::Tensor l, SafetensorsToTensor(*t));
    s.resume_interval_loss = l.item<double>();
  }
  if (const SafetensorsTensor* t = rf.Find("skipped_steps")) s.skipped_steps = Int64Values(*t).at(0);
  s.start_step = step;
  s.last_checkpoint = dir;
  // metrics.jsonl: records after the checkpoint came from the lost part of the run.
  if (s.comm->rank() == 0 && FileExists(s.metrics_path)) {
    LOOM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(s.metrics_path));
    std::string kept;
    for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
      absl::StatusOr<Json> rec = Json::Parse(line);
      const Json* rec_step = rec.ok() ? rec->Find("step") : nullptr;
      if (rec_step != nullptr && rec_step->as_int64() > step) {
        continue;
      }
      absl::StrAppend(&kept, line, "\n");
    }
    LOOM_RETURN_IF_ERROR(WriteFileAtomically(s.metrics_path, kept));
  }
  return s.comm->Barrier();
}

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
      "MFU peak %.0f GFLOP/s%s",
      c.name(), HumanCount(result.num_parameters), c.model().num_layers(), c.model().d_model(),
      c.model().vocab_size(), t.seq_len(), t.global_batch_size(), t.micro_batch_size(),
      HumanCount(tokens_per_step), total_steps,
      s.train_data ? HumanCount(s.train_data->num_tokens()) : "-",
      s.val_data ? HumanCount(s.val_data->num_tokens()) : (s.lra ? "-" : "no"),
      at::get_num_threads(),
      world > 1 ? absl::StrFormat(" x %d ranks (%s, ZeRO-%d)", world, s.comm->backend(),
                                  c.optimizer().zero_stage())
                : std::string(),
      s.peak_flops / 1e9, c.logging().peak_flops() > 0 ? " (given)" : " (measured CPU matmul)"));

  // The resolved model and the run's compute, in one line (the full config is
  // run_dir/config.textproto).
  {
    const ModelConfig& m = c.model();
    std::string mixer = m.mixer().type();
    if (mixer == "attention") {
      mixer = absl::StrFormat("attention %d heads / %d kv", m.mixer().num_heads(),
                              m.mixer().num_kv_heads());
    } else if (mixer == "s4" || mixer == "s4d") {
      mixer = absl::StrFormat("%s N=%d %s", mixer, m.mixer().s4().d_state(), m.mixer().s4().init());
    }
    std::string ffn = m.ffn().type();
    if (ffn == "lowrank" || ffn == "blockdense") ffn += absl::StrFormat(" R=%d", m.ffn().rank());
    if (ffn == "blockdense" || ffn == "blockshuffle") ffn += absl::StrFormat(" B=%d", m.ffn().nblocks());
    progress.Line(absl::StrFormat(
        "model: %s mixer, %s FFN%s, %s%s%s | %.3g training FLOPs planned | ranks: %d on %s "
        "(rank 0 writes %s)",
        mixer, ffn, m.ffn().type() == "none" ? "" : absl::StrFormat(" (hidden %d)", m.ffn().hidden_dim()),
        m.dtype(), m.bidirectional() ? ", bidirectional" : "",
        c.schedule().self_guided().enabled() ? ", self-guided" : "", ComputeRunFlops(c).train_flops,
        world, s.comm->backend(), s.run_dir));
  }
  if (s.lra) progress.Line(s.lra->Describe());
  // Evaluation batches are dealt round-robin to the ranks; the sum is all-reduced.
  auto evaluate = [&]() -> absl::StatusOr<double> {
    if (s.lra) {
      at::NoGradGuard no_grad;
      s.model->eval();
      absl::StatusOr<LraTask::EvalResult> val =
          s.lra->Evaluate(*s.model, "val", t.eval_batches(), *s.comm);
      absl::StatusOr<LraTask::EvalResult> test =
          val.ok() ? s.lra->Evaluate(*s.model, "test", t.eval_batches(), *s.comm) : val;
      s.model->train();
      if (!test.ok()) return test.status();
      s.val_accuracy = val->accuracy;
      s.test_accuracy = test->accuracy;
      return val->loss;
    }
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
  if (rank == 0 && c.logging().tensorboard()) {
    LOOM_ASSIGN_OR_RETURN(s.tensorboard, TensorBoardWriter::Open(s.run_dir));
  }
  auto tb_scalar = [&](const std::string& tag, double value, int64_t step) -> absl::Status {
    if (!s.tensorboard || !std::isfinite(value)) return absl::OkStatus();
    return s.tensorboard->AddScalar(tag, value, step);
  };
  const int64_t histogram_every =
      c.logging().histogram_every() == 0 ? t.eval_every() : c.logging().histogram_every();
  auto tb_histograms = [&](int64_t step) -> absl::Status {
    if (!s.tensorboard || histogram_every <= 0) return absl::OkStatus();
    at::NoGradGuard no_grad;
    for (const auto& item : s.model->named_parameters()) {
      const at::Tensor v = item.value().detach().to(at::kFloat).contiguous().view(-1);
      if (v.numel() == 0) continue;
      std::vector<float> values(v.data_ptr<float>(), v.data_ptr<float>() + v.numel());
      LOOM_RETURN_IF_ERROR(s.tensorboard->AddHistogram("weights/" + item.key(), values, step));
    }
    return s.tensorboard->Flush();
  };
  auto log_eval = [&](int64_t step, double val_loss) -> absl::Status {
    if (rank != 0) return absl::OkStatus();
    LOOM_RETURN_IF_ERROR(tb_scalar("val/loss", val_loss, step));
    if (s.lra) {
      LOOM_RETURN_IF_ERROR(tb_scalar("val/accuracy", s.val_accuracy, step));
      LOOM_RETURN_IF_ERROR(tb_scalar("test/accuracy", s.test_accuracy, step));
    } else {
      LOOM_RETURN_IF_ERROR(tb_scalar("val/ppl", std::exp(val_loss), step));
    }
    if (s.tensorboard) LOOM_RETURN_IF_ERROR(s.tensorboard->Flush());
    Json rec = Json::MakeObject();
    rec["step"] = step;
    rec["tokens"] = step * tokens_per_step;
    rec["val_loss"] = val_loss;
    if (s.lra) {
      rec["val_accuracy"] = s.val_accuracy;
      rec["test_accuracy"] = s.test_accuracy;
      LOOM_RETURN_IF_ERROR(AppendLine(s.metrics_path, rec.Dump()));
      progress.Line(absl::StrFormat("eval  step %d: val_loss %.4f, val_accuracy %.4f, "
                                    "test_accuracy %.4f", step, val_loss, s.val_accuracy,
                                    s.test_accuracy));
      return absl::OkStatus();
    }
    rec["val_ppl"] = std::exp(val_loss);
    LOOM_RETURN_IF_ERROR(AppendLine(s.metrics_path, rec.Dump()));
    progress.Line(absl::StrFormat("eval  step %d: val_loss %.4f, val_ppl %.2f", step, val_loss,
                                  std::exp(val_loss)));
    return absl::OkStatus();
  };

  const auto run_start = std::chrono::steady_clock::now();
  double train_seconds = 0;
  if (s.start_step > 0) {
    result.resumed_from = s.start_step;
    if (rank == 0) {  // sweeps and users see where a run was resumed
      Json ev = Json::MakeObject();
      ev["event"] = "resumed";
      ev["step"] = s.start_step;
      ev["checkpoint"] = s.last_checkpoint;
      LOOM_RETURN_IF_ERROR(AppendLine(s.metrics_path, ev.Dump()));
    }
    progress.Line(absl::StrFormat("resumed from %s (step %d of %d)", s.last_checkpoint,
                                  s.start_step, total_steps));
  } else if (s.val_loader || s.lra) {
    LOOM_ASSIGN_OR_RETURN(result.initial_val_loss, evaluate());
    LOOM_RETURN_IF_ERROR(log_eval(0, result.initial_val_loss));
  }

  const int64_t accum = s.lra ? s.lra->micro_batches_per_step()
                              : s.train_loader->micro_batches_per_step();
  double interval_loss = s.resume_interval_loss;
  int64_t interval_steps = s.resume_interval_steps;
  double interval_seconds = 0;
  const int64_t every = c.checkpoint().every_steps();
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
  for (int64_t step = s.start_step; step < total_steps; ++step) {
    const auto step_start = std::chrono::steady_clock::now();
    const double lr = schedule.At(step);
    s.dp->ZeroGrad();
    double step_loss = 0;
    // fixedflop: the appended steps re-read the guided phase's data from its start.
    const int64_t data_step = step < t.max_steps() ? step : step - t.max_steps();
    for (int64_t m = 0; m < accum; ++m) {
      // Gradient buckets start their collectives during the last micro-batch's backward.
      s.dp->SetLastMicroBatch(m == accum - 1);
      at::Tensor loss;
      if (s.lra) {
        loss = s.lra->TrainLoss(*s.model, data_step, m);
      } else {
        data::LmBatch b = s.train_loader->Get(data_step, m);
        loss = s.model->Loss(b.inputs, b.targets);
      }
      (loss / static_cast<double>(accum)).backward();
      step_loss += loss.item<double>() / static_cast<double>(accum);
    }
    LOOM_RETURN_IF_ERROR(s.dp->FinishGradientSync());
    // Fault injection for tests: a NaN gradient in the step with this 0-based index.
    if (const char* poison = std::getenv("LOOM_TEST_NAN_GRAD_AT_STEP");
        poison != nullptr && std::atoll(poison) == step) {
      s.dp->PoisonGradientForTest();
    }
    if (world > 1) {
      LOOM_ASSIGN_OR_RETURN(step_loss, parallel::AllReduceScalar(*s.comm, step_loss));
      step_loss /= world;
    }
    LOOM_ASSIGN_OR_RETURN(const double grad_norm, s.dp->ClipGradNorm(c.optimizer().grad_clip()));
    const bool finite = std::isfinite(step_loss) && std::isfinite(grad_norm);
    if (!finite && c.optimizer().nonfinite_policy() == "halt") {
      progress.Finish();
      std::string culprit = "no single gradient (the loss itself)";
      if (auto bad = s.dp->FirstNonFiniteGradient()) {
        culprit = "gradient of " + s.group_param_names[bad->first][bad->second];
      }
      return absl::InternalError(absl::StrFormat(
          "non-finite %s in step %d (loss %g, grad_norm %g); first non-finite: %s. Stopped "
          "before the optimizer step, no checkpoint written; last good checkpoint: %s. Lower "
          "optimizer.lr, check the data, or set optimizer.nonfinite_policy=skip.",
          std::isfinite(step_loss) ? "gradient norm" : "loss", step + 1, step_loss, grad_norm,
          culprit, s.last_checkpoint.empty() ? "none" : s.last_checkpoint));
    }
    if (finite) {
      LOOM_RETURN_IF_ERROR(s.dp->Step(lr));
    } else {
      ++s.skipped_steps;  // policy "skip": no update from this step
      progress.Line(absl::StrFormat("step %d: non-finite loss or gradient norm, update skipped "
                                    "(%d so far)", step + 1, s.skipped_steps));
    }
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
    if (log_now) {
      const double mean_loss = interval_loss / static_cast<double>(interval_steps);
      result.final_train_loss = mean_loss;
    }
    if (log_now && rank == 0) {  // one writer
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
      rec["mfu"] = s.peak_flops > 0 && interval_seconds > 0
                       ? (flops_done - CumulativeTrainingFlops(c, done - interval_steps)) /
                             interval_seconds / s.peak_flops
                       : 0.0;
      if (s.skipped_steps > 0) rec["skipped_steps"] = s.skipped_steps;
      LOOM_RETURN_IF_ERROR(AppendLine(s.metrics_path, rec.Dump()));
      LOOM_RETURN_IF_ERROR(tb_scalar("train/loss", mean_loss, done));
      LOOM_RETURN_IF_ERROR(tb_scalar("train/lr", lr, done));
      LOOM_RETURN_IF_ERROR(tb_scalar("train/grad_norm", grad_norm, done));
      if (!s.guided_layers.empty()) LOOM_RETURN_IF_ERROR(tb_scalar("train/alpha", step_alpha, done));
      LOOM_RETURN_IF_ERROR(tb_scalar("perf/tokens_per_s", tok_s, done));
      LOOM_RETURN_IF_ERROR(tb_scalar("perf/mfu", rec["mfu"].as_double(), done));
      if (histogram_every > 0 && done % histogram_every == 0) {
        LOOM_RETURN_IF_ERROR(tb_histograms(done));
      }
    }
    if (log_now) {
      interval_loss = 0;
      interval_steps = 0;
      interval_seconds = 0;
    }
    const bool last = done == total_steps;
    if ((s.val_loader || s.lra) && ((t.eval_every() > 0 && done % t.eval_every() == 0) || last)) {
      LOOM_ASSIGN_OR_RETURN(const double v, evaluate());
      result.final_val_loss = v;
      result.final_val_accuracy = s.val_accuracy;
      result.final_test_accuracy = s.test_accuracy;
      LOOM_RETURN_IF_ERROR(log_eval(done, v));
    }
    // A stop request on any rank stops every rank at the same step.
    bool stop = g_stop_requested.load();
    if (world > 1) {
      LOOM_ASSIGN_OR_RETURN(const double any, parallel::AllReduceScalar(*s.comm, stop ? 1.0 : 0.0,
                                                                       parallel::ReduceOp::kMax));
      stop = any > 0;
    }
    if ((every > 0 && (done % every == 0 || last)) || (stop && !last)) {
      LOOM_RETURN_IF_ERROR(SaveCheckpoint(done, interval_loss, interval_steps));
      progress.Line(absl::StrFormat("checkpoint: %s", s.last_checkpoint));
    }
    if (stop && !last) {
      progress.Line(absl::StrFormat("stop signal: checkpointed at step %d, exiting; the same "
                                    "command resumes from it", done));
      result.stopped_by_signal = true;
      result.steps = done;
      break;
    }
  }
  progress.Finish();
  result.skipped_steps = s.skipped_steps;
  result.last_checkpoint = s.last_checkpoint;
  if (result.stopped_by_signal) {
    result.tokens = result.steps * tokens_per_step;
    result.tokens_per_s = train_seconds > 0 ? static_cast<double>((result.steps - s.start_step) *
                                                                  tokens_per_step) / train_seconds
                                            : 0;
    result.total_flops = CumulativeTrainingFlops(c, result.steps);
    result.wall_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
    return result;
  }
  if (rank == 0) LOOM_RETURN_IF_ERROR(WriteFinalWeights(s));
  if (s.tensorboard) LOOM_RETURN_IF_ERROR(s.tensorboard->Flush());
  if (rank == 0 && c.logging().plot()) {
    const absl::Status plotted = PlotRunCurves({s.run_dir}, s.run_dir + "/curves.png");
    progress.Line(plotted.ok() ? absl::StrCat("curves: ", s.run_dir, "/curves.png")
                               : absl::StrCat("warning: no curves.png: ", plotted.message()));
  }
  result.steps = total_steps;
  result.tokens = total_steps * tokens_per_step;
  result.tokens_per_s =
      train_seconds > 0
          ? static_cast<double>((total_steps - s.start_step) * tokens_per_step) / train_seconds
          : 0;
  result.total_flops = ComputeRunFlops(c).train_flops;
  result.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
  return result;
}

}  // namespace loom
