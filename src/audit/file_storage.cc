// The audit log's directory (segments/, checkpoints.log,
// checkpoint-keys.pem, pruned.json, archived.log) and its in-memory
// stand-in, as LogStorage.
// Long on purpose: one storage with one lock; loading, appending, closing,
// pruning and reading share the segment list and read best together.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "audit/audit_log.h"
#include "audit/audit_log_files.h"
#include "audit/log_storage.h"
#include "audit/record_codec.h"
#include "audit/segment.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status_macros.h"

namespace keyward::audit {
namespace {

class FileLogStorage final : public LogStorage {
 public:
  FileLogStorage(std::string dir, SegmentLimits limits)
      : dir_(std::move(dir)), seg_dir_(Path(dir_, kSegmentsDir)), limits_(limits) {}
  ~FileLogStorage() override { CloseFd(); }

  absl::StatusOr<std::optional<PrunedHistory>> LoadPruned() override {
    for (const std::string& d : {dir_, seg_dir_}) {
      if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) {
        return absl::UnavailableError(
            absl::StrCat("cannot create the audit directory ", d, ": ", std::strerror(errno)));
      }
    }
    auto text = ReadWholeFile(Path(dir_, kPrunedFile));
    if (!text.ok()) {
      if (text.status().code() == absl::StatusCode::kNotFound) return std::nullopt;
      return text.status();
    }
    KW_ASSIGN_OR_RETURN(PrunedHistory p, ParsePruned(*text));
    pruned_ = p.size;
    return p;
  }

