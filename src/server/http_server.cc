#include "server/http_server.h"

#include <httplib.h>

#include <sys/socket.h>

#include <chrono>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace keyward::server {
namespace {

// Requests are a line and a few headers; anything slow or large is cut off.
constexpr int kThreads = 4;
constexpr time_t kReadTimeoutSeconds = 2;
constexpr size_t kMaxPayload = 8192;

}  // namespace

bool SplitHostPort(const std::string& host_port, std::string* host, int* port) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) return false;
  *host = host_port.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return absl::SimpleAtoi(host_port.substr(colon + 1), port) && *port >= 0 &&
         *port <= 65535;
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const std::string& host_port, std::map<std::string, HttpHandler> routes) {
  std::string host;
  int port = 0;
  if (!SplitHostPort(host_port, &host, &port)) {
    return absl::InvalidArgumentError(
        absl::StrCat("http_listen '", host_port, "' is not HOST:PORT"));
  }
  std::unique_ptr<HttpServer> server(new HttpServer());
  server->http_ = std::make_unique<httplib::Server>();
  httplib::Server& http = *server->http_;
  http.new_task_queue = [] { return new httplib::ThreadPool(kThreads); };
  http.set_read_timeout(kReadTimeoutSeconds, 0);
  http.set_write_timeout(kReadTimeoutSeconds, 0);
  http.set_payload_max_length(kMaxPayload);
  http.set_keep_alive_max_count(16);
  http.set_keep_alive_timeout(kReadTimeoutSeconds);
  for (auto& [path, handler] : routes) {
    http.Get(path, [handler = std::move(handler)](const httplib::Request&,
                                                  httplib::Response& res) {
      HttpResponse out = handler();
      res.status = out.status;
      res.set_content(std::move(out.body), out.content_type.c_str());
    });
  }
  auto only_get = [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", "GET");
    res.set_content("only GET\n", "text/plain; charset=utf-8");
  };
  http.Post(".*", only_get);
  http.Put(".*", only_get);
  http.Delete(".*", only_get);
  http.Patch(".*", only_get);
  http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) {
      res.set_content(res.status == 404 ? "not found\n" : "bad request\n",
                      "text/plain; charset=utf-8");
    }
  });
  // SO_REUSEADDR only: cpp-httplib's default adds SO_REUSEPORT, with which
  // another process (or keywardd's own gRPC listener in a test that raced
  // for a port) could share the port and take its connections.
  http.set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  const int bound = port == 0 ? http.bind_to_any_port(host)
                              : (http.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen for HTTP on ", host_port,
        " (address in use, or not an address of this machine)"));
  }
  server->port_ = bound;
  server->thread_ = std::thread([&http] { http.listen_after_bind(); });
  // Until listen_after_bind() runs, stop() would not stop it.
  for (int i = 0; i < 5000 && !http.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return server;
}

HttpServer::~HttpServer() {
  if (http_ != nullptr) http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace keyward::server
