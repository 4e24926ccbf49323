// Caller input quoted in an error message or an audit record: never
// unbounded, never a control character that could forge a log line.
#ifndef KEYWARD_BASE_BOUNDED_H_
#define KEYWARD_BASE_BOUNDED_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace keyward {

// At most `max` bytes of `s`, control characters replaced by '?', and the
// full size noted when cut: "abc...(70000 bytes)".
std::string Bounded(absl::string_view s, size_t max = 64);

}  // namespace keyward

#endif  // KEYWARD_BASE_BOUNDED_H_
