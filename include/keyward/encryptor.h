// keyward::Encryptor: the SDK's everyday API.  Encrypts and decrypts bytes
// and streams as Keyward messages under a KMS key, with data key caches so
// that most messages cost no call to keywardd, and rewraps messages to the
// key's current version through keywardd (the body is never touched).
//
// Caches.  The encrypt-side cache keeps one data key per encryption context
// (partition) and reuses it until it is max_age old, has protected
// max_messages messages or max_bytes bytes; N concurrent encrypts of a new
// partition make one GenerateDataKey call (single-flight).  The
// decrypt-side cache keeps unwrapped data keys by their wrapped form and
// context, under the same kind of limits.  Evicted keys are wiped.  A limit
// is checked before a message starts, so one stream may carry a key past
// max_bytes by at most its own length.
//
// Thread-safety: all methods are safe to call concurrently.
#ifndef KEYWARD_ENCRYPTOR_H_
#define KEYWARD_ENCRYPTOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "keyward/client.h"
#include "keyward/io.h"
#include "keyward/keyring.h"
#include "keyward/message.h"

namespace keyward {

struct CacheLimits {
  absl::Duration max_age = absl::Minutes(5);
  uint64_t max_messages = 1'000'000;
  uint64_t max_bytes = uint64_t{1} << 34;  // 16 GiB
  size_t max_entries = 4096;
};

// A hook for the application's metrics library.  Called on the caller's
// thread after each operation; must be cheap and thread-safe.
class Observer {
 public:
  virtual ~Observer() = default;
  enum class Operation { kEncrypt, kDecrypt, kRewrap };
  virtual void OnOperation(Operation op, absl::Duration latency, bool ok) = 0;
  virtual void OnCache(Operation op, bool hit) = 0;
};

struct EncryptorOptions {
  std::string key_name;  // the KMS key new messages are encrypted under
  bool cache = true;
  CacheLimits encrypt_cache;
  CacheLimits decrypt_cache;
  EncryptOptions format;
  // Extra recipients (each adds a wrapped copy of the data key, say an
  // offline disaster-recovery raw key) and extra ways to decrypt.  Not owned.
  std::vector<const Keyring*> additional_keyrings;
  // Optional observer of encrypt/decrypt latency and cache hits (metrics).
  Observer* observer = nullptr;
};

struct EncryptorStats {
  uint64_t encrypt_cache_hits = 0;
  uint64_t encrypt_cache_misses = 0;  // = GenerateDataKey calls
  uint64_t decrypt_cache_hits = 0;
  uint64_t decrypt_cache_misses = 0;  // = DecryptDataKey calls
};

class Encryptor {
 public:
  // `client` must outlive the Encryptor.
  Encryptor(Client* client, EncryptorOptions options);
  ~Encryptor();

  [[nodiscard]] absl::StatusOr<std::string> Encrypt(absl::string_view plaintext,
                                                    const EncryptionContext& context);
  // `expected_context` pairs must all be in the message's context.
  [[nodiscard]] absl::StatusOr<SecretData> Decrypt(
      absl::string_view message, const EncryptionContext& expected_context = {});
  [[nodiscard]] absl::Status EncryptStream(InputStream& in, OutputStream& out,
                                           const EncryptionContext& context);
  [[nodiscard]] absl::Status DecryptStream(
      InputStream& in, OutputStream& out,
      const EncryptionContext& expected_context = {});
  // Rewraps a message's header to its key's primary version inside
  // keywardd; the body is copied untouched.  Needs the rewrap permission
  // only, never the data key.
  [[nodiscard]] absl::StatusOr<std::string> Rewrap(absl::string_view message);
  [[nodiscard]] absl::Status RewrapStream(InputStream& in, OutputStream& out);

  EncryptorStats Stats() const;
  // Wipes and drops every cached data key.
  void ClearCaches();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace keyward

#endif  // KEYWARD_ENCRYPTOR_H_
