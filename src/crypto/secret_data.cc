#include "keyward/secret_data.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <new>

namespace keyward {
namespace {

// 4 MiB fits the default RLIMIT_MEMLOCK of 8 MiB.  Must be a power of two
// (OpenSSL's buddy allocator).  OpenSSL itself allocates from the same arena
// (its DRBG state and seed buffers), and fails when it is full, so Keyward
// leaves it a quarter: once the arena is 75% used, small buffers fall back
// to the ordinary heap (still wiped on free) and a counter records it.
constexpr size_t kArenaBytes = size_t{4} << 20;
constexpr size_t kArenaMinAllocation = 16;
constexpr size_t kArenaKeywardLimit = kArenaBytes / 4 * 3;

std::once_flag arena_once;
bool arena_locked = false;
std::atomic<size_t> fallback_count{0};

void InitArena() {
  std::call_once(arena_once, [] {
    // 1: mapped and locked; 2: mapped but mlock/madvise failed (usable,
    // not locked); 0: unavailable (we fall back to the ordinary heap).
    int rc = CRYPTO_secure_malloc_init(kArenaBytes, kArenaMinAllocation);
    if (rc == 0 && CRYPTO_secure_malloc_initialized()) rc = 1;  // by others
    arena_locked = (rc == 1);
  });
}

struct Allocation {
  uint8_t* data;
  bool locked;
};

Allocation Allocate(size_t size) {
  if (size == 0) return {nullptr, false};
  if (size <= SecretData::kLockedLimit) {
    InitArena();
    if (arena_locked && CRYPTO_secure_used() + size <= kArenaKeywardLimit) {
      void* p = CRYPTO_secure_zalloc(size, OPENSSL_FILE, OPENSSL_LINE);
      if (p != nullptr) return {static_cast<uint8_t*>(p), true};
    }
    fallback_count.fetch_add(1, std::memory_order_relaxed);
  }
  void* p = OPENSSL_zalloc(size);
  if (p == nullptr) throw std::bad_alloc();
  return {static_cast<uint8_t*>(p), false};
}

void Free(uint8_t* data, size_t capacity, bool locked) {
  if (data == nullptr) return;
  if (locked) {
    CRYPTO_secure_clear_free(data, capacity, OPENSSL_FILE, OPENSSL_LINE);
  } else {
    OPENSSL_clear_free(data, capacity);
  }
}

}  // namespace

SecretData::SecretData(size_t size) {
  Allocation a = Allocate(size);
  data_ = a.data;
  locked_ = a.locked;
  size_ = capacity_ = size;
}

SecretData SecretData::CopyFrom(absl::string_view bytes) {
  SecretData out(bytes.size());
  if (!bytes.empty()) std::memcpy(out.data_, bytes.data(), bytes.size());
  return out;
}

SecretData SecretData::CopyFrom(absl::Span<const uint8_t> bytes) {
  return CopyFrom(absl::string_view(
      reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

SecretData::SecretData(SecretData&& other) noexcept
    : data_(other.data_),
      size_(other.size_),
      capacity_(other.capacity_),
      locked_(other.locked_) {
  other.data_ = nullptr;
  other.size_ = other.capacity_ = 0;
  other.locked_ = false;
}

SecretData& SecretData::operator=(SecretData&& other) noexcept {
  if (this != &other) {
    Free(data_, capacity_, locked_);
    data_ = other.data_;
    size_ = other.size_;
    capacity_ = other.capacity_;
    locked_ = other.locked_;
    other.data_ = nullptr;
    other.size_ = other.capacity_ = 0;
    other.locked_ = false;
  }
  return *this;
}

SecretData::~SecretData() { Free(data_, capacity_, locked_); }

SecretData SecretData::Clone() const { return CopyFrom(span()); }

void SecretData::Resize(size_t new_size) {
  if (new_size <= capacity_) {
    if (new_size < size_) {
      OPENSSL_cleanse(data_ + new_size, size_ - new_size);
    } else if (new_size > size_) {
      std::memset(data_ + size_, 0, new_size - size_);
    }
    size_ = new_size;
    return;
  }
  SecretData bigger(new_size);
  if (size_ > 0) std::memcpy(bigger.data_, data_, size_);
  *this = std::move(bigger);
}

void SecretData::Clear() {
  Free(data_, capacity_, locked_);
  data_ = nullptr;
  size_ = capacity_ = 0;
  locked_ = false;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool ConstantTimeEquals(const SecretData& a, const SecretData& b) {
  return ConstantTimeEquals(a.AsStringView(), b.AsStringView());
}

SecureMemoryStats GetSecureMemoryStats() {
  InitArena();
  SecureMemoryStats stats;
  stats.arena_available = arena_locked;
  stats.arena_bytes = arena_locked ? kArenaBytes : 0;
  stats.arena_used_bytes = arena_locked ? CRYPTO_secure_used() : 0;
  stats.fallback_allocations = fallback_count.load(std::memory_order_relaxed);
  return stats;
}

}  // namespace keyward