  absl::Status Load(
      const std::function<absl::Status(absl::string_view)>& record,
      const std::function<absl::Status(absl::string_view)>& checkpoint)
      override {
    CloseFd();  // what is read here may be cut back to its last whole record
    // A records.log from before segments becomes the first segment, as is.
    const std::string legacy = Path(dir_, kRecordsFile);
    auto listed = ListSegments();
    if (!listed.ok()) return listed.status();
    std::vector<std::pair<uint64_t, std::string>> files = std::move(*listed);
    struct stat legacy_st;
    if (::stat(legacy.c_str(), &legacy_st) == 0 && legacy_st.st_size == 0 && files.empty()) {
      ::unlink(legacy.c_str());  // an empty records.log: nothing to keep
    }
    if (::access(legacy.c_str(), F_OK) == 0) {
      if (!files.empty()) {
        return Tampered(absl::StrCat("both ", legacy, " and segment files exist"));
      }
      const std::string moved = absl::StrCat(seg_dir_, "/", SegmentFileName(0, true));
      if (::rename(legacy.c_str(), moved.c_str()) != 0) {
        return absl::UnavailableError(
            absl::StrCat("cannot move ", legacy, " into ", seg_dir_, ": ", std::strerror(errno)));
      }
      KW_RETURN_IF_ERROR(SyncDirectory(seg_dir_));
      KW_RETURN_IF_ERROR(SyncDirectory(dir_));
      Log(LogLevel::kInfo, "audit", "records.log became the log's first segment",
          {{"segment", moved}});
      files.push_back({0, moved});
    }
    // Finish a prune that was interrupted after pruned.json was written.
    while (files.size() > 1 && files[1].first <= pruned_) {
      Log(LogLevel::kWarning, "audit", "removing a segment pruned before a crash",
          {{"segment", files.front().second}});
      if (::unlink(files.front().second.c_str()) != 0 && errno != ENOENT) {
        return absl::UnavailableError(absl::StrCat("cannot remove ", files.front().second));
      }
      files.erase(files.begin());
    }
    if (!files.empty() && files.front().first != pruned_) {
      return Tampered(absl::StrCat(
          "the oldest segment starts at record ", files.front().first, " but the log ",
          pruned_ == 0 ? std::string("starts at 0")
                       : absl::StrCat("was pruned up to ", pruned_),
          ": records ", std::min(pruned_, files.front().first), "..",
          std::max(pruned_, files.front().first) - 1, " are missing or were not pruned"));
    }
    uint64_t expect = pruned_;
    for (size_t i = 0; i < files.size(); ++i) {
      const auto& [first, path] = files[i];
      if (first != expect) {
        return Tampered(absl::StrCat("segment ", path, " starts at record ", first,
                                     " but the one before ends at ", expect,
                                     ": a segment is missing or was renamed"));
      }
      const bool last = i + 1 == files.size();
      KW_ASSIGN_OR_RETURN(SegmentScan scan, ScanSegment(path, record));
      if (scan.torn && !last) {
        return Tampered(absl::StrCat("closed segment ", path, " ends inside a record"));
      }
      if (scan.torn) {
        Log(LogLevel::kWarning, "audit",
            "dropping an incomplete last record (interrupted write)",
            {{"segment", std::string(path)}, {"bytes_kept", absl::StrCat(scan.valid_bytes)}});
        if (::truncate(path.c_str(), static_cast<off_t>(scan.valid_bytes)) != 0) {
          return absl::UnavailableError(
              absl::StrCat("cannot repair ", path, ": ", std::strerror(errno)));
        }
      }
      if (!last) ::chmod(path.c_str(), 0400);  // closed before a crash could make it so
      Segment s;
      s.status.first = first;
      s.status.count = scan.count;
      s.status.bytes = scan.valid_bytes;
      s.status.json = scan.json;
      s.status.closed = !last;
      s.status.created = scan.created;
      s.status.first_time = scan.first_time;
      s.status.last_time = scan.last_time;
      s.status.sha256 = scan.sha256;
      s.status.path = path;
      s.offsets = std::move(scan.offsets);
      if (last && !scan.json && scan.valid_bytes >= kSegmentHeaderBytes) {
        table_ = std::move(scan.table);
        stream_ = scan.stream;
      } else if (!scan.json) {
        Remember(first, std::make_shared<const StringTable>(std::move(scan.table)));
      }
      segments_.push_back(std::move(s));
      expect = first + scan.count;
    }
    if (segments_.empty()) {
      KW_RETURN_IF_ERROR(StartSegment(pruned_));
    } else if (segments_.back().status.json ||
               segments_.back().status.bytes < kSegmentHeaderBytes) {
      if (segments_.back().status.json) {
        // The moved records.log is closed; records go on in binary.
        auto closed = CloseSegment();
        if (!closed.ok()) return closed.status();
      } else {
        // A segment created without its header (crash): write it again.
        const uint64_t first = segments_.back().status.first;
        ::unlink(segments_.back().status.path.c_str());
        segments_.pop_back();
        KW_RETURN_IF_ERROR(StartSegment(first));
      }
    }
    // Archive marks.
    if (auto marks = ReadWholeFile(Path(dir_, kArchivedFile)); marks.ok()) {
      for (absl::string_view line : absl::StrSplit(*marks, '\n', absl::SkipEmpty())) {
        KW_ASSIGN_OR_RETURN(ArchiveMark m, ParseArchiveMark(line));
        archived_[m.first] = m;
      }
    }
    auto content = ReadWholeFile(Path(dir_, kCheckpointsFile));
    if (!content.ok() &&
        content.status().code() != absl::StatusCode::kNotFound) {
      return content.status();
    }
    if (content.ok()) {
      size_t pos = 0;
      while (pos < content->size()) {
        const size_t nl = content->find('\n', pos);
        if (nl == std::string::npos)
          break;  // a line torn by a crash: never used
        const absl::string_view line(content->data() + pos, nl - pos);
        pos = nl + 1;
        if (!line.empty()) KW_RETURN_IF_ERROR(checkpoint(line));
      }
    }
    return absl::OkStatus();
  }

  absl::Status AppendRecords(uint64_t, std::vector<std::string>* lines,
                             bool*) override {
    std::lock_guard<std::mutex> lock(mu_);
    Segment& open = segments_.back();
    const size_t table_size = table_.size();
    std::string bytes;
    std::vector<uint64_t> starts;
    for (const std::string& line : *lines) {
      auto stored = CompactRecord(line, &table_);
      if (!stored.ok()) {
        table_.Truncate(table_size);
        return absl::InternalError(absl::StrCat("an audit record could not be stored: ",
                                                stored.status().message()));
      }
      starts.push_back(bytes.size());
      codec::PutVarint(&bytes, stored->size());
      bytes.append(*stored);
    }
    if (absl::Status s = WriteDurably(bytes); !s.ok()) {
      table_.Truncate(table_size);
      return s;
    }
    stream_.Update(bytes);
    for (size_t i = 0; i < lines->size(); ++i) {
      if (open.status.count % kOffsetStride == 0) {
        open.offsets.push_back(open.status.bytes + starts[i]);
      }
      if (auto t = TimeOf((*lines)[i])) {
        if (open.status.count == 0) open.status.first_time = *t;
        open.status.last_time = *t;
      }
      ++open.status.count;
    }
    open.status.bytes += bytes.size();
    return absl::OkStatus();
  }

