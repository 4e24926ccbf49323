#include "testing/postgres_server.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "testing/dev_server.h"
#include "testing/subprocess.h"

extern char** environ;

namespace keyward::testing {
namespace {

constexpr int kStartAttempts = 5;

bool IsExecutable(const std::string& path) {
  return ::access(path.c_str(), X_OK) == 0;
}

bool HasServerBinaries(const std::string& dir) {
  return IsExecutable(dir + "/initdb") && IsExecutable(dir + "/pg_ctl") &&
         IsExecutable(dir + "/postgres") && IsExecutable(dir + "/createdb");
}

// The directory holding initdb, pg_ctl, postgres and createdb: the first on
// PATH, else the newest /usr/lib/postgresql/<version>/bin (Debian keeps the
// server binaries off PATH).
std::string FindBinDir() {
  if (const char* path = std::getenv("PATH")) {
    for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
      if (HasServerBinaries(std::string(dir))) return std::string(dir);
    }
  }
  int best = -1;
  std::string best_dir;
  for (const std::string& name : ListDir("/usr/lib/postgresql")) {
    int version = 0;
    const std::string dir = "/usr/lib/postgresql/" + name + "/bin";
    if (absl::SimpleAtoi(name, &version) && version > best &&
        HasServerBinaries(dir)) {
      best = version;
      best_dir = dir;
    }
  }
  return best_dir;
}

std::string Tail(const std::string& text, size_t n = 2000) {
  return text.size() <= n ? text : "…" + text.substr(text.size() - n);
}

std::string ReadIfExists(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

// The watchdog's work, after fork: async-signal-safe calls only (the test
// process may have other threads, whose locks a forked child inherits).
bool Alive(pid_t pid) {
  if (::kill(pid, 0) != 0) return false;
  // A postmaster whose parent (init) does not reap it stays a zombie.
  char path[64] = "/proc/";
  char digits[24];
  int n = 0;
  for (pid_t p = pid; p > 0 && n < 23; p /= 10)
    digits[n++] = static_cast<char>('0' + p % 10);
  size_t len = std::strlen(path);
  while (n > 0) path[len++] = digits[--n];
  std::memcpy(path + len, "/stat", 6);
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[512];
  const ssize_t got = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (got <= 0) return false;
  buf[got] = '\0';
  const char* paren = std::strrchr(buf, ')');
  return paren == nullptr || paren[1] == '\0' || paren[2] != 'Z';
}

pid_t ReadPidFile(const char* path) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[32];
  const ssize_t got = ::read(fd, buf, sizeof(buf));
  ::close(fd);
  pid_t pid = 0;
  for (ssize_t i = 0; i < got && buf[i] >= '0' && buf[i] <= '9'; ++i)
    pid = pid * 10 + (buf[i] - '0');
  return pid;
}

[[noreturn]] void WatchdogMain(int read_fd, const char* pid_file,
                               char* const rm_argv[]) {
  ::setsid();  // a Ctrl-C meant for the tests must not kill the cleanup
  const int null_fd = ::open("/dev/null", O_RDWR);
  for (int fd = 0; fd < 3; ++fd) ::dup2(null_fd, fd);
  const long max_fd = ::sysconf(_SC_OPEN_MAX);
  for (int fd = 3; fd < (max_fd > 0 ? max_fd : 1024); ++fd) {
    if (fd != read_fd) ::close(fd);
  }
  // Nobody writes: read returns 0 when the last write end is closed.
  char byte;
  for (;;) {
    const ssize_t r = ::read(read_fd, &byte, 1);
    if (r == 0 || (r < 0 && errno != EINTR)) break;
  }
  const pid_t postmaster = ReadPidFile(pid_file);
  if (postmaster > 0 && Alive(postmaster)) {
    ::kill(postmaster, SIGQUIT);
    for (int i = 0; i < 1000 && Alive(postmaster); ++i) ::usleep(10000);
    if (Alive(postmaster)) ::kill(postmaster, SIGKILL);
  }
  ::execv(rm_argv[0], rm_argv);
  ::_exit(127);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresServer>> PostgresServer::Start() {
  std::unique_ptr<PostgresServer> server(new PostgresServer());
  server->bin_dir_ = FindBinDir();
  if (server->bin_dir_.empty()) {
    return absl::FailedPreconditionError(
        "PostgreSQL is not installed (no initdb, pg_ctl, postgres and createdb "
        "on PATH or in "
        "/usr/lib/postgresql/*/bin): run scripts/install-deps, which installs "
        "postgresql");
  }
  {
    std::string out;
    server->Run({server->bin_dir_ + "/postgres", "--version"}, &out);
    server->version_ = std::string(absl::StripAsciiWhitespace(out));
  }
  if (::geteuid() == 0) {
    const passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) {
      return absl::FailedPreconditionError(
          "the tests run as root, PostgreSQL refuses to, and there is no "
          "`postgres` user to run "
          "it as: run scripts/install-deps (the postgresql package creates the "
          "user)");
    }
    server->switch_user_ = true;
    server->uid_ = pw->pw_uid;
    server->gid_ = pw->pw_gid;
  }
  char tmpl[] = "/tmp/keyward-pg-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", std::strerror(errno)));
  }
  server->dir_ = tmpl;
  server->data_dir_ = server->dir_ + "/data";
  if (server->switch_user_ && ::chown(tmpl, server->uid_, server->gid_) != 0) {
    return absl::InternalError(
        absl::StrCat("chown ", tmpl, " to postgres: ", std::strerror(errno)));
  }
  KW_RETURN_IF_ERROR(server->StartWatchdog());
  KW_RETURN_IF_ERROR(server->InitCluster());
  KW_RETURN_IF_ERROR(server->StartServer());
  KW_RETURN_IF_ERROR(server->CreateDatabase("keyward_test").status());
  return server;
}

