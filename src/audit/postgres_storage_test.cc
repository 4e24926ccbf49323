// The audit log in PostgreSQL, one log per replica: the file log's
// behaviours on a real throwaway server, the single-writer lock, failing
// closed while the database is unreachable, a COMMIT whose answer is lost,
// and `audit verify --db`'s checks against rows edited with SQL.
#include "audit/postgres_storage.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "appdb/database.h"
#include "audit/audit_log.h"
#include "audit/verifier.h"
#include "base/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/postgres_server.h"
#include "testing/software_root_of_trust.h"
#include "testing/status_matchers.h"

namespace keyward::audit {
namespace {

using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;

AuditRecord Rec(int i) {
  AuditRecord r{.time = absl::FromUnixSeconds(1'800'000'000 + i),
                .request_id = absl::StrCat("req-", i)};
  r.operation = "decrypt";
  r.decision = "allow";
  r.result = "OK";
  r.detail = "quotes \" and \\ backslashes";  // escaped in the text[] literal
  return r;
}

// Forwards connections to PostgreSQL and, when armed, cuts one at COMMIT:
// either before the server sees it (the batch never lands) or after the
// server ran it but before its answer reaches the client (it landed, and
// the client cannot know).
class CommitCutter {
 public:
  enum class Mode { kPass, kCutBeforeCommit, kCutAfterCommit };

  explicit CommitCutter(int server_port) : server_port_(server_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr = Loopback(0);
    EXPECT_EQ(
        ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    EXPECT_EQ(::listen(listener_, 16), 0);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~CommitCutter() {
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    acceptor_.join();
    for (auto& t : pumps_) t.join();
    ::close(listener_);
  }
  int port() const { return port_; }
  void Arm(Mode mode) { mode_ = mode; }
  bool fired() const { return fired_; }

 private:
  static sockaddr_in Loopback(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    return addr;
  }

  void Accept() {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) continue;
      int server = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr = Loopback(server_port_);
      if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
          0) {
        ::close(client);
        ::close(server);
        continue;
      }
      pumps_.emplace_back([this, client, server] { Pump(client, server); });
    }
  }

  static bool Send(int fd, const char* data, size_t n) {
    while (n > 0) {
      ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
      if (w <= 0) return false;
      data += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }

  void Pump(int client, int server) {
    char buf[65536];
    bool client_open = true;
    bool wait_for_commit_answer = false;
    while (!stop_) {
      pollfd fds[2] = {{client_open ? client : -1, POLLIN, 0},
                       {server, POLLIN, 0}};
      if (::poll(fds, 2, 100) <= 0) continue;
      if (client_open && (fds[0].revents & (POLLIN | POLLHUP))) {
        ssize_t n = ::recv(client, buf, sizeof(buf), 0);
        if (n <= 0) break;
        const bool commit =
            ::memmem(buf, static_cast<size_t>(n), "COMMIT", 6) != nullptr;
        const Mode mode = mode_;
        if (commit && mode == Mode::kCutBeforeCommit) {
          mode_ = Mode::kPass;
          fired_ = true;
          break;  // the server sees the connection end inside the transaction
        }
        if (!Send(server, buf, static_cast<size_t>(n))) break;
        if (commit && mode == Mode::kCutAfterCommit) {
          mode_ = Mode::kPass;
          fired_ = true;
          ::close(client);  // the client never hears how COMMIT went
          client_open = false;
          wait_for_commit_answer = true;
        }
      }
      if (fds[1].revents & (POLLIN | POLLHUP)) {
        ssize_t n = ::recv(server, buf, sizeof(buf), 0);
        if (n <= 0) break;
        if (wait_for_commit_answer) break;  // COMMIT ran on the server
        if (!Send(client, buf, static_cast<size_t>(n))) break;
      }
    }
    if (client_open) ::close(client);
    ::close(server);
  }

  const int server_port_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<Mode> mode_{Mode::kPass};
  std::atomic<bool> fired_{false};
  std::thread acceptor_;
  std::vector<std::thread>
      pumps_;  // touched by the acceptor only, until joined
};

class PostgresAuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = keyward::testing::SharedPostgresServer();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *server;
    db_name_ = absl::AsciiStrToLower(absl::StrCat(
        "audit_",
        ::testing::UnitTest::GetInstance()->current_test_info()->name()));
    auto url = server_->CreateDatabase(db_name_);
    ASSERT_TRUE(url.ok()) << url.status();
    url_ = *url;
    auto admin = appdb::Database::Open(server_->Url());
    ASSERT_TRUE(admin.ok()) << admin.status();
    admin_ = std::move(*admin);
  }

