#include "server/principal.h"

#include "cli/dev_ca.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace keyward::server {
namespace {

using ::keyward::testing::StatusIs;

TEST(PrincipalTest, UriSanFirstThenCommonName) {
  KW_ASSERT_OK_AND_ASSIGN(auto ca, cli::DevCa::Create("test"));
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

}  // namespace
}  // namespace keyward::server
