// The high-availability chaos test (issue 14): the local HA stack
// (scripts/ha-stack: etcd, PostgreSQL primary and synchronous standby under
// Patroni, three keywardd replicas) under a client workload through the SDK,
// with a ledger of every acknowledged result, while keywardd replica r1 is
// killed with SIGKILL, then the PostgreSQL primary, and both are restarted.
//
// Afterwards every acknowledged ciphertext must decrypt, every acknowledged
// key and rotation exist, the audit logs verify and hold an OK record for
// every acknowledged operation, and every client-visible failure must lie
// inside a failover window: from a fault until the stack is whole again
// (PostgreSQL writable, every running replica ready) plus a grace period
// for clients to notice.  The last line printed is
//   ha-chaos: A acknowledged, L lost, F failed inside failover windows, longest window W s
//
// Runs as root (PostgreSQL and Patroni as the postgres user); skipped
// otherwise.  Bounded: about 2 minutes on 2 cores.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "appdb/database.h"
#include "gtest/gtest.h"
#include "keyward/admin_client.h"
#include "keyward/connection.h"
#include "keyward/data_client.h"
#include "keyward/errors.h"
#include "nlohmann/json.hpp"
#include "testing/status_matchers.h"
#include "testing/subprocess.h"

namespace keyward {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// How long after the stack is whole again a failure still counts as part of
// the failover: an SDK that ejected an endpoint retries it after its
// backoff, and a call that started during the fault may end after it.
constexpr absl::Duration kGrace = absl::Seconds(3);

std::string Stack() { return std::string(KEYWARD_SOURCE_DIR) + "/scripts/ha-stack"; }

testing::ProcessResult RunStack(const std::vector<std::string>& args) {
  std::vector<std::string> argv{Stack()};
  argv.insert(argv.end(), args.begin(), args.end());
  testing::ProcessResult r =
      testing::RunProcess(argv, "", {std::string("KEYWARD_BIN=") + KEYWARD_BIN_DIR});
  std::printf("$ ha-stack %s\n%s%s", absl::StrJoin(args, " ").c_str(), r.out.c_str(),
              r.err.c_str());
  std::fflush(stdout);
  return r;
}

// GET http://HOST:PORT/path → the status code (0 when nothing answers).
int HttpStatus(const std::string& url) {
  testing::ProcessResult r = testing::RunProcess(
      {"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", url});
  return std::atoi(r.out.c_str());
}

struct Window {
  std::string what;
  absl::Time start, end;   // end: whole again + kGrace
  absl::Duration to_whole;  // from the fault until the stack was whole again
};

struct Failure {
  std::string op;
  absl::Time start, end;
  absl::Status status;
};

struct Sealed {
  std::string plaintext, message;
  EncryptionContext context;
};

// What the clients were told succeeded, and what failed.
struct Ledger {
  std::mutex mu;
  std::vector<Sealed> sealed;
  std::vector<std::string> keys;                          // created
  std::vector<std::pair<std::string, uint32_t>> rotations;  // key, new primary
  std::map<std::pair<std::string, std::string>, int> acknowledged;  // (operation, key)
  std::vector<Failure> failures;
  std::atomic<int> wrong_plaintext{0};
  int total() {
    int n = 0;
    for (const auto& [k, v] : acknowledged) n += v;
    return n;
  }
  void Ack(const std::string& operation, const std::string& key) {
    std::lock_guard<std::mutex> lock(mu);
    ++acknowledged[{operation, key}];
  }
  void Fail(const std::string& op, absl::Time start, const absl::Status& s) {
    std::lock_guard<std::mutex> lock(mu);
    failures.push_back({op, start, absl::Now(), s});
  }
};

class HaChaosTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the HA stack runs PostgreSQL as the postgres user: run as root";
    // PostgreSQL, Patroni and etcd run as the postgres user: it must reach DIR.
    ASSERT_EQ(::chmod(tmp_.path().c_str(), 0755), 0);
    dir_ = tmp_.File("ha");
    testing::ProcessResult r = RunStack({"start", dir_});
    ASSERT_EQ(r.exit_code, 0) << "the HA stack did not start";
    std::ifstream in(dir_ + "/stack.json");
    stack_ = Json::parse(in);
  }
  void TearDown() override {
    if (!dir_.empty()) RunStack({"stop", dir_});
  }

  std::shared_ptr<Connection> Open(const std::string& who) {
    auto options = LoadClientConfig(stack_["client_configs"][who].get<std::string>());
    EXPECT_TRUE(options.ok()) << options.status();
    if (!options.ok()) return nullptr;
    auto c = Connection::Open(*options);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : nullptr;
  }

  // OK when PostgreSQL takes writes and every replica in `running` is
  // ready; otherwise what is missing.
  absl::Status Whole(const std::vector<std::string>& running) {
    auto db = appdb::Database::Open(stack_["postgres"]["dsn"].get<std::string>());
    if (!db.ok()) return db.status();
    if (auto s = (*db)->Execute("CREATE TEMP TABLE ha_probe(x int)"); !s.ok()) return s.status();
    for (const Json& r : stack_["keywardd"]) {
      const std::string id = r["id"].get<std::string>();
      if (std::find(running.begin(), running.end(), id) == running.end()) continue;
      const int status = HttpStatus(r["http"].get<std::string>() + "/readyz");
      if (status != 200) {
        return absl::UnavailableError(absl::StrCat(id, " /readyz answered ", status));
      }
    }
    return absl::OkStatus();
  }
  // Waits until Whole (up to 120 s) and closes the window there + kGrace.
  void CloseWindow(Window w, const std::vector<std::string>& running) {
    absl::Status whole;
    for (int i = 0; i < 1200 && !(whole = Whole(running)).ok(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(whole.ok()) << "the stack was not whole again after '" << w.what
                            << "': " << whole;
    w.to_whole = absl::Now() - w.start;
    w.end = absl::Now() + kGrace;
    std::printf("ha-chaos: '%s': the stack was whole again after %.1f s\n", w.what.c_str(),
                absl::ToDoubleSeconds(w.to_whole));
    std::fflush(stdout);
    windows_.push_back(std::move(w));
  }

  testing::TempDir tmp_;
  std::string dir_;
  Json stack_;
  std::vector<Window> windows_;
};

TEST_F(HaChaosTest, AcknowledgedWorkSurvivesReplicaAndPrimaryLoss) {
  auto admin_conn = Open("admin");
  auto app_conn = Open("app");
  ASSERT_TRUE(admin_conn && app_conn);
  AdminClient admin(admin_conn);
  DataClient app(app_conn);
  KW_ASSERT_OK(admin.CreateKey("chaos/data").status());
  Ledger ledger;
  std::atomic<bool> stop{false};

  // Data workers: encrypt (server side) and generate data keys, and read
  // back what they sealed earlier.
  auto data_worker = [&](int id) {
    std::mt19937 rng(static_cast<unsigned>(id));
    for (int i = 0; !stop; ++i) {
      Sealed s;
      s.plaintext = absl::StrCat("record ", id, "/", i);
      s.context = {{"worker", absl::StrCat(id)}, {"n", absl::StrCat(i)}};
      absl::Time t = absl::Now();
      auto m = app.Encrypt("chaos/data", s.plaintext, s.context);
      if (m.ok()) {
        s.message = *m;
        ledger.Ack("encrypt", "chaos/data");
        std::lock_guard<std::mutex> lock(ledger.mu);
        ledger.sealed.push_back(std::move(s));
      } else {
        ledger.Fail("encrypt", t, m.status());
      }
      t = absl::Now();
      auto k = app.GenerateDataKey("chaos/data", {{"worker", absl::StrCat(id)}});
      if (k.ok()) {
        ledger.Ack("generate-data-key", "chaos/data");
      } else {
        ledger.Fail("generate-data-key", t, k.status());
      }
      Sealed earlier;
      {
        std::lock_guard<std::mutex> lock(ledger.mu);
        if (ledger.sealed.empty()) continue;
        earlier = ledger.sealed[rng() % ledger.sealed.size()];
      }
      t = absl::Now();
      auto d = app.Decrypt(earlier.message, earlier.context);
      if (d.ok()) {
        ledger.Ack("decrypt", "chaos/data");
        if (d->AsStringView() != earlier.plaintext) ++ledger.wrong_plaintext;
      } else {
        ledger.Fail("decrypt", t, d.status());
      }
    }
  };
  // The admin worker: a key created, then a rotation, over and over.
  auto admin_worker = [&] {
    for (int i = 0; !stop; ++i) {
      const std::string name = absl::StrCat("chaos/k-", i);
      absl::Time t = absl::Now();
      auto created = admin.CreateKey(name);
      if (created.ok()) {
        ledger.Ack("create-key", name);
        std::lock_guard<std::mutex> lock(ledger.mu);
        ledger.keys.push_back(name);
      } else {
        ledger.Fail("create-key", t, created.status());
      }
      const std::string target = i % 2 == 0 ? "chaos/data" : name;
      t = absl::Now();
      auto rotated = admin.RotateKey(target);
      if (rotated.ok()) {
        ledger.Ack("rotate-key", target);
        std::lock_guard<std::mutex> lock(ledger.mu);
        ledger.rotations.emplace_back(target, rotated->primary_version);
      } else if (created.ok() || target == "chaos/data") {
        ledger.Fail("rotate-key", t, rotated.status());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
    }
  };
  std::vector<std::thread> workers;
  for (int i = 0; i < 3; ++i) workers.emplace_back(data_worker, i);
  workers.emplace_back(admin_worker);

  const std::vector<std::string> all = {"r1", "r2", "r3"};
  std::this_thread::sleep_for(std::chrono::seconds(8));
  // 1. kill -9 one keywardd replica.
  Window w{"kill -9 keywardd r1", absl::Now(), {}, {}};
  ASSERT_EQ(RunStack({"kill-replica", dir_, "r1"}).exit_code, 0);
  CloseWindow(w, {"r2", "r3"});
  std::this_thread::sleep_for(std::chrono::seconds(6));
  // 2. kill -9 the PostgreSQL primary: Patroni promotes the standby.
  w = {"kill -9 the PostgreSQL primary", absl::Now(), {}, {}};
  testing::ProcessResult killed = RunStack({"kill-primary", "--measure", dir_});
  ASSERT_EQ(killed.exit_code, 0);
  CloseWindow(w, {"r2", "r3"});
  std::string old_primary;
  for (const char* n : {"pg1", "pg2"}) {
    if (killed.out.find(absl::StrCat("leader ", n, " ")) != std::string::npos) old_primary = n;
  }
  ASSERT_FALSE(old_primary.empty()) << killed.out;
  std::this_thread::sleep_for(std::chrono::seconds(6));
  // 3. Restart both: the old primary rejoins as a standby, r1 comes back.
  w = {absl::StrCat("restart ", old_primary, " and r1"), absl::Now(), {}, {}};
  ASSERT_EQ(RunStack({"restart-node", dir_, old_primary}).exit_code, 0);
  ASSERT_EQ(RunStack({"start-replica", dir_, "r1"}).exit_code, 0);
  CloseWindow(w, all);
  std::this_thread::sleep_for(std::chrono::seconds(8));
  stop = true;
  for (auto& t : workers) t.join();

  // --- What was acknowledged is all there.
  int lost = 0;
  for (const Sealed& s : ledger.sealed) {
    auto d = app.Decrypt(s.message, s.context);
    if (!d.ok() || d->AsStringView() != s.plaintext) {
      ++lost;
      ADD_FAILURE() << "an acknowledged ciphertext does not decrypt: "
                    << (d.ok() ? "wrong plaintext" : d.status().ToString());
    }
  }
  for (const std::string& name : ledger.keys) {
    auto k = admin.GetKey(name);
    if (!k.ok()) {
      ++lost;
      ADD_FAILURE() << "acknowledged key " << name << " is gone: " << k.status();
    }
  }
  for (const auto& [name, version] : ledger.rotations) {
    auto k = admin.GetKey(name);
    bool found = false;
    if (k.ok()) {
      for (const KeyVersionInfo& v : k->versions) found |= v.version == version;
    }
    if (!found) {
      ++lost;
      ADD_FAILURE() << "acknowledged rotation of " << name << " to version " << version
                    << " is gone";
    }
  }
  EXPECT_EQ(ledger.wrong_plaintext.load(), 0);

  // --- The audit logs verify, and hold an OK record for each acknowledged
  // operation (counted per operation and key: a retried call may have left
  // one more).
  testing::ProcessResult verify = testing::RunProcess(
      {KEYWARD_BIN_DIR "/keyward", "--config",
       stack_["client_configs"]["admin"].get<std::string>(), "audit", "verify", "--db",
       stack_["postgres"]["dsn"].get<std::string>()});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  std::printf("%s", verify.out.c_str());
  auto db = appdb::Database::Open(stack_["postgres"]["dsn"].get<std::string>());
  ASSERT_TRUE(db.ok()) << db.status();
  KW_ASSERT_OK_AND_ASSIGN(auto rows, (*db)->Query("SELECT line FROM keyward_audit_records"));
  std::map<std::pair<std::string, std::string>, int> recorded;
  for (const appdb::ResultRow& row : rows) {
    const auto* line = std::get_if<std::string>(&row[0]);
    const auto* blob = std::get_if<appdb::Blob>(&row[0]);
    Json r = Json::parse(line ? *line : blob ? blob->bytes : std::string("{}"), nullptr, false);
    if (!r.is_object() || r.value("result", "") != "OK") continue;
    ++recorded[{r.value("operation", ""), r.value("key", "")}];
  }
  int unrecorded = 0;
  for (const auto& [op_key, n] : ledger.acknowledged) {
    if (recorded[op_key] < n) {
      unrecorded += n - recorded[op_key];
      ADD_FAILURE() << n << " acknowledged " << op_key.first << " on " << op_key.second
                    << " but " << recorded[op_key] << " OK audit records";
    }
  }
  EXPECT_EQ(unrecorded, 0);

  // --- Failures only inside the failover windows, each retryable.
  int inside = 0, unsure_count = 0;
  for (const Failure& f : ledger.failures) {
    bool in_window = false;
    for (const Window& win : windows_) in_window |= f.start <= win.end && f.end >= win.start;
    // Clear errors: retry later (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED),
    // or, for a change sent to a replica that died before answering,
    // may-have-been-applied (check, then retry).
    const bool unsure = GetErrorCode(f.status) == ErrorCode::kMayHaveBeenApplied;
    const bool clear = absl::IsUnavailable(f.status) || absl::IsDeadlineExceeded(f.status) ||
                       absl::IsAborted(f.status) || unsure;
    if (in_window && clear) {
      ++inside;
      unsure_count += unsure ? 1 : 0;
      continue;
    }
    ADD_FAILURE() << f.op << " failed "
                  << (in_window ? "with an unclear error" : "outside every failover window") << ": "
                  << f.status;
  }
  absl::Duration longest;
  for (const Window& win : windows_) longest = std::max(longest, win.to_whole);
  std::printf("ha-chaos: %d of the failures were may-have-been-applied (a change sent to a "
              "replica that died before answering)\n",
              unsure_count);
  std::printf("ha-chaos: failures are counted inside a window from its fault until %.0f s "
              "after the stack was whole again\n",
              absl::ToDoubleSeconds(kGrace));
  std::printf("ha-chaos: %d acknowledged, %d lost, %d failed inside failover windows, "
              "longest window %.1f s\n",
              ledger.total(), lost, inside, absl::ToDoubleSeconds(longest));
}

}  // namespace
}  // namespace keyward
