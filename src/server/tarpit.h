// Slows down a caller whose requests keep being refused before they are
// read.  Refusing a request is cheap for keywardd, but receiving it is not:
// a principal that streams megabyte requests over its limits makes keywardd
// spend its CPU on TLS and HTTP/2 for them (measured: over 90% of keywardd's
// CPU under such a flood goes to receiving, 1% to keywardd's own work).
// Beyond a free allowance per window, the answer to each further refusal is
// held for a delay that grows with the count, so a client that waits for
// its answers — every Keyward client does — sends less and less.  The
// request's bytes are released before the answer is held.
//
// A client that does not wait (many connections, requests never awaited)
// is not slowed by this; it is bounded by limits.principal_max_requests
// and gRPC's per-connection stream limit, and belongs to network-level rate
// limiting in front of keywardd (docs/security.md).
//
// Thread-safety: every method is safe to call concurrently.
#ifndef KEYWARD_SERVER_TARPIT_H_
#define KEYWARD_SERVER_TARPIT_H_

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace keyward::server {

struct TarpitOptions {
  int free_per_window = 20;          // refusals answered at once, per principal and window
  absl::Duration window = absl::Seconds(10);
  absl::Duration step = absl::Milliseconds(10);  // added per refusal beyond the free ones
  absl::Duration max_delay = absl::Seconds(1);
  size_t max_held = 4096;            // beyond: answered at once
  size_t max_principals = 10000;     // tracked at once; beyond, the oldest window is dropped
};

class Tarpit {
 public:
  explicit Tarpit(TarpitOptions options);
  // Answers everything still held, at once.
  ~Tarpit();

  // Counts one refusal for `principal` and says how long its answer should
  // wait (zero within the free allowance).
  absl::Duration Delay(const std::string& principal);

  // Runs `answer` once `delay` has passed (at once when too many answers
  // are held already, or at shutdown).  `answer` must not block.
  void Hold(absl::Duration delay, std::function<void()> answer);

  size_t held() const;

 private:
  struct Window {
    absl::Time start;
    int refusals = 0;
  };
  void Loop();

  const TarpitOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  absl::flat_hash_map<std::string, Window> windows_;            // GUARDED_BY(mu_)
  std::multimap<absl::Time, std::function<void()>> held_;       // GUARDED_BY(mu_)
  bool stopping_ = false;                                       // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_TARPIT_H_
