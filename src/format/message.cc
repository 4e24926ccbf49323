// Keyward message format v1: encryption, decryption, rewrap and inspection.
// docs/format.md is the normative description.
#include "keyward/message.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "crypto/random.h"
#include "crypto/signature.h"
#include "format/encrypt_materials.h"
#include "format/header.h"
#include "format/message_keys.h"
#include "format/wire.h"
#include "keyward/errors.h"

namespace keyward {

using crypto::kAeadTagSize;
using crypto::internal::NonceAead;
using format::Header;
using format::MessageKeys;

absl::string_view SuiteName(Suite suite) {
  switch (suite) {
    case Suite::kAes256GcmHkdfSha256Commit:
      return "AES-256-GCM-HKDF-SHA256-COMMIT";
    case Suite::kChaCha20Poly1305HkdfSha256Commit:
      return "CHACHA20-POLY1305-HKDF-SHA256-COMMIT";
    case Suite::kAes256GcmHkdfSha256CommitEcdsaP384:
      return "AES-256-GCM-HKDF-SHA256-COMMIT-ECDSA-P384";
  }
  return "unknown";
}

namespace {

// A frame on the wire: type byte, 4-byte length (final frame only), then
// ciphertext and tag.  The encryptor seals in place behind this prefix.
constexpr size_t kFramePrefix = 5;

absl::Status Truncated(absl::string_view where) {
  return MakeError(absl::StatusCode::kDataLoss, ErrorCode::kTruncated,
                   absl::StrCat("the message is truncated: it ends ", where));
}

absl::Status FrameLimit() {
  return MakeError(absl::StatusCode::kInvalidArgument,
                   ErrorCode::kLimitExceeded,
                   absl::StrCat("the message has more than ",
                                FormatLimits::kMaxFrames,
                                " frames, the format's limit; use a larger "
                                "frame size"));
}

absl::Span<uint8_t> MutableBytes(std::string& s) {
  return {reinterpret_cast<uint8_t*>(s.data()), s.size()};
}

absl::string_view View(const uint8_t* p, size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

absl::StatusOr<std::string> ComputeHeaderTag(const NonceAead& aead,
                                             absl::string_view authenticated) {
  std::string tag(kAeadTagSize, '\0');
  const auto nonce = format::SequenceNonce(0);
  KW_RETURN_IF_ERROR(aead.Seal(absl::string_view(nonce.data(), nonce.size()),
                               "", authenticated, MutableBytes(tag)));
  return tag;
}

// What a signed message's signature covers before its body (docs/format.md
// §7.1): everything but the key reference, the wrapped data keys and the
// header tag, which a rewrap changes.
std::string SignedPrefix(const Header& h) {
  std::string p = "keyward signed message v1";
  format::AppendBigEndian(&p, static_cast<uint16_t>(h.suite), 2);
  p.append(h.message_id);
  format::AppendBigEndian(&p, h.frame_size, 4);
  p.append(format::SerializeContext(h.context));
  p.append(h.commitment);
  return p;
}

// u16 length || DER signature, after the final frame.
absl::StatusOr<std::string> SignatureFooter(crypto::EcdsaP384Signer& signer) {
  KW_ASSIGN_OR_RETURN(std::string sig, signer.Finish());
  std::string footer;
  format::AppendBigEndian(&footer, sig.size(), 2);
  footer.append(sig);
  return footer;
}

struct PreparedHeader {
  std::string bytes;  // authenticated part followed by the tag
  MessageKeys keys;
  uint32_t frame_size = 0;
  crypto::EcdsaP384Signer* signer = nullptr;  // signed suites
};

absl::StatusOr<PreparedHeader> PrepareHeader(
    const format::EncryptionMaterials& m) {
  if (m.data_key == nullptr) {
    return absl::InvalidArgumentError("encryption materials lack a data key");
  }
  KW_RETURN_IF_ERROR(format::ValidateFrameSize(m.frame_size));
  Header h;
  h.suite = m.suite;
  h.frame_size = m.frame_size;
  h.key = m.key;
  h.context = m.context;
  h.data_keys = m.data_keys;
  if (m.message_id.empty()) {
    KW_ASSIGN_OR_RETURN(h.message_id,
                        crypto::RandomBytes(format::kMessageIdSize));
  } else {
    h.message_id = m.message_id;
  }
  PreparedHeader prepared;
  KW_ASSIGN_OR_RETURN(prepared.keys,
                      format::DeriveMessageKeys(h.suite, *m.data_key,
                                                h.message_id));
  h.commitment = prepared.keys.commitment;
  KW_ASSIGN_OR_RETURN(prepared.bytes, format::SerializeAuthenticatedHeader(h));
  if (IsSignedSuite(h.suite)) {
    KW_ASSIGN_OR_RETURN(std::string key, format::SigningKeyOf(h.suite, h.context));
    if (m.signer == nullptr || m.signer->public_key() != key) {
      return absl::InvalidArgumentError(
          "a signed message needs the signer whose public key its context carries");
    }
    prepared.signer = m.signer;
    KW_RETURN_IF_ERROR(prepared.signer->Update(SignedPrefix(h)));
  }
  KW_ASSIGN_OR_RETURN(std::string tag,
                      ComputeHeaderTag(*prepared.keys.aead, prepared.bytes));
  prepared.bytes.append(tag);
  prepared.frame_size = h.frame_size;
  return prepared;
}

// Asks the keyrings for a data key: keyrings[0] generates it, the others
// add wrapped copies.  `data_key` receives the plaintext data key.
absl::StatusOr<format::EncryptionMaterials> MaterialsFromKeyrings(
    const EncryptionContext& caller_context, absl::Span<const KeyWrapper* const> keyrings,
    const EncryptOptions& options, SecretData* data_key,
    std::unique_ptr<crypto::EcdsaP384Signer>* signer) {
  if (keyrings.empty() || keyrings[0] == nullptr) {
    return absl::InvalidArgumentError(
        "encryption needs at least one keyring (a KMS key or a raw key)");
  }
  if (!format::IsKnownSuite(static_cast<uint16_t>(options.suite))) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     ErrorCode::kUnsupportedSuite, "unknown algorithm suite");
  }
  KW_RETURN_IF_ERROR(format::ValidateFrameSize(options.frame_size));
  if (caller_context.count(kSigningKeyContextKey) > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the encryption context key '", kSigningKeyContextKey,
        "' is reserved: Keyward adds it to signed messages itself"));
  }
  // A signed message's key pair is made first: its public key goes into
  // the context, so every keyring binds it into its wrapped data key.
  EncryptionContext context = caller_context;
  if (IsSignedSuite(options.suite)) {
    KW_ASSIGN_OR_RETURN(*signer, crypto::EcdsaP384Signer::Generate());
    context[kSigningKeyContextKey] = absl::Base64Escape((*signer)->public_key());
  }
  KW_RETURN_IF_ERROR(format::ValidateContext(context));
  if (keyrings.size() > FormatLimits::kMaxDataKeys) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     ErrorCode::kLimitExceeded,
                     absl::StrCat("a message holds at most ",
                                  FormatLimits::kMaxDataKeys, " data keys"));
  }
  format::EncryptionMaterials m;
  m.suite = options.suite;
  m.frame_size = options.frame_size;
  m.context = context;
  KW_ASSIGN_OR_RETURN(GeneratedDataKey generated,
                      keyrings[0]->GenerateDataKey(context));
  m.key = std::move(generated.key);
  m.data_keys.push_back(std::move(generated.encrypted));
  for (size_t i = 1; i < keyrings.size(); ++i) {
    if (keyrings[i] == nullptr) return absl::InvalidArgumentError("null keyring");
    KW_ASSIGN_OR_RETURN(WrappedDataKey wrapped,
                        keyrings[i]->WrapDataKey(generated.plaintext, context));
    m.data_keys.push_back(std::move(wrapped.encrypted));
  }
  *data_key = std::move(generated.plaintext);
  m.signer = signer->get();
  return m;
}

