// A real keywardd for end-to-end tests: `keyward dev init` into a temporary
// directory on free loopback ports, keywardd started as a child process and
// waited for, stopped with SIGTERM (or killed) on demand and at the end.
#ifndef KEYWARD_TESTING_DEV_SERVER_H_
#define KEYWARD_TESTING_DEV_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "testing/subprocess.h"

namespace keyward::testing {

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

class DevServer {
 public:
  // Runs `keyward dev init` (does not start keywardd).
  static absl::StatusOr<std::unique_ptr<DevServer>> Init(const std::string& keyward,
                                                         const std::string& keywardd);
  ~DevServer();

  // Another keywardd over this one's dev directory (certificates, SoftHSM
  // token, policy file), as replica `id` of the PostgreSQL key store at
  // `postgres_url`, with its audit log there, on ports of its own, its
  // rotation scheduler checking every second.  Its
  // config is DIR/ID.yaml and its clients' DIR/admin-ID.yaml and
  // DIR/app-ID.yaml (this replica alone; `servers` lists every replica
  // given).  The dev directory lives as long as any of them.  Does not
  // start it.
  absl::StatusOr<std::unique_ptr<DevServer>> AddReplica(const std::string& id,
                                                        const std::string& postgres_url,
                                                        absl::Duration lease_ttl = absl::Seconds(3));
  // Writes DIR/NAME.yaml: a client config for principal `who` ("admin",
  // "app") listing every server in `servers`; returns its path.
  absl::StatusOr<std::string> WriteClientConfig(const std::string& name, const std::string& who,
                                                const std::vector<const DevServer*>& servers) const;

  // Starts keywardd (with `extra_args` after --config) and waits until
  // /healthz answers (up to 20 s).
  absl::Status Start(const std::vector<std::string>& extra_args = {});
  // SIGTERM and wait; returns the exit status (0 on a clean stop).
  int Stop();
  void Kill();
  void Signal(int sig);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // The dev init directory (keywardd.yaml, certs/, ...).
  const std::string& dir() const { return dir_path_; }
  std::string File(const std::string& name) const { return dir_path_ + "/" + name; }
  std::string admin_config() const { return File(ClientConfigName("admin")); }
  std::string app_config() const { return File(ClientConfigName("app")); }
  // "keywardd.yaml", or "ID.yaml" for a replica.
  const std::string& config_name() const { return config_name_; }
  int port() const { return port_; }
  int http_port() const { return http_port_; }
  std::string log() const;
  // GET http://127.0.0.1:http_port/path → "<status> <body>".
  std::string HttpGet(const std::string& path) const;

  // Runs `keyward ARGS...` as admin (or with the given config).
  ProcessResult Cli(std::vector<std::string> args,
                    const std::string& config = "",
                    const std::string& stdin_data = "") const;

 private:
  DevServer() = default;
  std::string ClientConfigName(const std::string& who) const {
    return replica_id_.empty() ? who + ".yaml" : who + "-" + replica_id_ + ".yaml";
  }
  TempDir dir_;                       // this keywardd's log
  std::shared_ptr<TempDir> dev_dir_;  // the dev directory, shared with replicas
  std::string config_name_ = "keywardd.yaml";
  std::string replica_id_;
  std::string dir_path_;
  std::string keyward_, keywardd_;
  int port_ = 0, http_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace keyward::testing

#endif  // KEYWARD_TESTING_DEV_SERVER_H_
