// X.509 certificates as `keyward doctor` and `keyward inventory` report
// them: metadata only (never a private key), read from PEM files or from a
// TLS handshake with keywardd.
#ifndef KEYWARD_CLI_CERTIFICATES_H_
#define KEYWARD_CLI_CERTIFICATES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "keyward/connection.h"

namespace keyward::cli {

struct CertificateInfo {
  std::string source;   // "client", "ca", "server", or a file
  std::string path;     // the file, or "host:port" for a server's
  std::string subject;  // one line, RFC 2253
  std::string issuer;
  std::string serial;   // hex
  std::string sha256;   // fingerprint of the DER, hex
  std::string key_algorithm;  // "EC P-256", "RSA 2048", ...
  std::string signature_algorithm;
  absl::Time not_before;
  absl::Time not_after;
  bool is_ca = false;
  // Made by `keyward dev init` (its dev CA, O=Keyward dev).
  bool dev = false;
};

// Every certificate in a PEM file (a chain gives several), first to last.
// Errors: kNotFound (no file), kInvalidArgument (no certificate in it).
absl::StatusOr<std::vector<CertificateInfo>> ReadCertificates(const std::string& path,
                                                              const std::string& source);

// The certificate chain keywardd presents at `server` ("host:port"): a TLS
// 1.3 handshake as the client of `options` (its certificate, for mutual
// TLS), without verifying the chain, so that an expired one can still be
// reported.  Errors: kUnavailable when no handshake completes within
// `timeout`.
absl::StatusOr<std::vector<CertificateInfo>> FetchServerCertificates(
    const ClientOptions& options, const std::string& server, absl::Duration timeout);

}  // namespace keyward::cli

#endif  // KEYWARD_CLI_CERTIFICATES_H_
