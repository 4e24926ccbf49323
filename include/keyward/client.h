// keyward::Client: the SDK's connection to keywardd.
//
// Mutual TLS 1.3 to one or more servers (calls are spread round-robin),
// a deadline on every call, and retries with exponential backoff for
// UNAVAILABLE only (a call that may have changed state is never retried
// for any other reason).  On connect the client asks the server for its
// environment and refuses one that differs from its own configuration.
//
// Thread-safety: a Client is safe for concurrent use; share one per process.
#ifndef KEYWARD_CLIENT_H_
#define KEYWARD_CLIENT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "keyward/keyring.h"
#include "keyward/secret_data.h"

namespace keyward {

struct ClientOptions {
  std::vector<std::string> servers;  // "host:port", at least one
  std::string environment;           // must match the servers'
  std::string ca_file;    // CA that signed the servers' certificates
  std::string cert_file;  // this client's certificate (its principal)
  std::string key_file;   // and private key
  absl::Duration deadline = absl::Seconds(10);  // per attempt
  int max_attempts = 4;                         // UNAVAILABLE only
  absl::Duration initial_backoff = absl::Milliseconds(50);
};

// Reads a client config file (YAML: servers, environment, tls.{ca, cert,
// key}, deadline).  Relative paths resolve against the file's directory.
// Errors: kNotFound, kInvalidArgument naming the field.
absl::StatusOr<ClientOptions> LoadClientConfig(const std::string& path);

struct ServerInfo {
  std::string environment;
  std::string version;
  std::vector<std::string> suites;
  std::string hsm;
  bool hsm_software = false;
  std::string principal;  // who the server says you are
};

struct KeyVersionInfo {
  uint32_t version = 0;
  std::string state;       // enabled | decrypt-only | disabled | pending-destruction | destroyed
  std::string protection;  // wrapped-by-root | hsm-resident
  absl::Time created;
  std::optional<absl::Time> destroy_after;
  std::optional<absl::Time> destroyed;
  uint64_t data_keys_issued = 0;
  uint64_t decrypts = 0;
  std::optional<absl::Time> last_used;
};

struct KeyInfo {
  std::string name;
  std::string purpose;
  std::string suite;
  std::string environment;
  std::map<std::string, std::string> labels;
  absl::Duration rotation_period = absl::ZeroDuration();
  uint32_t primary_version = 0;
  absl::Time created;
  absl::Time updated;
  std::vector<KeyVersionInfo> versions;
};

struct CreateKeyOptions {
  std::map<std::string, std::string> labels;
  absl::Duration rotation_period = absl::ZeroDuration();
  std::string protection;  // "" (server default), wrapped-by-root, hsm-resident
  std::string suite;       // "" (default AES-256-GCM-HKDF-SHA256-COMMIT)
};

struct KeyUpdate {
  std::optional<absl::Duration> rotation_period;
  std::map<std::string, std::string> set_labels;
  std::vector<std::string> remove_labels;
};

struct KeyList {
  std::vector<KeyInfo> keys;
  std::string next_page_token;
};

struct WrappedKeyResult {
  std::string wrapped;
  KeyReference key;
};

struct RewrappedHeader {
  std::string header;
  KeyReference key;
};

class Client {
 public:
  // Connects and checks the server's environment.  Errors: kInvalidArgument
  // (options, unreadable TLS files), kUnavailable (no server answers),
  // kFailedPrecondition with ErrorCode kEnvironmentMismatch.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Client>> Connect(
      const ClientOptions& options);
  ~Client();

  const ClientOptions& options() const { return options_; }

  [[nodiscard]] absl::StatusOr<ServerInfo> GetServerInfo();

  // Keys.  Errors are the server's, with their Keyward error codes.
  [[nodiscard]] absl::StatusOr<KeyInfo> CreateKey(const std::string& name,
                                                  const CreateKeyOptions& options = {});
  [[nodiscard]] absl::StatusOr<KeyInfo> GetKey(const std::string& name);
  [[nodiscard]] absl::StatusOr<KeyList> ListKeys(const std::string& prefix = "",
                                                 int page_size = 100,
                                                 const std::string& page_token = "");
  [[nodiscard]] absl::StatusOr<KeyInfo> RotateKey(const std::string& name);
  [[nodiscard]] absl::StatusOr<KeyInfo> UpdateKey(const std::string& name,
                                                  const KeyUpdate& update);
  [[nodiscard]] absl::StatusOr<KeyInfo> EnableVersion(const std::string& name, uint32_t version);
  [[nodiscard]] absl::StatusOr<KeyInfo> DisableVersion(const std::string& name, uint32_t version);
  [[nodiscard]] absl::StatusOr<KeyInfo> SetPrimaryVersion(const std::string& name, uint32_t version);
  // `wait` zero: the server's default (30 days).
  [[nodiscard]] absl::StatusOr<KeyInfo> ScheduleVersionDestruction(
      const std::string& name, uint32_t version, absl::Duration wait, bool force);
  [[nodiscard]] absl::StatusOr<KeyInfo> CancelVersionDestruction(const std::string& name,
                                                                 uint32_t version);

  // Data keys.
  [[nodiscard]] absl::StatusOr<GeneratedDataKey> GenerateDataKey(
      const std::string& key_name, const EncryptionContext& context);
  [[nodiscard]] absl::StatusOr<WrappedKeyResult> GenerateDataKeyWithoutPlaintext(
      const std::string& key_name, const EncryptionContext& context);
  [[nodiscard]] absl::StatusOr<SecretData> DecryptDataKey(
      const std::string& wrapped, const EncryptionContext& context);
  [[nodiscard]] absl::StatusOr<WrappedKeyResult> ReWrapDataKey(
      const std::string& wrapped, const EncryptionContext& context);
  [[nodiscard]] absl::StatusOr<std::vector<GeneratedDataKey>> GenerateDataKeys(
      const std::string& key_name, const EncryptionContext& context, int count);
  // One result per input, in order.
  [[nodiscard]] absl::StatusOr<std::vector<absl::StatusOr<SecretData>>> DecryptDataKeys(
      const std::vector<std::pair<std::string, EncryptionContext>>& requests);

  // Small payloads (at most 64 KiB) encrypted inside keywardd.
  [[nodiscard]] absl::StatusOr<std::string> Encrypt(const std::string& key_name,
                                                    const std::string& plaintext,
                                                    const EncryptionContext& context);
  [[nodiscard]] absl::StatusOr<SecretData> Decrypt(const std::string& message,
                                                   const EncryptionContext& context);
  // Rewraps a message header to its key's primary version inside keywardd.
  [[nodiscard]] absl::StatusOr<RewrappedHeader> RewrapMessageHeader(
      const std::string& header, const EncryptionContext& context);

 private:
  struct Impl;
  explicit Client(ClientOptions options);
  ClientOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keyward

#endif  // KEYWARD_CLIENT_H_
