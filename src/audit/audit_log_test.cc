#include "audit/audit_log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "audit/testing/forgery.h"
#include "audit/testing/log_files.h"
#include "audit/verifier.h"
#include "crypto/signature.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/software_root_of_trust.h"
#include "testing/status_matchers.h"
#include "testing/subprocess.h"

namespace keyward::audit {
namespace {

using ::keyward::testing::ReadFileOrDie;
using ::keyward::testing::StatusIs;
using ::keyward::testing::TempDir;
using ::keyward::testing::WriteFileOrDie;
using ::testing::HasSubstr;

AuditRecord Rec(int i) {
  AuditRecord r;
  r.time = absl::FromUnixSeconds(1'800'000'000 + i);
  r.request_id = absl::StrCat("req-", i);
  r.principal = "spiffe://keyward.dev/app";
  r.operation = "decrypt";
  r.key = "payments/cards";
  r.version = 1;
  r.context = {{"tenant", "hmac:abcd"}};
  r.decision = "allow";
  r.rule = "apps-data";
  r.result = "OK";
  return r;
}

// The record's bytes are its Merkle leaf: the encoding is frozen.
TEST(AuditRecordTest, SerializationIsFrozen) {
  AuditRecord r = Rec(7);
  r.peer = "ipv4:127.0.0.1:5";
  r.context["a\"b"] = "hmac:1";
  r.latency_us = 42;
  r.detail = "line\nbreak \xff";
  EXPECT_EQ(SerializeRecordBody(r),
            R"("time":"2027-01-15T08:00:07.000000Z","request_id":"req-7",)"
            R"("principal":"spiffe://keyward.dev/app","peer":"ipv4:127.0.0.1:5",)"
            R"("operation":"decrypt","key":"payments/cards","version":1,)"
            R"("context":{"a\"b":"hmac:1","tenant":"hmac:abcd"},"decision":"allow",)"
            R"("rule":"apps-data","result":"OK","error_code":"","latency_us":42,)"
            R"("detail":"line\nbreak )" "\xef\xbf\xbd" R"("})");
}

// Linear in the number of context entries: the adversarial review's
// 330,000-entry context took minutes to serialize.  (keywardd refuses such
// a context before it builds a record; the encoder must not depend on it.)
// A quadratic encoder would not finish within this test's timeout.
TEST(AuditRecordTest, LargeContextsSerializeInLinearTime) {
  AuditRecord r = Rec(1);
  for (int i = 0; i < 300000; ++i) r.context[absl::StrCat("k", i)] = "hmac:x";
  const std::string body = SerializeRecordBody(r);
  EXPECT_GT(body.size(), 300000u * 10);
  EXPECT_NE(body.find(R"("k299999":"hmac:x")"), std::string::npos);
}

class AuditLogTest : public ::testing::Test {
 protected:
  AuditLogOptions Options() {
    AuditLogOptions o;
    o.dir = dir_.File("audit");
    o.environment = "dev";
    o.signer = &signer_;
    o.signing_key_label = "keyward-audit/dev";
    o.checkpoint_interval = absl::ZeroDuration();  // explicit checkpoints only
    o.max_wait = absl::Milliseconds(500);
    return o;
  }
  // Writes `n` records with a checkpoint after each 10, and one at the end.
  void Fill(int n) {
    auto log = AuditLog::Open(Options());
    ASSERT_TRUE(log.ok()) << log.status();
    for (int i = 0; i < n; ++i) {
      KW_ASSERT_OK((*log)->Append(Rec(i)));
      if (i % 10 == 9) {
        KW_ASSERT_OK((*log)->MakeCheckpoint().status());
      }
    }
  }
  std::vector<std::string> Lines() {
    auto lines = testing::ReadLogLines(dir_.File("audit"));
    EXPECT_TRUE(lines.ok()) << lines.status();
    return lines.value_or(std::vector<std::string>{});
  }
  void WriteLines(const std::vector<std::string>& lines, bool rechain = false) {
    KW_ASSERT_OK(testing::WriteLogLines(dir_.File("audit"), lines, rechain).status());
  }
  // The signer's key, pinned from outside the log (as an auditor would).
  CheckpointTrust Pinned() {
    CheckpointTrust t;
    t.public_keys_pem.push_back(*signer_.GetOrCreateSigningKey("keyward-audit/dev"));
    return t;
  }
  VerifyReport Verify(const std::optional<SavedCheckpoint>& pinned = std::nullopt) {
    auto r = VerifyAuditLog(dir_.File("audit"), pinned ? CheckpointTrust{} : Pinned(), pinned);
    EXPECT_TRUE(r.ok()) << r.status();
    return *r;
  }
  void RewriteAndResign(std::vector<std::string> lines) {
    KW_ASSERT_OK(testing::RewriteAndResign(dir_.File("audit"), std::move(lines), "dev"));
  }
  TempDir dir_;
  hsm::testing::SoftwareRootOfTrust signer_;
};

// Stands in for the key store's sealed anchor: kept outside the directory.
class MemoryAnchor final : public CheckpointAnchor {
 public:
  absl::StatusOr<std::optional<Anchor>> Load() override { return anchor_; }
  absl::Status Store(const Anchor& a) override {
    anchor_ = a;
    return absl::OkStatus();
  }

