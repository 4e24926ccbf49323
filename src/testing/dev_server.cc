#include "testing/dev_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"

namespace keyward::testing {

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

absl::StatusOr<std::unique_ptr<DevServer>> DevServer::Init(const std::string& keyward,
                                                           const std::string& keywardd) {
  std::unique_ptr<DevServer> s(new DevServer());
  s->keyward_ = keyward;
  s->keywardd_ = keywardd;
  s->port_ = FreePort();
  do {
    s->http_port_ = FreePort();
  } while (s->http_port_ == s->port_);
  s->dev_dir_ = std::make_shared<TempDir>();
  ProcessResult r = RunProcess({keyward, "dev", "init", s->dev_dir_->File("dev"), "--port",
                                std::to_string(s->port_), "--http-port",
                                std::to_string(s->http_port_)});
  if (r.exit_code != 0) {
    return absl::InternalError(absl::StrCat("keyward dev init failed: ", r.err));
  }
  // Everything lives in DIR/dev; point the helpers there.
  s->dir_path_ = s->dev_dir_->File("dev");
  return s;
}

absl::StatusOr<std::unique_ptr<DevServer>> DevServer::AddReplica(const std::string& id,
                                                                 const std::string& postgres_url,
                                                                 absl::Duration lease_ttl) {
  std::unique_ptr<DevServer> r(new DevServer());
  r->keyward_ = keyward_;
  r->keywardd_ = keywardd_;
  r->dev_dir_ = dev_dir_;
  r->dir_path_ = dir_path_;
  r->replica_id_ = id;
  r->config_name_ = id + ".yaml";
  r->port_ = FreePort();
  do {
    r->http_port_ = FreePort();
  } while (r->http_port_ == r->port_);
  // keywardd.yaml with this replica's ports, storage and audit log.
  std::string yaml;
  for (absl::string_view line : absl::StrSplit(ReadFileOrDie(File("keywardd.yaml")), '\n')) {
    if (absl::StartsWith(line, "listen:")) {
      absl::StrAppend(&yaml, "listen: 127.0.0.1:", r->port_, "\n");
    } else if (absl::StartsWith(line, "http_listen:")) {
      absl::StrAppend(&yaml, "http_listen: 127.0.0.1:", r->http_port_, "\n");
    } else if (absl::StartsWith(line, "  sqlite:")) {
      absl::StrAppend(&yaml, "  postgres: \"", postgres_url, "\"\n");
    } else if (absl::StartsWith(line, "audit:")) {
      absl::StrAppend(&yaml, "replica:\n  id: ", id, "\n  lease_ttl: ",
                      absl::ToInt64Milliseconds(lease_ttl), "ms\naudit:\n  storage: postgres\n");
    } else if (absl::StartsWith(line, "  check_interval:")) {
      absl::StrAppend(&yaml, "  check_interval: 1s\n");  // the scheduler: tests wait less
    } else if (absl::StartsWith(line, "  dir:")) {
      // the audit directory: the log is in PostgreSQL
    } else if (!line.empty()) {
      absl::StrAppend(&yaml, line, "\n");
    }
  }
  WriteFileOrDie(File(r->config_name_), yaml);
  for (const char* who : {"admin", "app"}) {
    KW_RETURN_IF_ERROR(WriteClientConfig(r->ClientConfigName(who).substr(
                                             0, r->ClientConfigName(who).size() - 5),
                                         who, {r.get()})
                           .status());
  }
  return r;
}

absl::StatusOr<std::string> DevServer::WriteClientConfig(
    const std::string& name, const std::string& who,
    const std::vector<const DevServer*>& servers) const {
  // The dev client config with another server list.
  std::string yaml;
  for (absl::string_view line : absl::StrSplit(ReadFileOrDie(File(who + ".yaml")), '\n')) {
    if (absl::StartsWith(line, "servers:")) {
      std::vector<std::string> list;
      for (const DevServer* s : servers) list.push_back(absl::StrCat("127.0.0.1:", s->port()));
      absl::StrAppend(&yaml, "servers: [", absl::StrJoin(list, ", "), "]\n");
    } else if (!line.empty()) {
      absl::StrAppend(&yaml, line, "\n");
    }
  }
  const std::string path = File(name + ".yaml");
  WriteFileOrDie(path, yaml);
  return path;
}

DevServer::~DevServer() {
  if (pid_ > 0) Kill();
}

std::string DevServer::log() const {
  return ReadFileOrDie(dir_.File("keywardd.log"));
}

absl::Status DevServer::Start(const std::vector<std::string>& extra_args) {
  const std::string config = dir_path_ + "/" + config_name_;
  std::vector<char*> argv{const_cast<char*>(keywardd_.c_str()), const_cast<char*>("--config"),
                          const_cast<char*>(config.c_str())};
  for (const std::string& a : extra_args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ == 0) {
    int fd = ::open(dir_.File("keywardd.log").c_str(),
                    O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(keywardd_.c_str(), argv.data());
    ::_exit(127);
  }
  for (int i = 0; i < 200; ++i) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("keywardd exited: ", log()));
    }
    if (HttpGet("/healthz").rfind("200", 0) == 0) return absl::OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat("keywardd did not start: ", log()));
}

void DevServer::Signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int DevServer::Stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void DevServer::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string DevServer::HttpGet(const std::string& path) const {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(http_port_));
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string req = absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: x\r\n\r\n");
    [[maybe_unused]] ssize_t w = ::write(fd, req.data(), req.size());
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  // "HTTP/1.1 200 OK ... \r\n\r\nbody" → "200 body"
  if (out.size() < 12) return "";
  const size_t body = out.find("\r\n\r\n");
  return absl::StrCat(out.substr(9, 3), " ",
                      body == std::string::npos ? "" : out.substr(body + 4));
}

ProcessResult DevServer::Cli(std::vector<std::string> args, const std::string& config,
                             const std::string& stdin_data) const {
  args.insert(args.begin(), {keyward_, "--config", config.empty() ? admin_config() : config});
  return RunProcess(args, stdin_data);
}

}  // namespace keyward::testing
