#include "audit/verifier.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "audit/postgres_storage.h"
#include "base/file.h"
#include "base/status_macros.h"
#include "crypto/signature.h"
#include "nlohmann/json.hpp"

namespace keyward::audit {
namespace {

std::string IsoTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

// PEM blocks of a keys file, by fingerprint.
std::map<std::string, std::string> ReadKeys(const std::string& path) {
  std::map<std::string, std::string> keys;
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  size_t pos = 0;
  const std::string begin = "-----BEGIN PUBLIC KEY-----", end = "-----END PUBLIC KEY-----";
  while ((pos = text.find(begin, pos)) != std::string::npos) {
    const size_t e = text.find(end, pos);
    if (e == std::string::npos) break;
    const std::string pem = text.substr(pos, e + end.size() - pos) + "\n";
    if (auto fp = crypto::PublicKeyFingerprint(pem); fp.ok()) keys[*fp] = pem;
    pos = e;
  }
  return keys;
}

}  // namespace

std::string SerializeSavedCheckpoint(const SavedCheckpoint& saved) {
  nlohmann::ordered_json j = {{"checkpoint", nlohmann::json::parse(saved.checkpoint.line)},
                              {"public_key_pem", saved.public_key_pem}};
  return j.dump(2) + "\n";
}

absl::StatusOr<SavedCheckpoint> ParseSavedCheckpoint(absl::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("checkpoint") || !j.contains("public_key_pem")) {
    return absl::InvalidArgumentError(
        "not a saved checkpoint (make one with `keyward audit checkpoint -o FILE`)");
  }
  SavedCheckpoint s;
  auto c = ParseCheckpoint(j["checkpoint"].dump());
  if (!c.ok()) return absl::InvalidArgumentError(c.status().message());
  s.checkpoint = *c;
  s.public_key_pem = j["public_key_pem"].get<std::string>();
  return s;
}