  absl::Status AppendCheckpoint(const std::string& line) override {
    return AppendLineDurably(Path(dir_, kCheckpointsFile), line);
  }

  absl::Status PublishKey(const std::string& public_key_pem) override {
    std::ifstream kin(Path(dir_, kKeysFile));
    std::string existing((std::istreambuf_iterator<char>(kin)), {});
    if (existing.find(public_key_pem) != std::string::npos)
      return absl::OkStatus();
    return AppendLineDurably(Path(dir_, kKeysFile),
                             absl::StripSuffix(public_key_pem, "\n"));
  }

  absl::StatusOr<std::vector<std::string>> ReadRecords(
      uint64_t from, uint64_t count) const override {
    // The lock covers only finding the segment: the reads and scans run
    // without it, so a reader never holds up the writer.
    std::vector<std::string> out;
    out.reserve(count);
    while (count > 0) {
      Segment seg;
      std::shared_ptr<const StringTable> table;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (from < pruned_) return absl::FailedPreconditionError("that record was pruned");
        auto it = std::upper_bound(segments_.begin(), segments_.end(), from,
                                   [](uint64_t i, const Segment& s) { return i < s.status.first; });
        if (it == segments_.begin()) return absl::OutOfRangeError("no such record");
        seg = *std::prev(it);
        if (from >= seg.status.first + seg.status.count) {
          return absl::OutOfRangeError("no such record");
        }
        if (!seg.status.json) {
          if (!seg.status.closed) {
            table = std::make_shared<const StringTable>(table_);
          } else if (auto t = tables_.find(seg.status.first); t != tables_.end()) {
            table = t->second;
          }
        }
      }
      if (!seg.status.json && table == nullptr) {
        // A closed segment read for the first time: its strings, once.
        KW_ASSIGN_OR_RETURN(SegmentScan scan,
                            ScanSegment(seg.status.path, [](absl::string_view) {
                              return absl::OkStatus();
                            }));
        auto built = std::make_shared<const StringTable>(std::move(scan.table));
        std::lock_guard<std::mutex> lock(mu_);
        Remember(seg.status.first, built);
        table = std::move(built);
      }
      const uint64_t take = std::min(count, seg.status.first + seg.status.count - from);
      KW_RETURN_IF_ERROR(ReadFromSegment(seg, table.get(), from - seg.status.first, take, &out));
      from += take;
      count -= take;
    }
    return out;
  }

  std::string Describe() const override {
    return absl::StrCat("the audit log in ", dir_);
  }
  std::string VerifyCommand() const override {
    return "keyward audit verify --log DIR";
  }
  bool binary_records() const override { return true; }
  bool segmented() const override { return true; }

  std::vector<SegmentStatus> Segments() const override {
    // `keyward audit archive` notes segments in archived.log from outside
    // keywardd: read it again.
    std::map<uint64_t, ArchiveMark> marks;
    if (auto text = ReadWholeFile(Path(dir_, kArchivedFile)); text.ok()) {
      for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
        if (auto m = ParseArchiveMark(line); m.ok()) marks[m->first] = *m;
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [first, m] : marks) archived_[first] = m;
    std::vector<SegmentStatus> out;
    for (const Segment& s : segments_) {
      SegmentStatus st = s.status;
      if (!st.closed) st.sha256 = stream_.Digest();
      if (auto m = archived_.find(st.first); m != archived_.end()) st.archived = m->second;
      out.push_back(std::move(st));
    }
    return out;
  }

  bool SegmentDue(absl::Time now) const override {
    std::lock_guard<std::mutex> lock(mu_);
    const SegmentStatus& s = segments_.back().status;
    return s.count > 0 && (s.bytes >= limits_.max_bytes || now - s.created >= limits_.max_age);
  }

  absl::StatusOr<SegmentStatus> CloseSegment() override {
    std::lock_guard<std::mutex> lock(mu_);
    return CloseLocked();
  }

