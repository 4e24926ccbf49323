#include "audit/testing/log_files.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "audit/record.h"
#include "audit/record_codec.h"
#include "audit/segment.h"
#include "base/status_macros.h"

namespace keyward::audit::testing {
namespace {

std::vector<std::string> SegmentFiles(const std::string& dir) {
  std::vector<std::pair<uint64_t, std::string>> files;
  const std::string seg = absl::StrCat(dir, "/", kSegmentsDir);
  if (DIR* d = ::opendir(seg.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      if (auto n = ParseSegmentFileName(e->d_name)) {
        files.push_back({n->first, absl::StrCat(seg, "/", e->d_name)});
      }
    }
    ::closedir(d);
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> out;
  for (auto& [first, path] : files) out.push_back(path);
  if (out.empty() && ::access(absl::StrCat(dir, "/records.log").c_str(), F_OK) == 0) {
    out.push_back(absl::StrCat(dir, "/records.log"));
  }
  return out;
}

}  // namespace

std::string OpenSegmentPath(const std::string& dir) {
  std::vector<std::string> files = SegmentFiles(dir);
  return files.empty() ? std::string() : files.back();
}

absl::StatusOr<std::vector<std::string>> ReadLogLines(const std::string& dir) {
  std::vector<std::string> lines;
  Hash prev{};
  if (std::ifstream in(absl::StrCat(dir, "/", kPrunedFile)); in) {
    std::string text((std::istreambuf_iterator<char>(in)), {});
    KW_ASSIGN_OR_RETURN(PrunedHistory p, ParsePruned(text));
    prev = p.last_leaf;
  }
  for (const std::string& path : SegmentFiles(dir)) {
    if (absl::EndsWith(path, "records.log")) {
      std::ifstream in(path);
      std::string line;
      while (std::getline(in, line)) lines.push_back(line);
      continue;
    }
    KW_RETURN_IF_ERROR(ScanSegment(path, [&](absl::string_view r) -> absl::Status {
                         KW_ASSIGN_OR_RETURN(std::string json, RecordAsJson(r, prev));
                         prev = LeafHash(r);
                         lines.push_back(std::move(json));
                         return absl::OkStatus();
                       }).status());
  }
  return lines;
}

absl::StatusOr<std::vector<Hash>> WriteLogLines(const std::string& dir,
                                                const std::vector<std::string>& lines,
                                                bool rechain) {
  const std::vector<std::string> old = SegmentFiles(dir);
  uint64_t first = 0;
  if (!old.empty()) {
    if (auto n = ParseSegmentFileName(old.front().substr(old.front().rfind('/') + 1))) {
      first = n->first;
    }
  }
  Hash prev{};
  if (std::ifstream in(absl::StrCat(dir, "/", kPrunedFile)); in) {
    std::string text((std::istreambuf_iterator<char>(in)), {});
    KW_ASSIGN_OR_RETURN(PrunedHistory p, ParsePruned(text));
    prev = p.last_leaf;
  }
  std::string bytes = SegmentHeader(first, absl::Now());
  StringTable table;
  std::vector<Hash> leaves;
  for (size_t i = 0; i < lines.size(); ++i) {
    KW_ASSIGN_OR_RETURN(ParsedJsonRecord p, ParseJsonRecord(lines[i]));
    const std::string canonical =
        rechain ? ChainBinaryRecord(EncodeRecordBody(p.record), first + i, prev)
                : ChainBinaryRecord(EncodeRecordBody(p.record), p.seq, p.prev);
    prev = LeafHash(canonical);
    leaves.push_back(prev);
    KW_ASSIGN_OR_RETURN(std::string stored, CompactRecord(canonical, &table));
    codec::PutVarint(&bytes, stored.size());
    bytes.append(stored);
  }
  for (const std::string& path : old) {
    ::chmod(path.c_str(), 0600);
    ::unlink(path.c_str());
  }
  ::mkdir(absl::StrCat(dir, "/", kSegmentsDir).c_str(), 0700);
  KW_RETURN_IF_ERROR(WriteFileDurably(
      absl::StrCat(dir, "/", kSegmentsDir, "/", SegmentFileName(first, false)), bytes));
  return leaves;
}

std::string ReadLogText(const std::string& dir) {
  auto lines = ReadLogLines(dir);
  if (!lines.ok()) {
    std::fprintf(stderr, "cannot read the audit log in %s: %s\n", dir.c_str(),
                 std::string(lines.status().message()).c_str());
    std::abort();
  }
  std::string text;
  for (const std::string& l : *lines) absl::StrAppend(&text, l, "\n");
  return text;
}

void WriteLogText(const std::string& dir, const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  if (absl::Status s = WriteLogLines(dir, lines).status(); !s.ok()) {
    std::fprintf(stderr, "cannot write the audit log in %s: %s\n", dir.c_str(),
                 std::string(s.message()).c_str());
    std::abort();
  }
}

}  // namespace keyward::audit::testing
