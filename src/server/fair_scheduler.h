// Shares keywardd between the principals that call it, so that no one of
// them — with rights or without — can starve the others (docs/security.md).
//
// Admission: every request is counted against its principal and against the
// whole server before any work is done for it: requests in keywardd (queued,
// running, or waiting for their audit record) and their memory cost.  Over
// any of the four limits the request is refused at once, never queued.
//
// CPU: admitted requests wait in one queue per principal; a free CPU slot
// goes to the waiting principal that has used the least CPU (start-time fair
// queuing over measured thread CPU time).  Long requests — batches — call
// Yield() as they go: when another principal is waiting with less use, the
// slot passes to it and the batch continues at its next turn.  So a 10,000
// item batch from one principal delays another principal's single call by
// one slice of work, not by the whole batch.
//
// Priority: the OS shares the CPUs between the threads that run, so fair
// queuing alone leaves a short call competing for a CPU with the long
// requests that hold the other slots.  A task that has used more than
// background_after of CPU lowers its thread to nice background_nice at its
// next Yield(): short calls then preempt long ones whenever both want a
// CPU, and long ones still use every CPU nobody else wants.  An unprivileged
// thread cannot raise its priority again, so a demoted thread ends with its
// task; new threads are always made at the server's own priority.
//
// Thread-safety: every method is safe to call concurrently.
#ifndef KEYWARD_SERVER_FAIR_SCHEDULER_H_
#define KEYWARD_SERVER_FAIR_SCHEDULER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace keyward::server {

struct FairSchedulerOptions {
  // Requests running at once (0: one per CPU plus one, at least 3).  One
  // principal may run at most cpu_slots - 1 of them: with every CPU busy on
  // one principal's long requests, another's request still starts at once
  // (the OS then shares the CPUs), rather than waiting for a slice to end.
  int cpu_slots = 0;
  // Whole server: requests in keywardd, and their memory cost in bytes.
  int max_requests = 1024;
  int64_t max_cost = int64_t{512} << 20;
  // One principal: requests in keywardd, and their memory cost.
  int principal_max_requests = 64;
  int64_t principal_max_cost = int64_t{64} << 20;
  // A running request gives up its slot at its next Yield() once it has
  // used this much CPU and another principal is waiting.
  absl::Duration slice = absl::Microseconds(500);
  // A task that has used this much CPU runs on at nice background_nice
  // (0: never).  Linux only; elsewhere tasks keep their priority.
  absl::Duration background_after = absl::Milliseconds(2);
  int background_nice = 19;
};

class FairScheduler {
 public:
  struct PrincipalState;

  // A request's place in keywardd: taken by Admit.  It counts against the
  // request limits until Answered (the caller may send its next request as
  // soon as it has its answer) and against the memory limits until the last
  // reference goes (gRPC may still hold the request and reply bytes).
  class Ticket {
   public:
    ~Ticket();
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    int64_t cost() const { return cost_; }
    // The request has been answered: its count goes back now, its memory
    // cost when the ticket goes.  Idempotent.
    void Answered();

   private:
    friend class FairScheduler;
    Ticket(FairScheduler* scheduler, PrincipalState* principal, int64_t cost)
        : scheduler_(scheduler), principal_(principal), cost_(cost) {}
    FairScheduler* const scheduler_;
    PrincipalState* const principal_;
    int64_t cost_;
    std::atomic<bool> counted_{true};
  };

  explicit FairScheduler(FairSchedulerOptions options);
  // Runs what was queued to completion, then stops the threads.
  ~FairScheduler();

  // Counts a request of `cost` bytes for `principal`.  Errors:
  // kResourceExhausted naming the limit (the principal's, or the server's
  // when it is saturated) and saying to retry with backoff.
  absl::StatusOr<std::shared_ptr<Ticket>> Admit(const std::string& principal, int64_t cost);
  // Adds to an admitted request's cost (once its size is known better).
  // Errors: as Admit; the ticket keeps its former cost.
  absl::Status AddCost(Ticket& ticket, int64_t extra);

