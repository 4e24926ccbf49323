// Handlers: server info, keys and their versions (and their compromise).
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/bounded.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "keystore/store_common.h"
#include "metrics/metrics.h"
#include "keyward/message.h"
#include "keyward/version.h"
#include "server/convert.h"
#include "server/key_management_service.h"

namespace keyward::server {

absl::Status KeyManagementService::GetServerInfo(Call& call, const v1::GetServerInfoRequest& req,
                                                 v1::ServerInfo* resp) {
  call.set_public();
  const hsm::HsmInfo hsm = core_->hsm_info();
  resp->set_environment(core_->environment());
  resp->set_version(kVersion);
  resp->add_suites(std::string(SuiteName(Suite::kAes256GcmHkdfSha256Commit)));
  resp->add_suites(std::string(SuiteName(Suite::kChaCha20Poly1305HkdfSha256Commit)));
  resp->add_suites(std::string(SuiteName(Suite::kAes256GcmHkdfSha256CommitEcdsaP384)));
  resp->set_hsm(absl::StrCat(hsm.token_label, " (", hsm.manufacturer, " ", hsm.model, ")"));
  resp->set_hsm_software(hsm.software);
  resp->set_principal(call.principal());
  resp->set_audit_checkpoint_key_fingerprint(deps_.checkpoint_key_fingerprint);
  resp->set_server_time_unix_micros(absl::ToUnixMicros(absl::Now()));
  if (req.check_health()) {
    const absl::Status health = core_->CheckHealth();
    resp->set_health(health.ok() ? "ok" : Bounded(health.message(), 300));
  }
  return absl::OkStatus();
}

absl::Status KeyManagementService::CreateKey(Call& call, const v1::CreateKeyRequest& req,
                                             v1::Key* resp) {
  KW_RETURN_IF_ERROR(call.Authorize(req.name(), {}));
  kms::CreateKeyRequest r;
  r.name = req.name();
  if (!req.purpose().empty()) {
    KW_ASSIGN_OR_RETURN(r.purpose, keystore::ParseKeyPurpose(Bounded(req.purpose())));
  }
  if (!req.suite().empty()) {
    if (req.suite() == SuiteName(Suite::kAes256GcmHkdfSha256Commit)) {
      r.suite = Suite::kAes256GcmHkdfSha256Commit;
    } else if (req.suite() == SuiteName(Suite::kChaCha20Poly1305HkdfSha256Commit)) {
      r.suite = Suite::kChaCha20Poly1305HkdfSha256Commit;
    } else if (req.suite() == SuiteName(Suite::kAes256GcmHkdfSha256CommitEcdsaP384)) {
      r.suite = Suite::kAes256GcmHkdfSha256CommitEcdsaP384;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown suite '", Bounded(req.suite()), "'; use ",
          SuiteName(Suite::kAes256GcmHkdfSha256Commit), ", ",
          SuiteName(Suite::kChaCha20Poly1305HkdfSha256Commit), " or ",
          SuiteName(Suite::kAes256GcmHkdfSha256CommitEcdsaP384)));
    }
  }
  r.labels = {req.labels().begin(), req.labels().end()};
  r.rotation_period = absl::Seconds(req.rotation_period_seconds());
  if (!req.protection().empty()) {
    KW_ASSIGN_OR_RETURN(r.protection, keystore::ParseKekProtection(Bounded(req.protection())));
  }
  KW_ASSIGN_OR_RETURN(keystore::Key key, core_->CreateKey(r));
  ToProto(key, resp);
  return absl::OkStatus();
}

absl::Status KeyManagementService::GetKey(Call& call, const v1::GetKeyRequest& req,
                                          v1::Key* resp) {
  KW_RETURN_IF_ERROR(call.Authorize(req.name(), {}));
  KW_ASSIGN_OR_RETURN(keystore::Key key, core_->GetKey(req.name()));
  ToProto(key, resp);
  return absl::OkStatus();
}

