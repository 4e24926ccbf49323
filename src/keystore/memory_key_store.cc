#include "keystore/memory_key_store.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keystore/store_common.h"

namespace keyward::keystore {

MemoryKeyStore::MemoryKeyStore(std::string environment)
    : environment_(std::move(environment)), created_(absl::Now()) {}

absl::StatusOr<StoreInfo> MemoryKeyStore::GetInfo() {
  return StoreInfo{environment_, "memory", 0, created_};
}

absl::Status MemoryKeyStore::CreateKey(const Key& key) {
  KW_RETURN_IF_ERROR(internal::CheckNewKey(key, environment_));
  std::lock_guard<std::mutex> lock(mu_);
  Key stored = key;
  stored.revision = 1;
  if (!keys_.emplace(key.name, std::move(stored)).second) {
    return absl::AlreadyExistsError(
        absl::StrCat("a key named '", key.name, "' already exists"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Key> MemoryKeyStore::GetKey(absl::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = keys_.find(name);
  if (it == keys_.end()) return internal::KeyNotFound(name);
  return it->second;
}

absl::StatusOr<KeyPage> MemoryKeyStore::ListKeys(absl::string_view prefix,
                                                 int page_size,
                                                 absl::string_view token) {
  KW_RETURN_IF_ERROR(internal::CheckPageSize(page_size));
  std::lock_guard<std::mutex> lock(mu_);
  KeyPage page;
  auto it = token.empty() ? keys_.lower_bound(prefix) : keys_.upper_bound(token);
  for (; it != keys_.end() && absl::StartsWith(it->first, prefix); ++it) {
    if (static_cast<int>(page.keys.size()) == page_size) {
      page.next_page_token = internal::NextPageToken(page.keys.back().name);
      break;
    }
    page.keys.push_back(it->second);
  }
  return page;
}

absl::Status MemoryKeyStore::UpdateKey(const Key& key) {
  KW_RETURN_IF_ERROR(ValidateKey(key));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = keys_.find(key.name);
  if (it == keys_.end()) return internal::KeyNotFound(key.name);
  if (it->second.revision != key.revision) {
    return internal::RevisionConflict(key.name);
  }
  if (key.versions.size() < it->second.versions.size()) {
    return absl::InvalidArgumentError("versions are never removed");
  }
  // Usage counters are owned by AddUsage; keep the stored ones.
  Key stored = key;
  for (KeyVersion& v : stored.versions) {
    if (const KeyVersion* old = it->second.FindVersion(v.version)) {
      v.usage = old->usage;
    }
  }
  stored.revision = key.revision + 1;
  it->second = std::move(stored);
  return absl::OkStatus();
}

absl::Status MemoryKeyStore::AddUsage(const std::vector<UsageDelta>& deltas) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const UsageDelta& d : deltas) {
    auto it = keys_.find(d.key_name);
    if (it == keys_.end()) continue;
    KeyVersion* v = it->second.FindVersion(d.version);
    if (v == nullptr) continue;
    v->usage.data_keys_issued += d.data_keys_issued;
    v->usage.decrypts += d.decrypts;
    if (!v->usage.last_used || *v->usage.last_used < d.last_used) {
      v->usage.last_used = d.last_used;
    }
    if (d.last_decrypt != absl::InfinitePast() &&
        (!v->usage.last_decrypt || *v->usage.last_decrypt < d.last_decrypt)) {
      v->usage.last_decrypt = d.last_decrypt;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> MemoryKeyStore::AddDataKeysIssued(absl::string_view key_name,
                                                           uint32_t version, int64_t delta,
                                                           uint64_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = keys_.find(key_name);
  KeyVersion* v = it == keys_.end() ? nullptr : it->second.FindVersion(version);
  if (v == nullptr) {
    return absl::NotFoundError(absl::StrCat("key ", key_name, " has no version ", version));
  }
  uint64_t& count = v->usage.data_keys_issued;
  if (delta > 0 && count + static_cast<uint64_t>(delta) > limit) {
    return absl::ResourceExhaustedError("over the version's data key limit");
  }
  count = delta >= 0 ? count + static_cast<uint64_t>(delta)
                     : count - std::min(count, static_cast<uint64_t>(-delta));
  return count;
}

absl::Status MemoryKeyStore::Scrub() { return absl::OkStatus(); }

absl::Status MemoryKeyStore::SetSealedSecret(absl::string_view name, absl::string_view sealed) {
  std::lock_guard<std::mutex> lock(mu_);
  secrets_[std::string(name)] = std::string(sealed);
  return absl::OkStatus();
}

absl::Status MemoryKeyStore::PutDataSetReport(const DataSetReport& report) {
  std::lock_guard<std::mutex> lock(mu_);
  reports_[{report.key_name, report.data_set}] = report;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<DataSetReport>> MemoryKeyStore::ListDataSetReports(
    absl::string_view key_name) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<DataSetReport> out;
  for (const auto& [id, r] : reports_) {
    if (id.first == key_name) out.push_back(r);
  }
  return out;
}

absl::StatusOr<std::vector<VersionRef>> MemoryKeyStore::ListDueDestructions(
    absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<VersionRef> due;
  for (const auto& [name, key] : keys_) {
    for (const KeyVersion& v : key.versions) {
      if ((v.state == VersionState::kPendingDestruction && v.destroy_after &&
           *v.destroy_after <= now) ||
          (v.state == VersionState::kDestroyed && !v.hsm_key_id.empty())) {
        due.push_back({name, v.version});
      }
    }
  }
  return due;
}

absl::StatusOr<int64_t> MemoryKeyStore::CountKeys() {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(keys_.size());
}

absl::Status MemoryKeyStore::CreateGrant(const policy::Grant& grant) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!grants_.emplace(grant.id, grant).second) {
    return absl::AlreadyExistsError(absl::StrCat("grant ", grant.id, " exists"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<policy::Grant>> MemoryKeyStore::ListGrants(
    absl::Time now, bool include_inactive) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<policy::Grant> out;
  for (const auto& [id, g] : grants_) {
    if (include_inactive || (!g.revoked && now < g.expires)) out.push_back(g);
  }
  return out;
}

absl::Status MemoryKeyStore::RevokeGrant(absl::string_view id, absl::Time when) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = grants_.find(id);
  if (it == grants_.end()) return absl::NotFoundError(absl::StrCat("no grant ", id));
  if (it->second.revoked) {
    return absl::FailedPreconditionError(absl::StrCat("grant ", id, " is already revoked"));
  }
  it->second.revoked = when;
  return absl::OkStatus();
}

absl::Status MemoryKeyStore::CreateBreakGlass(const policy::BreakGlassGrant& grant) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!breakglass_.emplace(grant.id, grant).second) {
    return absl::AlreadyExistsError(absl::StrCat("break-glass grant ", grant.id, " exists"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<policy::BreakGlassGrant>> MemoryKeyStore::ListBreakGlass(
    bool include_closed) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<policy::BreakGlassGrant> out;
  for (const auto& [id, g] : breakglass_) {
    if (include_closed || !g.closed) out.push_back(g);
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.requested < b.requested;
  });
  return out;
}

absl::StatusOr<policy::BreakGlassGrant> MemoryKeyStore::UpdateBreakGlass(
    absl::string_view id, const std::function<absl::Status(policy::BreakGlassGrant&)>& update) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = breakglass_.find(id);
  if (it == breakglass_.end()) {
    return absl::NotFoundError(absl::StrCat("no break-glass grant '", id, "'"));
  }
  policy::BreakGlassGrant g = it->second;
  KW_RETURN_IF_ERROR(update(g));
  it->second = g;
  return g;
}

absl::StatusOr<std::optional<TenantKeyRecord>> MemoryKeyStore::GetTenantKey(
    absl::string_view key_name, absl::string_view tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tenant_keys_.find({std::string(key_name), std::string(tenant)});
  if (it == tenant_keys_.end()) return std::optional<TenantKeyRecord>();
  return std::optional<TenantKeyRecord>(it->second);
}

absl::Status MemoryKeyStore::PutTenantKey(const TenantKeyRecord& record) {
  KW_RETURN_IF_ERROR(internal::CheckNewTenantKey(record));
  std::lock_guard<std::mutex> lock(mu_);
  if (!tenant_keys_.emplace(std::pair{record.key_name, record.tenant}, record).second) {
    return internal::TenantKeyExists(record.key_name);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<TenantKeyRecord>> MemoryKeyStore::EraseTenantKey(
    absl::string_view key_name, absl::string_view tenant, absl::Time when,
    absl::string_view by) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] =
      tenant_keys_.try_emplace({std::string(key_name), std::string(tenant)});
  std::optional<TenantKeyRecord> before;
  if (!inserted) {
    before = it->second;
    internal::ForgetSealed(*before);
  }
  TenantKeyRecord& r = it->second;
  if (r.is_erased()) return before;
  r.key_name = std::string(key_name);
  r.tenant = std::string(tenant);
  // Overwritten, not only dropped: the old bytes do not stay in freed memory.
  internal::ForgetSealed(r);
  r.erased = when;
  r.erased_by = std::string(by);
  return before;
}

absl::StatusOr<std::optional<std::string>> MemoryKeyStore::GetSealedSecret(
    absl::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = secrets_.find(name);
  if (it == secrets_.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second);
}

absl::Status MemoryKeyStore::PutSealedSecret(absl::string_view name,
                                             absl::string_view sealed) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!secrets_.emplace(std::string(name), std::string(sealed)).second) {
    return absl::AlreadyExistsError(absl::StrCat("secret ", name, " exists"));
  }
  return absl::OkStatus();
}

}  // namespace keyward::keystore
