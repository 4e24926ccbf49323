// Field value format v1 (docs/format.md §15).  The hot path seals and opens
// in place in the caller's buffer: a 64-byte field costs little more than
// one AES-GCM call (docs/benchmarks.md, "Field-level encryption").
#include "format/field_value.h"

#include <openssl/crypto.h>

#include <cstring>

#include "absl/base/internal/endian.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "crypto/hkdf.h"
#include "crypto/random.h"
#include "keyward/errors.h"

namespace keyward::format {
namespace {

constexpr absl::string_view kAadLabel = "keyward field v1";
constexpr char kAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char* PutPart(char* o, absl::string_view part) {
  absl::big_endian::Store32(o, static_cast<uint32_t>(part.size()));
  if (!part.empty()) std::memcpy(o + 4, part.data(), part.size());
  return o + 4 + part.size();
}

// The AAD is not secret (names and ids): one buffer per thread saves an
// allocation per value, and it is sized once and filled with memcpy.
const std::string& AadScratch(uint8_t version_and_treatment, uint32_t key_ref,
                              const FieldWhere& where) {
  thread_local std::string aad;
  aad.resize(kAadLabel.size() + kFieldHeaderSize + 20 + where.dataset.size() +
             where.table.size() + where.column.size() + where.tenant.size() +
             where.row_id.size());
  char* o = aad.data();
  std::memcpy(o, kAadLabel.data(), kAadLabel.size());
  o += kAadLabel.size();
  *o++ = static_cast<char>(version_and_treatment);
  absl::big_endian::Store32(o, key_ref);
  o += 4;
  o = PutPart(o, where.dataset);
  o = PutPart(o, where.table);
  o = PutPart(o, where.column);
  o = PutPart(o, where.tenant);
  PutPart(o, where.row_id);
  return aad;
}

absl::Status NotAField(absl::string_view why) {
  return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kNotAKeywardMessage,
                   absl::StrCat("not a Keyward field value: ", why));
}

absl::Status AuthenticationFailed(const FieldWhere& where) {
  return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kAuthenticationFailed,
                   absl::StrCat("field ", where.table, ".", where.column,
                                " failed authentication: the value was modified, or copied "
                                "from another row, column, table, tenant or data set"));
}

// Base64url without padding (RFC 4648 §5), canonical only: the decoder
// refuses anything but the 64 letters and non-zero unused bits, so a value
// has exactly one text form.
// Per position in a group of four, each letter's sextet already shifted
// into place; bit 31 marks a byte outside the alphabet, so one OR over the
// whole input tells whether any byte was bad.
struct SextetTables {
  uint32_t at[4][256];
  constexpr SextetTables() : at() {
    for (int p = 0; p < 4; ++p) {
      for (int i = 0; i < 256; ++i) at[p][i] = 0x80000000u;
      for (int i = 0; i < 64; ++i) {
        at[p][static_cast<uint8_t>(kAlphabet[i])] = static_cast<uint32_t>(i) << (18 - 6 * p);
      }
    }
  }
};
constexpr SextetTables kSextets;

bool DecodeBase64Url(absl::string_view text, std::string* out) {
  if (text.size() % 4 == 1) return false;
  const auto* in = reinterpret_cast<const uint8_t*>(text.data());
  const size_t groups = text.size() / 4, rest = text.size() % 4;
  out->resize(groups * 3 + (rest == 0 ? 0 : rest - 1));
  auto* o = reinterpret_cast<uint8_t*>(out->data());
  const auto& t = kSextets.at;
  uint32_t bad = 0;
  for (size_t g = 0; g < groups; ++g, in += 4, o += 3) {
    const uint32_t v = t[0][in[0]] | t[1][in[1]] | t[2][in[2]] | t[3][in[3]];
    bad |= v;
    o[0] = static_cast<uint8_t>(v >> 16);
    o[1] = static_cast<uint8_t>(v >> 8);
    o[2] = static_cast<uint8_t>(v);
  }
  if (rest == 2) {
    const uint32_t v = t[0][in[0]] | t[1][in[1]];
    bad |= v | ((v & 0x0000f000u) != 0 ? 0x80000000u : 0u);  // unused bits must be zero
    o[0] = static_cast<uint8_t>(v >> 16);
  } else if (rest == 3) {
    const uint32_t v = t[0][in[0]] | t[1][in[1]] | t[2][in[2]];
    bad |= v | ((v & 0x000000c0u) != 0 ? 0x80000000u : 0u);
    o[0] = static_cast<uint8_t>(v >> 16);
    o[1] = static_cast<uint8_t>(v >> 8);
  }
  return (bad & 0x80000000u) == 0;
}

absl::StatusOr<FieldType> CheckTypeAndStrip(std::string* payload);

}  // namespace

std::string FieldAad(uint8_t version_and_treatment, uint32_t key_ref, const FieldWhere& where) {
  return AadScratch(version_and_treatment, key_ref, where);
}

