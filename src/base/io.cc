#include "keyward/io.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "keyward/errors.h"

namespace keyward {

absl::StatusOr<size_t> ReadFully(InputStream& in, absl::Span<uint8_t> buffer) {
  size_t total = 0;
  while (total < buffer.size()) {
    auto n = in.Read(buffer.subspan(total));
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    total += *n;
  }
  return total;
}

absl::StatusOr<size_t> FdInputStream::Read(absl::Span<uint8_t> buffer) {
  while (true) {
    ssize_t n = ::read(fd_, buffer.data(), buffer.size());
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    return MakeError(absl::StatusCode::kUnavailable, ErrorCode::kIoError,
                     absl::StrCat("read failed: ", std::strerror(errno)));
  }
}

absl::Status FdOutputStream::Write(absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return MakeError(absl::StatusCode::kUnavailable, ErrorCode::kIoError,
                       absl::StrCat("write failed: ", std::strerror(errno)));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> StringInputStream::Read(absl::Span<uint8_t> buffer) {
  size_t n = std::min(buffer.size(), data_.size());
  if (n > 0) std::memcpy(buffer.data(), data_.data(), n);
  data_.remove_prefix(n);
  return n;
}

}  // namespace keyward
