// The operators' HTTP listener: GET /healthz, /readyz and /metrics, served
// by cpp-httplib on a small pool of its own threads, so one slow handler
// (a /readyz waiting on the HSM) never holds up the others.  Bound to
// loopback by default; it serves no key operation.
#ifndef KEYWARD_SERVER_HTTP_SERVER_H_
#define KEYWARD_SERVER_HTTP_SERVER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace keyward::server {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using HttpHandler = std::function<HttpResponse()>;

class HttpServer {
 public:
  // Listens on `host:port` (port 0 picks one) and serves `routes` (path →
  // handler; GET only, other methods get 405).  Errors: kInvalidArgument for
  // an address that is not HOST:PORT, kUnavailable when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const std::string& host_port, std::map<std::string, HttpHandler> routes);
  // Stops listening and waits for the requests in progress.
  ~HttpServer();
  int port() const { return port_; }

 private:
  HttpServer() = default;
  std::unique_ptr<httplib::Server> http_;
  int port_ = 0;
  std::thread thread_;
};

// Splits "host:port" ("[::1]:80" included).
bool SplitHostPort(const std::string& host_port, std::string* host, int* port);

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_HTTP_SERVER_H_
