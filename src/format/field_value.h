// Field value format v1: one encrypted database value (docs/format.md,
// "Field values").  Binary form:
//
//   u8   version and treatment: 0x11 = v1, randomized (AES-256-GCM);
//        0x12 = v1, deterministic (AES-256-SIV)
//   u32  key reference: the data key's row in the application's key table
//   randomized (0x11):        12 nonce || ciphertext of (u8 type || payload) || 16 tag
//   deterministic (0x12):     16 synthetic IV || ciphertext of (u8 type || payload)
//
// 34 bytes over the plaintext (randomized), 22 (deterministic).  Text form
// (TEXT columns): "kw1." followed by the binary form in unpadded base64url.
// The associated data binds the value to where it lives: "keyward field
// v1" || the first 5 bytes || u32-length-prefixed dataset, table, column,
// tenant and row id, so a value copied to another row, column, table,
// tenant or dataset fails to decrypt.  A deterministic value is bound the
// same way with an empty row id: equal values of one column and tenant
// encrypt equally, which is what makes them searchable.  Its AES-256-SIV
// key is derived per (dataset, table, column, tenant) from the data key
// (DeterministicFieldKey).
//
// Thread-safety: stateless functions.
#ifndef KEYWARD_FORMAT_FIELD_VALUE_H_
#define KEYWARD_FORMAT_FIELD_VALUE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/deterministic_aead.h"
#include "crypto/internal/nonce_aead.h"
#include "keyward/secret_data.h"

namespace keyward::format {

inline constexpr uint8_t kFieldRandomizedV1 = 0x11;
inline constexpr uint8_t kFieldDeterministicV1 = 0x12;
inline constexpr size_t kFieldHeaderSize = 5;
inline constexpr size_t kFieldNonceSize = 12;
inline constexpr size_t kFieldOverhead = kFieldHeaderSize + kFieldNonceSize + 1 + 16;
inline constexpr size_t kFieldDeterministicOverhead = kFieldHeaderSize + 16 + 1;
inline constexpr absl::string_view kFieldTextPrefix = "kw1.";

// The plaintext's type, encrypted with it so that it round-trips exactly.
enum class FieldType : uint8_t {
  kInteger = 1,  // payload: 8 bytes, big-endian two's complement
  kReal = 2,     // payload: 8 bytes, IEEE 754 binary64, big-endian
  kText = 3,     // payload: UTF-8 bytes
  kBytes = 4,    // payload: the bytes
  kJson = 5,     // payload: JSON text, byte for byte
};

// Where a value lives; every part is authenticated.
struct FieldLocation {
  std::string dataset;
  std::string table;
  std::string column;
  std::string tenant;  // "" when the dataset has no tenants
  std::string row_id;  // the id column's value as text
};
// The same as views, for the hot path (no copies).
struct FieldWhere {
  absl::string_view dataset, table, column, tenant, row_id;
  FieldWhere(absl::string_view d, absl::string_view t, absl::string_view c, absl::string_view n,
             absl::string_view r)
      : dataset(d), table(t), column(c), tenant(n), row_id(r) {}
  FieldWhere(const FieldLocation& l)  // NOLINT: implicit on purpose
      : dataset(l.dataset), table(l.table), column(l.column), tenant(l.tenant), row_id(l.row_id) {}
};

struct FieldPlaintext {
  FieldType type = FieldType::kText;
  SecretData payload;
};

// The parts of a binary value before decryption.
struct FieldEnvelope {
  uint8_t version_and_treatment = 0;
  uint32_t key_ref = 0;
  // randomized: nonce || ciphertext || tag; deterministic: SIV ||
  // ciphertext (a view into the input)
  absl::string_view sealed;
  bool deterministic() const { return version_and_treatment == kFieldDeterministicV1; }
};

std::string FieldAad(uint8_t version_and_treatment, uint32_t key_ref, const FieldWhere& where);

// Encrypts one value with `aead` (AES-256-GCM over the data key `key_ref`
// names) under a fresh random nonce.  Returns the binary form.
absl::StatusOr<std::string> SealField(const crypto::internal::NonceAead& aead, uint32_t key_ref,
                                      const FieldWhere& where, FieldType type,
                                      absl::string_view payload);
// The same into `*binary` (replaced).  The plaintext is sealed in place in
// `*binary`, so no other copy of it is made.
absl::Status SealFieldInto(const crypto::internal::NonceAead& aead, uint32_t key_ref,
                           const FieldWhere& where, FieldType type, absl::string_view payload,
                           std::string* binary);

// Splits a binary value.  Errors (kInvalidArgument, ErrorCode
// kNotAKeywardMessage / kUnsupportedVersion / kTruncated): not a field
// value, a version or treatment this build does not read, too short.
absl::StatusOr<FieldEnvelope> ParseField(absl::string_view binary);

// Decrypts a parsed value.  Errors: kInvalidArgument with ErrorCode
// kAuthenticationFailed when the value, its key or its location (row,
// column, table, tenant, dataset) does not match; kMalformedHeader for an
// unknown type byte or a payload of the wrong size.  Nothing is released
// on failure.
absl::StatusOr<FieldPlaintext> OpenField(const crypto::internal::NonceAead& aead,
                                         const FieldEnvelope& envelope, const FieldWhere& where);
// The same, decrypting in place into `*payload` (replaced; emptied on
// failure) and returning the type.
absl::StatusOr<FieldType> OpenFieldInto(const crypto::internal::NonceAead& aead,
                                        const FieldEnvelope& envelope, const FieldWhere& where,
                                        std::string* payload);

// The AES-256-SIV key of a deterministic column: HKDF-Expand-SHA-256 of
// the 32-byte data key with info "keyward field deterministic v1" ||
// u32-length-prefixed dataset, table, column and tenant; 64 bytes.
absl::StatusOr<SecretData> DeterministicFieldKey(const SecretData& data_key,
                                                 const FieldWhere& where);

// Encrypts one value deterministically (where.row_id is not used: equal
// values of one column and tenant give equal bytes).  Returns the binary
// form in `*binary` (replaced).
absl::Status SealDeterministicFieldInto(const crypto::DeterministicAead& daead,
                                        uint32_t key_ref, const FieldWhere& where,
                                        FieldType type, absl::string_view payload,
                                        std::string* binary);
// Decrypts a parsed deterministic value into `*payload` (replaced; emptied
// on failure).  Errors: as OpenFieldInto.
absl::StatusOr<FieldType> OpenDeterministicFieldInto(const crypto::DeterministicAead& daead,
                                                     const FieldEnvelope& envelope,
                                                     const FieldWhere& where,
                                                     std::string* payload);

// Text form <-> binary form.  FromText errors: kInvalidArgument
// (kNotAKeywardMessage) without the prefix or with bad base64url.
std::string FieldToText(absl::string_view binary);
absl::StatusOr<std::string> FieldFromText(absl::string_view text);
// The same into `*out` (replaced): for loops that reuse one buffer.
void FieldToTextInto(absl::string_view binary, std::string* out);
absl::Status FieldFromTextInto(absl::string_view text, std::string* out);
// True for a text value carrying the prefix, or binary starting 0x11/0x12.
bool LooksLikeFieldText(absl::string_view text);
bool LooksLikeFieldBinary(absl::string_view bytes);

}  // namespace keyward::format

#endif  // KEYWARD_FORMAT_FIELD_VALUE_H_
