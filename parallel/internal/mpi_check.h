// Checked MPI calls: an MPI error (MPI_ERRORS_RETURN is set on every communicator Loom uses)
// becomes an absl::Status naming the call, the file and the line, and MPI's own error string.
#ifndef LOOM_PARALLEL_INTERNAL_MPI_CHECK_H_
#define LOOM_PARALLEL_INTERNAL_MPI_CHECK_H_

#include <mpi.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace loom::parallel::internal {

inline absl::Status MpiStatus(int code, const char* call, const char* file, int line) {
  if (code == MPI_SUCCESS) return absl::OkStatus();
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) len = 0;
  return absl::InternalError(absl::StrCat("MPI error in ", call, " at ", file, ":", line, ": ",
                                          std::string(text, static_cast<size_t>(len))));
}

}  // namespace loom::parallel::internal

// Evaluates an MPI call; returns a Status (not ok on failure).
#define LOOM_MPI_STATUS(call) \
  ::loom::parallel::internal::MpiStatus((call), #call, __FILE__, __LINE__)

#endif  // LOOM_PARALLEL_INTERNAL_MPI_CHECK_H_
