#include "cli/line_append_file.h"

#include <fcntl.h>
#include <libgen.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "cli/cli.h"
#include "keyward/errors.h"

namespace keyward::cli {
namespace {

// Export lines are a few KiB; a longer one means this is not an export.
constexpr uint64_t kMaxLine = 1 << 20;

absl::Status FileError(const std::string& what, int err) {
  const std::string message = absl::StrCat(what, ": ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(message);
  return MakeError(absl::StatusCode::kUnavailable, ErrorCode::kIoError, message);
}

absl::Status ReadAt(int fd, uint64_t offset, size_t n, std::string* out) {
  out->resize(n);
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, out->data() + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return FileError("cannot read the output file", errno);
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  out->resize(done);
  return absl::OkStatus();
}

void SyncDirectoryOf(const std::string& path) {
  std::string copy = path;
  const int dfd = ::open(::dirname(copy.data()), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<LineAppendFile>> LineAppendFile::Create(const std::string& path) {
  // O_EXCL also refuses a symbolic link at the path, dangling or not.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      return absl::AlreadyExistsError(absl::StrCat(path, " already exists"));
    }
    return FileError(absl::StrCat("cannot create ", path), errno);
  }
  SyncDirectoryOf(path);
  return std::unique_ptr<LineAppendFile>(new LineAppendFile(fd, path, 0));
}

absl::StatusOr<std::unique_ptr<LineAppendFile>> LineAppendFile::Continue(
    const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    return UsageError(absl::StrCat(path, " is not a regular file; --append continues an export "
                                         "file written earlier"));
  }
  const int fd =
      ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return FileError(absl::StrCat("cannot open ", path), errno);
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const int err = errno;
    ::close(fd);
    return UsageError(absl::StrCat(path, " is not a regular file (", std::strerror(err), ")"));
  }
  SyncDirectoryOf(path);
  std::unique_ptr<LineAppendFile> file(
      new LineAppendFile(fd, path, static_cast<uint64_t>(st.st_size)));
  KW_RETURN_IF_ERROR(file->ReadEnds());
  return file;
}

absl::Status LineAppendFile::ReadEnds() {
  if (size_ == 0) return absl::OkStatus();
  const auto too_long = [&] {
    return absl::FailedPreconditionError(absl::StrCat(
        path_, " has a line over 1 MiB: it is not an audit export; append to an export "
               "file or write a new one"));
  };
  // The tail: the last complete line, and any part of one after it.
  uint64_t start = size_ > 2 * kMaxLine ? size_ - 2 * kMaxLine : 0;
  std::string tail;
  KW_RETURN_IF_ERROR(ReadAt(fd_, start, static_cast<size_t>(size_ - start), &tail));
  if (tail.back() != '\n') {
    const size_t nl = tail.rfind('\n');
    if (nl == std::string::npos && start > 0) return too_long();
    const uint64_t keep = nl == std::string::npos ? 0 : start + nl + 1;
    if (::ftruncate(fd_, static_cast<off_t>(keep)) != 0 || ::fsync(fd_) != 0) {
      return FileError(absl::StrCat("cannot cut the unfinished last line of ", path_), errno);
    }
    cut_bytes_ = size_ - keep;
    size_ = keep;
    tail.resize(nl == std::string::npos ? 0 : nl + 1);
    if (size_ == 0) return absl::OkStatus();
  }
  tail.pop_back();  // the last newline
  const size_t before = tail.rfind('\n');
  if (before == std::string::npos && start > 0) return too_long();
  last_line_ = before == std::string::npos ? tail : tail.substr(before + 1);
  if (last_line_.size() > kMaxLine) return too_long();

  std::string head;
  KW_RETURN_IF_ERROR(ReadAt(fd_, 0, static_cast<size_t>(std::min(size_, kMaxLine + 1)), &head));
  const size_t nl = head.find('\n');
  if (nl == std::string::npos) return too_long();
  first_line_ = head.substr(0, nl);
  return absl::OkStatus();
}

LineAppendFile::~LineAppendFile() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status LineAppendFile::Append(absl::string_view lines) {
  if (lines.empty()) return absl::OkStatus();
  absl::string_view rest = lines;
  int err = 0;
  while (!rest.empty()) {
    const ssize_t n = ::write(fd_, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = errno;
      break;
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  if (err == 0 && ::fdatasync(fd_) != 0) err = errno;
  if (err != 0) {
    // Back to the last whole line; what was on disk before stays.
    if (::ftruncate(fd_, static_cast<off_t>(size_)) == 0) ::fdatasync(fd_);
    return FileError(absl::StrCat("cannot write ", path_, " (it still ends after its last "
                                  "complete record)"),
                     err);
  }
  size_ += lines.size();
  return absl::OkStatus();
}

}  // namespace keyward::cli
