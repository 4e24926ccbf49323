#include "keyward/client.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/crypto.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/duration.h"
#include "base/status_macros.h"
#include "crypto/random.h"
#include "keyward/errors.h"
#include "keyward/v1/keyward.grpc.pb.h"
#include "yaml-cpp/yaml.h"

namespace keyward {
namespace {

constexpr char kErrorCodeMetadata[] = "keyward-error-code";

absl::StatusOr<std::string> ReadPem(const std::string& what, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the ", what, " file ", path));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status FromGrpc(const grpc::Status& s, const grpc::ClientContext& ctx,
                      absl::string_view server) {
  const auto code = static_cast<absl::StatusCode>(s.error_code());
  std::string message = s.error_message();
  if (code == absl::StatusCode::kUnavailable) {
    message = absl::StrCat("keywardd at ", server, " is unavailable: ", message,
                           " (check the server address, that keywardd runs, "
                           "and that the CA and client certificate match it)");
  }
  const auto& trailers = ctx.GetServerTrailingMetadata();
  auto it = trailers.find(kErrorCodeMetadata);
  if (it != trailers.end()) {
    const ErrorCode ec = ErrorCodeFromName(
        absl::string_view(it->second.data(), it->second.size()));
    if (ec != ErrorCode::kNone) return MakeError(code, ec, message);
  }
  return absl::Status(code, message);
}

std::optional<absl::Time> OptionalMicros(int64_t us) {
  if (us == 0) return std::nullopt;
  return absl::FromUnixMicros(us);
}

KeyInfo FromProto(const v1::Key& k) {
  KeyInfo out;
  out.name = k.name();
  out.purpose = k.purpose();
  out.suite = k.suite();
  out.environment = k.environment();
  out.labels = {k.labels().begin(), k.labels().end()};
  out.rotation_period = absl::Seconds(k.rotation_period_seconds());
  out.primary_version = k.primary_version();
  out.created = absl::FromUnixMicros(k.created_unix_micros());
  out.updated = absl::FromUnixMicros(k.updated_unix_micros());
  for (const v1::KeyVersion& v : k.versions()) {
    KeyVersionInfo vi;
    vi.version = v.version();
    vi.state = v.state();
    vi.protection = v.protection();
    vi.created = absl::FromUnixMicros(v.created_unix_micros());
    vi.destroy_after = OptionalMicros(v.destroy_after_unix_micros());
    vi.destroyed = OptionalMicros(v.destroyed_unix_micros());
    vi.data_keys_issued = v.data_keys_issued();
    vi.decrypts = v.decrypts();
    vi.last_used = OptionalMicros(v.last_used_unix_micros());
    vi.last_decrypt = OptionalMicros(v.last_decrypt_unix_micros());
    out.versions.push_back(std::move(vi));
  }
  return out;
}

KeyReference FromProto(const v1::KeyReference& r) {
  return KeyReference{r.environment(), r.key_name(), r.key_version()};
}

void ToProto(const EncryptionContext& ctx,
             google::protobuf::Map<std::string, std::string>* out) {
  for (const auto& [k, v] : ctx) (*out)[k] = v;
}

void Wipe(std::string* s) {
  if (!s->empty()) OPENSSL_cleanse(s->data(), s->size());
}

// A batch item's error as a status with its Keyward code.
absl::Status ItemStatus(int code, const std::string& error, const std::string& error_code) {
  const ErrorCode ec = ErrorCodeFromName(error_code);
  const auto c = static_cast<absl::StatusCode>(code);
  return ec == ErrorCode::kNone ? absl::Status(c, error) : MakeError(c, ec, error);
}

}  // namespace

struct Client::Impl {
  std::vector<std::string> addresses;
  std::vector<std::unique_ptr<v1::KeyManagement::Stub>> stubs;
  std::atomic<uint64_t> next{0};