  absl::Status Prune(const PrunedHistory& history) override {
    KW_RETURN_IF_ERROR(WriteFileDurably(Path(dir_, kPrunedFile), SerializePruned(history)));
    CrashPoint("pruned-json-written");
    std::lock_guard<std::mutex> lock(mu_);
    pruned_ = history.size;
    bool removed = false;
    while (segments_.size() > 1 &&
           segments_.front().status.first + segments_.front().status.count <= history.size) {
      if (::unlink(segments_.front().status.path.c_str()) != 0 && errno != ENOENT) {
        return absl::UnavailableError(absl::StrCat("cannot remove ",
                                                   segments_.front().status.path, ": ",
                                                   std::strerror(errno)));
      }
      tables_.erase(segments_.front().status.first);
      segments_.erase(segments_.begin());
      if (!removed) CrashPoint("prune-half-removed");
      removed = true;
    }
    return SyncDirectory(seg_dir_);
  }

  absl::Status MarkArchived(const ArchiveMark& mark) override {
    KW_RETURN_IF_ERROR(AppendLineDurably(Path(dir_, kArchivedFile), SerializeArchiveMark(mark)));
    std::lock_guard<std::mutex> lock(mu_);
    archived_[mark.first] = mark;
    return absl::OkStatus();
  }

 private:
  struct Segment {
    SegmentStatus status;
    std::vector<uint64_t> offsets;  // of every kOffsetStride-th record
  };

  static std::optional<absl::Time> TimeOf(absl::string_view canonical) {
    auto d = ReadChainFields(canonical);
    if (!d.ok()) return std::nullopt;
    // Format byte, seq, prev prefix, then the time.
    absl::string_view in = canonical.substr(1);
    uint64_t v = 0;
    if (!codec::GetVarint(&in, &v) || in.size() < codec::kPrevPrefixBytes) return std::nullopt;
    in.remove_prefix(codec::kPrevPrefixBytes);
    if (!codec::GetVarint(&in, &v)) return std::nullopt;
    return absl::FromUnixMicros(codec::UnZigZag64(v));
  }

  absl::StatusOr<std::vector<std::pair<uint64_t, std::string>>> ListSegments() const {
    std::vector<std::pair<uint64_t, std::string>> files;
    DIR* d = ::opendir(seg_dir_.c_str());
    if (d == nullptr) {
      return absl::UnavailableError(absl::StrCat("cannot list ", seg_dir_, ": ",
                                                 std::strerror(errno)));
    }
    while (struct dirent* e = ::readdir(d)) {
      if (auto named = ParseSegmentFileName(e->d_name)) {
        files.push_back({named->first, absl::StrCat(seg_dir_, "/", e->d_name)});
      }
    }
    ::closedir(d);
    std::sort(files.begin(), files.end());
    return files;
  }

  // REQUIRES: mu_.  Keeps a few closed segments' string tables.
  void Remember(uint64_t first, std::shared_ptr<const StringTable> table) const {
    if (tables_.size() >= 8) tables_.erase(tables_.begin());
    tables_[first] = std::move(table);
  }

