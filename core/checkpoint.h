// Checkpoint directories: writing, finding, verifying and reading them.
//
// Format (version 1). A run directory holds `checkpoints/step_NNNNNNNN/` (8-digit step), each:
//   model.safetensors        every parameter under its module-tree name, in master precision
//                            (float32, or float64 for float64 runs); loadable by the Python
//                            `safetensors` package and PyTorch. Dropped self-guided guides are
//                            absent.
//   optimizer.safetensors    AdamW state, unsharded, per parameter: "exp_avg/<name>",
//                            "exp_avg_sq/<name>", and "step/<group>" (int64) — so a run can
//                            resume on another world size or ZeRO stage.
//   rank_RRRRR.safetensors   what each rank holds of its own: the torch CPU generator state, the
//                            self-guided reduce_flop generators and counters, the data position
//                            (optimizer step) and the logging interval.
//   manifest.pb              CheckpointManifest (core/checkpoint.proto): resolved config, step,
//                            tokens, world size, ZeRO stage, Loom version, the size and CRC32C
//                            of every file and the CRC32C of every tensor.
//   DONE                     written last, by atomic rename. A directory without it is
//                            incomplete (a kill during the write) and is ignored on resume.
// Every file is written atomically (temporary + fsync + rename). Reading verifies the manifest's
// sizes and checksums and the safetensors headers, and refuses any mismatch naming the file (and
// tensor) at fault.
//
//   LOOM_RETURN_IF_ERROR(WriteCheckpointFile(dir, "model.safetensors", tensors, metadata));
//   LOOM_RETURN_IF_ERROR(FinalizeCheckpoint(dir, manifest));          // checksums, then DONE
//   LOOM_ASSIGN_OR_RETURN(std::optional<std::string> dir, FindLatestCheckpoint(run_dir));
//   LOOM_ASSIGN_OR_RETURN(LoadedCheckpoint ckpt, ReadCheckpoint(*dir));
#ifndef LOOM_CORE_CHECKPOINT_H_
#define LOOM_CORE_CHECKPOINT_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/checkpoint.pb.h"
#include "core/safetensors.h"

namespace loom {

inline constexpr int kCheckpointFormatVersion = 1;
inline constexpr char kLoomVersion[] = "0.4.0";

std::string CheckpointDirName(int64_t step);  // "step_00000120"
std::string RankFileName(int rank);           // "rank_00003.safetensors"

// Writes one safetensors file into the checkpoint directory (created if needed), atomically.
absl::Status WriteCheckpointFile(const std::string& dir, const std::string& name,
                                 const std::vector<SafetensorsTensor>& tensors,
                                 const std::map<std::string, std::string>& metadata);

// Fills the manifest's file and tensor checksums from every file now in `dir`, writes
// manifest.pb, then DONE. Call once all files (every rank's) are written.
absl::Status FinalizeCheckpoint(const std::string& dir, CheckpointManifest manifest);

// The newest complete checkpoint (with DONE) under run_dir/checkpoints, if any.
absl::StatusOr<std::optional<std::string>> FindLatestCheckpoint(const std::string& run_dir);
// Steps of the complete checkpoints, oldest first.
absl::StatusOr<std::vector<int64_t>> ListCheckpointSteps(const std::string& run_dir);

struct LoadedCheckpoint {
  std::string dir;
  CheckpointManifest manifest;
  std::map<std::string, SafetensorsFile> files;  // by file name
  const SafetensorsTensor* Find(const std::string& file, const std::string& tensor) const;
};

// Reads and verifies a checkpoint directory (DONE present, manifest parsed, every file's size
// and CRC32C and every tensor's CRC32C as recorded).
absl::StatusOr<LoadedCheckpoint> ReadCheckpoint(const std::string& dir);
// Only the checks, returning every problem found (empty: the checkpoint is intact).
std::vector<std::string> VerifyCheckpoint(const std::string& dir);

// Deletes complete checkpoints beyond the newest `keep_last` (0 keeps all) and incomplete
// directories older than the newest complete one.
absl::Status PruneCheckpoints(const std::string& run_dir, int keep_last);

// at::Tensor <-> safetensors (F64, F32, BF16, I64, U8; contiguous copies).
SafetensorsTensor TensorToSafetensors(const std::string& name, const at::Tensor& t);
absl::StatusOr<at::Tensor> SafetensorsToTensor(const SafetensorsTensor& t);

}  // namespace loom

#endif  // LOOM_CORE_CHECKPOINT_H_
