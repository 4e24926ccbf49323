#include "cli/files.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/escaping.h"
#include "base/status_macros.h"
#include "cli/cli.h"
#include "crypto/random.h"
#include "keyward/errors.h"

namespace keyward::cli {
namespace {

absl::Status IoError(const std::string& what, int err) {
  const std::string message = absl::StrCat(what, ": ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(message);
  return MakeError(absl::StatusCode::kUnavailable, ErrorCode::kIoError,
                   message);
}

// The temporary output file, if any, for the signal handler to remove.
char pending_temp[PATH_MAX + 1];
std::atomic<bool> pending{false};

void OnTerminatingSignal(int sig) {
  if (pending.load()) ::unlink(pending_temp);
  const char msg[] = "\nkeyward: interrupted; no output was written\n";
  [[maybe_unused]] ssize_t ignored = ::write(2, msg, sizeof(msg) - 1);
  ::_exit(128 + sig);
}

std::string HumanBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return absl::StrFormat(u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
}

}  // namespace

void InstallSignalHandlers() {
  ::signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = OnTerminatingSignal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
}

absl::StatusOr<std::unique_ptr<Input>> Input::Open(const std::string& path) {
  std::unique_ptr<Input> in(new Input());
  if (path == "-") {
    in->fd_ = 0;
    in->name_ = "stdin";
  } else {
    in->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (in->fd_ < 0) return IoError(absl::StrCat("cannot open ", path), errno);
    in->owned_ = true;
    in->name_ = path;
  }
  struct stat st;
  if (::fstat(in->fd_, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kIoError,
                       absl::StrCat(path, " is a directory"));
    }
    if (S_ISREG(st.st_mode)) {
      in->size_ = static_cast<uint64_t>(st.st_size);
      in->identity_ = {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
    }
  }
  in->stream_ = std::make_unique<FdInputStream>(in->fd_);
  return in;
}

Input::~Input() {
  if (owned_ && fd_ >= 0) ::close(fd_);
}

absl::StatusOr<std::unique_ptr<AtomicOutput>> AtomicOutput::Create(
    const std::string& path, int mode, const Input* must_differ_from) {
  std::unique_ptr<AtomicOutput> out(new AtomicOutput());
  if (path.empty() || path == "-") {
    out->is_stdout_ = true;
    out->fd_ = 1;
    out->stream_ = std::make_unique<FdOutputStream>(1);
    return out;
  }
  // What is at the path now: nothing, or a regular file (not a link to
  // one).  As root, `-o /dev/null` must not turn /dev/null into a file of
  // plaintext.
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    const char* what = S_ISLNK(st.st_mode)    ? "a symbolic link"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                       : S_ISDIR(st.st_mode)  ? "a directory"
                                              : nullptr;
    if (what != nullptr) {
      return UsageError(absl::StrCat(
          path, " is ", what, "; keyward writes only regular files (it replaces the path "
          "with a new file when it is done). Write to a new path, or use -o - and redirect"));
    }
    if (must_differ_from != nullptr && must_differ_from->identity() &&
        *must_differ_from->identity() ==
            std::make_pair(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino))) {
      return UsageError(absl::StrCat(path, " is the input file; write the output elsewhere"));
    }
  } else if (errno != ENOENT) {
    return IoError(absl::StrCat("cannot check ", path), errno);
  }
  std::string dir_copy = path, base_copy = path;
  const std::string dir = ::dirname(dir_copy.data());
  const std::string base = ::basename(base_copy.data());
  out->path_ = path;
  out->mode_ = mode;
  // Unnamed while it is written: nothing to find, nothing to clean up.
  int fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (fd >= 0) {
    out->fd_ = fd;
    out->unnamed_ = true;
    out->stream_ = std::make_unique<FdOutputStream>(fd);
    return out;
  }
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
    return IoError(absl::StrCat("cannot create a file in ", dir), errno);
  }
  std::string temp = absl::StrCat(dir, "/.", base, ".keyward-tmp-XXXXXX");
  if (temp.size() > PATH_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("path too long: ", path));
  }
  fd = ::mkstemp(temp.data());  // mode 0600
  if (fd < 0) {
    return IoError(absl::StrCat("cannot create a file in ", dir), errno);
  }
  std::memcpy(pending_temp, temp.c_str(), temp.size() + 1);
  pending.store(true);
  out->fd_ = fd;
  out->temp_path_ = temp;
  out->stream_ = std::make_unique<FdOutputStream>(fd);
  return out;
}