  // Records k..k+n-1 of `seg` (a copy), expanded with `table` (null for
  // JSON lines).  No lock: closed segments never change, and the open one
  // is read only up to records already written.
  static absl::Status ReadFromSegment(const Segment& seg, const StringTable* table, uint64_t k,
                                      uint64_t n, std::vector<std::string>* out) {
    int fd = ::open(seg.status.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return absl::UnavailableError("cannot read the audit log");
    uint64_t offset = seg.offsets[k / kOffsetStride];
    uint64_t skip = k % kOffsetStride;
    std::string buf;
    size_t pos = 0;
    auto more = [&]() {
      char chunk[1 << 16];
      ssize_t r = ::pread(fd, chunk, sizeof(chunk), static_cast<off_t>(offset));
      if (r <= 0) return false;
      buf.erase(0, pos);
      pos = 0;
      buf.append(chunk, static_cast<size_t>(r));
      offset += static_cast<uint64_t>(r);
      return true;
    };
    absl::Status status;
    while (n > 0) {
      absl::string_view in(buf.data() + pos, buf.size() - pos);
      std::string record;
      size_t used = 0;
      if (seg.status.json) {
        const size_t nl = in.find('\n');
        if (nl == absl::string_view::npos) {
          if (!more()) break;
          continue;
        }
        record = std::string(in.substr(0, nl));
        used = nl + 1;
      } else {
        absl::string_view v = in;
        uint64_t len = 0;
        if (!codec::GetVarint(&v, &len) || v.size() < len) {
          if (!more()) break;
          continue;
        }
        used = in.size() - v.size() + len;
        if (skip == 0) {
          auto e = ExpandWith(v.substr(0, len), *table);
          if (!e.ok()) {
            status = e.status();
            break;
          }
          record = std::move(*e);
        }
      }
      pos += used;
      if (skip > 0) {
        --skip;
        continue;
      }
      out->push_back(std::move(record));
      --n;
    }
    ::close(fd);
    if (!status.ok()) return status;
    if (n > 0) return absl::DataLossError(absl::StrCat(seg.status.path, " ends early"));
    return absl::OkStatus();
  }

  // Resolves references against a finished table without changing it.
  static absl::StatusOr<std::string> ExpandWith(absl::string_view stored,
                                                const StringTable& table) {
    std::string out;
    KW_RETURN_IF_ERROR(codec::Walk(
        stored, {[&](absl::string_view raw) { out.append(raw.data(), raw.size()); },
                 [&](codec::Field, const codec::StringToken& t) -> absl::Status {
                   if (t.kind != codec::kRef) {
                     codec::PutToken(&out, t);
                     return absl::OkStatus();
                   }
                   const std::string* s = table.At(t.ref);
                   if (s == nullptr) return absl::DataLossError("a dangling string reference");
                   codec::StringToken raw;
                   raw.payload = *s;
                   codec::PutToken(&out, raw);
                   return absl::OkStatus();
                 }}));
    return out;
  }

  // REQUIRES: mu_ (or Load).  Creates segments/<first>.seg and makes it
  // the open segment.
  absl::Status StartSegment(uint64_t first) {
    const std::string path = absl::StrCat(seg_dir_, "/", SegmentFileName(first, false));
    const absl::Time now = absl::Now();
    const std::string header = SegmentHeader(first, now);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      return absl::UnavailableError(absl::StrCat("cannot create ", path, ": ",
                                                 std::strerror(errno)));
    }
    int err = 0;
    if (::write(fd, header.data(), header.size()) != static_cast<ssize_t>(header.size())) {
      err = errno == 0 ? EIO : errno;
    }
    if (err == 0 && ::fdatasync(fd) != 0) err = errno;
    if (err == 0) {
      if (absl::Status s = SyncDirectory(seg_dir_); !s.ok()) err = EIO;
    }
    ::close(fd);
    if (err != 0) {
      ::unlink(path.c_str());
      return absl::UnavailableError(absl::StrCat("cannot create ", path, ": ",
                                                 std::strerror(err)));
    }
    Segment s;
    s.status.first = first;
    s.status.bytes = header.size();
    s.status.created = now;
    s.status.path = path;
    segments_.push_back(std::move(s));
    table_ = StringTable();
    stream_ = crypto::Sha256Stream();
    stream_.Update(header);
    return absl::OkStatus();
  }

  // REQUIRES: mu_ (or Load).
  absl::StatusOr<SegmentStatus> CloseLocked() {
    Segment& open = segments_.back();
    const uint64_t next = open.status.first + open.status.count;
    StringTable table = table_;
    const crypto::Sha256Stream stream = stream_;
    // The next segment first: if it cannot be created, nothing changed.
    // (Every append was fdatasynced already.)
    KW_RETURN_IF_ERROR(StartSegment(next));
    CrashPoint("segment-created");
    Segment& closed = segments_[segments_.size() - 2];
    ::chmod(closed.status.path.c_str(), 0400);
    closed.status.closed = true;
    if (!closed.status.json) {
      closed.status.sha256 = stream.Digest();
      Remember(closed.status.first, std::make_shared<const StringTable>(std::move(table)));
    }
    return closed.status;
  }

