// `keyward key compromise`: contain a key version whose KEK may be known to
// someone else, and say what has to be re-encrypted (docs/operations.md,
// "Suspected key compromise").
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "cli/cli.h"
#include "nlohmann/json.hpp"

namespace keyward::cli {
namespace {

using Json = nlohmann::ordered_json;

std::string Time(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", t, absl::UTCTimeZone());
}

// The command that re-encrypts a data set with new data keys, from the
// name its report carries: "DB#TABLE.COLUMN" (a column of Keyward
// messages) or "DB#keyward_field_keys/DATASET" (a field table).  A full
// re-encryption, not a rewrap: whoever holds the compromised KEK and a copy
// of the old wrapped data keys could still unwrap those data keys, so the
// data needs new ones.  The database URL is shown as reported (passwords
// redacted): add the credentials back.
std::string ReencryptCommand(const std::string& data_set, const std::string& key) {
  const size_t hash = data_set.rfind('#');
  if (hash == std::string::npos) return "";
  const std::string db = data_set.substr(0, hash);
  const std::string what = data_set.substr(hash + 1);
  if (what.rfind("keyward_field_keys/", 0) == 0) {
    return absl::StrCat("keyward reencrypt --db ", db,
                        " --schema SCHEMA.yaml --table TABLE   # the tables of data set '",
                        what.substr(sizeof("keyward_field_keys/") - 1), "'");
  }
  const size_t dot = what.rfind('.');
  if (dot == std::string::npos) return "";
  return absl::StrCat("keyward reencrypt --db ", db, " --table ", what.substr(0, dot),
                      " --column ", what.substr(dot + 1), " --key ", key, " --mode full");
}

struct Args {
  std::string name;
  uint32_t version = 0;
  std::string reason;
};

absl::Status Run(Globals& globals, const Args& args) {
  if (args.reason.empty()) {
    return UsageError("--reason is required: an incident id and one line, kept with the version");
  }
  KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
  KW_ASSIGN_OR_RETURN(CompromiseInfo r,
                      client->CompromiseVersion(args.name, args.version, args.reason));
  const KeyVersionInfo* v = nullptr;
  for (const KeyVersionInfo& each : r.key.versions) {
    if (each.version == args.version) v = &each;
  }
  Json sets = Json::array();
  for (const DataSetReportInfo& d : r.data_sets) {
    const auto rows = d.rows_per_version.find(args.version);
    sets.push_back({{"data_set", d.data_set},
                    {"rows_on_version", rows == d.rows_per_version.end() ? 0 : rows->second},
                    {"rows_total", d.rows_total},
                    {"reported", Time(d.reported)},
                    {"reported_by", d.reported_by},
                    {"reencrypt", ReencryptCommand(d.data_set, args.name)}});
  }
  if (globals.json) {
    Json j = {{"key", args.name},
              {"version", args.version},
              {"already_compromised", r.already_compromised},
              {"new_primary_version", r.new_primary_version},
              {"primary_version", r.key.primary_version},
              {"data_sets", sets},
              {"key_info", KeyToJson(r.key)}};
    std::printf("%s\n", j.dump().c_str());
    return absl::OkStatus();
  }
  if (r.already_compromised) {
    std::printf("key %s version %u was already declared compromised; nothing changed.\n",
                args.name.c_str(), args.version);
  } else {
    std::printf("key %s version %u is now COMPROMISED.\n", args.name.c_str(), args.version);
  }
  if (v != nullptr && v->compromised) {
    std::printf("  declared     %s by %s: %s\n", Time(*v->compromised).c_str(),
                v->compromised_by.c_str(), v->compromise_reason.c_str());
    std::printf("  state        %s\n", std::string(KeyVersionStateName(v->state)).c_str());
  }
  if (r.new_primary_version != 0) {
    std::printf("  new primary  version %u (new data keys come from it)\n",
                r.new_primary_version);
  } else {
    std::printf("  primary      version %u (unchanged)\n", r.key.primary_version);
  }
  std::printf(
      "  It wraps no new data key.  It still decrypts, so that its data can be\n"
      "  re-encrypted: every such decrypt is flagged in the audit log and counted in\n"
      "  keyward_compromised_version_decrypts_total.\n\n");
  if (r.data_sets.empty()) {
    std::printf(
        "No data set report counts rows on version %u.  Data sets that never reported\n"
        "(no `keyward reencrypt` run yet) are unknown to keywardd: re-encrypt them with\n"
        "--mode full too.\n",
        args.version);
  } else {
    std::printf("Data sets still on version %u (their latest re-encryption reports):\n",
                args.version);
    for (size_t i = 0; i < r.data_sets.size(); ++i) {
      const DataSetReportInfo& d = r.data_sets[i];
      std::printf("  %s  %llu of %llu rows  (reported %s by %s)\n", d.data_set.c_str(),
                  static_cast<unsigned long long>(sets[i]["rows_on_version"].get<uint64_t>()),
                  static_cast<unsigned long long>(d.rows_total), Time(d.reported).c_str(),
                  d.reported_by.c_str());
      const std::string cmd = sets[i]["reencrypt"].get<std::string>();
      if (!cmd.empty()) std::printf("    %s\n", cmd.c_str());
    }
  }
  std::printf(
      "\nThen, once every data set reports 0 rows on version %u:\n"
      "  keyward key disable-version %s %u\n"
      "  keyward key destroy-version %s %u\n"
      "Runbook: docs/operations.md, \"Suspected key compromise\".\n",
      args.version, args.name.c_str(), args.version, args.name.c_str(), args.version);
  return absl::OkStatus();
}

}  // namespace

void RegisterCompromiseCommands(CLI::App& app, Globals& globals, Action& action) {
  static Args args;
  CLI::App* key = app.get_subcommand("key");
  auto* cmd = key->add_subcommand(
      "compromise",
      "Declare a key version compromised, at once and for good: it stops\n"
      "wrapping new data keys (a new primary version replaces it), stays able\n"
      "to decrypt so its data can be re-encrypted (each such decrypt flagged),\n"
      "and is marked in `key describe`, /metrics and the audit log.  Lists the\n"
      "data sets still on it and the commands that re-encrypt them.");
  cmd->add_option("NAME", args.name, "key name")->required();
  cmd->add_option("--version", args.version, "the compromised version")->required();
  cmd->add_option("--reason", args.reason,
                  "why: an incident id and one line (kept with the version, audited)")
      ->required();
  cmd->add_flag("--json", globals.json, "print one JSON object");
  cmd->callback([&globals, &action] {
    action = [&globals] { return Run(globals, args); };
  });
}

}  // namespace keyward::cli
