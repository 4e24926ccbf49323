// Long on purpose: one thin wrapper per administrative RPC, a few lines each.
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "format/wire_names.h"
#include "keyward/admin_client.h"
#include "sdk/connection_impl.h"

namespace keyward {
namespace {

using sdk::FromProto;
using sdk::ToProto;

// The wire names of keyward.proto (and of keywardd's key model).
constexpr std::pair<KeyPurpose, absl::string_view> kPurposes[] = {
    {KeyPurpose::kEnvelopeEncryption, format::wire::kPurposeEnvelopeEncryption},
    {KeyPurpose::kDeterministicEncryption, format::wire::kPurposeDeterministicEncryption},
    {KeyPurpose::kBlindIndex, format::wire::kPurposeBlindIndex},
};
constexpr std::pair<KeyVersionState, absl::string_view> kStates[] = {
    {KeyVersionState::kEnabled, format::wire::kStateEnabled},
    {KeyVersionState::kDecryptOnly, format::wire::kStateDecryptOnly},
    {KeyVersionState::kDisabled, format::wire::kStateDisabled},
    {KeyVersionState::kPendingDestruction, format::wire::kStatePendingDestruction},
    {KeyVersionState::kDestroyed, format::wire::kStateDestroyed},
};
constexpr std::pair<TenantErasure::State, absl::string_view> kTenantStates[] = {
    {TenantErasure::State::kNone, format::wire::kTenantStateNone},
    {TenantErasure::State::kActive, format::wire::kTenantStateActive},
    {TenantErasure::State::kErased, format::wire::kTenantStateErased},
};
constexpr std::pair<KeyProtection, absl::string_view> kProtections[] = {
    {KeyProtection::kWrappedByRoot, format::wire::kProtectionWrappedByRoot},
    {KeyProtection::kHsmResident, format::wire::kProtectionHsmResident},
};

template <typename E, size_t N>
absl::string_view NameOf(const std::pair<E, absl::string_view> (&table)[N], E value,
                         absl::string_view otherwise) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return otherwise;
}

template <typename E, size_t N>
E FromNameIn(const std::pair<E, absl::string_view> (&table)[N], absl::string_view name,
             E otherwise) {
  for (const auto& [v, n] : table) {
    if (n == name) return v;
  }
  return otherwise;
}

KeyProtection ProtectionFromName(absl::string_view name) {
  return FromNameIn(kProtections, name, KeyProtection::kServerDefault);
}

Suite SuiteFromName(absl::string_view name) {
  for (Suite s : {Suite::kAes256GcmHkdfSha256Commit, Suite::kChaCha20Poly1305HkdfSha256Commit,
                  Suite::kAes256GcmHkdfSha256CommitEcdsaP384}) {
    if (SuiteName(s) == name) return s;
  }
  return Suite::kAes256GcmHkdfSha256Commit;
}

std::optional<absl::Time> OptionalMicros(int64_t us) {
  if (us == 0) return std::nullopt;
  return absl::FromUnixMicros(us);
}

KeyInfo FromProto(const v1::Key& k) {
  KeyInfo out;
  out.name = k.name();
  out.purpose = KeyPurposeFromName(k.purpose());
  out.suite = SuiteFromName(k.suite());
  out.environment = k.environment();
  out.labels = {k.labels().begin(), k.labels().end()};
  out.rotation_period = absl::Seconds(k.rotation_period_seconds());
  out.primary_version = k.primary_version();
  out.created = absl::FromUnixMicros(k.created_unix_micros());
  out.updated = absl::FromUnixMicros(k.updated_unix_micros());
  for (const v1::KeyVersion& v : k.versions()) {
    KeyVersionInfo vi;
    vi.version = v.version();
    vi.state = KeyVersionStateFromName(v.state());
    vi.protection = ProtectionFromName(v.protection());
    vi.created = absl::FromUnixMicros(v.created_unix_micros());
    vi.destroy_after = OptionalMicros(v.destroy_after_unix_micros());
    vi.destroyed = OptionalMicros(v.destroyed_unix_micros());
    vi.data_keys_issued = v.data_keys_issued();
    vi.decrypts = v.decrypts();
    vi.last_used = OptionalMicros(v.last_used_unix_micros());
    vi.last_decrypt = OptionalMicros(v.last_decrypt_unix_micros());
    vi.compromised = OptionalMicros(v.compromised_unix_micros());
    vi.compromise_reason = v.compromise_reason();
    vi.compromised_by = v.compromised_by();
    out.versions.push_back(std::move(vi));
  }
  return out;
}

}  // namespace