  absl::StatusOr<std::unique_ptr<AuditLog>> OpenLog(
      const std::string& log_id, const std::string& url = "") {
    KW_ASSIGN_OR_RETURN(
        std::shared_ptr<LogStorage> storage,
        OpenPostgresAuditStorage({url.empty() ? url_ : url, log_id, "dev"}));
    AuditLogOptions o;
    o.storage = std::move(storage);
    o.environment = "dev";
    o.signer = &signer_;
    o.signing_key_label = "keyward-audit/dev";
    o.checkpoint_interval = absl::ZeroDuration();  // explicit checkpoints only
    o.max_wait = max_wait_;
    return AuditLog::Open(std::move(o));
  }

  // Appends records first..first+n-1 with a checkpoint after every 10th.
  void Fill(const std::string& log_id, int first, int n) {
    auto log = OpenLog(log_id);
    ASSERT_TRUE(log.ok()) << log.status();
    for (int i = first; i < first + n; ++i) {
      KW_ASSERT_OK((*log)->Append(Rec(i)));
      if (i % 10 == 9) {
        KW_ASSERT_OK((*log)->MakeCheckpoint().status());
      }
    }
  }

  CheckpointTrust Pinned() {
    CheckpointTrust t;
    t.public_keys_pem.push_back(
        *signer_.GetOrCreateSigningKey("keyward-audit/dev"));
    return t;
  }

  // The verification of each log, by log id.
  std::map<std::string, VerifyReport> VerifyAll(
      const std::vector<std::string>& ids = {}) {
    auto logs = VerifyAuditLogsInDatabase(url_, ids, Pinned(), std::nullopt);
    EXPECT_TRUE(logs.ok()) << logs.status();
    std::map<std::string, VerifyReport> out;
    if (logs.ok()) {
      for (const LogVerifyReport& l : *logs) out[l.log_id] = l.report;
    }
    return out;
  }

  // SQL on the test database as the superuser (an attacker with DB access).
  void Sql(const std::vector<std::string>& statements) {
    auto db = appdb::Database::Open(url_);
    ASSERT_TRUE(db.ok()) << db.status();
    for (const std::string& sql : statements)
      KW_ASSERT_OK((*db)->Execute(sql, {}).status());
  }
  int64_t Count(const std::string& log_id) {
    auto db = appdb::Database::Open(url_);
    EXPECT_TRUE(db.ok()) << db.status();
    auto rows = (*db)->Query(
        "SELECT count(*), count(DISTINCT idx), coalesce(max(idx) + 1, 0) "
        "FROM keyward_audit_records WHERE log_id = $1",
        {log_id});
    EXPECT_TRUE(rows.ok()) << rows.status();
    const int64_t n = std::get<int64_t>((*rows)[0][0]);
    EXPECT_EQ(std::get<int64_t>((*rows)[0][1]), n) << "a duplicate index";
    EXPECT_EQ(std::get<int64_t>((*rows)[0][2]), n) << "a gap in the indices";
    return n;
  }

