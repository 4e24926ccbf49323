// The throwaway PostgreSQL server's promises: it serves, it creates
// databases, and it leaves nothing behind, even when its test process is
// killed.
#include "testing/postgres_server.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace keyward::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Running and not a zombie (an orphaned postmaster that init has not reaped
// yet is gone for our purposes).
bool ProcessRunning(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(stat, line)) return false;
  const size_t paren = line.rfind(')');
  return paren == std::string::npos || line.substr(paren + 2, 1) != "Z";
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Waits up to 20 s for `done`.
template <typename Pred>
bool Eventually(Pred done) {
  for (int i = 0; i < 200; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

TEST(PostgresServer, ServesCreatesDatabasesAndCleansUp) {
  KW_ASSERT_OK_AND_ASSIGN(auto server, PostgresServer::Start());
  EXPECT_EQ(server->Url(), absl::StrCat("postgresql://keyward@127.0.0.1:",
                                        server->port(), "/keyward_test"));
  EXPECT_THAT(server->Describe(), HasSubstr("PostgreSQL"));
  KW_ASSERT_OK_AND_ASSIGN(std::string url, server->CreateDatabase("second_db"));
  EXPECT_THAT(url, StartsWith("postgresql://keyward@127.0.0.1:"));
  EXPECT_THAT(server->CreateDatabase("Bad-Name"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(server->CreateDatabase("second_db"),
              StatusIs(absl::StatusCode::kInternal));
  const pid_t postmaster = server->postmaster_pid();
  const std::string dir = server->dir();
  ASSERT_GT(postmaster, 0);
  EXPECT_TRUE(ProcessRunning(postmaster));
  EXPECT_TRUE(Exists(dir + "/data/PG_VERSION"));
  server.reset();
  EXPECT_FALSE(ProcessRunning(postmaster));
  EXPECT_FALSE(Exists(dir));
}

TEST(PostgresServer, AKilledTestProcessLeavesNoServer) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The "test process": starts a server, reports it, dies by SIGKILL.
    ::close(fds[0]);
    auto server = PostgresServer::Start();
    if (server.ok()) {
      const std::string line = absl::StrCat((*server)->postmaster_pid(), " ",
                                            (*server)->dir(), "\n");
      [[maybe_unused]] ssize_t n = ::write(fds[1], line.data(), line.size());
    }
    ::raise(SIGKILL);
    ::_exit(1);
  }
  ::close(fds[1]);
  std::string report;
  char buf[64];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof(buf))) > 0)
    report.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  const pid_t postmaster = std::atoi(report.c_str());
  ASSERT_GT(postmaster, 0) << "the child could not start a server";
  const std::string dir =
      report.substr(report.find(' ') + 1, report.size() - report.find(' ') - 2);
  ASSERT_THAT(dir, StartsWith("/tmp/keyward-pg-"));
  EXPECT_TRUE(Eventually([&] { return !ProcessRunning(postmaster); }))
      << "postmaster " << postmaster << " outlived its killed test process";
  EXPECT_TRUE(Eventually([&] { return !Exists(dir); }))
      << dir << " was left behind";
}

}  // namespace
}  // namespace keyward::testing
