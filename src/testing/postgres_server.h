// A throwaway PostgreSQL server for tests: a fresh cluster (initdb) in a
// temporary directory, listening on a free 127.0.0.1 port, with durability
// switched off for speed, and a database `keyward_test`.
//
//   KW_ASSERT_OK_AND_ASSIGN(auto pg, PostgresServer::Start());
//   auto db = appdb::Database::Open(pg->Url());
//
// PostgreSQL refuses to run as root: when the tests run as root the server
// runs as the `postgres` user (created by Debian's postgresql package).
//
// Cleanup: a watchdog process (forked at Start, in a session of its own)
// waits on a pipe from the test process; when the pipe closes, because the
// destructor ran or because the test process died in any way, even by
// SIGKILL, it stops the postmaster (SIGQUIT, the immediate shutdown that
// `pg_ctl stop -m immediate` sends; SIGKILL after 10 s) and removes the
// directory.  Only a watchdog killed with the test (say, `kill -9` of the
// whole process group) can leak a server; its directory under /tmp is named
// keyward-pg-*.
//
// Thread-safety: Start, CreateDatabase, Stop and Restart from one thread at
// a time.  The watchdog reads the postmaster's pid when it runs, so it
// stops a restarted server too.
#ifndef KEYWARD_TESTING_POSTGRES_SERVER_H_
#define KEYWARD_TESTING_POSTGRES_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace keyward::testing {

class PostgresServer {
 public:
  // Finds initdb, pg_ctl and postgres (PATH, then the newest
  // /usr/lib/postgresql/*/bin), creates the cluster, starts it and creates
  // `keyward_test`.  Errors: kFailedPrecondition when PostgreSQL is not
  // installed (run scripts/install-deps) or, as root, there is no `postgres`
  // user; kInternal when initdb, pg_ctl or createdb fail (with their output).
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start();
  // Stops the server and removes its directory; waits for both.
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // postgresql://keyward@127.0.0.1:PORT/DBNAME (trust authentication).
  std::string Url(const std::string& dbname = "keyward_test") const;
  // Creates database `name` ([a-z0-9_]+) and returns its URL.
  absl::StatusOr<std::string> CreateDatabase(const std::string& name);
  // Simulates an outage: stops the server at once (immediate shutdown, as
  // a crash would; clients see their connections drop) and keeps its data.
  // Errors: kInternal when pg_ctl fails (with its output).
  absl::Status Stop();
  // Starts the stopped server again on the same port with the same data
  // (crash recovery), waiting until it accepts connections.  Errors:
  // kInternal when pg_ctl fails, say because the port was taken meanwhile.
  absl::Status Restart();
  // Version, binaries, address, directory and postmaster pid, for logs.
  std::string Describe() const;

  int port() const { return port_; }
  // The temporary directory holding the cluster, its socket and its log.
  const std::string& dir() const { return dir_; }
  pid_t postmaster_pid() const { return postmaster_; }

 private:
  PostgresServer() = default;
  absl::Status StartWatchdog();
  absl::Status InitCluster();
  absl::Status StartServer();
  // pg_ctl start on port_; returns its exit code, output and server log.
  int StartOnPort(std::string* output) const;
  // Runs `argv` (as the postgres user when we are root) in the server's
  // directory; returns its exit code and puts stdout+stderr in `output`.
  int Run(const std::vector<std::string>& argv, std::string* output) const;

  std::string bin_dir_;
  std::string version_;
  std::string dir_;
  std::string data_dir_;
  int port_ = 0;
  pid_t postmaster_ = 0;
  bool switch_user_ = false;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  pid_t watchdog_ = -1;
  int watchdog_pipe_ = -1;  // write end; closing it stops the server
};

// One server for the whole test binary, started on first use and stopped
// when the binary exits.  Every call after a failed start returns the same
// error (tests then fail, naming it).
absl::StatusOr<PostgresServer*> SharedPostgresServer();

}  // namespace keyward::testing

#endif  // KEYWARD_TESTING_POSTGRES_SERVER_H_
