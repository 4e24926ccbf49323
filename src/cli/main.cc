// keyward: the Keyward command line.  docs/cli.md documents every command
// and the exit codes.
#include <openssl/opensslv.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "cli/cli.h"
#include "cli/files.h"
#include "keyward/errors.h"
#include "keyward/version.h"
#include "nlohmann/json.hpp"

namespace keyward::cli {
namespace {

constexpr char kUsagePayload[] = "type.keyward.dev/keyward.cli.Usage";
constexpr char kExitPayload[] = "type.keyward.dev/keyward.cli.Exit";

}  // namespace

absl::Status ExitWith(int code) {
  absl::Status status = absl::UnknownError("");
  status.SetPayload(kExitPayload, absl::Cord(std::to_string(code)));
  return status;
}

absl::Status UsageError(const std::string& message) {
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kUsagePayload, absl::Cord("1"));
  return status;
}

bool Globals::HasConfig() const {
  return !config_path.empty() || std::getenv("KEYWARD_CONFIG") != nullptr;
}

absl::StatusOr<ClientOptions> Globals::Options() const {
  std::string path = config_path;
  if (path.empty()) {
    const char* env = std::getenv("KEYWARD_CONFIG");
    if (env == nullptr || *env == '\0') {
      return UsageError(
          "this command talks to keywardd: pass --config FILE or set "
          "KEYWARD_CONFIG (`keyward dev init DIR` writes DIR/admin.yaml)");
    }
    path = env;
  }
  return LoadClientConfig(path);
}

absl::StatusOr<std::shared_ptr<DataClient>> Globals::SharedData() {
  if (!connection) {
    auto options = Options();
    if (!options.ok()) return options.status();
    auto opened = Connection::Open(*options);
    if (!opened.ok()) return opened.status();
    connection = std::move(*opened);
  }
  if (!data) data = std::make_shared<DataClient>(connection);
  return data;
}

absl::StatusOr<DataClient*> Globals::Data() {
  auto d = SharedData();
  if (!d.ok()) return d.status();
  return d->get();
}

absl::StatusOr<AdminClient*> Globals::Admin() {
  auto d = SharedData();  // opens the connection
  if (!d.ok()) return d.status();
  if (!admin) admin = std::make_shared<AdminClient>(connection);
  return admin.get();
}

int ExitCodeFor(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  if (status.GetPayload(kUsagePayload).has_value()) return kExitUsage;
  switch (GetErrorCode(status)) {
    case ErrorCode::kNotAKeywardMessage:
    case ErrorCode::kUnsupportedVersion:
    case ErrorCode::kUnsupportedSuite:
    case ErrorCode::kMalformedHeader:
    case ErrorCode::kLimitExceeded:
      return kExitBadInput;
    case ErrorCode::kTruncated:
    case ErrorCode::kTrailingData:
    case ErrorCode::kMalformedFrame:
    case ErrorCode::kCommitmentMismatch:
    case ErrorCode::kAuthenticationFailed:
      return kExitIntegrity;
    case ErrorCode::kContextMismatch:
    case ErrorCode::kKeyMismatch:
    case ErrorCode::kTenantErased:
    case ErrorCode::kNoKeyringCouldUnwrap:
    case ErrorCode::kEnvironmentMismatch:
    case ErrorCode::kAccessDenied:
      return kExitRefused;
    case ErrorCode::kIoError:
      return kExitIo;
    case ErrorCode::kAuditUnavailable:
      return kExitUnavailable;
    case ErrorCode::kMayHaveBeenApplied:
      return kExitFailure;
    case ErrorCode::kNone:
      break;
  }
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return kExitBadInput;
    case absl::StatusCode::kDataLoss:
      return kExitIntegrity;
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kFailedPrecondition:
      return kExitRefused;
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
      return kExitIo;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnavailable;
    default:
      return kExitFailure;
  }
}

namespace {

std::string VersionLine() {
  return absl::StrCat("keyward ", kVersion, " (message format v1, ",
                      OPENSSL_VERSION_TEXT, ")");
}

int Main(int argc, char** argv) {
  InstallSignalHandlers();
  CLI::App app{
      "keyward: envelope encryption with HSM-rooted keys.\n"
      "Exit codes: 0 ok, 1 failure, 2 usage, 3 bad input, 4 integrity,\n"
      "5 refused, 6 I/O, 7 keywardd unavailable (docs/cli.md).",
      "keyward"};
  app.require_subcommand(1);
  app.set_version_flag("--version", VersionLine());
  Globals globals;
  Action action;

  static bool version_json = false;
  auto* version = app.add_subcommand("version", "Print the version");
  version->add_flag("--json", version_json, "print one JSON object");
  version->callback([&action] {
    action = [] {
      if (version_json) {
        std::printf("%s\n", nlohmann::json{{"version", kVersion},
                                           {"message_format", 1},
                                           {"openssl", OPENSSL_VERSION_TEXT}}
                                .dump()
                                .c_str());
      } else {
        std::printf("%s\n", VersionLine().c_str());
      }
      return absl::OkStatus();
    };
  });
  app.add_option("--config", globals.config_path,
                 "client config for keywardd (default: $KEYWARD_CONFIG)");
  RegisterOfflineCommands(app, globals, action);
  RegisterKeyCommands(app, globals, action);
  RegisterAccessCommands(app, globals, action);
  RegisterAuditCommands(app, globals, action);
  RegisterBreakGlassCommands(app, globals, action);
  RegisterRotationCommands(app, globals, action);
  RegisterFieldCommands(app, globals, action);
  RegisterIndexCommands(app, globals, action);
  RegisterCompromiseCommands(app, globals, action);
  RegisterDoctorCommands(app, globals, action);
  RegisterInventoryCommands(app, globals, action);
  RegisterClassifyCommands(app, globals, action);
  RegisterDevCommands(app, globals, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  if (!action) return kExitUsage;
  absl::Status status = action();
  if (auto code = status.GetPayload(kExitPayload); code.has_value()) {
    return std::atoi(std::string(*code).c_str());
  }
  if (!status.ok()) {
    std::fprintf(stderr, "keyward: %s\n", std::string(status.message()).c_str());
    return ExitCodeFor(status);
  }
  return kExitOk;
}

}  // namespace
}  // namespace keyward::cli

int main(int argc, char** argv) { return keyward::cli::Main(argc, argv); }