absl::string_view KeyPurposeName(KeyPurpose purpose) {
  return NameOf(kPurposes, purpose, "unknown");
}
absl::string_view KeyVersionStateName(KeyVersionState state) {
  return NameOf(kStates, state, "unknown");
}
absl::string_view KeyProtectionName(KeyProtection protection) {
  return NameOf(kProtections, protection, "server-default");
}
absl::string_view TenantStateName(TenantErasure::State state) {
  return NameOf(kTenantStates, state, "unknown");
}
KeyPurpose KeyPurposeFromName(absl::string_view name) {
  return FromNameIn(kPurposes, name, KeyPurpose::kUnknown);
}
KeyVersionState KeyVersionStateFromName(absl::string_view name) {
  return FromNameIn(kStates, name, KeyVersionState::kUnknown);
}
absl::StatusOr<KeyProtection> ParseKeyProtection(absl::string_view name) {
  if (name.empty() || name == "server-default") return KeyProtection::kServerDefault;
  const KeyProtection p = ProtectionFromName(name);
  if (p == KeyProtection::kServerDefault) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown key protection '", name, "' (wrapped-by-root or hsm-resident)"));
  }
  return p;
}

absl::StatusOr<std::shared_ptr<AdminClient>> AdminClient::Connect(const ClientOptions& options) {
  KW_ASSIGN_OR_RETURN(std::shared_ptr<Connection> connection, Connection::Open(options));
  return std::make_shared<AdminClient>(std::move(connection));
}

AdminClient::AdminClient(std::shared_ptr<Connection> connection)
    : connection_(std::move(connection)) {}

absl::StatusOr<ServerInfo> AdminClient::GetServerInfo(bool check_health) {
  return connection_->GetServerInfo(check_health);
}

absl::StatusOr<KeyInfo> AdminClient::CreateKey(const std::string& name,
                                          const CreateKeyOptions& options) {
  v1::CreateKeyRequest req;
  req.set_name(name);
  for (const auto& [k, v] : options.labels) (*req.mutable_labels())[k] = v;
  req.set_rotation_period_seconds(absl::ToInt64Seconds(options.rotation_period));
  if (options.protection != KeyProtection::kServerDefault) {
    req.set_protection(std::string(KeyProtectionName(options.protection)));
  }
  if (options.suite) req.set_suite(std::string(SuiteName(*options.suite)));
  v1::Key resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(CreateKey)));
  return FromProto(resp);
}

absl::StatusOr<KeyInfo> AdminClient::GetKey(const std::string& name) {
  v1::GetKeyRequest req;
  req.set_name(name);
  v1::Key resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(GetKey)));
  return FromProto(resp);
}

absl::StatusOr<KeyList> AdminClient::ListKeys(const std::string& prefix, int page_size,
                                         const std::string& page_token) {
  v1::ListKeysRequest req;
  req.set_prefix(prefix);
  req.set_page_size(page_size);
  req.set_page_token(page_token);
  v1::ListKeysResponse resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(ListKeys)));
  KeyList out;
  for (const auto& k : resp.keys()) out.keys.push_back(FromProto(k));
  out.next_page_token = resp.next_page_token();
  return out;
}

absl::StatusOr<KeyInfo> AdminClient::RotateKey(const std::string& name) {
  v1::RotateKeyRequest req;
  req.set_name(name);
  v1::Key resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(RotateKey)));
  return FromProto(resp);
}

absl::StatusOr<KeyInfo> AdminClient::UpdateKey(const std::string& name, const KeyUpdate& update) {
  v1::UpdateKeyRequest req;
  req.set_name(name);
  if (update.rotation_period) {
    req.set_set_rotation_period(true);
    req.set_rotation_period_seconds(absl::ToInt64Seconds(*update.rotation_period));
  }
  for (const auto& [k, v] : update.set_labels) (*req.mutable_set_labels())[k] = v;
  for (const auto& k : update.remove_labels) req.add_remove_labels(k);
  v1::Key resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(UpdateKey)));
  return FromProto(resp);
}

#define KW_CLIENT_VERSION_CALL(Method)                                          \
  absl::StatusOr<KeyInfo> AdminClient::Method(const std::string& name,              \
                                         uint32_t version) {                    \
    v1::VersionRequest req;                                                     \
    req.set_name(name);                                                         \
    req.set_version(version);                                                   \
    v1::Key resp;                                                               \
    KW_RETURN_IF_ERROR(                                                         \
        sdk::Call(*connection_, req, &resp, KW_RPC(Method)));   \
    return FromProto(resp);                                                     \
  }