  // Runs one unary call with deadline and UNAVAILABLE-only retries, moving
  // to the next server on each attempt.
  template <typename Req, typename Resp>
  absl::Status Call(const ClientOptions& o, const Req& req, Resp* resp,
                    grpc::Status (v1::KeyManagement::Stub::*method)(
                        grpc::ClientContext*, const Req&, Resp*)) {
    absl::Duration backoff = o.initial_backoff;
    absl::Status last;
    for (int attempt = 0; attempt < std::max(1, o.max_attempts); ++attempt) {
      const size_t i = next.fetch_add(1) % stubs.size();
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoMilliseconds(o.deadline));
      grpc::Status s = (stubs[i].get()->*method)(&ctx, req, resp);
      if (s.ok()) return absl::OkStatus();
      last = FromGrpc(s, ctx, addresses[i]);
      if (s.error_code() != grpc::StatusCode::UNAVAILABLE) return last;
      // The server answered: its audit log is down.  Retrying at once will
      // not help, and the call may have changed state before the record
      // failed.
      if (GetErrorCode(last) == ErrorCode::kAuditUnavailable) return last;
      // Full jitter: sleep a random part of the backoff.
      auto r = crypto::RandomBytes(2);
      const double fraction =
          r.ok() ? (static_cast<uint8_t>((*r)[0]) * 256 + static_cast<uint8_t>((*r)[1])) / 65536.0
                 : 0.5;
      std::this_thread::sleep_for(absl::ToChronoMicroseconds(backoff * fraction));
      backoff *= 2;
    }
    return last;
  }
};

absl::StatusOr<ClientOptions> LoadClientConfig(const std::string& path) {
  if (::access(path.c_str(), R_OK) != 0) {
    return absl::NotFoundError(absl::StrCat(
        "cannot read the client config ", path,
        " (pass --config FILE or set KEYWARD_CONFIG; `keyward dev init DIR` "
        "writes DIR/admin.yaml and DIR/app.yaml)"));
  }
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not valid YAML: ", e.what()));
  }
  auto err = [&](absl::string_view field, absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", field, ": ", what));
  };
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  auto resolve = [&](const std::string& p) {
    return p.empty() || p[0] == '/' ? p : absl::StrCat(dir, "/", p);
  };
  ClientOptions o;
  const YAML::Node servers = root["servers"];
  if (!servers) return err("servers", "is required (a list of host:port)");
  if (servers.IsScalar()) {
    o.servers.push_back(servers.as<std::string>());
  } else if (servers.IsSequence()) {
    for (const auto& s : servers) o.servers.push_back(s.as<std::string>());
  } else {
    return err("servers", "must be a list of host:port");
  }
  if (o.servers.empty()) return err("servers", "is empty");
  if (!root["environment"]) return err("environment", "is required");
  o.environment = root["environment"].as<std::string>();
  const YAML::Node tls = root["tls"];
  if (!tls) return err("tls", "is required (tls.ca, tls.cert, tls.key)");
  for (const char* f : {"ca", "cert", "key"}) {
    if (!tls[f]) return err(absl::StrCat("tls.", f), "is required");
  }
  o.ca_file = resolve(tls["ca"].as<std::string>());
  o.cert_file = resolve(tls["cert"].as<std::string>());
  o.key_file = resolve(tls["key"].as<std::string>());
  if (root["deadline"]) {
    auto d = ParseHumanDuration(root["deadline"].as<std::string>());
    if (!d.ok()) return err("deadline", d.status().message());
    o.deadline = *d;
  }
  if (const YAML::Node audit = root["audit"]) {
    if (!audit.IsMap()) return err("audit", "must be a mapping (audit.checkpoint_key_fingerprint)");
    if (const YAML::Node fp = audit["checkpoint_key_fingerprint"]) {
      const std::string v = fp.IsScalar() ? fp.as<std::string>() : std::string();
      if (v.size() != 64 || v.find_first_not_of("0123456789abcdef") != std::string::npos) {
        return err("audit.checkpoint_key_fingerprint", "must be 64 lowercase hex digits");
      }
      o.audit_checkpoint_key_fingerprint = v;
    }
  }
  return o;
}

