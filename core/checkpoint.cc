#include "core/checkpoint.h"

#include <ATen/Functions.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/checkpoint_manifest.h"
#include "core/crc32c.h"
#include "core/file_io.h"
#include "core/status_macros.h"

namespace loom {
namespace {

constexpr char kManifest[] = "manifest.pb";
constexpr char kDone[] = "DONE";

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// step_NNNNNNNN -> N; -1 for anything else.
int64_t StepOf(const std::string& name) {
  int64_t step = -1;
  if (name.size() != 13 || !absl::StartsWith(name, "step_")) return -1;
  if (!absl::SimpleAtoi(name.substr(5), &step)) return -1;
  return step;
}

absl::Status RemoveTree(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return absl::OkStatus();
  if (S_ISDIR(st.st_mode)) {
    for (const std::string& name : ListDir(path)) {
      LOOM_RETURN_IF_ERROR(RemoveTree(path + "/" + name));
    }
    if (rmdir(path.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("cannot remove ", path, ": ", std::strerror(errno)));
    }
  } else if (unlink(path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot remove ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

const char* DtypeName(at::ScalarType t) {
  switch (t) {
    case at::kDouble: return "F64";
    case at::kFloat: return "F32";
    case at::kBFloat16: return "BF16";
    case at::kLong: return "I64";
    case at::kByte: return "U8";
    default: return nullptr;
  }
}

}  // namespace

std::string CheckpointDirName(int64_t step) { return absl::StrFormat("step_%08d", step); }
std::string RankFileName(int rank) { return absl::StrFormat("rank_%05d.safetensors", rank); }

SafetensorsTensor TensorToSafetensors(const std::string& name, const at::Tensor& t_in) {
  at::Tensor t = t_in.detach().contiguous();
  SafetensorsTensor out;
  out.name = name;
  const char* dtype = DtypeName(t.scalar_type());
  TORCH_CHECK(dtype != nullptr, "checkpoint: unsupported dtype ", t.scalar_type(), " for ", name);
  out.dtype = dtype;
  out.shape = t.sizes().vec();
  out.data.assign(static_cast<const char*>(t.data_ptr()), t.nbytes());
  return out;
}

absl::StatusOr<at::Tensor> SafetensorsToTensor(const SafetensorsTensor& t) {
  at::ScalarType type;
  if (t.dtype == "F64") {
    type = at::kDouble;
  } else if (t.dtype == "F32") {
    type = at::kFloat;
  } else if (t.dtype == "BF16") {
    type = at::kBFloat16;
  } else if (t.dtype == "I64") {
    type = at::kLong;
  } else if (t.dtype == "U8") {
    type = at::kByte;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor ", t.name, ": unsupported dtype ", t.dtype));
  }
  at::Tensor out = at::empty(t.shape, at::TensorOptions().dtype(type));
  if (static_cast<size_t>(out.nbytes()) != t.data.size()) {
    return absl::DataLossError(absl::StrCat("tensor ", t.name, ": ", t.data.size(),
                                            " bytes for shape of ", out.nbytes()));
  }
  std::memcpy(out.data_ptr(), t.data.data(), t.data.size());
  return out;
}

absl::Status WriteCheckpointFile(const std::string& dir, const std::string& name,
                                 const std::vector<SafetensorsTensor>& tensors,
                                 const std::map<std::string, std::string>& metadata) {
  LOOM_RETURN_IF_ERROR(MakeDirs(dir));
  return WriteSafetensors(dir + "/" + name, tensors, metadata);
}

absl::Status FinalizeCheckpoint(const std::string& dir, CheckpointManifest manifest) {
  manifest.clear_files();
  manifest.clear_tensors();
  manifest.set_format_version(kCheckpointFormatVersion);
  manifest.set_loom_version(kLoomVersion);
  char when[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  manifest.set_created_utc(when);
  for (const std::string& name : ListDir(dir)) {
    if (name == kManifest || name == kDone || absl::StrContains(name, ".tmp.")) continue;
    LOOM_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(dir + "/" + name));
    FileChecksum* f = manifest.add_files();
    f->set_name(name);
    f->set_bytes(static_cast<int64_t>(bytes.size()));
    f->set_crc32c(Crc32c(bytes.data(), bytes.size()));
    if (absl::EndsWith(name, ".safetensors")) {
      LOOM_ASSIGN_OR_RETURN(SafetensorsFile st, ParseSafetensors(bytes, dir + "/" + name));
      for (const SafetensorsTensor& t : st.tensors) {
        TensorChecksum* c = manifest.add_tensors();
        c->set_file(name);
        c->set_name(t.name);
        c->set_crc32c(Crc32c(t.data.data(), t.data.size()));
      }
    }
  }
  std::string serialized;
  if (!manifest.SerializeToString(&serialized)) {
    return absl::InternalError("cannot serialize the checkpoint manifest");
  }
  LOOM_RETURN_IF_ERROR(WriteFileAtomically(dir + "/" + kManifest, serialized));
  // Fault injection for tests: die between the files and DONE, as a kill mid-write would.
  if (const char* crash = std::getenv("LOOM_TEST_CRASH_BEFORE_DONE");
      crash != nullptr && manifest.step() == std::atoll(crash)) {
    std::fprintf(stderr, "LOOM_TEST_CRASH_BEFORE_DONE: exiting before %s/DONE\n", dir.c_str());
    std::_Exit(3);
  }
  return WriteFileAtomically(dir + "/" + kDone, absl::StrCat("step ", manifest.step(), "\n"));
}

absl::StatusOr<std::vector<int64_t>> ListCheckpointSteps(const std::string& run_dir) {
  std::vector<int64_t> steps;
  const std::string root = run_dir + "/checkpoints";
  for (const std::string& name : ListDir(root)) {
    const int64_t step = StepOf(name);
    if (step >= 0 && FileExists(root + "/" + name + "/" + kDone)) steps.push_back(step);
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

absl::StatusOr<std::optional<std::string>> FindLatestCheckpoint(const std::string& run_dir) {
  LOOM_ASSIGN_OR_RETURN(std::vector<int64_t> steps, ListCheckpointSteps(run_dir));
  if (steps.empty()) return std::optional<std::string>();
  return std::optional<std::string>(run_dir + "/checkpoints/" + CheckpointDirName(steps.back()));
}

const SafetensorsTensor* LoadedCheckpoint::Find(const std::string& file,
                                               const std::string& tensor) const {
  auto it = files.find(file);
  return it == files.end() ? nullptr : it->second.Find(tensor);
}

namespace {

// Reads, checks and (when `out` is given) keeps the files. Problems go to `problems`.
void CheckDir(const std::string& dir, std::vector<std::string>* problems,
              LoadedCheckpoint* out) {
  if (!FileExists(dir)) {
    problems->push_back(absl::StrCat(dir, ": no such checkpoint directory"));
    return;
  }
  if (!FileExists(dir + "/" + kDone)) {
    problems->push_back(absl::StrCat(dir, ": incomplete checkpoint (no DONE marker; the write "
                                          "was interrupted)"));
    return;
  }
  absl::StatusOr<std::string> bytes = ReadFileToString(dir + "/" + kManifest);
  if (!bytes.ok()) {
    problems->push_back(absl::StrCat(dir, "/", kManifest, ": ", bytes.status().message()));
    return;
  }
  absl::StatusOr<CheckpointManifest> parsed =
      ParseCheckpointManifest(*bytes, absl::StrCat(dir, "/", kManifest));
  if (!parsed.ok()) {
    problems->push_back(std::string(parsed.status().message()));
    return;
  }
  CheckpointManifest manifest = std::move(*parsed);
  if (manifest.format_version() != kCheckpointFormatVersion) {
    problems->push_back(absl::StrCat(dir, "/", kManifest, ": format version ",
                                     manifest.format_version(), ", this Loom reads ",
                                     kCheckpointFormatVersion));
    return;
  }
  std::map<std::string, uint32_t> tensor_crc;
  for (const TensorChecksum& t : manifest.tensors()) tensor_crc[t.file() + "\n" + t.name()] = t.crc32c();
  for (const FileChecksum& f : manifest.files()) {
    const std::string path = dir + "/" + f.name();
    absl::StatusOr<std::string> data = ReadFileToString(path);
    if (!data.ok()) {
      problems->push_back(absl::StrCat(path, ": missing (", data.status().message(), ")"));
      continue;
    }
    if (static_cast<int64_t>(data->size()) != f.bytes()) {
      problems->push_back(absl::StrCat(path, ": ", data->size(), " bytes, the manifest says ",
                                       f.bytes(), " (truncated or replaced)"));
      continue;
    }
    if (Crc32c(data->data(), data->size()) != f.crc32c()) {
      problems->push_back(absl::StrCat(path, ": CRC32C mismatch (the file is corrupt)"));
      continue;
    }
    if (!absl::EndsWith(f.name(), ".safetensors")) continue;
    absl::StatusOr<SafetensorsFile> st = ParseSafetensors(*data, path);
    if (!st.ok()) {
      problems->push_back(std::string(st.status().message()));
      continue;
    }
    for (const SafetensorsTensor& t : st->tensors) {
      auto it = tensor_crc.find(f.name() + "\n" + t.name);
      if (it == tensor_crc.end() || it->second != Crc32c(t.data.data(), t.data.size())) {
        problems->push_back(absl::StrCat(path, ": tensor ", t.name,
                                         it == tensor_crc.end() ? " is not in the manifest"
                                                                : " fails its CRC32C"));
      }
    }
    if (out != nullptr) out->files[f.name()] = std::move(*st);
  }
  if (out != nullptr) {
    out->dir = dir;
    out->manifest = std::move(manifest);
  }
}

}  // namespace

std::vector<std::string> VerifyCheckpoint(const std::string& dir) {
  std::vector<std::string> problems;
  CheckDir(dir, &problems, nullptr);
  return problems;
}

absl::StatusOr<LoadedCheckpoint> ReadCheckpoint(const std::string& dir) {
  std::vector<std::string> problems;
  LoadedCheckpoint out;
  CheckDir(dir, &problems, &out);
  if (!problems.empty()) {
    std::string all = problems.front();
    if (problems.size() > 1) absl::StrAppend(&all, " (and ", problems.size() - 1, " more)");
    return absl::DataLossError(all);
  }
  return out;
}

absl::Status PruneCheckpoints(const std::string& run_dir, int keep_last) {
  LOOM_ASSIGN_OR_RETURN(std::vector<int64_t> steps, ListCheckpointSteps(run_dir));
  if (steps.empty()) return absl::OkStatus();
  const std::string root = run_dir + "/checkpoints";
  const int64_t newest = steps.back();
  if (keep_last > 0) {
    for (size_t i = 0; i + keep_last < steps.size(); ++i) {
      LOOM_RETURN_IF_ERROR(RemoveTree(root + "/" + CheckpointDirName(steps[i])));
    }
  }
  for (const std::string& name : ListDir(root)) {
    const int64_t step = StepOf(name);
    if (step >= 0 && step < newest && !FileExists(root + "/" + name + "/" + kDone)) {
      LOOM_RETURN_IF_ERROR(RemoveTree(root + "/" + name));
    }
  }
  return absl::OkStatus();
}

}  // namespace loom
