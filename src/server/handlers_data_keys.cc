// Handlers: data keys and small payloads.  Every decision is made on the
// key the wrapped key (or the message's kms entry) is bound to, and the same
// key is the one unwrapped, counted and audited.
#include <algorithm>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "format/header.h"
#include "keyward/errors.h"
#include "keystore/key_model.h"
#include "kms/data_key_blob.h"
#include "metrics/metrics.h"
#include "server/batch_items.h"
#include "server/convert.h"
#include "server/key_management_service.h"
#include "server/message_headers.h"

namespace keyward::server {
namespace {

// Batches run through the core in slices of this many items, with a
// Yield() between slices (FairScheduler).
constexpr int kSlice = 256;

// A data key unwrapped under a version declared compromised: counted, and
// the caller told, so that the data it protects gets re-encrypted.
void CountCompromisedDecrypts(const std::string& key, uint64_t n) {
  static auto& decrypts = metrics::Global().CounterFamily(
      "keyward_compromised_version_decrypts_total",
      "Data keys unwrapped under a key version declared compromised (re-encrypt that data).",
      {"key"});
  decrypts.With({metrics::KeyLabel(key)}).Inc(n);
}

std::string CompromisedDetail(uint32_t version) {
  return absl::StrCat("COMPROMISED: version ", version,
                      " was declared compromised; re-encrypt the data under it");
}

}  // namespace

absl::Status KeyManagementService::GenerateDataKey(Call& call,
                                                   const v1::GenerateDataKeyRequest& req,
                                                   v1::GenerateDataKeyResponse* resp) {
  const EncryptionContext context = FromProto(req.encryption_context());
  KW_RETURN_IF_ERROR(call.Authorize(req.key_name(), context));
  KW_ASSIGN_OR_RETURN(kms::DataKey dk, core_->GenerateDataKey(req.key_name(), context));
  call.set_version(dk.key.key_version);
  resp->set_plaintext(dk.plaintext.data(), dk.plaintext.size());
  resp->set_wrapped(std::move(dk.wrapped));
  ToProto(dk.key, resp->mutable_key());
  return absl::OkStatus();
}

absl::Status KeyManagementService::GenerateDataKeyWithoutPlaintext(
    Call& call, const v1::GenerateDataKeyRequest& req, v1::GenerateDataKeyResponse* resp) {
  const EncryptionContext context = FromProto(req.encryption_context());
  KW_RETURN_IF_ERROR(call.Authorize(req.key_name(), context));
  KW_ASSIGN_OR_RETURN(kms::WrappedKey wk,
                      core_->GenerateDataKeyWithoutPlaintext(req.key_name(), context));
  call.set_version(wk.key.key_version);
  resp->set_wrapped(std::move(wk.wrapped));
  ToProto(wk.key, resp->mutable_key());
  return absl::OkStatus();
}

absl::Status KeyManagementService::DecryptDataKey(Call& call,
                                                  const v1::DecryptDataKeyRequest& req,
                                                  v1::DecryptDataKeyResponse* resp) {
  // A reader's decrypt and a re-encryption job's are different permissions:
  // a reader must not be able to hide its reads from the retirement gate.
  if (req.for_reencryption()) call.set_operation("reencrypt");
  // The wrapped key names the key it is bound to: decide on that key,
  // before unwrapping anything, and unwrap with the same key.
  KW_ASSIGN_OR_RETURN(kms::DataKeyBlob blob, kms::DecodeBlob(req.wrapped()));
  const EncryptionContext context = FromProto(req.encryption_context());
  KW_RETURN_IF_ERROR(call.Authorize(blob.key_name, context, blob.key_version));
  KW_ASSIGN_OR_RETURN(SecretData dek, core_->DecryptDataKey(req.wrapped(), context,
                                                            /*reader=*/!req.for_reencryption()));
  if (core_->IsCompromised(blob.key_name, blob.key_version)) {
    resp->set_compromised_version(true);
    call.set_detail(CompromisedDetail(blob.key_version));
    CountCompromisedDecrypts(blob.key_name, 1);
  }
  resp->set_plaintext(dek.data(), dek.size());
  return absl::OkStatus();
}

absl::Status KeyManagementService::ReWrapDataKey(Call& call, const v1::ReWrapDataKeyRequest& req,
                                                 v1::ReWrapDataKeyResponse* resp) {
  KW_ASSIGN_OR_RETURN(kms::DataKeyBlob blob, kms::DecodeBlob(req.wrapped()));
  const EncryptionContext context = FromProto(req.encryption_context());
  KW_RETURN_IF_ERROR(call.Authorize(blob.key_name, context, blob.key_version));
  KW_ASSIGN_OR_RETURN(kms::WrappedKey wk, core_->ReWrapDataKey(req.wrapped(), context));
  if (core_->IsCompromised(blob.key_name, blob.key_version)) {
    call.set_detail(absl::StrCat("moved off version ", blob.key_version,
                                 ", which was declared compromised"));
    CountCompromisedDecrypts(blob.key_name, 1);
  }
  call.set_version(wk.key.key_version);
  resp->set_wrapped(std::move(wk.wrapped));
  ToProto(wk.key, resp->mutable_key());
  return absl::OkStatus();
}

absl::Status KeyManagementService::BatchGenerateDataKeys(
    Call& call, const v1::BatchGenerateDataKeysRequest& req,
    v1::BatchGenerateDataKeysResponse* resp) {
  const int count = req.count();
  if (count < 1 || count > kms::KeyService::kMaxBatch) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kLimitExceeded,
                     absl::StrCat("a batch holds 1 to ", kms::KeyService::kMaxBatch,
                                  " data keys, got ", count));
  }
  const EncryptionContext context = FromProto(req.encryption_context());
  KW_RETURN_IF_ERROR(call.Authorize(req.key_name(), context));
  resp->mutable_data_keys()->Reserve(count);
  for (int done = 0; done < count; done += kSlice) {
    if (done > 0) call.Yield();
    KW_ASSIGN_OR_RETURN(std::vector<kms::DataKey> keys,
                        core_->GenerateDataKeys(req.key_name(), context,
                                                std::min(kSlice, count - done)));
    call.set_version(keys.front().key.key_version);
    for (kms::DataKey& dk : keys) {
      v1::GenerateDataKeyResponse* out = resp->add_data_keys();
      out->set_plaintext(dk.plaintext.data(), dk.plaintext.size());
      out->set_wrapped(std::move(dk.wrapped));
      ToProto(dk.key, out->mutable_key());
    }
  }
  return absl::OkStatus();
}

