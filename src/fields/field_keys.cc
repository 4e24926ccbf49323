// Field data keys (fields/field_keys.h).
#include "fields/field_keys.h"

#include "absl/base/internal/endian.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "crypto/random.h"
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

}  // namespace

std::string SlotKey(const KeySlot& slot) {
  std::string k = slot.dataset;
  k.push_back('\0');
  k += slot.class_name;
  k.push_back('\0');
  k += slot.tenant;
  return k;
}

FieldKeys::FieldKeys(std::string key_name, std::shared_ptr<DataClient> client,
                     std::unique_ptr<KeyVault> vault, CacheLimits limits)
    : key_name_(std::move(key_name)),
      client_(std::move(client)),
      vault_(std::move(vault)),
      current_(limits),
      by_ref_(limits) {}

absl::StatusOr<std::shared_ptr<FieldKeys::Entry>> FieldKeys::Unwrap(const VaultKey& stored,
                                                                    const KeySlot& slot) {
  // The context is built from the slot the caller expects, not from the
  // row: keywardd then authenticates that this wrapped key belongs to it.
  KW_ASSIGN_OR_RETURN(SecretData dk,
                      client_->DecryptDataKey(stored.wrapped, FieldKeyContext(slot, stored.ref)));
  auto e = std::make_shared<Entry>();
  KW_ASSIGN_OR_RETURN(std::unique_ptr<crypto::Aead> aead,
                      crypto::NewAead(crypto::AeadAlgorithm::kAes256Gcm, dk));
  e->key = Key{stored.ref, stored.kek_version, stored.generation, std::move(aead)};
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
      KW_ASSIGN_OR_RETURN(std::unique_ptr<crypto::Aead> aead,
                          crypto::NewAead(crypto::AeadAlgorithm::kAes256Gcm, dk.plaintext));
      e->key = Key{ref, stored.kek_version, generation, std::move(aead)};
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

absl::StatusOr<FieldKeys::Key> FieldKeys::ForEncryption(const KeySlot& slot) {
  bool hit = false;
  KW_ASSIGN_OR_RETURN(
      std::shared_ptr<Entry> e,
      current_.Acquire(SlotKey(slot), 0, [&]() -> absl::StatusOr<std::shared_ptr<Entry>> {
        KW_ASSIGN_OR_RETURN(std::optional<VaultKey> stored, vault_->Current(slot));
        if (stored.has_value()) return Unwrap(*stored, slot);
        return Make(slot, 1);
      }, &hit));
  return e->key;
}

absl::StatusOr<FieldKeys::Key> FieldKeys::ForDecryption(const KeySlot& slot, uint32_t ref) {
  bool hit = false;
  KW_ASSIGN_OR_RETURN(
      std::shared_ptr<Entry> e,
      by_ref_.Acquire(absl::StrCat(ref, std::string(1, '\0'), SlotKey(slot)), 0,
                      [&]() -> absl::StatusOr<std::shared_ptr<Entry>> {
                        KW_ASSIGN_OR_RETURN(std::optional<VaultKey> stored, vault_->Get(ref));
                        if (!stored.has_value()) {
                          return MakeError(
                              absl::StatusCode::kFailedPrecondition,
                              ErrorCode::kNoKeyringCouldUnwrap,
                              absl::StrCat("field key ", ref, " is not in ", kKeyTable,
                                           ": it was erased (tenant erasure) or the value "
                                           "comes from another database"));
                        }
                        if (!(stored->slot == slot)) {
                          return MakeError(
                              absl::StatusCode::kInvalidArgument,
                              ErrorCode::kAuthenticationFailed,
                              absl::StrCat("the value names field key ", ref,
                                           ", which belongs to another class, tenant or "
                                           "data set: it was copied from elsewhere"));
                        }
                        return Unwrap(*stored, slot);
                      },
                      &hit));
  return e->key;
}

absl::StatusOr<FieldKeys::Key> FieldKeys::NewGeneration(const KeySlot& slot) {
  KW_ASSIGN_OR_RETURN(std::optional<VaultKey> stored, vault_->Current(slot));
  const int64_t next = stored.has_value() ? stored->generation + 1 : 1;
  KW_ASSIGN_OR_RETURN(std::shared_ptr<Entry> e, Make(slot, next));
  current_.Clear();
  return e->key;
}

void FieldKeys::Clear() {
  current_.Clear();
  by_ref_.Clear();
}

}  // namespace keyward::fields
