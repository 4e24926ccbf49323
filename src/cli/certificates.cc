#include "cli/certificates.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace keyward::cli {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX, SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Deleter<SSL, SSL_free>>;

std::string NameLine(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

absl::Time AsTime(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromTM(tm, absl::UTCTimeZone());
}

bool HasOrganization(const X509_NAME* name, const char* org) {
  char buf[256];
  const int n = X509_NAME_get_text_by_NID(const_cast<X509_NAME*>(name), NID_organizationName,
                                          buf, sizeof(buf));
  return n > 0 && std::string(buf, static_cast<size_t>(n)) == org;
}

std::string KeyAlgorithm(X509* cert) {
  EVP_PKEY* key = X509_get0_pubkey(cert);
  if (key == nullptr) return "unknown";
  const int bits = EVP_PKEY_get_bits(key);
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC: {
      char group[64] = {0};
      size_t len = 0;
      EVP_PKEY_get_group_name(key, group, sizeof(group), &len);
      return absl::StrCat("EC ", std::string(group, len));
    }
    case EVP_PKEY_RSA:
      return absl::StrCat("RSA ", bits);
    case EVP_PKEY_ED25519:
      return "Ed25519";
    default:
      const char* name = OBJ_nid2sn(EVP_PKEY_get_base_id(key));
      return absl::StrCat(name != nullptr ? name : "unknown", " ", bits);
  }
}

CertificateInfo Describe(X509* cert, const std::string& source, const std::string& path) {
  CertificateInfo info;
  info.source = source;
  info.path = path;
  info.subject = NameLine(X509_get_subject_name(cert));
  info.issuer = NameLine(X509_get_issuer_name(cert));
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr); bn != nullptr) {
    char* hex = BN_bn2hex(bn);
    info.serial = hex;
    OPENSSL_free(hex);
    BN_free(bn);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &md_len) == 1) {
    info.sha256 = absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(md), md_len));
  }
  info.key_algorithm = KeyAlgorithm(cert);
  const char* sig = OBJ_nid2ln(X509_get_signature_nid(cert));
  info.signature_algorithm = sig != nullptr ? sig : "unknown";
  info.not_before = AsTime(X509_get0_notBefore(cert));
  info.not_after = AsTime(X509_get0_notAfter(cert));
  info.is_ca = X509_check_ca(cert) != 0;
  info.dev = HasOrganization(X509_get_subject_name(cert), "Keyward dev") ||
             HasOrganization(X509_get_issuer_name(cert), "Keyward dev");
  return info;
}

}  // namespace

absl::StatusOr<std::vector<CertificateInfo>> ReadCertificates(const std::string& path,
                                                              const std::string& source) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return absl::NotFoundError(absl::StrCat("cannot read certificate file ", path));
  std::vector<CertificateInfo> out;
  while (X509* raw = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509Ptr cert(raw);
    out.push_back(Describe(cert.get(), source, path));
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " holds no PEM certificate"));
  }
  return out;
}

absl::StatusOr<std::vector<CertificateInfo>> FetchServerCertificates(
    const ClientOptions& options, const std::string& server, absl::Duration timeout) {
  auto unavailable = [&](const std::string& why) {
    return absl::UnavailableError(
        absl::StrCat("no TLS handshake with ", server, " to read its certificate: ", why));
  };
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return unavailable("out of memory");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
  // Not verified here: the point is to report the certificate, expired or not.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), options.cert_file.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), options.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return unavailable("the client certificate or key cannot be loaded");
  }
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx.get(), kAlpn, sizeof(kAlpn));
  BioPtr bio(BIO_new_connect(server.c_str()));
  if (!bio) return unavailable("out of memory");
  if (BIO_do_connect(bio.get()) != 1) return unavailable("cannot connect");
  int fd = -1;
  BIO_get_fd(bio.get(), &fd);
  if (fd >= 0) {
    const int64_t us = absl::ToInt64Microseconds(timeout);
    struct timeval tv {
      static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)
    };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  }
  SslPtr ssl(SSL_new(ctx.get()));
  if (!ssl) return unavailable("out of memory");
  SSL_set_bio(ssl.get(), bio.get(), bio.get());
  BIO* owned = bio.release();  // now the SSL's
  (void)owned;
  if (SSL_connect(ssl.get()) != 1) return unavailable("the handshake failed");
  std::vector<CertificateInfo> out;
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl.get());
  for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
    out.push_back(Describe(sk_X509_value(chain, i), "server", server));
  }
  SSL_shutdown(ssl.get());
  if (out.empty()) return unavailable("the server sent no certificate");
  return out;
}

}  // namespace keyward::cli