absl::Status SealFieldInto(const crypto::internal::NonceAead& aead, uint32_t key_ref,
                           const FieldWhere& where, FieldType type, absl::string_view payload,
                           std::string* binary) {
  if (aead.algorithm() != crypto::AeadAlgorithm::kAes256Gcm) {
    return absl::InternalError("field values are sealed with AES-256-GCM");
  }
  const size_t n = 1 + payload.size();
  binary->resize(kFieldHeaderSize + kFieldNonceSize + n + 16);
  char* p = binary->data();
  p[0] = static_cast<char>(kFieldRandomizedV1);
  absl::big_endian::Store32(p + 1, key_ref);
  auto* nonce = reinterpret_cast<uint8_t*>(p + kFieldHeaderSize);
  KW_RETURN_IF_ERROR(crypto::FillPublicRandom({nonce, kFieldNonceSize}));
  char* body = p + kFieldHeaderSize + kFieldNonceSize;
  body[0] = static_cast<char>(type);
  if (!payload.empty()) std::memcpy(body + 1, payload.data(), payload.size());
  // Sealed in place: the plaintext never exists outside `binary`, and Seal
  // zeroes it on failure.
  absl::Status sealed =
      aead.Seal(absl::string_view(p + kFieldHeaderSize, kFieldNonceSize), absl::string_view(body, n),
                AadScratch(kFieldRandomizedV1, key_ref, where),
                {reinterpret_cast<uint8_t*>(body), n + 16});
  if (!sealed.ok()) {
    OPENSSL_cleanse(binary->data(), binary->size());
    binary->clear();
  }
  return sealed;
}

absl::StatusOr<std::string> SealField(const crypto::internal::NonceAead& aead, uint32_t key_ref,
                                      const FieldWhere& where, FieldType type,
                                      absl::string_view payload) {
  std::string out;
  KW_RETURN_IF_ERROR(SealFieldInto(aead, key_ref, where, type, payload, &out));
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
  if (first != kFieldRandomizedV1 && first != kFieldDeterministicV1) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kUnsupportedVersion,
                     absl::StrCat("unknown field treatment ", first & 0x0f));
  }
  const size_t smallest =
      first == kFieldRandomizedV1 ? kFieldOverhead : kFieldDeterministicOverhead;
  if (binary.size() < smallest) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kTruncated,
                     absl::StrCat("field value is ", binary.size(), " bytes, the smallest is ",
                                  smallest));
  }
  FieldEnvelope e;
  e.version_and_treatment = first;
  e.key_ref = absl::big_endian::Load32(binary.data() + 1);
  e.sealed = binary.substr(kFieldHeaderSize);
  return e;
}

absl::StatusOr<FieldType> OpenFieldInto(const crypto::internal::NonceAead& aead,
                                        const FieldEnvelope& envelope, const FieldWhere& where,
                                        std::string* payload) {
  if (envelope.deterministic()) {
    return absl::InternalError("a deterministic field value opens with OpenDeterministicFieldInto");
  }
  // ParseField guarantees nonce, at least the type byte, and the tag.
  const size_t n = envelope.sealed.size() - kFieldNonceSize - 16;
  payload->resize(n);
  absl::Status opened = aead.Open(envelope.sealed.substr(0, kFieldNonceSize),
                                  envelope.sealed.substr(kFieldNonceSize),
                                  AadScratch(envelope.version_and_treatment, envelope.key_ref, where),
                                  {reinterpret_cast<uint8_t*>(payload->data()), n});
  if (!opened.ok()) {
    payload->clear();  // Open zeroed it
    return AuthenticationFailed(where);
  }
  return CheckTypeAndStrip(payload);
}

namespace {
// The decrypted (type || payload): checks the type byte and the payload's
// size for it, then drops the type byte.  Wipes and empties on failure.
absl::StatusOr<FieldType> CheckTypeAndStrip(std::string* payload) {
  const uint8_t type = static_cast<uint8_t>((*payload)[0]);
  const size_t size = payload->size() - 1;
  absl::Status bad;
  if (type < 1 || type > 5) {
    bad = MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kMalformedHeader,
                    absl::StrCat("field value has unknown type ", static_cast<int>(type)));
  } else if ((type == 1 || type == 2) && size != 8) {
    bad = MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kMalformedHeader,
                    absl::StrCat("field value of type ", static_cast<int>(type), " holds ", size,
                                 " bytes, expected 8"));
  }
  if (!bad.ok()) {
    OPENSSL_cleanse(payload->data(), payload->size());
    payload->clear();
    return bad;
  }
  payload->erase(0, 1);  // moves the bytes down; the old last byte becomes the terminator
  return static_cast<FieldType>(type);
}
}  // namespace

absl::StatusOr<SecretData> DeterministicFieldKey(const SecretData& data_key,
                                                 const FieldWhere& where) {
  std::string info = "keyward field deterministic v1";
  char len[4];
  for (absl::string_view part : {where.dataset, where.table, where.column, where.tenant}) {
    absl::big_endian::Store32(len, static_cast<uint32_t>(part.size()));
    info.append(len, 4);
    info.append(part.data(), part.size());
  }
  return crypto::HkdfExpand(crypto::HashFunction::kSha256, data_key.AsStringView(), info,
                            crypto::kAesSivKeySize);
}

