#include "keystore/store_common.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/status_macros.h"
#include "keyward/errors.h"
#include "nlohmann/json.hpp"

namespace keyward::keystore::internal {

absl::Status CheckNewKey(const Key& key, absl::string_view store_environment) {
  KW_RETURN_IF_ERROR(ValidateKey(key));
  if (key.environment != store_environment) {
    return MakeError(absl::StatusCode::kFailedPrecondition,
                     ErrorCode::kEnvironmentMismatch,
                     absl::StrCat("key ", key.name, " is for environment '",
                                  key.environment, "' but this store belongs to '",
                                  store_environment, "'"));
  }
  return absl::OkStatus();
}

absl::Status CheckStoreEnvironment(absl::string_view where, absl::string_view stored,
                                   absl::string_view configured) {
  if (stored == configured) return absl::OkStatus();
  return MakeError(absl::StatusCode::kFailedPrecondition, ErrorCode::kEnvironmentMismatch,
                   absl::StrCat("the key store ", where, " belongs to environment '", stored,
                                "' but keywardd is configured for '", configured,
                                "'; each environment has its own store"));
}

absl::Status CheckPageSize(int page_size) {
  if (page_size < 1 || page_size > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("page size must be 1 to 1000, got ", page_size));
  }
  return absl::OkStatus();
}

absl::Status KeyNotFound(absl::string_view name) {
  return absl::NotFoundError(absl::StrCat(
      "no key named '", name, "' (list keys with `keyward key list`)"));
}

absl::Status RevisionConflict(absl::string_view name) {
  return absl::AbortedError(absl::StrCat(
      "key ", name, " was changed concurrently; re-read it and retry"));
}

absl::Status CheckNewTenantKey(const TenantKeyRecord& record) {
  if (record.key_name.empty() || record.tenant.empty() || record.sealed.empty() ||
      !record.created.has_value() || record.is_erased() || !record.erased_by.empty()) {
    return absl::InvalidArgumentError(
        "a new tenant key needs a key name, a tenant, sealed material and a creation time, "
        "and no erasure");
  }
  return absl::OkStatus();
}

absl::Status TenantKeyExists(absl::string_view key_name) {
  return absl::AlreadyExistsError(absl::StrCat(
      "the tenant already has a key or an erasure under key ", key_name));
}

void ForgetSealed(TenantKeyRecord& record) {
  std::fill(record.sealed.begin(), record.sealed.end(), '\0');
  record.sealed.clear();
}

std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(end.back() + 1);
      return end;
    }
    end.pop_back();
  }
  return end;
}

bool SameStoredFields(const KeyVersion& a, const KeyVersion& b) {
  return a.state == b.state && a.protection == b.protection &&
         a.sealed_kek == b.sealed_kek && a.hsm_key_id == b.hsm_key_id &&
         a.created == b.created && a.destroy_after == b.destroy_after &&
         a.destroyed == b.destroyed && a.drill_sample == b.drill_sample &&
         a.state_before_destruction == b.state_before_destruction &&
         a.compromise == b.compromise;
}

std::string LabelsToJson(const std::map<std::string, std::string>& labels) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : labels) j[k] = v;
  return j.dump();
}

std::map<std::string, std::string> LabelsFromJson(const std::string& text) {
  std::map<std::string, std::string> labels;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.value().is_string()) labels[it.key()] = it.value();
    }
  }
  return labels;
}

std::string GrantOperationsToJson(const policy::Grant& grant) {
  nlohmann::json ops = grant.operations;
  return ops.dump();
}

std::string GrantContextToJson(const policy::Grant& grant) {
  nlohmann::json ctx = nlohmann::json::object();
  for (const auto& [k, v] : grant.context) ctx[k] = v;
  return ctx.dump();
}

void GrantListsFromJson(const std::string& operations, const std::string& context,
                        policy::Grant& grant) {
  auto ops = nlohmann::json::parse(operations, nullptr, false);
  if (ops.is_array()) {
    for (const auto& o : ops) {
      if (o.is_string()) grant.operations.push_back(o.get<std::string>());
    }
  }
  auto ctx = nlohmann::json::parse(context, nullptr, false);
  if (ctx.is_object()) {
    for (auto it = ctx.begin(); it != ctx.end(); ++it) {
      if (it.value().is_string()) grant.context[it.key()] = it.value();
    }
  }
}

