// A keyring holding data keys that were already unwrapped (in one batch
// call to keywardd), so many messages can be opened locally.
#ifndef KEYWARD_REENCRYPT_UNWRAPPED_KEYRING_H_
#define KEYWARD_REENCRYPT_UNWRAPPED_KEYRING_H_

#include <map>
#include <string>

#include "keyward/keyring.h"

namespace keyward::reencrypt {

class UnwrappedKeyring final : public KeyUnwrapper {
 public:
  // `ciphertext`: the wrapped data key as it appears in message headers.
  void Add(const std::string& ciphertext, SecretData dek) {
    keys_.insert_or_assign(ciphertext, std::move(dek));
  }
  absl::StatusOr<SecretData> UnwrapDataKey(const EncryptedDataKey& edk,
                                           const EncryptionContext&) const override {
    auto it = keys_.find(edk.ciphertext);
    if (it == keys_.end()) return absl::NotFoundError("not unwrapped");
    return SecretData::CopyFrom(it->second.AsStringView());
  }
  bool Owns(const EncryptedDataKey& edk) const override { return keys_.count(edk.ciphertext) > 0; }

 private:
  std::map<std::string, SecretData> keys_;
};

}  // namespace keyward::reencrypt

#endif  // KEYWARD_REENCRYPT_UNWRAPPED_KEYRING_H_
