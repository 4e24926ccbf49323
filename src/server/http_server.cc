#include "server/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace keyward::server {

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
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot resolve ", host));
  }
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (fd < 0 || ::bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
      ::listen(fd, 64) != 0) {
    const int err = errno;
    ::freeaddrinfo(res);
    if (fd >= 0) ::close(fd);
    return absl::UnavailableError(absl::StrCat(
        "cannot listen for HTTP on ", host_port, ": ", std::strerror(err)));
  }
  ::freeaddrinfo(res);
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  const int actual = ntohs(bound.ss_family == AF_INET6
                               ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                               : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return std::unique_ptr<HttpServer>(new HttpServer(fd, actual, std::move(routes)));
}

HttpServer::HttpServer(int fd, int port, std::map<std::string, HttpHandler> routes)
    : fd_(fd), port_(port), routes_(std::move(routes)) {
  if (::pipe2(wake_, O_CLOEXEC) != 0) wake_[0] = wake_[1] = -1;
  thread_ = std::thread([this] { Loop(); });
}

HttpServer::~HttpServer() {
  if (wake_[1] >= 0) {
    [[maybe_unused]] ssize_t n = ::write(wake_[1], "x", 1);
  }
  if (thread_.joinable()) thread_.join();
  ::close(fd_);
  for (int p : wake_) {
    if (p >= 0) ::close(p);
  }
}

void HttpServer::Loop() {
  for (;;) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents & POLLIN) {
      int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        Serve(client);
        ::close(client);
      }
    }
  }
}

void HttpServer::Serve(int client) {
  // One short request per connection; a slow client gets two seconds.
  timeval tv{2, 0};
  ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string request;
  char buf[1024];
  while (request.find("\r\n") == std::string::npos && request.size() < 8192) {
    ssize_t n = ::read(client, buf, sizeof(buf));
    if (n <= 0) break;
    request.append(buf, static_cast<size_t>(n));
  }
  HttpResponse resp;
  const size_t sp1 = request.find(' ');
  const size_t sp2 = sp1 == std::string::npos ? sp1 : request.find(' ', sp1 + 1);
  if (sp2 == std::string::npos) {
    resp = {400, "text/plain; charset=utf-8", "bad request\n"};
  } else {
    const std::string method = request.substr(0, sp1);
    std::string path = request.substr(sp1 + 1, sp2 - sp1 - 1);
    path = path.substr(0, path.find('?'));
    auto it = routes_.find(path);
    if (method != "GET") {
      resp = {405, "text/plain; charset=utf-8", "only GET\n"};
    } else if (it == routes_.end()) {
      resp = {404, "text/plain; charset=utf-8", "not found\n"};
    } else {
      resp = it->second();
    }
  }
  const char* reason = resp.status == 200   ? "OK"
                       : resp.status == 503 ? "Service Unavailable"
                       : resp.status == 404 ? "Not Found"
                                            : "Error";
  const std::string out = absl::StrCat(
      "HTTP/1.1 ", resp.status, " ", reason, "\r\nContent-Type: ",
      resp.content_type, "\r\nContent-Length: ", resp.body.size(),
      "\r\nConnection: close\r\n\r\n", resp.body);
  size_t sent = 0;
  while (sent < out.size()) {
    ssize_t n = ::send(client, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
}

}  // namespace keyward::server
