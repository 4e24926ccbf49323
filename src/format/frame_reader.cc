// Reads a message's body: each frame's type, length and tag checked in
// order, then the signature of a signed suite and nothing after it.
#include "format/frame_reader.h"

#include "absl/strings/str_cat.h"
#include "format/header.h"
#include "format/message_keys.h"
#include "format/wire.h"
#include "keyward/errors.h"

namespace keyward::format {

using crypto::kAeadTagSize;
using crypto::internal::NonceAead;

namespace {

absl::Status Truncated(absl::string_view where) {
  return MakeError(absl::StatusCode::kDataLoss, ErrorCode::kTruncated,
                   absl::StrCat("the message is truncated: it ends ", where));
}

}  // namespace

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

}  // namespace keyward::format
