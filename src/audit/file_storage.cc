// The audit log's directory (records.log, checkpoints.log,
// checkpoint-keys.pem) and its in-memory stand-in, as LogStorage.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "audit/audit_log.h"
#include "audit/audit_log_files.h"
#include "audit/log_storage.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status_macros.h"

namespace keyward::audit {
namespace {

class FileLogStorage final : public LogStorage {
 public:
  explicit FileLogStorage(std::string dir) : dir_(std::move(dir)) {}

  absl::Status Load(
      const std::function<absl::Status(absl::string_view)>& record,
      const std::function<absl::Status(absl::string_view)>& checkpoint)
      override {
    if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::UnavailableError(
          absl::StrCat("cannot create the audit directory ", dir_, ": ",
                       std::strerror(errno)));
    }
    // Records written before, and their offsets.
    const std::string records = Path(dir_, kRecordsFile);
    auto read = ReadWholeFile(records);
    if (!read.ok() && read.status().code() != absl::StatusCode::kNotFound)
      return read.status();
    if (read.ok()) {
      const std::string& content = *read;
      size_t pos = 0;
      while (pos < content.size()) {
        const size_t nl = content.find('\n', pos);
        if (nl == std::string::npos) {
          // A record torn by a crash was never acknowledged: drop the tail.
          Log(LogLevel::kWarning, "audit",
              "dropping an incomplete last record (interrupted write)",
              {{"bytes", absl::StrCat(content.size() - pos)}});
          if (::truncate(records.c_str(), static_cast<off_t>(pos)) != 0) {
            return absl::UnavailableError(absl::StrCat(
                "cannot repair ", records, ": ", std::strerror(errno)));
          }
          break;
        }
        KW_RETURN_IF_ERROR(
            record(absl::string_view(content.data() + pos, nl - pos)));
        offsets_.push_back(pos);
        pos = nl + 1;
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
    // Appended at the end of records.log: a failed write was cut back.
    std::string bytes;
    for (const std::string& line : *lines) {
      bytes.append(line);
      bytes.push_back('\n');
    }
    uint64_t start = 0;
    KW_RETURN_IF_ERROR(WriteDurably(kRecordsFile, bytes, &start));
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& line : *lines) {
      offsets_.push_back(start);
      start += line.size() + 1;
    }
    return absl::OkStatus();
  }

  absl::Status AppendCheckpoint(const std::string& line) override {
    return WriteDurably(kCheckpointsFile, line + "\n");
  }

  absl::Status PublishKey(const std::string& public_key_pem) override {
    std::ifstream kin(Path(dir_, kKeysFile));
    std::string existing((std::istreambuf_iterator<char>(kin)), {});
    if (existing.find(public_key_pem) != std::string::npos)
      return absl::OkStatus();
    return WriteDurably(kKeysFile, public_key_pem);
  }

  absl::StatusOr<std::vector<std::string>> ReadRecords(
      uint64_t from, uint64_t count) const override {
    std::vector<std::string> out;
    int fd = ::open(Path(dir_, kRecordsFile).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return absl::UnavailableError("cannot read the audit log");
    for (uint64_t index = from; index < from + count; ++index) {
      uint64_t pos = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (index >= offsets_.size()) {
          ::close(fd);
          return absl::OutOfRangeError("no such record");
        }
        pos = offsets_[index];
      }
      std::string line;
      char buf[4096];
      for (;;) {
        ssize_t n = ::pread(fd, buf, sizeof(buf), static_cast<off_t>(pos));
        if (n <= 0) break;
        const size_t len = static_cast<size_t>(n);
        const void* nl = std::memchr(buf, '\n', len);
        if (nl != nullptr) {
          line.append(buf, static_cast<const char*>(nl) - buf);
          break;
        }
        line.append(buf, len);
        pos += static_cast<uint64_t>(n);
      }
      out.push_back(std::move(line));
    }
    ::close(fd);
    return out;
  }

  std::string Describe() const override {
    return absl::StrCat("the audit log in ", dir_);
  }
  std::string VerifyCommand() const override {
    return "keyward audit verify --log DIR";
  }

 private:
  // Appends and fdatasyncs; `offset` (optional) receives where the bytes
  // start.  On failure the file is cut back to its previous size.
  absl::Status WriteDurably(const char* file, const std::string& bytes,
                            uint64_t* offset = nullptr) {
    const std::string path = Path(dir_, file);
    int fd =
        ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return absl::UnavailableError(
          absl::StrCat("open ", path, ": ", std::strerror(errno)));
    }
    struct stat st;
    const off_t start = ::fstat(fd, &st) == 0 ? st.st_size : -1;
    if (offset != nullptr)
      *offset = start < 0 ? 0 : static_cast<uint64_t>(start);
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
    if (err != 0 && start >= 0) {
      // Leave no partial record behind; the same bytes are written again.
      [[maybe_unused]] int rc = ::ftruncate(fd, start);
    }
    ::close(fd);
    if (err != 0) {
      return absl::UnavailableError(
          absl::StrCat("writing ", path, ": ", std::strerror(err)));
    }
    return absl::OkStatus();
  }

  const std::string dir_;
  mutable std::mutex mu_;
  std::vector<uint64_t>
      offsets_;  // GUARDED_BY(mu_): byte offset of each record
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
  std::string VerifyCommand() const override {
    return "(an in-memory log cannot be verified)";
  }
  bool durable() const override { return false; }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;  // GUARDED_BY(mu_)
};

}  // namespace

std::shared_ptr<LogStorage> OpenFileLogStorage(const std::string& dir) {
  return std::make_shared<FileLogStorage>(dir);
}

std::shared_ptr<LogStorage> OpenMemoryLogStorage() {
  return std::make_shared<MemoryLogStorage>();
}

}  // namespace keyward::audit
