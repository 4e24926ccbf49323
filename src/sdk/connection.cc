#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/crypto.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/duration.h"
#include "base/status_macros.h"
#include "crypto/random.h"
#include "format/wire_names.h"
#include "keyward/connection.h"
#include "sdk/connection_impl.h"
#include "yaml-cpp/yaml.h"

namespace keyward {
namespace {

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

}  // namespace

namespace sdk {


void Wipe(std::string* s) {
  if (!s->empty()) OPENSSL_cleanse(s->data(), s->size());
}

// A batch item's error as a status with its Keyward code.
absl::Status ItemStatus(int code, const std::string& error, const std::string& error_code) {
  const ErrorCode ec = ErrorCodeFromName(error_code);
  const auto c = static_cast<absl::StatusCode>(code);
  return ec == ErrorCode::kNone ? absl::Status(c, error) : MakeError(c, ec, error);
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
  auto it = trailers.find(format::wire::kErrorCodeMetadata);
  if (it != trailers.end()) {
    const ErrorCode ec = ErrorCodeFromName(
        absl::string_view(it->second.data(), it->second.size()));
    if (ec != ErrorCode::kNone) return MakeError(code, ec, message);
  }
  return absl::Status(code, message);
}

void SleepJittered(absl::Duration backoff) {
  auto r = crypto::RandomBytes(2);
  const double fraction =
      r.ok() ? (static_cast<uint8_t>((*r)[0]) * 256 + static_cast<uint8_t>((*r)[1])) / 65536.0
             : 0.5;
  std::this_thread::sleep_for(absl::ToChronoMicroseconds(backoff * fraction));
}

absl::Status NotConnected(absl::string_view address) {
  return absl::UnavailableError(absl::StrCat(
      "keywardd at ", address, " could not be connected (the request was not sent there)"));
}

bool AnsweredByKeywardd(const grpc::ClientContext& ctx) {
  // keywardd sends its request id with every answer.
  return ctx.GetServerTrailingMetadata().count("keyward-request-id") > 0;
}

absl::Status MayHaveBeenApplied(const absl::Status& last, bool answered,
                                absl::string_view method, const RpcRetryRule* rule,
                                absl::string_view address) {
  const absl::string_view check =
      rule != nullptr && !rule->check.empty() ? rule->check : "the state it changes";
  // keywardd's own answer (its HSM or store unavailable, say) stands; when
  // it could not record the request, with the caveat.
  if (answered && GetErrorCode(last) != ErrorCode::kAuditUnavailable) return last;
  if (answered) {
    return MakeError(absl::StatusCode::kUnavailable, ErrorCode::kAuditUnavailable,
                     absl::StrCat(last.message(), "; ", method,
                                  " may have been applied before its record failed: check "
                                  "with ", check, " before retrying"));
  }
  return MakeError(
      absl::StatusCode::kUnknown, ErrorCode::kMayHaveBeenApplied,
      absl::StrCat(method, " failed after it was sent to keywardd at ", address, " (",
                   last.message(), "); the request may have been applied; check with ",
                   check, " before retrying (it is not retried automatically because it "
                   "changes state)"));
}

absl::Status Exhausted(const absl::Status& last, absl::string_view method,
                       const std::vector<std::string>& tried, bool safe) {
  std::vector<std::string> servers;
  for (const std::string& t : tried) {
    if (std::find(servers.begin(), servers.end(), t) == servers.end()) servers.push_back(t);
  }
  const std::string message = absl::StrCat(
      method, " failed on ", tried.size(), " attempt(s) at keywardd ",
      absl::StrJoin(servers, ", "), safe ? "" : " (the request was sent to none of them)",
      "; it is safe to retry later.  Last error: ", last.message());
  const ErrorCode code = GetErrorCode(last);
  return code == ErrorCode::kNone ? absl::UnavailableError(message)
                                  : MakeError(absl::StatusCode::kUnavailable, code, message);
}

KeyReference FromProto(const v1::KeyReference& r) {
  return KeyReference{r.environment(), r.key_name(), r.key_version()};
}

void ToProto(const EncryptionContext& ctx,
             google::protobuf::Map<std::string, std::string>* out) {
  for (const auto& [k, v] : ctx) (*out)[k] = v;
}

}  // namespace sdk

namespace {

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

}  // namespace

Connection::Impl::Endpoint& Connection::Impl::Pick() {
  const size_t n = endpoints.size();
  const size_t start = static_cast<size_t>(next.fetch_add(1, std::memory_order_relaxed) % n);
  const int64_t now = NowMicros();
  for (size_t k = 0; k < n; ++k) {
    Endpoint& e = *endpoints[(start + k) % n];
    if (e.ejected_until_us.load(std::memory_order_relaxed) <= now) return e;
  }
  Endpoint* oldest = endpoints[start].get();
  for (const auto& e : endpoints) {
    if (e->ejected_at_us.load(std::memory_order_relaxed) <
        oldest->ejected_at_us.load(std::memory_order_relaxed)) {
      oldest = e.get();
    }
  }
  return *oldest;
}

bool Connection::Impl::AllEjected() const {
  const int64_t now = NowMicros();
  for (const auto& e : endpoints) {
    if (e->ejected_until_us.load(std::memory_order_relaxed) <= now) return false;
  }
  return true;
}

void Connection::Impl::Eject(Endpoint& e, const ClientOptions& o) {
  const uint32_t streak = e.failures_in_a_row.fetch_add(1, std::memory_order_relaxed);
  absl::Duration period = o.ejection_time;
  for (uint32_t i = 0; i < std::min<uint32_t>(streak, 32) && period < o.max_ejection_time; ++i) {
    period *= 2;
  }
  period = std::min(period, o.max_ejection_time);
  const int64_t now = NowMicros();
  e.ejected_at_us.store(now, std::memory_order_relaxed);
  e.ejected_until_us.store(now + absl::ToInt64Microseconds(period), std::memory_order_relaxed);
  e.ejections.fetch_add(1, std::memory_order_relaxed);
}

void Connection::Impl::MarkHealthy(Endpoint& e) {
  if (e.failures_in_a_row.load(std::memory_order_relaxed) == 0) return;
  e.failures_in_a_row.store(0, std::memory_order_relaxed);
  e.ejected_until_us.store(0, std::memory_order_relaxed);
}

bool Connection::Impl::Connect(Endpoint& e, absl::Duration timeout) {
  const auto deadline = std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout);
  grpc_connectivity_state state = e.channel->GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY) {
    // A channel in TRANSIENT_FAILURE has just failed to connect and waits
    // to try again: not usable now.
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) return false;
    if (!e.channel->WaitForStateChange(state, deadline)) return false;
    state = e.channel->GetState(/*try_to_connect=*/true);
  }
  return true;
}