absl::Status WriteBody(InputStream& in, OutputStream& out,
                       const NonceAead& aead, uint32_t frame_size,
                       crypto::EcdsaP384Signer* signer) {
  // Layout: [type][length(4)][payload: frame_size][tag(16)].  Each read asks
  // for one byte more than a frame: getting it proves the frame is not the
  // last, without a separate one-byte read per frame.
  SecretData buffer(kFramePrefix + frame_size + kAeadTagSize);
  uint8_t* const payload = buffer.data() + kFramePrefix;
  KW_ASSIGN_OR_RETURN(size_t n, ReadFully(in, {payload, frame_size + 1u}));
  for (uint64_t seq = 1;; ++seq) {
    if (seq > FormatLimits::kMaxFrames) return FrameLimit();
    const bool final = n <= frame_size;
    const size_t length = final ? n : frame_size;
    const uint8_t next = final ? 0 : payload[frame_size];  // sealing overwrites it
    const auto nonce = format::SequenceNonce(seq);
    const auto aad = format::FrameAad(seq, final);
    KW_RETURN_IF_ERROR(aead.Seal(absl::string_view(nonce.data(), nonce.size()),
                                 View(payload, length),
                                 absl::string_view(aad.data(), aad.size()),
                                 {payload, length + kAeadTagSize}));
    if (final) {
      buffer.data()[0] = format::kFinalFrame;
      format::StoreBigEndian(buffer.data() + 1, length, 4);
      const absl::string_view frame = View(buffer.data(), kFramePrefix + length + kAeadTagSize);
      KW_RETURN_IF_ERROR(out.Write(frame));
      if (signer == nullptr) return absl::OkStatus();
      KW_RETURN_IF_ERROR(signer->Update(frame));
      KW_ASSIGN_OR_RETURN(std::string footer, SignatureFooter(*signer));
      return out.Write(footer);
    }
    buffer.data()[kFramePrefix - 1] = format::kRegularFrame;
    const absl::string_view frame =
        View(payload - 1, 1 + static_cast<size_t>(frame_size) + kAeadTagSize);
    KW_RETURN_IF_ERROR(out.Write(frame));
    if (signer != nullptr) KW_RETURN_IF_ERROR(signer->Update(frame));
    payload[0] = next;
    KW_ASSIGN_OR_RETURN(size_t more, ReadFully(in, {payload + 1, frame_size}));
    n = 1 + more;
  }
}

