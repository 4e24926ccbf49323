// Whole-file reads for the places that need a file in memory at once.
#ifndef KEYWARD_BASE_FILE_H_
#define KEYWARD_BASE_FILE_H_

#include <string>

#include "absl/status/statusor.h"

namespace keyward {

// The file's bytes.  Errors: kNotFound (missing), kUnavailable (unreadable).
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

}  // namespace keyward

#endif  // KEYWARD_BASE_FILE_H_
