// The header of an outgoing message: encryption materials from keyrings,
// then the header serialized, tagged and (signed suites) fed to the signer.
#include "format/message_header.h"

#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "crypto/random.h"
#include "format/frame_layout.h"
#include "format/wire.h"
#include "keyward/errors.h"

namespace keyward::format {

using crypto::kAeadTagSize;
using crypto::internal::NonceAead;

absl::StatusOr<std::string> ComputeHeaderTag(const NonceAead& aead,
                                             absl::string_view authenticated) {
  std::string tag(kAeadTagSize, '\0');
  const auto nonce = format::SequenceNonce(0);
  KW_RETURN_IF_ERROR(aead.Seal(absl::string_view(nonce.data(), nonce.size()),
                               "", authenticated, MutableBytes(tag)));
  return tag;
}

std::string SignedPrefix(const Header& h) {
  std::string p = "keyward signed message v1";
  format::AppendBigEndian(&p, static_cast<uint16_t>(h.suite), 2);
  p.append(h.message_id);
  format::AppendBigEndian(&p, h.frame_size, 4);
  p.append(format::SerializeContext(h.context));
  p.append(h.commitment);
  return p;
}

namespace {

// Where the message id sits: after the magic, the version and the suite.
constexpr size_t kMessageIdOffset = kMagic.size() + 1 + 2;

absl::StatusOr<std::string> NewMessageId(const format::EncryptionMaterials& m) {
  if (!m.message_id.empty()) return m.message_id;
  return crypto::RandomBytes(format::kMessageIdSize);
}

absl::StatusOr<MessageKeys> KeysOf(const format::EncryptionMaterials& m,
                                   absl::string_view message_id, MessageSize size) {
  if (m.schedule != nullptr) return m.schedule->Derive(m.suite, message_id, size);
  return format::DeriveMessageKeys(m.suite, *m.data_key, message_id, size);
}

// The header from its template: the id and commitment written into a copy.
absl::StatusOr<PreparedHeader> PrepareFromTemplate(const format::EncryptionMaterials& m,
                                                   MessageSize size) {
  const HeaderTemplate& t = *m.header;
  if (t.suite != m.suite || t.frame_size != m.frame_size || IsSignedSuite(m.suite) ||
      t.bytes.size() < kMessageIdOffset + kMessageIdSize + kCommitmentSize) {
    return absl::InvalidArgumentError("the header template was made from other materials");
  }
  PreparedHeader prepared;
  prepared.bytes.reserve(t.bytes.size() + kHeaderTagSize);
  prepared.bytes = t.bytes;
  uint8_t* const id = reinterpret_cast<uint8_t*>(prepared.bytes.data()) + kMessageIdOffset;
  if (m.message_id.empty()) {
    KW_RETURN_IF_ERROR(crypto::FillPublicRandom({id, kMessageIdSize}));
  } else if (m.message_id.size() == kMessageIdSize) {
    std::memcpy(id, m.message_id.data(), kMessageIdSize);
  } else {
    return absl::InvalidArgumentError("message ids are 32 bytes");
  }
  KW_ASSIGN_OR_RETURN(prepared.keys,
                      KeysOf(m, absl::string_view(reinterpret_cast<const char*>(id), kMessageIdSize),
                             size));
  std::memcpy(prepared.bytes.data() + prepared.bytes.size() - kCommitmentSize,
              prepared.keys.commitment.data(), kCommitmentSize);
  KW_ASSIGN_OR_RETURN(std::string tag, ComputeHeaderTag(*prepared.keys.aead, prepared.bytes));
  prepared.bytes.append(tag);
  prepared.frame_size = t.frame_size;
  return prepared;
}

}  // namespace

absl::StatusOr<HeaderTemplate> MakeHeaderTemplate(const format::EncryptionMaterials& m) {
  if (IsSignedSuite(m.suite)) {
    return absl::InvalidArgumentError("signed messages have headers of their own");
  }
  KW_RETURN_IF_ERROR(format::ValidateFrameSize(m.frame_size));
  Header h;
  h.suite = m.suite;
  h.frame_size = m.frame_size;
  h.key = m.key;
  h.context = m.context;
  h.data_keys = m.data_keys;
  h.message_id.assign(kMessageIdSize, '\0');
  h.commitment.assign(kCommitmentSize, '\0');
  HeaderTemplate t;
  KW_ASSIGN_OR_RETURN(t.bytes, format::SerializeAuthenticatedHeader(h));
  t.suite = m.suite;
  t.frame_size = m.frame_size;
  return t;
}

absl::StatusOr<PreparedHeader> PrepareHeader(
    const format::EncryptionMaterials& m, MessageSize size) {
  if (m.data_key == nullptr) {
    return absl::InvalidArgumentError("encryption materials lack a data key");
  }
  if (m.header != nullptr) return PrepareFromTemplate(m, size);
  KW_RETURN_IF_ERROR(format::ValidateFrameSize(m.frame_size));
  Header h;
  h.suite = m.suite;
  h.frame_size = m.frame_size;
  h.key = m.key;
  h.context = m.context;
  h.data_keys = m.data_keys;
  KW_ASSIGN_OR_RETURN(h.message_id, NewMessageId(m));
  PreparedHeader prepared;
  KW_ASSIGN_OR_RETURN(prepared.keys, KeysOf(m, h.message_id, size));
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

}  // namespace keyward::format