 private:
  std::optional<Anchor> anchor_;
};

TEST_F(AuditLogTest, AnUntouchedLogVerifiesAndSurvivesReopen) {
  Fill(35);
  VerifyReport r = Verify();
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.records, 35u);
  EXPECT_EQ(r.checkpoints, 4u);  // 3 during, 1 at close
  // Reopen and keep appending: the chain continues.
  {
    auto log = AuditLog::Open(Options());
    ASSERT_TRUE(log.ok());
    EXPECT_EQ((*log)->size(), 35u);
    KW_ASSERT_OK((*log)->Append(Rec(35)));
  }
  r = Verify();
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.records, 36u);
}

TEST_F(AuditLogTest, EveryKindOfTamperingIsDetectedAndLocated) {
  Fill(30);
  const std::vector<std::string> good = Lines();
  ASSERT_EQ(good.size(), 30u);
  struct Case {
    std::string name;
    std::function<std::vector<std::string>(std::vector<std::string>)> tamper;
    std::string expect;
    std::optional<uint64_t> record;
  };
  std::vector<Case> cases = {
      {"edit", [](auto l) { l[12].replace(l[12].find("decrypt"), 7, "encrypt"); return l; },
       "record 12 was modified", 12},
      {"edit last", [](auto l) { l[29].replace(l[29].find("req-29"), 6, "req-XX"); return l; },
       "no longer match", std::nullopt},
      {"delete", [](auto l) { l.erase(l.begin() + 5); return l; }, "were deleted", 5},
      {"insert", [](auto l) { l.insert(l.begin() + 7, l[3]); return l; },
       "inserted here or records were reordered", 7},
      {"reorder", [](auto l) { std::swap(l[8], l[9]); return l; },
       "inserted here or records were reordered", 8},
      {"truncate", [](auto l) { l.resize(25); return l; }, "truncated", 25},
  };
  for (const Case& c : cases) {
    WriteLines(c.tamper(good));
    VerifyReport r = Verify();
    EXPECT_FALSE(r.ok) << c.name;
    EXPECT_THAT(r.problem, HasSubstr(c.expect)) << c.name << ": " << r.problem;
    if (c.record.has_value()) {
      EXPECT_EQ(r.first_bad_record, c.record) << c.name << ": " << r.problem;
    }
  }
  // A chain rebuilt after an edit still fails the signed checkpoints.
  {
    std::vector<std::string> l = good;
    l[12].replace(l[12].find("decrypt"), 7, "encrypt");
    WriteLines(l, /*rechain=*/true);
    VerifyReport r = Verify();
    EXPECT_FALSE(r.ok);
    EXPECT_THAT(r.problem, HasSubstr("no longer match checkpoint 2"));
  }
  WriteLines(good);
  EXPECT_TRUE(Verify().ok);
  // A modified checkpoint fails its signature.
  std::string cps = ReadFileOrDie(dir_.File("audit/checkpoints.log"));
  const std::string original = cps;
  cps.replace(cps.find("\"tree_size\":10"), 14, "\"tree_size\":11");
  WriteFileOrDie(dir_.File("audit/checkpoints.log"), cps);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.problem, HasSubstr("invalid signature"));
  WriteFileOrDie(dir_.File("audit/checkpoints.log"), original);
}