absl::Status KeyManagementService::ListKeys(Call& call, const v1::ListKeysRequest& req,
                                            v1::ListKeysResponse* resp) {
  // The prefix is checked as a key name (a rule for "payments/*" may list
  // "payments/"; listing everything needs a rule that matches ""), and
  // then every key is checked on its own: a prefix says nothing about the
  // keys under it that a deny rule or a narrower pattern leaves out.
  KW_RETURN_IF_ERROR(call.AuthorizeScope(req.prefix()));
  KW_ASSIGN_OR_RETURN(keystore::KeyPage page,
                      core_->ListKeys(req.prefix(), req.page_size() == 0 ? 100 : req.page_size(),
                                      req.page_token()));
  // Keys with many versions and labels are large: a page ends early rather
  // than make a reply over the limit, and says where to go on.
  const size_t budget = deps_.max_reply_bytes / 2;
  size_t hidden = 0;
  auto finish = [&](std::string next) {
    resp->set_next_page_token(std::move(next));
    if (hidden > 0) call.set_detail(absl::StrCat(hidden, " key(s) under the prefix not shown: "
                                                 "the policy does not let the caller list them"));
    return absl::OkStatus();
  };
  for (size_t i = 0; i < page.keys.size(); ++i) {
    if (!call.Check(page.keys[i].name, {}).allowed) {
      ++hidden;
      continue;
    }
    ToProto(page.keys[i], resp->add_keys());
    if (resp->ByteSizeLong() > budget && i + 1 < page.keys.size()) {
      return finish(keystore::internal::NextPageToken(page.keys[i].name));
    }
  }
  return finish(page.next_page_token);
}

absl::Status KeyManagementService::RotateKey(Call& call, const v1::RotateKeyRequest& req,
                                             v1::Key* resp) {
  KW_RETURN_IF_ERROR(call.Authorize(req.name(), {}));
  KW_ASSIGN_OR_RETURN(keystore::Key key, core_->RotateKey(req.name()));
  call.set_version(key.primary_version);
  ToProto(key, resp);
  return absl::OkStatus();
}

absl::Status KeyManagementService::UpdateKey(Call& call, const v1::UpdateKeyRequest& req,
                                             v1::Key* resp) {
  KW_RETURN_IF_ERROR(call.Authorize(req.name(), {}));
  kms::UpdateKeyRequest r;
  if (req.set_rotation_period()) r.rotation_period = absl::Seconds(req.rotation_period_seconds());
  r.set_labels = {req.set_labels().begin(), req.set_labels().end()};
  r.remove_labels = {req.remove_labels().begin(), req.remove_labels().end()};
  KW_ASSIGN_OR_RETURN(keystore::Key key, core_->UpdateKey(req.name(), r));
  ToProto(key, resp);
  return absl::OkStatus();
}

absl::Status KeyManagementService::EnableVersion(Call& call, const v1::VersionRequest& req,
                                                 v1::Key* resp) {
  KW_RETURN_IF_ERROR(call.Authorize(req.name(), {}, req.version()));
  KW_ASSIGN_OR_RETURN(keystore::Key key, core_->EnableVersion(req.name(), req.version()));
  ToProto(key, resp);
  return absl::OkStatus();
}

absl::Status KeyManagementService::SetPrimaryVersion(Call& call, const v1::VersionRequest& req,
                                                     v1::Key* resp) {
  KW_RETURN_IF_ERROR(call.Authorize(req.name(), {}, req.version()));
  KW_ASSIGN_OR_RETURN(keystore::Key key, core_->SetPrimaryVersion(req.name(), req.version()));
  ToProto(key, resp);
  return absl::OkStatus();
}

absl::Status KeyManagementService::CancelVersionDestruction(Call& call,
                                                            const v1::VersionRequest& req,
                                                            v1::Key* resp) {
  KW_RETURN_IF_ERROR(call.Authorize(req.name(), {}, req.version()));
  KW_ASSIGN_OR_RETURN(keystore::Key key,
                      core_->CancelVersionDestruction(req.name(), req.version()));
  ToProto(key, resp);
  return absl::OkStatus();
}

namespace {
// What forcing went past, for the audit record.
std::string ForcedDetail(kms::KeyService* core, const std::string& name, uint32_t version) {
  const absl::Status gate = core->CheckRetirement(name, version);
  if (gate.ok()) return "force requested; the retirement gate had no objection";
  return absl::StrCat("FORCED past the retirement gate: ", gate.message());
}
}  // namespace

absl::Status KeyManagementService::DisableVersion(Call& call, const v1::VersionRequest& req,
                                                  v1::Key* resp) {
  KW_RETURN_IF_ERROR(call.Authorize(req.name(), {}, req.version()));
  if (req.force()) call.set_detail(ForcedDetail(core_, req.name(), req.version()));
  KW_ASSIGN_OR_RETURN(keystore::Key key,
                      core_->DisableVersion(req.name(), req.version(), req.force()));
  ToProto(key, resp);
  return absl::OkStatus();
}