Client::Client(ClientOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {}
Client::~Client() = default;

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  if (options.servers.empty()) {
    return absl::InvalidArgumentError("the client needs at least one server address");
  }
  if (options.environment.empty()) {
    return absl::InvalidArgumentError(
        "the client needs its environment, so it can refuse a server of "
        "another one");
  }
  KW_ASSIGN_OR_RETURN(std::string ca, ReadPem("CA", options.ca_file));
  KW_ASSIGN_OR_RETURN(std::string cert, ReadPem("client certificate", options.cert_file));
  KW_ASSIGN_OR_RETURN(std::string key, ReadPem("client key", options.key_file));
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      ca, std::vector<grpc::experimental::IdentityKeyCertPair>{{key, cert}});
  Wipe(&key);
  grpc::experimental::TlsChannelCredentialsOptions tls;
  tls.set_certificate_provider(provider);
  tls.watch_root_certs();
  tls.watch_identity_key_cert_pairs();
  auto creds = grpc::experimental::TlsCredentials(tls);
  std::unique_ptr<Client> client(new Client(options));
  for (const std::string& address : options.servers) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
    auto channel = grpc::CreateCustomChannel(address, creds, args);
    client->impl_->addresses.push_back(address);
    client->impl_->stubs.push_back(v1::KeyManagement::NewStub(channel));
  }
  KW_ASSIGN_OR_RETURN(ServerInfo info, client->GetServerInfo());
  if (info.environment != options.environment) {
    return MakeError(absl::StatusCode::kFailedPrecondition,
                     ErrorCode::kEnvironmentMismatch,
                     absl::StrCat("keywardd at ", absl::StrJoin(options.servers, ", "),
                                  " serves environment '", info.environment,
                                  "' but this client is configured for '",
                                  options.environment, "'; refusing to use it"));
  }
  return client;
}

absl::StatusOr<ServerInfo> Client::GetServerInfo() {
  v1::GetServerInfoRequest req;
  v1::ServerInfo resp;
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::GetServerInfo));
  ServerInfo out;
  out.environment = resp.environment();
  out.version = resp.version();
  out.suites = {resp.suites().begin(), resp.suites().end()};
  out.hsm = resp.hsm();
  out.hsm_software = resp.hsm_software();
  out.principal = resp.principal();
  out.audit_checkpoint_key_fingerprint = resp.audit_checkpoint_key_fingerprint();
  return out;
}

absl::StatusOr<KeyInfo> Client::CreateKey(const std::string& name,
                                          const CreateKeyOptions& options) {
  v1::CreateKeyRequest req;
  req.set_name(name);
  for (const auto& [k, v] : options.labels) (*req.mutable_labels())[k] = v;
  req.set_rotation_period_seconds(absl::ToInt64Seconds(options.rotation_period));
  req.set_protection(options.protection);
  req.set_suite(options.suite);
  v1::Key resp;
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::CreateKey));
  return FromProto(resp);
}

absl::StatusOr<KeyInfo> Client::GetKey(const std::string& name) {
  v1::GetKeyRequest req;
  req.set_name(name);
  v1::Key resp;
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::GetKey));
  return FromProto(resp);
}

absl::StatusOr<KeyList> Client::ListKeys(const std::string& prefix, int page_size,
                                         const std::string& page_token) {
  v1::ListKeysRequest req;
  req.set_prefix(prefix);
  req.set_page_size(page_size);
  req.set_page_token(page_token);
  v1::ListKeysResponse resp;
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::ListKeys));
  KeyList out;
  for (const auto& k : resp.keys()) out.keys.push_back(FromProto(k));
  out.next_page_token = resp.next_page_token();
  return out;
}

