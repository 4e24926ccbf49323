// How replicas sharing a PostgreSQL key store learn of each other's
// changes: every write transaction that changes a key, a grant or a tenant
// key sends a notification on channel `keyward_changes`, delivered at its
// commit; a ChangeListener LISTENs on a connection of its own.
//
// Payload: "<kind>|<hex key name>|<hex tenant>", kind one of k (key), g
// (grants), t (tenant key), e (everything).  Hex, because tenants are
// arbitrary bytes and a payload must be text under 8000 bytes; a change
// whose payload would be larger is sent as "e|".
#ifndef KEYWARD_KEYSTORE_POSTGRES_CHANGE_FEED_H_
#define KEYWARD_KEYSTORE_POSTGRES_CHANGE_FEED_H_

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "appdb/database.h"
#include "keystore/key_store.h"

struct pg_conn;

namespace keyward::keystore::internal {

inline constexpr char kChangeChannel[] = "keyward_changes";

std::string EncodeChange(const StoreChange& change);
// nullopt for a payload that is not one of ours.
std::optional<StoreChange> DecodeChange(absl::string_view payload);

// Sends `change` to every listener when the transaction on `db` commits.
absl::Status NotifyChange(appdb::Database& db, const StoreChange& change);

// A thread holding one LISTEN connection and calling the callbacks with
// each change.  When the connection is lost it reconnects (backing off from
// 100 ms to 5 s) and then delivers kEverything first, since notifications
// sent meanwhile are gone.
//
// Thread-safety: Add from any thread; callbacks run on the listener's
// thread, one at a time.
class ChangeListener {
 public:
  // `url`: the store's libpq URI (with its connect_timeout).
  explicit ChangeListener(std::string url);
  // Stops the thread: promptly, unless it is connecting (at most the
  // connect timeout).
  ~ChangeListener();
  ChangeListener(const ChangeListener&) = delete;
  ChangeListener& operator=(const ChangeListener&) = delete;

  // Adds a callback.  The first call connects and LISTENs before it
  // returns (so changes committed after it are delivered) and starts the
  // thread; when the database is unreachable then, the thread keeps trying
  // and delivers kEverything once it is connected.  Errors: kInternal when
  // the thread cannot be set up.
  absl::Status Add(std::function<void(const StoreChange&)> on_change);

 private:
  bool Connect();
  void Disconnect();
  void Loop();
  void Deliver(const StoreChange& change);
  // Sleeps up to `d`; false when asked to stop.
  bool Wait(absl::Duration d);

  const std::string url_;
  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};
  pg_conn* conn_ = nullptr;  // the listener thread's once it runs
  std::mutex mu_;
  std::vector<std::function<void(const StoreChange&)>> callbacks_;  // GUARDED_BY(mu_)
  std::thread thread_;  // started by the first Add, under mu_
};

}  // namespace keyward::keystore::internal

#endif  // KEYWARD_KEYSTORE_POSTGRES_CHANGE_FEED_H_
