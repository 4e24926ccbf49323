// The KeyStore contract, run against every implementation.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keystore/sqlite_key_store.h"
#include "keystore/key_store_fixture.h"
#include "keyward/errors.h"
#include "testing/status_matchers.h"
#include "testing/subprocess.h"

namespace keyward::keystore {
namespace {

using ::keyward::testing::IsOk;
using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;

Key MakeKey(const std::string& name, const std::string& env = "dev") {
  Key key;
  key.name = name;
  key.environment = env;
  key.primary_version = 1;
  key.created = key.updated = absl::FromUnixSeconds(1'700'000'000);
  key.labels = {{"team", "payments"}};
  key.rotation_period = absl::Hours(24 * 90);
  KeyVersion v;
  v.version = 1;
  v.sealed_kek = std::string(60, 's');
  v.created = key.created;
  key.versions.push_back(v);
  return key;
}

class KeyStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto s = OpenTestStore(GetParam(), dir_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  ::keyward::testing::TempDir dir_;
  std::unique_ptr<KeyStore> store_;
};

TEST_P(KeyStoreTest, CreateGetAndRefuseDuplicates) {
  KW_ASSERT_OK(store_->CreateKey(MakeKey("payments/cards")));
  KW_ASSERT_OK_AND_ASSIGN(Key key, store_->GetKey("payments/cards"));
  EXPECT_EQ(key.revision, 1u);
  EXPECT_EQ(key.labels.at("team"), "payments");
  EXPECT_EQ(key.rotation_period, absl::Hours(24 * 90));
  ASSERT_EQ(key.versions.size(), 1u);
  EXPECT_EQ(key.versions[0].sealed_kek, std::string(60, 's'));
  EXPECT_EQ(key.created, absl::FromUnixSeconds(1'700'000'000));
  EXPECT_THAT(store_->CreateKey(MakeKey("payments/cards")),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(store_->GetKey("nope"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(KeyStoreTest, RefusesKeysOfAnotherEnvironmentAndInvalidKeys) {
  auto s = store_->CreateKey(MakeKey("a", "production"));
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(GetErrorCode(s), ErrorCode::kEnvironmentMismatch);
  Key bad = MakeKey("a");
  bad.primary_version = 2;
  EXPECT_THAT(store_->CreateKey(bad), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->CreateKey(MakeKey("/bad")),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(KeyStoreTest, UpdateIsACompareAndSwapOnTheRevision) {
  KW_ASSERT_OK(store_->CreateKey(MakeKey("k")));
  KW_ASSERT_OK_AND_ASSIGN(Key a, store_->GetKey("k"));
  KW_ASSERT_OK_AND_ASSIGN(Key b, store_->GetKey("k"));
  KeyVersion v2 = a.versions[0];
  v2.version = 2;
  a.versions[0].state = VersionState::kDecryptOnly;
  a.versions.push_back(v2);
  a.primary_version = 2;
  KW_ASSERT_OK(store_->UpdateKey(a));
  b.labels["x"] = "y";
  EXPECT_THAT(store_->UpdateKey(b), StatusIs(absl::StatusCode::kAborted));
  KW_ASSERT_OK_AND_ASSIGN(Key now, store_->GetKey("k"));
  EXPECT_EQ(now.revision, 2u);
  EXPECT_EQ(now.primary_version, 2u);
  EXPECT_EQ(now.versions[0].state, VersionState::kDecryptOnly);
  EXPECT_EQ(now.labels.count("x"), 0u);
  // Versions are never removed.
  now.versions.pop_back();
  now.primary_version = 1;
  now.versions[0].state = VersionState::kEnabled;
  EXPECT_THAT(store_->UpdateKey(now), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(KeyStoreTest, ListsByPrefixInPages) {
  for (const char* n : {"a/1", "a/2", "a/3", "a/4", "a/5", "ab", "b/1"}) {
    KW_ASSERT_OK(store_->CreateKey(MakeKey(n)));
  }
  std::vector<std::string> names;
  std::string token;
  int pages = 0;
  do {
    KW_ASSERT_OK_AND_ASSIGN(KeyPage page, store_->ListKeys("a/", 2, token));
    for (const Key& k : page.keys) names.push_back(k.name);
    token = page.next_page_token;
    ++pages;
  } while (!token.empty());
  EXPECT_THAT(names, ::testing::ElementsAre("a/1", "a/2", "a/3", "a/4", "a/5"));
  EXPECT_EQ(pages, 3);
  KW_ASSERT_OK_AND_ASSIGN(KeyPage all, store_->ListKeys("", 100, ""));
  EXPECT_EQ(all.keys.size(), 7u);
  EXPECT_TRUE(all.next_page_token.empty());
  EXPECT_THAT(store_->ListKeys("", 0, ""), StatusIs(absl::StatusCode::kInvalidArgument));
  KW_ASSERT_OK_AND_ASSIGN(int64_t count, store_->CountKeys());
  EXPECT_EQ(count, 7);
}

TEST_P(KeyStoreTest, UsageCountersAddUpWithoutTouchingRevisions) {
  KW_ASSERT_OK(store_->CreateKey(MakeKey("k")));
  const absl::Time t1 = absl::FromUnixSeconds(1'800'000'000);
  KW_ASSERT_OK(store_->AddUsage({{"k", 1, 10, 2, t1}, {"k", 9, 1, 1, t1},
                                 {"missing", 1, 1, 1, t1}}));
  KW_ASSERT_OK(store_->AddUsage({{"k", 1, 5, 1, t1 - absl::Hours(1)}}));
  KW_ASSERT_OK_AND_ASSIGN(Key key, store_->GetKey("k"));
  EXPECT_EQ(key.versions[0].usage.data_keys_issued, 15u);
  EXPECT_EQ(key.versions[0].usage.decrypts, 3u);
  EXPECT_EQ(key.versions[0].usage.last_used, t1);
  EXPECT_EQ(key.revision, 1u);
  // An update does not overwrite counters.
  key.labels["x"] = "1";
  KW_ASSERT_OK(store_->UpdateKey(key));
  KW_ASSERT_OK(store_->AddUsage({{"k", 1, 1, 0, t1}}));
  KW_ASSERT_OK_AND_ASSIGN(Key after, store_->GetKey("k"));
  EXPECT_EQ(after.versions[0].usage.data_keys_issued, 16u);
}

TEST_P(KeyStoreTest, ListsDueDestructions) {
  Key key = MakeKey("k");
  KeyVersion v2 = key.versions[0];
  v2.version = 2;
  key.versions[0].state = VersionState::kPendingDestruction;
  key.versions[0].destroy_after = absl::FromUnixSeconds(2'000);
  key.versions.push_back(v2);
  key.primary_version = 2;
  KW_ASSERT_OK(store_->CreateKey(key));
  KW_ASSERT_OK_AND_ASSIGN(auto none, store_->ListDueDestructions(absl::FromUnixSeconds(1'999)));
  EXPECT_TRUE(none.empty());
  KW_ASSERT_OK_AND_ASSIGN(auto due, store_->ListDueDestructions(absl::FromUnixSeconds(2'000)));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].key_name, "k");
  EXPECT_EQ(due[0].version, 1u);
}

TEST_P(KeyStoreTest, ALeaseHasOneHolderAtATime) {
  KW_ASSERT_OK_AND_ASSIGN(Lease a, store_->AcquireLease("rotation", "a", absl::Minutes(1)));
  EXPECT_EQ(a.holder, "a");
  EXPECT_THAT(store_->AcquireLease("rotation", "b", absl::Minutes(1)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("held by a")));
  KW_ASSERT_OK_AND_ASSIGN(Lease renewed, store_->AcquireLease("rotation", "a", absl::Minutes(1)));
  EXPECT_EQ(renewed.fencing_token, a.fencing_token);
  KW_ASSERT_OK(store_->ReleaseLease("rotation", "b"));  // not b's: nothing happens
  EXPECT_THAT(store_->AcquireLease("rotation", "b", absl::Minutes(1)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  KW_ASSERT_OK(store_->ReleaseLease("rotation", "a"));
  KW_ASSERT_OK_AND_ASSIGN(Lease b, store_->AcquireLease("rotation", "b", absl::Minutes(1)));
  EXPECT_EQ(b.fencing_token, a.fencing_token + 1);
  EXPECT_THAT(store_->AcquireLease("", "b", absl::Minutes(1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

INSTANTIATE_TEST_SUITE_P(Backends, KeyStoreTest,
                         ::testing::Values("memory", "sqlite", "postgres"));

}  // namespace
}  // namespace keyward::keystore

namespace keyward::keystore {
namespace {

TEST_P(KeyStoreTest, LastDecryptDrillSamplesAndDataSetReports) {
  Key key = MakeKey("k");
  key.versions[0].drill_sample = std::string("sample\0bytes", 12);
  KW_ASSERT_OK(store_->CreateKey(key));
  const absl::Time t1 = absl::FromUnixSeconds(1'800'000'000);
  // Issuing only: last_used moves, last_decrypt does not.
  KW_ASSERT_OK(store_->AddUsage({{"k", 1, 3, 0, t1}}));
  KW_ASSERT_OK_AND_ASSIGN(Key k1, store_->GetKey("k"));
  EXPECT_EQ(k1.versions[0].usage.last_used, t1);
  EXPECT_FALSE(k1.versions[0].usage.last_decrypt.has_value());
  EXPECT_EQ(k1.versions[0].drill_sample, std::string("sample\0bytes", 12));
  KW_ASSERT_OK(store_->AddUsage({{"k", 1, 0, 1, t1 + absl::Seconds(5), t1 + absl::Seconds(5)}}));
  KW_ASSERT_OK(store_->AddUsage({{"k", 1, 0, 1, t1, t1}}));  // older: kept the later
  KW_ASSERT_OK_AND_ASSIGN(Key k2, store_->GetKey("k"));
  EXPECT_EQ(k2.versions[0].usage.last_decrypt, t1 + absl::Seconds(5));

  EXPECT_TRUE(store_->ListDataSetReports("k")->empty());
  DataSetReport r{"sqlite:/a.db#t.c", "k", {{1, 10}, {2, 0}}, 10, t1, "admin"};
  KW_ASSERT_OK(store_->PutDataSetReport(r));
  r.rows_per_version = {{1, 0}, {2, 10}};
  r.reported = t1 + absl::Hours(1);
  KW_ASSERT_OK(store_->PutDataSetReport(r));  // replaces
  KW_ASSERT_OK(store_->PutDataSetReport({"sqlite:/b.db#t.c", "k", {{1, 4}}, 4, t1, "app"}));
  KW_ASSERT_OK(store_->PutDataSetReport({"sqlite:/a.db#t.c", "other", {{1, 4}}, 4, t1, "app"}));
  KW_ASSERT_OK_AND_ASSIGN(auto reports, store_->ListDataSetReports("k"));
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0].data_set, "sqlite:/a.db#t.c");
  EXPECT_EQ(reports[0].rows_per_version, (std::map<uint32_t, uint64_t>{{1, 0}, {2, 10}}));
  EXPECT_EQ(reports[0].reported, t1 + absl::Hours(1));
  EXPECT_EQ(reports[1].rows_per_version.at(1), 4u);
  EXPECT_EQ(reports[1].reported_by, "app");
}

// A break-glass grant round-trips whole; a refused update stores nothing;
// concurrent uses never pass the count.
TEST_P(KeyStoreTest, BreakGlassGrantsCountUsesInOneTransaction) {
  policy::BreakGlassGrant g;
  g.id = "bg-1";
  g.requester = "spiffe://x/oncall";
  g.key = "restricted/a";
  g.context = {{"incident", "INC-1"}};
  g.reason = "why";
  g.rule = "entry";
  g.quorum = 2;
  g.duration = absl::Hours(2);
  g.max_decrypts = 5;
  g.requested = absl::FromUnixSeconds(100);
  g.request_expires = absl::FromUnixSeconds(200);
  g.approvals = {{"spiffe://x/a", absl::FromUnixSeconds(110)},
                 {"spiffe://x/b", absl::FromUnixSeconds(120)}};
  g.activated = absl::FromUnixSeconds(120);
  KW_ASSERT_OK(store_->CreateBreakGlass(g));
  EXPECT_THAT(store_->CreateBreakGlass(g), StatusIs(absl::StatusCode::kAlreadyExists));
  KW_ASSERT_OK_AND_ASSIGN(auto open, store_->ListBreakGlass(false));
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].context, g.context);
  EXPECT_EQ(open[0].approvals.size(), 2u);
  EXPECT_EQ(open[0].approvals[1].time, absl::FromUnixSeconds(120));
  EXPECT_EQ(open[0].activated, g.activated);
  EXPECT_EQ(open[0].duration, g.duration);
  EXPECT_FALSE(open[0].revoked.has_value());

  EXPECT_THAT(store_->UpdateBreakGlass("bg-1",
                                       [](policy::BreakGlassGrant& s) {
                                         s.decrypts = 99;
                                         return absl::FailedPreconditionError("refused");
                                       }),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(store_->UpdateBreakGlass("nope", [](policy::BreakGlassGrant&) {
    return absl::OkStatus();
  }),
              StatusIs(absl::StatusCode::kNotFound));

  // Eight threads race for the five uses.
  const absl::Time now = absl::FromUnixSeconds(130);
  std::atomic<int> granted{0};
  std::vector<std::thread> users;
  for (int t = 0; t < 8; ++t) {
    users.emplace_back([&] {
      for (int i = 0; i < 3; ++i) {
        auto r = store_->UpdateBreakGlass("bg-1", [&](policy::BreakGlassGrant& s) {
          if (s.StateAt(now) != policy::BreakGlassGrant::State::kActive) {
            return absl::FailedPreconditionError("not active");
          }
          ++s.decrypts;
          return absl::OkStatus();
        });
        if (r.ok()) ++granted;
      }
    });
  }
  for (auto& u : users) u.join();
  EXPECT_EQ(granted.load(), 5);

  KW_ASSERT_OK_AND_ASSIGN(auto closed, store_->UpdateBreakGlass("bg-1", [](auto& s) {
    s.closed = true;
    return absl::OkStatus();
  }));
  EXPECT_EQ(closed.decrypts, 5u);
  KW_ASSERT_OK_AND_ASSIGN(auto none_open, store_->ListBreakGlass(false));
  EXPECT_TRUE(none_open.empty());
  KW_ASSERT_OK_AND_ASSIGN(auto all, store_->ListBreakGlass(true));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].decrypts, 5u);
  EXPECT_TRUE(all[0].closed);
}

TEST_P(KeyStoreTest, ACompromiseIsStoredWithItsVersionAndSurvivesOtherChanges) {
  KW_ASSERT_OK(store_->CreateKey(MakeKey("k")));
  KW_ASSERT_OK_AND_ASSIGN(Key key, store_->GetKey("k"));
  EXPECT_FALSE(key.versions[0].compromise.has_value());
  KeyVersion v2 = key.versions[0];
  v2.version = 2;
  key.versions[0].state = VersionState::kDecryptOnly;
  const absl::Time when = absl::FromUnixSeconds(1'800'000'123);
  key.versions[0].compromise = Compromise{when, "leaked in ticket INC-42", "spiffe://x/admin"};
  key.versions.push_back(v2);
  key.primary_version = 2;
  KW_ASSERT_OK(store_->UpdateKey(key));
  KW_ASSERT_OK_AND_ASSIGN(Key after, store_->GetKey("k"));
  ASSERT_TRUE(after.versions[0].compromise.has_value());
  EXPECT_EQ(after.versions[0].compromise->when, when);
  EXPECT_EQ(after.versions[0].compromise->reason, "leaked in ticket INC-42");
  EXPECT_EQ(after.versions[0].compromise->by, "spiffe://x/admin");
  EXPECT_FALSE(after.versions[1].compromise.has_value());
  // A later change of the key (labels) keeps it, and listing shows it too.
  after.labels["x"] = "y";
  KW_ASSERT_OK(store_->UpdateKey(after));
  KW_ASSERT_OK_AND_ASSIGN(KeyPage page, store_->ListKeys("", 10, ""));
  ASSERT_EQ(page.keys.size(), 1u);
  ASSERT_TRUE(page.keys[0].versions[0].compromise.has_value());
  EXPECT_EQ(page.keys[0].versions[0].compromise->when, when);
}

TEST_P(KeyStoreTest, GrantsAndSecrets) {
  policy::Grant g;
  g.id = "g-1";
  g.principal = "spiffe://x/responder";
  g.key = "payments/*";
  g.operations = {"decrypt"};
  g.context = {{"case", "INC-1"}};
  g.created = absl::FromUnixSeconds(100);
  g.expires = absl::FromUnixSeconds(200);
  g.created_by = "spiffe://x/admin";
  g.reason = "incident";
  KW_ASSERT_OK(store_->CreateGrant(g));
  EXPECT_THAT(store_->CreateGrant(g), StatusIs(absl::StatusCode::kAlreadyExists));
  KW_ASSERT_OK_AND_ASSIGN(auto active, store_->ListGrants(absl::FromUnixSeconds(150), false));
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].context, g.context);
  EXPECT_EQ(active[0].operations, g.operations);
  EXPECT_EQ(active[0].expires, g.expires);
  KW_ASSERT_OK_AND_ASSIGN(auto later, store_->ListGrants(absl::FromUnixSeconds(250), false));
  EXPECT_TRUE(later.empty());
  KW_ASSERT_OK(store_->RevokeGrant("g-1", absl::FromUnixSeconds(160)));
  EXPECT_THAT(store_->RevokeGrant("g-1", absl::FromUnixSeconds(170)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(store_->RevokeGrant("nope", absl::FromUnixSeconds(170)),
              StatusIs(absl::StatusCode::kNotFound));
  KW_ASSERT_OK_AND_ASSIGN(auto all, store_->ListGrants(absl::FromUnixSeconds(150), true));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].revoked, absl::FromUnixSeconds(160));

  KW_ASSERT_OK_AND_ASSIGN(auto none, store_->GetSealedSecret("audit-hmac"));
  EXPECT_FALSE(none.has_value());
  KW_ASSERT_OK(store_->PutSealedSecret("audit-hmac", "sealed-bytes"));
  EXPECT_THAT(store_->PutSealedSecret("audit-hmac", "other"),
              StatusIs(absl::StatusCode::kAlreadyExists));
  KW_ASSERT_OK_AND_ASSIGN(auto got, store_->GetSealedSecret("audit-hmac"));
  EXPECT_EQ(*got, "sealed-bytes");
}

}  // namespace
}  // namespace keyward::keystore