absl::StatusOr<KeyInfo> Client::RotateKey(const std::string& name) {
  v1::RotateKeyRequest req;
  req.set_name(name);
  v1::Key resp;
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::RotateKey));
  return FromProto(resp);
}

absl::StatusOr<KeyInfo> Client::UpdateKey(const std::string& name, const KeyUpdate& update) {
  v1::UpdateKeyRequest req;
  req.set_name(name);
  if (update.rotation_period) {
    req.set_set_rotation_period(true);
    req.set_rotation_period_seconds(absl::ToInt64Seconds(*update.rotation_period));
  }
  for (const auto& [k, v] : update.set_labels) (*req.mutable_set_labels())[k] = v;
  for (const auto& k : update.remove_labels) req.add_remove_labels(k);
  v1::Key resp;
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::UpdateKey));
  return FromProto(resp);
}

#define KW_CLIENT_VERSION_CALL(Method)                                          \
  absl::StatusOr<KeyInfo> Client::Method(const std::string& name,              \
                                         uint32_t version) {                    \
    v1::VersionRequest req;                                                     \
    req.set_name(name);                                                         \
    req.set_version(version);                                                   \
    v1::Key resp;                                                               \
    KW_RETURN_IF_ERROR(                                                         \
        impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::Method));   \
    return FromProto(resp);                                                     \
  }
KW_CLIENT_VERSION_CALL(EnableVersion)
KW_CLIENT_VERSION_CALL(SetPrimaryVersion)
KW_CLIENT_VERSION_CALL(CancelVersionDestruction)
#undef KW_CLIENT_VERSION_CALL

absl::StatusOr<KeyInfo> Client::DisableVersion(const std::string& name, uint32_t version,
                                               bool force) {
  v1::VersionRequest req;
  req.set_name(name);
  req.set_version(version);
  req.set_force(force);
  v1::Key resp;
  KW_RETURN_IF_ERROR(
      impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::DisableVersion));
  return FromProto(resp);
}

absl::StatusOr<KeyInfo> Client::ScheduleVersionDestruction(const std::string& name,
                                                           uint32_t version,
                                                           std::optional<absl::Duration> wait,
                                                           bool force) {
  v1::ScheduleVersionDestructionRequest req;
  req.set_name(name);
  req.set_version(version);
  if (wait) req.set_wait_seconds(absl::ToInt64Seconds(*wait));
  req.set_force(force);
  v1::Key resp;
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp,
                                 &v1::KeyManagement::Stub::ScheduleVersionDestruction));
  return FromProto(resp);
}

absl::StatusOr<GeneratedDataKey> Client::GenerateDataKey(const std::string& key_name,
                                                         const EncryptionContext& context) {
  v1::GenerateDataKeyRequest req;
  req.set_key_name(key_name);
  ToProto(context, req.mutable_encryption_context());
  v1::GenerateDataKeyResponse resp;
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp,
                                 &v1::KeyManagement::Stub::GenerateDataKey));
  GeneratedDataKey out;
  out.plaintext = SecretData::CopyFrom(resp.plaintext());
  Wipe(resp.mutable_plaintext());
  out.encrypted = EncryptedDataKey{"kms", key_name, resp.wrapped()};
  out.key = FromProto(resp.key());
  return out;
}

absl::StatusOr<WrappedKeyResult> Client::GenerateDataKeyWithoutPlaintext(
    const std::string& key_name, const EncryptionContext& context) {
  v1::GenerateDataKeyRequest req;
  req.set_key_name(key_name);
  ToProto(context, req.mutable_encryption_context());
  v1::GenerateDataKeyResponse resp;
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp,
                                 &v1::KeyManagement::Stub::GenerateDataKeyWithoutPlaintext));
  return WrappedKeyResult{resp.wrapped(), FromProto(resp.key())};
}

