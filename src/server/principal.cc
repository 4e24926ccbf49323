#include "server/principal.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <mutex>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace keyward::server {

absl::StatusOr<std::string> PrincipalFromCertificate(absl::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr,
      X509_free);
  if (cert == nullptr) {
    return absl::UnauthenticatedError("the client certificate cannot be parsed");
  }
  // A CA certificate is not a client: whoever holds its key can mint any
  // identity, and must not be one.
  if (X509_check_ca(cert.get()) != 0) {
    return absl::UnauthenticatedError(
        "the client certificate is a CA certificate (basicConstraints CA:TRUE); "
        "issue a leaf certificate for the client");
  }
  std::unique_ptr<GENERAL_NAMES, void (*)(GENERAL_NAMES*)> sans(
      static_cast<GENERAL_NAMES*>(
          X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)),
      [](GENERAL_NAMES* n) { GENERAL_NAMES_free(n); });
  if (sans != nullptr) {
    // One URI SAN at most: with two, which identity the policy sees would
    // depend on their order, and a CA that signs an extra one for an
    // applicant would hand out someone else's identity.
    const ASN1_IA5STRING* uri = nullptr;
    for (int i = 0; i < sk_GENERAL_NAME_num(sans.get()); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans.get(), i);
      if (name->type != GEN_URI) continue;
      if (uri != nullptr) {
        return absl::UnauthenticatedError(
            "the client certificate has more than one URI SAN; keywardd takes exactly one "
            "as the client's identity");
      }
      uri = name->d.uniformResourceIdentifier;
    }
    if (uri != nullptr) {
      const int len = ASN1_STRING_length(uri);
      if (len <= 0 || len > 1024) {
        return absl::UnauthenticatedError(
            "the client certificate's URI SAN is empty or over 1024 bytes");
      }
      return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                         static_cast<size_t>(len));
    }
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());
  const int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (idx >= 0) {
    const ASN1_STRING* cn =
        X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
    unsigned char* utf8 = nullptr;
    const int len = ASN1_STRING_to_UTF8(&utf8, cn);
    if (len > 0) {
      std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
      OPENSSL_free(utf8);
      return out;
    }
    if (utf8 != nullptr) OPENSSL_free(utf8);
  }
  return absl::UnauthenticatedError(
      "the client certificate has neither a URI SAN nor a common name");
}

absl::StatusOr<std::string> PrincipalFromAuthContext(
    const grpc::AuthContext& auth) {
  auto pem = auth.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pem.empty()) {
    return absl::UnauthenticatedError("no client certificate was presented");
  }
  const std::string key(pem[0].data(), pem[0].size());
  // Parsing a certificate costs tens of microseconds; connections reuse the
  // same few certificates, so remember the answers (bounded).
  static std::mutex mu;
  static auto* cache = new absl::flat_hash_map<std::string, std::string>();
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache->find(key);
    if (it != cache->end()) return it->second;
  }
  auto principal = PrincipalFromCertificate(key);
  if (principal.ok()) {
    std::lock_guard<std::mutex> lock(mu);
    if (cache->size() > 4096) cache->clear();
    cache->emplace(key, *principal);
  }
  return principal;
}

}  // namespace keyward::server