  keyward::testing::PostgresServer* server_ = nullptr;
  std::string db_name_;
  std::string url_;
  std::unique_ptr<appdb::Database> admin_;  // on keyward_test, as the superuser
  hsm::testing::SoftwareRootOfTrust signer_;
  absl::Duration max_wait_ = absl::Milliseconds(500);
};

TEST_F(PostgresAuditLogTest, AppendsReopensAndContinuesTheChain) {
  Fill("replica-a", 0, 25);
  {
    auto log = OpenLog("replica-a");
    ASSERT_TRUE(log.ok()) << log.status();
    EXPECT_EQ((*log)->size(), 25u);  // reloaded from the database
    KW_ASSERT_OK_AND_ASSIGN(Checkpoint latest, (*log)->LatestCheckpoint());
    EXPECT_EQ(latest.tree_size, 25u);  // the final checkpoint of the first run
    KW_ASSERT_OK((*log)->Append(Rec(25)));
    KW_ASSERT_OK_AND_ASSIGN(Checkpoint c, (*log)->MakeCheckpoint());
    EXPECT_EQ(c.tree_size, 26u);
    KW_ASSERT_OK_AND_ASSIGN(auto proof,
                            (*log)->InclusionProof(17, c.tree_size));
    EXPECT_TRUE(
        VerifyInclusion(*(*log)->LeafAt(17), 17, c.tree_size, proof, c.root));
    uint64_t next = 0;
    KW_ASSERT_OK_AND_ASSIGN(auto lines,
                            (*log)->Read(20, 100, RecordFilter{}, &next));
    ASSERT_EQ(lines.size(), 6u);
    EXPECT_EQ(next, 26u);
    EXPECT_THAT(lines[0], HasSubstr("\"req-20\""));
    EXPECT_THAT(lines[5], HasSubstr("\"req-25\""));
    EXPECT_THAT(lines[5], HasSubstr(R"(quotes \" and \\ backslashes)"));
  }
  EXPECT_EQ(Count("replica-a"), 26);
  std::map<std::string, VerifyReport> r = VerifyAll();
  ASSERT_EQ(r.count("replica-a"), 1u);
  EXPECT_TRUE(r["replica-a"].ok) << r["replica-a"].problem;
  EXPECT_EQ(r["replica-a"].records, 26u);
  // 10, 20 and 25 (at close) in the first run, 26 in the second.
  EXPECT_EQ(r["replica-a"].checkpoints, 4u);
}

TEST_F(PostgresAuditLogTest, TwoLogsInOneDatabaseAreIndependent) {
  auto a = OpenLog("replica-a");
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = OpenLog("replica-b");
  ASSERT_TRUE(b.ok()) << b.status();
  for (int i = 0; i < 7; ++i) KW_ASSERT_OK((*a)->Append(Rec(i)));
  for (int i = 0; i < 3; ++i) KW_ASSERT_OK((*b)->Append(Rec(100 + i)));
  EXPECT_EQ((*a)->size(), 7u);
  EXPECT_EQ((*b)->size(), 3u);
  a->reset();
  b->reset();
  EXPECT_EQ(Count("replica-a"), 7);
  EXPECT_EQ(Count("replica-b"), 3);
  std::map<std::string, VerifyReport> r = VerifyAll();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_TRUE(r["replica-a"].ok) << r["replica-a"].problem;
  EXPECT_TRUE(r["replica-b"].ok) << r["replica-b"].problem;
  EXPECT_EQ(r["replica-b"].records, 3u);
  // Each reopens with its own chain.
  auto again = OpenLog("replica-b");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->size(), 3u);
}

TEST_F(PostgresAuditLogTest, ASecondWriterOfTheSameLogIsRefused) {
  auto first = OpenLog("replica-a");
  ASSERT_TRUE(first.ok()) << first.status();
  KW_ASSERT_OK((*first)->Append(Rec(0)));
  EXPECT_THAT(OpenLog("replica-a"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("another session")));
  // Another replica's log is not affected.
  KW_EXPECT_OK(OpenLog("replica-b").status());
  first->reset();  // its session ends, and with it the lock
  auto second = OpenLog("replica-a");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)->size(), 1u);
}