namespace {

// A log as read from wherever it is kept.
struct LogText {
  std::vector<absl::string_view> records;  // in order
  bool torn = false;                       // the last record is incomplete
  std::vector<std::string> checkpoints;    // lines, in order
  std::string no_checkpoints;              // why there are none, for people
};

// The trusted keys, by fingerprint.  `published` (the keys the log itself
// publishes, `where`) is only a place to find a key whose fingerprint was
// pinned: whoever can rewrite the log can rewrite those too.
absl::StatusOr<std::map<std::string, std::string>> TrustedKeys(
    const CheckpointTrust& trust, const std::optional<SavedCheckpoint>& pinned,
    const std::map<std::string, std::string>& published, absl::string_view where) {
  std::map<std::string, std::string> keys;
  for (const std::string& pem : trust.public_keys_pem) {
    auto fp = crypto::PublicKeyFingerprint(pem);
    if (!fp.ok()) {
      return absl::InvalidArgumentError("a pinned checkpoint key is not a PEM public key");
    }
    keys[*fp] = pem;
  }
  for (const std::string& fp : trust.fingerprints) {
    const std::string lower = absl::AsciiStrToLower(fp);
    auto it = published.find(lower);
    if (it != published.end()) keys[lower] = it->second;
  }
  if (pinned) {
    auto fp = crypto::PublicKeyFingerprint(pinned->public_key_pem);
    if (!fp.ok()) return absl::InvalidArgumentError("the saved checkpoint's key is unusable");
    keys[*fp] = pinned->public_key_pem;
  }
  if (keys.empty() && trust.fingerprints.empty()) {
    return absl::InvalidArgumentError(
        "no checkpoint key to trust: pass --checkpoint-key FILE or "
        "--checkpoint-key-fingerprint HEX (from `keyward dev init` or `keyward "
        "server-info`, recorded when you set keywardd up), or --checkpoint FILE; the "
        "key in the log directory proves nothing, since whoever rewrites the log can "
        "replace it");
  }
  if (keys.empty()) {
    return absl::DataLossError(absl::StrCat(
        "none of the pinned fingerprints matches a key in ", where,
        ": the log was signed by another key (re-signed?), or "
        "pass the key itself with --checkpoint-key FILE"));
  }
  return keys;
}

VerifyReport VerifyLogText(const LogText& log, const std::map<std::string, std::string>& keys,
                           const std::optional<SavedCheckpoint>& pinned) {
  const absl::Time started = absl::Now();
  VerifyReport report;
  auto fail = [&](std::string problem, std::optional<uint64_t> record) {
    if (report.ok) {
      report.ok = false;
      report.problem = std::move(problem);
      report.first_bad_record = record;
    }
  };
  // Every sequence number present, to tell a deletion from a reordering;
  // gathered only when the sequence breaks.
  std::vector<uint64_t> seqs;
  auto all_seqs = [&]() -> const std::vector<uint64_t>& {
    if (!seqs.empty()) return seqs;
    for (absl::string_view line : log.records) {
      auto f = ReadChainFields(line);
      if (f.ok()) seqs.push_back(f->seq);
    }
    std::sort(seqs.begin(), seqs.end());
    return seqs;
  };
  // 1. The chain: seq i at position i, prev = leaf hash of position i-1.
  MerkleTree tree;
  Hash prev{};
  uint64_t i = 0;
  for (absl::string_view line : log.records) {
    auto fields = ReadChainFields(line);
    if (!fields.ok()) {
      fail(absl::StrCat("record ", i, " is not a valid audit record: ",
                        fields.status().message()),
           i);
    } else if (fields->seq != i) {
      const auto& present = all_seqs();
      const bool missing = !std::binary_search(present.begin(), present.end(), i);
      fail(fields->seq > i && missing
               ? absl::StrCat("record ", i, " carries sequence number ", fields->seq,
                              ": records ", i, "..", fields->seq - 1, " were deleted")
               : absl::StrCat("record ", i, " carries sequence number ", fields->seq,
                              ": a record was inserted here or records were reordered"),
           i);
    } else if (fields->prev != prev) {
      fail(i == 0 ? std::string("record 0 does not start the chain: the log was "
                                "truncated at its start or replaced")
                  : absl::StrCat("record ", i, " does not chain to record ", i - 1,
                                 ": record ", i - 1,
                                 " was modified, or records were inserted, removed or "
                                 "reordered here"),
           i == 0 ? 0 : i - 1);
    }
    prev = LeafHash(line);
    tree.Append(prev);
    ++i;
  }
  if (log.torn) fail(absl::StrCat("record ", i, " is incomplete (the file ends inside it)"), i);
  report.records = tree.size();

  // 2. Every checkpoint: signed by a trusted key, and matching the records.
  auto check = [&](const Checkpoint& c, const std::string& what) {
    auto key = keys.find(c.key_fingerprint);
    if (key == keys.end()) {
      fail(absl::StrCat(what, " of ", IsoTime(c.time), " is signed by key ",
                        c.key_fingerprint.substr(0, 16),
                        ", which is not a key you pinned: the checkpoints were re-signed, or "
                        "the signing key changed (pin the old key too)"),
           std::nullopt);
      return;
    }
    if (!crypto::VerifyEcdsaP256(key->second,
                                 CheckpointMessage(c.environment, c.tree_size, c.root, c.time),
                                 c.signature)
             .ok()) {
      fail(absl::StrCat(what, " of ", IsoTime(c.time),
                        " has an invalid signature: the checkpoint was modified"),
           std::nullopt);
      return;
    }
    if (c.tree_size > report.records) {
      fail(absl::StrCat("the log was truncated: ", what, " of ", IsoTime(c.time), " covers ",
                        c.tree_size, " records but the log holds ", report.records),
           report.records);
      return;
    }
    auto root = tree.Root(c.tree_size);
    if (!root.ok() || *root != c.root) {
      fail(absl::StrCat("records 0..", c.tree_size - 1, " no longer match ", what, " of ",
                        IsoTime(c.time),
                        ": a record in that range was modified, inserted, removed or "
                        "reordered"),
           std::nullopt);
    }
  };
  uint64_t n = 0;
  for (const std::string& line : log.checkpoints) {
    ++n;
    auto c = ParseCheckpoint(line);
    if (!c.ok()) {
      fail(absl::StrCat("checkpoint ", n, " is malformed: ", c.status().message()), std::nullopt);
      continue;
    }
    check(*c, absl::StrCat("checkpoint ", n));
    ++report.checkpoints;
  }
  if (pinned) {
    check(pinned->checkpoint, "your saved checkpoint");
    ++report.checkpoints;
  }
  if (report.records > 0 && report.checkpoints == 0) {
    // A chain alone proves nothing: whoever wrote the log can rebuild it.
    fail(absl::StrCat("no signed checkpoint covers the records (", log.no_checkpoints,
                      "): nothing in the log can be checked against a key you trust; pass a "
                      "checkpoint you saved (--checkpoint FILE)"),
         std::nullopt);
  }
  report.seconds = absl::ToDoubleSeconds(absl::Now() - started);
  return report;
}

}  // namespace