struct OpenedHeader {
  Header header;
  std::string authenticated;
  SecretData data_key;
  MessageKeys keys;
  // Signed suites: fed the signed prefix, then every frame.
  std::unique_ptr<crypto::EcdsaP384Verifier> verifier;
};

absl::Status CheckExpectations(const Header& h, const DecryptOptions& options) {
  if (!options.expected_environment.empty() &&
      options.expected_environment != h.key.environment) {
    return MakeError(
        absl::StatusCode::kFailedPrecondition, ErrorCode::kEnvironmentMismatch,
        absl::StrCat("the message belongs to environment '", h.key.environment,
                     "' but this client is configured for '",
                     options.expected_environment,
                     "'; environments never share keys or data"));
  }
  for (const auto& [key, value] : options.expected_context) {
    auto it = h.context.find(key);
    if (it == h.context.end()) {
      return MakeError(absl::StatusCode::kFailedPrecondition,
                       ErrorCode::kContextMismatch,
                       absl::StrCat("encryption context mismatch: the message "
                                    "has no context key '", key, "'"));
    }
    if (it->second != value) {
      return MakeError(absl::StatusCode::kFailedPrecondition,
                       ErrorCode::kContextMismatch,
                       absl::StrCat("encryption context mismatch: the "
                                    "message's value for '", key,
                                    "' differs from the expected one"));
    }
  }
  return absl::OkStatus();
}

// Checks a parsed header against the options and unwraps its data key.
absl::StatusOr<OpenedHeader> UnlockHeader(OpenedHeader opened,
                                          absl::Span<const KeyUnwrapper* const> keyrings,
                                          const DecryptOptions& options) {
  const Header& h = opened.header;
  KW_RETURN_IF_ERROR(CheckExpectations(h, options));
  if (options.require_signed && !IsSignedSuite(h.suite)) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kUnsupportedSuite,
                     absl::StrCat("this reader accepts signed messages only; the message's "
                                  "suite ", SuiteName(h.suite), " is not signed"));
  }
  if (IsSignedSuite(h.suite)) {
    KW_ASSIGN_OR_RETURN(std::string key, format::SigningKeyOf(h.suite, h.context));
    KW_ASSIGN_OR_RETURN(opened.verifier, crypto::EcdsaP384Verifier::FromPoint(key));
    KW_RETURN_IF_ERROR(opened.verifier->Update(SignedPrefix(h)));
  }
  if (h.frame_size > options.max_frame_size) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     ErrorCode::kLimitExceeded,
                     absl::StrCat("the message's frame size ", h.frame_size,
                                  " is above this reader's limit of ",
                                  options.max_frame_size));
  }
  if (keyrings.empty()) {
    return absl::InvalidArgumentError(
        "decryption needs at least one keyring (a KMS key or a raw key)");
  }
  bool commitment_failed = false;
  std::vector<std::string> failures;
  for (const EncryptedDataKey& edk : h.data_keys) {
    for (const KeyUnwrapper* keyring : keyrings) {
      if (keyring == nullptr) continue;
      auto data_key = keyring->UnwrapDataKey(edk, h.context);
      if (absl::IsNotFound(data_key.status())) continue;
      if (!data_key.ok()) {
        failures.push_back(absl::StrCat(edk.provider_id, " ",
                                        edk.provider_info, ": ",
                                        data_key.status().message()));
        continue;
      }
      KW_ASSIGN_OR_RETURN(MessageKeys keys,
                          format::DeriveMessageKeys(h.suite, *data_key,
                                                    h.message_id));
      if (!ConstantTimeEquals(keys.commitment, h.commitment)) {
        commitment_failed = true;
        continue;
      }
      const auto nonce = format::SequenceNonce(0);
      absl::Status tag_ok = keys.aead->Open(
          absl::string_view(nonce.data(), nonce.size()), h.tag,
          opened.authenticated, {});
      if (!tag_ok.ok()) {
        return MakeError(absl::StatusCode::kDataLoss,
                         ErrorCode::kAuthenticationFailed,
                         "the message header failed authentication: a header "
                         "field or the header tag was modified");
      }
      opened.data_key = std::move(*data_key);
      opened.keys = std::move(keys);
      return opened;
    }
  }
  if (commitment_failed) {
    return MakeError(
        absl::StatusCode::kDataLoss, ErrorCode::kCommitmentMismatch,
        "a data key was unwrapped but does not match the message's key "
        "commitment: the message was tampered with or crafted to decrypt "
        "differently under different keys");
  }
  std::string entries;
  for (const EncryptedDataKey& edk : h.data_keys) {
    absl::StrAppend(&entries, entries.empty() ? "" : ", ", edk.provider_id,
                    edk.provider_info.empty() ? "" : " ", edk.provider_info);
  }
  std::string detail;
  for (const std::string& f : failures) absl::StrAppend(&detail, "; ", f);
  return MakeError(
      absl::StatusCode::kFailedPrecondition, ErrorCode::kNoKeyringCouldUnwrap,
      absl::StrCat("none of the ", keyrings.size(),
                   " keyring(s) could unwrap the message's data key (it is "
                   "wrapped for: ", entries, ")", detail));
}

