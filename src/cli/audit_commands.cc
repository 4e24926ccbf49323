// `keyward audit verify|checkpoint|tail|query|export` (docs/audit.md).
// verify works offline on the log directory or the logs in PostgreSQL; the
// others ask keywardd.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "audit/audit_log.h"
#include "audit/verifier.h"
#include "base/status_macros.h"
#include "cli/audit_export.h"
#include "cli/cli.h"
#include "cli/files.h"
#include "cli/flags.h"
#include "crypto/signature.h"
#include "nlohmann/json.hpp"

namespace keyward::cli {
namespace {

using Json = nlohmann::ordered_json;

struct AuditArgs {
  std::string log_dir;
  std::string db_url;                // audit logs in PostgreSQL
  std::vector<std::string> log_ids;  // with db_url: only these
  std::string checkpoint;
  std::vector<std::string> checkpoint_keys;          // PEM files
  std::vector<std::string> checkpoint_fingerprints;  // hex
  std::string output;
  std::string since, until, principal, key, operation, decision;
  std::vector<std::string> context;
  int lines = 20;
  int limit = 100;
  bool follow = false;
  bool append = false;      // export
  std::string from_index;   // export
  std::string server;       // export
};

absl::StatusOr<AuditQuery> BuildQuery(const AuditArgs& a) {
  AuditQuery q;
  const absl::Time now = absl::Now();
  if (!a.since.empty()) {
    KW_ASSIGN_OR_RETURN(absl::Time t, ParseTimeFlag(a.since, "--since", now));
    q.since = t;
  }
  if (!a.until.empty()) {
    KW_ASSIGN_OR_RETURN(absl::Time t, ParseTimeFlag(a.until, "--until", now));
    q.until = t;
  }
  q.principal = a.principal;
  q.key = a.key;
  q.operation = a.operation;
  if (!a.decision.empty() && a.decision != "allow" && a.decision != "deny" &&
      a.decision != "none") {
    return UsageError("--decision is allow, deny or none");
  }
  q.decision = a.decision;
  KW_ASSIGN_OR_RETURN(q.context, ParsePairs(a.context, "--context"));
  return q;
}

// One record as a line for people:
// TIME  DECISION RESULT  PRINCIPAL  OPERATION  KEY[@vN]  (rule or detail)
std::string Human(const std::string& line) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object()) return line;
  auto str = [&](const char* k) {
    return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string();
  };
  std::string key = str("key");
  if (j.contains("version") && j["version"].is_number() && j["version"].get<uint64_t>() > 0) {
    absl::StrAppend(&key, "@v", j["version"].get<uint64_t>());
  }
  std::string why = str("rule").empty() ? str("detail") : "rule " + str("rule");
  if (!str("error_code").empty()) why = absl::StrCat(str("error_code"), " ", why);
  return absl::StrCat(str("time"), "  ", absl::StrFormat("%-5s %-18s", str("decision"), str("result")),
                      "  ", str("principal").empty() ? "-" : str("principal"), "  ",
                      str("operation"), "  ", key.empty() ? "-" : key,
                      why.empty() ? "" : "  (" + why + ")");
}

void PrintRecord(const std::string& line, bool json) {
  std::printf("%s\n", json ? line.c_str() : Human(line).c_str());
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  KW_ASSIGN_OR_RETURN(auto input, Input::Open(path));
  std::string text;
  uint8_t buf[8192];
  for (;;) {
    KW_ASSIGN_OR_RETURN(size_t n, input->stream().Read(absl::MakeSpan(buf)));
    if (n == 0) break;
    text.append(reinterpret_cast<const char*>(buf), n);
    if (text.size() > (1 << 20)) return UsageError(absl::StrCat(path, " is over 1 MiB"));
  }
  return text;
}

// The keys to trust, from the flags and else from the client config (the
// fingerprint `keyward dev init` writes there) — never from the log.
absl::StatusOr<audit::CheckpointTrust> Trust(Globals& globals, const AuditArgs& a) {
  audit::CheckpointTrust trust;
  for (const std::string& f : a.checkpoint_keys) {
    KW_ASSIGN_OR_RETURN(std::string pem, ReadSmallFile(f));
    trust.public_keys_pem.push_back(std::move(pem));
  }
  trust.fingerprints = a.checkpoint_fingerprints;
  if (trust.public_keys_pem.empty() && trust.fingerprints.empty() && globals.HasConfig()) {
    KW_ASSIGN_OR_RETURN(ClientOptions options, globals.Options());
    if (!options.audit_checkpoint_key_fingerprint.empty()) {
      trust.fingerprints.push_back(options.audit_checkpoint_key_fingerprint);
    }
  }
  return trust;
}