PostgresServer::~PostgresServer() {
  if (watchdog_ > 0) {
    ::close(watchdog_pipe_);
    int status = 0;
    while (::waitpid(watchdog_, &status, 0) < 0 && errno == EINTR) {
    }
  } else if (!dir_.empty()) {
    RunProcess({"/bin/rm", "-rf", dir_});
  }
}

absl::Status PostgresServer::StartWatchdog() {
  int fds[2];
  // O_CLOEXEC: no server process may hold the write end, or the watchdog
  // would never see the test process go away.
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  // Everything the child needs is allocated before fork.
  const std::string pid_file = data_dir_ + "/postmaster.pid";
  std::string rm = "/bin/rm", flag = "-rf", dir = dir_;
  char* rm_argv[] = {rm.data(), flag.data(), dir.data(), nullptr};
  const pid_t pid = ::fork();
  if (pid < 0)
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) WatchdogMain(fds[0], pid_file.c_str(), rm_argv);
  ::close(fds[0]);
  watchdog_ = pid;
  watchdog_pipe_ = fds[1];
  return absl::OkStatus();
}

int PostgresServer::Run(const std::vector<std::string>& argv,
                        std::string* output) const {
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_storage = {"LC_ALL=C"};
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "LC_ALL=", 7) != 0 && std::strncmp(*e, "PG", 2) != 0)
      env.push_back(*e);
  }
  env.push_back(env_storage[0].data());
  env.push_back(nullptr);
  const char* cwd = dir_.empty() ? "/" : dir_.c_str();
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    ::dup2(null_fd, 0);
    if (switch_user_ && (::setgroups(0, nullptr) != 0 || ::setgid(gid_) != 0 ||
                         ::setuid(uid_) != 0)) {
      ::_exit(126);
    }
    if (::chdir(cwd) != 0) ::_exit(126);
    ::execve(args[0], args.data(), env.data());
    ::_exit(127);
  }
  ::close(out[1]);
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof(buf))) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    output->append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

absl::Status PostgresServer::InitCluster() {
  std::string out;
  const int rc = Run({bin_dir_ + "/initdb", "-D", data_dir_, "-A", "trust",
                      "-U", "keyward", "--no-sync", "-E", "UTF8", "--locale=C"},
                     &out);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("initdb failed (exit ", rc, "):\n", Tail(out)));
  }
  // Speed over durability: the cluster lives as long as one test binary.
  // Commits still reach the WAL (in the OS's cache: fsync is off) before
  // they return, so that an immediate Stop() loses no committed work, as
  // with a real server.
  std::ofstream conf(data_dir_ + "/postgresql.conf", std::ios::app);
  conf << "\n# keyward::testing::PostgresServer\n"
       << "listen_addresses = '127.0.0.1'\n"
       << "unix_socket_directories = '" << dir_ << "'\n"
       << "fsync = off\nfull_page_writes = off\n"
       << "shared_buffers = 32MB\nmax_connections = 40\n";
  if (!conf.flush())
    return absl::InternalError("cannot append to postgresql.conf");
  return absl::OkStatus();
}

