// `keyward audit verify|checkpoint|tail|query|export|archive|prune|segments`
// (docs/audit.md).  verify works offline on the log directory, its archives
// or the logs in PostgreSQL; archive works on the audit directory (on the
// keywardd host); the others ask keywardd.
// Long on purpose: the audit subcommands share their flags, query building
// and report printing.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "audit/archive.h"
#include "audit/audit_log.h"
#include "audit/segment.h"
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
  std::vector<std::string> archive_dirs;  // verify: archives too
  std::string to_dir;                     // archive: where
  std::string before;                     // archive, prune: cut-off
  std::string reason;
  bool force = false;
  bool dry_run = false;
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
  if ((a.log_dir.empty() && a.archive_dirs.empty()) == a.db_url.empty() ||
      (!a.db_url.empty() && !a.archive_dirs.empty())) {
    return UsageError("audit verify checks either a log directory (--log DIR) and the archives "
                      "of it (--archive DIR, repeatable), or the logs in PostgreSQL (--db "
                      "URL): give one of them");
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
  const std::string what =
      a.archive_dirs.empty()
          ? absl::StrCat("audit log ", a.log_dir)
          : absl::StrCat(a.log_dir.empty() ? "audit archive" : absl::StrCat("audit log ", a.log_dir, " with archive"),
                         a.archive_dirs.size() > 1 ? "s " : " ",
                         absl::StrJoin(a.archive_dirs, ", "));
  auto verified = audit::VerifyAuditLogDirs({a.log_dir, a.archive_dirs}, trust, pinned);
  if (absl::IsDataLoss(verified.status())) {
    return absl::DataLossError(absl::StrCat(what, " FAILED verification: ",
                                            verified.status().message()));
  }
  KW_ASSIGN_OR_RETURN(audit::VerifyReport r, std::move(verified));
  if (json) {
    Json j = ReportJson(r);
    if (pinned) j["pinned_tree_size"] = pinned->checkpoint.tree_size;
    j["first_record"] = r.first_record;
    j["segments"] = r.segments;
    j["pruned_checkpoints"] = r.pruned_checkpoints;
    std::printf("%s\n", j.dump().c_str());
  } else if (r.ok) {
    PrintOk(what, r, pinned);
    if (r.first_record > 0) {
      std::printf("  records 0..%llu were pruned: the log extends their signed root "
                  "(%llu older checkpoints are signed but need the archive to be compared; "
                  "pass it with --archive DIR)\n",
                  static_cast<unsigned long long>(r.first_record - 1),
                  static_cast<unsigned long long>(r.pruned_checkpoints));
    }
  }
  if (r.ok) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat(what, " FAILED verification: ", Failure(r)));
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
  absl::Status sig =
      crypto::VerifyEcdsaP256(info.public_key_pem, audit::CheckpointMessage(c), c.signature);
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