Json ReportJson(const audit::VerifyReport& r) {
  const double rate = r.seconds > 0 ? r.records / r.seconds : 0;
  Json j = {{"ok", r.ok},
            {"records", r.records},
            {"checkpoints", r.checkpoints},
            {"seconds", r.seconds},
            {"records_per_second", rate}};
  if (!r.ok) {
    j["problem"] = r.problem;
    j["first_bad_record"] = r.first_bad_record ? Json(*r.first_bad_record) : Json(nullptr);
  }
  return j;
}

std::string Failure(const audit::VerifyReport& r) {
  return absl::StrCat(r.problem, r.first_bad_record ? absl::StrCat(" (first bad record: ",
                                                                   *r.first_bad_record, ")")
                                                    : std::string());
}

void PrintOk(const std::string& what, const audit::VerifyReport& r,
             const std::optional<audit::SavedCheckpoint>& pinned) {
  const double rate = r.seconds > 0 ? r.records / r.seconds : 0;
  std::printf("%s: OK\n  %llu records chained and in the Merkle tree, %llu "
              "signed checkpoints valid%s\n  verified in %.2f s (%.0f records/s)\n",
              what.c_str(), static_cast<unsigned long long>(r.records),
              static_cast<unsigned long long>(r.checkpoints),
              pinned ? absl::StrCat(", consistent with your saved checkpoint of ",
                                    pinned->checkpoint.tree_size, " records")
                           .c_str()
                     : "",
              r.seconds, rate);
}

// `audit verify --db URL`: every log (one per keywardd replica), reported
// one by one; exit 4 when any fails.
absl::Status RunVerifyDatabase(const AuditArgs& a, const audit::CheckpointTrust& trust,
                               const std::optional<audit::SavedCheckpoint>& pinned, bool json) {
  if (pinned && a.log_ids.size() != 1) {
    return UsageError(
        "a saved checkpoint (--checkpoint) belongs to one replica's log: name it with "
        "--log-id ID");
  }
  KW_ASSIGN_OR_RETURN(std::vector<audit::LogVerifyReport> logs,
                      audit::VerifyAuditLogsInDatabase(a.db_url, a.log_ids, trust, pinned));
  std::vector<std::string> failed;
  Json all = Json::array();
  for (const audit::LogVerifyReport& l : logs) {
    if (!l.report.ok) failed.push_back(absl::StrCat("log ", l.log_id, ": ", Failure(l.report)));
    if (json) {
      Json j = ReportJson(l.report);
      j["log_id"] = l.log_id;
      all.push_back(std::move(j));
    } else if (l.report.ok) {
      PrintOk(absl::StrCat("audit log ", l.log_id), l.report, pinned);
    } else {
      std::printf("audit log %s: FAILED\n  %s\n", l.log_id.c_str(), Failure(l.report).c_str());
    }
  }
  if (json) {
    std::printf("%s\n", Json{{"ok", failed.empty()}, {"logs", all}}.dump().c_str());
  } else if (failed.empty()) {
    std::printf("all %zu audit logs OK\n", logs.size());
  }
  if (failed.empty()) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat(failed.size(), " of ", logs.size(),
                                          " audit logs FAILED verification: ",
                                          absl::StrJoin(failed, "; ")));
}

