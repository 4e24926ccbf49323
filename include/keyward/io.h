// Byte streams for the streaming encrypt/decrypt API: small interfaces that
// report errors as absl::Status instead of stream state bits, with
// implementations over file descriptors and strings.
//
// Thread-safety: a stream object is used by one thread at a time.
#ifndef KEYWARD_IO_H_
#define KEYWARD_IO_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace keyward {

class InputStream {
 public:
  virtual ~InputStream() = default;
  // Reads up to buffer.size() bytes into `buffer` and returns how many; 0
  // means end of input (and only then).  Errors: kUnavailable or kInternal
  // from the underlying source, with the OS error text.
  [[nodiscard]] virtual absl::StatusOr<size_t> Read(
      absl::Span<uint8_t> buffer) = 0;
};

class OutputStream {
 public:
  virtual ~OutputStream() = default;
  // Writes all of `data` or fails.
  [[nodiscard]] virtual absl::Status Write(absl::string_view data) = 0;
};

// Fills `buffer` completely unless the input ends first; returns the number
// of bytes read (less than buffer.size() only at end of input).
[[nodiscard]] absl::StatusOr<size_t> ReadFully(InputStream& in,
                                               absl::Span<uint8_t> buffer);

// Reads from a file descriptor it does not own.
class FdInputStream final : public InputStream {
 public:
  explicit FdInputStream(int fd) : fd_(fd) {}
  absl::StatusOr<size_t> Read(absl::Span<uint8_t> buffer) override;

 private:
  int fd_;
};

// Writes to a file descriptor it does not own.
class FdOutputStream final : public OutputStream {
 public:
  explicit FdOutputStream(int fd) : fd_(fd) {}
  absl::Status Write(absl::string_view data) override;

 private:
  int fd_;
};

// Reads from a string the caller keeps alive.
class StringInputStream final : public InputStream {
 public:
  explicit StringInputStream(absl::string_view data) : data_(data) {}
  absl::StatusOr<size_t> Read(absl::Span<uint8_t> buffer) override;

 private:
  absl::string_view data_;
};

// Appends to a string the caller keeps alive.
class StringOutputStream final : public OutputStream {
 public:
  explicit StringOutputStream(std::string* out) : out_(out) {}
  absl::Status Write(absl::string_view data) override {
    out_->append(data.data(), data.size());
    return absl::OkStatus();
  }

 private:
  std::string* out_;
};

}  // namespace keyward

#endif  // KEYWARD_IO_H_
