// File handling for the CLI: inputs from a path or stdin, outputs written
// atomically (temporary name in the target directory, renamed only on
// success), and a progress line on a terminal.
#ifndef KEYWARD_CLI_FILES_H_
#define KEYWARD_CLI_FILES_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "keyward/io.h"

namespace keyward::cli {

// An input file ("-" is stdin).
class Input {
 public:
  static absl::StatusOr<std::unique_ptr<Input>> Open(const std::string& path);
  ~Input();
  InputStream& stream() { return *stream_; }
  // Size in bytes when known (regular files).
  std::optional<uint64_t> size() const { return size_; }
  const std::string& name() const { return name_; }
  // The file's device and inode, to refuse writing over it.
  std::optional<std::pair<uint64_t, uint64_t>> identity() const { return identity_; }

 private:
  Input() = default;
  int fd_ = -1;
  bool owned_ = false;
  std::string name_;
  std::optional<uint64_t> size_;
  std::optional<std::pair<uint64_t, uint64_t>> identity_;
  std::unique_ptr<InputStream> stream_;
};

// An output file written as an unnamed file (O_TMPFILE, mode 0600) in the
// target directory, given its name by Commit() only once it is complete:
// a crash, a kill -9 or a failure leaves nothing behind.  Where the file
// system has no unnamed files, a named temporary (.NAME.keyward-tmp-XXXXXX,
// mode 0600) is used instead and removed on every failure path and on
// SIGINT/SIGTERM/SIGHUP; a kill -9 can leave that one behind.  Only a
// regular file or a new path is ever replaced: a device, FIFO, socket,
// directory or symbolic link at `path` is refused, and so is the file being
// read (`must_differ_from`).  "-" or empty writes straight to stdout
// (nothing to commit).
class AtomicOutput {
 public:
  static absl::StatusOr<std::unique_ptr<AtomicOutput>> Create(
      const std::string& path, int mode, const Input* must_differ_from = nullptr);
  ~AtomicOutput();
  OutputStream& stream() { return *stream_; }
  bool is_stdout() const { return is_stdout_; }
  // fsync, give the file its mode and name (replacing a regular file
  // there), fsync the directory.
  absl::Status Commit();

 private:
  AtomicOutput() = default;
  int fd_ = -1;
  int mode_ = 0600;
  bool is_stdout_ = false;
  bool committed_ = false;
  bool unnamed_ = false;  // O_TMPFILE: no temporary name exists
  std::string path_, temp_path_;
  std::unique_ptr<OutputStream> stream_;
};

// Wraps an input and prints "verb  42% 120.0 MiB of 286.1 MiB  850 MiB/s"
// on stderr at most ten times a second when stderr is a terminal and the
// input is large; clears the line when destroyed.
class ProgressInput final : public InputStream {
 public:
  ProgressInput(InputStream& inner, std::string verb,
                std::optional<uint64_t> total);
  ~ProgressInput() override;
  absl::StatusOr<size_t> Read(absl::Span<uint8_t> buffer) override;

 private:
  void Draw(bool force);
  InputStream& inner_;
  const std::string verb_;
  const std::optional<uint64_t> total_;
  const bool enabled_;
  uint64_t done_ = 0;
  std::chrono::steady_clock::time_point start_, last_;
  bool drawn_ = false;
};

// The canonical directory holding `path` (which need not exist yet).
absl::StatusOr<std::string> CanonicalDirectoryOf(const std::string& path);

// Installs the handlers that make `keyward` exit with a code instead of
// dying by a signal: SIGPIPE ignored (writes fail with EPIPE), and
// SIGINT/SIGTERM/SIGHUP remove any pending temporary output and exit 130.
void InstallSignalHandlers();

}  // namespace keyward::cli

#endif  // KEYWARD_CLI_FILES_H_
