// Both role clients over one connection, for end-to-end tests that set keys
// up and use them in the same breath.  Applications link only DataClient;
// tools AdminClient.
#ifndef KEYWARD_TESTING_TEST_CLIENT_H_
#define KEYWARD_TESTING_TEST_CLIENT_H_

#include <memory>

#include "absl/status/statusor.h"
#include "keyward/admin_client.h"
#include "keyward/data_client.h"

namespace keyward::testing {

class Client final : public DataClient, public AdminClient {
 public:
  static absl::StatusOr<std::shared_ptr<Client>> Connect(const ClientOptions& options) {
    auto connection = Connection::Open(options);
    if (!connection.ok()) return connection.status();
    return std::make_shared<Client>(std::move(*connection));
  }
  explicit Client(const std::shared_ptr<Connection>& connection)
      : DataClient(connection), AdminClient(connection) {}
  using DataClient::GetServerInfo;
  using DataClient::options;
};

}  // namespace keyward::testing

#endif  // KEYWARD_TESTING_TEST_CLIENT_H_