TEST_F(AuditLogTest, ASavedCheckpointCatchesTruncationAndKeySwaps) {
  Fill(20);
  SavedCheckpoint saved;
  {
    auto log = AuditLog::Open(Options());
    ASSERT_TRUE(log.ok());
    KW_ASSERT_OK_AND_ASSIGN(saved.checkpoint, (*log)->MakeCheckpoint());
    saved.public_key_pem = (*log)->public_key_pem();
  }
  KW_ASSERT_OK_AND_ASSIGN(SavedCheckpoint parsed,
                          ParseSavedCheckpoint(SerializeSavedCheckpoint(saved)));
  EXPECT_TRUE(Verify(parsed).ok);
  // Truncate the log and drop every checkpoint after the cut: only the saved
  // checkpoint knows.
  std::vector<std::string> l = Lines();
  l.resize(15);
  WriteLines(l);
  WriteFileOrDie(dir_.File("audit/checkpoints.log"), "");
  // Without any checkpoint the verifier cannot vouch for the log at all.
  VerifyReport bare = Verify();
  EXPECT_FALSE(bare.ok);
  EXPECT_THAT(bare.problem, HasSubstr("no signed checkpoint covers the records"));
  VerifyReport r = Verify(parsed);
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.problem, HasSubstr("truncated"));
  // A log re-signed with another key is refused when the key is pinned.
  hsm::testing::SoftwareRootOfTrust other;
  (void)other.GetOrCreateSigningKey("k");
  SavedCheckpoint forged = parsed;
  forged.public_key_pem = *other.GetOrCreateSigningKey("k");
  r = Verify(forged);
  EXPECT_FALSE(r.ok);
}

// The review's attack on the verifier: records deleted, the chain rebuilt,
// every checkpoint re-signed with a key of the attacker's, and that key put
// in checkpoint-keys.pem.  A verifier that pins the real key says so.
TEST_F(AuditLogTest, ARewrittenAndResignedLogFailsAgainstThePinnedKey) {
  Fill(30);
  std::vector<std::string> l = Lines();
  l.erase(l.begin() + 10, l.begin() + 15);  // five records gone
  RewriteAndResign(l);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.problem, HasSubstr("not a key you pinned"));
  // Pinned by fingerprint: the directory's key file does not hold it.
  CheckpointTrust by_fingerprint;
  by_fingerprint.fingerprints.push_back(
      *crypto::PublicKeyFingerprint(*signer_.GetOrCreateSigningKey("keyward-audit/dev")));
  EXPECT_THAT(VerifyAuditLog(dir_.File("audit"), by_fingerprint, std::nullopt),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("none of the pinned")));
  // Trusting nothing is not an option.
  EXPECT_THAT(VerifyAuditLog(dir_.File("audit"), CheckpointTrust{}, std::nullopt),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no checkpoint key")));
}

// keywardd itself, restarted on such a log, refuses it rather than sign it
// with the real key.
TEST_F(AuditLogTest, KeywarddRefusesToOpenARewrittenLog) {
  MemoryAnchor anchor;
  AuditLogOptions o = Options();
  o.anchor = &anchor;
  {
    auto log = AuditLog::Open(o);
    ASSERT_TRUE(log.ok()) << log.status();
    for (int i = 0; i < 30; ++i) KW_ASSERT_OK((*log)->Append(Rec(i)));
    KW_ASSERT_OK((*log)->MakeCheckpoint().status());
    for (int i = 30; i < 35; ++i) KW_ASSERT_OK((*log)->Append(Rec(i)));
  }  // the final checkpoint covers 35
  const std::vector<std::string> good = Lines();
  const std::string good_checkpoints = ReadFileOrDie(dir_.File("audit/checkpoints.log"));
  ASSERT_TRUE(AuditLog::Open(o).ok()) << "an untouched log opens";

  // Re-signed with another key.
  std::vector<std::string> l = good;
  l.erase(l.begin() + 3);
  RewriteAndResign(l);
  EXPECT_THAT(AuditLog::Open(o), StatusIs(absl::StatusCode::kDataLoss,
                                          HasSubstr("not signed by this keywardd's HSM key")));
  // No checkpoints at all, the records cut short: the sealed anchor knows.
  l = good;
  l.resize(20);
  WriteLines(l);
  WriteFileOrDie(dir_.File("audit/checkpoints.log"), "");
  EXPECT_THAT(AuditLog::Open(o),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("records were removed")));
  // The whole directory replaced by an empty one.
  WriteLines({});
  EXPECT_THAT(AuditLog::Open(o),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("records were removed")));
  // A chain broken in the middle.
  l = good;
  l[7].replace(l[7].find("decrypt"), 7, "encrypt");
  WriteLines(l);
  WriteFileOrDie(dir_.File("audit/checkpoints.log"), good_checkpoints);
  EXPECT_THAT(AuditLog::Open(o),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("does not chain to record 7")));
  // Restored: it opens again.
  WriteLines(good);
  KW_EXPECT_OK(AuditLog::Open(o).status());
}

