#include <functional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keyward/data_client.h"
#include "sdk/connection_impl.h"

namespace keyward {

using sdk::FromProto;
using sdk::ItemStatus;
using sdk::ToProto;
using sdk::Wipe;

absl::StatusOr<std::shared_ptr<DataClient>> DataClient::Connect(const ClientOptions& options) {
  KW_ASSIGN_OR_RETURN(std::shared_ptr<Connection> connection, Connection::Open(options));
  return std::make_shared<DataClient>(std::move(connection));
}

DataClient::DataClient(std::shared_ptr<Connection> connection)
    : connection_(std::move(connection)) {}

absl::StatusOr<ServerInfo> DataClient::GetServerInfo() { return connection_->GetServerInfo(); }

absl::StatusOr<GeneratedDataKey> DataClient::GenerateDataKey(const std::string& key_name,
                                                         const EncryptionContext& context) {
  v1::GenerateDataKeyRequest req;
  req.set_key_name(key_name);
  ToProto(context, req.mutable_encryption_context());
  v1::GenerateDataKeyResponse resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp,
                                 KW_RPC(GenerateDataKey)));
  GeneratedDataKey out;
  out.plaintext = SecretData::CopyFrom(resp.plaintext());
  Wipe(resp.mutable_plaintext());
  out.encrypted = EncryptedDataKey{kKmsProviderId, key_name, resp.wrapped()};
  out.key = FromProto(resp.key());
  return out;
}

absl::StatusOr<WrappedKeyResult> DataClient::GenerateDataKeyWithoutPlaintext(
    const std::string& key_name, const EncryptionContext& context) {
  v1::GenerateDataKeyRequest req;
  req.set_key_name(key_name);
  ToProto(context, req.mutable_encryption_context());
  v1::GenerateDataKeyResponse resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp,
                                 KW_RPC(GenerateDataKeyWithoutPlaintext)));
  return WrappedKeyResult{resp.wrapped(), FromProto(resp.key())};
}

absl::StatusOr<SecretData> DataClient::DecryptDataKey(const std::string& wrapped,
                                                  const EncryptionContext& context) {
  v1::DecryptDataKeyRequest req;
  req.set_wrapped(wrapped);
  ToProto(context, req.mutable_encryption_context());
  v1::DecryptDataKeyResponse resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp,
                                 KW_RPC(DecryptDataKey)));
  SecretData out = SecretData::CopyFrom(resp.plaintext());
  Wipe(resp.mutable_plaintext());
  return out;
}

absl::StatusOr<WrappedKeyResult> DataClient::ReWrapDataKey(const std::string& wrapped,
                                                       const EncryptionContext& context) {
  v1::ReWrapDataKeyRequest req;
  req.set_wrapped(wrapped);
  ToProto(context, req.mutable_encryption_context());
  v1::ReWrapDataKeyResponse resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp,
                                 KW_RPC(ReWrapDataKey)));
  return WrappedKeyResult{resp.wrapped(), FromProto(resp.key())};
}

absl::StatusOr<std::vector<GeneratedDataKey>> DataClient::GenerateDataKeys(
    const std::string& key_name, const EncryptionContext& context, int count) {
  v1::BatchGenerateDataKeysRequest req;
  req.set_key_name(key_name);
  ToProto(context, req.mutable_encryption_context());
  req.set_count(count);
  v1::BatchGenerateDataKeysResponse resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp,
                                 KW_RPC(BatchGenerateDataKeys)));
  std::vector<GeneratedDataKey> out;
  out.reserve(static_cast<size_t>(resp.data_keys_size()));
  for (auto& dk : *resp.mutable_data_keys()) {
    GeneratedDataKey g;
    g.plaintext = SecretData::CopyFrom(dk.plaintext());
    Wipe(dk.mutable_plaintext());
    g.encrypted = EncryptedDataKey{kKmsProviderId, key_name, dk.wrapped()};
    g.key = FromProto(dk.key());
    out.push_back(std::move(g));
  }
  return out;
}

absl::StatusOr<std::vector<absl::StatusOr<SecretData>>> DataClient::DecryptDataKeys(
    const std::vector<std::pair<std::string, EncryptionContext>>& requests,
    bool for_reencryption) {
  v1::BatchDecryptDataKeysRequest req;
  for (const auto& [wrapped, context] : requests) {
    v1::DecryptDataKeyRequest* r = req.add_requests();
    r->set_wrapped(wrapped);
    ToProto(context, r->mutable_encryption_context());
    r->set_for_reencryption(for_reencryption);
  }
  v1::BatchDecryptDataKeysResponse resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp,
                                 KW_RPC(BatchDecryptDataKeys)));
  std::vector<absl::StatusOr<SecretData>> out;
  out.reserve(static_cast<size_t>(resp.results_size()));
  for (auto& r : *resp.mutable_results()) {
    if (r.code() == 0) {
      out.push_back(SecretData::CopyFrom(r.plaintext()));
      Wipe(r.mutable_plaintext());
    } else {
      out.push_back(ItemStatus(r.code(), r.error(), r.error_code()));
    }
  }
  return out;
}

