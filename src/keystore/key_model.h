// The key model shared by the key store and the KMS core: a key is a named,
// versioned container of key-encryption keys (KEKs).  Documented for
// operators in docs/keys.md.
#ifndef KEYWARD_KEYSTORE_KEY_MODEL_H_
#define KEYWARD_KEYSTORE_KEY_MODEL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "keyward/message.h"

namespace keyward::keystore {

// What a key's versions may be used for.  Wave 1 serves envelope encryption;
// the others are reserved for field-level encryption (wave 2).
enum class KeyPurpose : int {
  kEnvelopeEncryption = 1,
  kDeterministicEncryption = 2,
  kBlindIndex = 3,
};

// Lifecycle of a key version:
//
//   Enabled ──rotate──▶ DecryptOnly ──disable──▶ Disabled ──schedule──▶
//   PendingDestruction ──(waiting period)──▶ Destroyed
//
// Enabled versions decrypt and may be primary (exactly one is); DecryptOnly
// versions (former primaries) only decrypt; Disabled and PendingDestruction
// versions refuse everything until re-enabled or cancelled; Destroyed
// versions have no key material left.
enum class VersionState : int {
  kEnabled = 1,
  kDecryptOnly = 2,
  kDisabled = 3,
  kPendingDestruction = 4,
  kDestroyed = 5,
};

// Where a version's KEK lives.
enum class KekProtection : int {
  kWrappedByRoot = 1,  // stored sealed by the HSM root key; unsealed in memory
  kHsmResident = 2,    // a non-extractable object in the HSM
};

absl::string_view KeyPurposeName(KeyPurpose purpose);
absl::string_view VersionStateName(VersionState state);
absl::string_view KekProtectionName(KekProtection protection);
absl::StatusOr<KeyPurpose> ParseKeyPurpose(absl::string_view name);
absl::StatusOr<VersionState> ParseVersionState(absl::string_view name);
absl::StatusOr<KekProtection> ParseKekProtection(absl::string_view name);

// True when data keys wrapped under a version in `state` may be unwrapped.
inline bool CanDecrypt(VersionState state) {
  return state == VersionState::kEnabled || state == VersionState::kDecryptOnly;
}

struct UsageCounters {
  uint64_t data_keys_issued = 0;
  uint64_t decrypts = 0;
  std::optional<absl::Time> last_used;     // any use
  std::optional<absl::Time> last_decrypt;  // unwrapping only
};

// A version declared compromised (`keyward key compromise`): its KEK may be
// known to someone else.  It never wraps a new data key again and can never
// be primary; it still decrypts (so its data can be re-encrypted), and every
// such decrypt is flagged.  Permanent: nothing clears it.
struct Compromise {
  absl::Time when;
  std::string reason;  // the operator's words
  std::string by;      // the principal that declared it
  bool operator==(const Compromise& o) const {
    return when == o.when && reason == o.reason && by == o.by;
  }
};

struct KeyVersion {
  uint32_t version = 0;
  VersionState state = VersionState::kEnabled;
  KekProtection protection = KekProtection::kWrappedByRoot;
  // kWrappedByRoot: the KEK sealed by the root key (empty once destroyed).
  std::string sealed_kek;
  // kHsmResident: the HSM object's id.
  std::string hsm_key_id;
  absl::Time created;
  std::optional<absl::Time> destroy_after;  // kPendingDestruction
  // kPendingDestruction: the state the version had when it was scheduled,
  // which cancelling the destruction restores.
  std::optional<VersionState> state_before_destruction;
  std::optional<absl::Time> destroyed;      // kDestroyed
  UsageCounters usage;
  // A small message made under this version when it was created, for
  // `keyward rotation drill` (empty for versions made before drills).
  std::string drill_sample;
  std::optional<Compromise> compromise;  // set once, never cleared
};

struct Key {
  std::string name;  // path-like: "payments/card-numbers"
  KeyPurpose purpose = KeyPurpose::kEnvelopeEncryption;
  Suite suite = Suite::kAes256GcmHkdfSha256Commit;
  std::string environment;
  std::map<std::string, std::string> labels;
  absl::Duration rotation_period = absl::ZeroDuration();  // zero: manual only
  uint32_t primary_version = 0;
  absl::Time created;
  absl::Time updated;
  std::vector<KeyVersion> versions;  // ascending by version
  // Bumped by every stored change; used for compare-and-swap updates.
  uint64_t revision = 0;

  const KeyVersion* FindVersion(uint32_t version) const;
  KeyVersion* FindVersion(uint32_t version);
};

// Validates a key's name (the message format's key name rules), labels
// (at most 64; keys 1–63 bytes of a-z0-9_-.; values up to 256 bytes) and
// versions (ascending; the primary exists and is Enabled, unless no version
// can decrypt any more: a key being crypto-shredded).
absl::Status ValidateKey(const Key& key);
// A key name: the message format's rules (1-256 bytes of A-Z a-z 0-9 - _ . /,
// no leading, trailing or double '/'), and no "." or ".." segment, so that a
// name and the policy globs that match it mean one thing.  keywardd checks
// it on every request that names a key.  Errors: kInvalidArgument
// (malformed-header, or limit-exceeded over 256 bytes); the message does not
// quote the name.
absl::Status ValidateKeyName(absl::string_view name);
absl::Status ValidateLabels(const std::map<std::string, std::string>& labels);

}  // namespace keyward::keystore

#endif  // KEYWARD_KEYSTORE_KEY_MODEL_H_
