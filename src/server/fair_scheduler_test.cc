#include "server/fair_scheduler.h"

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace keyward::server {
namespace {

int ThreadNice() { return ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid())); }

double ThreadCpuSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Burns `seconds` of this thread's CPU, calling Yield() as a batch does.
void Spin(FairScheduler& s, double seconds, const std::function<bool()>& stop = nullptr) {
  const double start = ThreadCpuSeconds();
  while (ThreadCpuSeconds() - start < seconds) {
    if (stop && stop()) return;
    s.Yield();
  }
}

std::shared_ptr<FairScheduler::Ticket> Admit(FairScheduler& s, const std::string& who,
                                             int64_t cost = 1) {
  auto t = s.Admit(who, cost);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : nullptr;
}

TEST(FairScheduler, RefusesAPrincipalOverItsShareButNotOthers) {
  FairSchedulerOptions o;
  o.principal_max_requests = 2;
  o.principal_max_cost = 100;
  FairScheduler s(o);
  auto a1 = Admit(s, "spiffe://t/a");
  auto a2 = Admit(s, "spiffe://t/a");
  auto refused = s.Admit("spiffe://t/a", 1);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("limits.principal_max_requests"), std::string::npos)
      << refused.status();
  // Another principal is unaffected; memory is a separate limit.
  auto b = Admit(s, "spiffe://t/b", 60);
  auto too_big = s.Admit("spiffe://t/b", 41);
  ASSERT_EQ(too_big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(too_big.status().message().find("limits.principal_max_memory_mib"), std::string::npos);
  EXPECT_EQ(s.AddCost(*b, 41).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(b->cost(), 60);
  // A finished request gives its place back.
  a1.reset();
  EXPECT_TRUE(s.Admit("spiffe://t/a", 1).ok());
  EXPECT_EQ(s.GetStats().refused_principal, 3u);
}

TEST(FairScheduler, AnAnsweredRequestFreesItsPlaceButNotItsMemory) {
  FairSchedulerOptions o;
  o.principal_max_requests = 1;
  o.principal_max_cost = 100;
  o.max_cost = 150;
  FairScheduler s(o);
  auto a = Admit(s, "a", 60);
  EXPECT_FALSE(s.Admit("a", 1).ok()) << "one request is the share";
  // Answered: the caller may send its next request at once...
  a->Answered();
  a->Answered();  // twice counts once
  EXPECT_EQ(s.GetStats().requests, 0);
  auto next = Admit(s, "a", 40);
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(s.GetStats().requests, 1);
  // ...while the bytes gRPC still holds for the first count until it goes:
  // a's memory share is 60 + 40 of 100, the server's 100 of 150.
  next->Answered();
  EXPECT_EQ(s.Admit("a", 1).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.Admit("b", 51).status().code(), absl::StatusCode::kResourceExhausted);
  a.reset();
  EXPECT_TRUE(s.Admit("a", 1).ok());
  EXPECT_TRUE(s.Admit("b", 51).ok());
}

TEST(FairScheduler, RunsHereOnlyWhenAWorkerWouldStartItNow) {
  FairSchedulerOptions o;
  o.cpu_slots = 3;  // one principal may run 2
  FairScheduler s(o);
  const std::thread::id me = std::this_thread::get_id();
  std::thread::id ran_on;
  EXPECT_TRUE(s.RunHereIfIdle(Admit(s, "a"), [&] { ran_on = std::this_thread::get_id(); }));
  EXPECT_EQ(ran_on, me);
  EXPECT_EQ(s.GetStats().running, 0) << "the slot was given back";
  // a holds the two slots it may have: a third a runs nowhere here.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> started{0};
  for (int i = 0; i < 2; ++i) {
    s.Run(Admit(s, "a"), [&] {
      ++started;
      released.wait();
    });
  }
  for (int i = 0; i < 500 && started < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(started.load(), 2);
  bool ran = false;
  EXPECT_FALSE(s.RunHereIfIdle(Admit(s, "a"), [&] { ran = true; }));
  EXPECT_FALSE(ran);
  // b may take the last slot here; with it taken and a request waiting,
  // nobody jumps the queue.
  std::promise<void> b_release;
  std::shared_future<void> b_released = b_release.get_future().share();
  std::atomic<bool> b_started{false};
  s.Run(Admit(s, "b"), [&] {
    b_started = true;
    b_released.wait();
  });
  for (int i = 0; i < 500 && !b_started; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  s.Run(Admit(s, "c"), [] {});  // queued: no slot free
  EXPECT_FALSE(s.RunHereIfIdle(Admit(s, "d"), [&] { ran = true; }));
  EXPECT_FALSE(ran);
  b_release.set_value();
  release.set_value();
}

TEST(FairScheduler, RefusesEveryoneWhenTheServerIsFull) {
  FairSchedulerOptions o;
  o.max_requests = 3;
  FairScheduler s(o);
  auto a = Admit(s, "a");
  auto b = Admit(s, "b");
  auto c = Admit(s, "c");
  auto d = s.Admit("d", 1);
  ASSERT_EQ(d.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(d.status().message().find("saturated"), std::string::npos);
  EXPECT_EQ(s.GetStats().refused_server, 1u);
}

TEST(FairScheduler, AnotherPrincipalStartsWhileOneHoldsEverySlotItMay) {
  FairSchedulerOptions o;
  o.cpu_slots = 3;  // one principal may run 2
  FairScheduler s(o);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> a_started{0};
  for (int i = 0; i < 4; ++i) {
    s.Run(Admit(s, "a"), [&] {
      ++a_started;
      released.wait();
    });
  }
  std::promise<void> b_ran;
  s.Run(Admit(s, "b"), [&] { b_ran.set_value(); });
  ASSERT_EQ(b_ran.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "b waited behind a's queue";
  for (int i = 0; i < 100 && a_started < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // b's slot is free again
  EXPECT_EQ(a_started.load(), 2) << "a ran other than cpu_slots - 1 at once";
  EXPECT_EQ(s.GetStats().queued, 2);
  release.set_value();
}

TEST(FairScheduler, ALongTaskYieldsItsSlotToAWaitingPrincipal) {
  FairSchedulerOptions o;
  o.cpu_slots = 1;
  o.background_nice = 0;
  FairScheduler s(o);
  std::atomic<bool> b_ran{false};
  std::promise<bool> a_done;
  std::promise<void> a_running;
  s.Run(Admit(s, "a"), [&] {
    a_running.set_value();
    // Up to 5 s of CPU: ends as soon as b has run in between.
    Spin(s, 5.0, [&] { return b_ran.load(); });
    a_done.set_value(b_ran.load());
  });
  a_running.get_future().wait();
  s.Run(Admit(s, "b"), [&] { b_ran = true; });
  EXPECT_TRUE(a_done.get_future().get()) << "b did not run until a's batch ended";
}

TEST(FairScheduler, LongTasksRunAtBackgroundPriorityAndShortOnesDoNot) {
  const int base = ThreadNice();
  if (base >= 19) GTEST_SKIP() << "the test runs at nice " << base << " already";
  FairSchedulerOptions o;
  o.cpu_slots = 1;
  o.background_after = absl::Milliseconds(2);
  o.background_nice = 19;
  FairScheduler s(o);

  std::promise<std::pair<int, int>> long_nice;  // before and after 2 ms of CPU
  std::promise<void> b_queued;
  std::promise<int> b_nice;
  std::promise<int> short_nice;
  s.Run(Admit(s, "a"), [&] {
    const int before = ThreadNice();
    Spin(s, 0.005);
    const int after = ThreadNice();
    long_nice.set_value({before, after});
    // b arrives while this demoted thread holds the only slot: when it
    // yields, the thread that runs b is made by the spawner, not by this
    // thread (which would pass on its priority).
    b_queued.get_future().wait();
    Spin(s, 5.0, [&] { return s.GetStats().queued == 0; });
  });
  auto n = long_nice.get_future().get();
  EXPECT_EQ(n.first, base);
  EXPECT_EQ(n.second, 19);
  s.Run(Admit(s, "b"), [&] { b_nice.set_value(ThreadNice()); });
  b_queued.set_value();
  auto bf = b_nice.get_future();
  ASSERT_EQ(bf.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(bf.get(), base) << "a thread made by a demoted one inherited its priority";

  // A short task after the long one ends runs at the server's priority;
  // the demoted thread is gone.
  for (int i = 0; i < 200 && s.GetStats().running > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  s.Run(Admit(s, "c"), [&] { short_nice.set_value(ThreadNice()); });
  EXPECT_EQ(short_nice.get_future().get(), base);
  EXPECT_EQ(s.GetStats().demoted, 1u);
}

TEST(FairScheduler, StopsOnlyAfterQueuedWorkRan) {
  std::atomic<int> ran{0};
  {
    FairSchedulerOptions o;
    o.cpu_slots = 1;
    FairScheduler s(o);
    for (int i = 0; i < 20; ++i) {
      s.Run(Admit(s, i % 2 ? "a" : "b"), [&] {
        Spin(s, 0.003);  // long enough to be demoted and retire its thread
        ++ran;
      });
    }
  }
  EXPECT_EQ(ran.load(), 20);
}

}  // namespace
}  // namespace keyward::server
