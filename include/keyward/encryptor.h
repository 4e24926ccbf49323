// keyward::Encryptor and keyward::DiscoveryDecryptor: the SDK's everyday
// API.  An Encryptor encrypts and decrypts bytes and streams as Keyward
// messages under ONE KMS key, with data key caches so that most messages
// cost no call to keywardd, and rewraps messages to the key's current
// version through keywardd (the body is never touched).
//
//   auto client = keyward::DataClient::Connect(*keyward::LoadClientConfig(path));
//   auto encryptor = keyward::Encryptor::Create(*client, {.key_name = "payments/cards"});
//   auto message = (*encryptor)->Encrypt(card, {{"tenant", "acme"}});
//   auto opened = (*encryptor)->Decrypt(*message, {{"tenant", "acme"}});
//   // opened->plaintext, opened->context
//
// Safe by construction:
//   - An Encryptor decrypts only messages under its own key: the header's
//     key, every kms entry's label and the key inside every wrapped data
//     key must all be it.  A message under another key is refused
//     (kFailedPrecondition, kKeyMismatch; kInvalidArgument,
//     kMalformedHeader for a relabelled entry) before any key is unwrapped,
//     even one the caller may read.  Extra keyrings only add recipients;
//     an Encryptor of a signed suite reads only signed messages.  Reading messages under any key the caller may read takes a
//     DiscoveryDecryptor, a separate type, on purpose.
//   - Decrypt returns the plaintext together with the message's
//     authenticated encryption context and key.  Given an expected context,
//     the message's context must equal it exactly (ContextMatch::kExact, the
//     default); ContextMatch::kAtLeast accepts extra pairs.
//   - Nonces and data keys are never chosen by the caller.
//
// Caches.  The encrypt-side cache keeps one data key per encryption context
// (partition) and reuses it until it is max_age old, has protected
// max_messages messages or max_bytes bytes; N concurrent encrypts of a new
// partition make one GenerateDataKey call (single-flight).  The
// decrypt-side cache (keyward/keyring.h's CachingUnwrapper) keeps unwrapped
// data keys by their wrapped form and context, under the same kind of
// limits.  Evicted keys are wiped.  A limit is checked before a message
// starts, so one stream may carry a key past max_bytes by at most its own
// length.
//
// Lifetimes: Encryptors are held by shared_ptr and hold shared_ptrs to what
// they use (the DataClient, extra keyrings, the observer), so nothing a
// caller passes in has to outlive them.
//
// Thread-safety: all methods are safe to call concurrently.
#ifndef KEYWARD_ENCRYPTOR_H_
#define KEYWARD_ENCRYPTOR_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "keyward/caching_unwrapper.h"
#include "keyward/data_client.h"
#include "keyward/io.h"
#include "keyward/keyring.h"
#include "keyward/message.h"

namespace keyward {

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
  std::string key_name;  // the KMS key; required
  bool cache = true;
  CacheLimits encrypt_cache;
  CacheLimits decrypt_cache;
  EncryptOptions format;
  // Extra recipients: each adds a wrapped copy of every data key (say an
  // offline disaster-recovery raw key).  They are not used to decrypt (a
  // shared key would not prove which key a message was made under); read
  // with them through a DiscoveryDecryptor's additional_unwrappers.
  std::vector<std::shared_ptr<const Keyring>> additional_keyrings;
  // Optional observer of latency and cache hits (metrics).
  std::shared_ptr<Observer> observer;
};

struct EncryptorStats {
  uint64_t encrypt_cache_hits = 0;
  uint64_t encrypt_cache_misses = 0;  // = GenerateDataKey calls
  uint64_t decrypt_cache_hits = 0;
  uint64_t decrypt_cache_misses = 0;  // = DecryptDataKey calls
};

// How an expected context is compared with a message's.
enum class ContextMatch {
  kExact,    // the same pairs, no more (the default)
  kAtLeast,  // every expected pair present; the message may carry more
};

// What Decrypt returns: the plaintext and what was authenticated with it.
struct Decrypted {
  SecretData plaintext;
  // The message's encryption context, as authenticated by its header (for
  // signed messages including the library's keyward-signing-key pair).
  EncryptionContext context;
  KeyReference key;  // the key and version the message was made under
};

