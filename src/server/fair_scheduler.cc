#include "server/fair_scheduler.h"

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "keyward/errors.h"
#include "metrics/metrics.h"

namespace keyward::server {

struct FairScheduler::PrincipalState {
  std::string name;
  double vtime = 0;   // CPU seconds used, on the fair-queuing clock
  int requests = 0;   // admitted, not finished
  int64_t cost = 0;
  int running = 0;    // started and not finished (running or yielded)
  std::deque<std::function<void()>> ready;  // admitted, not started
  std::deque<Waiter*> paused;               // yielded, waiting for a slot
};

namespace {

// The task a worker thread is running, for Yield().
thread_local FairScheduler::PrincipalState* tl_principal = nullptr;
thread_local double tl_slice_start = 0;
thread_local double tl_task_start = 0;
// This thread runs below the server's priority and ends with its task.
thread_local bool tl_demoted = false;
// The task runs on its caller's thread (RunHereIfIdle), which is not ours
// to demote.
thread_local bool tl_here = false;

double ThreadCpuSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Principal names come from certificates; keep refusals one line long.
std::string Short(const std::string& s) {
  return s.size() <= 128 ? s : absl::StrCat(s.substr(0, 128), "...");
}

void CountRefusal(bool server) {
  static auto& refused = metrics::Global().CounterFamily(
      "keyward_requests_refused_for_share_total",
      "Requests refused on admission: over one principal's share, or over the server's.",
      {"scope"});
  static auto& by_principal = refused.With({"principal"});
  static auto& by_server = refused.With({"server"});
  (server ? by_server : by_principal).Inc();
}

absl::Status Exhausted(std::string message) {
  return MakeError(absl::StatusCode::kResourceExhausted, ErrorCode::kLimitExceeded,
                   std::move(message));
}

}  // namespace

FairScheduler::FairScheduler(FairSchedulerOptions options)
    : options_([&] {
        if (options.cpu_slots <= 0) {
          options.cpu_slots = std::max(3, static_cast<int>(std::thread::hardware_concurrency()) + 1);
        }
        return options;
      }()) {
  free_slots_ = options_.cpu_slots;
  spawner_ = std::thread([this] { SpawnerLoop(); });
}

FairScheduler::~FairScheduler() {
  std::unique_lock<std::mutex> lock(mu_);
  stopping_ = true;
  work_cv_.notify_all();
  // Workers still running may ask spawner_ for threads (threads_ counts
  // those owed): it stops only once they are all gone.
  exited_cv_.wait(lock, [&] { return threads_ == 0; });
  spawner_stopping_ = true;
  spawn_cv_.notify_all();
  lock.unlock();
  spawner_.join();
}

void FairScheduler::StartWorkerLocked() {
  ++threads_;
  if (tl_demoted) {
    ++spawns_wanted_;
    spawn_cv_.notify_one();
    return;
  }
  std::thread([this] { WorkerLoop(); }).detach();
}

void FairScheduler::SpawnerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    spawn_cv_.wait(lock, [&] { return spawns_wanted_ > 0 || spawner_stopping_; });
    if (spawns_wanted_ == 0) return;
    --spawns_wanted_;
    lock.unlock();
    std::thread([this] { WorkerLoop(); }).detach();
    lock.lock();
  }
}

absl::StatusOr<std::shared_ptr<FairScheduler::Ticket>> FairScheduler::Admit(
    const std::string& principal, int64_t cost) {
  std::lock_guard<std::mutex> lock(mu_);
  if (requests_ >= options_.max_requests || cost_ + cost > options_.max_cost) {
    ++stats_.refused_server;
    stats_.last_server_refusal = absl::Now();
    CountRefusal(true);
    return Exhausted(absl::StrCat(
        "keywardd is saturated (", requests_, " requests, ", cost_ >> 20,
        " MiB in progress; limits.max_concurrent_requests / limits.max_memory_mib); "
        "retry with backoff, or send the request to another replica"));
  }
  auto& slot = principals_[principal];
  if (slot == nullptr) {
    slot = std::make_unique<PrincipalState>();
    slot->name = principal;
    slot->vtime = virtual_now_;
  }
  PrincipalState* p = slot.get();
  if (p->requests >= options_.principal_max_requests ||
      p->cost + cost > options_.principal_max_cost) {
    ++stats_.refused_principal;
    CountRefusal(false);
    const bool by_count = p->requests >= options_.principal_max_requests;
    if (IdleLocked(p)) {
      principals_.erase(principal);
    }
    return Exhausted(absl::StrCat(
        "principal ", Short(principal), " already has ",
        by_count ? absl::StrCat(options_.principal_max_requests, " requests")
                 : absl::StrCat(p->cost >> 20, " MiB of requests"),
        " in keywardd, its share (limits.principal_max_",
        by_count ? "requests" : "memory_mib", "); retry with backoff"));
  }
  ++p->requests;
  p->cost += cost;
  ++requests_;
  cost_ += cost;
  return std::shared_ptr<Ticket>(new Ticket(this, p, cost));
}

