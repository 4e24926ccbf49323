#include "format/header.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "crypto/signature.h"
#include "base/status_macros.h"
#include "format/wire.h"
#include "keyward/errors.h"

namespace keyward::format {
namespace {

absl::Status Malformed(absl::string_view field, absl::string_view what) {
  return MakeError(absl::StatusCode::kInvalidArgument,
                   ErrorCode::kMalformedHeader,
                   absl::StrCat("malformed message header: ", field, " ", what));
}

absl::Status OverLimit(absl::string_view field, size_t got, size_t limit) {
  return MakeError(absl::StatusCode::kInvalidArgument,
                   ErrorCode::kLimitExceeded,
                   absl::StrCat("message header ", field, " is ", got,
                                ", over the limit of ", limit,
                                " (docs/format.md#limits)"));
}

// Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    size_t extra;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;
    for (size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
        (extra == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

bool IsLowerAlnumOrDash(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

absl::Status ValidateProviderId(absl::string_view id) {
  if (id.empty()) return Malformed("data key provider id", "is empty");
  if (id.size() > FormatLimits::kMaxProviderIdSize) {
    return OverLimit("data key provider id length", id.size(),
                     FormatLimits::kMaxProviderIdSize);
  }
  for (char c : id) {
    if (!IsLowerAlnumOrDash(c)) {
      return Malformed("data key provider id",
                       "may only contain a-z, 0-9 and '-'");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateDataKeys(const std::vector<EncryptedDataKey>& keys) {
  if (keys.empty()) return Malformed("data key count", "is 0");
  if (keys.size() > FormatLimits::kMaxDataKeys) {
    return OverLimit("data key count", keys.size(), FormatLimits::kMaxDataKeys);
  }
  for (const EncryptedDataKey& k : keys) {
    KW_RETURN_IF_ERROR(ValidateProviderId(k.provider_id));
    if (k.provider_info.size() > FormatLimits::kMaxProviderInfoSize) {
      return OverLimit("data key provider info length", k.provider_info.size(),
                       FormatLimits::kMaxProviderInfoSize);
    }
    if (k.ciphertext.empty()) {
      return Malformed("wrapped data key", "is empty");
    }
    if (k.ciphertext.size() > FormatLimits::kMaxWrappedKeySize) {
      return OverLimit("wrapped data key length", k.ciphertext.size(),
                       FormatLimits::kMaxWrappedKeySize);
    }
  }
  return absl::OkStatus();
}

// Reads header fields from a stream, keeping the exact bytes and enforcing
// the total header size before every read.
class HeaderParser {
 public:
  // Reads from a stream, copying each field into `raw`.
  HeaderParser(InputStream& in, std::string* raw) : in_(&in), raw_(raw) {}
  // Reads from bytes already in memory: fields are views into them, and
  // nothing is copied until the caller asks for the authenticated bytes.
  explicit HeaderParser(absl::string_view bytes) : bytes_(bytes) {}

  size_t consumed() const { return in_ != nullptr ? raw_->size() : pos_; }

  // Reads exactly n bytes of `field` (+ `suffix`, named only in errors, so
  // that the common path builds no strings) and returns a view (valid until
  // the next read).
  absl::StatusOr<absl::string_view> Bytes(size_t n, absl::string_view field,
                                          absl::string_view suffix = "") {
    const size_t old = consumed();
    if (old + n > FormatLimits::kMaxHeaderSize) {
      return OverLimit(absl::StrCat("size (at ", field, suffix, ")"), old + n,
                       FormatLimits::kMaxHeaderSize);
    }
    size_t got = n;
    if (in_ == nullptr) {
      got = std::min(n, bytes_.size() - pos_);
      pos_ += got;
    } else {
      raw_->resize(old + n);
      KW_ASSIGN_OR_RETURN(
          got, ReadFully(*in_, {reinterpret_cast<uint8_t*>(raw_->data()) + old, n}));
      if (got != n) raw_->resize(old + got);
    }
    if (got != n) {
      return MakeError(absl::StatusCode::kDataLoss, ErrorCode::kTruncated,
                       absl::StrCat("the message ends inside its header (in ",
                                    field, suffix, "); the file is truncated"));
    }
    return (in_ == nullptr ? bytes_ : absl::string_view(*raw_)).substr(old, n);
  }

  absl::StatusOr<uint64_t> Uint(size_t width, absl::string_view field,
                                absl::string_view suffix = "") {
    KW_ASSIGN_OR_RETURN(absl::string_view b, Bytes(width, field, suffix));
    return LoadBigEndian(b);
  }

  // A length-prefixed string: `width`-byte length, then that many bytes.
  absl::StatusOr<std::string> Sized(size_t width, size_t min, size_t max,
                                    absl::string_view field) {
    KW_ASSIGN_OR_RETURN(uint64_t len, Uint(width, field, " length"));
    if (len > max) return OverLimit(absl::StrCat(field, " length"), len, max);
    if (len < min) {
      return Malformed(field, absl::StrCat("is shorter than ", min,
                                           min == 1 ? " byte" : " bytes"));
    }
    KW_ASSIGN_OR_RETURN(absl::string_view b, Bytes(len, field));
    return std::string(b);
  }

 private:
  InputStream* in_ = nullptr;
  std::string* raw_ = nullptr;
  absl::string_view bytes_;
  size_t pos_ = 0;
};

}  // namespace

bool IsKnownSuite(uint16_t suite_id) {
  return suite_id ==
             static_cast<uint16_t>(Suite::kAes256GcmHkdfSha256Commit) ||
         suite_id ==
             static_cast<uint16_t>(Suite::kChaCha20Poly1305HkdfSha256Commit) ||
         suite_id == static_cast<uint16_t>(Suite::kAes256GcmHkdfSha256CommitEcdsaP384);
}

absl::StatusOr<std::string> SigningKeyOf(Suite suite, const EncryptionContext& context) {
  auto it = context.find(kSigningKeyContextKey);
  if (!IsSignedSuite(suite)) {
    if (it != context.end()) {
      // Its data key was made for signed messages only.
      return Malformed("encryption context",
                       "has a signing key but the message's suite is not signed");
    }
    return std::string();
  }
  if (it == context.end()) {
    return Malformed("encryption context", "lacks the signing key its signed suite needs");
  }
  std::string point;
  // Canonical base64 only: exactly what encoding the point gives.
  if (!absl::Base64Unescape(it->second, &point) || absl::Base64Escape(point) != it->second ||
      point.size() != crypto::kEcdsaP384CompressedPointSize ||
      !crypto::EcdsaP384Verifier::FromPoint(point).ok()) {
    return Malformed("signing key", "is not the base64 of a compressed P-384 point");
  }
  return point;
}

absl::Status ValidateEnvironment(absl::string_view environment) {
  if (environment.empty()) return Malformed("environment", "is empty");
  if (environment.size() > FormatLimits::kMaxEnvironmentSize) {
    return OverLimit("environment length", environment.size(),
                     FormatLimits::kMaxEnvironmentSize);
  }
  for (char c : environment) {
    if (!IsLowerAlnumOrDash(c)) {
      return Malformed("environment", "may only contain a-z, 0-9 and '-'");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateKeyName(absl::string_view name) {
  if (name.empty()) return Malformed("key name", "is empty");
  if (name.size() > FormatLimits::kMaxKeyNameSize) {
    return OverLimit("key name length", name.size(),
                     FormatLimits::kMaxKeyNameSize);
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                    c == '.' || c == '/';
    if (!ok) {
      return Malformed("key name",
                       "may only contain letters, digits, '-', '_', '.' and "
                       "'/'");
    }
  }
  if (name.front() == '/' || name.back() == '/' ||
      name.find("//") != absl::string_view::npos) {
    return Malformed("key name",
                     "must not start or end with '/' or contain '//'");
  }
  return absl::OkStatus();
}

absl::Status ValidateContext(const EncryptionContext& context) {
  if (context.size() > FormatLimits::kMaxContextEntries) {
    return OverLimit("encryption context entry count", context.size(),
                     FormatLimits::kMaxContextEntries);
  }
  for (const auto& [key, value] : context) {
    if (key.empty()) return Malformed("encryption context key", "is empty");
    if (key.size() > FormatLimits::kMaxContextKeySize) {
      return OverLimit("encryption context key length", key.size(),
                       FormatLimits::kMaxContextKeySize);
    }
    if (value.size() > FormatLimits::kMaxContextValueSize) {
      return OverLimit("encryption context value length", value.size(),
                       FormatLimits::kMaxContextValueSize);
    }
    if (!IsValidUtf8(key) || !IsValidUtf8(value)) {
      return Malformed("encryption context", "is not valid UTF-8");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateFrameSize(uint32_t frame_size) {
  if (frame_size < FormatLimits::kMinFrameSize ||
      frame_size > FormatLimits::kMaxFrameSize) {
    return MakeError(
        absl::StatusCode::kInvalidArgument, ErrorCode::kLimitExceeded,
        absl::StrCat("frame size ", frame_size, " is outside ",
                     FormatLimits::kMinFrameSize, "..",
                     FormatLimits::kMaxFrameSize, " bytes"));
  }
  return absl::OkStatus();
}

std::string SerializeContext(const EncryptionContext& context) {
  std::string out;
  AppendBigEndian(&out, context.size(), 2);
  for (const auto& [key, value] : context) {
    AppendBigEndian(&out, key.size(), 2);
    out.append(key);
    AppendBigEndian(&out, value.size(), 2);
    out.append(value);
  }
  return out;
}

absl::StatusOr<std::string> SerializeAuthenticatedHeader(const Header& h) {
  if (!IsKnownSuite(static_cast<uint16_t>(h.suite))) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     ErrorCode::kUnsupportedSuite, "unknown algorithm suite");
  }
  if (h.message_id.size() != kMessageIdSize) {
    return Malformed("message id", "must be 32 bytes");
  }
  if (h.commitment.size() != kCommitmentSize) {
    return Malformed("key commitment", "must be 32 bytes");
  }
  KW_RETURN_IF_ERROR(ValidateFrameSize(h.frame_size));
  KW_RETURN_IF_ERROR(ValidateEnvironment(h.key.environment));
  KW_RETURN_IF_ERROR(ValidateKeyName(h.key.key_name));
  if (h.key.key_version == 0) return Malformed("key version", "is 0");
  KW_RETURN_IF_ERROR(ValidateContext(h.context));
  KW_RETURN_IF_ERROR(ValidateDataKeys(h.data_keys));

  std::string out;
  out.reserve(256);
  out.append(kMagic.data(), kMagic.size());
  out.push_back(static_cast<char>(kFormatVersion));
  AppendBigEndian(&out, static_cast<uint16_t>(h.suite), 2);
  out.append(h.message_id);
  AppendBigEndian(&out, h.frame_size, 4);
  AppendBigEndian(&out, h.key.environment.size(), 1);
  out.append(h.key.environment);
  AppendBigEndian(&out, h.key.key_name.size(), 2);
  out.append(h.key.key_name);
  AppendBigEndian(&out, h.key.key_version, 4);
  out.append(SerializeContext(h.context));
  AppendBigEndian(&out, h.data_keys.size(), 1);
  for (const EncryptedDataKey& k : h.data_keys) {
    AppendBigEndian(&out, k.provider_id.size(), 1);
    out.append(k.provider_id);
    AppendBigEndian(&out, k.provider_info.size(), 2);
    out.append(k.provider_info);
    AppendBigEndian(&out, k.ciphertext.size(), 2);
    out.append(k.ciphertext);
  }
  out.append(h.commitment);
  if (out.size() + kHeaderTagSize > FormatLimits::kMaxHeaderSize) {
    return OverLimit("size", out.size() + kHeaderTagSize,
                     FormatLimits::kMaxHeaderSize);
  }
  return out;
}

namespace {

// Parses every field; returns the header and the size of its authenticated
// part (magic through commitment).
absl::StatusOr<Header> ParseFields(HeaderParser& p, size_t* authenticated_size) {
  Header h;

  // The magic decides "is this a Keyward message at all", so a short or
  // foreign input gets that answer rather than "truncated".
  {
    auto magic = p.Bytes(kMagic.size(), "magic");
    if (!magic.ok() || *magic != kMagic) {
      if (!magic.ok() && GetErrorCode(magic.status()) != ErrorCode::kTruncated) {
        return magic.status();
      }
      return MakeError(absl::StatusCode::kInvalidArgument,
                       ErrorCode::kNotAKeywardMessage,
                       "not a Keyward message: it does not start with the "
                       "\"KWRD\" magic bytes");
    }
  }
  KW_ASSIGN_OR_RETURN(uint64_t version, p.Uint(1, "format version"));
  if (version != kFormatVersion) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     ErrorCode::kUnsupportedVersion,
                     absl::StrCat("unsupported message format version ",
                                  version, "; this build reads version 1 "
                                  "(upgrade Keyward to read newer messages)"));
  }
  KW_ASSIGN_OR_RETURN(uint64_t suite, p.Uint(2, "suite id"));
  if (!IsKnownSuite(static_cast<uint16_t>(suite))) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     ErrorCode::kUnsupportedSuite,
                     absl::StrCat("unsupported algorithm suite 0x",
                                  absl::Hex(suite, absl::kZeroPad4)));
  }
  h.suite = static_cast<Suite>(suite);
  KW_ASSIGN_OR_RETURN(absl::string_view id, p.Bytes(kMessageIdSize, "message id"));
  h.message_id = std::string(id);
  KW_ASSIGN_OR_RETURN(uint64_t frame_size, p.Uint(4, "frame size"));
  h.frame_size = static_cast<uint32_t>(frame_size);
  KW_RETURN_IF_ERROR(ValidateFrameSize(h.frame_size));

  KW_ASSIGN_OR_RETURN(h.key.environment,
                      p.Sized(1, 1, FormatLimits::kMaxEnvironmentSize,
                              "environment"));
  KW_RETURN_IF_ERROR(ValidateEnvironment(h.key.environment));
  KW_ASSIGN_OR_RETURN(h.key.key_name,
                      p.Sized(2, 1, FormatLimits::kMaxKeyNameSize, "key name"));
  KW_RETURN_IF_ERROR(ValidateKeyName(h.key.key_name));
  KW_ASSIGN_OR_RETURN(uint64_t key_version, p.Uint(4, "key version"));
  if (key_version == 0) return Malformed("key version", "is 0");
  h.key.key_version = static_cast<uint32_t>(key_version);

  KW_ASSIGN_OR_RETURN(uint64_t entries,
                      p.Uint(2, "encryption context entry count"));
  if (entries > FormatLimits::kMaxContextEntries) {
    return OverLimit("encryption context entry count", entries,
                     FormatLimits::kMaxContextEntries);
  }
  std::string previous_key;
  for (uint64_t i = 0; i < entries; ++i) {
    // Each field's rules as soon as it is read (docs/format.md §4.1): the
    // key's encoding and order before its value is even looked at.
    KW_ASSIGN_OR_RETURN(std::string key,
                        p.Sized(2, 1, FormatLimits::kMaxContextKeySize,
                                "encryption context key"));
    if (!IsValidUtf8(key)) return Malformed("encryption context key", "is not valid UTF-8");
    if (i > 0 && !(previous_key < key)) {
      return Malformed("encryption context",
                       "keys are not in strictly increasing byte order");
    }
    KW_ASSIGN_OR_RETURN(std::string value,
                        p.Sized(2, 0, FormatLimits::kMaxContextValueSize,
                                "encryption context value"));
    if (!IsValidUtf8(value)) {
      return Malformed("encryption context value", "is not valid UTF-8");
    }
    previous_key = key;
    h.context.emplace_hint(h.context.end(), std::move(key), std::move(value));
  }
  KW_RETURN_IF_ERROR(SigningKeyOf(h.suite, h.context).status());

  KW_ASSIGN_OR_RETURN(uint64_t key_count, p.Uint(1, "data key count"));
  if (key_count == 0) return Malformed("data key count", "is 0");
  if (key_count > FormatLimits::kMaxDataKeys) {
    return OverLimit("data key count", key_count, FormatLimits::kMaxDataKeys);
  }
  for (uint64_t i = 0; i < key_count; ++i) {
    EncryptedDataKey k;
    KW_ASSIGN_OR_RETURN(k.provider_id,
                        p.Sized(1, 1, FormatLimits::kMaxProviderIdSize,
                                "data key provider id"));
    KW_RETURN_IF_ERROR(ValidateProviderId(k.provider_id));
    KW_ASSIGN_OR_RETURN(k.provider_info,
                        p.Sized(2, 0, FormatLimits::kMaxProviderInfoSize,
                                "data key provider info"));
    KW_ASSIGN_OR_RETURN(k.ciphertext,
                        p.Sized(2, 1, FormatLimits::kMaxWrappedKeySize,
                                "wrapped data key"));
    h.data_keys.push_back(std::move(k));
  }
  KW_ASSIGN_OR_RETURN(absl::string_view commitment,
                      p.Bytes(kCommitmentSize, "key commitment"));
  h.commitment = std::string(commitment);
  *authenticated_size = p.consumed();
  KW_ASSIGN_OR_RETURN(absl::string_view tag,
                      p.Bytes(kHeaderTagSize, "header tag"));
  h.tag = std::string(tag);
  return h;
}

}  // namespace

absl::StatusOr<Header> ReadHeader(InputStream& in, std::string* raw) {
  raw->clear();
  raw->reserve(512);  // a typical header, without regrowing per field
  HeaderParser p(in, raw);
  size_t authenticated_size = 0;
  KW_ASSIGN_OR_RETURN(Header h, ParseFields(p, &authenticated_size));
  raw->resize(authenticated_size);
  return h;
}

absl::StatusOr<Header> ParseHeader(absl::string_view bytes, std::string* authenticated,
                                   size_t* header_size) {
  HeaderParser p(bytes);
  size_t authenticated_size = 0;
  KW_ASSIGN_OR_RETURN(Header h, ParseFields(p, &authenticated_size));
  authenticated->assign(bytes.data(), authenticated_size);
  if (header_size != nullptr) *header_size = p.consumed();
  return h;
}

}  // namespace keyward::format