class Encryptor {
 public:
  // Validates `options` (a key name, cache limits above zero, a known suite
  // and frame size).  Errors: kInvalidArgument naming the option.
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<Encryptor>> Create(
      std::shared_ptr<DataClient> client, EncryptorOptions options);
  ~Encryptor();
  Encryptor(const Encryptor&) = delete;
  Encryptor& operator=(const Encryptor&) = delete;

  const std::string& key_name() const;

  [[nodiscard]] absl::StatusOr<std::string> Encrypt(absl::string_view plaintext,
                                                    const EncryptionContext& context);
  // Without an expected context, any context is accepted (and returned for
  // the caller to check).  Errors: kKeyMismatch for a message under another
  // key; kContextMismatch; the message's own errors (keyward/message.h).
  [[nodiscard]] absl::StatusOr<Decrypted> Decrypt(absl::string_view message);
  [[nodiscard]] absl::StatusOr<Decrypted> Decrypt(absl::string_view message,
                                                  const EncryptionContext& expected_context,
                                                  ContextMatch match = ContextMatch::kExact);
  [[nodiscard]] absl::Status EncryptStream(InputStream& in, OutputStream& out,
                                           const EncryptionContext& context);
  // As Decrypt.  Plaintext is written frame by frame as each verifies, so
  // on error part of it has been written: discard it (write to a temporary
  // file and rename on success).  For signed suites the writer's signature
  // is checked only at the end.  Returns the message's context and key.
  [[nodiscard]] absl::StatusOr<Decrypted> DecryptStream(
      InputStream& in, OutputStream& out,
      const std::optional<EncryptionContext>& expected_context = std::nullopt,
      ContextMatch match = ContextMatch::kExact);
  // Rewraps a message's header to the primary version of this Encryptor's
  // key inside keywardd; the body is copied untouched.  Needs the rewrap
  // permission only, never the data key.  kKeyMismatch for another key's
  // message.
  [[nodiscard]] absl::StatusOr<std::string> Rewrap(absl::string_view message);
  [[nodiscard]] absl::Status RewrapStream(InputStream& in, OutputStream& out);

  EncryptorStats Stats() const;
  // Wipes and drops every cached data key.
  void ClearCaches();

  struct State;

 private:
  explicit Encryptor(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

struct DiscoveryDecryptorOptions {
  bool cache = true;
  CacheLimits decrypt_cache;
  // Further ways to open messages (a disaster-recovery raw key, say).
  std::vector<std::shared_ptr<const KeyUnwrapper>> additional_unwrappers;
  std::shared_ptr<Observer> observer;
};

// Decrypts messages under ANY key the caller's principal may read: for
// tools and services whose job is to read everything they are allowed to
// (a migration, an export).  Everything else should use an Encryptor,
// which is bound to one key.
class DiscoveryDecryptor {
 public:
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<DiscoveryDecryptor>> Create(
      std::shared_ptr<DataClient> client, DiscoveryDecryptorOptions options = {});
  ~DiscoveryDecryptor();

  [[nodiscard]] absl::StatusOr<Decrypted> Decrypt(absl::string_view message);
  [[nodiscard]] absl::StatusOr<Decrypted> Decrypt(absl::string_view message,
                                                  const EncryptionContext& expected_context,
                                                  ContextMatch match = ContextMatch::kExact);
  [[nodiscard]] absl::StatusOr<Decrypted> DecryptStream(
      InputStream& in, OutputStream& out,
      const std::optional<EncryptionContext>& expected_context = std::nullopt,
      ContextMatch match = ContextMatch::kExact);
  // Rewraps to the primary version of whichever key the message names.
  [[nodiscard]] absl::StatusOr<std::string> Rewrap(absl::string_view message);
  [[nodiscard]] absl::Status RewrapStream(InputStream& in, OutputStream& out);

  EncryptorStats Stats() const;
  void ClearCaches();

  struct State;

 private:
  explicit DiscoveryDecryptor(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace keyward

#endif  // KEYWARD_ENCRYPTOR_H_