absl::Status FairScheduler::AddCost(Ticket& ticket, int64_t extra) {
  std::lock_guard<std::mutex> lock(mu_);
  PrincipalState* p = ticket.principal_;
  if (cost_ + extra > options_.max_cost) {
    ++stats_.refused_server;
    stats_.last_server_refusal = absl::Now();
    CountRefusal(true);
    return Exhausted(absl::StrCat("keywardd is saturated (", cost_ >> 20,
                                  " MiB of requests in progress; limits.max_memory_mib); "
                                  "retry with backoff"));
  }
  if (p->cost + extra > options_.principal_max_cost) {
    ++stats_.refused_principal;
    CountRefusal(false);
    return Exhausted(absl::StrCat("principal ", Short(p->name), " has ", p->cost >> 20,
                                  " MiB of requests in keywardd, its share "
                                  "(limits.principal_max_memory_mib); retry with backoff"));
  }
  p->cost += extra;
  cost_ += extra;
  ticket.cost_ += extra;
  return absl::OkStatus();
}

FairScheduler::Ticket::~Ticket() {
  scheduler_->Release(principal_, cost_, counted_.load(std::memory_order_acquire));
}

void FairScheduler::Ticket::Answered() {
  if (counted_.exchange(false, std::memory_order_acq_rel)) scheduler_->ReleaseCount(principal_);
}

bool FairScheduler::IdleLocked(const PrincipalState* p) {
  return p->requests == 0 && p->cost == 0 && p->running == 0 && p->ready.empty() &&
         p->paused.empty();
}

void FairScheduler::ReleaseCount(PrincipalState* p) {
  std::lock_guard<std::mutex> lock(mu_);
  --p->requests;
  --requests_;
}

void FairScheduler::Release(PrincipalState* p, int64_t cost, bool counted) {
  std::lock_guard<std::mutex> lock(mu_);
  if (counted) {
    --p->requests;
    --requests_;
  }
  p->cost -= cost;
  cost_ -= cost;
  if (IdleLocked(p)) {
    // A principal that comes back starts at the current clock, so it cannot
    // bank credit by being idle.
    principals_.erase(p->name);
  }
}

void FairScheduler::Run(std::shared_ptr<Ticket> ticket, std::function<void()> task) {
  std::lock_guard<std::mutex> lock(mu_);
  PrincipalState* p = ticket->principal_;
  if (p->ready.empty() && p->paused.empty() && p->running == 0) {
    p->vtime = std::max(p->vtime, virtual_now_);
  }
  // The task keeps the ticket (and so the principal's state) alive.
  p->ready.push_back([ticket = std::move(ticket), task = std::move(task)] { task(); });
  ++queued_;
  waiting_.store(queued_, std::memory_order_relaxed);
  DispatchLocked();
}

bool FairScheduler::RunHereIfIdle(std::shared_ptr<Ticket> ticket,
                                  const std::function<void()>& task) {
  PrincipalState* p = ticket->principal_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || free_slots_ <= 0 || queued_ > 0 || p->running >= PrincipalMaxRunning()) {
      return false;
    }
    if (p->ready.empty() && p->paused.empty() && p->running == 0) {
      p->vtime = std::max(p->vtime, virtual_now_);
    }
    virtual_now_ = std::max(virtual_now_, p->vtime);
    --free_slots_;
    ++running_;
    ++p->running;
  }
  tl_principal = p;
  tl_here = true;
  tl_slice_start = ThreadCpuSeconds();
  tl_task_start = tl_slice_start;
  task();
  const double used = ThreadCpuSeconds() - tl_slice_start;
  tl_principal = nullptr;
  tl_here = false;
  ticket.reset();  // as a worker drops its task's, before the slot goes back
  std::lock_guard<std::mutex> lock(mu_);
  TaskDoneLocked(p, used);
  return true;
}

void FairScheduler::TaskDoneLocked(PrincipalState* p, double cpu_seconds) {
  ChargeLocked(p, cpu_seconds);
  --p->running;
  --running_;
  ++free_slots_;
  if (IdleLocked(p)) principals_.erase(p->name);
  DispatchLocked();
  if (stopping_ && queued_ == 0 && running_ == 0) work_cv_.notify_all();
}

