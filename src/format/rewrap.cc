// Rewrap: a message's data key wrapped for other keyrings, its header
// re-authenticated and its body copied unchanged (docs/format.md section 9).
#include "keyward/message.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "format/frame_reader.h"
#include "format/header.h"
#include "format/message_header.h"
#include "format/message_keys.h"

namespace keyward {

using format::CheckExpectations;
using format::ComputeHeaderTag;
using format::Header;
using format::OpenedHeader;
using format::OpenHeader;
using format::StreamFrameSource;

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

}  // namespace keyward
