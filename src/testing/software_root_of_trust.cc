#include "testing/software_root_of_trust.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdlib>

#include "absl/strings/escaping.h"
#include "base/status_macros.h"
#include "crypto/random.h"

namespace keyward::hsm::testing {

SoftwareRootOfTrust::SoftwareRootOfTrust() {
  auto key = crypto::GenerateKey(32);
  auto aead = crypto::NewAead(crypto::AeadAlgorithm::kAes256Gcm, *key);
  if (!aead.ok()) std::abort();
  root_ = std::move(*aead);
}

HsmInfo SoftwareRootOfTrust::Info() const {
  return HsmInfo{"software (tests only)", "test", "Keyward tests", "software",
                 true, "test-root"};
}

absl::Status SoftwareRootOfTrust::Check() {
  if (!available_) return absl::UnavailableError("HSM: test HSM is offline");
  return absl::OkStatus();
}

absl::StatusOr<SecretData> SoftwareRootOfTrust::GenerateRandom(size_t size) {
  KW_RETURN_IF_ERROR(Check());
  return crypto::GenerateKey(size);
}

absl::StatusOr<std::string> SoftwareRootOfTrust::Seal(const SecretData& material,
                                                      absl::string_view aad) {
  KW_RETURN_IF_ERROR(Check());
  return root_->Encrypt(material.AsStringView(), aad);
}

absl::StatusOr<SecretData> SoftwareRootOfTrust::Unseal(absl::string_view sealed,
                                                       absl::string_view aad) {
  KW_RETURN_IF_ERROR(Check());
  ++unseal_calls_;
  return root_->Decrypt(sealed, aad);
}

absl::StatusOr<std::string> SoftwareRootOfTrust::CreateResidentKey(
    absl::string_view) {
  KW_RETURN_IF_ERROR(Check());
  KW_ASSIGN_OR_RETURN(std::string id, crypto::RandomBytes(16));
  KW_ASSIGN_OR_RETURN(SecretData key, crypto::GenerateKey(32));
  KW_ASSIGN_OR_RETURN(auto aead,
                      crypto::NewAead(crypto::AeadAlgorithm::kAes256Gcm, key));
  std::lock_guard<std::mutex> lock(mu_);
  std::string hex = absl::BytesToHexString(id);
  resident_[hex] = std::move(aead);
  return hex;
}

absl::StatusOr<std::string> SoftwareRootOfTrust::ResidentSeal(
    absl::string_view key_id, const SecretData& material, absl::string_view aad) {
  KW_RETURN_IF_ERROR(Check());
  std::lock_guard<std::mutex> lock(mu_);
  auto it = resident_.find(std::string(key_id));
  if (it == resident_.end()) return absl::NotFoundError("no such resident key");
  return it->second->Encrypt(material.AsStringView(), aad);
}

absl::StatusOr<SecretData> SoftwareRootOfTrust::ResidentUnseal(
    absl::string_view key_id, absl::string_view sealed, absl::string_view aad) {
  KW_RETURN_IF_ERROR(Check());
  std::lock_guard<std::mutex> lock(mu_);
  auto it = resident_.find(std::string(key_id));
  if (it == resident_.end()) return absl::NotFoundError("no such resident key");
  return it->second->Decrypt(sealed, aad);
}

absl::Status SoftwareRootOfTrust::DestroyResidentKey(absl::string_view key_id) {
  KW_RETURN_IF_ERROR(Check());
  std::lock_guard<std::mutex> lock(mu_);
  resident_.erase(std::string(key_id));
  return absl::OkStatus();
}

absl::Status SoftwareRootOfTrust::CheckHealth() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    ++stalled_waiting_;
    stall_cv_.wait(lock, [&] { return !stalled_; });
    --stalled_waiting_;
  }
  return Check();
}

void SoftwareRootOfTrust::StallHealthChecks() {
  std::lock_guard<std::mutex> lock(mu_);
  stalled_ = true;
}

void SoftwareRootOfTrust::Release() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stalled_ = false;
  }
  stall_cv_.notify_all();
}

int SoftwareRootOfTrust::health_checks_waiting() {
  std::lock_guard<std::mutex> lock(mu_);
  return stalled_waiting_;
}

absl::StatusOr<std::string> SoftwareRootOfTrust::GetOrCreateSigningKey(
    absl::string_view label) {
  KW_RETURN_IF_ERROR(Check());
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = signing_[std::string(label)];
  if (!slot) slot = std::shared_ptr<void>(EVP_EC_gen("P-256"), [](void* k) {
    EVP_PKEY_free(static_cast<EVP_PKEY*>(k));
  });
  auto* key = static_cast<EVP_PKEY*>(slot.get());
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_PUBKEY(bio.get(), key);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

absl::StatusOr<std::string> SoftwareRootOfTrust::Sign(absl::string_view label,
                                                      absl::string_view data) {
  KW_RETURN_IF_ERROR(Check());
  std::lock_guard<std::mutex> lock(mu_);
  auto it = signing_.find(std::string(label));
  if (it == signing_.end()) return absl::NotFoundError("no signing key");
  auto* key = static_cast<EVP_PKEY*>(it->second.get());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                              EVP_MD_CTX_free);
  size_t len = 0;
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    return absl::InternalError("signing failed");
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    return absl::InternalError("signing failed");
  }
  sig.resize(len);
  return sig;
}

size_t SoftwareRootOfTrust::resident_key_count() {
  std::lock_guard<std::mutex> lock(mu_);
  return resident_.size();
}

}  // namespace keyward::hsm::testing
