// A minimal HTTP/1.1 listener for operators: GET /healthz, /readyz and
// /metrics.  Bound to loopback by default; it serves no key operation.
#ifndef KEYWARD_SERVER_HTTP_SERVER_H_
#define KEYWARD_SERVER_HTTP_SERVER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

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
  // handler) on one thread.  Errors: kUnavailable when the address is taken.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const std::string& host_port, std::map<std::string, HttpHandler> routes);
  ~HttpServer();
  int port() const { return port_; }

 private:
  HttpServer(int fd, int port, std::map<std::string, HttpHandler> routes);
  void Loop();
  void Serve(int client);

  const int fd_;
  const int port_;
  const std::map<std::string, HttpHandler> routes_;
  int wake_[2] = {-1, -1};
  std::thread thread_;
};

// Splits "host:port".
bool SplitHostPort(const std::string& host_port, std::string* host, int* port);

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_HTTP_SERVER_H_
