// Shared pieces of the `keyward` command line: exit codes, errors, and the
// registration hooks of each command group.
#ifndef KEYWARD_CLI_CLI_H_
#define KEYWARD_CLI_CLI_H_

#include <functional>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "keyward/admin_client.h"
#include "keyward/connection.h"
#include "keyward/data_client.h"
#include "nlohmann/json.hpp"

namespace keyward::cli {

// Documented in docs/cli.md; scripts rely on them.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,      // anything not listed below
  kExitUsage = 2,        // bad flags or arguments
  kExitBadInput = 3,     // not a Keyward message, malformed, unsupported
  kExitIntegrity = 4,    // authentication, commitment, truncation
  kExitRefused = 5,      // no key could open it, context or environment
  kExitIo = 6,           // a file could not be read or written
  kExitUnavailable = 7,  // keywardd could not be reached
};

int ExitCodeFor(const absl::Status& status);

// A status that makes `keyward` exit with `code` and print nothing more
// (the command printed its own report): `keyward doctor`'s 1 and 2.
absl::Status ExitWith(int code);

// A key as `key describe` shows it (key_commands.cc).
nlohmann::ordered_json KeyToJson(const KeyInfo& key);
void PrintKey(const KeyInfo& key, bool json);

// A status that makes `keyward` exit with kExitUsage.
absl::Status UsageError(const std::string& message);

// Set by the chosen subcommand; run after parsing.
using Action = std::function<absl::Status()>;

struct Globals {
  bool json = false;
  std::string config_path;  // --config, else $KEYWARD_CONFIG
  std::shared_ptr<Connection> connection;
  std::shared_ptr<DataClient> data;
  std::shared_ptr<AdminClient> admin;
  // Connect (once) using the client config and give the client of each
  // role over that one connection.  Errors: kNotFound when no config is
  // given, and whatever Connection::Open returns.
  absl::StatusOr<DataClient*> Data();
  absl::StatusOr<AdminClient*> Admin();
  absl::StatusOr<std::shared_ptr<DataClient>> SharedData();
  // The client config, read without connecting.
  absl::StatusOr<ClientOptions> Options() const;
  bool HasConfig() const;
};

void RegisterOfflineCommands(CLI::App& app, Globals& globals, Action& action);
void RegisterKeyCommands(CLI::App& app, Globals& globals, Action& action);
void RegisterDevCommands(CLI::App& app, Globals& globals, Action& action);
void RegisterAccessCommands(CLI::App& app, Globals& globals, Action& action);
void RegisterAuditCommands(CLI::App& app, Globals& globals, Action& action);
// `keyward breakglass` (docs/incident-response.md).
void RegisterBreakGlassCommands(CLI::App& app, Globals& globals, Action& action);
// `keyward schema`, `keyward fields`, `keyward tenant`.
void RegisterFieldCommands(CLI::App& app, Globals& globals, Action& action);
// The field mode of `keyward reencrypt` (--schema).
absl::Status RunFieldReencrypt(Globals& globals, const std::string& schema, const std::string& db,
                               const std::string& table, int batch, double rate, bool dry_run);
// After RegisterKeyCommands (adds `key versions`).
void RegisterRotationCommands(CLI::App& app, Globals& globals, Action& action);
void RegisterClassifyCommands(CLI::App& app, Globals& globals, Action& action);
// `keyward index` (plan; later rebuild, retire).
void RegisterIndexCommands(CLI::App& app, Globals& globals, Action& action);
// After RegisterKeyCommands (adds `key compromise`).
void RegisterCompromiseCommands(CLI::App& app, Globals& globals, Action& action);
// `keyward doctor` and `keyward inventory`.
void RegisterDoctorCommands(CLI::App& app, Globals& globals, Action& action);
void RegisterInventoryCommands(CLI::App& app, Globals& globals, Action& action);

}  // namespace keyward::cli

#endif  // KEYWARD_CLI_CLI_H_