TEST_F(AuditLogTest, FailsClosedWhileTheDiskRefusesAndRecovers) {
  auto log = AuditLog::Open(Options());
  ASSERT_TRUE(log.ok());
  KW_ASSERT_OK((*log)->Append(Rec(0)));
  // Make the open segment unwritable for anyone, root included.
  const std::string path = testing::OpenSegmentPath(dir_.File("audit"));
  ASSERT_EQ(::rename(path.c_str(), (path + ".keep").c_str()), 0);
  ASSERT_EQ(::symlink("/dev/full", path.c_str()), 0);
  absl::Status s = (*log)->Append(Rec(1));
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("audit log is unavailable")));
  EXPECT_THAT((*log)->Health(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("No space")));
  // Later requests are refused at once, not after another wait.
  const absl::Time t0 = absl::Now();
  EXPECT_FALSE((*log)->Append(Rec(2)).ok());
  EXPECT_LT(absl::Now() - t0, absl::Milliseconds(400));
  // The disk comes back: the queued record lands, service resumes.
  ASSERT_EQ(::unlink(path.c_str()), 0);
  ASSERT_EQ(::rename((path + ".keep").c_str(), path.c_str()), 0);
  for (int i = 0; i < 50 && !(*log)->Health().ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  KW_EXPECT_OK((*log)->Health());
  KW_EXPECT_OK((*log)->Append(Rec(3)));
  log->reset();
  VerifyReport r = Verify();
  EXPECT_TRUE(r.ok) << r.problem;
  const std::string all = absl::StrJoin(Lines(), "\n");
  EXPECT_THAT(all, HasSubstr("req-1"));             // written late, never dropped
  EXPECT_THAT(all, HasSubstr("response withheld"));  // and marked
  EXPECT_THAT(all, HasSubstr("audit-unavailable"));  // the refusal is recorded
  EXPECT_THAT(all, HasSubstr("req-3"));
}

TEST_F(AuditLogTest, GroupCommitSharesFsyncsAndProofsVerify) {
  auto log = AuditLog::Open(Options());
  ASSERT_TRUE(log.ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) EXPECT_TRUE((*log)->Append(Rec(t * 100 + i)).ok());
    });
  }
  for (auto& th : threads) th.join();
  AuditLog::Stats stats = (*log)->GetStats();
  EXPECT_EQ(stats.records, 400u);
  EXPECT_LT(stats.batches, 400u) << "records should share fsyncs";
  KW_ASSERT_OK_AND_ASSIGN(Checkpoint c, (*log)->MakeCheckpoint());
  KW_ASSERT_OK_AND_ASSIGN(auto proof, (*log)->InclusionProof(123, c.tree_size));
  EXPECT_TRUE(VerifyInclusion(*(*log)->LeafAt(123), 123, c.tree_size, proof, c.root));
  uint64_t next = 0;
  RecordFilter only;
  only.principal = "spiffe://keyward.dev/app";
  KW_ASSERT_OK_AND_ASSIGN(auto lines, (*log)->Read(0, 10, only, &next));
  EXPECT_EQ(lines.size(), 10u);
}

}  // namespace
}  // namespace keyward::audit
