// Field value format v1 (docs/format.md, "Field values").
#include "format/field_value.h"

#include <cstring>

#include "absl/base/internal/endian.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keyward/errors.h"

namespace keyward::format {
namespace {

constexpr absl::string_view kAadLabel = "keyward field v1";

void PutU32(std::string& out, uint32_t v) {
  char b[4];
  absl::big_endian::Store32(b, v);
  out.append(b, 4);
}

void PutPart(std::string& out, absl::string_view part) {
  PutU32(out, static_cast<uint32_t>(part.size()));
  out.append(part.data(), part.size());
}

absl::Status NotAField(absl::string_view why) {
  return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kNotAKeywardMessage,
                   absl::StrCat("not a Keyward field value: ", why));
}

absl::Status PayloadSizeError(FieldType type, size_t size) {
  return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kMalformedHeader,
                   absl::StrCat("field value of type ", static_cast<int>(type), " holds ", size,
                                " bytes, expected 8"));
}

}  // namespace

std::string FieldAad(uint8_t version_and_treatment, uint32_t key_ref,
                     const FieldLocation& where) {
  std::string aad;
  aad.reserve(kAadLabel.size() + kFieldHeaderSize + 20 + where.dataset.size() +
              where.table.size() + where.column.size() + where.tenant.size() +
              where.row_id.size());
  aad.append(kAadLabel.data(), kAadLabel.size());
  aad.push_back(static_cast<char>(version_and_treatment));
  PutU32(aad, key_ref);
  PutPart(aad, where.dataset);
  PutPart(aad, where.table);
  PutPart(aad, where.column);
  PutPart(aad, where.tenant);
  PutPart(aad, where.row_id);
  return aad;
}

absl::StatusOr<std::string> SealField(const crypto::Aead& aead, uint32_t key_ref,
                                      const FieldLocation& where, FieldType type,
                                      absl::string_view payload) {
  if (aead.algorithm() != crypto::AeadAlgorithm::kAes256Gcm) {
    return absl::InternalError("field values are sealed with AES-256-GCM");
  }
  // The plaintext buffer holds the secret: wiped when it goes.
  SecretData plaintext(1 + payload.size());
  plaintext.data()[0] = static_cast<uint8_t>(type);
  if (!payload.empty()) std::memcpy(plaintext.data() + 1, payload.data(), payload.size());
  KW_ASSIGN_OR_RETURN(std::string sealed,
                      aead.Encrypt(plaintext.AsStringView(),
                                   FieldAad(kFieldRandomizedV1, key_ref, where)));
  std::string out;
  out.reserve(kFieldHeaderSize + sealed.size());
  out.push_back(static_cast<char>(kFieldRandomizedV1));
  PutU32(out, key_ref);
  out.append(sealed);
  return out;
}

absl::StatusOr<FieldEnvelope> ParseField(absl::string_view binary) {
  if (binary.empty()) return NotAField("it is empty");
  const uint8_t first = static_cast<uint8_t>(binary[0]);
  if ((first >> 4) != 1) {
    if ((first >> 4) == 2) {  // the next version's first byte
      return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kUnsupportedVersion,
                       absl::StrCat("field value format version ", first >> 4,
                                    " is newer than this build reads (1); upgrade libkeyward"));
    }
    return NotAField("its first byte is not a field format version");
  }
  if (first == kFieldDeterministicV1) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kUnsupportedVersion,
                     "deterministic field values are not supported by this build");
  }
  if (first != kFieldRandomizedV1) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kUnsupportedVersion,
                     absl::StrCat("unknown field treatment ", first & 0x0f));
  }
  if (binary.size() < kFieldOverhead) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kTruncated,
                     absl::StrCat("field value is ", binary.size(), " bytes, the smallest is ",
                                  kFieldOverhead));
  }
  FieldEnvelope e;
  e.version_and_treatment = first;
  e.key_ref = absl::big_endian::Load32(binary.data() + 1);
  e.sealed = binary.substr(kFieldHeaderSize);
  return e;
}

absl::StatusOr<FieldPlaintext> OpenField(const crypto::Aead& aead, const FieldEnvelope& envelope,
                                         const FieldLocation& where) {
  absl::StatusOr<SecretData> plain = aead.Decrypt(
      envelope.sealed, FieldAad(envelope.version_and_treatment, envelope.key_ref, where));
  if (!plain.ok()) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kAuthenticationFailed,
                     absl::StrCat("field ", where.table, ".", where.column,
                                  " failed authentication: the value was modified, or copied "
                                  "from another row, column, table, tenant or data set"));
  }
  if (plain->size() < 1) return NotAField("no type byte");
  const uint8_t type = plain->data()[0];
  if (type < 1 || type > 5) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kMalformedHeader,
                     absl::StrCat("field value has unknown type ", static_cast<int>(type)));
  }
  FieldPlaintext out;
  out.type = static_cast<FieldType>(type);
  out.payload = SecretData(plain->size() - 1);
  if (plain->size() > 1) std::memcpy(out.payload.data(), plain->data() + 1, plain->size() - 1);
  if ((out.type == FieldType::kInteger || out.type == FieldType::kReal) &&
      out.payload.size() != 8) {
    return PayloadSizeError(out.type, out.payload.size());
  }
  return out;
}

std::string FieldToText(absl::string_view binary) {
  std::string out(kFieldTextPrefix);
  out += absl::WebSafeBase64Escape(binary);
  return out;
}

absl::StatusOr<std::string> FieldFromText(absl::string_view text) {
  if (!absl::StartsWith(text, kFieldTextPrefix)) {
    return NotAField(absl::StrCat("text values start with \"", kFieldTextPrefix, "\""));
  }
  std::string binary;
  const absl::string_view body = text.substr(kFieldTextPrefix.size());
  if (body.find_first_of("+/=") != absl::string_view::npos ||
      !absl::WebSafeBase64Unescape(body, &binary)) {
    return NotAField("the text after the prefix is not unpadded base64url");
  }
  return binary;
}

bool LooksLikeFieldText(absl::string_view text) {
  return absl::StartsWith(text, kFieldTextPrefix);
}

bool LooksLikeFieldBinary(absl::string_view bytes) {
  return !bytes.empty() && (static_cast<uint8_t>(bytes[0]) == kFieldRandomizedV1 ||
                            static_cast<uint8_t>(bytes[0]) == kFieldDeterministicV1);
}

}  // namespace keyward::format
