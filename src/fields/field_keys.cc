// Field data keys (fields/field_keys.h).
#include "fields/field_keys.h"

#include <time.h>

#include "absl/base/internal/endian.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "crypto/random.h"
#include "format/kms_entries.h"
#include "keyward/errors.h"

namespace keyward::fields {
namespace {

absl::StatusOr<uint32_t> RandomRef() {
  for (;;) {
    KW_ASSIGN_OR_RETURN(std::string b, crypto::RandomBytes(4));
    const uint32_t ref = absl::big_endian::Load32(b.data());
    if (ref != 0) return ref;
  }
}

// A few nanoseconds (vDSO), millisecond resolution: enough for expiry.
int64_t CoarseNowNs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void AppendSlot(std::string& out, const SlotView& slot) {
  out.append(slot.dataset.data(), slot.dataset.size());
  out.push_back('\0');
  out.append(slot.class_name.data(), slot.class_name.size());
  out.push_back('\0');
  out.append(slot.tenant.data(), slot.tenant.size());
}

// One scratch buffer per thread for hot-path cache keys.
std::string& Scratch() {
  thread_local std::string s;
  s.clear();
  return s;
}

// A thread's last keys per direction.  They hold the AEAD weakly: the
// caches own the keys, so a key they drop (age, at the next sweep; Clear;
// the FieldKeys destroyed) is wiped even if some thread's memo still names
// it.
struct Memo {
  uint64_t owner = 0, epoch = 0;
  std::string dataset, class_name, tenant;
  uint32_t ref = 0;
  uint32_t kek_version = 0;
  int64_t generation = 0;
  int64_t expires_ns = 0;
  std::weak_ptr<const crypto::internal::NonceAead> aead;
  std::weak_ptr<const SecretData> secret;
};
// A few per direction: rows of a table interleave a handful of tenants.
constexpr int kMemoWays = 8;
struct Memos {
  Memo way[kMemoWays];
  int next = 0;
};
thread_local Memos memos[2];
std::atomic<uint64_t> next_id{1};

absl::StatusOr<std::unique_ptr<crypto::internal::NonceAead>> AeadFor(const SecretData& dk) {
  return crypto::internal::NewAesGcmForSmallRecords(dk);
}

}  // namespace

absl::Status CheckWrappedBelongs(absl::string_view wrapped, const std::string& key_name,
                                 const KeySlot& slot, uint32_t ref) {
  absl::StatusOr<std::string> name = format::KmsBlobKeyName(wrapped);
  const bool tenant_sealed = !wrapped.empty() && static_cast<uint8_t>(wrapped[0]) == 2;
  if (!name.ok() || *name != key_name || tenant_sealed != !slot.tenant.empty()) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kAuthenticationFailed,
                     absl::StrCat("field key ", ref, " in ", kKeyTable,
                                  " is not a data key of key ", key_name,
                                  slot.tenant.empty() ? "" : " sealed for its tenant",
                                  ": the key table was modified; refused without unwrapping"));
  }
  return absl::OkStatus();
}

std::string SlotKey(const SlotView& slot) {
  std::string k;
  AppendSlot(k, slot);
  return k;
}

FieldKeys::FieldKeys(std::string key_name, std::shared_ptr<DataClient> client,
                     std::unique_ptr<KeyVault> vault, CacheLimits limits)
    : key_name_(std::move(key_name)),
      client_(std::move(client)),
      vault_(std::move(vault)),
      limits_(limits),
      current_(limits),
      by_ref_(limits),
      id_(next_id.fetch_add(1)) {}

bool FieldKeys::FromMemo(bool encrypt, const SlotView& slot, uint32_t ref, Key* out) const {
  Memos& ms = memos[encrypt ? 0 : 1];
  const uint64_t epoch = epoch_.load(std::memory_order_acquire);
  for (Memo& m : ms.way) {
    if (m.owner != id_ || m.epoch != epoch || (!encrypt && m.ref != ref) ||
        m.tenant != slot.tenant || m.class_name != slot.class_name || m.dataset != slot.dataset) {
      continue;
    }
    if (m.expires_ns <= CoarseNowNs()) continue;
    std::shared_ptr<const crypto::internal::NonceAead> aead = m.aead.lock();
    std::shared_ptr<const SecretData> secret = m.secret.lock();
    if (aead == nullptr || secret == nullptr) continue;
    *out = Key{m.ref, m.kek_version, m.generation, std::move(aead), std::move(secret)};
    return true;
  }
  return false;
}