absl::Status KeyManagementService::BatchDecryptDataKeys(
    Call& call, const v1::BatchDecryptDataKeysRequest& req,
    v1::BatchDecryptDataKeysResponse* resp) {
  const int n = req.requests_size();
  if (n < 1) {
    return absl::InvalidArgumentError("a batch holds 1 to 10000 wrapped keys, got none");
  }
  // One operation per batch: re-encryption (`reencrypt`) or reading
  // (`decrypt`), never a mix that would be audited as one of them.
  const bool reencrypting = req.requests(0).for_reencryption();
  for (const auto& r : req.requests()) {
    if (r.for_reencryption() != reencrypting) {
      return absl::InvalidArgumentError(
          "a batch is either for re-encryption or not; send the two kinds separately");
    }
  }
  if (reencrypting) call.set_operation("reencrypt");
  // Each item is decided on the key its wrapped key is bound to; refused or
  // malformed items get their error, the rest are unwrapped.
  BatchItems items(call, n, "item", reencrypting ? "for re-encryption; " : "");
  KW_RETURN_IF_ERROR(items.ReadAndDecide([&](int i) -> absl::StatusOr<BatchItem> {
    const auto& r = req.requests(i);
    KW_ASSIGN_OR_RETURN(kms::DataKeyBlob blob, kms::DecodeBlob(r.wrapped()));
    KW_RETURN_IF_ERROR(keystore::ValidateKeyName(blob.key_name));
    return BatchItem{std::move(blob.key_name), FromProto(r.encryption_context())};
  }));
  std::vector<kms::DecryptRequest> allowed;
  std::vector<int> allowed_index;
  for (int i = 0; i < n; ++i) {
    if (!items.allowed(i)) continue;
    allowed.push_back({req.requests(i).wrapped(), std::move(items.item(i).context)});
    allowed_index.push_back(i);
  }
  resp->mutable_results()->Reserve(n);
  for (int i = 0; i < n; ++i) resp->add_results();
  for (size_t start = 0; start < allowed.size(); start += kSlice) {
    if (start > 0) call.Yield();
    const size_t end = std::min(allowed.size(), start + kSlice);
    std::vector<kms::DecryptRequest> slice(std::make_move_iterator(allowed.begin() + start),
                                           std::make_move_iterator(allowed.begin() + end));
    KW_ASSIGN_OR_RETURN(auto results, core_->DecryptDataKeys(slice, !reencrypting));
    for (size_t j = 0; j < results.size(); ++j) {
      items.Answer(results[j], resp->mutable_results(allowed_index[start + j]),
                   [](const SecretData& dek, v1::BatchDecryptResult* out) {
                     out->set_plaintext(dek.data(), dek.size());
                   });
    }
  }
  for (int i = 0; i < n; ++i) items.AnswerRefused(i, resp->mutable_results(i));
  // Flag the items unwrapped under a compromised version.
  std::map<std::string, uint64_t> compromised;
  uint64_t flagged = 0;
  for (int i = 0; i < n; ++i) {
    v1::BatchDecryptResult* out = resp->mutable_results(i);
    if (!items.allowed(i) || out->code() != 0) continue;
    auto blob = kms::DecodeBlob(req.requests(i).wrapped());
    if (blob.ok() && core_->IsCompromised(blob->key_name, blob->key_version)) {
      out->set_compromised_version(true);
      ++compromised[blob->key_name];
      ++flagged;
    }
  }
  for (const auto& [key, count] : compromised) CountCompromisedDecrypts(key, count);
  items.Finish(flagged == 0 ? std::string()
                            : absl::StrCat("COMPROMISED: ", flagged,
                                           " item(s) under a version declared compromised; "));
  return absl::OkStatus();
}