  // Appends to the open segment and fdatasyncs; cut back on failure.  The
  // file is opened for each batch (a syscall beside an fdatasync), so that
  // a segment replaced under keywardd is noticed, not written through a
  // stale descriptor.
  absl::Status WriteDurably(const std::string& bytes) {
    const std::string& path = segments_.back().status.path;
    const off_t start = static_cast<off_t>(segments_.back().status.bytes);
    // The open segment stays open between batches (an open and a close
    // cost more than the stat); a new segment, a failed write, or a path
    // that no longer names the file written to (moved, deleted, replaced)
    // opens it again, so records never go where no reader looks.
    struct stat now {};
    if (fd_ >= 0 && (fd_path_ != path || ::stat(path.c_str(), &now) != 0 ||
                     now.st_dev != fd_dev_ || now.st_ino != fd_ino_)) {
      CloseFd();
    }
    if (fd_ < 0) {
      fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
      if (fd_ < 0) {
        return absl::UnavailableError(absl::StrCat("open ", path, ": ", std::strerror(errno)));
      }
      struct stat opened {};
      if (::fstat(fd_, &opened) != 0) {
        const int err = errno;
        CloseFd();
        return absl::UnavailableError(absl::StrCat("stat ", path, ": ", std::strerror(err)));
      }
      fd_path_ = path;
      fd_dev_ = opened.st_dev;
      fd_ino_ = opened.st_ino;
    }
    const int fd = fd_;
    size_t done = 0;
    int err = 0;
    while (done < bytes.size()) {
      ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        err = errno;
        break;
      }
      done += static_cast<size_t>(n);
    }
    if (err == 0 && ::fdatasync(fd) != 0) err = errno;
    if (err != 0) {
      // Leave no partial record behind; the same records are written again.
      [[maybe_unused]] int rc = ::ftruncate(fd, start);
      CloseFd();
      return absl::UnavailableError(
          absl::StrCat("writing ", path, ": ", std::strerror(err)));
    }
    return absl::OkStatus();
  }

  void CloseFd() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    fd_path_.clear();
  }

  const std::string dir_;
  const std::string seg_dir_;
  const SegmentLimits limits_;
  mutable std::mutex mu_;
  uint64_t pruned_ = 0;                  // GUARDED_BY(mu_)
  std::vector<Segment> segments_;        // GUARDED_BY(mu_); the last is open
  int fd_ = -1;                          // the open segment's, once written to
  std::string fd_path_;
  dev_t fd_dev_ = 0;
  ino_t fd_ino_ = 0;
  StringTable table_;                    // the open segment's
  crypto::Sha256Stream stream_;          // the open segment's digest so far
  // A few closed segments' string tables.  GUARDED_BY(mu_)
  mutable std::map<uint64_t, std::shared_ptr<const StringTable>> tables_;
  mutable std::map<uint64_t, ArchiveMark> archived_;  // GUARDED_BY(mu_)
};

class MemoryLogStorage final : public LogStorage {
 public:
  absl::Status Load(
      const std::function<absl::Status(absl::string_view)>&,
      const std::function<absl::Status(absl::string_view)>&) override {
    return absl::OkStatus();
  }
  absl::Status AppendRecords(uint64_t, std::vector<std::string>* lines,
                             bool*) override {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.insert(lines_.end(), lines->begin(), lines->end());
    return absl::OkStatus();
  }
  absl::Status AppendCheckpoint(const std::string&) override {
    return absl::OkStatus();
  }
  absl::Status PublishKey(const std::string&) override {
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::string>> ReadRecords(
      uint64_t from, uint64_t count) const override {
    std::lock_guard<std::mutex> lock(mu_);
    if (from + count > lines_.size())
      return absl::OutOfRangeError("no such record");
    return std::vector<std::string>(
        lines_.begin() + static_cast<ptrdiff_t>(from),
        lines_.begin() + static_cast<ptrdiff_t>(from + count));
  }
  std::string Describe() const override { return "the in-memory audit log"; }
  bool binary_records() const override { return true; }
  std::string VerifyCommand() const override {
    return "(an in-memory log cannot be verified)";
  }
  bool durable() const override { return false; }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;  // GUARDED_BY(mu_)
};

}  // namespace

std::shared_ptr<LogStorage> OpenFileLogStorage(const std::string& dir,
                                               SegmentLimits limits) {
  return std::make_shared<FileLogStorage>(dir, limits);
}

std::shared_ptr<LogStorage> OpenMemoryLogStorage() {
  return std::make_shared<MemoryLogStorage>();
}

}  // namespace keyward::audit
