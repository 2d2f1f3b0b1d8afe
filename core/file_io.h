// Small POSIX file helpers that report failures as absl::Status naming the
// path and the OS error.
//
//   LOOM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
//   LOOM_RETURN_IF_ERROR(MakeDirs(run_dir));
//   LOOM_RETURN_IF_ERROR(WriteFileAtomically(run_dir + "/x.json", text));
//   LOOM_RETURN_IF_ERROR(AppendLine(run_dir + "/metrics.jsonl", json_line));
//
// WriteFileAtomically never leaves a partially written `path`: readers see
// either the old file or the complete new one.
#ifndef LOOM_CORE_FILE_IO_H_
#define LOOM_CORE_FILE_IO_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace loom {

// Reads the whole file. NotFound if it does not exist.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// Writes `contents` to `path.tmp.<pid>` in the same directory, fsyncs it,
// renames it over `path` and fsyncs the directory. The temporary file is
// removed on failure.
absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view contents);

// Appends `line` followed by '\n' with O_APPEND (creating the file if needed),
// so concurrent appenders do not interleave within a line.
absl::Status AppendLine(const std::string& path, absl::string_view line);

// Creates `path` and any missing parents (mkdir -p). OK if it already exists
// as a directory.
absl::Status MakeDirs(const std::string& path);

// True if `path` names an existing file or directory.
bool FileExists(const std::string& path);

// A path the user typed on the command line. Under `bazel run` the process runs in its runfiles
// tree, so a relative path that does not exist there is resolved against
// $BUILD_WORKING_DIRECTORY (where the command was typed); otherwise `path` is returned as is.
std::string ResolveInvocationPath(const std::string& path);

}  // namespace loom

#endif  // LOOM_CORE_FILE_IO_H_