bool FairScheduler::SomeoneAheadLocked(const PrincipalState* self) const {
  for (const auto& [name, p] : principals_) {
    if (p.get() == self) continue;
    const bool startable = !p->paused.empty() ||
                           (!p->ready.empty() && p->running < PrincipalMaxRunning());
    if (startable && p->vtime < self->vtime) return true;
  }
  return false;
}

void FairScheduler::DispatchLocked() {
  while (free_slots_ > 0) {
    PrincipalState* best = nullptr;
    for (auto& [name, p] : principals_) {
      // One principal may use every slot but one: its further requests
      // wait in its queue, not on threads, and another principal's request
      // always finds a slot.
      const bool startable = !p->paused.empty() ||
                             (!p->ready.empty() && p->running < PrincipalMaxRunning());
      if (startable && (best == nullptr || p->vtime < best->vtime)) best = p.get();
    }
    if (best == nullptr) return;
    virtual_now_ = std::max(virtual_now_, best->vtime);
    --free_slots_;
    --queued_;
    ++running_;
    waiting_.store(queued_, std::memory_order_relaxed);
    if (!best->paused.empty()) {
      Waiter* w = best->paused.front();
      best->paused.pop_front();
      w->granted = true;
      w->cv.notify_one();
      continue;
    }
    ++best->running;
    handoff_.push_back({best, std::move(best->ready.front())});
    best->ready.pop_front();
    if (static_cast<int>(handoff_.size()) <= idle_threads_) {
      work_cv_.notify_one();
    } else {
      // Threads are made as needed: one per running request, plus those
      // paused in Yield() (at most cpu_slots per principal).
      StartWorkerLocked();
    }
  }
}

int FairScheduler::PrincipalMaxRunning() const {
  return std::max(1, options_.cpu_slots - 1);
}

void FairScheduler::ChargeLocked(PrincipalState* p, double cpu_seconds) {
  p->vtime += std::max(cpu_seconds, 1e-6);
}

void FairScheduler::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    // At shutdown, work already admitted still runs: each task answers a
    // call that gRPC waits for.
    while (handoff_.empty() && !(stopping_ && queued_ == 0 && running_ == 0)) {
      ++idle_threads_;
      work_cv_.wait(lock);
      --idle_threads_;
    }
    if (handoff_.empty()) {
      work_cv_.notify_all();
      --threads_;
      exited_cv_.notify_all();
      return;
    }
    Handoff h = std::move(handoff_.front());
    handoff_.pop_front();
    lock.unlock();
    tl_principal = h.principal;
    tl_slice_start = ThreadCpuSeconds();
    tl_task_start = tl_slice_start;
    h.task();
    h.task = nullptr;  // drops the ticket before the slot is given back
    const double used = ThreadCpuSeconds() - tl_slice_start;
    tl_principal = nullptr;
    lock.lock();
    TaskDoneLocked(h.principal, used);
    if (tl_demoted) {
      // DispatchLocked did not count this thread as idle: no handoff waits
      // for it.
      --threads_;
      exited_cv_.notify_all();
      return;
    }
  }
}

void FairScheduler::DemoteIfLong(double now) {
#ifdef __linux__
  if (tl_demoted || tl_here || options_.background_nice <= 0 ||
      options_.background_after <= absl::ZeroDuration() ||
      now - tl_task_start < absl::ToDoubleSeconds(options_.background_after)) {
    return;
  }
  // Linux keeps the nice value per thread: this lowers only this one.
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), options_.background_nice) != 0) {
    return;  // e.g. a seccomp filter: the task keeps its priority
  }
  tl_demoted = true;
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.demoted;
#else
  (void)now;
#endif
}

void FairScheduler::Yield() {
  PrincipalState* p = tl_principal;
  if (p == nullptr) return;
  const double now = ThreadCpuSeconds();
  DemoteIfLong(now);
  if (now - tl_slice_start < absl::ToDoubleSeconds(options_.slice)) return;
  if (waiting_.load(std::memory_order_relaxed) == 0) return;
  std::unique_lock<std::mutex> lock(mu_);
  ChargeLocked(p, now - tl_slice_start);
  tl_slice_start = now;
  if (!SomeoneAheadLocked(p)) return;
  Waiter w;
  p->paused.push_back(&w);
  ++queued_;
  --running_;
  ++free_slots_;
  waiting_.store(queued_, std::memory_order_relaxed);
  DispatchLocked();
  w.cv.wait(lock, [&] { return w.granted; });
  tl_slice_start = ThreadCpuSeconds();
}

FairScheduler::Stats FairScheduler::GetStats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.requests = requests_;
  s.queued = queued_;
  s.running = running_;
  s.principals = static_cast<int>(principals_.size());
  s.threads = threads_;
  return s;
}

}  // namespace keyward::server