TEST_F(PostgresAuditLogTest,
       FailsClosedWhileTheDatabaseIsUnreachableAndRecovers) {
  auto log = OpenLog("replica-a");
  ASSERT_TRUE(log.ok()) << log.status();
  KW_ASSERT_OK((*log)->Append(Rec(0)));
  auto allow_connections = [&](bool allow) {
    return admin_
        ->Execute(absl::StrCat("ALTER DATABASE ", db_name_,
                               " ALLOW_CONNECTIONS ", allow ? "true" : "false"),
                  {})
        .status();
  };
  // The database goes away: no new sessions, existing ones killed.
  KW_ASSERT_OK(allow_connections(false));
  KW_ASSERT_OK(
      admin_
          ->Query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE datname = $1",
                  {db_name_})
          .status());
  EXPECT_THAT((*log)->Append(Rec(1)),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("audit log is unavailable")));
  EXPECT_THAT((*log)->Health(), StatusIs(absl::StatusCode::kUnavailable));
  // Once it has been failing for max_wait, requests are refused at once
  // (and the refusals are recorded when it recovers).
  std::this_thread::sleep_for(absl::ToChronoMilliseconds(max_wait_));
  EXPECT_FALSE((*log)->Append(Rec(2)).ok());
  EXPECT_EQ((*log)->GetStats().refused, 1u);
  // It comes back: the writer reconnects and retakes the lock by itself.
  KW_ASSERT_OK(allow_connections(true));
  for (int i = 0; i < 200 && !(*log)->Health().ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  KW_EXPECT_OK((*log)->Health());
  KW_EXPECT_OK((*log)->Append(Rec(3)));
  const uint64_t size = (*log)->size();
  log->reset();
  EXPECT_EQ(Count("replica-a"), static_cast<int64_t>(size));
  std::map<std::string, VerifyReport> r = VerifyAll();
  EXPECT_TRUE(r["replica-a"].ok) << r["replica-a"].problem;
  auto db = appdb::Database::Open(url_);
  ASSERT_TRUE(db.ok());
  KW_ASSERT_OK_AND_ASSIGN(
      auto rows, (*db)->Query("SELECT string_agg(line, '\n' ORDER BY idx) "
                              "FROM keyward_audit_records",
                              {}));
  const std::string all = std::get<std::string>(rows[0][0]);
  EXPECT_THAT(all, HasSubstr("\"req-0\""));  // acknowledged before: still there
  EXPECT_THAT(all, HasSubstr("\"req-1\""));  // written late, never dropped
  EXPECT_THAT(all, HasSubstr("response withheld"));  // and marked
  EXPECT_THAT(all, HasSubstr("audit-unavailable"));  // the refusal is recorded
  EXPECT_THAT(all, HasSubstr("\"req-3\""));
}

// The connection is cut at COMMIT; either way the retry leaves every index
// written exactly once and the chain intact.
TEST_F(PostgresAuditLogTest,
       ACommitWhoseAnswerIsLostIsNeitherDuplicatedNorLost) {
  CommitCutter cutter(server_->port());
  const std::string via =
      absl::StrCat("postgresql://keyward@127.0.0.1:", cutter.port(), "/",
                   db_name_, "?connect_timeout=5");
  max_wait_ = absl::Seconds(20);  // the retry must land before callers give up
  for (CommitCutter::Mode mode : {CommitCutter::Mode::kCutAfterCommit,
                                  CommitCutter::Mode::kCutBeforeCommit}) {
    SCOPED_TRACE(mode == CommitCutter::Mode::kCutAfterCommit ? "after"
                                                             : "before");
    const std::string id = mode == CommitCutter::Mode::kCutAfterCommit
                               ? "replica-after"
                               : "replica-before";
    auto log = OpenLog(id, via);
    ASSERT_TRUE(log.ok()) << log.status();
    KW_ASSERT_OK((*log)->Append(Rec(0)));
    cutter.Arm(mode);
    KW_ASSERT_OK((*log)->Append(Rec(1)));
    EXPECT_TRUE(cutter.fired());
    KW_ASSERT_OK((*log)->Append(Rec(2)));
    EXPECT_EQ((*log)->size(), 3u);
    log->reset();
    EXPECT_EQ(Count(id), 3);
    std::map<std::string, VerifyReport> r = VerifyAll({id});
    EXPECT_TRUE(r[id].ok) << r[id].problem;
    // And the log opens again on what is stored.
    auto again = OpenLog(id);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ((*again)->size(), 3u);
  }
}