namespace {

absl::StatusOr<ClientOptions> ReadClientConfig(const std::string& path) {
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

}  // namespace

absl::StatusOr<ClientOptions> LoadClientConfig(const std::string& path) {
  // A field of the wrong shape (a list where a string belongs) makes
  // yaml-cpp throw: an error for the caller, not an exception.
  try {
    return ReadClientConfig(path);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": a field has the wrong type (", e.what(), ")"));
  }
}

Connection::Connection(ClientOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {}
Connection::~Connection() = default;

absl::StatusOr<std::shared_ptr<Connection>> Connection::Open(const ClientOptions& options) {
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
  sdk::Wipe(&key);
  grpc::experimental::TlsChannelCredentialsOptions tls;
  tls.set_certificate_provider(provider);
  tls.watch_root_certs();
  tls.watch_identity_key_cert_pairs();
  auto creds = grpc::experimental::TlsCredentials(tls);
  std::shared_ptr<Connection> client(new Connection(options));
  for (const std::string& address : options.servers) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
    // gRPC's own reconnection backoff (up to 2 minutes by default) would
    // keep a replica that came back unusable long after its ejection ends.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 1000);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                static_cast<int>(std::max<int64_t>(
                    1000, absl::ToInt64Milliseconds(options.max_ejection_time))));
    auto e = std::make_unique<Impl::Endpoint>();
    e->address = address;
    e->channel = grpc::CreateCustomChannel(address, creds, args);
    e->stub = v1::KeyManagement::NewStub(e->channel);
    client->impl_->endpoints.push_back(std::move(e));
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

absl::StatusOr<ServerInfo> Connection::GetServerInfo(bool check_health) {
  v1::GetServerInfoRequest req;
  req.set_check_health(check_health);
  v1::ServerInfo resp;
  KW_RETURN_IF_ERROR(sdk::Call(*this, req, &resp, KW_RPC(GetServerInfo)));
  ServerInfo out;
  out.environment = resp.environment();
  out.version = resp.version();
  out.suites = {resp.suites().begin(), resp.suites().end()};
  out.hsm = resp.hsm();
  out.hsm_software = resp.hsm_software();
  out.principal = resp.principal();
  out.audit_checkpoint_key_fingerprint = resp.audit_checkpoint_key_fingerprint();
  if (resp.server_time_unix_micros() != 0) {
    out.server_time = absl::FromUnixMicros(resp.server_time_unix_micros());
  }
  out.health = resp.health();
  return out;
}

std::vector<EndpointStats> Connection::Endpoints() const {
  const int64_t now = NowMicros();
  std::vector<EndpointStats> out;
  for (const auto& e : impl_->endpoints) {
    EndpointStats s;
    s.address = e->address;
    s.attempts = e->attempts.load(std::memory_order_relaxed);
    s.failures = e->failures.load(std::memory_order_relaxed);
    s.ejections = e->ejections.load(std::memory_order_relaxed);
    s.ejected = e->ejected_until_us.load(std::memory_order_relaxed) > now;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace keyward
