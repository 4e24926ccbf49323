// Who is calling: the principal named by the client certificate, its URI
// SAN (for example spiffe://example.org/app) or else its subject CN.
#ifndef KEYWARD_SERVER_PRINCIPAL_H_
#define KEYWARD_SERVER_PRINCIPAL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace grpc {
class AuthContext;
}

namespace keyward::server {

// From a PEM certificate.  Errors: kUnauthenticated when the certificate
// names neither.
absl::StatusOr<std::string> PrincipalFromCertificate(absl::string_view pem);

// From a call's TLS peer.  Errors: kUnauthenticated.
absl::StatusOr<std::string> PrincipalFromAuthContext(
    const grpc::AuthContext& auth);

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_PRINCIPAL_H_
