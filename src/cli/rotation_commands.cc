// Rotation commands: `keyward reencrypt`, `keyward key versions`,
// `keyward rotation drill` (docs/rotation.md).
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "cli/cli.h"
#include "keyward/errors.h"
#include "keyward/message.h"
#include "nlohmann/json.hpp"
#include "reencrypt/database_table.h"
#include "reencrypt/job.h"

namespace keyward::cli {
namespace {

using Json = nlohmann::ordered_json;

std::string Time(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", t, absl::UTCTimeZone());
}

struct ReencryptArgs {
  std::string db, table, column, id_column = "id", key, mode = "rewrap", schema;
  int batch = 500;
  double rate = 0;
  bool dry_run = false;
};

absl::Status RunReencrypt(Globals& globals, const ReencryptArgs& a) {
  if (!a.schema.empty()) {
    if (!a.column.empty() || !a.key.empty() || a.mode != "rewrap") {
      return UsageError("with --schema the schema names the columns and the key: drop --column, "
                        "--key and --mode");
    }
    return RunFieldReencrypt(globals, a.schema, a.db, a.table, a.batch, a.rate, a.dry_run);
  }
  if (a.column.empty()) {
    return UsageError("name the column of Keyward messages (--column), or pass --schema for a "
                      "table of encrypted fields");
  }
  reencrypt::JobOptions o;
  o.key = a.key;
  if (a.mode == "rewrap") {
    o.mode = reencrypt::Mode::kRewrap;
  } else if (a.mode == "full") {
    o.mode = reencrypt::Mode::kFull;
  } else {
    return UsageError("--mode is rewrap or full");
  }
  if (a.batch < 1 || a.batch > 10000) return UsageError("--batch is 1..10000");
  if (a.rate < 0) return UsageError("--rate must not be negative");
  o.batch = static_cast<size_t>(a.batch);
  o.rate = a.rate;
  o.dry_run = a.dry_run;
  if (!absl::StartsWith(a.db, "sqlite:") && !absl::StartsWith(a.db, "postgresql://") &&
      !absl::StartsWith(a.db, "postgres://")) {
    return UsageError("--db is sqlite:PATH or postgresql://USER@HOST[:PORT]/DBNAME");
  }
  if (absl::AsciiStrToLower(a.id_column) == absl::AsciiStrToLower(a.column)) {
    return UsageError(absl::StrCat(
        "--id-column '", a.id_column, "' is the column being re-encrypted; name the table's "
        "unique id column (an INTEGER PRIMARY KEY, or a unique TEXT key)"));
  }
  KW_ASSIGN_OR_RETURN(auto table,
                      reencrypt::DatabaseTable::Open(a.db, a.table, a.column, a.id_column));
  KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
  KW_ASSIGN_OR_RETURN(std::shared_ptr<DataClient> data, globals.SharedData());
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  bool drawn = false;
  if (tty) {
    o.progress = [&](const reencrypt::JobOptions::Progress& p) {
      const double pct = p.total > 0 ? 100.0 * p.done / p.total : 100.0;
      std::fprintf(stderr, "\r%s %3.0f%%  %llu of %llu rows  %.0f rows/s  %s   ",
                   a.dry_run ? "checking" : "reencrypt", pct > 100 ? 100.0 : pct,
                   static_cast<unsigned long long>(p.done),
                   static_cast<unsigned long long>(p.total), p.rows_per_s,
                   p.eta_s < 0 ? "ETA ?" : absl::StrFormat("ETA %.0fs", p.eta_s).c_str());
      drawn = true;
    };
  }
  auto report = reencrypt::RunJob(std::move(data), *client, *table, o);
  if (drawn) std::fprintf(stderr, "\r\033[K");
  KW_RETURN_IF_ERROR(report.status());
  const reencrypt::Report& r = *report;
  if (globals.json) {
    Json versions = Json::object();
    for (const auto& [key, vs] : r.rows_per_version) {
      Json per = Json::object();
      for (const auto& [v, n] : vs) per[std::to_string(v)] = n;
      versions[key] = per;
    }
    Json j = {{"data_set", r.data_set},
              {"mode", a.mode},
              {"dry_run", a.dry_run},
              {"resumed", r.resumed},
              {"rows", r.rows},
              {"scanned", r.scanned},
              {"changed", r.changed},
              {"already_current", r.already_current},
              {"other_keys", r.other_keys},
              {"unknown_keys", r.unknown_keys},
              {"report_failures", r.report_failures},
              {"not_messages", r.not_messages},
              {"failed", r.failed},
              {"conflicts", r.conflicts},
              {"first_failure", r.first_failure},
              {"seconds", r.seconds},
              {"rows_per_second", r.seconds > 0 ? r.scanned / r.seconds : 0},
              {"rows_per_version", versions}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s %s (%s%s)%s: %llu rows; %llu %s, %llu already current, %llu under other "
                "keys, %llu under keys keywardd does not have, %llu not messages, %llu failed, "
                "%llu changed by others meanwhile; %.1f s (%.0f rows/s)\n",
                a.dry_run ? "dry run of" : "reencrypted", r.data_set.c_str(), a.mode.c_str(),
                a.key.empty() ? "" : (", key " + a.key).c_str(),
                r.resumed ? " resumed from its checkpoint" : "",
                static_cast<unsigned long long>(r.rows),
                static_cast<unsigned long long>(r.changed),
                a.dry_run ? "would change" : "changed",
                static_cast<unsigned long long>(r.already_current),
                static_cast<unsigned long long>(r.other_keys),
                static_cast<unsigned long long>(r.unknown_keys),
                static_cast<unsigned long long>(r.not_messages),
                static_cast<unsigned long long>(r.failed),
                static_cast<unsigned long long>(r.conflicts), r.seconds,
                r.seconds > 0 ? r.scanned / r.seconds : 0.0);
    std::printf("rows per key version now:\n");
    for (const auto& [key, vs] : r.rows_per_version) {
      std::vector<std::string> parts;
      for (const auto& [v, n] : vs) parts.push_back(absl::StrCat("v", v, ": ", n));
      std::printf("  %s  %s\n", key.c_str(), absl::StrJoin(parts, "  ").c_str());
    }
    if (!a.dry_run) std::printf("reported to keywardd for the retirement gate\n");
  }
  if (!r.report_failures.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the rows were processed, but keywardd refused the data set report for ",
        absl::StrJoin(r.report_failures, "; "),
        " — that key's retirement gate has no evidence from this run"));
  }
  if (r.failed > 0) {
    return absl::AbortedError(absl::StrCat(
        r.failed, " row(s) could not be re-encrypted and were left as they were (first: ",
        r.first_failure, "); fix the cause and run the same command again"));
  }
  return absl::OkStatus();
}