std::string Iso(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

Json SegmentJson(const AuditSegmentInfo& s) {
  Json j = {{"file", s.file},
            {"first_index", s.first_index},
            {"records", s.records},
            {"bytes", s.bytes},
            {"closed", s.closed},
            {"sha256", absl::BytesToHexString(s.sha256)},
            {"archived_to", s.archived_to}};
  if (s.first_time) j["first_time"] = Iso(*s.first_time);
  if (s.last_time) j["last_time"] = Iso(*s.last_time);
  return j;
}

// `audit archive`: runs on the keywardd host, on the audit directory.
absl::Status RunArchive(Globals& globals, const AuditArgs& a) {
  if (a.log_dir.empty() || a.to_dir.empty() || a.before.empty()) {
    return UsageError("audit archive needs --log DIR (keywardd.yaml audit.dir), --to DIR and "
                      "--before TIME");
  }
  KW_ASSIGN_OR_RETURN(absl::Time before, ParseTimeFlag(a.before, "--before", absl::Now()));
  audit::ArchiveOptions o;
  o.log_dir = a.log_dir;
  o.archive_dir = a.to_dir;
  o.before = before;
  const char* user = std::getenv("USER");
  o.by = absl::StrCat("keyward audit archive (", user == nullptr ? "unknown user" : user, ")");
  const std::string marks = absl::StrCat(a.log_dir, "/", audit::kArchivedFile);
  KW_ASSIGN_OR_RETURN(audit::ArchiveReport report,
                      audit::ArchiveSegments(o, [&](const audit::ArchiveMark& m) {
                        return audit::AppendLineDurably(marks, audit::SerializeArchiveMark(m));
                      }));
  uint64_t records = 0, fresh = 0;
  for (const auto& s : report.segments) {
    records += s.count;
    if (!s.already) ++fresh;
  }
  if (globals.json) {
    Json segs = Json::array();
    for (const auto& s : report.segments) {
      segs.push_back({{"file", s.file},
                      {"first_index", s.first},
                      {"records", s.count},
                      {"sha256", audit::ToHex(s.sha256)},
                      {"already_archived", s.already}});
    }
    std::printf("%s\n", Json{{"archive_dir", a.to_dir},
                             {"segments", segs},
                             {"records", records},
                             {"skipped", report.skipped}}
                            .dump()
                            .c_str());
    return absl::OkStatus();
  }
  if (report.segments.empty()) {
    std::printf("nothing to archive: no closed segment ends before %s\n", Iso(before).c_str());
  } else {
    std::printf("archived %zu segment(s) (%llu new), records %llu..%llu, to %s\n"
                "each copy matches the digest its closing checkpoint names; prove the archive "
                "against your pinned key with: keyward audit verify --archive %s\n"
                "then prune them from keywardd: keyward audit prune --before %s\n",
                report.segments.size(), static_cast<unsigned long long>(fresh),
                static_cast<unsigned long long>(report.segments.front().first),
                static_cast<unsigned long long>(report.segments.back().first +
                                                report.segments.back().count - 1),
                a.to_dir.c_str(), a.to_dir.c_str(), Iso(before).c_str());
  }
  for (const std::string& s : report.skipped) std::printf("  left: %s\n", s.c_str());
  return absl::OkStatus();
}

absl::Status RunPrune(Globals& globals, const AuditArgs& a) {
  if (a.before.empty()) return UsageError("audit prune needs --before TIME");
  KW_ASSIGN_OR_RETURN(absl::Time before, ParseTimeFlag(a.before, "--before", absl::Now()));
  if (a.force && a.reason.empty()) {
    return UsageError("--force prunes segments that were never archived: say why with "
                      "--reason TEXT (it is recorded)");
  }
  KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
  AuditPruneRequest req;
  req.before = before;
  req.force = a.force;
  req.dry_run = a.dry_run;
  req.reason = a.reason;
  KW_ASSIGN_OR_RETURN(AuditPruneResult r, client->PruneAuditLog(req));
  if (globals.json) {
    Json segs = Json::array();
    for (const auto& s : r.segments) segs.push_back(SegmentJson(s));
    std::printf("%s\n", Json{{"dry_run", a.dry_run},
                             {"segments", segs},
                             {"pruned_before", r.pruned_before},
                             {"pruned_after", r.pruned_after},
                             {"unarchived", r.unarchived}}
                            .dump()
                            .c_str());
    return absl::OkStatus();
  }
  if (r.segments.empty()) {
    std::printf("nothing to prune: no closed segment ends before %s\n", Iso(before).c_str());
    return absl::OkStatus();
  }
  std::printf("%s %zu segment(s), records %llu..%llu%s; the live log %s at record %llu\n",
              a.dry_run ? "would prune" : "pruned", r.segments.size(),
              static_cast<unsigned long long>(r.segments.front().first_index),
              static_cast<unsigned long long>(r.pruned_after - 1),
              r.unarchived > 0 ? absl::StrCat(" (", r.unarchived, " never archived: FORCED)").c_str()
                               : "",
              a.dry_run ? "would start" : "now starts",
              static_cast<unsigned long long>(r.pruned_after));
  return absl::OkStatus();
}

absl::Status RunSegments(Globals& globals) {
  KW_ASSIGN_OR_RETURN(AdminClient * client, globals.Admin());
  KW_ASSIGN_OR_RETURN(AuditSegments s, client->ListAuditSegments());
  if (globals.json) {
    Json segs = Json::array();
    for (const auto& seg : s.segments) segs.push_back(SegmentJson(seg));
    std::printf("%s\n", Json{{"segmented", s.segmented},
                             {"pruned_records", s.pruned_records},
                             {"segments", segs}}
                            .dump()
                            .c_str());
    return absl::OkStatus();
  }
  if (!s.segmented) {
    std::printf("this keywardd keeps its audit log in PostgreSQL: no segments\n");
    return absl::OkStatus();
  }
  std::printf("%-26s %10s %10s %-20s %-20s %s\n", "FILE", "RECORDS", "BYTES", "FIRST", "LAST",
              "STATE");
  for (const auto& seg : s.segments) {
    std::printf("%-26s %10llu %10llu %-20s %-20s %s\n", seg.file.c_str(),
                static_cast<unsigned long long>(seg.records),
                static_cast<unsigned long long>(seg.bytes),
                seg.first_time ? Iso(*seg.first_time).c_str() : "-",
                seg.last_time ? Iso(*seg.last_time).c_str() : "-",
                !seg.closed               ? "open"
                : seg.archived_to.empty() ? "closed, not archived"
                                          : absl::StrCat("archived to ", seg.archived_to).c_str());
  }
  if (s.pruned_records > 0) {
    std::printf("records 0..%llu were pruned (archived, then removed)\n",
                static_cast<unsigned long long>(s.pruned_records - 1));
  }
  return absl::OkStatus();
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
  verify->add_option("--archive", args.archive_dirs,
                     "an archive made by `keyward audit archive` (repeatable): verified with\n"
                     "the live log as one history, or alone without --log");
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

  auto* archive = audit->add_subcommand(
      "archive",
      "Copy the closed segments whose last record is before --before to an\n"
      "archive directory (to ship to object storage), with the checkpoints\n"
      "that sign them, and note them as archived so that `audit prune` may\n"
      "remove them.  Runs on the keywardd host (reads the audit directory);\n"
      "never changes or removes a live segment.");
  archive->add_option("--log", args.log_dir, "the audit directory (keywardd.yaml audit.dir)")
      ->required();
  archive->add_option("--to", args.to_dir, "the archive directory (created; added to)")
      ->required();
  archive->add_option("--before", args.before,
                      "RFC 3339 time, or a duration meaning that long ago (30d)")
      ->required();
  archive->add_flag("--json", globals.json, "print one JSON object");
  archive->callback([&globals, &action] {
    action = [&globals] { return RunArchive(globals, args); };
  });

  auto* prune = audit->add_subcommand(
      "prune",
      "Have keywardd remove closed, archived segments whose last record is\n"
      "before --before (needs manage-audit).  What they held stays provable:\n"
      "keywardd keeps the roots of the pruned subtrees.  Refused for a\n"
      "segment never archived unless --force (recorded, with --reason).");
  prune->add_option("--before", args.before,
                    "RFC 3339 time, or a duration meaning that long ago (30d)")
      ->required();
  prune->add_flag("--force", args.force, "also prune segments that were never archived");
  prune->add_option("--reason", args.reason, "recorded in the audit log (required with --force)");
  prune->add_flag("--dry-run", args.dry_run, "say what would be pruned; remove nothing");
  prune->add_flag("--json", globals.json, "print one JSON object");
  prune->callback([&globals, &action] {
    action = [&globals] { return RunPrune(globals, args); };
  });

  auto* segments = audit->add_subcommand(
      "segments", "List keywardd's audit segments: records, size, times, archived or not");
  segments->add_flag("--json", globals.json, "print one JSON object");
  segments->callback([&globals, &action] {
    action = [&globals] { return RunSegments(globals); };
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