absl::Status RunVerify(Globals& globals, const AuditArgs& a, bool json) {
  if (a.log_dir.empty() == a.db_url.empty()) {
    return UsageError("audit verify checks either a log directory (--log DIR) or the logs in "
                      "PostgreSQL (--db URL): give one of them");
  }
  if (!a.log_ids.empty() && a.db_url.empty()) return UsageError("--log-id goes with --db URL");
  KW_ASSIGN_OR_RETURN(audit::CheckpointTrust trust, Trust(globals, a));
  std::optional<audit::SavedCheckpoint> pinned;
  if (!a.checkpoint.empty()) {
    KW_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(a.checkpoint));
    KW_ASSIGN_OR_RETURN(pinned, audit::ParseSavedCheckpoint(text));
  }
  if (trust.public_keys_pem.empty() && trust.fingerprints.empty() && !pinned) {
    return UsageError(
        "audit verify needs the checkpoint signing key from a source you trust, not from "
        "the log it checks: --checkpoint-key-fingerprint HEX (printed by `keyward dev init` "
        "and `keyward server-info`, written to the client config as "
        "audit.checkpoint_key_fingerprint), --checkpoint-key FILE, or --checkpoint FILE");
  }
  if (!a.db_url.empty()) return RunVerifyDatabase(a, trust, pinned, json);
  auto verified = audit::VerifyAuditLog(a.log_dir, trust, pinned);
  if (absl::IsDataLoss(verified.status())) {
    return absl::DataLossError(absl::StrCat("audit log ", a.log_dir,
                                            " FAILED verification: ",
                                            verified.status().message()));
  }
  KW_ASSIGN_OR_RETURN(audit::VerifyReport r, std::move(verified));
  if (json) {
    Json j = ReportJson(r);
    if (pinned) j["pinned_tree_size"] = pinned->checkpoint.tree_size;
    std::printf("%s\n", j.dump().c_str());
  } else if (r.ok) {
    PrintOk(absl::StrCat("audit log ", a.log_dir), r, pinned);
  }
  if (r.ok) return absl::OkStatus();
  return absl::DataLossError(
      absl::StrCat("audit log ", a.log_dir, " FAILED verification: ", Failure(r)));
}

absl::Status RunCheckpoint(Globals& globals, const AuditArgs& a) {
  KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
  KW_ASSIGN_OR_RETURN(AuditCheckpointInfo info, client->GetAuditCheckpoint(true));
  KW_ASSIGN_OR_RETURN(audit::Checkpoint c, audit::ParseCheckpoint(info.line));
  // Never save what does not verify: the signature under the key sent with
  // it, and that key's fingerprint as the checkpoint names it.
  KW_ASSIGN_OR_RETURN(std::string fingerprint, crypto::PublicKeyFingerprint(info.public_key_pem));
  if (fingerprint != c.key_fingerprint) {
    return absl::DataLossError("the checkpoint names another signing key than the one "
                               "keywardd sent; not saving it");
  }
  // The key keywardd sends is only as good as keywardd: with a fingerprint
  // pinned in the client config, it must be that key.
  const std::string& pin = client->options().audit_checkpoint_key_fingerprint;
  if (!pin.empty() && pin != fingerprint) {
    return absl::DataLossError(absl::StrCat(
        "keywardd signed the checkpoint with key ", fingerprint.substr(0, 16),
        " but the client config pins ", pin.substr(0, 16), "; not saving it"));
  }
  absl::Status sig = crypto::VerifyEcdsaP256(
      info.public_key_pem, audit::CheckpointMessage(c.environment, c.tree_size, c.root, c.time),
      c.signature);
  if (!sig.ok()) {
    return absl::DataLossError("the checkpoint's signature does not verify; not saving it");
  }
  const std::string text = audit::SerializeSavedCheckpoint({c, info.public_key_pem});
  KW_ASSIGN_OR_RETURN(auto output, AtomicOutput::Create(a.output, 0644));
  KW_RETURN_IF_ERROR(output->stream().Write(text));
  KW_RETURN_IF_ERROR(output->Commit());
  if (output->is_stdout()) return absl::OkStatus();
  if (globals.json) {
    std::printf("%s\n", Json{{"file", a.output},
                             {"environment", c.environment},
                             {"tree_size", c.tree_size},
                             {"root", audit::ToHex(c.root)},
                             {"key_fingerprint", c.key_fingerprint}}
                            .dump()
                            .c_str());
  } else {
    std::printf("saved the checkpoint of %llu records (root %s, signed by key %s) to %s\n"
                "check the log against it later: keyward audit verify --log DIR "
                "--checkpoint %s\n",
                static_cast<unsigned long long>(c.tree_size), audit::ToHex(c.root).c_str(),
                c.key_fingerprint.substr(0, 16).c_str(), a.output.c_str(), a.output.c_str());
  }
  return absl::OkStatus();
}

