// Long on purpose: every verification (a directory, with archives, the logs
// in PostgreSQL) shares the trust, chain and checkpoint checks.
#include "audit/verifier.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <dirent.h>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "audit/archive.h"
#include "audit/postgres_storage.h"
#include "audit/segment.h"
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
    } else if (!fields->Follows(prev)) {
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
    if (!crypto::VerifyEcdsaP256(key->second, CheckpointMessage(c), c.signature).ok()) {
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
  return VerifyAuditLogDirs({dir, {}}, trust, pinned);
}

namespace {

// One copy of a segment, in the live log or an archive.
struct SegmentCopy {
  std::string dir;   // the log or archive directory
  std::string path;  // the file
  bool json = false;
};

std::vector<std::string> FileLines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

}  // namespace

absl::StatusOr<VerifyReport> VerifyAuditLogDirs(const VerifySources& sources,
                                                const CheckpointTrust& trust,
                                                const std::optional<SavedCheckpoint>& pinned) {
  const absl::Time started = absl::Now();
  std::vector<std::string> dirs;
  if (!sources.live_dir.empty()) dirs.push_back(sources.live_dir);
  dirs.insert(dirs.end(), sources.archive_dirs.begin(), sources.archive_dirs.end());
  if (dirs.empty()) return absl::InvalidArgumentError("no audit log or archive to verify");
  // Keys published in any of them, only to find pinned fingerprints.
  std::map<std::string, std::string> published;
  if (!trust.fingerprints.empty()) {
    for (const std::string& d : dirs) {
      for (auto& [fp, pem] : ReadKeys(absl::StrCat(d, "/", kKeysFile))) published[fp] = pem;
    }
  }
  KW_ASSIGN_OR_RETURN(const auto keys,
                      TrustedKeys(trust, pinned, published,
                                  "the log directory's checkpoint-keys.pem"));
  // Segments, by first record; the same segment may be in several places.
  std::map<uint64_t, std::vector<SegmentCopy>> segments;
  std::vector<std::string> checkpoint_lines;
  std::set<std::string> seen_lines;
  std::map<uint64_t, PrunedHistory> bases;  // compact ranges, by size
  std::optional<PrunedHistory> live_pruned;
  std::vector<std::string> archive_problems;
  bool any_log = false;
  for (size_t i = 0; i < dirs.size(); ++i) {
    const std::string& d = dirs[i];
    const bool live = i == 0 && !sources.live_dir.empty();
    const std::string legacy = absl::StrCat(d, "/", kRecordsFile);
    const std::string seg_dir = absl::StrCat(d, "/", kSegmentsDir);
    bool found = false;
    if (DIR* dh = ::opendir(seg_dir.c_str())) {
      while (struct dirent* e = ::readdir(dh)) {
        if (auto named = ParseSegmentFileName(e->d_name)) {
          segments[named->first].push_back(
              {d, absl::StrCat(seg_dir, "/", e->d_name), named->second});
          found = true;
        }
      }
      ::closedir(dh);
    }
    if (!found && ::access(legacy.c_str(), R_OK) == 0) {
      // A log from before segments: records.log is its only segment.
      segments[0].push_back({d, legacy, true});
      found = true;
    }
    for (std::string& l : FileLines(absl::StrCat(d, "/", kCheckpointsFile))) {
      if (seen_lines.insert(l).second) checkpoint_lines.push_back(std::move(l));
    }
    if (auto text = ReadWholeFile(absl::StrCat(d, "/", kPrunedFile)); text.ok()) {
      auto p = ParsePruned(*text);
      if (!p.ok()) {
        return absl::DataLossError(absl::StrCat(d, "/", kPrunedFile, ": ", p.status().message()));
      }
      if (live) live_pruned = *p;
      bases[p->size] = *p;
      found = true;
    }
    if (DIR* dh = ::opendir(d.c_str())) {
      while (struct dirent* e = ::readdir(dh)) {
        const absl::string_view name = e->d_name;
        if (!absl::StartsWith(name, "prefix-") || !absl::EndsWith(name, ".json")) continue;
        auto text = ReadWholeFile(absl::StrCat(d, "/", name));
        if (!text.ok()) continue;
        auto p = ParsePruned(*text);
        if (p.ok() && PrefixFileName(p->size) == name) bases.emplace(p->size, *p);
      }
      ::closedir(dh);
    }
    if (!live) {
      // What the archive says it holds must be there, unchanged.
      for (const std::string& line : FileLines(absl::StrCat(d, "/", kArchivedFile))) {
        auto m = ParseArchiveMark(line);
        if (!m.ok()) {
          archive_problems.push_back(absl::StrCat(d, "/", kArchivedFile, " is malformed"));
          continue;
        }
        std::string path = absl::StrCat(seg_dir, "/", SegmentFileName(m->first, false));
        if (::access(path.c_str(), F_OK) != 0) {
          // A records.log from before segments keeps its .jsonl name.
          const std::string json = absl::StrCat(seg_dir, "/", SegmentFileName(m->first, true));
          if (::access(json.c_str(), F_OK) == 0) path = json;
        }
        auto scan = ScanSegment(path, [](absl::string_view) { return absl::OkStatus(); });
        if (!scan.ok()) {
          archive_problems.push_back(absl::StrCat(
              "the archive ", d, " lists segment ", SegmentFileName(m->first, false),
              " (records ", m->first, "..", m->first + m->count - 1,
              ") but it is missing or unreadable: ", scan.status().message()));
        } else if (scan->sha256 != m->sha256) {
          archive_problems.push_back(absl::StrCat("the archive ", d, " holds a segment ",
                                                  SegmentFileName(m->first, false),
                                                  " that is not the one it archived: altered "
                                                  "or substituted"));
        }
      }
    }
    if (!found && live) {
      return absl::NotFoundError(absl::StrCat("no audit log in ", d, " (neither ", kSegmentsDir,
                                              "/ nor ", kRecordsFile, ")"));
    }
    any_log = any_log || found;
  }
  if (!any_log) {
    return absl::NotFoundError("no audit log segments in the directories given");
  }

  VerifyReport report;
  auto fail = [&](std::string problem, std::optional<uint64_t> record) {
    if (report.ok) {
      report.ok = false;
      report.problem = std::move(problem);
      report.first_bad_record = record;
    }
  };
  // The checkpoints, parsed; those that close a segment, by its first record.
  std::vector<Checkpoint> checkpoints;
  std::map<uint64_t, std::pair<size_t, ClosedSegment>> closing;
  for (size_t n = 0; n < checkpoint_lines.size(); ++n) {
    auto c = ParseCheckpoint(checkpoint_lines[n]);
    if (!c.ok()) {
      fail(absl::StrCat("checkpoint ", n + 1, " is malformed: ", c.status().message()),
           std::nullopt);
      checkpoints.emplace_back();
      continue;
    }
    if (c->segment) closing[c->segment->first] = {n + 1, *c->segment};
    checkpoints.push_back(std::move(*c));
  }

  // Where the records start: 0, or a compact range vouched for below.
  const uint64_t start = segments.empty() ? (live_pruned ? live_pruned->size : 0)
                                          : segments.begin()->first;
  MerkleTree tree;
  Hash prev{};
  if (start > 0) {
    auto base = bases.find(start);
    if (base == bases.end()) {
      fail(absl::StrCat("records 0..", start - 1,
                        " are missing: no archive given holds them and no pruned history "
                        "(pruned.json) or archive prefix vouches for them; pass every archive "
                        "(--archive DIR)"),
           0);
    } else if (live_pruned && live_pruned->size == start &&
               [&] {
                 auto key = keys.find(live_pruned->key_fingerprint);
                 return key == keys.end() ||
                        !crypto::VerifyEcdsaP256(key->second, PrunedMessage(*live_pruned),
                                                 live_pruned->signature)
                             .ok();
               }()) {
      fail(absl::StrCat("the log starts at record ", start,
                        ", but pruned.json is not signed by a key you trust: its oldest "
                        "segments were deleted, not pruned"),
           0);
    } else {
      KW_RETURN_IF_ERROR(tree.StartAfterPruned(start, base->second.nodes));
      prev = base->second.last_leaf;
      report.pruned = start;
    }
  }
  report.first_record = start;
  uint64_t expect = start;
  for (auto& [first, copies] : segments) {
    if (!report.ok && report.first_bad_record && *report.first_bad_record < first) break;
    if (first != expect) {
      fail(first > expect
               ? absl::StrCat("records ", expect, "..", first - 1,
                              " are missing: a segment was removed (or pass the archive "
                              "that holds it)")
               : absl::StrCat("segment ", copies.front().path, " starts at record ", first,
                              ", inside the segment before it: segments overlap"),
           expect);
      break;
    }
    // Every copy must be the same segment; the one the signed checkpoint
    // names is the one to read.
    std::optional<SegmentScan> chosen_scan;
    std::string chosen;
    auto sig = closing.find(first);
    std::vector<std::pair<std::string, Hash>> digests;
    for (const SegmentCopy& copy : copies) {
      auto scan = ScanSegment(copy.path, [](absl::string_view) { return absl::OkStatus(); });
      if (!scan.ok()) {
        fail(absl::StrCat(copy.path, ": ", scan.status().message()), first);
        continue;
      }
      digests.push_back({copy.path, scan->sha256});
      if (!chosen_scan || (sig != closing.end() && scan->sha256 == sig->second.second.sha256)) {
        chosen = copy.path;
        chosen_scan = std::move(*scan);
      }
    }
    for (size_t i = 1; i < digests.size(); ++i) {
      if (digests[i].second != digests[0].second) {
        fail(absl::StrCat("segment ", SegmentFileName(first, copies.front().json), " differs between ",
                          digests[0].first, " and ", digests[i].first,
                          ": one copy was altered or substituted"),
             first);
      }
    }
    if (!chosen_scan) break;
    // The records: the chain and the tree.
    uint64_t index = first;
    std::optional<std::pair<uint64_t, uint64_t>> misplaced;  // where, which seq
    std::vector<uint64_t> seqs;  // to tell a deletion from a reordering
    auto scan = ScanSegment(chosen, [&](absl::string_view r) {
      auto f = ReadChainFields(r);
      if (f.ok()) seqs.push_back(f->seq);
      if (misplaced && report.ok) {
        // Reported below, once every sequence number is known.
        prev = LeafHash(r);
        tree.Append(prev);
        ++index;
        return absl::OkStatus();
      }
      if (!f.ok()) {
        fail(absl::StrCat("record ", index, " is not a valid audit record: ", f.status().message()),
             index);
      } else if (f->seq != index) {
        if (!misplaced) misplaced = std::make_pair(index, f->seq);
      } else if (!f->Follows(prev)) {
        fail(index == 0 ? std::string("record 0 does not start the chain: the log was "
                                      "truncated at its start or replaced")
                        : absl::StrCat("record ", index, " does not chain to record ", index - 1,
                                       ": record ", index - 1,
                                       " was modified, or records were inserted, removed or "
                                       "reordered here"),
             index == 0 ? 0 : index - 1);
      }
      prev = LeafHash(r);
      tree.Append(prev);
      ++index;
      return absl::OkStatus();
    });
    if (!scan.ok()) {
      fail(absl::StrCat(chosen, ": ", scan.status().message()), index);
      break;
    }
    ++report.segments;
    if (misplaced) {
      std::sort(seqs.begin(), seqs.end());
      const auto [at, seq] = *misplaced;
      const bool missing = !std::binary_search(seqs.begin(), seqs.end(), at);
      fail(seq > at && missing
               ? absl::StrCat("record ", at, " carries sequence number ", seq, ": records ", at,
                              "..", seq - 1, " were deleted")
               : absl::StrCat("record ", at, " carries sequence number ", seq,
                              ": a record was inserted here or records were reordered"),
           at);
    }
    if (scan->torn) {
      fail(absl::StrCat("record ", index, " is incomplete (the file ends inside it)"), index);
    }
    if (sig != closing.end()) {
      if (scan->sha256 != sig->second.second.sha256 || scan->count != sig->second.second.count) {
        fail(absl::StrCat("segment ", chosen, " (records ", first, "..", first + scan->count - 1,
                          ") is not the one checkpoint ", sig->second.first,
                          " closed: it was altered, truncated or substituted"),
             std::nullopt);
      }
    }
    expect = first + scan->count;
  }
  report.records = tree.size() - start;
  // A checkpoint that closes a segment this log does not have.
  for (const auto& [first, c] : closing) {
    if (first >= start && first < expect && !segments.contains(first)) {
      fail(absl::StrCat("checkpoint ", c.first, " closes a segment starting at record ", first,
                        ", which is not in the log: segments were merged, split or replaced"),
           first);
    }
  }

  // Every checkpoint: signed by a trusted key, and matching the records.
  auto check = [&](const Checkpoint& c, const std::string& what, bool required) {
    auto key = keys.find(c.key_fingerprint);
    if (key == keys.end()) {
      fail(absl::StrCat(what, " of ", IsoTime(c.time), " is signed by key ",
                        c.key_fingerprint.substr(0, 16),
                        ", which is not a key you pinned: the checkpoints were re-signed, or "
                        "the signing key changed (pin the old key too)"),
           std::nullopt);
      return;
    }
    if (!crypto::VerifyEcdsaP256(key->second, CheckpointMessage(c), c.signature).ok()) {
      fail(absl::StrCat(what, " of ", IsoTime(c.time),
                        " has an invalid signature: the checkpoint was modified"),
           std::nullopt);
      return;
    }
    if (c.tree_size > tree.size()) {
      if (sources.live_dir.empty() && !required) {
        // Archives alone end where they end; later records are in the live
        // log or later archives.
        ++report.later_checkpoints;
        return;
      }
      fail(absl::StrCat(sources.live_dir.empty() ? "the archives end before " : "the log was truncated: ",
                        what, " of ", IsoTime(c.time), " covers ",
                        c.tree_size, " records but the log holds ", tree.size()),
           tree.size());
      return;
    }
    if (c.tree_size != 0 && c.tree_size < start) {
      // Its records were pruned: it still verifies through the consistency
      // proofs kept between prune points, when it is one of them.
      Hash root = c.root;
      uint64_t at = c.tree_size;
      bool reached = false;
      while (live_pruned) {
        auto hop = std::find_if(live_pruned->hops.begin(), live_pruned->hops.end(),
                                [&](const PrunedHistory::Hop& h) { return h.from == at; });
        if (hop == live_pruned->hops.end() || hop->from_root != root) break;
        auto to_root = hop->to == start ? tree.Root(start)
                                        : absl::StatusOr<Hash>(absl::NotFoundError(""));
        if (!to_root.ok()) {
          auto next = std::find_if(live_pruned->hops.begin(), live_pruned->hops.end(),
                                   [&](const PrunedHistory::Hop& h) { return h.from == hop->to; });
          if (next == live_pruned->hops.end()) break;
          to_root = next->from_root;
        }
        if (!VerifyConsistency(hop->from, hop->to, hop->from_root, *to_root, hop->proof)) {
          fail(absl::StrCat("the pruned history does not extend ", what, ": pruned.json was "
                            "altered"),
               std::nullopt);
          return;
        }
        root = *to_root;
        at = hop->to;
        if (at == start) {
          reached = true;
          break;
        }
      }
      if (reached) {
        ++report.checkpoints;
      } else if (required) {
        fail(absl::StrCat(what, " covers records pruned from the live log (before ", start,
                          "): pass the archive that holds them (--archive DIR)"),
             std::nullopt);
      } else {
        ++report.pruned_checkpoints;
      }
      return;
    }
    auto root = tree.Root(c.tree_size);
    if (!root.ok() || *root != c.root) {
      fail(absl::StrCat("records ", start, "..", c.tree_size - 1, " no longer match ", what,
                        " of ", IsoTime(c.time),
                        ": a record in that range was modified, inserted, removed or "
                        "reordered"),
           std::nullopt);
      return;
    }
    ++report.checkpoints;
  };
  for (size_t n = 0; n < checkpoints.size(); ++n) {
    if (checkpoints[n].line.empty()) continue;  // malformed, reported
    check(checkpoints[n], absl::StrCat("checkpoint ", n + 1), false);
  }
  if (pinned) check(pinned->checkpoint, "your saved checkpoint", true);
  // The compact range a pruned log starts from must be the signed root at
  // that size.
  if (start > 0 && report.ok) {
    bool vouched = false;
    for (const Checkpoint& c : checkpoints) vouched = vouched || c.tree_size == start;
    if (!vouched) {
      fail(absl::StrCat("no signed checkpoint of ", start,
                        " records vouches for the pruned history the log starts from"),
           std::nullopt);
    }
  }
  // Last, so that a gap or an altered record is named first.
  for (std::string& p : archive_problems) fail(std::move(p), std::nullopt);
  if (report.records > 0 && report.checkpoints == 0) {
    fail(absl::StrCat("no signed checkpoint covers the records (checkpoints.log is missing or "
                      "empty): nothing in the log can be checked against a key you trust; pass "
                      "a checkpoint you saved (--checkpoint FILE)"),
         std::nullopt);
  }
  report.seconds = absl::ToDoubleSeconds(absl::Now() - started);
  return report;
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