KW_CLIENT_VERSION_CALL(EnableVersion)
KW_CLIENT_VERSION_CALL(SetPrimaryVersion)
KW_CLIENT_VERSION_CALL(CancelVersionDestruction)
#undef KW_CLIENT_VERSION_CALL

absl::StatusOr<KeyInfo> AdminClient::DisableVersion(const std::string& name, uint32_t version,
                                               bool force) {
  v1::VersionRequest req;
  req.set_name(name);
  req.set_version(version);
  req.set_force(force);
  v1::Key resp;
  KW_RETURN_IF_ERROR(
      sdk::Call(*connection_, req, &resp, KW_RPC(DisableVersion)));
  return FromProto(resp);
}

absl::StatusOr<KeyInfo> AdminClient::ScheduleVersionDestruction(const std::string& name,
                                                           uint32_t version,
                                                           std::optional<absl::Duration> wait,
                                                           bool force) {
  v1::ScheduleVersionDestructionRequest req;
  req.set_name(name);
  req.set_version(version);
  if (wait) req.set_wait_seconds(absl::ToInt64Seconds(*wait));
  req.set_force(force);
  v1::Key resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp,
                                 KW_RPC(ScheduleVersionDestruction)));
  return FromProto(resp);
}

// --- Tenant erasure -----------------------------------------------------------

absl::StatusOr<TenantErasure> AdminClient::EraseTenant(const std::string& key_name,
                                                       const std::string& tenant,
                                                       const EraseTenantOptions& options) {
  v1::EraseTenantRequest req;
  req.set_key_name(key_name);
  req.set_tenant(tenant);
  req.set_dry_run(options.dry_run);
  v1::TenantErasure resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(EraseTenant)));
  TenantErasure out;
  out.state = FromNameIn(kTenantStates, resp.state_before(), TenantErasure::State::kUnknown);
  out.created = OptionalMicros(resp.created_unix_micros());
  out.erased = OptionalMicros(resp.erased_unix_micros());
  out.erased_by = resp.erased_by();
  out.dry_run = resp.dry_run();
  return out;
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

absl::StatusOr<std::string> AdminClient::GetPolicy() {
  v1::GetPolicyRequest req;
  v1::PolicyDocument resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(GetPolicy)));
  return resp.yaml();
}

absl::StatusOr<std::string> AdminClient::SetPolicy(const std::string& yaml) {
  v1::PolicyDocument req;
  req.set_yaml(yaml);
  v1::PolicyDocument resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(SetPolicy)));
  return resp.yaml();
}

absl::StatusOr<PolicyDecision> AdminClient::TestPolicy(const std::string& principal,
                                                  const std::string& key_name,
                                                  const std::string& operation,
                                                  const EncryptionContext& context) {
  v1::TestPolicyRequest req;
  req.set_principal(principal);
  req.set_key_name(key_name);
  req.set_operation(operation);
  SetContext(context, req.mutable_encryption_context());
  v1::PolicyDecision resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(TestPolicy)));
  return PolicyDecision{resp.allowed(), resp.rule(), resp.reason()};
}

absl::StatusOr<GrantInfo> AdminClient::CreateGrant(const GrantSpec& spec) {
  v1::CreateGrantRequest req;
  req.set_principal(spec.principal);
  req.set_key_name(spec.key);
  for (const auto& op : spec.operations) req.add_operations(op);
  SetContext(spec.context, req.mutable_encryption_context());
  req.set_ttl_seconds(absl::ToInt64Seconds(spec.ttl));
  req.set_reason(spec.reason);
  v1::Grant resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(CreateGrant)));
  return FromProto(resp);
}

absl::StatusOr<std::vector<GrantInfo>> AdminClient::ListGrants(bool include_inactive) {
  v1::ListGrantsRequest req;
  req.set_include_inactive(include_inactive);
  v1::ListGrantsResponse resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(ListGrants)));
  std::vector<GrantInfo> out;
  for (const auto& g : resp.grants()) out.push_back(FromProto(g));
  return out;
}

absl::StatusOr<GrantInfo> AdminClient::RevokeGrant(const std::string& id) {
  v1::RevokeGrantRequest req;
  req.set_id(id);
  v1::Grant resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(RevokeGrant)));
  return FromProto(resp);
}

// --- Break-glass ---------------------------------------------------------------