absl::Status KeyManagementService::Encrypt(Call& call, const v1::EncryptRequest& req,
                                           v1::EncryptResponse* resp) {
  const EncryptionContext context = FromProto(req.encryption_context());
  KW_RETURN_IF_ERROR(call.Authorize(req.key_name(), context));
  KW_ASSIGN_OR_RETURN(std::string message,
                      core_->Encrypt(req.key_name(), req.plaintext(), context));
  if (auto header = PeekHeader(message); header.ok()) call.set_version(header->key.key_version);
  resp->set_message(std::move(message));
  return absl::OkStatus();
}

absl::Status KeyManagementService::Decrypt(Call& call, const v1::DecryptRequest& req,
                                           v1::DecryptResponse* resp) {
  // Decided on the header's key and (still unauthenticated) context: if
  // either was altered, decryption fails right after.  The message's kms
  // entries must be wrapped by that same key, checked before anything is
  // authorized or unwrapped.
  KW_ASSIGN_OR_RETURN(format::Header header, ReadableHeader(req.message(), &call));
  KW_RETURN_IF_ERROR(call.Authorize(header.key.key_name, header.context, header.key.key_version));
  KW_ASSIGN_OR_RETURN(SecretData pt, core_->Decrypt(header.key.key_name, req.message(),
                                                    FromProto(req.encryption_context())));
  if (core_->IsCompromised(header.key.key_name, header.key.key_version)) {
    resp->set_compromised_version(true);
    call.set_detail(CompromisedDetail(header.key.key_version));
    CountCompromisedDecrypts(header.key.key_name, 1);
  }
  resp->set_plaintext(pt.data(), pt.size());
  return absl::OkStatus();
}

}  // namespace keyward::server