absl::StatusOr<OpenedHeader> OpenHeader(InputStream& in,
                                        absl::Span<const KeyUnwrapper* const> keyrings,
                                        const DecryptOptions& options) {
  OpenedHeader opened;
  KW_ASSIGN_OR_RETURN(opened.header, format::ReadHeader(in, &opened.authenticated));
  return UnlockHeader(std::move(opened), keyrings, options);
}

// The same for a header at the front of bytes in memory; `header_size`
// receives the offset of the body.
absl::StatusOr<OpenedHeader> OpenHeader(absl::string_view bytes,
                                        absl::Span<const KeyUnwrapper* const> keyrings,
                                        const DecryptOptions& options,
                                        size_t* header_size = nullptr) {
  OpenedHeader opened;
  KW_ASSIGN_OR_RETURN(opened.header,
                      format::ParseHeader(bytes, &opened.authenticated, header_size));
  return UnlockHeader(std::move(opened), keyrings, options);
}

// Where frames come from: a stream (through a buffer of one frame) or a
// message already in memory (zero copy).
class FrameSource {
 public:
  virtual ~FrameSource() = default;
  // Up to `n` bytes without consuming them: fewer only at the end of the
  // input.  The view is valid until the next call.
  virtual absl::StatusOr<absl::string_view> Peek(size_t n) = 0;
  // Consumes `n` bytes. REQUIRES: n <= the size of the last Peek.
  virtual void Consume(size_t n) = 0;
};

// Reads a frame with one read system call (the reader peeks at a whole
// regular frame's worth, then consumes what the frame turns out to hold).
// Also serves as the InputStream the header parser reads from, reading
// ahead a little so header fields do not each cost a system call.
class StreamFrameSource final : public FrameSource, public InputStream {
 public:
  // The buffer grows to the largest Peek (a frame and its tag, bounded by
  // the frame size limit the header was checked against).
  explicit StreamFrameSource(InputStream& in) : in_(in) {}

  absl::StatusOr<absl::string_view> Peek(size_t n) override {
    KW_RETURN_IF_ERROR(Fill(n));
    return absl::string_view(buffer_.data() + begin_, std::min(n, end_ - begin_));
  }
  void Consume(size_t n) override { begin_ += n; }

  absl::StatusOr<size_t> Read(absl::Span<uint8_t> out) override {
    KW_RETURN_IF_ERROR(Fill(std::min<size_t>(out.size(), kMinRead)));
    const size_t take = std::min(out.size(), end_ - begin_);
    if (take > 0) std::memcpy(out.data(), buffer_.data() + begin_, take);
    begin_ += take;
    return take;
  }

 private:
  static constexpr size_t kMinRead = 4096;

  // Makes at least `n` bytes available unless the input ends first.
  absl::Status Fill(size_t n) {
    if (end_ - begin_ >= n || eof_) return absl::OkStatus();
    const size_t target = std::max(n, kMinRead);
    if (buffer_.size() < target) buffer_.resize(target);
    if (begin_ + target > buffer_.size()) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    while (end_ - begin_ < n && !eof_) {
      const size_t want = begin_ + target - end_;
      KW_ASSIGN_OR_RETURN(size_t got,
                          in_.Read(MutableBytes(buffer_).subspan(end_, want)));
      if (got == 0) eof_ = true;
      end_ += got;
    }
    return absl::OkStatus();
  }

  InputStream& in_;
  std::string buffer_;  // ciphertext only
  size_t begin_ = 0, end_ = 0;
  bool eof_ = false;
};

class ViewFrameSource final : public FrameSource {
 public:
  explicit ViewFrameSource(absl::string_view data) : data_(data) {}
  absl::StatusOr<absl::string_view> Peek(size_t n) override {
    return data_.substr(0, n);
  }
  void Consume(size_t n) override { data_.remove_prefix(n); }

