// A throwaway certificate authority for `keyward dev init`: ECDSA P-256
// keys, a CA, a server certificate for localhost and client certificates
// whose URI SAN is the principal.  Dev certificates say so in their issuer
// ("Keyward dev CA"), and a production keywardd refuses them.
#ifndef KEYWARD_DEV_DEV_CA_H_
#define KEYWARD_DEV_DEV_CA_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace keyward::dev {

inline constexpr char kDevCaName[] = "Keyward dev CA";

struct PemPair {
  std::string cert;
  std::string key;
};

class DevCa {
 public:
  static absl::StatusOr<std::unique_ptr<DevCa>> Create(const std::string& name);
  ~DevCa();
  const std::string& cert_pem() const { return cert_pem_; }

  // A server certificate for these DNS names and IP addresses.
  absl::StatusOr<PemPair> IssueServer(const std::string& common_name,
                                      const std::vector<std::string>& dns,
                                      const std::vector<std::string>& ips);
  // A client certificate: CN `common_name`, URI SAN `uri` (the principal).
  absl::StatusOr<PemPair> IssueClient(const std::string& common_name,
                                      const std::string& uri);

 private:
  DevCa() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string cert_pem_;
};

}  // namespace keyward::dev

#endif  // KEYWARD_DEV_DEV_CA_H_
