// Status propagation macros for functions returning absl::Status or
// absl::StatusOr<T>.
//
//   absl::Status Load(const std::string& path) {
//     LOOM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
//     LOOM_RETURN_IF_ERROR(Validate(text));
//     return absl::OkStatus();
//   }
//
// Both macros evaluate their expression exactly once. `lhs` of
// LOOM_ASSIGN_OR_RETURN may be a declaration (`auto x`, `std::string s`) or an
// existing lvalue; the value is moved out of the StatusOr.
#ifndef LOOM_CORE_STATUS_MACROS_H_
#define LOOM_CORE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define LOOM_STATUS_MACROS_CONCAT_INNER_(a, b) a##b
#define LOOM_STATUS_MACROS_CONCAT_(a, b) LOOM_STATUS_MACROS_CONCAT_INNER_(a, b)

#define LOOM_RETURN_IF_ERROR(expr)                                       \
  do {                                                                   \
    ::absl::Status loom_status_macro_status_ = (expr);                   \
    if (!loom_status_macro_status_.ok()) return loom_status_macro_status_; \
  } while (false)

#define LOOM_ASSIGN_OR_RETURN(lhs, rexpr)                                   \
  LOOM_ASSIGN_OR_RETURN_IMPL_(                                              \
      LOOM_STATUS_MACROS_CONCAT_(loom_statusor_, __COUNTER__), lhs, rexpr)

#define LOOM_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // LOOM_CORE_STATUS_MACROS_H_