absl::Status AtomicOutput::Commit() {
  if (is_stdout_) return absl::OkStatus();
  if (::fsync(fd_) != 0) return IoError("cannot flush the output", errno);
  if (::fchmod(fd_, static_cast<mode_t>(mode_)) != 0) {
    return IoError(absl::StrCat("cannot set the mode of ", path_), errno);
  }
  std::string dir_copy = path_, base_copy = path_;
  const std::string dir = ::dirname(dir_copy.data());
  if (unnamed_) {
    // A new path gets the file directly; an existing one is replaced by
    // rename from a name that exists only for that moment.
    const std::string self = absl::StrCat("/proc/self/fd/", fd_);
    if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, path_.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      if (errno != EEXIST) return IoError(absl::StrCat("cannot write ", path_), errno);
      KW_ASSIGN_OR_RETURN(std::string suffix, crypto::RandomBytes(6));
      temp_path_ = absl::StrCat(dir, "/.", ::basename(base_copy.data()), ".keyward-tmp-",
                                absl::BytesToHexString(suffix));
      if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, temp_path_.c_str(), AT_SYMLINK_FOLLOW) !=
          0) {
        return IoError(absl::StrCat("cannot write beside ", path_), errno);
      }
      std::memcpy(pending_temp, temp_path_.c_str(), temp_path_.size() + 1);
      pending.store(true);
      if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
        const int err = errno;
        ::unlink(temp_path_.c_str());
        pending.store(false);
        return IoError(absl::StrCat("cannot rename the output to ", path_), err);
      }
      pending.store(false);
    }
  } else if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    return IoError(absl::StrCat("cannot rename the output to ", path_), errno);
  }
  committed_ = true;
  pending.store(false);
  ::close(fd_);
  fd_ = -1;
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return absl::OkStatus();
}

AtomicOutput::~AtomicOutput() {
  if (is_stdout_) return;
  if (fd_ >= 0) ::close(fd_);  // an unnamed file vanishes with its descriptor
  if (!committed_ && !unnamed_) {
    ::unlink(temp_path_.c_str());
    pending.store(false);
  }
}

ProgressInput::ProgressInput(InputStream& inner, std::string verb,
                             std::optional<uint64_t> total)
    : inner_(inner),
      verb_(std::move(verb)),
      total_(total),
      enabled_(::isatty(2) && total.has_value() && *total > (4u << 20)),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

ProgressInput::~ProgressInput() {
  if (drawn_) std::fprintf(stderr, "\r\033[K");
}

absl::StatusOr<size_t> ProgressInput::Read(absl::Span<uint8_t> buffer) {
  auto n = inner_.Read(buffer);
  if (n.ok()) {
    done_ += *n;
    if (enabled_) Draw(false);
  }
  return n;
}

void ProgressInput::Draw(bool force) {
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  const double seconds =
      std::chrono::duration<double>(now - start_).count() + 1e-9;
  const double pct = total_ && *total_ ? 100.0 * done_ / *total_ : 100.0;
  std::fprintf(stderr, "\r\033[K%s %3.0f%% %s of %s  %s/s", verb_.c_str(), pct,
               HumanBytes(done_).c_str(), HumanBytes(*total_).c_str(),
               HumanBytes(done_ / seconds).c_str());
  drawn_ = true;
}

absl::StatusOr<std::string> CanonicalDirectoryOf(const std::string& path) {
  std::string copy = path;
  const std::string dir = ::dirname(copy.data());
  char resolved[PATH_MAX];
  if (::realpath(dir.c_str(), resolved) == nullptr) {
    return IoError(absl::StrCat("cannot resolve directory ", dir), errno);
  }
  return std::string(resolved);
}

}  // namespace keyward::cli
