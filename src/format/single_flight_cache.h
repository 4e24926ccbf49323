// A cache of data keys by partition, with at most one fetch in flight per
// partition (single-flight) and usage limits per entry.  Shared by the
// SDK's encrypt-side cache and CachingUnwrapper.
#ifndef KEYWARD_FORMAT_SINGLE_FLIGHT_CACHE_H_
#define KEYWARD_FORMAT_SINGLE_FLIGHT_CACHE_H_

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "keyward/caching_unwrapper.h"

namespace keyward::format {

// `Entry` has: absl::Time created; std::atomic<uint64_t> messages, bytes.
template <typename Entry>
class SingleFlightCache {
 public:
  explicit SingleFlightCache(CacheLimits limits) : limits_(limits) {}

  // Returns a usable entry for `partition`, charging one message of `size`
  // bytes; calls `fetch` (once, however many callers wait) when there is
  // none.  `hit` tells whether the entry was cached.
  template <typename Fetch>
  absl::StatusOr<std::shared_ptr<Entry>> Acquire(const std::string& partition, uint64_t size,
                                                 Fetch fetch, bool* hit) {
    std::shared_ptr<Slot> slot = GetSlot(partition);
    std::unique_lock<std::mutex> lock(slot->mu);
    *hit = true;
    for (;;) {
      const absl::Time now = absl::Now();
      if (slot->entry && Usable(*slot->entry, now, size)) {
        ++slot->entry->messages;
        slot->entry->bytes += size;
        return slot->entry;
      }
      if (slot->fetching) {
        // Wait for that fetch; if it fails, its error is ours too (a caller
        // that started a fetch of its own would wait for the same outage
        // again).  Errors are not kept for later callers.
        const uint64_t awaited = slot->fetches;
        slot->cv.wait(lock, [&] { return !slot->fetching || slot->fetches != awaited; });
        if (slot->failed_fetch == awaited) return slot->failure;
        continue;
      }
      *hit = false;
      slot->fetching = true;
      const uint64_t mine = ++slot->fetches;
      slot->entry.reset();  // the last user wipes the old key
      lock.unlock();
      absl::StatusOr<std::shared_ptr<Entry>> fetched = fetch();
      lock.lock();
      slot->fetching = false;
      if (!fetched.ok()) {
        slot->failed_fetch = mine;
        slot->failure = fetched.status();
      }
      slot->cv.notify_all();
      if (!fetched.ok()) return fetched.status();
      (*fetched)->created = absl::Now();
      slot->entry = *fetched;
      if (!Usable(*slot->entry, absl::Now(), size)) {
        // One message larger than max_bytes: serve it anyway, once.
        ++slot->entry->messages;
        slot->entry->bytes += size;
        return slot->entry;
      }
      // A fresh entry is charged on the next turn of the loop.
    }
  }

  static void AddBytes(const std::shared_ptr<Entry>& entry, uint64_t bytes) {
    entry->bytes += bytes;
  }

  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    slots_.clear();
  }

  // Partitions held now: at most max_entries, plus any that callers are
  // using at the moment the cache is full.
  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return slots_.size();
  }

  // Drops entries past max_age that nobody is fetching, so their keys are
  // wiped (when their last user lets go) even if no one asks again.
  void DropExpired() {
    std::lock_guard<std::mutex> lock(mu_);
    const absl::Time now = absl::Now();
    for (auto i = slots_.begin(); i != slots_.end();) {
      Slot& slot = *i->second;
      std::unique_lock<std::mutex> slot_lock(slot.mu, std::try_to_lock);
      const bool drop = slot_lock.owns_lock() && !slot.fetching &&
                        (slot.entry == nullptr || now - slot.entry->created >= limits_.max_age);
      if (slot_lock.owns_lock()) slot_lock.unlock();
      if (drop && i->second.use_count() == 1) {
        slots_.erase(i++);
      } else {
        ++i;
      }
    }
  }

 private:
  struct Slot {
    std::mutex mu;
    std::condition_variable cv;
    bool fetching = false;
    uint64_t fetches = 0;       // fetches started
    uint64_t failed_fetch = 0;  // the last one that failed, and how
    absl::Status failure;
    std::shared_ptr<Entry> entry;  // guarded by mu
  };

  bool Usable(const Entry& e, absl::Time now, uint64_t size) const {
    return now - e.created < limits_.max_age && e.messages < limits_.max_messages &&
           e.bytes + size <= limits_.max_bytes;
  }

  std::shared_ptr<Slot> GetSlot(const std::string& partition) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = slots_.find(partition);
    if (it != slots_.end()) return it->second;
    if (slots_.size() >= limits_.max_entries) {
      // Drop the partitions nobody is using right now; their keys are wiped
      // when the last user lets go.
      for (auto i = slots_.begin(); i != slots_.end();) {
        if (i->second.use_count() == 1) {
          slots_.erase(i++);
        } else {
          ++i;
        }
      }
    }
    auto slot = std::make_shared<Slot>();
    slots_.emplace(partition, slot);
    return slot;
  }

  const CacheLimits limits_;
  std::mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Slot>> slots_;
};

}  // namespace keyward::format

#endif  // KEYWARD_FORMAT_SINGLE_FLIGHT_CACHE_H_
