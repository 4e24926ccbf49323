// Opening the audit log (records re-read and their chain checked, history
// checked, signing key published), durable appends to its files, shutdown.
#include "audit/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "audit/audit_log_files.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "crypto/signature.h"

namespace keyward::audit {

absl::Status Tampered(absl::string_view why) {
  return absl::DataLossError(absl::StrCat(
      "the audit log is not the one keywardd wrote: ", why,
      ". keywardd refuses to start on it rather than sign it. Investigate with "
      "`keyward audit verify --log DIR --checkpoint-key-fingerprint FP` and restore the log "
      "from a backup; or, to start a new log deliberately, move the directory aside (it is "
      "evidence) and start keywardd once with --new-audit-log (recorded in the new log); "
      "see docs/audit.md"));
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(AuditLogOptions options) {
  std::unique_ptr<AuditLog> log(new AuditLog(std::move(options)));
  if (absl::Status s = log->Load(); !s.ok()) {
    // A log that did not load is left exactly as it was: no final
    // checkpoint over what was read of it.
    log->opened_ = false;
    return s;
  }
  log->writer_ = std::thread([l = log.get()] { l->WriterLoop(); });
  log->watcher_ = std::thread([l = log.get()] { l->WatchLoop(); });
  log->completer_ = std::thread([l = log.get()] { l->CompletionLoop(); });
  if (log->options_.signer != nullptr &&
      log->options_.checkpoint_interval > absl::ZeroDuration()) {
    log->checkpointer_ = std::thread([l = log.get()] { l->CheckpointLoop(); });
  }
  return log;
}

absl::Status AuditLog::Load() {
  if (options_.signer != nullptr) {
    KW_ASSIGN_OR_RETURN(public_key_pem_,
                        options_.signer->GetOrCreateSigningKey(options_.signing_key_label));
    KW_ASSIGN_OR_RETURN(key_fingerprint_, crypto::PublicKeyFingerprint(public_key_pem_));
  }
  if (memory()) return absl::OkStatus();
  if (::mkdir(options_.dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::UnavailableError(absl::StrCat("cannot create the audit directory ",
                                               options_.dir, ": ", std::strerror(errno)));
  }
  // Records written before: rebuild the tree and the offsets.
  const std::string records = Path(options_.dir, kRecordsFile);
  auto read = ReadWholeFile(records);
  if (!read.ok() && read.status().code() != absl::StatusCode::kNotFound) return read.status();
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
          return absl::UnavailableError(absl::StrCat("cannot repair ", records, ": ",
                                                     std::strerror(errno)));
        }
        break;
      }
      absl::string_view l(content.data() + pos, nl - pos);
      // The chain first: a record that does not follow the one before it
      // means the file was edited.
      const uint64_t index = tree_.size();
      auto chain = ReadChainFields(l);
      if (!chain.ok() || chain->seq != index || chain->prev != prev_) {
        return Tampered(absl::StrCat(
            "record ", index,
            !chain.ok()              ? " is not a valid audit record"
            : chain->seq != index    ? absl::StrCat(" carries sequence number ", chain->seq,
                                                    ": records were removed, inserted or reordered")
                                     : absl::StrCat(" does not chain to record ", index - 1,
                                                    ": a record was modified, inserted or removed")));
      }
      offsets_.push_back(pos);
      prev_ = LeafHash(l);
      tree_.Append(prev_);
      pos = nl + 1;
    }
  }
  next_seq_ = tree_.size();
  KW_RETURN_IF_ERROR(CheckHistory());
  // Publish the signing key for verifiers (kept: old keys verify old
  // checkpoints).
  if (!public_key_pem_.empty()) {
    const std::string keys = Path(options_.dir, kKeysFile);
    std::ifstream kin(keys);
    std::string existing((std::istreambuf_iterator<char>(kin)), {});
    if (existing.find(public_key_pem_) == std::string::npos) {
      KW_RETURN_IF_ERROR(WriteDurably(kKeysFile, public_key_pem_));
    }
  }
  return absl::OkStatus();
}

absl::Status AuditLog::WriteDurably(const std::string& file, const std::string& bytes,
                                    uint64_t* offset) {
  const std::string path = Path(options_.dir, file.c_str());
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("open ", path, ": ", std::strerror(errno)));
  struct stat st;
  const off_t start = ::fstat(fd, &st) == 0 ? st.st_size : -1;
  if (offset != nullptr) *offset = start < 0 ? 0 : static_cast<uint64_t>(start);
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
    return absl::UnavailableError(absl::StrCat("writing ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

AuditLog::~AuditLog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  writer_cv_.notify_all();
  watch_cv_.notify_all();
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stop_cv_.notify_all();
  }
  if (writer_.joinable()) writer_.join();
  if (watcher_.joinable()) watcher_.join();
  {
    std::lock_guard<std::mutex> lock(completion_mu_);
    completion_stop_ = true;
    completion_cv_.notify_all();
  }
  if (completer_.joinable()) completer_.join();
  if (checkpointer_.joinable()) checkpointer_.join();
  if (options_.signer != nullptr && opened_) {
    uint64_t last = 0;
    {
      std::lock_guard<std::mutex> l(checkpoint_mu_);
      last = latest_ ? latest_->tree_size : 0;
    }
    if (tree_.size() != last || last == 0) {
      if (auto c = MakeCheckpoint(); !c.ok()) {
        Log(LogLevel::kError, "audit", "final checkpoint failed",
            {{"error", std::string(c.status().message())}});
      }
    }
  }
}

}  // namespace keyward::audit