void FieldKeys::ToMemo(bool encrypt, const SlotView& slot, const Key& key,
                       int64_t expires_ns) const {
  Memos& ms = memos[encrypt ? 0 : 1];
  Memo& m = ms.way[ms.next];
  ms.next = (ms.next + 1) % kMemoWays;
  m.owner = id_;
  m.epoch = epoch_.load(std::memory_order_acquire);
  m.dataset.assign(slot.dataset.data(), slot.dataset.size());
  m.class_name.assign(slot.class_name.data(), slot.class_name.size());
  m.tenant.assign(slot.tenant.data(), slot.tenant.size());
  m.ref = key.ref;
  m.kek_version = key.kek_version;
  m.generation = key.generation;
  m.expires_ns = expires_ns;  // never past the cached entry's own age
  m.aead = key.aead;
  m.secret = key.secret;
}

bool FieldKeys::FindHot(HotMap& map, const std::string& key, Key* out, int64_t* expires_ns) {
  SweepIfDue();
  absl::ReaderMutexLock lock(&hot_mu_);
  auto it = map.find(key);
  if (it == map.end() || it->second.expires_ns <= CoarseNowNs()) return false;
  *out = it->second.key;
  *expires_ns = it->second.expires_ns;
  return true;
}

int64_t FieldKeys::PutHot(HotMap& map, const std::string& key, const Entry& entry,
                          uint64_t epoch) {
  const absl::Duration left = entry.created + limits_.max_age - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  const int64_t expires = CoarseNowNs() + absl::ToInt64Nanoseconds(left);
  absl::MutexLock lock(&hot_mu_);
  // A Clear (rotation, erasure) since this lookup began: do not put back
  // what it removed.
  if (epoch_.load(std::memory_order_acquire) != epoch) return 0;
  SweepLocked();
  if (map.size() >= limits_.max_entries) map.clear();  // bounded; refilled on demand
  map[key] = Hot{entry.key, expires};
  return expires;
}

void FieldKeys::SweepLocked() {
  const int64_t now = CoarseNowNs();
  for (HotMap* map : {&hot_current_, &hot_by_ref_}) {
    for (auto it = map->begin(); it != map->end();) {
      if (it->second.expires_ns <= now) {
        map->erase(it++);
      } else {
        ++it;
      }
    }
  }
}

void FieldKeys::SweepIfDue() {
  const int64_t now = CoarseNowNs();
  int64_t due = next_sweep_ns_.load(std::memory_order_relaxed);
  if (now < due || !next_sweep_ns_.compare_exchange_strong(due, now + 1'000'000'000)) return;
  {
    absl::MutexLock lock(&hot_mu_);
    SweepLocked();
  }
  current_.DropExpired();
  by_ref_.DropExpired();
}

absl::StatusOr<std::shared_ptr<FieldKeys::Entry>> FieldKeys::Unwrap(const VaultKey& stored,
                                                                    const KeySlot& slot) {
  KW_RETURN_IF_ERROR(CheckWrappedBelongs(stored.wrapped, key_name_, slot, stored.ref));
  // The context is built from the slot the caller expects, not from the
  // row: keywardd then authenticates that this wrapped key belongs to it.
  KW_ASSIGN_OR_RETURN(SecretData dk,
                      client_->DecryptDataKey(stored.wrapped, FieldKeyContext(slot, stored.ref)));
  auto e = std::make_shared<Entry>();
  KW_ASSIGN_OR_RETURN(auto aead, AeadFor(dk));
  e->key = Key{stored.ref, stored.kek_version, stored.generation, std::move(aead),
               std::make_shared<const SecretData>(std::move(dk))};
  return e;
}

absl::StatusOr<std::shared_ptr<FieldKeys::Entry>> FieldKeys::Make(const KeySlot& slot,
                                                                  int64_t generation) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    KW_ASSIGN_OR_RETURN(uint32_t ref, RandomRef());
    KW_ASSIGN_OR_RETURN(GeneratedDataKey dk,
                        client_->GenerateDataKey(key_name_, FieldKeyContext(slot, ref)));
    VaultKey stored{ref, slot, generation, dk.encrypted.ciphertext, dk.key.key_version, ""};
    absl::Status inserted = vault_->Insert(stored);
    if (inserted.ok()) {
      auto e = std::make_shared<Entry>();
      KW_ASSIGN_OR_RETURN(auto aead, AeadFor(dk.plaintext));
      e->key = Key{ref, stored.kek_version, generation, std::move(aead),
                   std::make_shared<const SecretData>(std::move(dk.plaintext))};
      return e;
    }
    if (!absl::IsAlreadyExists(inserted)) return inserted;
    if (inserted.message() == "generation") {
      // Another process made this generation first: use theirs.
      KW_ASSIGN_OR_RETURN(std::optional<VaultKey> winner, vault_->Current(slot));
      if (!winner.has_value()) return absl::InternalError("field key vanished after a race");
      return Unwrap(*winner, slot);
    }
    // A ref already taken by another key: draw again.
  }
  return absl::InternalError("could not find a free field key reference in 8 draws");
}