absl::Status KeyManagementService::ScheduleVersionDestruction(
    Call& call, const v1::ScheduleVersionDestructionRequest& req, v1::Key* resp) {
  KW_RETURN_IF_ERROR(call.Authorize(req.name(), {}, req.version()));
  if (req.force()) call.set_detail(ForcedDetail(core_, req.name(), req.version()));
  // An explicit wait is checked against the minimum like any other: 0 is a
  // wait of zero seconds, not "the default".
  std::optional<absl::Duration> wait;
  if (req.has_wait_seconds()) wait = absl::Seconds(req.wait_seconds());
  KW_ASSIGN_OR_RETURN(keystore::Key key, core_->ScheduleVersionDestruction(
                                             req.name(), req.version(), wait, req.force()));
  ToProto(key, resp);
  return absl::OkStatus();
}

void KeyManagementService::RegisterCompromiseMetrics() {
  kms::KeyService* core = core_;
  metrics::Global().SetCollector(
      kCompromisedVersionsMetric,
      "Key versions declared compromised (`keyward key compromise`), per key; keys outside "
      "metrics.key_labels are summed under \"other\".",
      {"key"}, [core] {
        std::map<std::string, double> per_key;
        std::string token;
        do {
          auto page = core->ListKeys("", 500, token);
          if (!page.ok()) break;
          for (const keystore::Key& k : page->keys) {
            for (const keystore::KeyVersion& v : k.versions) {
              if (v.compromise) per_key[metrics::KeyLabel(k.name)] += 1;
            }
          }
          token = page->next_page_token;
        } while (!token.empty());
        std::vector<metrics::Sample> out;
        for (const auto& [key, n] : per_key) out.push_back({{key}, n});
        return out;
      });
}

absl::Status KeyManagementService::CompromiseVersion(Call& call,
                                                     const v1::CompromiseVersionRequest& req,
                                                     v1::CompromiseVersionResponse* resp) {
  KW_RETURN_IF_ERROR(call.Authorize(req.name(), {}, req.version()));
  if (req.reason().empty()) {
    return absl::InvalidArgumentError(
        "a compromise needs --reason (an incident id and one line; it is kept with the "
        "version and audited)");
  }
  // Permanent: the record of who declared it, and why, is durable first.
  KW_RETURN_IF_ERROR(call.RecordIntent(
      absl::StrCat("declare version ", req.version(), " compromised: ",
                   Bounded(req.reason(), 200))));
  KW_ASSIGN_OR_RETURN(kms::CompromiseResult r,
                      core_->CompromiseVersion(req.name(), req.version(), req.reason(),
                                               call.principal()));
  std::string detail = r.already
                           ? absl::StrCat("version ", req.version(),
                                          " was already declared compromised; unchanged")
                           : absl::StrCat("version ", req.version(), " declared compromised");
  if (r.new_primary != 0) absl::StrAppend(&detail, "; new primary version ", r.new_primary);
  absl::StrAppend(&detail, "; ", r.data_sets.size(), " data set(s) still on it");
  call.set_detail(detail);
  if (!r.already) {
    Log(LogLevel::kWarning, "key-compromised",
        "a key version was declared compromised: it no longer wraps data keys; "
        "re-encrypt what is still under it",
        {{"key", req.name()},
         {"version", absl::StrCat(req.version())},
         {"new_primary", absl::StrCat(r.new_primary)},
         {"data_sets_on_version", absl::StrCat(r.data_sets.size())}});
  }
  ToProto(r.key, resp->mutable_key());
  resp->set_new_primary_version(r.new_primary);
  resp->set_already_compromised(r.already);
  for (const keystore::DataSetReport& d : r.data_sets) {
    v1::DataSetReport* out = resp->add_data_sets();
    out->set_data_set(d.data_set);
    out->set_key_name(d.key_name);
    for (const auto& [version, rows] : d.rows_per_version) {
      (*out->mutable_rows_per_version())[version] = rows;
    }
    out->set_rows_total(d.rows_total);
    out->set_reported_unix_micros(absl::ToUnixMicros(d.reported));
    out->set_reported_by(d.reported_by);
  }
  return absl::OkStatus();
}

}  // namespace keyward::server