// Pages through matching records from `q.from_index`, calling `emit` for
// each, until `max` records were emitted (0: no limit) or the log ends.
absl::Status Scan(AdminClient* client, AuditQuery q, uint64_t max,
                  const std::function<void(const std::string&)>& emit, uint64_t* next) {
  uint64_t emitted = 0;
  for (;;) {
    q.limit = max == 0 ? 10000 : static_cast<int>(std::min<uint64_t>(10000, max - emitted));
    KW_ASSIGN_OR_RETURN(AuditPage page, client->ReadAuditRecords(q));
    for (const auto& r : page.records) emit(r);
    emitted += page.records.size();
    q.from_index = page.next_index;
    q.from_end = false;
    if ((max != 0 && emitted >= max) || page.next_index >= page.size) break;
  }
  *next = q.from_index;
  return absl::OkStatus();
}

absl::Status RunTail(Globals& globals, const AuditArgs& a) {
  if (a.lines < 1 || a.lines > 10000) return UsageError("-n is 1..10000");
  KW_ASSIGN_OR_RETURN(AuditQuery q, BuildQuery(a));
  KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
  q.from_end = true;
  q.limit = a.lines;
  KW_ASSIGN_OR_RETURN(AuditPage page, client->ReadAuditRecords(q));
  for (const auto& r : page.records) PrintRecord(r, globals.json);
  std::fflush(stdout);
  uint64_t next = page.next_index;
  while (a.follow) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    q.from_end = false;
    q.from_index = next;
    KW_RETURN_IF_ERROR(Scan(
        client, q, 0, [&](const std::string& r) { PrintRecord(r, globals.json); }, &next));
    std::fflush(stdout);
  }
  return absl::OkStatus();
}

absl::Status RunQuery(Globals& globals, const AuditArgs& a) {
  if (a.limit < 0) return UsageError("--limit must not be negative");
  KW_ASSIGN_OR_RETURN(AuditQuery q, BuildQuery(a));
  KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
  uint64_t next = 0, count = 0;
  KW_RETURN_IF_ERROR(Scan(
      client, q, static_cast<uint64_t>(a.limit),
      [&](const std::string& r) {
        PrintRecord(r, globals.json);
        ++count;
      },
      &next));
  if (!globals.json && count == 0) std::fprintf(stderr, "no matching records\n");
  return absl::OkStatus();
}

absl::Status RunExport(Globals& globals, const AuditArgs& a) {
  AuditExportOptions options;
  KW_ASSIGN_OR_RETURN(options.query, BuildQuery(a));
  options.output = a.output;
  options.follow = a.follow;
  options.append = a.append;
  options.server = a.server;
  if (!a.from_index.empty()) {
    uint64_t n = 0;
    if (!absl::SimpleAtoi(a.from_index, &n)) {
      return UsageError("--from-index is a record index (0, 1, 2, ...): the \"seq\" of the "
                        "first record to export");
    }
    options.from_index = n;
  }
  return RunAuditExport(globals, options);
}

void AddFilters(CLI::App* cmd, AuditArgs& a) {
  cmd->add_option("--since", a.since, "from this time (2026-11-27T10:00:00Z) or this long ago (1h)");
  cmd->add_option("--until", a.until, "before this time or this long ago");
  cmd->add_option("--principal", a.principal, "exact principal");
  cmd->add_option("--key", a.key, "exact key name");
  cmd->add_option("--op", a.operation, "operation, e.g. decrypt, rotate-key, tls-handshake");
  cmd->add_option("--decision", a.decision, "allow, deny or none");
  cmd->add_option("--context", a.context,
                  "KEY=VALUE in the encryption context (matched by keyed hash); repeatable");
}

}  // namespace

