// Opening the audit log (records re-read and their chain checked, history
// checked, signing key published), shutdown.
#include "audit/audit_log.h"

#include "absl/strings/str_cat.h"
#include "audit/audit_log_files.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "crypto/signature.h"

namespace keyward::audit {

absl::Status Tampered(absl::string_view why, absl::string_view verify) {
  return absl::DataLossError(absl::StrCat(
      "the audit log is not the one keywardd wrote: ", why,
      ". keywardd refuses to start on it rather than sign it. Investigate with `", verify,
      " --checkpoint-key-fingerprint FP` and restore the log from a backup; or, to start a "
      "new log deliberately, move the directory aside (it is evidence) and start keywardd "
      "once with --new-audit-log (recorded in the new log); see docs/audit.md"));
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
  if (log->options_.signer != nullptr) {
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
  // Pruned history: the tree starts from its compact range.
  KW_ASSIGN_OR_RETURN(std::optional<PrunedHistory> pruned, storage_->LoadPruned());
  if (pruned) {
    // Only keywardd prunes, and signs what it keeps: a pruned.json it did
    // not sign means segments were deleted.
    if (options_.signer != nullptr &&
        (pruned->key_fingerprint != key_fingerprint_ ||
         !crypto::VerifyEcdsaP256(public_key_pem_, PrunedMessage(*pruned), pruned->signature)
              .ok())) {
      return Tampered(absl::StrCat("the log starts at record ", pruned->size,
                                   " but pruned.json is not signed by this keywardd's HSM key: "
                                   "its oldest segments were deleted, not pruned"),
                      storage_->VerifyCommand());
    }
    if (absl::Status s = tree_.StartAfterPruned(pruned->size, pruned->nodes); !s.ok()) {
      return Tampered(absl::StrCat("pruned.json is inconsistent: ", s.message()),
                      storage_->VerifyCommand());
    }
    prev_ = pruned->last_leaf;
    std::lock_guard<std::mutex> lock(prune_mu_);
    pruned_history_ = std::move(pruned);
  }
  // Records written before: rebuild the tree, checking the chain as it
  // goes: a record that does not follow the one before it means the log
  // was edited.
  std::vector<std::string> checkpoints;
  KW_RETURN_IF_ERROR(storage_->Load(
      [&](absl::string_view l) -> absl::Status {
        const uint64_t index = tree_.size();
        auto chain = ReadChainFields(l);
        if (!chain.ok() || chain->seq != index || !chain->Follows(prev_)) {
          return Tampered(
              absl::StrCat(
                  "record ", index,
                  !chain.ok()           ? " is not a valid audit record"
                  : chain->seq != index ? absl::StrCat(" carries sequence number ", chain->seq,
                                                       ": records were removed, inserted or "
                                                       "reordered")
                                        : absl::StrCat(" does not chain to record ", index - 1,
                                                       ": a record was modified, inserted or "
                                                       "removed")),
              storage_->VerifyCommand());
        }
        prev_ = LeafHash(l);
        tree_.Append(prev_);
        return absl::OkStatus();
      },
      [&](absl::string_view line) {
        checkpoints.emplace_back(line);
        return absl::OkStatus();
      }));
  next_seq_ = tree_.size();
  KW_RETURN_IF_ERROR(CheckHistory(checkpoints));
  KW_RETURN_IF_ERROR(CloseUnclosedSegments(checkpoints));
  // Publish the signing key for verifiers (kept: old keys verify old
  // checkpoints).
  if (!public_key_pem_.empty()) KW_RETURN_IF_ERROR(storage_->PublishKey(public_key_pem_));
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
    if (absl::Status s = SignClosedSegments(); !s.ok()) {
      Log(LogLevel::kError, "audit", "a closed segment's checkpoint is left unsigned",
          {{"error", std::string(s.message())}});
    }
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
