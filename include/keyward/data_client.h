// keyward::DataClient: what an application needs from keywardd — data
// keys, small-payload encryption inside keywardd, and header rewraps.  Most
// applications use it through keyward::Encryptor (keyward/encryptor.h),
// which adds message encryption and data key caches on top.
//
// Errors are the server's, with their Keyward error codes
// (keyward/errors.h): kPermissionDenied (kAccessDenied) for what the policy
// refuses, kFailedPrecondition for a key version's state, kUnavailable when
// no server answers (already retried).
//
// Thread-safety: safe for concurrent use; share one per process.
#ifndef KEYWARD_DATA_CLIENT_H_
#define KEYWARD_DATA_CLIENT_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "keyward/connection.h"
#include "keyward/keyring.h"
#include "keyward/secret_data.h"

namespace keyward {

struct WrappedKeyResult {
  std::string wrapped;
  KeyReference key;
};

struct RewrappedHeader {
  std::string header;
  KeyReference key;
};

class DataClient {
 public:
  // Opens a connection of its own (Connection::Open's errors).
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<DataClient>> Connect(
      const ClientOptions& options);
  // Over a connection shared with other clients.  `connection` must not be
  // null.
  explicit DataClient(std::shared_ptr<Connection> connection);

  const ClientOptions& options() const { return connection_->options(); }
  const std::shared_ptr<Connection>& connection() const { return connection_; }
  [[nodiscard]] absl::StatusOr<ServerInfo> GetServerInfo();

  // A fresh 32-byte data key under the key's primary version, bound to
  // `context`, with its wrapped form (the "kms" entry of a message header).
  [[nodiscard]] absl::StatusOr<GeneratedDataKey> GenerateDataKey(
      const std::string& key_name, const EncryptionContext& context);
  [[nodiscard]] absl::StatusOr<WrappedKeyResult> GenerateDataKeyWithoutPlaintext(
      const std::string& key_name, const EncryptionContext& context);
  [[nodiscard]] absl::StatusOr<SecretData> DecryptDataKey(const std::string& wrapped,
                                                          const EncryptionContext& context);
  [[nodiscard]] absl::StatusOr<WrappedKeyResult> ReWrapDataKey(
      const std::string& wrapped, const EncryptionContext& context);
  [[nodiscard]] absl::StatusOr<std::vector<GeneratedDataKey>> GenerateDataKeys(
      const std::string& key_name, const EncryptionContext& context, int count);
  // One result per input, in order.  `for_reencryption`: the caller is
  // re-encrypting the data (audited as such; does not count as a reader
  // for the retirement gate).
  [[nodiscard]] absl::StatusOr<std::vector<absl::StatusOr<SecretData>>> DecryptDataKeys(
      const std::vector<std::pair<std::string, EncryptionContext>>& requests,
      bool for_reencryption = false);

  // Small payloads (at most 64 KiB) encrypted inside keywardd.
  [[nodiscard]] absl::StatusOr<std::string> Encrypt(const std::string& key_name,
                                                    const std::string& plaintext,
                                                    const EncryptionContext& context);
  [[nodiscard]] absl::StatusOr<SecretData> Decrypt(const std::string& message,
                                                   const EncryptionContext& context);

  // Rewraps a message header to its key's primary version inside keywardd
  // (needs the rewrap permission only, never the data key).
  [[nodiscard]] absl::StatusOr<RewrappedHeader> RewrapMessageHeader(
      const std::string& header, const EncryptionContext& context);
  // Many headers (each through its header tag), each verified to open under
  // the new version; one result per header, in order.  Sent in requests of
  // at most 10,000 headers and 1 MiB, smaller if keywardd's request size
  // limit is lower (a header alone above it gets kLimitExceeded).  An error
  // for the whole call means some headers may have been rewrapped (the
  // results are discarded: the caller's messages are unchanged).
  [[nodiscard]] absl::StatusOr<std::vector<absl::StatusOr<RewrappedHeader>>>
  RewrapMessageHeaders(const std::vector<std::string>& headers);

 private:
  std::shared_ptr<Connection> connection_;
};

}  // namespace keyward

#endif  // KEYWARD_DATA_CLIENT_H_