absl::StatusOr<SecretData> Client::DecryptDataKey(const std::string& wrapped,
                                                  const EncryptionContext& context) {
  v1::DecryptDataKeyRequest req;
  req.set_wrapped(wrapped);
  ToProto(context, req.mutable_encryption_context());
  v1::DecryptDataKeyResponse resp;
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp,
                                 &v1::KeyManagement::Stub::DecryptDataKey));
  SecretData out = SecretData::CopyFrom(resp.plaintext());
  Wipe(resp.mutable_plaintext());
  return out;
}

absl::StatusOr<WrappedKeyResult> Client::ReWrapDataKey(const std::string& wrapped,
                                                       const EncryptionContext& context) {
  v1::ReWrapDataKeyRequest req;
  req.set_wrapped(wrapped);
  ToProto(context, req.mutable_encryption_context());
  v1::ReWrapDataKeyResponse resp;
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp,
                                 &v1::KeyManagement::Stub::ReWrapDataKey));
  return WrappedKeyResult{resp.wrapped(), FromProto(resp.key())};
}

absl::StatusOr<std::vector<GeneratedDataKey>> Client::GenerateDataKeys(
    const std::string& key_name, const EncryptionContext& context, int count) {
  v1::BatchGenerateDataKeysRequest req;
  req.set_key_name(key_name);
  ToProto(context, req.mutable_encryption_context());
  req.set_count(count);
  v1::BatchGenerateDataKeysResponse resp;
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp,
                                 &v1::KeyManagement::Stub::BatchGenerateDataKeys));
  std::vector<GeneratedDataKey> out;
  out.reserve(static_cast<size_t>(resp.data_keys_size()));
  for (auto& dk : *resp.mutable_data_keys()) {
    GeneratedDataKey g;
    g.plaintext = SecretData::CopyFrom(dk.plaintext());
    Wipe(dk.mutable_plaintext());
    g.encrypted = EncryptedDataKey{"kms", key_name, dk.wrapped()};
    g.key = FromProto(dk.key());
    out.push_back(std::move(g));
  }
  return out;
}

absl::StatusOr<std::vector<absl::StatusOr<SecretData>>> Client::DecryptDataKeys(
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
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp,
                                 &v1::KeyManagement::Stub::BatchDecryptDataKeys));
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

absl::StatusOr<std::string> Client::Encrypt(const std::string& key_name,
                                            const std::string& plaintext,
                                            const EncryptionContext& context) {
  v1::EncryptRequest req;
  req.set_key_name(key_name);
  req.set_plaintext(plaintext);
  ToProto(context, req.mutable_encryption_context());
  v1::EncryptResponse resp;
  absl::Status s = impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::Encrypt);
  Wipe(req.mutable_plaintext());
  KW_RETURN_IF_ERROR(s);
  return std::move(*resp.mutable_message());
}

absl::StatusOr<SecretData> Client::Decrypt(const std::string& message,
                                           const EncryptionContext& context) {
  v1::DecryptRequest req;
  req.set_message(message);
  ToProto(context, req.mutable_encryption_context());
  v1::DecryptResponse resp;
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::Decrypt));
  SecretData out = SecretData::CopyFrom(resp.plaintext());
  Wipe(resp.mutable_plaintext());
  return out;
}

absl::StatusOr<RewrappedHeader> Client::RewrapMessageHeader(
    const std::string& header, const EncryptionContext& context) {
  v1::RewrapMessageHeaderRequest req;
  req.set_header(header);
  ToProto(context, req.mutable_encryption_context());
  v1::RewrapMessageHeaderResponse resp;
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp,
                                 &v1::KeyManagement::Stub::RewrapMessageHeader));
  return RewrappedHeader{std::move(*resp.mutable_header()), FromProto(resp.key())};
}

// --- Access control -----------------------------------------------------------