 private:
  absl::string_view data_;
};

// Where verified plaintext goes: Reserve() a span for one frame, decrypt
// into it, Commit() it once it verified.
class PlaintextSink {
 public:
  virtual ~PlaintextSink() = default;
  virtual absl::Span<uint8_t> Reserve(size_t n) = 0;
  virtual absl::Status Commit(size_t n) = 0;
};

// Passes each verified frame to an OutputStream.
class StreamPlaintextSink final : public PlaintextSink {
 public:
  StreamPlaintextSink(OutputStream& out, size_t frame_size)
      : out_(out), buffer_(frame_size) {}
  absl::Span<uint8_t> Reserve(size_t n) override {
    return buffer_.mutable_span().subspan(0, n);
  }
  absl::Status Commit(size_t n) override {
    return out_.Write(View(buffer_.data(), n));
  }

 private:
  OutputStream& out_;
  SecretData buffer_;
};

// Collects the whole plaintext in one SecretData, decrypting in place.
class SecretPlaintextSink final : public PlaintextSink {
 public:
  explicit SecretPlaintextSink(size_t capacity) : data_(capacity) {}
  absl::Span<uint8_t> Reserve(size_t n) override {
    if (used_ + n > data_.size()) data_.Resize(std::max(data_.size() * 2, used_ + n));
    return data_.mutable_span().subspan(used_, n);
  }
  absl::Status Commit(size_t n) override {
    used_ += n;
    return absl::OkStatus();
  }
  SecretData Finish() && {
    data_.Resize(used_);
    return std::move(data_);
  }

 private:
  SecretData data_;
  size_t used_ = 0;
};

// Reads frames in order, verifies each and hands its plaintext to `sink`.
// With a null `aead` it only walks the structure (Inspect) into `info`.
absl::Status ReadBody(FrameSource& source, PlaintextSink* sink,
                      const NonceAead* aead, uint32_t frame_size,
                      MessageInfo* info, bool signed_suite,
                      crypto::EcdsaP384Verifier* verifier) {
  for (uint64_t seq = 1;; ++seq) {
    // Enough for the largest frame; a final frame may be shorter.
    KW_ASSIGN_OR_RETURN(
        absl::string_view view,
        source.Peek(kFramePrefix + static_cast<size_t>(frame_size) + kAeadTagSize));
    if (view.empty()) {
      return Truncated(absl::StrCat("after frame ", seq - 1,
                                    " without a final frame"));
    }
    if (seq > FormatLimits::kMaxFrames) return FrameLimit();
    const auto type = static_cast<uint8_t>(view[0]);
    const bool final = type == format::kFinalFrame;
    size_t length = frame_size;
    size_t prefix = 1;
    if (final) {
      if (view.size() < kFramePrefix) {
        return Truncated(absl::StrCat("inside frame ", seq));
      }
      length = format::LoadBigEndian(view.substr(1, 4));
      prefix = kFramePrefix;
      if (length > frame_size) {
        return MakeError(absl::StatusCode::kDataLoss,
                         ErrorCode::kMalformedFrame,
                         absl::StrCat("frame ", seq, " claims ", length,
                                      " bytes, more than the frame size ",
                                      frame_size));
      }
    } else if (type != format::kRegularFrame) {
      return MakeError(absl::StatusCode::kDataLoss, ErrorCode::kMalformedFrame,
                       absl::StrCat("frame ", seq, " has type byte 0x",
                                    absl::Hex(type, absl::kZeroPad2),
                                    " (0x00 or 0x01 expected)"));
    }
    const size_t sealed = length + kAeadTagSize;
    if (view.size() < prefix + sealed) {
      return Truncated(absl::StrCat("inside frame ", seq));
    }
    if (aead != nullptr) {
      const auto nonce = format::SequenceNonce(seq);
      const auto aad = format::FrameAad(seq, final);
      absl::Status s = aead->Open(absl::string_view(nonce.data(), nonce.size()),
                                  view.substr(prefix, sealed),
                                  absl::string_view(aad.data(), aad.size()),
                                  sink->Reserve(length));
      if (!s.ok()) {
        return MakeError(
            absl::StatusCode::kDataLoss, ErrorCode::kAuthenticationFailed,
            absl::StrCat("frame ", seq, " failed authentication: the body was "
                         "modified, reordered or spliced from another message"));
      }
      KW_RETURN_IF_ERROR(sink->Commit(length));
    } else {
      info->total_bytes += prefix + sealed;
      info->plaintext_bytes += length;
      info->frames = seq;
    }
    if (verifier != nullptr) KW_RETURN_IF_ERROR(verifier->Update(view.substr(0, prefix + sealed)));
    source.Consume(prefix + sealed);
    if (final) {
      if (signed_suite) {
        // The signature: u16 length, then DER ECDSA P-384 (docs/format.md §7.1).
        KW_ASSIGN_OR_RETURN(absl::string_view len_bytes, source.Peek(2));
        if (len_bytes.size() < 2) return Truncated("before its signature");
        const size_t len = format::LoadBigEndian(len_bytes);
        if (len == 0 || len > FormatLimits::kMaxSignatureSize) {
          return MakeError(absl::StatusCode::kDataLoss, ErrorCode::kMalformedFrame,
                           absl::StrCat("the signature claims ", len, " bytes (1 to ",
                                        FormatLimits::kMaxSignatureSize, ")"));
        }
        KW_ASSIGN_OR_RETURN(absl::string_view footer, source.Peek(2 + len));
        if (footer.size() < 2 + len) return Truncated("inside its signature");
        if (verifier != nullptr && !verifier->Verify(footer.substr(2))) {
          return MakeError(absl::StatusCode::kDataLoss, ErrorCode::kAuthenticationFailed,
                           "the message's signature does not verify: it was not written "
                           "by the holder of its signing key, or it was modified");
        }
        if (info != nullptr) {
          info->signature_bytes = len;
          info->total_bytes += 2 + len;
        }
        source.Consume(2 + len);
      }
      KW_ASSIGN_OR_RETURN(absl::string_view extra, source.Peek(1));
      if (!extra.empty()) {
        return MakeError(absl::StatusCode::kDataLoss, ErrorCode::kTrailingData,
                         absl::StrCat("unexpected bytes after the final frame (",
                                      seq, "): data was appended to the "
                                      "message"));
      }
      return absl::OkStatus();
    }
  }
}