namespace {

BreakGlassInfo FromProto(const v1::BreakGlassGrant& g) {
  BreakGlassInfo out;
  out.id = g.id();
  out.requester = g.requester();
  out.key = g.key_name();
  for (const auto& [k, v] : g.encryption_context()) out.context[k] = v;
  out.reason = g.reason();
  out.policy_entry = g.policy_entry();
  out.quorum = g.quorum();
  out.duration = absl::Seconds(g.duration_seconds());
  out.max_decrypts = g.max_decrypts();
  out.decrypts = g.decrypts();
  out.requested = absl::FromUnixMicros(g.requested_unix_micros());
  out.request_expires = absl::FromUnixMicros(g.request_expires_unix_micros());
  for (const auto& a : g.approvals()) {
    out.approvals.push_back({a.principal(), absl::FromUnixMicros(a.time_unix_micros())});
  }
  if (g.activated_unix_micros() != 0) {
    out.activated = absl::FromUnixMicros(g.activated_unix_micros());
  }
  out.expires = absl::FromUnixMicros(g.expires_unix_micros());
  if (g.revoked_unix_micros() != 0) out.revoked = absl::FromUnixMicros(g.revoked_unix_micros());
  out.revoked_by = g.revoked_by();
  out.state = g.state();
  return out;
}

}  // namespace

absl::StatusOr<BreakGlassInfo> AdminClient::RequestBreakGlass(const BreakGlassSpec& spec) {
  v1::RequestBreakGlassRequest req;
  req.set_key_name(spec.key);
  SetContext(spec.context, req.mutable_encryption_context());
  req.set_reason(spec.reason);
  req.set_duration_seconds(absl::ToInt64Seconds(spec.duration));
  req.set_max_decrypts(spec.max_decrypts);
  v1::BreakGlassGrant resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(RequestBreakGlass)));
  return FromProto(resp);
}

absl::StatusOr<BreakGlassInfo> AdminClient::ApproveBreakGlass(const std::string& id) {
  v1::BreakGlassIdRequest req;
  req.set_id(id);
  v1::BreakGlassGrant resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(ApproveBreakGlass)));
  return FromProto(resp);
}

absl::StatusOr<BreakGlassInfo> AdminClient::GetBreakGlass(const std::string& id) {
  v1::BreakGlassIdRequest req;
  req.set_id(id);
  v1::BreakGlassGrant resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(GetBreakGlass)));
  return FromProto(resp);
}

absl::StatusOr<std::vector<BreakGlassInfo>> AdminClient::ListBreakGlass(bool include_closed) {
  v1::ListBreakGlassRequest req;
  req.set_include_closed(include_closed);
  v1::ListBreakGlassResponse resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(ListBreakGlass)));
  std::vector<BreakGlassInfo> out;
  for (const auto& g : resp.grants()) out.push_back(FromProto(g));
  return out;
}

absl::StatusOr<BreakGlassInfo> AdminClient::RevokeBreakGlass(const std::string& id) {
  v1::BreakGlassIdRequest req;
  req.set_id(id);
  v1::BreakGlassGrant resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(RevokeBreakGlass)));
  return FromProto(resp);
}

// --- Audit ---------------------------------------------------------------------

absl::StatusOr<AuditCheckpointInfo> AdminClient::GetAuditCheckpoint(bool fresh) {
  v1::GetAuditCheckpointRequest req;
  req.set_fresh(fresh);
  v1::AuditCheckpoint resp;
  KW_RETURN_IF_ERROR(
      sdk::Call(*connection_, req, &resp, KW_RPC(GetAuditCheckpoint)));
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

absl::StatusOr<AuditInclusionProof> AdminClient::GetInclusionProof(uint64_t index,
                                                             uint64_t tree_size) {
  v1::GetInclusionProofRequest req;
  req.set_index(index);
  req.set_tree_size(tree_size);
  v1::InclusionProof resp;
  KW_RETURN_IF_ERROR(
      sdk::Call(*connection_, req, &resp, KW_RPC(GetInclusionProof)));
  return AuditInclusionProof{resp.index(), resp.tree_size(), resp.leaf_hash(),
                             {resp.path().begin(), resp.path().end()}, resp.root_hash()};
}

absl::StatusOr<AuditConsistencyProof> AdminClient::GetConsistencyProof(uint64_t from_size,
                                                                 uint64_t to_size) {
  v1::GetConsistencyProofRequest req;
  req.set_from_size(from_size);
  req.set_to_size(to_size);
  v1::ConsistencyProof resp;
  KW_RETURN_IF_ERROR(
      sdk::Call(*connection_, req, &resp, KW_RPC(GetConsistencyProof)));
  return AuditConsistencyProof{resp.from_size(), resp.to_size(),
                               {resp.path().begin(), resp.path().end()},
                               resp.from_root(), resp.to_root()};
}

absl::StatusOr<AuditPage> AdminClient::ReadAuditRecords(const AuditQuery& q) {
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
      sdk::Call(*connection_, req, &resp, KW_RPC(ReadAuditRecords)));
  AuditPage page;
  page.records = {resp.records().begin(), resp.records().end()};
  page.next_index = resp.next_index();
  page.size = resp.size();
  return page;
}