namespace {
GrantInfo FromProto(const v1::Grant& g) {
  GrantInfo out;
  out.id = g.id();
  out.principal = g.principal();
  out.key = g.key_name();
  out.operations = {g.operations().begin(), g.operations().end()};
  for (const auto& [k, v] : g.encryption_context()) out.context[k] = v;
  out.created = absl::FromUnixMicros(g.created_unix_micros());
  out.expires = absl::FromUnixMicros(g.expires_unix_micros());
  if (g.revoked_unix_micros() != 0) out.revoked = absl::FromUnixMicros(g.revoked_unix_micros());
  out.created_by = g.created_by();
  out.reason = g.reason();
  return out;
}

void SetContext(const EncryptionContext& context,
                google::protobuf::Map<std::string, std::string>* out) {
  for (const auto& [k, v] : context) (*out)[k] = v;
}
}  // namespace

absl::StatusOr<std::string> Client::GetPolicy() {
  v1::GetPolicyRequest req;
  v1::PolicyDocument resp;
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::GetPolicy));
  return resp.yaml();
}

absl::StatusOr<std::string> Client::SetPolicy(const std::string& yaml) {
  v1::PolicyDocument req;
  req.set_yaml(yaml);
  v1::PolicyDocument resp;
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::SetPolicy));
  return resp.yaml();
}

absl::StatusOr<PolicyDecision> Client::TestPolicy(const std::string& principal,
                                                  const std::string& key_name,
                                                  const std::string& operation,
                                                  const EncryptionContext& context) {
  v1::TestPolicyRequest req;
  req.set_principal(principal);
  req.set_key_name(key_name);
  req.set_operation(operation);
  SetContext(context, req.mutable_encryption_context());
  v1::PolicyDecision resp;
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::TestPolicy));
  return PolicyDecision{resp.allowed(), resp.rule(), resp.reason()};
}

absl::StatusOr<GrantInfo> Client::CreateGrant(const GrantSpec& spec) {
  v1::CreateGrantRequest req;
  req.set_principal(spec.principal);
  req.set_key_name(spec.key);
  for (const auto& op : spec.operations) req.add_operations(op);
  SetContext(spec.context, req.mutable_encryption_context());
  req.set_ttl_seconds(absl::ToInt64Seconds(spec.ttl));
  req.set_reason(spec.reason);
  v1::Grant resp;
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::CreateGrant));
  return FromProto(resp);
}

absl::StatusOr<std::vector<GrantInfo>> Client::ListGrants(bool include_inactive) {
  v1::ListGrantsRequest req;
  req.set_include_inactive(include_inactive);
  v1::ListGrantsResponse resp;
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::ListGrants));
  std::vector<GrantInfo> out;
  for (const auto& g : resp.grants()) out.push_back(FromProto(g));
  return out;
}

absl::StatusOr<GrantInfo> Client::RevokeGrant(const std::string& id) {
  v1::RevokeGrantRequest req;
  req.set_id(id);
  v1::Grant resp;
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::RevokeGrant));
  return FromProto(resp);
}

// --- Audit ---------------------------------------------------------------------

absl::StatusOr<AuditCheckpointInfo> Client::GetAuditCheckpoint(bool fresh) {
  v1::GetAuditCheckpointRequest req;
  req.set_fresh(fresh);
  v1::AuditCheckpoint resp;
  KW_RETURN_IF_ERROR(
      impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::GetAuditCheckpoint));
  AuditCheckpointInfo out;
  out.environment = resp.environment();
  out.tree_size = resp.tree_size();
  out.root_hash = resp.root_hash();
  out.time = absl::FromUnixMicros(resp.time_unix_micros());
  out.key_fingerprint = resp.key_fingerprint();
  out.signature = resp.signature();
  out.line = resp.line();
  out.public_key_pem = resp.public_key_pem();
  return out;
}

absl::StatusOr<AuditInclusionProof> Client::GetInclusionProof(uint64_t index,
                                                             uint64_t tree_size) {
  v1::GetInclusionProofRequest req;
  req.set_index(index);
  req.set_tree_size(tree_size);
  v1::InclusionProof resp;
  KW_RETURN_IF_ERROR(
      impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::GetInclusionProof));
  return AuditInclusionProof{resp.index(), resp.tree_size(), resp.leaf_hash(),
                             {resp.path().begin(), resp.path().end()}, resp.root_hash()};
}