// Bytes form of WriteBody: seals each frame straight from `plaintext` into
// `out`, with no intermediate buffer.
absl::Status SealBody(absl::string_view plaintext, const NonceAead& aead,
                      uint32_t frame_size, std::string* out,
                      crypto::EcdsaP384Signer* signer) {
  uint64_t regular = plaintext.size() / frame_size;
  size_t last = plaintext.size() % frame_size;
  if (last == 0 && regular > 0) {  // a full last frame is the final one
    --regular;
    last = frame_size;
  }
  if (regular + 1 > FormatLimits::kMaxFrames) return FrameLimit();
  size_t offset = out->size();
  const size_t body_start = offset;
  out->resize(offset + regular * (1 + frame_size + kAeadTagSize) + kFramePrefix +
              last + kAeadTagSize);
  auto* bytes = reinterpret_cast<uint8_t*>(out->data());
  for (uint64_t i = 0; i <= regular; ++i) {
    const uint64_t seq = i + 1;
    const bool final = i == regular;
    const size_t length = final ? last : frame_size;
    if (final) {
      bytes[offset] = format::kFinalFrame;
      format::StoreBigEndian(bytes + offset + 1, length, 4);
      offset += kFramePrefix;
    } else {
      bytes[offset] = format::kRegularFrame;
      offset += 1;
    }
    const auto nonce = format::SequenceNonce(seq);
    const auto aad = format::FrameAad(seq, final);
    KW_RETURN_IF_ERROR(aead.Seal(absl::string_view(nonce.data(), nonce.size()),
                                 plaintext.substr(i * frame_size, length),
                                 absl::string_view(aad.data(), aad.size()),
                                 {bytes + offset, length + kAeadTagSize}));
    offset += length + kAeadTagSize;
  }
  if (signer != nullptr) {
    KW_RETURN_IF_ERROR(signer->Update(absl::string_view(*out).substr(body_start)));
    KW_ASSIGN_OR_RETURN(std::string footer, SignatureFooter(*signer));
    out->append(footer);
  }
  return absl::OkStatus();
}

}  // namespace

namespace format {

absl::Status EncryptWithMaterials(const EncryptionMaterials& materials,
                                  InputStream& in, OutputStream& out) {
  KW_ASSIGN_OR_RETURN(PreparedHeader prepared, PrepareHeader(materials));
  KW_RETURN_IF_ERROR(out.Write(prepared.bytes));
  return WriteBody(in, out, *prepared.keys.aead, prepared.frame_size, prepared.signer);
}

absl::StatusOr<std::string> EncryptBytesWithMaterials(
    const EncryptionMaterials& materials, absl::string_view plaintext) {
  KW_ASSIGN_OR_RETURN(PreparedHeader prepared, PrepareHeader(materials));
  const size_t frames = plaintext.size() / prepared.frame_size + 1;
  std::string message = std::move(prepared.bytes);
  message.reserve(message.size() + plaintext.size() +
                  frames * (kFramePrefix + kAeadTagSize));
  KW_RETURN_IF_ERROR(SealBody(plaintext, *prepared.keys.aead,
                              prepared.frame_size, &message, prepared.signer));
  return message;
}

}  // namespace format

