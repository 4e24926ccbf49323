// UsageRecorder: the usage counters of key versions.  Decrypts and last-use
// times are batched in memory and written by a background thread (and at
// shutdown); encryptions under a KEK are reserved durably in blocks before
// they are made, so a crash can only over-count them.
//
// Thread-safety: every method is safe to call concurrently.
#ifndef KEYWARD_KMS_USAGE_RECORDER_H_
#define KEYWARD_KMS_USAGE_RECORDER_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "keystore/key_store.h"
#include "kms/clock.h"

namespace keyward::kms {

class UsageRecorder {
 public:
  // `max_wraps_per_version`: encryptions under one version's KEK before
  // Reserve refuses.  `flush_interval` zero: counters are written only by
  // Flush() (and at destruction).
  UsageRecorder(std::shared_ptr<keystore::KeyStore> store, Clock* clock,
                uint64_t max_wraps_per_version, absl::Duration flush_interval);
  // Stops the flusher, writes what is pending and gives back what was
  // reserved and not used.
  ~UsageRecorder();
  UsageRecorder(const UsageRecorder&) = delete;
  UsageRecorder& operator=(const UsageRecorder&) = delete;

  // A use of `version` now, with `decrypts` data keys unwrapped.  `reader`
  // false: the unwraps serve re-encryption and do not move the version's
  // last decrypt.
  void Record(const std::string& name, uint32_t version, uint64_t decrypts, bool reader);
  // Takes `n` encryptions under the version's KEK from this process's
  // reservation, reserving a new block in the store first when it runs
  // out.  Errors: kFailedPrecondition when the version reached its limit;
  // the store's.
  [[nodiscard]] absl::Status Reserve(const std::string& name, uint32_t version, uint64_t n);
  // Writes pending counters now; on failure they stay pending.
  [[nodiscard]] absl::Status Flush();
  // Makes `key`'s counters what callers should see: data keys issued
  // without this process's unused reservations, decrypts and times with
  // what is not yet flushed.
  void ShowUnflushed(keystore::Key& key);

 private:
  struct Usage {
    uint64_t decrypts = 0;
    absl::Time last_used;
    absl::Time last_decrypt = absl::InfinitePast();
  };
  struct Reservation {
    std::mutex mu;         // held across the store write: calls on this version wait
    uint64_t unused = 0;   // GUARDED_BY(mu): reserved in the store, not yet used
    uint64_t block = 64;   // GUARDED_BY(mu): the next reservation's size (grows while busy)
    absl::Time last = absl::InfinitePast();  // GUARDED_BY(mu)
  };
  using VersionId = std::pair<std::string, uint32_t>;

  void FlushLoop();
  void ReleaseReservations();

  const std::shared_ptr<keystore::KeyStore> store_;
  Clock* const clock_;
  const uint64_t max_wraps_per_version_;
  const absl::Duration flush_interval_;

  std::mutex usage_mu_;
  absl::flat_hash_map<VersionId, Usage> pending_usage_;  // GUARDED_BY(usage_mu_)

  std::mutex reserve_mu_;  // guards the map, not the entries
  absl::flat_hash_map<VersionId, std::unique_ptr<Reservation>>
      reservations_;  // GUARDED_BY(reserve_mu_)

  std::mutex flush_mu_;
  std::condition_variable flush_cv_;
  bool stopping_ = false;  // GUARDED_BY(flush_mu_)
  // Last: started once everything above exists.
  std::thread flusher_;
};

}  // namespace keyward::kms

#endif  // KEYWARD_KMS_USAGE_RECORDER_H_
