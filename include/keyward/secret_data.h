// SecretData: the one owner of key material and plaintext inside Keyward.
//
// Every key and every plaintext buffer the library owns lives in a
// SecretData.  It is wiped (OPENSSL_cleanse) when freed, shrunk or moved
// from; buffers up to kLockedLimit bytes (all keys) are allocated from a
// memory-locked, never-dumped arena (OpenSSL's secure heap) so they are not
// swapped out or written to core files.  It cannot be printed and cannot be
// converted to a string implicitly; compare with ConstantTimeEquals.
//
// Thread-safety: like std::vector.  Distinct objects may be used from
// different threads; one object needs external synchronisation for writes.
#ifndef KEYWARD_SECRET_DATA_H_
#define KEYWARD_SECRET_DATA_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace keyward {

class SecretData final {
 public:
  // Buffers up to this size come from the locked arena when it has room.
  static constexpr size_t kLockedLimit = 4096;

  SecretData() = default;
  // A zero-filled buffer of `size` bytes.
  explicit SecretData(size_t size);
  // A copy of `bytes`.  The caller stays responsible for wiping its copy.
  static SecretData CopyFrom(absl::string_view bytes);
  static SecretData CopyFrom(absl::Span<const uint8_t> bytes);

  SecretData(SecretData&& other) noexcept;
  SecretData& operator=(SecretData&& other) noexcept;
  // Copies are explicit (Clone) so that secrets are not duplicated by
  // accident.
  SecretData(const SecretData&) = delete;
  SecretData& operator=(const SecretData&) = delete;
  ~SecretData();

  // An explicit deep copy.
  [[nodiscard]] SecretData Clone() const;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  absl::Span<const uint8_t> span() const { return {data_, size_}; }
  absl::Span<uint8_t> mutable_span() { return {data_, size_}; }
  // The bytes as a string_view, for APIs that take one.  The view is only
  // valid while this object lives and is not resized.
  absl::string_view AsStringView() const {
    return {reinterpret_cast<const char*>(data_), size_};
  }

  // Changes the size.  Growing zero-fills the new tail (and may move the
  // buffer, wiping the old one); shrinking wipes the dropped tail.
  void Resize(size_t new_size);
  // Wipes and releases the buffer; size() becomes 0.
  void Clear();

  // True when the buffer lives in locked memory (for tests and metrics).
  bool is_locked() const { return locked_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
  bool locked_ = false;
};

// Constant-time equality of two byte strings.  Runs in time that depends only
// on the lengths; promises no ordering.  Different lengths compare unequal.
[[nodiscard]] bool ConstantTimeEquals(absl::string_view a, absl::string_view b);
[[nodiscard]] bool ConstantTimeEquals(const SecretData& a, const SecretData& b);

// Counters of the locked arena, for tests and metrics.
struct SecureMemoryStats {
  bool arena_available = false;  // the arena exists and is mlock()ed
  size_t arena_bytes = 0;        // arena size
  size_t arena_used_bytes = 0;   // bytes currently allocated from the arena
  size_t fallback_allocations = 0;  // small buffers that did not fit
};
SecureMemoryStats GetSecureMemoryStats();

}  // namespace keyward

#endif  // KEYWARD_SECRET_DATA_H_