absl::Status SealDeterministicFieldInto(const crypto::DeterministicAead& daead,
                                        uint32_t key_ref, const FieldWhere& where,
                                        FieldType type, absl::string_view payload,
                                        std::string* binary) {
  const FieldWhere column_wide(where.dataset, where.table, where.column, where.tenant, "");
  std::string plain(1 + payload.size(), '\0');
  plain[0] = static_cast<char>(type);
  if (!payload.empty()) std::memcpy(plain.data() + 1, payload.data(), payload.size());
  absl::StatusOr<std::string> sealed = daead.EncryptDeterministically(
      plain, AadScratch(kFieldDeterministicV1, key_ref, column_wide));
  OPENSSL_cleanse(plain.data(), plain.size());
  if (!sealed.ok()) return sealed.status();
  binary->resize(kFieldHeaderSize);
  (*binary)[0] = static_cast<char>(kFieldDeterministicV1);
  absl::big_endian::Store32(binary->data() + 1, key_ref);
  binary->append(*sealed);
  return absl::OkStatus();
}

absl::StatusOr<FieldType> OpenDeterministicFieldInto(const crypto::DeterministicAead& daead,
                                                     const FieldEnvelope& envelope,
                                                     const FieldWhere& where,
                                                     std::string* payload) {
  if (!envelope.deterministic()) {
    return absl::InternalError("a randomized field value opens with OpenFieldInto");
  }
  const FieldWhere column_wide(where.dataset, where.table, where.column, where.tenant, "");
  absl::StatusOr<SecretData> plain = daead.DecryptDeterministically(
      envelope.sealed,
      AadScratch(envelope.version_and_treatment, envelope.key_ref, column_wide));
  if (!plain.ok() || plain->size() == 0) {
    payload->clear();
    return AuthenticationFailed(where);
  }
  const absl::string_view opened = plain->AsStringView();
  payload->assign(opened.data(), opened.size());
  return CheckTypeAndStrip(payload);
}

absl::StatusOr<FieldPlaintext> OpenField(const crypto::internal::NonceAead& aead,
                                         const FieldEnvelope& envelope, const FieldWhere& where) {
  std::string plain;
  absl::StatusOr<FieldType> type = OpenFieldInto(aead, envelope, where, &plain);
  FieldPlaintext out;
  if (type.ok()) {
    out.type = *type;
    out.payload = SecretData::CopyFrom(plain);
  }
  OPENSSL_cleanse(plain.data(), plain.size());
  if (!type.ok()) return type.status();
  return out;
}

void FieldToTextInto(absl::string_view binary, std::string* out) {
  out->resize(kFieldTextPrefix.size() + (binary.size() * 8 + 5) / 6);
  char* o = out->data();
  std::memcpy(o, kFieldTextPrefix.data(), kFieldTextPrefix.size());
  o += kFieldTextPrefix.size();
  const auto* in = reinterpret_cast<const uint8_t*>(binary.data());
  size_t i = 0;
  for (; i + 3 <= binary.size(); i += 3) {
    const uint32_t v = (uint32_t(in[i]) << 16) | (uint32_t(in[i + 1]) << 8) | in[i + 2];
    *o++ = kAlphabet[v >> 18];
    *o++ = kAlphabet[(v >> 12) & 63];
    *o++ = kAlphabet[(v >> 6) & 63];
    *o++ = kAlphabet[v & 63];
  }
  if (binary.size() - i == 1) {
    *o++ = kAlphabet[in[i] >> 2];
    *o++ = kAlphabet[(in[i] & 3) << 4];
  } else if (binary.size() - i == 2) {
    *o++ = kAlphabet[in[i] >> 2];
    *o++ = kAlphabet[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
    *o++ = kAlphabet[(in[i + 1] & 15) << 2];
  }
}

std::string FieldToText(absl::string_view binary) {
  std::string out;
  FieldToTextInto(binary, &out);
  return out;
}

absl::Status FieldFromTextInto(absl::string_view text, std::string* out) {
  if (!absl::StartsWith(text, kFieldTextPrefix)) {
    return NotAField(absl::StrCat("text values start with \"", kFieldTextPrefix, "\""));
  }
  if (!DecodeBase64Url(text.substr(kFieldTextPrefix.size()), out)) {
    out->clear();
    return NotAField("the text after the prefix is not canonical unpadded base64url");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> FieldFromText(absl::string_view text) {
  std::string out;
  KW_RETURN_IF_ERROR(FieldFromTextInto(text, &out));
  return out;
}

bool LooksLikeFieldText(absl::string_view text) {
  return absl::StartsWith(text, kFieldTextPrefix);
}

bool LooksLikeFieldBinary(absl::string_view bytes) {
  return !bytes.empty() && (static_cast<uint8_t>(bytes[0]) == kFieldRandomizedV1 ||
                            static_cast<uint8_t>(bytes[0]) == kFieldDeterministicV1);
}

}  // namespace keyward::format
