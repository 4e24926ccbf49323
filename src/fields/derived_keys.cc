// Derived field keys (fields/derived_keys.h).
#include "fields/derived_keys.h"

#include <openssl/crypto.h>

#include "absl/base/internal/endian.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "crypto/hkdf.h"

namespace keyward::fields {
namespace {

void AppendPart(std::string& out, absl::string_view part) {
  char len[4];
  absl::big_endian::Store32(len, static_cast<uint32_t>(part.size()));
  out.append(len, 4);
  out.append(part.data(), part.size());
}

template <typename Map>
void DropExpired(Map& map, absl::Time now) {
  for (auto it = map.begin(); it != map.end();) {
    if (it->second.expires <= now) {
      map.erase(it++);
    } else {
      ++it;
    }
  }
}

}  // namespace

absl::StatusOr<SecretData> BlindIndexKey(const std::vector<const SecretData*>& class_keys,
                                         absl::string_view dataset, absl::string_view table,
                                         absl::string_view index, int64_t version) {
  if (class_keys.empty()) return absl::InternalError("a blind index key needs a data key");
  std::string ikm;
  size_t total = 0;
  for (const SecretData* k : class_keys) total += k->size();
  ikm.reserve(total);  // no reallocation: no unwiped copy left behind
  for (const SecretData* k : class_keys) {
    const absl::string_view bytes = k->AsStringView();
    ikm.append(bytes.data(), bytes.size());
  }
  std::string info = "keyward blind index v1";
  AppendPart(info, dataset);
  AppendPart(info, table);
  AppendPart(info, index);
  AppendPart(info, absl::StrCat(version));
  absl::StatusOr<SecretData> key =
      crypto::Hkdf(crypto::HashFunction::kSha256, ikm, "", info, kIndexKeySize);
  OPENSSL_cleanse(ikm.data(), ikm.size());
  return key;
}

template <typename T>
std::shared_ptr<const T> DerivedKeys::Find(absl::flat_hash_map<std::string, Cached<T>>& map,
                                           const std::string& key) {
  const absl::Time now = absl::Now();
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = map.find(key);
    if (it != map.end() && it->second.expires > now && now < next_sweep_) {
      return it->second.value;
    }
  }
  // Expired keys are dropped (and so wiped once unused) at most a second
  // after their age, however rarely they are asked for again.
  absl::MutexLock lock(&mu_);
  if (now >= next_sweep_) {
    next_sweep_ = now + absl::Seconds(1);
    DropExpired(deterministic_, now);
    DropExpired(indexes_, now);
  }
  auto it = map.find(key);
  if (it == map.end() || it->second.expires <= now) return nullptr;
  return it->second.value;
}

template <typename T>
void DerivedKeys::Put(absl::flat_hash_map<std::string, Cached<T>>& map, const std::string& key,
                      std::shared_ptr<const T> value) {
  absl::MutexLock lock(&mu_);
  if (map.size() >= max_entries_) map.clear();  // bounded; refilled on demand
  map[key] = Cached<T>{std::move(value), absl::Now() + max_age_};
}

absl::StatusOr<std::shared_ptr<const crypto::DeterministicAead>> DerivedKeys::Deterministic(
    const FieldKeys::Key& key, const format::FieldWhere& where) {
  thread_local std::string id;
  id.clear();
  char ref[4];
  absl::big_endian::Store32(ref, key.ref);
  id.append(ref, 4);
  for (absl::string_view part : {where.dataset, where.table, where.column, where.tenant}) {
    AppendPart(id, part);
  }
  if (auto hit = Find(deterministic_, id)) return hit;
  if (key.secret == nullptr) return absl::InternalError("field key without its secret");
  KW_ASSIGN_OR_RETURN(SecretData siv_key, format::DeterministicFieldKey(*key.secret, where));
  KW_ASSIGN_OR_RETURN(std::unique_ptr<crypto::DeterministicAead> daead,
                      crypto::DeterministicAead::New(siv_key));
  std::shared_ptr<const crypto::DeterministicAead> shared = std::move(daead);
  Put(deterministic_, id, shared);
  return shared;
}

absl::StatusOr<std::shared_ptr<const IndexHasher>> DerivedKeys::Index(
    const std::map<std::string, FieldKeys::Key>& class_keys, absl::string_view dataset,
    absl::string_view table, absl::string_view index, int64_t version, int bits) {
  thread_local std::string id;
  id.clear();
  for (const auto& [name, key] : class_keys) {
    char ref[4];
    absl::big_endian::Store32(ref, key.ref);
    id.append(ref, 4);
  }
  AppendPart(id, dataset);
  AppendPart(id, table);
  AppendPart(id, index);
  absl::StrAppend(&id, version, "/", bits);
  if (auto hit = Find(indexes_, id)) return hit;
  std::vector<const SecretData*> secrets;
  for (const auto& [name, key] : class_keys) {
    if (key.secret == nullptr) return absl::InternalError("field key without its secret");
    secrets.push_back(key.secret.get());
  }
  KW_ASSIGN_OR_RETURN(SecretData mac_key, BlindIndexKey(secrets, dataset, table, index, version));
  KW_ASSIGN_OR_RETURN(std::unique_ptr<IndexHasher> hasher, IndexHasher::New(mac_key, bits));
  std::shared_ptr<const IndexHasher> shared = std::move(hasher);
  Put(indexes_, id, shared);
  return shared;
}

void DerivedKeys::Clear() {
  absl::MutexLock lock(&mu_);
  deterministic_.clear();
  indexes_.clear();
}

}  // namespace keyward::fields
