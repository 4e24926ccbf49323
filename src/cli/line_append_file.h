// An output file that only ever grows by whole lines, each batch on disk
// before the call returns: what `keyward audit export --follow` and
// `--append` write, for a SIEM to tail while it grows.
#ifndef KEYWARD_CLI_LINE_APPEND_FILE_H_
#define KEYWARD_CLI_LINE_APPEND_FILE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace keyward::cli {

class LineAppendFile {
 public:
  // A new regular file at `path` (mode 0600).  Errors: kAlreadyExists when
  // anything is at `path`; kNotFound / kPermissionDenied / kIoError from
  // the file system.
  static absl::StatusOr<std::unique_ptr<LineAppendFile>> Create(const std::string& path);
  // The regular file at `path`, to continue it; created (mode 0600) when
  // absent.  A last line without its newline (a write cut short by a crash
  // or kill -9) is cut off first; cut_bytes() says how much.  Refuses a
  // symbolic link, device, FIFO, socket or directory (usage error).
  static absl::StatusOr<std::unique_ptr<LineAppendFile>> Continue(const std::string& path);

  ~LineAppendFile();
  LineAppendFile(const LineAppendFile&) = delete;
  LineAppendFile& operator=(const LineAppendFile&) = delete;

  // The file's first and last complete lines when opened, without their
  // newline ("" when the file was empty).  Lines over 1 MiB are refused
  // by Continue (kFailedPrecondition): an export's lines are a few KiB.
  const std::string& first_line() const { return first_line_; }
  const std::string& last_line() const { return last_line_; }
  uint64_t cut_bytes() const { return cut_bytes_; }
  const std::string& path() const { return path_; }

  // Appends `lines` (complete lines, each ending in '\n') and flushes them
  // to disk (fdatasync).  On failure the file is cut back to its size
  // before the call, so it never ends in part of a line; the error names
  // the file.
  absl::Status Append(absl::string_view lines);

 private:
  LineAppendFile(int fd, std::string path, uint64_t size)
      : fd_(fd), path_(std::move(path)), size_(size) {}
  absl::Status ReadEnds();
  int fd_;
  std::string path_;
  uint64_t size_;  // bytes of complete lines
  uint64_t cut_bytes_ = 0;
  std::string first_line_, last_line_;
};

}  // namespace keyward::cli

#endif  // KEYWARD_CLI_LINE_APPEND_FILE_H_
