// keyward_field_keys in the application's database (fields/key_vault.h).
#include "fields/key_vault.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"

namespace keyward::fields {
namespace {

constexpr char kColumns[] = "ref, dataset, class, tenant, generation, wrapped, kek_version, created_at";

int64_t AsInt(const appdb::Value& v) {
  if (const int64_t* i = std::get_if<int64_t>(&v)) return *i;
  return 0;
}

std::string AsText(const appdb::Value& v) {
  if (const std::string* s = std::get_if<std::string>(&v)) return *s;
  if (const appdb::Blob* b = std::get_if<appdb::Blob>(&v)) return b->bytes;
  return "";
}

}  // namespace

EncryptionContext FieldKeyContext(const KeySlot& slot, uint32_t ref) {
  EncryptionContext c{{kContextDataset, slot.dataset},
                      {kContextClass, slot.class_name},
                      {kContextKeyRef, absl::StrCat(ref)}};
  if (!slot.tenant.empty()) c[kContextTenant] = slot.tenant;
  return c;
}

absl::StatusOr<std::unique_ptr<KeyVault>> KeyVault::Open(std::unique_ptr<appdb::Database> db) {
  const std::string sql = absl::StrCat(
      "CREATE TABLE IF NOT EXISTS ", kKeyTable,
      " (ref BIGINT PRIMARY KEY, dataset TEXT NOT NULL, class TEXT NOT NULL, "
      "tenant TEXT NOT NULL, generation BIGINT NOT NULL, wrapped ", db->BlobType(),
      " NOT NULL, kek_version BIGINT NOT NULL, created_at TEXT NOT NULL, "
      "UNIQUE (dataset, class, tenant, generation))");
  KW_RETURN_IF_ERROR(db->Execute(sql).status());
  return std::unique_ptr<KeyVault>(new KeyVault(std::move(db)));
}

absl::StatusOr<std::vector<VaultKey>> KeyVault::Select(const std::string& where,
                                                       const std::vector<appdb::Value>& params) {
  KW_ASSIGN_OR_RETURN(auto rows, db_->Query(absl::StrCat("SELECT ", kColumns, " FROM ", kKeyTable,
                                                         " ", where),
                                            params));
  std::vector<VaultKey> out;
  out.reserve(rows.size());
  for (const auto& r : rows) {
    if (r.size() != 8) return absl::InternalError("unexpected key table row");
    VaultKey k;
    k.ref = static_cast<uint32_t>(AsInt(r[0]));
    k.slot = KeySlot{AsText(r[1]), AsText(r[2]), AsText(r[3])};
    k.generation = AsInt(r[4]);
    k.wrapped = AsText(r[5]);
    k.kek_version = static_cast<uint32_t>(AsInt(r[6]));
    k.created_at = AsText(r[7]);
    out.push_back(std::move(k));
  }
  return out;
}

absl::StatusOr<std::optional<VaultKey>> KeyVault::Current(const KeySlot& slot) {
  std::lock_guard<std::mutex> lock(mu_);
  KW_ASSIGN_OR_RETURN(auto keys,
                      Select("WHERE dataset = $1 AND class = $2 AND tenant = $3 "
                             "ORDER BY generation DESC LIMIT 1",
                             {slot.dataset, slot.class_name, slot.tenant}));
  if (keys.empty()) return std::optional<VaultKey>();
  return std::optional<VaultKey>(std::move(keys[0]));
}

absl::StatusOr<std::vector<VaultKey>> KeyVault::Generations(const KeySlot& slot) {
  std::lock_guard<std::mutex> lock(mu_);
  return Select("WHERE dataset = $1 AND class = $2 AND tenant = $3 ORDER BY generation DESC",
                {slot.dataset, slot.class_name, slot.tenant});
}

absl::StatusOr<std::optional<VaultKey>> KeyVault::Get(uint32_t ref) {
  std::lock_guard<std::mutex> lock(mu_);
  KW_ASSIGN_OR_RETURN(auto keys, Select("WHERE ref = $1", {static_cast<int64_t>(ref)}));
  if (keys.empty()) return std::optional<VaultKey>();
  return std::optional<VaultKey>(std::move(keys[0]));
}

absl::Status KeyVault::Insert(const VaultKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string created = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
  KW_ASSIGN_OR_RETURN(
      uint64_t n,
      db_->Execute(absl::StrCat("INSERT INTO ", kKeyTable, " (", kColumns,
                                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"),
                   {static_cast<int64_t>(key.ref), key.slot.dataset, key.slot.class_name,
                    key.slot.tenant, key.generation, appdb::Blob{key.wrapped},
                    static_cast<int64_t>(key.kek_version), created}));
  if (n == 1) return absl::OkStatus();
  KW_ASSIGN_OR_RETURN(auto same_ref, Select("WHERE ref = $1", {static_cast<int64_t>(key.ref)}));
  return absl::AlreadyExistsError(same_ref.empty() ? "generation" : "ref");
}

absl::StatusOr<std::vector<VaultKey>> KeyVault::List(const std::string& dataset,
                                                     const std::optional<std::string>& tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  if (tenant.has_value()) {
    return Select("WHERE dataset = $1 AND tenant = $2 ORDER BY ref", {dataset, *tenant});
  }
  return Select("WHERE dataset = $1 ORDER BY ref", {dataset});
}

absl::Status KeyVault::Rewrap(uint32_t ref, const std::string& wrapped, uint32_t kek_version) {
  std::lock_guard<std::mutex> lock(mu_);
  KW_ASSIGN_OR_RETURN(uint64_t n,
                      db_->Execute(absl::StrCat("UPDATE ", kKeyTable,
                                                " SET wrapped = $1, kek_version = $2 WHERE ref = $3"),
                                   {appdb::Blob{wrapped}, static_cast<int64_t>(kek_version),
                                    static_cast<int64_t>(ref)}));
  if (n != 1) return absl::NotFoundError(absl::StrCat("field key ", ref, " is gone"));
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> KeyVault::DeleteTenant(const std::string& dataset,
                                                const std::string& tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  return db_->Execute(absl::StrCat("DELETE FROM ", kKeyTable, " WHERE dataset = $1 AND tenant = $2"),
                      {dataset, tenant});
}

}  // namespace keyward::fields