absl::StatusOr<AuditConsistencyProof> Client::GetConsistencyProof(uint64_t from_size,
                                                                 uint64_t to_size) {
  v1::GetConsistencyProofRequest req;
  req.set_from_size(from_size);
  req.set_to_size(to_size);
  v1::ConsistencyProof resp;
  KW_RETURN_IF_ERROR(
      impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::GetConsistencyProof));
  return AuditConsistencyProof{resp.from_size(), resp.to_size(),
                               {resp.path().begin(), resp.path().end()},
                               resp.from_root(), resp.to_root()};
}

absl::StatusOr<AuditPage> Client::ReadAuditRecords(const AuditQuery& q) {
  v1::ReadAuditRecordsRequest req;
  req.set_from_index(q.from_index);
  req.set_limit(q.limit);
  req.set_from_end(q.from_end);
  if (q.since) req.set_since_unix_micros(absl::ToUnixMicros(*q.since));
  if (q.until) req.set_until_unix_micros(absl::ToUnixMicros(*q.until));
  req.set_principal(q.principal);
  req.set_key_name(q.key);
  req.set_operation(q.operation);
  req.set_decision(q.decision);
  SetContext(q.context, req.mutable_encryption_context());
  v1::ReadAuditRecordsResponse resp;
  KW_RETURN_IF_ERROR(
      impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::ReadAuditRecords));
  AuditPage page;
  page.records = {resp.records().begin(), resp.records().end()};
  page.next_index = resp.next_index();
  page.size = resp.size();
  return page;
}

// --- Rotation ----------------------------------------------------------------

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

absl::StatusOr<std::vector<absl::StatusOr<RewrappedHeader>>> Client::RewrapMessageHeaders(
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
        impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::BatchRewrapMessageHeaders);
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

absl::Status Client::ReportDataSet(const DataSetReportInfo& report) {
  v1::DataSetReport req;
  req.set_data_set(report.data_set);
  req.set_key_name(report.key_name);
  for (const auto& [version, rows] : report.rows_per_version) {
    (*req.mutable_rows_per_version())[version] = rows;
  }
  req.set_rows_total(report.rows_total);
  v1::DataSetReport resp;
  return impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::ReportDataSet);
}

absl::StatusOr<std::vector<DataSetReportInfo>> Client::ListDataSets(const std::string& key_name) {
  v1::ListDataSetsRequest req;
  req.set_key_name(key_name);
  v1::ListDataSetsResponse resp;
  KW_RETURN_IF_ERROR(impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::ListDataSets));
  std::vector<DataSetReportInfo> out;
  for (const auto& r : resp.reports()) {
    DataSetReportInfo info;
    info.data_set = r.data_set();
    info.key_name = r.key_name();
    for (const auto& [version, rows] : r.rows_per_version()) info.rows_per_version[version] = rows;
    info.rows_total = r.rows_total();
    info.reported = absl::FromUnixMicros(r.reported_unix_micros());
    info.reported_by = r.reported_by();
    out.push_back(std::move(info));
  }
  return out;
}

absl::StatusOr<std::vector<DrillSampleInfo>> Client::GetDrillSamples(const std::string& key_name) {
  v1::GetDrillSamplesRequest req;
  req.set_key_name(key_name);
  v1::GetDrillSamplesResponse resp;
  KW_RETURN_IF_ERROR(
      impl_->Call(options_, req, &resp, &v1::KeyManagement::Stub::GetDrillSamples));
  std::vector<DrillSampleInfo> out;
  for (const auto& d : resp.samples()) {
    out.push_back({d.version(), d.state(), d.message(), d.expected_plaintext()});
  }
  return out;
}

}  // namespace keyward