absl::Status EncryptStream(InputStream& in, OutputStream& out,
                           const EncryptionContext& context,
                           absl::Span<const KeyWrapper* const> keyrings,
                           const EncryptOptions& options) {
  SecretData data_key;
  std::unique_ptr<crypto::EcdsaP384Signer> signer;
  KW_ASSIGN_OR_RETURN(
      format::EncryptionMaterials materials,
      MaterialsFromKeyrings(context, keyrings, options, &data_key, &signer));
  materials.data_key = &data_key;
  return format::EncryptWithMaterials(materials, in, out);
}

absl::StatusOr<std::string> EncryptMessage(
    absl::string_view plaintext, const EncryptionContext& context,
    absl::Span<const KeyWrapper* const> keyrings, const EncryptOptions& options) {
  SecretData data_key;
  std::unique_ptr<crypto::EcdsaP384Signer> signer;
  KW_ASSIGN_OR_RETURN(
      format::EncryptionMaterials materials,
      MaterialsFromKeyrings(context, keyrings, options, &data_key, &signer));
  materials.data_key = &data_key;
  return format::EncryptBytesWithMaterials(materials, plaintext);
}

absl::Status DecryptStream(InputStream& in, OutputStream& out,
                           absl::Span<const KeyUnwrapper* const> keyrings,
                           const DecryptOptions& options) {
  StreamFrameSource source(in);
  KW_ASSIGN_OR_RETURN(OpenedHeader opened, OpenHeader(source, keyrings, options));
  const uint32_t frame_size = opened.header.frame_size;
  StreamPlaintextSink sink(out, frame_size);
  return ReadBody(source, &sink, opened.keys.aead.get(), frame_size, nullptr,
                  IsSignedSuite(opened.header.suite), opened.verifier.get());
}

absl::StatusOr<SecretData> DecryptMessage(
    absl::string_view message, absl::Span<const KeyUnwrapper* const> keyrings,
    const DecryptOptions& options) {
  size_t header_size = 0;
  KW_ASSIGN_OR_RETURN(OpenedHeader opened,
                      OpenHeader(message, keyrings, options, &header_size));
  absl::string_view body = message.substr(header_size);
  ViewFrameSource source(body);
  SecretPlaintextSink sink(body.size());
  KW_RETURN_IF_ERROR(ReadBody(source, &sink, opened.keys.aead.get(),
                              opened.header.frame_size, nullptr,
                              IsSignedSuite(opened.header.suite), opened.verifier.get()));
  return std::move(sink).Finish();
}