absl::StatusOr<std::string> DataClient::Encrypt(const std::string& key_name,
                                            const std::string& plaintext,
                                            const EncryptionContext& context) {
  v1::EncryptRequest req;
  req.set_key_name(key_name);
  req.set_plaintext(plaintext);
  ToProto(context, req.mutable_encryption_context());
  v1::EncryptResponse resp;
  absl::Status s = sdk::Call(*connection_, req, &resp, KW_RPC(Encrypt));
  Wipe(req.mutable_plaintext());
  KW_RETURN_IF_ERROR(s);
  return std::move(*resp.mutable_message());
}

absl::StatusOr<SecretData> DataClient::Decrypt(const std::string& message,
                                           const EncryptionContext& context) {
  v1::DecryptRequest req;
  req.set_message(message);
  ToProto(context, req.mutable_encryption_context());
  v1::DecryptResponse resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(Decrypt)));
  SecretData out = SecretData::CopyFrom(resp.plaintext());
  Wipe(resp.mutable_plaintext());
  return out;
}

absl::StatusOr<RewrappedHeader> DataClient::RewrapMessageHeader(
    const std::string& header, const EncryptionContext& context) {
  v1::RewrapMessageHeaderRequest req;
  req.set_header(header);
  ToProto(context, req.mutable_encryption_context());
  v1::RewrapMessageHeaderResponse resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp,
                                 KW_RPC(RewrapMessageHeader)));
  return RewrappedHeader{std::move(*resp.mutable_header()), FromProto(resp.key())};
}

namespace {

// A refusal of a request above the server's size limit
// (limits.max_request_bytes): keywardd's own ("over the limit of ... bytes",
// limit-exceeded) or gRPC's ("larger than max").  keywardd's other
// RESOURCE_EXHAUSTED answers (over a share) are not retried smaller.
bool TooLarge(const absl::Status& s) {
  if (!absl::IsResourceExhausted(s)) return false;
  const std::string m = absl::AsciiStrToLower(s.message());
  return absl::StrContains(m, "larger than max") ||
         absl::StrContains(m, "limits.max_request_bytes");
}

}  // namespace

absl::StatusOr<std::vector<absl::StatusOr<RewrappedHeader>>> DataClient::RewrapMessageHeaders(
    const std::vector<std::string>& headers) {
  // Requests stay under keywardd's default request size limit (4 MiB) and
  // its batch limit (the byte limit binds first for real headers).  A
  // server configured lower refuses a request as too large: it is sent
  // again in halves, down to one header, which then fails on its own.
  constexpr size_t kMaxHeadersPerRequest = 10000;
  constexpr size_t kMaxBytesPerRequest = 1 << 20;
  std::vector<absl::StatusOr<RewrappedHeader>> out;
  out.reserve(headers.size());
  std::function<absl::Status(size_t, size_t)> send = [&](size_t begin,
                                                         size_t end) -> absl::Status {
    v1::BatchRewrapMessageHeadersRequest req;
    for (size_t i = begin; i < end; ++i) req.add_headers(headers[i]);
    v1::BatchRewrapMessageHeadersResponse resp;
    absl::Status s =
        sdk::Call(*connection_, req, &resp, KW_RPC(BatchRewrapMessageHeaders));
    if (TooLarge(s)) {
      if (end - begin == 1) {
        out.push_back(MakeError(
            absl::StatusCode::kInvalidArgument, ErrorCode::kLimitExceeded,
            absl::StrCat("this header (", headers[begin].size(),
                         " bytes) is larger than keywardd accepts in one request "
                         "(its limits.max_request_bytes): ",
                         s.message())));
        return absl::OkStatus();
      }
      const size_t middle = begin + (end - begin) / 2;
      KW_RETURN_IF_ERROR(send(begin, middle));
      return send(middle, end);
    }
    KW_RETURN_IF_ERROR(s);
    if (resp.results_size() != req.headers_size()) {
      return absl::InternalError("keywardd answered a different number of headers");
    }
    for (auto& r : *resp.mutable_results()) {
      if (r.code() == 0) {
        out.push_back(RewrappedHeader{std::move(*r.mutable_header()), FromProto(r.key())});
      } else {
        out.push_back(ItemStatus(r.code(), r.error(), r.error_code()));
      }
    }
    return absl::OkStatus();
  };
  size_t next = 0;
  while (next < headers.size()) {
    size_t end = next;
    size_t bytes = 0;
    while (end < headers.size() && end - next < kMaxHeadersPerRequest &&
           (end == next || bytes + headers[end].size() <= kMaxBytesPerRequest)) {
      bytes += headers[end++].size();
    }
    KW_RETURN_IF_ERROR(send(next, end));
    next = end;
  }
  return out;
}

}  // namespace keyward
