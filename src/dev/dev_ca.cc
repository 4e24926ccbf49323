#include "dev/dev_ca.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "crypto/random.h"

namespace keyward::dev {
namespace {

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;

absl::Status OsslError(absl::string_view what) {
  return absl::InternalError(absl::StrCat("creating the dev CA: ", what, " failed"));
}

PkeyPtr NewKey() { return PkeyPtr(EVP_EC_gen("P-256"), EVP_PKEY_free); }

std::string KeyPem(EVP_PKEY* key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string CertPem(X509* cert) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

bool AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return false;
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A certificate for `key`, signed by `issuer_key` (self-signed when
// `issuer` is null), valid for `days`.
absl::StatusOr<X509Ptr> MakeCert(EVP_PKEY* key, const std::string& cn,
                                 X509* issuer, EVP_PKEY* issuer_key, int days) {
  X509Ptr cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  auto serial = crypto::RandomBytes(16);
  if (!serial.ok()) return serial.status();
  (*serial)[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(serial->data()), 16, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Keyward dev"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  if (!AddExt(cert.get(), issuer ? issuer : cert.get(), NID_subject_key_identifier, "hash")) {
    return OsslError("subject key identifier");
  }
  if (issuer != nullptr &&
      !AddExt(cert.get(), issuer, NID_authority_key_identifier, "keyid:always")) {
    return OsslError("authority key identifier");
  }
  (void)issuer_key;
  return cert;
}

}  // namespace

struct DevCa::Impl {
  PkeyPtr key{nullptr, EVP_PKEY_free};
  X509Ptr cert{nullptr, X509_free};
};

DevCa::~DevCa() = default;

absl::StatusOr<std::unique_ptr<DevCa>> DevCa::Create(const std::string& name) {
  std::unique_ptr<DevCa> ca(new DevCa());
  ca->impl_ = std::make_unique<Impl>();
  ca->impl_->key = NewKey();
  if (!ca->impl_->key) return OsslError("CA key");
  auto cert = MakeCert(ca->impl_->key.get(), absl::StrCat(kDevCaName, " ", name),
                       nullptr, ca->impl_->key.get(), 3650);
  if (!cert.ok()) return cert.status();
  X509* c = cert->get();
  if (!AddExt(c, c, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
      !AddExt(c, c, NID_key_usage, "critical,keyCertSign,cRLSign") ||
      X509_sign(c, ca->impl_->key.get(), EVP_sha256()) == 0) {
    return OsslError("CA certificate");
  }
  ca->impl_->cert = std::move(*cert);
  ca->cert_pem_ = CertPem(ca->impl_->cert.get());
  return ca;
}

absl::StatusOr<PemPair> DevCa::IssueServer(const std::string& common_name,
                                           const std::vector<std::string>& dns,
                                           const std::vector<std::string>& ips) {
  PkeyPtr key = NewKey();
  if (!key) return OsslError("server key");
  auto cert = MakeCert(key.get(), common_name, impl_->cert.get(), impl_->key.get(), 825);
  if (!cert.ok()) return cert.status();
  std::vector<std::string> sans;
  for (const auto& d : dns) sans.push_back("DNS:" + d);
  for (const auto& i : ips) sans.push_back("IP:" + i);
  X509* c = cert->get();
  if (!AddExt(c, impl_->cert.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      !AddExt(c, impl_->cert.get(), NID_key_usage, "critical,digitalSignature") ||
      !AddExt(c, impl_->cert.get(), NID_ext_key_usage, "serverAuth") ||
      !AddExt(c, impl_->cert.get(), NID_subject_alt_name, absl::StrJoin(sans, ",")) ||
      X509_sign(c, impl_->key.get(), EVP_sha256()) == 0) {
    return OsslError("server certificate");
  }
  return PemPair{CertPem(c), KeyPem(key.get())};
}

absl::StatusOr<PemPair> DevCa::IssueClient(const std::string& common_name,
                                           const std::string& uri) {
  PkeyPtr key = NewKey();
  if (!key) return OsslError("client key");
  auto cert = MakeCert(key.get(), common_name, impl_->cert.get(), impl_->key.get(), 825);
  if (!cert.ok()) return cert.status();
  X509* c = cert->get();
  if (!AddExt(c, impl_->cert.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      !AddExt(c, impl_->cert.get(), NID_key_usage, "critical,digitalSignature") ||
      !AddExt(c, impl_->cert.get(), NID_ext_key_usage, "clientAuth") ||
      !AddExt(c, impl_->cert.get(), NID_subject_alt_name, "URI:" + uri) ||
      X509_sign(c, impl_->key.get(), EVP_sha256()) == 0) {
    return OsslError("client certificate");
  }
  return PemPair{CertPem(c), KeyPem(key.get())};
}

}  // namespace keyward::dev
