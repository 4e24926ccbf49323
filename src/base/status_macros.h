// Status propagation macros used across Keyward.  They replace the
// `if (!x.ok()) return x.status();` chains the style guide warns against.
#ifndef KEYWARD_BASE_STATUS_MACROS_H_
#define KEYWARD_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Evaluates `expr` (an absl::Status) and returns it from the enclosing
// function if it is not OK.
#define KW_RETURN_IF_ERROR(expr) \
  KW_RETURN_IF_ERROR_IMPL_(KW_STATUS_CONCAT_(_kw_status_, __COUNTER__), expr)
#define KW_RETURN_IF_ERROR_IMPL_(status, expr)              \
  do {                                                      \
    ::absl::Status status = (expr);                         \
    if (ABSL_PREDICT_FALSE(!status.ok())) return status;    \
  } while (0)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status from
// the enclosing function, otherwise moves the value into `lhs`, which may be
// a declaration (`auto x`) or an existing variable.
#define KW_ASSIGN_OR_RETURN(lhs, rexpr) \
  KW_ASSIGN_OR_RETURN_IMPL_(KW_STATUS_CONCAT_(_kw_statusor_, __COUNTER__), lhs, \
                            rexpr)

#define KW_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                              \
  if (ABSL_PREDICT_FALSE(!statusor.ok())) {             \
    return std::move(statusor).status();                \
  }                                                     \
  lhs = std::move(statusor).value()

#define KW_STATUS_CONCAT_INNER_(a, b) a##b
#define KW_STATUS_CONCAT_(a, b) KW_STATUS_CONCAT_INNER_(a, b)

#endif  // KEYWARD_BASE_STATUS_MACROS_H_