absl::Status RunVersions(Globals& globals, const std::string& name) {
  KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
  KW_ASSIGN_OR_RETURN(KeyInfo key, client->GetKey(name));
  KW_ASSIGN_OR_RETURN(auto sets, client->ListDataSets(name));
  if (globals.json) {
    Json versions = Json::array();
    for (const KeyVersionInfo& v : key.versions) {
      Json rows = Json::object();
      for (const auto& s : sets) {
        auto it = s.rows_per_version.find(v.version);
        rows[s.data_set] = it == s.rows_per_version.end() ? 0 : it->second;
      }
      versions.push_back({{"version", v.version},
                          {"state", std::string(KeyVersionStateName(v.state))},
                          {"primary", v.version == key.primary_version},
                          {"created", Time(v.created)},
                          {"data_keys_issued", v.data_keys_issued},
                          {"decrypts", v.decrypts},
                          {"last_decrypt", v.last_decrypt ? Json(Time(*v.last_decrypt)) : Json(nullptr)},
                          {"rows", rows}});
    }
    Json data_sets = Json::array();
    for (const auto& s : sets) {
      data_sets.push_back({{"data_set", s.data_set},
                           {"reported", Time(s.reported)},
                           {"reported_by", s.reported_by},
                           {"rows_total", s.rows_total}});
    }
    std::printf("%s\n", Json{{"key", name}, {"versions", versions}, {"data_sets", data_sets}}
                            .dump()
                            .c_str());
    return absl::OkStatus();
  }
  std::printf("%-8s %-20s %-24s %10s %-24s", "VERSION", "STATE", "CREATED", "DATA KEYS",
              "LAST DECRYPT");
  for (size_t i = 0; i < sets.size(); ++i) std::printf(" %12s", absl::StrCat("ROWS[", i + 1, "]").c_str());
  std::printf("\n");
  for (const KeyVersionInfo& v : key.versions) {
    std::string state(KeyVersionStateName(v.state));
    if (v.version == key.primary_version) state += " (primary)";
    std::printf("%-8u %-20s %-24s %10llu %-24s", v.version, state.c_str(), Time(v.created).c_str(),
                static_cast<unsigned long long>(v.data_keys_issued),
                v.last_decrypt ? Time(*v.last_decrypt).c_str() : "never");
    for (const auto& s : sets) {
      auto it = s.rows_per_version.find(v.version);
      std::printf(" %12llu", static_cast<unsigned long long>(
                                 it == s.rows_per_version.end() ? 0 : it->second));
    }
    std::printf("\n");
  }
  if (sets.empty()) {
    std::printf("\nno data sets reported yet (run `keyward reencrypt ... --key %s`)\n",
                name.c_str());
  } else {
    std::printf("\n");
    for (size_t i = 0; i < sets.size(); ++i) {
      std::printf("ROWS[%zu] %s (reported %s by %s)\n", i + 1, sets[i].data_set.c_str(),
                  Time(sets[i].reported).c_str(), sets[i].reported_by.c_str());
    }
  }
  return absl::OkStatus();
}

