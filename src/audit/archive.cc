#include "audit/archive.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "audit/audit_log.h"
#include "audit/audit_log_files.h"
#include "base/file.h"
#include "base/status_macros.h"

namespace keyward::audit {
namespace {

absl::StatusOr<std::vector<std::pair<uint64_t, std::string>>> ListSegmentFiles(
    const std::string& dir) {
  std::vector<std::pair<uint64_t, std::string>> files;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return files;
    return absl::UnavailableError(absl::StrCat("cannot list ", dir, ": ", std::strerror(errno)));
  }
  while (struct dirent* e = ::readdir(d)) {
    if (ParseSegmentFileName(e->d_name)) {
      files.push_back({ParseSegmentFileName(e->d_name)->first, e->d_name});
    }
  }
  ::closedir(d);
  std::sort(files.begin(), files.end());
  return files;
}

absl::Status Mkdir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::UnavailableError(absl::StrCat("cannot create ", dir, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

std::vector<std::string> Lines(const std::string& path) {
  std::vector<std::string> out;
  auto text = ReadWholeFile(path);
  if (!text.ok()) return out;
  for (absl::string_view l : absl::StrSplit(*text, '\n', absl::SkipEmpty())) out.emplace_back(l);
  return out;
}

// The lines of `from` not yet in `to`, appended to it (durably, whole).
absl::Status MergeLines(const std::string& from, const std::string& to) {
  std::vector<std::string> have = Lines(to);
  std::set<std::string> seen(have.begin(), have.end());
  bool added = false;
  for (std::string& l : Lines(from)) {
    if (seen.insert(l).second) {
      have.push_back(std::move(l));
      added = true;
    }
  }
  if (!added) return absl::OkStatus();
  std::string text;
  for (const std::string& l : have) absl::StrAppend(&text, l, "\n");
  return WriteFileDurably(to, text);
}

absl::Status MergeKeys(const std::string& from, const std::string& to) {
  auto src = ReadWholeFile(from);
  if (!src.ok()) return absl::OkStatus();
  std::string have = ReadWholeFile(to).value_or("");
  const std::string end = "-----END PUBLIC KEY-----";
  bool added = false;
  size_t pos = 0;
  for (size_t e; (e = src->find(end, pos)) != std::string::npos; pos = e + end.size()) {
    const size_t b = src->rfind("-----BEGIN PUBLIC KEY-----", e);
    if (b == std::string::npos) break;
    const std::string pem = src->substr(b, e + end.size() - b);
    if (have.find(pem) == std::string::npos) {
      absl::StrAppend(&have, pem, "\n");
      added = true;
    }
  }
  return added ? WriteFileDurably(to, have) : absl::OkStatus();
}

}  // namespace

std::string PrefixFileName(uint64_t first) { return absl::StrFormat("prefix-%020u.json", first); }

absl::StatusOr<ArchiveReport> ArchiveSegments(
    const ArchiveOptions& o, const std::function<absl::Status(const ArchiveMark&)>& mark) {
  const std::string live_segments = Path(o.log_dir, kSegmentsDir);
  KW_ASSIGN_OR_RETURN(auto live, ListSegmentFiles(live_segments));
  if (live.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "no segmented audit log in ", o.log_dir,
        " (no segments/ directory: give the directory of keywardd.yaml's audit.dir)"));
  }
  // The segments closed by a signed checkpoint, by first record.
  std::map<uint64_t, ClosedSegment> closing;
  for (const std::string& line : Lines(Path(o.log_dir, kCheckpointsFile))) {
    auto c = ParseCheckpoint(line);
    if (!c.ok() || !c->segment) continue;
    auto [it, fresh] = closing.emplace(c->segment->first, *c->segment);
    if (!fresh && (it->second.sha256 != c->segment->sha256 || it->second.count != c->segment->count)) {
      return absl::DataLossError(absl::StrCat(
          "checkpoints.log names two different segments starting at record ",
          c->segment->first, ": a checkpoint was forged; nothing was archived (run keyward "
          "audit verify with your pinned key)"));
    }
  }
  KW_RETURN_IF_ERROR(Mkdir(o.archive_dir));
  const std::string dest_segments = Path(o.archive_dir, kSegmentsDir);
  KW_RETURN_IF_ERROR(Mkdir(dest_segments));
  ArchiveReport report;
  std::vector<ArchiveMark> marks;
  for (size_t i = 0; i + 1 < live.size(); ++i) {  // the last one is open
    const auto& [first, name] = live[i];
    auto sig = closing.find(first);
    if (sig == closing.end()) {
      report.skipped.push_back(absl::StrCat(name, ": its closing checkpoint is not signed yet"));
      continue;
    }
    const std::string src = absl::StrCat(live_segments, "/", name);
    KW_ASSIGN_OR_RETURN(SegmentScan scan,
                        ScanSegment(src, [](absl::string_view) { return absl::OkStatus(); }));
    if (scan.sha256 != sig->second.sha256 || scan.count != sig->second.count) {
      return absl::DataLossError(absl::StrCat(
          src, " does not match the digest its closing checkpoint names: the segment was "
               "altered after it closed; nothing was archived from it (run keyward audit "
               "verify)"));
    }
    if (scan.count > 0 && scan.last_time >= o.before) {
      report.skipped.push_back(absl::StrCat(name, ": its last record is not before the cut-off"));
      break;
    }
    ArchivedSegment a;
    a.first = first;
    a.count = scan.count;
    a.sha256 = scan.sha256;
    a.last_time = scan.last_time;
    a.file = absl::StrCat(dest_segments, "/", name);
    auto existing = ScanSegment(a.file, [](absl::string_view) { return absl::OkStatus(); });
    if (existing.ok()) {
      if (existing->sha256 != scan.sha256) {
        return absl::DataLossError(absl::StrCat(
            o.archive_dir, " already holds a different ", name,
            ": archives never overwrite a segment; use another directory, and keep both"));
      }
      a.already = true;
    } else if (existing.status().code() != absl::StatusCode::kNotFound) {
      return existing.status();
    } else {
      KW_ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(src));
      bytes.resize(scan.valid_bytes);
      KW_RETURN_IF_ERROR(WriteFileDurably(a.file, bytes, 0400));
      KW_ASSIGN_OR_RETURN(SegmentScan copy, ScanSegment(a.file, [](absl::string_view) {
                            return absl::OkStatus();
                          }));
      if (copy.sha256 != scan.sha256) {
        return absl::DataLossError(absl::StrCat("the copy ", a.file, " differs from ", src));
      }
    }
    marks.push_back({first, scan.count, scan.sha256, o.archive_dir, o.by, absl::Now()});
    report.segments.push_back(std::move(a));
  }
  // What vouches for the segments: every signed checkpoint and key.
  KW_RETURN_IF_ERROR(MergeLines(Path(o.log_dir, kCheckpointsFile),
                                Path(o.archive_dir, kCheckpointsFile)));
  KW_RETURN_IF_ERROR(MergeKeys(Path(o.log_dir, kKeysFile), Path(o.archive_dir, kKeysFile)));
  // What the archive's first record extends, when it is not record 0.
  KW_ASSIGN_OR_RETURN(auto held, ListSegmentFiles(dest_segments));
  if (!held.empty() && held.front().first > 0) {
    const uint64_t start = held.front().first;
    const std::string prefix = Path(o.archive_dir, PrefixFileName(start).c_str());
    if (::access(prefix.c_str(), F_OK) != 0) {
      // From the live log: its pruned history, and the records after it up
      // to the archive's start.
      PrunedHistory p;
      if (auto text = ReadWholeFile(Path(o.log_dir, kPrunedFile)); text.ok()) {
        KW_ASSIGN_OR_RETURN(p, ParsePruned(*text));
      }
      if (p.size > start) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the live log was pruned beyond record ", start, ", where ", o.archive_dir,
            " starts, and the archive has no ", PrefixFileName(start),
            ": archive into the directory that holds the earlier segments"));
      }
      MerkleTree tree;
      KW_RETURN_IF_ERROR(tree.StartAfterPruned(p.size, p.nodes));
      Hash last = p.last_leaf;
      for (const auto& [first, name] : live) {
        if (first >= start) break;
        KW_RETURN_IF_ERROR(ScanSegment(absl::StrCat(live_segments, "/", name),
                                       [&](absl::string_view r) {
                                         last = LeafHash(r);
                                         tree.Append(last);
                                         return absl::OkStatus();
                                       })
                               .status());
      }
      if (tree.size() != start) {
        return absl::DataLossError(absl::StrCat("the live log does not reach record ", start));
      }
      PrunedHistory prefix_state;
      prefix_state.size = start;
      KW_ASSIGN_OR_RETURN(prefix_state.nodes, tree.CompactRange(start));
      prefix_state.last_leaf = last;
      KW_RETURN_IF_ERROR(WriteFileDurably(prefix, SerializePruned(prefix_state)));
    }
  }
  // The archive lists what it holds, so that a segment later removed from
  // it is noticed (`audit verify --archive`).
  std::set<uint64_t> listed;
  for (const std::string& line : Lines(Path(o.archive_dir, kArchivedFile))) {
    if (auto m = ParseArchiveMark(line); m.ok()) listed.insert(m->first);
  }
  for (const ArchiveMark& m : marks) {
    if (!listed.contains(m.first)) {
      KW_RETURN_IF_ERROR(
          AppendLineDurably(Path(o.archive_dir, kArchivedFile), SerializeArchiveMark(m)));
    }
  }
  for (const ArchiveMark& m : marks) KW_RETURN_IF_ERROR(mark(m));
  return report;
}

}  // namespace keyward::audit
