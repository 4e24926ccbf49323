// An incoming header: checked against what the reader expects, its data key
// unwrapped by a keyring, its key commitment and header tag verified.
#include "format/message_header.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keyward/errors.h"

namespace keyward::format {

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

namespace {

// Checks a parsed header against the options and unwraps its data key.
absl::StatusOr<OpenedHeader> UnlockHeader(OpenedHeader opened,
                                          absl::Span<const KeyUnwrapper* const> keyrings,
                                          const DecryptOptions& options, MessageSize size) {
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
  std::vector<absl::Status> failure_statuses;
  for (const EncryptedDataKey& edk : h.data_keys) {
    for (const KeyUnwrapper* keyring : keyrings) {
      if (keyring == nullptr) continue;
      auto data_key = keyring->UnwrapDataKey(edk, h.context);
      if (absl::IsNotFound(data_key.status())) continue;
      if (!data_key.ok()) {
        failure_statuses.push_back(data_key.status());
        failures.push_back(absl::StrCat(edk.provider_id, " ",
                                        edk.provider_info, ": ",
                                        data_key.status().message()));
        continue;
      }
      KW_ASSIGN_OR_RETURN(MessageKeys keys,
                          format::DeriveMessageKeys(h.suite, *data_key,
                                                    h.message_id, size));
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
  // When every keyring that owned an entry failed the same way (keywardd
  // unreachable, the policy denied it), that is the error: the caller
  // retries an UNAVAILABLE and alerts on a denial, instead of guessing from
  // a generic "could not unwrap".
  bool same = !failure_statuses.empty();
  for (const absl::Status& f : failure_statuses) {
    same = same && f.code() == failure_statuses[0].code() &&
           GetErrorCode(f) == GetErrorCode(failure_statuses[0]);
  }
  if (same) {
    const ErrorCode code = GetErrorCode(failure_statuses[0]);
    return MakeError(failure_statuses[0].code(),
                     code == ErrorCode::kNone ? ErrorCode::kNoKeyringCouldUnwrap : code,
                     absl::StrCat("the message's data key could not be unwrapped (it is "
                                  "wrapped for: ", entries, ")", detail));
  }
  return MakeError(
      absl::StatusCode::kFailedPrecondition, ErrorCode::kNoKeyringCouldUnwrap,
      absl::StrCat("none of the ", keyrings.size(),
                   " keyring(s) could unwrap the message's data key (it is "
                   "wrapped for: ", entries, ")", detail));
}

}  // namespace

absl::StatusOr<OpenedHeader> OpenHeader(InputStream& in,
                                        absl::Span<const KeyUnwrapper* const> keyrings,
                                        const DecryptOptions& options) {
  OpenedHeader opened;
  KW_ASSIGN_OR_RETURN(opened.header, format::ReadHeader(in, &opened.authenticated));
  return UnlockHeader(std::move(opened), keyrings, options, MessageSize::kLarge);
}

absl::StatusOr<OpenedHeader> OpenHeader(absl::string_view bytes,
                                        absl::Span<const KeyUnwrapper* const> keyrings,
                                        const DecryptOptions& options,
                                        size_t* header_size) {
  OpenedHeader opened;
  size_t parsed = 0;
  KW_ASSIGN_OR_RETURN(opened.header, format::ParseHeader(bytes, &opened.authenticated, &parsed));
  if (header_size != nullptr) *header_size = parsed;
  return UnlockHeader(std::move(opened), keyrings, options, SizeOfBody(bytes.size() - parsed));
}

}  // namespace keyward::format