  // Runs `task` on a worker thread when the ticket's principal gets its turn.
  void Run(std::shared_ptr<Ticket> ticket, std::function<void()> task);

  // Runs `task` on the calling thread, now, if a worker would start it now
  // anyway (a slot is free, nobody waits, the principal is under its share)
  // and returns true; otherwise does nothing and returns false (then Run
  // it).  For short tasks only: the caller's thread is busy meanwhile.  It
  // is charged, and may Yield, like a task on a worker.
  bool RunHereIfIdle(std::shared_ptr<Ticket> ticket, const std::function<void()>& task);

  // From inside a task: lets a waiting principal with less CPU use run
  // first, and returns when this task may go on.  Cheap when nobody waits;
  // a no-op outside a task.
  void Yield();

  struct Stats {
    int requests = 0;        // admitted, not yet answered
    int threads = 0;         // worker threads alive
    uint64_t demoted = 0;    // tasks moved to background priority
    int queued = 0;          // waiting for a slot (new or yielded)
    int running = 0;
    int principals = 0;      // with requests in keywardd
    uint64_t refused_principal = 0;  // over a principal's limits
    uint64_t refused_server = 0;     // over the server's limits
    absl::Time last_server_refusal = absl::InfinitePast();
  };
  Stats GetStats() const;
  const FairSchedulerOptions& options() const { return options_; }

 private:
  struct Waiter {
    std::condition_variable cv;
    bool granted = false;
  };
  void ReleaseCount(PrincipalState* p);
  void Release(PrincipalState* p, int64_t cost, bool counted);
  // No request, task or memory cost of the principal's left.
  static bool IdleLocked(const PrincipalState* p);
  void DispatchLocked();
  void WorkerLoop();
  // A task of `p` that used `cpu_seconds` is done: its slot goes to the next.
  void TaskDoneLocked(PrincipalState* p, double cpu_seconds);
  void SpawnerLoop();
  void StartWorkerLocked();
  void ChargeLocked(PrincipalState* p, double cpu_seconds);
  bool SomeoneAheadLocked(const PrincipalState* p) const;
  void DemoteIfLong(double thread_cpu_now);
  int PrincipalMaxRunning() const;

  const FairSchedulerOptions options_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable spawn_cv_;   // spawns_wanted_ or spawner_stopping_
  std::condition_variable exited_cv_;  // threads_ went down
  absl::flat_hash_map<std::string, std::unique_ptr<PrincipalState>> principals_;  // GUARDED_BY(mu_)
  struct Handoff {
    PrincipalState* principal;
    std::function<void()> task;
  };
  std::deque<Handoff> handoff_;  // GUARDED_BY(mu_): started, waiting for a thread
  int free_slots_ = 0;           // GUARDED_BY(mu_)
  int idle_threads_ = 0;         // GUARDED_BY(mu_)
  int threads_ = 0;              // GUARDED_BY(mu_): alive or being made
  int spawns_wanted_ = 0;        // GUARDED_BY(mu_): for spawner_
  int requests_ = 0;             // GUARDED_BY(mu_)
  int64_t cost_ = 0;             // GUARDED_BY(mu_)
  int queued_ = 0;               // GUARDED_BY(mu_)
  int running_ = 0;              // GUARDED_BY(mu_)
  double virtual_now_ = 0;       // GUARDED_BY(mu_): CPU seconds, fair-queuing clock
  bool stopping_ = false;        // GUARDED_BY(mu_)
  bool spawner_stopping_ = false;  // GUARDED_BY(mu_): after the last worker
  Stats stats_;                  // GUARDED_BY(mu_): the counters
  std::atomic<int> waiting_{0};  // queued_, readable without the lock
  // Workers are detached: each counts itself out of threads_ under mu_ as
  // the last thing it does, and the destructor waits for threads_ == 0.
  // spawner_ makes workers for threads that have lowered their priority
  // (a thread inherits its maker's).
  std::thread spawner_;
};

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_FAIR_SCHEDULER_H_