void RegisterAuditCommands(CLI::App& app, Globals& globals, Action& action) {
  static AuditArgs args;
  auto* audit = app.add_subcommand(
      "audit", "Verify and read keywardd's tamper-evident audit log (docs/audit.md)");
  audit->require_subcommand(1);

  auto* verify = audit->add_subcommand(
      "verify",
      "Check an audit log directory, or every replica's log in PostgreSQL,\n"
      "offline: every record's chain link, the Merkle tree against every\n"
      "signed checkpoint, every signature, and (with --checkpoint) that the\n"
      "log still extends the checkpoint you saved.  Names the first bad\n"
      "record; exit code 4 when anything is wrong.");
  verify->add_option("--log", args.log_dir, "the audit directory (keywardd.yaml audit.dir)");
  verify->add_option("--db", args.db_url,
                     "PostgreSQL URL of the audit logs (one per keywardd replica); every\n"
                     "log in it is checked");
  verify->add_option("--log-id", args.log_ids,
                     "with --db: check only this replica's log (repeatable)");
  verify->add_option("--checkpoint", args.checkpoint,
                     "a checkpoint saved earlier with `keyward audit checkpoint -o FILE`");
  verify->add_option("--checkpoint-key", args.checkpoint_keys,
                     "PEM public key of the checkpoint signer (repeatable); pin it from a\n"
                     "source you trust, never from the log directory");
  verify->add_option("--checkpoint-key-fingerprint", args.checkpoint_fingerprints,
                     "hex SHA-256 of the signer's key (repeatable); default: the client\n"
                     "config's audit.checkpoint_key_fingerprint");
  verify->add_flag("--json", globals.json, "print one JSON object");
  verify->callback([&globals, &action] {
    action = [&globals] { return RunVerify(globals, args, globals.json); };
  });

  auto* checkpoint = audit->add_subcommand(
      "checkpoint",
      "Have keywardd sign a checkpoint of its log now, check the signature,\n"
      "and save it with the signing key.  Keep it somewhere keywardd's\n"
      "operators cannot write; `audit verify --checkpoint` then detects a log\n"
      "that was truncated or rewritten since.");
  checkpoint->add_option("-o,--output", args.output, "FILE (or - for stdout)")->required();
  checkpoint->add_flag("--json", globals.json, "print one JSON object");
  checkpoint->callback([&globals, &action] {
    action = [&globals] { return RunCheckpoint(globals, args); };
  });

  auto* tail = audit->add_subcommand("tail", "Print the last records (and follow with -f)");
  tail->add_option("-n,--lines", args.lines, "how many (default 20)");
  tail->add_flag("-f,--follow", args.follow, "keep printing new records until interrupted");
  AddFilters(tail, args);
  tail->add_flag("--json", globals.json, "print records as JSON lines");
  tail->callback([&globals, &action] {
    action = [&globals] { return RunTail(globals, args); };
  });

  auto* query = audit->add_subcommand("query", "Print records that match the filters, oldest first");
  query->add_option("--limit", args.limit, "at most this many (default 100; 0: all)");
  AddFilters(query, args);
  query->add_flag("--json", globals.json, "print records as JSON lines");
  query->callback([&globals, &action] {
    action = [&globals] { return RunQuery(globals, args); };
  });

  auto* export_cmd = audit->add_subcommand(
      "export",
      "Write every matching record as JSON lines, exactly as stored (for a\n"
      "SIEM).  With --follow, keep writing new records until SIGINT/SIGTERM,\n"
      "then print the index to resume from and exit 0.  A filtered export\n"
      "starts with a header line {\"keyward_export\":{\"filtered\":true,...}}\n"
      "naming the filters, so it is never taken for the whole log; an\n"
      "unfiltered one holds records only (docs/audit.md).");
  export_cmd->add_option("-o,--output", args.output,
                         "FILE (or - for stdout).  Without --follow or --append, FILE is\n"
                         "written whole or not at all; with them it grows by whole records,\n"
                         "each batch flushed to disk")
      ->required();
  export_cmd->add_flag("-f,--follow", args.follow,
                       "keep polling for new records (every 0.5 s, up to 5 s when idle;\n"
                       "retrying while keywardd is unavailable) until SIGINT or SIGTERM");
  export_cmd->add_option("--from-index", args.from_index,
                         "start at the record with this \"seq\" (resume where an earlier\n"
                         "export stopped; it prints the index)");
  export_cmd->add_flag("--append", args.append,
                       "continue FILE, an earlier export with the same filters, after its\n"
                       "last record (an unfinished last line is cut off first)");
  export_cmd->add_option("--server", args.server,
                         "HOST:PORT of the keywardd whose log to export; needed when the\n"
                         "client config lists several (each replica keeps its own log)");
  AddFilters(export_cmd, args);
  export_cmd->add_flag("--json", globals.json, "print a JSON summary (on stderr with -o -)");
  export_cmd->callback([&globals, &action] {
    action = [&globals] { return RunExport(globals, args); };
  });
}

}  // namespace keyward::cli