std::string BreakGlassToJson(const policy::BreakGlassGrant& g) {
  nlohmann::json ctx = nlohmann::json::object();
  for (const auto& [k, v] : g.context) ctx[k] = v;
  nlohmann::json approvals = nlohmann::json::array();
  for (const auto& a : g.approvals) {
    approvals.push_back({{"principal", a.principal}, {"time_us", absl::ToUnixMicros(a.time)}});
  }
  nlohmann::json j = {
      {"id", g.id},
      {"requester", g.requester},
      {"key", g.key},
      {"context", ctx},
      {"reason", g.reason},
      {"rule", g.rule},
      {"quorum", g.quorum},
      {"duration_us", absl::ToInt64Microseconds(g.duration)},
      {"max_decrypts", g.max_decrypts},
      {"decrypts", g.decrypts},
      {"requested_us", absl::ToUnixMicros(g.requested)},
      {"request_expires_us", absl::ToUnixMicros(g.request_expires)},
      {"approvals", approvals},
      {"activated_us", g.activated ? nlohmann::json(absl::ToUnixMicros(*g.activated))
                                   : nlohmann::json(nullptr)},
      {"revoked_us", g.revoked ? nlohmann::json(absl::ToUnixMicros(*g.revoked))
                               : nlohmann::json(nullptr)},
      {"revoked_by", g.revoked_by},
      {"closed", g.closed}};
  return j.dump();
}

absl::StatusOr<policy::BreakGlassGrant> BreakGlassFromJson(absl::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return absl::DataLossError("a stored break-glass grant is not JSON");
  try {
    policy::BreakGlassGrant g;
    g.id = j.at("id").get<std::string>();
    g.requester = j.at("requester").get<std::string>();
    g.key = j.at("key").get<std::string>();
    for (auto it = j.at("context").begin(); it != j.at("context").end(); ++it) {
      g.context[it.key()] = it.value().get<std::string>();
    }
    g.reason = j.at("reason").get<std::string>();
    g.rule = j.at("rule").get<std::string>();
    g.quorum = j.at("quorum").get<int>();
    g.duration = absl::Microseconds(j.at("duration_us").get<int64_t>());
    g.max_decrypts = j.at("max_decrypts").get<uint64_t>();
    g.decrypts = j.at("decrypts").get<uint64_t>();
    g.requested = absl::FromUnixMicros(j.at("requested_us").get<int64_t>());
    g.request_expires = absl::FromUnixMicros(j.at("request_expires_us").get<int64_t>());
    for (const auto& a : j.at("approvals")) {
      g.approvals.push_back({a.at("principal").get<std::string>(),
                             absl::FromUnixMicros(a.at("time_us").get<int64_t>())});
    }
    if (!j.at("activated_us").is_null()) {
      g.activated = absl::FromUnixMicros(j.at("activated_us").get<int64_t>());
    }
    if (!j.at("revoked_us").is_null()) {
      g.revoked = absl::FromUnixMicros(j.at("revoked_us").get<int64_t>());
    }
    g.revoked_by = j.at("revoked_by").get<std::string>();
    g.closed = j.at("closed").get<bool>();
    return g;
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat("a stored break-glass grant is damaged: ", e.what()));
  }
}

std::string RowsPerVersionToJson(const std::map<uint32_t, uint64_t>& rows) {
  nlohmann::json counts = nlohmann::json::object();
  for (const auto& [version, n] : rows) counts[std::to_string(version)] = n;
  return counts.dump();
}

std::map<uint32_t, uint64_t> RowsPerVersionFromJson(const std::string& text) {
  std::map<uint32_t, uint64_t> rows;
  auto counts = nlohmann::json::parse(text, nullptr, false);
  if (counts.is_object()) {
    for (const auto& [version, n] : counts.items()) {
      uint32_t v = 0;
      if (!absl::SimpleAtoi(version, &v)) continue;
      rows[v] = n.is_number_unsigned() ? n.get<uint64_t>() : 0;
    }
  }
  return rows;
}

}  // namespace keyward::keystore::internal

namespace keyward::keystore {

absl::StatusOr<Lease> KeyStore::AcquireLease(absl::string_view name, absl::string_view holder,
                                              absl::Duration ttl) {
  if (name.empty() || holder.empty() || ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("a lease needs a name, a holder and a positive duration");
  }
  const absl::Time now = absl::Now();
  std::lock_guard<std::mutex> lock(leases_mu_);
  auto it = leases_.find(name);
  if (it == leases_.end()) {
    it = leases_.emplace(std::string(name), Lease{std::string(name), "", 0, now}).first;
  }
  Lease& lease = it->second;
  if (lease.holder != holder) {
    if (!lease.holder.empty() && lease.expires > now) {
      return absl::FailedPreconditionError(
          absl::StrCat("lease ", name, " is held by ", lease.holder, " until ",
                       absl::FormatTime(absl::RFC3339_sec, lease.expires, absl::UTCTimeZone())));
    }
    lease.holder = std::string(holder);
    ++lease.fencing_token;
  }
  lease.expires = now + ttl;
  return lease;
}

absl::Status KeyStore::ReleaseLease(absl::string_view name, absl::string_view holder) {
  std::lock_guard<std::mutex> lock(leases_mu_);
  auto it = leases_.find(name);
  if (it != leases_.end() && it->second.holder == holder) {
    it->second.holder.clear();
    it->second.expires = absl::Now();
  }
  return absl::OkStatus();
}

}  // namespace keyward::keystore