absl::Status RunDrill(Globals& globals, const std::string& name) {
  KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
  KW_ASSIGN_OR_RETURN(DataClient * data, globals.Data());
  KW_ASSIGN_OR_RETURN(auto samples, client->GetDrillSamples(name));
  int failed = 0, checked = 0, missing = 0;
  Json results = Json::array();
  for (const DrillSampleInfo& s : samples) {
    std::string outcome;
    bool ok = true;
    const std::string state(KeyVersionStateName(s.state));
    if (!CanDecrypt(s.state)) {
      outcome = absl::StrCat("not checked (", state, ")");
    } else if (s.message.empty()) {
      outcome = "no sample (the version predates rotation drills)";
      ++missing;
    } else {
      ++checked;
      auto info = InspectMessage(s.message);
      auto pt = info.ok() ? data->Decrypt(s.message, info->context)
                          : absl::StatusOr<SecretData>(info.status());
      if (!pt.ok()) {
        ok = false;
        outcome = absl::StrCat("FAILED: ", pt.status().message());
      } else if (pt->AsStringView() != s.expected_plaintext) {
        ok = false;
        outcome = "FAILED: decrypted to something else than the sample's plaintext";
      } else {
        outcome = "ok: the sample decrypts";
      }
    }
    if (!ok) ++failed;
    if (globals.json) {
      results.push_back({{"version", s.version}, {"state", state}, {"ok", ok},
                         {"result", outcome}});
    } else {
      std::printf("  version %-4u %-20s %s\n", s.version, state.c_str(), outcome.c_str());
    }
  }
  if (globals.json) {
    std::printf("%s\n", Json{{"key", name}, {"checked", checked}, {"failed", failed},
                             {"missing_samples", missing}, {"versions", results}}
                            .dump()
                            .c_str());
  } else {
    std::printf("rotation drill for %s: %d version(s) checked, %d failed%s\n", name.c_str(),
                checked, failed,
                missing > 0 ? absl::StrCat(", ", missing, " without a sample").c_str() : "");
  }
  if (failed > 0) {
    return MakeError(absl::StatusCode::kDataLoss, ErrorCode::kAuthenticationFailed,
                     absl::StrCat("rotation drill: ", failed, " version(s) of ", name,
                                  " could not decrypt their sample; data under them may be "
                                  "unreadable — do not disable or destroy anything, and "
                                  "check the HSM and the key store"));
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterRotationCommands(CLI::App& app, Globals& globals, Action& action) {
  static ReencryptArgs args;
  auto* re = app.add_subcommand(
      "reencrypt",
      "Move every message in a table column to its key's primary version;\n"
      "with --schema, every encrypted field of a table (new data keys per\n"
      "class and tenant under the primary version, values re-encrypted).\n"
      "Resumable (checkpoint in the same database), idempotent, verifies\n"
      "each new ciphertext before committing its batch, safe to kill at any\n"
      "moment.  Ends with rows per key version, reported to keywardd for\n"
      "the retirement gate.  See docs/rotation.md.");
  re->add_option("--db", args.db,
                 "the database: sqlite:PATH or postgresql://USER@HOST[:PORT]/DBNAME")->required();
  re->add_option("--table", args.table, "table name")->required();
  re->add_option("--column", args.column,
                 "column holding Keyward messages (BLOB, or BYTEA in PostgreSQL)");
  re->add_option("--schema", args.schema,
                 "a classification schema: re-encrypt the table's encrypted fields");
  re->add_option("--id-column", args.id_column, "unique, ordered row id column (default id)");
  re->add_option("--key", args.key, "only messages under this key (default: all keys)");
  re->add_option("--mode", args.mode,
                 "rewrap (default): replace the wrapped data key, body untouched;\n"
                 "full: new data key and new body (retires data keys too)");
  re->add_option("--batch", args.batch, "rows per transaction (default 500)");
  re->add_option("--rate", args.rate, "at most this many rows per second (default: no limit)");
  re->add_flag("--dry-run", args.dry_run, "count what would change; write nothing");
  re->add_flag("--json", globals.json, "print the report as one JSON object");
  re->callback([&globals, &action] {
    action = [&globals] { return RunReencrypt(globals, args); };
  });

  static std::string versions_name;
  CLI::App* key = app.get_subcommand("key");
  auto* versions = key->add_subcommand(
      "versions",
      "Per version: state, created, data keys issued, last decrypt, and rows\n"
      "referencing it in every data set reported by `keyward reencrypt`.");
  versions->add_option("NAME", versions_name, "key name")->required();
  versions->add_flag("--json", globals.json, "print one JSON object");
  versions->callback([&globals, &action] {
    action = [&globals] { return RunVersions(globals, versions_name); };
  });

  static std::string drill_name;
  auto* rotation = app.add_subcommand("rotation", "Rotation checks");
  rotation->require_subcommand(1);
  auto* drill = rotation->add_subcommand(
      "drill",
      "Decrypt the sample message every usable version of NAME received\n"
      "when it was created, through keywardd, and report.  Exit 0 when all\n"
      "decrypt, 4 when any does not.  Run it on a schedule and in CI.");
  drill->add_option("NAME", drill_name, "key name")->required();
  drill->add_flag("--json", globals.json, "print one JSON object");
  drill->callback([&globals, &action] {
    action = [&globals] { return RunDrill(globals, drill_name); };
  });
}

}  // namespace keyward::cli