absl::StatusOr<FieldKeys::Key> FieldKeys::ForEncryption(const SlotView& slot) {
  const uint64_t epoch = epoch_.load(std::memory_order_acquire);
  Key key;
  if (FromMemo(true, slot, 0, &key)) return key;
  std::string& hot_key = Scratch();
  AppendSlot(hot_key, slot);
  int64_t expires = 0;
  if (FindHot(hot_current_, hot_key, &key, &expires)) {
    ToMemo(true, slot, key, expires);
    return key;
  }
  const KeySlot owned = slot.Copy();
  const std::string cache_key = hot_key;
  bool hit = false;
  KW_ASSIGN_OR_RETURN(
      std::shared_ptr<Entry> e,
      current_.Acquire(cache_key, 0, [&]() -> absl::StatusOr<std::shared_ptr<Entry>> {
        KW_ASSIGN_OR_RETURN(std::optional<VaultKey> stored, vault_->Current(owned));
        if (stored.has_value()) return Unwrap(*stored, owned);
        return Make(owned, 1);
      }, &hit));
  if (const int64_t until = PutHot(hot_current_, cache_key, *e, epoch); until > 0) {
    ToMemo(true, slot, e->key, until);
  }
  return e->key;
}

absl::StatusOr<FieldKeys::Key> FieldKeys::ForDecryption(const SlotView& slot, uint32_t ref) {
  const uint64_t epoch = epoch_.load(std::memory_order_acquire);
  Key key;
  if (FromMemo(false, slot, ref, &key)) return key;
  std::string& hot_key = Scratch();
  char b[4];
  absl::big_endian::Store32(b, ref);
  hot_key.append(b, 4);
  AppendSlot(hot_key, slot);
  int64_t expires = 0;
  if (FindHot(hot_by_ref_, hot_key, &key, &expires)) {
    ToMemo(false, slot, key, expires);
    return key;
  }
  const KeySlot owned = slot.Copy();
  const std::string cache_key = hot_key;
  bool hit = false;
  KW_ASSIGN_OR_RETURN(
      std::shared_ptr<Entry> e,
      by_ref_.Acquire(cache_key, 0, [&]() -> absl::StatusOr<std::shared_ptr<Entry>> {
        KW_ASSIGN_OR_RETURN(std::optional<VaultKey> stored, vault_->Get(ref));
        if (!stored.has_value()) {
          return MakeError(absl::StatusCode::kFailedPrecondition, ErrorCode::kNoKeyringCouldUnwrap,
                           absl::StrCat("field key ", ref, " is not in ", kKeyTable,
                                        ": it was erased (tenant erasure) or the value comes "
                                        "from another database"));
        }
        if (!(stored->slot == owned)) {
          return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kAuthenticationFailed,
                           absl::StrCat("the value names field key ", ref,
                                        ", which belongs to another class, tenant or data set: "
                                        "it was copied from elsewhere"));
        }
        return Unwrap(*stored, owned);
      }, &hit));
  if (const int64_t until = PutHot(hot_by_ref_, cache_key, *e, epoch); until > 0) {
    ToMemo(false, slot, e->key, until);
  }
  return e->key;
}

absl::StatusOr<FieldKeys::Key> FieldKeys::NewGeneration(const KeySlot& slot) {
  KW_ASSIGN_OR_RETURN(std::optional<VaultKey> stored, vault_->Current(slot));
  const int64_t next = stored.has_value() ? stored->generation + 1 : 1;
  KW_ASSIGN_OR_RETURN(std::shared_ptr<Entry> e, Make(slot, next));
  Clear();
  return e->key;
}

void FieldKeys::Clear() {
  {
    absl::MutexLock lock(&hot_mu_);
    epoch_.fetch_add(1, std::memory_order_acq_rel);
    hot_current_.clear();
    hot_by_ref_.clear();
  }
  current_.Clear();
  by_ref_.Clear();
  if (on_clear_) on_clear_();
}

}  // namespace keyward::fields
