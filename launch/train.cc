// `train`: trains the model a run config describes.
//
//   train --config=launch/configs/lm/tiny.textproto [--set=a.b.c=value]... [--run_dir=DIR]
//   train --config=... --dry_run      # per-rank memory plan for the configured world size
//
// --set may be repeated; values may contain commas. Without --run_dir the run goes to
// runs/<name>-<date>-<time>. Errors are printed as one message and exit non-zero.
//
// Data-parallel: `mpirun -np N train ...` (or `srun`) runs N ranks that train one model; pass
// the same --run_dir to every rank (rank 0 writes it). An error on any rank ends the whole job
// (MPI_Abort) with the message of the rank that failed.
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/config.h"
#include "core/file_io.h"
#include "core/malloc_tuning.h"
#include "core/memory_plan.h"
#include "core/tensor_memory.h"
#include "core/trainer.h"
#include "parallel/communicator.h"
#include "parallel/world.h"

ABSL_FLAG(std::string, config, "", "Run config (text proto), e.g. launch/configs/lm/tiny.textproto");
ABSL_FLAG(bool, dry_run, false,
          "Print the per-rank memory plan (parameters, gradients, optimizer state, activations) "
          "for this config and world size, then exit without training");
ABSL_FLAG(std::string, run_dir, "",
          "Run directory (config.textproto, metrics.jsonl); default runs/<name>-<date>-<time>");

namespace {

std::string DefaultRunDir(const std::string& name) {
  std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%d-%H%M%S", std::localtime(&now));
  return absl::StrCat("runs/", name, "-", buf);
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "train: error: %s\n", std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  loom::ConfigureAllocatorForTraining();
  loom::InstallTensorMemoryCounter();
  loom::InstallStopSignalHandlers();
  absl::SetProgramUsageMessage(
      "trains a model: train --config=FILE [--set=a.b.c=value]... [--run_dir=DIR]");
  absl::StatusOr<std::vector<std::string>> set_flags = loom::ExtractOverrideFlags(&argc, argv);
  if (!set_flags.ok()) return Fail(set_flags.status());
  const std::vector<std::string>& overrides = *set_flags;
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("unexpected argument \"", rest[1], "\" (flags are --config, --set, --run_dir)")));
  }
  const std::string config_path = absl::GetFlag(FLAGS_config);
  if (config_path.empty()) {
    return Fail(absl::InvalidArgumentError(
        "--config is required, e.g. --config=launch/configs/lm/tiny.textproto"));
  }
  absl::StatusOr<loom::RunConfig> config = loom::LoadRunConfig(loom::ResolveInvocationPath(config_path), overrides);
  if (!config.ok()) return Fail(config.status());
  absl::StatusOr<loom::parallel::WorldInfo> world = loom::parallel::DiscoverWorld();
  if (!world.ok()) return Fail(world.status());
  if (absl::GetFlag(FLAGS_dry_run)) {
    // The world size the run is planned for: parallel.expected_world_size, else the launcher's.
    const int planned = config->parallel().expected_world_size() > 0
                            ? config->parallel().expected_world_size()
                            : world->world_size;
    absl::StatusOr<loom::MemoryPlan> plan =
        loom::PlanMemory(*config, planned, loom::CurrentRssBytes());
    if (!plan.ok()) return Fail(plan.status());
    if (world->rank == 0) std::printf("%s", plan->ToTable().c_str());
    return 0;
  }
  std::string run_dir = absl::GetFlag(FLAGS_run_dir);
  if (run_dir.empty()) {
    if (world->world_size > 1) {
      return Fail(absl::InvalidArgumentError(
          "--run_dir is required with several ranks (each rank would pick its own default)"));
    }
    run_dir = DefaultRunDir(config->name());
  }
  loom::parallel::CommunicatorOptions comm_options;
  comm_options.backend = config->parallel().backend();
  comm_options.nccl_id_method = config->parallel().nccl_id_method();
  comm_options.nccl_id_dir = config->parallel().nccl_id_dir();
  comm_options.collective_timeout_s = config->parallel().collective_timeout_s();
  absl::StatusOr<std::unique_ptr<loom::parallel::Communicator>> comm =
      loom::parallel::CreateCommunicator(*world, comm_options);
  if (!comm.ok()) return Fail(comm.status());
  // Where the ranks run (hosts, local ranks), when there are several.
  if ((*comm)->world_size() > 1 && (*comm)->rank() == 0 && !(*comm)->Layout().empty()) {
    std::printf("loom: %s\n", (*comm)->Layout().c_str());
    std::fflush(stdout);
  }
  // With several ranks a failure must end all of them (the others would wait in a collective).
  auto fail_job = [&](const absl::Status& status) -> int {
    if ((*comm)->world_size() > 1) {
      (*comm)->Abort(absl::StrCat("train: error: ", status.message()), 1);
    }
    return Fail(status);
  };

  try {
    auto trainer = loom::Trainer::Create(*config, run_dir, comm->get());
    if (!trainer.ok()) return fail_job(trainer.status());
    auto result = (*trainer)->Run();
    if (!result.ok()) return fail_job(result.status());
    if ((*comm)->rank() != 0) return 0;
    const auto& r = *result;
    if (r.resumed_from >= 0) std::printf("resumed from step %lld\n", static_cast<long long>(r.resumed_from));
    if (r.stopped_by_signal) {
      std::printf("stopped by signal after step %lld; checkpoint %s; run the same command to "
                  "resume\n", static_cast<long long>(r.steps), r.last_checkpoint.c_str());
      return 0;
    }
    std::printf(
        "done: %lld steps, %lld tokens in %.1f s (%.0f tokens/s while training)\n"
        "  train loss %.4f -> %.4f (ppl %.1f)\n",
        static_cast<long long>(r.steps), static_cast<long long>(r.tokens), r.wall_seconds,
        r.tokens_per_s, r.first_train_loss, r.final_train_loss, std::exp(r.final_train_loss));
    if (!std::isnan(r.final_test_accuracy)) {
      std::printf("  val loss   %.4f -> %.4f | val accuracy %.4f, test accuracy %.4f\n",
                  r.initial_val_loss, r.final_val_loss, r.final_val_accuracy,
                  r.final_test_accuracy);
    } else if (!std::isnan(r.final_val_loss)) {
      std::printf("  val loss   %.4f -> %.4f (ppl %.1f -> %.1f)\n", r.initial_val_loss,
                  r.final_val_loss, std::exp(r.initial_val_loss), std::exp(r.final_val_loss));
    }
    std::printf(
        "  %.3g training FLOPs | peak memory: tensors %.1f MiB (%lld bytes), process RSS %.1f "
        "MiB | run directory: %s\n",
        r.total_flops, static_cast<double>(loom::TensorMemoryPeakBytes()) / (1 << 20),
        static_cast<long long>(loom::TensorMemoryPeakBytes()),
        static_cast<double>(loom::PeakRssBytes()) / (1 << 20), run_dir.c_str());
    std::printf("  checkpoints: %s | final weights: %s/model.safetensors\n",
                r.last_checkpoint.empty() ? "none (checkpoint.every_steps is 0)"
                                          : r.last_checkpoint.c_str(),
                run_dir.c_str());
  } catch (const c10::Error& e) {
    return fail_job(absl::InternalError(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return fail_job(absl::InternalError(e.what()));
  }
  return 0;
}