absl::Status PostgresServer::StartServer() {
  const std::string log = dir_ + "/postgres.log";
  std::string out;
  for (int attempt = 1;; ++attempt) {
    port_ = FreePort();
    out.clear();
    const int rc = StartOnPort(&out);
    if (rc == 0) break;
    const std::string server_log = ReadIfExists(log);
    // Another process took the port between FreePort() and the bind.
    const bool port_taken =
        absl::StrContains(server_log, "could not bind") ||
        absl::StrContains(server_log, "Address already in use");
    if (!port_taken || attempt == kStartAttempts) {
      return absl::InternalError(
          absl::StrCat("pg_ctl start on port ", port_, " failed (exit ", rc,
                       "):\n", Tail(out), "\nserver log:\n", Tail(server_log)));
    }
  }
  postmaster_ = ReadPidFile((data_dir_ + "/postmaster.pid").c_str());
  return absl::OkStatus();
}

int PostgresServer::StartOnPort(std::string* output) const {
  return Run({bin_dir_ + "/pg_ctl", "-D", data_dir_, "-l", dir_ + "/postgres.log", "-w", "-t",
              "60", "-o", absl::StrCat("-p ", port_), "start"},
             output);
}

absl::Status PostgresServer::Stop() {
  std::string out;
  const int rc = Run({bin_dir_ + "/pg_ctl", "-D", data_dir_, "-m", "immediate", "-w", "stop"},
                     &out);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("pg_ctl stop failed (exit ", rc, "):\n", Tail(out)));
  }
  postmaster_ = 0;
  return absl::OkStatus();
}

absl::Status PostgresServer::Restart() {
  std::string out;
  const int rc = StartOnPort(&out);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat(
        "pg_ctl start on port ", port_, " failed (exit ", rc, "):\n", Tail(out),
        "\nserver log:\n", Tail(ReadIfExists(dir_ + "/postgres.log"))));
  }
  postmaster_ = ReadPidFile((data_dir_ + "/postmaster.pid").c_str());
  return absl::OkStatus();
}

std::string PostgresServer::Url(const std::string& dbname) const {
  return absl::StrCat("postgresql://keyward@127.0.0.1:", port_, "/", dbname);
}

absl::StatusOr<std::string> PostgresServer::CreateDatabase(
    const std::string& name) {
  const bool valid =
      !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return absl::ascii_islower(static_cast<unsigned char>(c)) ||
               absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '_';
      });
  if (!valid) {
    return absl::InvalidArgumentError(
        absl::StrCat("database name \"", name, "\": use [a-z0-9_]+"));
  }
  std::string out;
  const int rc = Run({bin_dir_ + "/createdb", "-h", "127.0.0.1", "-p",
                      absl::StrCat(port_), "-U", "keyward", name},
                     &out);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("createdb ", name, " failed (exit ",
                                            rc, "): ", Tail(out)));
  }
  return Url(name);
}

absl::StatusOr<PostgresServer*> SharedPostgresServer() {
  // Destroyed at exit, which stops the server (as the watchdog does if the
  // binary dies instead).
  static absl::StatusOr<std::unique_ptr<PostgresServer>> server = [] {
    auto started = PostgresServer::Start();
    if (started.ok()) {
      std::fprintf(stderr, "PostgreSQL for tests: %s\n",
                   (*started)->Describe().c_str());
    }
    return started;
  }();
  if (!server.ok()) return server.status();
  return server->get();
}

std::string PostgresServer::Describe() const {
  return absl::StrCat(version_, " from ", bin_dir_, " on 127.0.0.1:", port_,
                      ", data in ", data_dir_, ", postmaster pid ", postmaster_,
                      switch_user_ ? ", running as user postgres" : "");
}

}  // namespace keyward::testing
