// Keyward message format v1: the entry points that encrypt, decrypt, verify
// and inspect, each joining a header step (message_header.h) to the frame
// writer or reader.  docs/format.md is the normative description.
#include "keyward/message.h"

#include "base/status_macros.h"
#include "format/encrypt_materials.h"
#include "format/frame_layout.h"
#include "format/frame_reader.h"
#include "format/frame_writer.h"
#include "format/header.h"
#include "format/message_header.h"

namespace keyward {

using crypto::kAeadTagSize;
using format::Header;
using format::MaterialsFromKeyrings;
using format::OpenedHeader;
using format::OpenHeader;
using format::ReadBody;
using format::SecretPlaintextSink;
using format::StreamFrameSource;
using format::StreamPlaintextSink;
using format::ViewFrameSource;

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

namespace format {

absl::Status EncryptWithMaterials(const EncryptionMaterials& materials,
                                  InputStream& in, OutputStream& out) {
  KW_ASSIGN_OR_RETURN(PreparedHeader prepared, PrepareHeader(materials));
  KW_RETURN_IF_ERROR(out.Write(prepared.bytes));
  return WriteBody(in, out, *prepared.keys.aead, prepared.frame_size, prepared.signer);
}

absl::StatusOr<std::string> EncryptBytesWithMaterials(
    const EncryptionMaterials& materials, absl::string_view plaintext) {
  KW_ASSIGN_OR_RETURN(PreparedHeader prepared,
                      PrepareHeader(materials, format::SizeOfBody(plaintext.size())));
  const size_t frames = plaintext.size() / prepared.frame_size + 1;
  std::string message;
  message.reserve(prepared.bytes.size() + plaintext.size() +
                  frames * (kFramePrefix + kAeadTagSize));
  message.append(prepared.bytes);
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

absl::Status VerifyHeader(absl::string_view message,
                          absl::Span<const KeyUnwrapper* const> keyrings,
                          const DecryptOptions& options) {
  return OpenHeader(message, keyrings, options).status();
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