absl::StatusOr<VerifyReport> VerifyAuditLog(const std::string& dir,
                                            const CheckpointTrust& trust,
                                            const std::optional<SavedCheckpoint>& pinned) {
  KW_ASSIGN_OR_RETURN(
      const auto keys,
      TrustedKeys(trust, pinned,
                  trust.fingerprints.empty() ? std::map<std::string, std::string>()
                                             : ReadKeys(absl::StrCat(dir, "/", kKeysFile)),
                  "the log directory's checkpoint-keys.pem"));
  auto read = ReadWholeFile(absl::StrCat(dir, "/", kRecordsFile));
  if (!read.ok()) {
    return absl::NotFoundError(absl::StrCat("no audit log in ", dir, " (", kRecordsFile,
                                            " is missing or unreadable)"));
  }
  const std::string& content = *read;
  LogText log;
  for (size_t pos = 0; pos < content.size();) {
    const size_t nl = content.find('\n', pos);
    if (nl == std::string::npos) {
      log.torn = true;
      break;
    }
    log.records.emplace_back(content.data() + pos, nl - pos);
    pos = nl + 1;
  }
  std::ifstream cin(absl::StrCat(dir, "/", kCheckpointsFile));
  std::string line;
  while (std::getline(cin, line)) {
    if (!line.empty()) log.checkpoints.push_back(line);
  }
  log.no_checkpoints = "checkpoints.log is missing or empty";
  return VerifyLogText(log, keys, pinned);
}

absl::StatusOr<std::vector<LogVerifyReport>> VerifyAuditLogsInDatabase(
    const std::string& url, const std::vector<std::string>& log_ids,
    const CheckpointTrust& trust, const std::optional<SavedCheckpoint>& pinned) {
  // Usage errors first, before connecting.
  if (auto usable = TrustedKeys(trust, pinned, {}, ""); absl::IsInvalidArgument(usable.status())) {
    return usable.status();
  }
  KW_ASSIGN_OR_RETURN(std::unique_ptr<PostgresAuditReader> reader,
                      PostgresAuditReader::Open(url));
  std::vector<std::string> ids = log_ids;
  if (ids.empty()) {
    KW_ASSIGN_OR_RETURN(ids, reader->LogIds());
    if (ids.empty()) {
      return absl::NotFoundError(
          absl::StrCat("no audit logs in ", reader->RedactedUrl(), " (the tables are empty)"));
    }
  }
  std::vector<LogVerifyReport> out;
  for (const std::string& id : ids) {
    const absl::Time started = absl::Now();
    KW_ASSIGN_OR_RETURN(StoredAuditLog stored, reader->Load(id));
    LogVerifyReport r{id, {}};
    auto failed = [&](std::string problem) {
      r.report.ok = false;
      r.report.problem = std::move(problem);
    };
    std::map<std::string, std::string> published;
    for (const std::string& pem : stored.keys_pem) {
      if (auto fp = crypto::PublicKeyFingerprint(pem); fp.ok()) published[*fp] = pem;
    }
    auto keys = TrustedKeys(trust, pinned, published,
                            absl::StrCat("keyward_audit_keys for log \"", id, "\""));
    if (!keys.ok() && !absl::IsDataLoss(keys.status())) return keys.status();
    if (!stored.listed && stored.records.empty() && stored.checkpoints.empty()) {
      failed(absl::StrCat("there is no audit log \"", id, "\" in ", reader->RedactedUrl()));
    } else if (stored.listed && stored.records.empty()) {
      failed(absl::StrCat("the log is listed in keyward_audit_logs but holds no records: "
                          "its records were deleted",
                          stored.checkpoints.empty()
                              ? std::string()
                              : absl::StrCat(" (", stored.checkpoints.size(),
                                             " checkpoint(s) remain)")));
      r.report.checkpoints = stored.checkpoints.size();
    } else if (!keys.ok()) {
      failed(std::string(keys.status().message()));
      r.report.records = stored.records.size();
    } else {
      LogText log;
      log.records.assign(stored.records.begin(), stored.records.end());
      log.checkpoints = std::move(stored.checkpoints);
      log.no_checkpoints = "keyward_audit_checkpoints holds none for this log";
      r.report = VerifyLogText(log, *keys, pinned);
      if (r.report.ok && !stored.listed && !stored.records.empty()) {
        failed("the log has records but is not listed in keyward_audit_logs (its row was "
               "deleted)");
      }
    }
    r.report.seconds = absl::ToDoubleSeconds(absl::Now() - started);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace keyward::audit
