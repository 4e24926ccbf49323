// Reads a message's body (docs/format.md section 7): where frames come from,
// where verified plaintext goes, and the reader that checks each frame.
#ifndef KEYWARD_FORMAT_FRAME_READER_H_
#define KEYWARD_FORMAT_FRAME_READER_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "base/status_macros.h"
#include "crypto/internal/nonce_aead.h"
#include "crypto/signature.h"
#include "format/frame_layout.h"
#include "keyward/io.h"
#include "keyward/message.h"
#include "keyward/secret_data.h"

namespace keyward::format {

// Where frames come from: a stream (through a buffer of one frame) or a
// message already in memory (zero copy).
class FrameSource {
 public:
  virtual ~FrameSource() = default;
  // Up to `n` bytes without consuming them: fewer only at the end of the
  // input.  The view is valid until the next call.
  virtual absl::StatusOr<absl::string_view> Peek(size_t n) = 0;
  // Consumes `n` bytes. REQUIRES: n <= the size of the last Peek.
  virtual void Consume(size_t n) = 0;
};

// Reads a frame with one read system call (the reader peeks at a whole
// regular frame's worth, then consumes what the frame turns out to hold).
// Also serves as the InputStream the header parser reads from, reading
// ahead a little so header fields do not each cost a system call.
class StreamFrameSource final : public FrameSource, public InputStream {
 public:
  // The buffer grows to the largest Peek (a frame and its tag, bounded by
  // the frame size limit the header was checked against).
  explicit StreamFrameSource(InputStream& in) : in_(in) {}

  absl::StatusOr<absl::string_view> Peek(size_t n) override {
    KW_RETURN_IF_ERROR(Fill(n));
    return absl::string_view(buffer_.data() + begin_, std::min(n, end_ - begin_));
  }
  void Consume(size_t n) override { begin_ += n; }

  absl::StatusOr<size_t> Read(absl::Span<uint8_t> out) override {
    KW_RETURN_IF_ERROR(Fill(std::min<size_t>(out.size(), kMinRead)));
    const size_t take = std::min(out.size(), end_ - begin_);
    if (take > 0) std::memcpy(out.data(), buffer_.data() + begin_, take);
    begin_ += take;
    return take;
  }

 private:
  static constexpr size_t kMinRead = 4096;

  // Makes at least `n` bytes available unless the input ends first.
  absl::Status Fill(size_t n) {
    if (end_ - begin_ >= n || eof_) return absl::OkStatus();
    const size_t target = std::max(n, kMinRead);
    if (buffer_.size() < target) buffer_.resize(target);
    if (begin_ + target > buffer_.size()) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    while (end_ - begin_ < n && !eof_) {
      const size_t want = begin_ + target - end_;
      KW_ASSIGN_OR_RETURN(size_t got,
                          in_.Read(MutableBytes(buffer_).subspan(end_, want)));
      if (got == 0) eof_ = true;
      end_ += got;
    }
    return absl::OkStatus();
  }

  InputStream& in_;
  std::string buffer_;  // ciphertext only
  size_t begin_ = 0, end_ = 0;
  bool eof_ = false;
};

class ViewFrameSource final : public FrameSource {
 public:
  explicit ViewFrameSource(absl::string_view data) : data_(data) {}
  absl::StatusOr<absl::string_view> Peek(size_t n) override {
    return data_.substr(0, n);
  }
  void Consume(size_t n) override { data_.remove_prefix(n); }

 private:
  absl::string_view data_;
};

// Where verified plaintext goes: Reserve() a span for one frame, decrypt
// into it, Commit() it once it verified.
class PlaintextSink {
 public:
  virtual ~PlaintextSink() = default;
  virtual absl::Span<uint8_t> Reserve(size_t n) = 0;
  virtual absl::Status Commit(size_t n) = 0;
};

// Passes each verified frame to an OutputStream.
class StreamPlaintextSink final : public PlaintextSink {
 public:
  StreamPlaintextSink(OutputStream& out, size_t frame_size)
      : out_(out), buffer_(frame_size) {}
  absl::Span<uint8_t> Reserve(size_t n) override {
    return buffer_.mutable_span().subspan(0, n);
  }
  absl::Status Commit(size_t n) override {
    return out_.Write(View(buffer_.data(), n));
  }

 private:
  OutputStream& out_;
  SecretData buffer_;
};

// Collects the whole plaintext in one SecretData, decrypting in place.
class SecretPlaintextSink final : public PlaintextSink {
 public:
  explicit SecretPlaintextSink(size_t capacity) : data_(capacity) {}
  absl::Span<uint8_t> Reserve(size_t n) override {
    if (used_ + n > data_.size()) data_.Resize(std::max(data_.size() * 2, used_ + n));
    return data_.mutable_span().subspan(used_, n);
  }
  absl::Status Commit(size_t n) override {
    used_ += n;
    return absl::OkStatus();
  }
  SecretData Finish() && {
    data_.Resize(used_);
    return std::move(data_);
  }

 private:
  SecretData data_;
  size_t used_ = 0;
};

// Reads frames in order, verifies each and hands its plaintext to `sink`.
// With a null `aead` it only walks the structure (Inspect) into `info`.
absl::Status ReadBody(FrameSource& source, PlaintextSink* sink,
                      const crypto::internal::NonceAead* aead, uint32_t frame_size,
                      MessageInfo* info, bool signed_suite,
                      crypto::EcdsaP384Verifier* verifier);

}  // namespace keyward::format

#endif  // KEYWARD_FORMAT_FRAME_READER_H_