TEST_F(PostgresAuditLogTest, VerifyDetectsRowsEditedWithSql) {
  Fill("victim", 0, 30);  // checkpoints at 10, 20, 30 and at close
  Fill("bystander", 0, 12);
  std::map<std::string, VerifyReport> r = VerifyAll();
  ASSERT_TRUE(r["victim"].ok) << r["victim"].problem;
  ASSERT_TRUE(r["bystander"].ok) << r["bystander"].problem;

  struct Case {
    std::string name;
    std::string tamper;  // SQL
    std::string expect;
  };
  Sql({"CREATE TABLE saved AS SELECT * FROM keyward_audit_records"});
  const std::vector<std::string> restore = {
      "DELETE FROM keyward_audit_records",
      "INSERT INTO keyward_audit_records SELECT * FROM saved"};
  const std::vector<Case> cases = {
      {"middle deleted",
       "DELETE FROM keyward_audit_records WHERE log_id = 'victim' AND idx = 5",
       "were deleted"},
      {"end before a checkpoint deleted",
       "DELETE FROM keyward_audit_records WHERE log_id = 'victim' AND idx >= "
       "25",
       "truncated"},
      {"record altered",
       "UPDATE keyward_audit_records SET line = replace(line, 'decrypt', "
       "'encrypt') "
       "WHERE log_id = 'victim' AND idx = 12",
       "record 12 was modified"},
      {"all rows deleted",
       "DELETE FROM keyward_audit_records WHERE log_id = 'victim'",
       "holds no records"},
  };
  for (const Case& c : cases) {
    Sql({c.tamper});
    r = VerifyAll();
    EXPECT_FALSE(r["victim"].ok) << c.name;
    EXPECT_THAT(r["victim"].problem, HasSubstr(c.expect)) << c.name;
    EXPECT_TRUE(r["bystander"].ok) << c.name << ": " << r["bystander"].problem;
    Sql(restore);
    r = VerifyAll({"victim"});
    EXPECT_TRUE(r["victim"].ok) << c.name << " undone: " << r["victim"].problem;
  }
  // The whole log gone, checkpoints and listing too, but named: absent.
  Sql({"DELETE FROM keyward_audit_records WHERE log_id = 'victim'",
       "DELETE FROM keyward_audit_checkpoints WHERE log_id = 'victim'",
       "DELETE FROM keyward_audit_logs WHERE log_id = 'victim'"});
  r = VerifyAll({"victim", "bystander"});
  EXPECT_FALSE(r["victim"].ok);
  EXPECT_THAT(r["victim"].problem,
              HasSubstr("there is no audit log \"victim\""));
  EXPECT_TRUE(r["bystander"].ok);
  // keywardd refuses to open a log cut back in the middle, as it does a file.
  Sql(
      {"DELETE FROM keyward_audit_records WHERE log_id = 'bystander' AND idx = "
       "3"});
  EXPECT_THAT(OpenLog("bystander"),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("carries sequence number")));
  // No trusted key at all is a usage error, before any connection.
  EXPECT_THAT(
      VerifyAuditLogsInDatabase(url_, {}, CheckpointTrust{}, std::nullopt),
      StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace keyward::audit