namespace {

// The new header of an opened message: wrapped for `to` (the first one
// names the key), keeping the entries neither side owns, re-authenticated.
absl::StatusOr<std::string> RewrappedHeader(OpenedHeader& opened,
                                            absl::Span<const KeyUnwrapper* const> from,
                                            absl::Span<const KeyWrapper* const> to) {
  Header& h = opened.header;
  auto owned = [&](const EncryptedDataKey& edk) {
    for (const KeyUnwrapper* k : from) {
      if (k != nullptr && k->Owns(edk)) return true;
    }
    for (const KeyWrapper* k : to) {
      if (k != nullptr && k->Owns(edk)) return true;
    }
    return false;
  };
  std::vector<EncryptedDataKey> entries;
  for (size_t i = 0; i < to.size(); ++i) {
    if (to[i] == nullptr) return absl::InvalidArgumentError("null keyring");
    KW_ASSIGN_OR_RETURN(WrappedDataKey wrapped,
                        to[i]->WrapDataKey(opened.data_key, h.context));
    if (i == 0) h.key = std::move(wrapped.key);
    entries.push_back(std::move(wrapped.encrypted));
  }
  for (EncryptedDataKey& edk : h.data_keys) {
    if (!owned(edk)) entries.push_back(std::move(edk));
  }
  h.data_keys = std::move(entries);
  KW_ASSIGN_OR_RETURN(std::string header_bytes,
                      format::SerializeAuthenticatedHeader(h));
  KW_ASSIGN_OR_RETURN(std::string tag,
                      ComputeHeaderTag(*opened.keys.aead, header_bytes));
  header_bytes.append(tag);
  return header_bytes;
}

absl::Status CheckRewrapTargets(absl::Span<const KeyWrapper* const> to) {
  if (to.empty() || to[0] == nullptr) {
    return absl::InvalidArgumentError(
        "rewrap needs at least one keyring to wrap the data key for");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RewrapStream(InputStream& in, OutputStream& out,
                          absl::Span<const KeyUnwrapper* const> from,
                          absl::Span<const KeyWrapper* const> to,
                          const DecryptOptions& options) {
  KW_RETURN_IF_ERROR(CheckRewrapTargets(to));
  StreamFrameSource source(in);
  KW_ASSIGN_OR_RETURN(OpenedHeader opened, OpenHeader(source, from, options));
  KW_ASSIGN_OR_RETURN(std::string header_bytes, RewrappedHeader(opened, from, to));
  KW_RETURN_IF_ERROR(out.Write(header_bytes));
  // The body is copied as is: rewrap never reads or changes it.
  uint8_t chunk[16 << 10];
  while (true) {
    KW_ASSIGN_OR_RETURN(size_t n, source.Read(absl::MakeSpan(chunk)));
    if (n == 0) return absl::OkStatus();
    KW_RETURN_IF_ERROR(out.Write(absl::string_view(reinterpret_cast<const char*>(chunk), n)));
  }
}

absl::Status VerifyHeader(absl::string_view message,
                          absl::Span<const KeyUnwrapper* const> keyrings,
                          const DecryptOptions& options) {
  return OpenHeader(message, keyrings, options).status();
}

absl::StatusOr<std::string> RewrapMessage(absl::string_view message,
                                          absl::Span<const KeyUnwrapper* const> from,
                                          absl::Span<const KeyWrapper* const> to,
                                          const DecryptOptions& options) {
  KW_RETURN_IF_ERROR(CheckRewrapTargets(to));
  size_t header_size = 0;
  KW_ASSIGN_OR_RETURN(OpenedHeader opened, OpenHeader(message, from, options, &header_size));
  KW_ASSIGN_OR_RETURN(std::string out, RewrappedHeader(opened, from, to));
  const absl::string_view body = message.substr(header_size);
  out.append(body.data(), body.size());
  return out;
}

absl::StatusOr<std::string> RewrapMessageVerified(absl::string_view message,
                                                  absl::Span<const KeyUnwrapper* const> from,
                                                  absl::Span<const KeyWrapper* const> to,
                                                  absl::Span<const KeyUnwrapper* const> verify_with,
                                                  const DecryptOptions& options) {
  KW_RETURN_IF_ERROR(CheckRewrapTargets(to));
  size_t header_size = 0;
  KW_ASSIGN_OR_RETURN(OpenedHeader opened, OpenHeader(message, from, options, &header_size));
  const std::string message_id = opened.header.message_id;
  KW_ASSIGN_OR_RETURN(std::string out, RewrappedHeader(opened, from, to));
  auto fail = [](absl::string_view why) {
    return absl::InternalError(
        absl::StrCat("the rewrapped header did not verify (", why, ")"));
  };
  {
    // The new header, read back as a reader would.
    std::string authenticated;
    size_t new_size = 0;
    auto h = format::ParseHeader(out, &authenticated, &new_size);
    if (!h.ok()) return fail(h.status().message());
    if (new_size != out.size() || h->message_id != message_id) {
      return fail("it is not the same message's header");
    }
    KW_RETURN_IF_ERROR(CheckExpectations(*h, options));
    bool unwrapped = false;
    for (const EncryptedDataKey& edk : h->data_keys) {
      for (const KeyUnwrapper* keyring : verify_with) {
        if (keyring == nullptr) continue;
        auto dk = keyring->UnwrapDataKey(edk, h->context);
        if (absl::IsNotFound(dk.status())) continue;
        if (!dk.ok()) return fail(dk.status().message());
        if (!ConstantTimeEquals(*dk, opened.data_key)) {
          return fail("its entry unwraps to another data key");
        }
        unwrapped = true;
        break;
      }
      if (unwrapped) break;
    }
    if (!unwrapped) return fail("no verifying keyring could unwrap its data key");
    if (!ConstantTimeEquals(h->commitment, opened.keys.commitment)) {
      return fail("key commitment mismatch");
    }
    const auto nonce = format::SequenceNonce(0);
    if (!opened.keys.aead->Open(absl::string_view(nonce.data(), nonce.size()), h->tag,
                                authenticated, {})
             .ok()) {
      return fail("the header tag does not authenticate");
    }
  }
  const absl::string_view body = message.substr(header_size);
  out.append(body.data(), body.size());
  return out;
}

absl::StatusOr<MessageInfo> InspectStream(InputStream& in) {
  StreamFrameSource source(in);
  std::string authenticated;
  KW_ASSIGN_OR_RETURN(Header h, format::ReadHeader(source, &authenticated));
  MessageInfo info;
  info.format_version = format::kFormatVersion;
  info.suite = h.suite;
  info.message_id = h.message_id;
  info.key = h.key;
  info.context = h.context;
  info.data_keys = h.data_keys;
  info.frame_size = h.frame_size;
  info.header_bytes = authenticated.size() + format::kHeaderTagSize;
  info.total_bytes = info.header_bytes;
  KW_RETURN_IF_ERROR(
      ReadBody(source, nullptr, nullptr, h.frame_size, &info, IsSignedSuite(h.suite), nullptr));
  return info;
}

absl::StatusOr<MessageInfo> InspectMessage(absl::string_view message) {
  StringInputStream in(message);
  return InspectStream(in);
}

}  // namespace keyward