namespace {
AuditSegmentInfo FromProto(const v1::AuditSegment& s) {
  AuditSegmentInfo out;
  out.first_index = s.first_index();
  out.records = s.records();
  out.bytes = s.bytes();
  out.closed = s.closed();
  out.sha256 = s.sha256();
  if (s.records() > 0) {
    out.first_time = absl::FromUnixMicros(s.first_time_unix_micros());
    out.last_time = absl::FromUnixMicros(s.last_time_unix_micros());
  }
  out.archived_to = s.archived_to();
  if (!s.archived_to().empty()) out.archived_at = absl::FromUnixMicros(s.archived_unix_micros());
  out.file = s.file();
  return out;
}
}  // namespace

absl::StatusOr<AuditSegments> AdminClient::ListAuditSegments() {
  v1::ListAuditSegmentsRequest req;
  v1::ListAuditSegmentsResponse resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(ListAuditSegments)));
  AuditSegments out;
  out.segmented = resp.segmented();
  out.pruned_records = resp.pruned_records();
  for (const auto& s : resp.segments()) out.segments.push_back(FromProto(s));
  return out;
}

absl::StatusOr<AuditPruneResult> AdminClient::PruneAuditLog(const AuditPruneRequest& r) {
  v1::PruneAuditLogRequest req;
  req.set_before_unix_micros(absl::ToUnixMicros(r.before));
  req.set_force(r.force);
  req.set_dry_run(r.dry_run);
  req.set_reason(r.reason);
  v1::PruneAuditLogResponse resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(PruneAuditLog)));
  AuditPruneResult out;
  for (const auto& s : resp.segments()) out.segments.push_back(FromProto(s));
  out.pruned_before = resp.pruned_before();
  out.pruned_after = resp.pruned_after();
  out.unarchived = resp.unarchived();
  return out;
}

absl::Status AdminClient::ReportDataSet(const DataSetReportInfo& report) {
  v1::DataSetReport req;
  req.set_data_set(report.data_set);
  req.set_key_name(report.key_name);
  for (const auto& [version, rows] : report.rows_per_version) {
    (*req.mutable_rows_per_version())[version] = rows;
  }
  req.set_rows_total(report.rows_total);
  v1::DataSetReport resp;
  return sdk::Call(*connection_, req, &resp, KW_RPC(ReportDataSet));
}

namespace {
DataSetReportInfo FromProto(const v1::DataSetReport& r) {
  DataSetReportInfo info;
  info.data_set = r.data_set();
  info.key_name = r.key_name();
  for (const auto& [version, rows] : r.rows_per_version()) info.rows_per_version[version] = rows;
  info.rows_total = r.rows_total();
  info.reported = absl::FromUnixMicros(r.reported_unix_micros());
  info.reported_by = r.reported_by();
  return info;
}
}  // namespace

absl::StatusOr<CompromiseInfo> AdminClient::CompromiseVersion(const std::string& name,
                                                              uint32_t version,
                                                              const std::string& reason) {
  v1::CompromiseVersionRequest req;
  req.set_name(name);
  req.set_version(version);
  req.set_reason(reason);
  v1::CompromiseVersionResponse resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(CompromiseVersion)));
  CompromiseInfo out;
  out.key = FromProto(resp.key());
  out.new_primary_version = resp.new_primary_version();
  out.already_compromised = resp.already_compromised();
  for (const auto& r : resp.data_sets()) out.data_sets.push_back(FromProto(r));
  return out;
}

absl::StatusOr<std::vector<DataSetReportInfo>> AdminClient::ListDataSets(const std::string& key_name) {
  v1::ListDataSetsRequest req;
  req.set_key_name(key_name);
  v1::ListDataSetsResponse resp;
  KW_RETURN_IF_ERROR(sdk::Call(*connection_, req, &resp, KW_RPC(ListDataSets)));
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

absl::StatusOr<std::vector<DrillSampleInfo>> AdminClient::GetDrillSamples(const std::string& key_name) {
  v1::GetDrillSamplesRequest req;
  req.set_key_name(key_name);
  v1::GetDrillSamplesResponse resp;
  KW_RETURN_IF_ERROR(
      sdk::Call(*connection_, req, &resp, KW_RPC(GetDrillSamples)));
  std::vector<DrillSampleInfo> out;
  for (const auto& d : resp.samples()) {
    out.push_back(
        {d.version(), KeyVersionStateFromName(d.state()), d.message(), d.expected_plaintext()});
  }
  return out;
}

}  // namespace keyward
