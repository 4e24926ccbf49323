// Commands that talk to keywardd: key administration, rewrap, datakey,
// server-info.  Connection settings come from --config or KEYWARD_CONFIG.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/duration.h"
#include "base/status_macros.h"
#include "cli/cli.h"
#include "cli/files.h"
#include "cli/flags.h"
#include "format/header.h"
#include "keyward/encryptor.h"
#include "keyward/errors.h"
#include "nlohmann/json.hpp"

namespace keyward::cli {
namespace {

using Json = nlohmann::ordered_json;

std::string Time(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", t, absl::UTCTimeZone());
}

}  // namespace

Json KeyToJson(const KeyInfo& k) {
  Json versions = Json::array();
  for (const KeyVersionInfo& v : k.versions) {
    Json j = {{"version", v.version},
              {"state", std::string(KeyVersionStateName(v.state))},
              {"protection", std::string(KeyProtectionName(v.protection))},
              {"created", Time(v.created)},
              {"data_keys_issued", v.data_keys_issued},
              {"decrypts", v.decrypts},
              {"last_used", v.last_used ? Json(Time(*v.last_used)) : Json(nullptr)},
              {"last_decrypt", v.last_decrypt ? Json(Time(*v.last_decrypt)) : Json(nullptr)}};
    if (v.destroy_after) j["destroy_after"] = Time(*v.destroy_after);
    if (v.destroyed) j["destroyed"] = Time(*v.destroyed);
    if (v.compromised) {
      j["compromised"] = Time(*v.compromised);
      j["compromise_reason"] = v.compromise_reason;
      j["compromised_by"] = v.compromised_by;
    }
    versions.push_back(j);
  }
  Json labels = Json::object();
  for (const auto& [key, value] : k.labels) labels[key] = value;
  return Json{{"name", k.name},
              {"purpose", std::string(KeyPurposeName(k.purpose))},
              {"suite", std::string(SuiteName(k.suite))},
              {"environment", k.environment},
              {"labels", labels},
              {"rotation_period", FormatHumanDuration(k.rotation_period)},
              {"primary_version", k.primary_version},
              {"created", Time(k.created)},
              {"updated", Time(k.updated)},
              {"versions", versions}};
}

void PrintKey(const KeyInfo& k, bool json) {
  if (json) {
    std::printf("%s\n", KeyToJson(k).dump().c_str());
    return;
  }
  std::printf("key          %s\n", k.name.c_str());
  std::printf("environment  %s\n", k.environment.c_str());
  std::printf("purpose      %s\n", std::string(KeyPurposeName(k.purpose)).c_str());
  std::printf("suite        %s\n", std::string(SuiteName(k.suite)).c_str());
  std::printf("rotation     %s\n", k.rotation_period > absl::ZeroDuration()
                                       ? absl::StrCat("every ", FormatHumanDuration(k.rotation_period)).c_str()
                                       : "manual");
  std::vector<std::string> labels;
  for (const auto& [key, value] : k.labels) labels.push_back(key + "=" + value);
  std::printf("labels       %s\n", labels.empty() ? "-" : absl::StrJoin(labels, ", ").c_str());
  std::printf("created      %s\n", Time(k.created).c_str());
  std::printf("\n  %-8s %-20s %-16s %-24s %12s %10s  %s\n", "VERSION", "STATE",
              "PROTECTION", "CREATED", "DATA KEYS", "DECRYPTS", "NOTE");
  for (const KeyVersionInfo& v : k.versions) {
    std::string note = v.version == k.primary_version ? "primary" : "";
    if (v.destroy_after) note = "destroyed after " + Time(*v.destroy_after);
    if (v.destroyed) note = "destroyed " + Time(*v.destroyed);
    if (v.compromised) {
      note = absl::StrCat("COMPROMISED ", Time(*v.compromised), " by ", v.compromised_by, ": ",
                          v.compromise_reason, note.empty() ? "" : "; ", note);
    }
    std::printf("  %-8u %-20s %-16s %-24s %12llu %10llu  %s\n", v.version,
                std::string(KeyVersionStateName(v.state)).c_str(),
                std::string(KeyProtectionName(v.protection)).c_str(), Time(v.created).c_str(),
                static_cast<unsigned long long>(v.data_keys_issued),
                static_cast<unsigned long long>(v.decrypts), note.c_str());
  }
}

namespace {

void WarnForce() {
  std::fprintf(stderr,
               "keyward: warning: --force skips the retirement gate: data still under "
               "this version may become unreadable.  keywardd records who forced it.\n");
}

struct KeyArgs {
  std::string name;
  uint32_t version = 0;
  std::string rotation_period;
  std::vector<std::string> labels;
  std::vector<std::string> remove_labels;
  std::string protection;
  std::string suite;
  std::string prefix;
  std::string wait;
  bool force = false;
};

// Adds a subcommand NAME V that calls `call` and prints the key.
void AddVersionCommand(CLI::App* key, Globals& globals, Action& action,
                       const char* name, const char* help, KeyArgs& args,
                       absl::StatusOr<KeyInfo> (AdminClient::*call)(const std::string&,
                                                               uint32_t)) {
  auto* cmd = key->add_subcommand(name, help);
  cmd->add_option("NAME", args.name, "key name")->required();
  cmd->add_option("VERSION", args.version, "version number")->required();
  cmd->add_flag("--json", globals.json, "print one JSON object");
  cmd->callback([&globals, &action, &args, call] {
    action = [&globals, &args, call]() -> absl::Status {
      KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
      KW_ASSIGN_OR_RETURN(KeyInfo k, (client->*call)(args.name, args.version));
      PrintKey(k, globals.json);
      return absl::OkStatus();
    };
  });
}

absl::Status RunRewrap(Globals& globals, const std::vector<std::string>& files) {
  // Files under any key: each is rewrapped to its own key's primary.
  KW_ASSIGN_OR_RETURN(std::shared_ptr<DataClient> client, globals.SharedData());
  DiscoveryDecryptorOptions options;
  options.cache = false;
  KW_ASSIGN_OR_RETURN(auto rewrapper, DiscoveryDecryptor::Create(client, options));
  int failed = 0;
  Json results = Json::array();
  absl::Status first_error;
  for (const std::string& file : files) {
    absl::Status s = [&]() -> absl::Status {
      KW_ASSIGN_OR_RETURN(auto input, Input::Open(file));
      KW_ASSIGN_OR_RETURN(auto output, AtomicOutput::Create(file, 0644));
      KW_RETURN_IF_ERROR(rewrapper->RewrapStream(input->stream(), output->stream()));
      return output->Commit();
    }();
    // Verify what landed: its header parses and names the key's primary.
    std::string verdict = "rewrapped";
    if (s.ok()) {
      auto in = Input::Open(file);
      std::string authenticated;
      auto header = in.ok() ? format::ReadHeader((*in)->stream(), &authenticated)
                            : absl::StatusOr<format::Header>(in.status());
      if (!header.ok()) {
        s = header.status();
      } else {
        verdict = absl::StrCat("rewrapped to ", header->key.key_name, " version ",
                               header->key.key_version);
      }
    }
    if (!s.ok()) {
      ++failed;
      if (first_error.ok()) first_error = s;
      verdict = std::string(s.message());
    }
    if (globals.json) {
      results.push_back({{"file", file}, {"ok", s.ok()}, {"result", verdict}});
    } else {
      std::fprintf(s.ok() ? stdout : stderr, "%s: %s\n", file.c_str(), verdict.c_str());
    }
  }
  if (globals.json) std::printf("%s\n", results.dump().c_str());
  if (failed > 0) {
    return absl::Status(first_error.code(),
                        absl::StrCat(failed, " of ", files.size(),
                                     " file(s) could not be rewrapped; the others "
                                     "were (each file is replaced atomically)"));
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterKeyCommands(CLI::App& app, Globals& globals, Action& action) {
  static KeyArgs args;
  auto* key = app.add_subcommand("key", "Manage keys in keywardd");
  key->require_subcommand(1);

  auto* create = key->add_subcommand("create", "Create a key (version 1 becomes primary)");
  create->add_option("NAME", args.name, "path-like name, e.g. payments/card-numbers")
      ->required();
  create->add_option("--rotation-period", args.rotation_period,
                     "rotate automatically this often, e.g. 90d");
  create->add_option("--label", args.labels, "KEY=VALUE; repeatable");
  create->add_option("--protection", args.protection,
                     "wrapped-by-root (default) or hsm-resident");
  create->add_option("--suite", args.suite,
                     "message suite: aes-256-gcm (default), chacha20-poly1305, or\n"
                     "aes-256-gcm-ecdsa-p384 (every message signed; readers who can\n"
                     "decrypt cannot forge; docs/decisions/0017)");
  create->add_flag("--json", globals.json, "print one JSON object");
  create->callback([&globals, &action] {
    action = [&globals]() -> absl::Status {
      CreateKeyOptions o;
      KW_ASSIGN_OR_RETURN(o.labels, ParsePairs(args.labels, "--label"));
      if (!args.rotation_period.empty()) {
        KW_ASSIGN_OR_RETURN(o.rotation_period,
                            ParseDurationFlag(args.rotation_period, "--rotation-period"));
      }
      auto protection = ParseKeyProtection(args.protection);
      if (!protection.ok()) return UsageError(std::string(protection.status().message()));
      o.protection = *protection;
      if (args.suite == "aes-256-gcm") {
        o.suite = Suite::kAes256GcmHkdfSha256Commit;
      } else if (args.suite == "chacha20-poly1305") {
        o.suite = Suite::kChaCha20Poly1305HkdfSha256Commit;
      } else if (args.suite == "aes-256-gcm-ecdsa-p384") {
        o.suite = Suite::kAes256GcmHkdfSha256CommitEcdsaP384;
      } else if (!args.suite.empty()) {
        return UsageError(absl::StrCat("unknown --suite '", args.suite,
                                       "' (aes-256-gcm, chacha20-poly1305 or "
                                       "aes-256-gcm-ecdsa-p384)"));
      }
      KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
      KW_ASSIGN_OR_RETURN(KeyInfo k, client->CreateKey(args.name, o));
      PrintKey(k, globals.json);
      return absl::OkStatus();
    };
  });

  auto* list = key->add_subcommand("list", "List keys");
  list->add_option("--prefix", args.prefix, "only names starting with this");
  list->add_flag("--json", globals.json, "print JSON lines, one key per line");
  list->callback([&globals, &action] {
    action = [&globals]() -> absl::Status {
      KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
      std::string token;
      if (!globals.json) {
        std::printf("%-40s %-8s %-10s %s\n", "NAME", "PRIMARY", "VERSIONS", "ROTATION");
      }
      do {
        KW_ASSIGN_OR_RETURN(KeyList page, client->ListKeys(args.prefix, 500, token));
        for (const KeyInfo& k : page.keys) {
          if (globals.json) {
            std::printf("%s\n", KeyToJson(k).dump().c_str());
          } else {
            std::printf("%-40s %-8u %-10zu %s\n", k.name.c_str(), k.primary_version,
                        k.versions.size(),
                        k.rotation_period > absl::ZeroDuration()
                            ? FormatHumanDuration(k.rotation_period).c_str()
                            : "manual");
          }
        }
        token = page.next_page_token;
      } while (!token.empty());
      return absl::OkStatus();
    };
  });

  auto* describe = key->add_subcommand("describe", "Show a key and its versions");
  describe->add_option("NAME", args.name, "key name")->required();
  describe->add_flag("--json", globals.json, "print one JSON object");
  describe->callback([&globals, &action] {
    action = [&globals]() -> absl::Status {
      KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
      KW_ASSIGN_OR_RETURN(KeyInfo k, client->GetKey(args.name));
      PrintKey(k, globals.json);
      return absl::OkStatus();
    };
  });

  auto* rotate = key->add_subcommand(
      "rotate", "Add a version and make it primary; older versions keep decrypting");
  rotate->add_option("NAME", args.name, "key name")->required();
  rotate->add_flag("--json", globals.json, "print one JSON object");
  rotate->callback([&globals, &action] {
    action = [&globals]() -> absl::Status {
      KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
      KW_ASSIGN_OR_RETURN(KeyInfo k, client->RotateKey(args.name));
      PrintKey(k, globals.json);
      return absl::OkStatus();
    };
  });

  auto* update = key->add_subcommand("update", "Change a key's rotation period or labels");
  update->add_option("NAME", args.name, "key name")->required();
  update->add_option("--rotation-period", args.rotation_period, "e.g. 90d, or 0 for manual");
  update->add_option("--label", args.labels, "KEY=VALUE to set; repeatable");
  update->add_option("--remove-label", args.remove_labels, "label to remove; repeatable");
  update->add_flag("--json", globals.json, "print one JSON object");
  update->callback([&globals, &action] {
    action = [&globals]() -> absl::Status {
      KeyUpdate u;
      if (!args.rotation_period.empty()) {
        KW_ASSIGN_OR_RETURN(u.rotation_period,
                            ParseDurationFlag(args.rotation_period, "--rotation-period"));
      }
      KW_ASSIGN_OR_RETURN(u.set_labels, ParsePairs(args.labels, "--label"));
      u.remove_labels = args.remove_labels;
      KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
      KW_ASSIGN_OR_RETURN(KeyInfo k, client->UpdateKey(args.name, u));
      PrintKey(k, globals.json);
      return absl::OkStatus();
    };
  });

  AddVersionCommand(key, globals, action, "enable-version",
                    "Let a version decrypt again (and be eligible as primary)", args,
                    &AdminClient::EnableVersion);
  auto* disable = key->add_subcommand(
      "disable-version",
      "Stop a version from decrypting (not the primary).  Refused while the\n"
      "retirement gate sees it still referenced: rows on it in a data set's\n"
      "latest re-encryption report, or a decrypt within the quiet period\n"
      "(see `keyward key versions NAME`).");
  disable->add_option("NAME", args.name, "key name")->required();
  disable->add_option("VERSION", args.version, "version number")->required();
  disable->add_flag("--force", args.force,
                    "go past the retirement gate (warns; audited)");
  disable->add_flag("--json", globals.json, "print one JSON object");
  disable->callback([&globals, &action] {
    action = [&globals]() -> absl::Status {
      if (args.force) WarnForce();
      KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
      KW_ASSIGN_OR_RETURN(KeyInfo k, client->DisableVersion(args.name, args.version, args.force));
      PrintKey(k, globals.json);
      return absl::OkStatus();
    };
  });
  AddVersionCommand(key, globals, action, "set-primary",
                    "Make an enabled version primary (undo a rotation)", args,
                    &AdminClient::SetPrimaryVersion);
  AddVersionCommand(key, globals, action, "cancel-destroy",
                    "Cancel a scheduled destruction (the version becomes disabled)",
                    args, &AdminClient::CancelVersionDestruction);

  auto* destroy = key->add_subcommand(
      "destroy-version",
      "Schedule a version's destruction after a waiting period (default 30d).\n"
      "Until then it refuses to decrypt and can be cancelled with\n"
      "cancel-destroy; afterwards its key material is erased for good.");
  destroy->add_option("NAME", args.name, "key name")->required();
  destroy->add_option("VERSION", args.version, "version number")->required();
  destroy->add_option("--wait", args.wait, "waiting period, e.g. 30d");
  destroy->add_flag("--force", args.force,
                    "go past the retirement gate, and allow destroying the last\n"
                    "version that can decrypt (crypto-shreds everything under the key);\n"
                    "warns; audited");
  destroy->add_flag("--json", globals.json, "print one JSON object");
  destroy->callback([&globals, &action] {
    action = [&globals]() -> absl::Status {
      // Given, it is checked against the server's minimum like any other
      // wait: `--wait 0s` is refused, never read as "the default".
      std::optional<absl::Duration> wait;
      if (!args.wait.empty()) {
        KW_ASSIGN_OR_RETURN(wait, ParseDurationFlag(args.wait, "--wait"));
      }
      if (args.force) WarnForce();
      KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
      KW_ASSIGN_OR_RETURN(KeyInfo k, client->ScheduleVersionDestruction(
                                         args.name, args.version, wait, args.force));
      PrintKey(k, globals.json);
      return absl::OkStatus();
    };
  });

  static std::vector<std::string> rewrap_files;
  auto* rewrap = app.add_subcommand(
      "rewrap",
      "Move messages to their key's primary version by replacing their\n"
      "wrapped data keys (inside keywardd); bodies are untouched and each\n"
      "file is replaced atomically.");
  rewrap->add_option("FILE", rewrap_files, "message files")->required();
  rewrap->add_flag("--json", globals.json, "print a JSON array of results");
  rewrap->callback([&globals, &action] {
    action = [&globals] { return RunRewrap(globals, rewrap_files); };
  });

  static std::string datakey_name;
  static std::vector<std::string> datakey_context;
  auto* datakey = app.add_subcommand(
      "datakey",
      "Print a new data key (plaintext and wrapped, base64, as JSON).\n"
      "For testing and integration work: the plaintext key is printed.");
  datakey->add_option("--key", datakey_name, "KMS key name")->required();
  datakey->add_option("--context", datakey_context, "KEY=VALUE; repeatable");
  datakey->callback([&globals, &action] {
    action = [&globals]() -> absl::Status {
      KW_ASSIGN_OR_RETURN(auto ctx, ParsePairs(datakey_context, "--context"));
      KW_ASSIGN_OR_RETURN(DataClient * client, globals.Data());
      KW_ASSIGN_OR_RETURN(GeneratedDataKey dk, client->GenerateDataKey(datakey_name, ctx));
      Json j = {{"plaintext", absl::Base64Escape(dk.plaintext.AsStringView())},
                {"wrapped", absl::Base64Escape(dk.encrypted.ciphertext)},
                {"key", {{"environment", dk.key.environment},
                         {"name", dk.key.key_name},
                         {"version", dk.key.key_version}}}};
      std::printf("%s\n", j.dump().c_str());
      return absl::OkStatus();
    };
  });

  auto* info = app.add_subcommand("server-info",
                                  "Show the server's environment, version and HSM, and "
                                  "who you are to it");
  info->add_flag("--json", globals.json, "print one JSON object");
  info->callback([&globals, &action] {
    action = [&globals]() -> absl::Status {
      KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
      KW_ASSIGN_OR_RETURN(ServerInfo s, client->GetServerInfo());
      if (globals.json) {
        std::printf("%s\n", Json{{"environment", s.environment},
                                 {"version", s.version},
                                 {"suites", s.suites},
                                 {"hsm", s.hsm},
                                 {"hsm_software", s.hsm_software},
                                 {"principal", s.principal},
                                 {"audit_checkpoint_key_fingerprint",
                                  s.audit_checkpoint_key_fingerprint}}
                                .dump()
                                .c_str());
      } else {
        std::printf("environment  %s\nversion      %s\nhsm          %s%s\n"
                    "suites       %s\nyou are      %s\naudit key    %s\n",
                    s.environment.c_str(), s.version.c_str(), s.hsm.c_str(),
                    s.hsm_software ? " [software token]" : "",
                    absl::StrJoin(s.suites, ", ").c_str(), s.principal.c_str(),
                    s.audit_checkpoint_key_fingerprint.c_str());
      }
      return absl::OkStatus();
    };
  });
}

}  // namespace keyward::cli
