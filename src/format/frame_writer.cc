// Seals a message's body: the plaintext cut into frames, each sealed under
// its sequence number, then a signed suite's signature.
#include "format/frame_writer.h"

#include "base/status_macros.h"
#include "format/frame_layout.h"
#include "format/header.h"
#include "format/message_keys.h"
#include "format/wire.h"
#include "keyward/message.h"
#include "keyward/secret_data.h"

namespace keyward::format {

using crypto::kAeadTagSize;
using crypto::internal::NonceAead;

namespace {

// u16 length || DER signature, after the final frame.
absl::StatusOr<std::string> SignatureFooter(crypto::EcdsaP384Signer& signer) {
  KW_ASSIGN_OR_RETURN(std::string sig, signer.Finish());
  std::string footer;
  format::AppendBigEndian(&footer, sig.size(), 2);
  footer.append(sig);
  return footer;
}

}  // namespace

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

}  // namespace keyward::format
