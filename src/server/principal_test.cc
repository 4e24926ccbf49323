#include "server/principal.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

#include "dev/dev_ca.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace keyward::server {
namespace {

using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;

// A self-signed certificate with the given subjectAltName and
// basicConstraints (OpenSSL's config syntax); the chain does not matter to
// PrincipalFromCertificate, which runs after TLS verified it.
std::string Certificate(const std::string& san, const std::string& basic_constraints) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("client"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  X509_set_pubkey(cert.get(), key.get());
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : {std::pair{NID_subject_alt_name, san},
                                   std::pair{NID_basic_constraints, basic_constraints}}) {
    if (value.empty()) continue;
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(cert.get(), key.get(), EVP_sha256());
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_X509(bio.get(), cert.get());
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

TEST(PrincipalTest, UriSanFirstThenCommonName) {
  KW_ASSERT_OK_AND_ASSIGN(auto ca, dev::DevCa::Create("test"));
  KW_ASSERT_OK_AND_ASSIGN(auto client,
                          ca->IssueClient("app", "spiffe://example.org/tenant/acme/app"));
  EXPECT_THAT(PrincipalFromCertificate(client.cert),
              ::keyward::testing::IsOkAndHolds("spiffe://example.org/tenant/acme/app"));
  KW_ASSERT_OK_AND_ASSIGN(auto server, ca->IssueServer("keywardd", {"localhost"}, {}));
  EXPECT_THAT(PrincipalFromCertificate(server.cert),
              ::keyward::testing::IsOkAndHolds("keywardd"));
  EXPECT_THAT(PrincipalFromCertificate("not a certificate"),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(PrincipalTest, OneUriSanLeafCertificate) {
  EXPECT_THAT(PrincipalFromCertificate(Certificate("URI:spiffe://x/a", "CA:FALSE")),
              ::keyward::testing::IsOkAndHolds("spiffe://x/a"));
}

// Two URI SANs: which one would be "the" identity depends on their order.
TEST(PrincipalTest, MoreThanOneUriSanIsRefused) {
  EXPECT_THAT(
      PrincipalFromCertificate(Certificate("URI:spiffe://x/app,URI:spiffe://x/admin", "")),
      StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("more than one URI SAN")));
}

// A CA certificate can mint any identity; it is never one itself.
TEST(PrincipalTest, CaCertificatesAreNotClients) {
  EXPECT_THAT(PrincipalFromCertificate(Certificate("URI:spiffe://x/app", "critical,CA:TRUE")),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("CA certificate")));
  KW_ASSERT_OK_AND_ASSIGN(auto ca, dev::DevCa::Create("test"));
  EXPECT_THAT(PrincipalFromCertificate(ca->cert_pem()),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

}  // namespace
}  // namespace keyward::server
