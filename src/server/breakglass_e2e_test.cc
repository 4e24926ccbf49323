// End to end: break-glass grants with quorum approval (issue 15) on a real
// keywardd with the development policy of `keyward dev init`: keys under
// restricted/ are encrypted by app and admin, decrypted by no one except
// under a grant app requests and admin and approver both approve.
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keyward/errors.h"
#include "nlohmann/json.hpp"
#include "testing/e2e_fixture.h"

namespace keyward {
namespace {

using ::keyward::testing::ProcessResult;
using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

constexpr char kKey[] = "restricted/customers";
constexpr char kCanary[] = "CANARY-7c1e9f-plaintext-of-a-restricted-record";
const EncryptionContext kIncident = {{"incident", "INC-4711"}, {"table", "customers"}};

class BreakGlassTest : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_EQ(server_->Cli({"key", "create", kKey}).exit_code, 0);
    app_ = Connect(server_->app_config());
    ASSERT_NE(app_, nullptr);
    auto m = app_->Encrypt(kKey, kCanary, kIncident);
    ASSERT_TRUE(m.ok()) << m.status();
    message_ = *m;
  }
  std::string approver() const { return server_->File("approver.yaml"); }
  std::string app() const { return server_->app_config(); }

  // `keyward breakglass ARGS --json` as `config`; the parsed object.
  Json Bg(std::vector<std::string> args, const std::string& config, int expect_exit = 0) {
    args.insert(args.begin(), "breakglass");
    args.push_back("--json");
    ProcessResult r = server_->Cli(args, config);
    EXPECT_EQ(r.exit_code, expect_exit) << r.out << r.err;
    outputs_.push_back(r.out + r.err);
    return Json::parse(r.out, nullptr, false);
  }
  std::string Request(const std::string& duration, int max_decrypts) {
    Json g = Bg({"request", "--key", kKey, "--context", "incident=INC-4711", "--reason",
                 "INC-4711: customers table leaked?", "--duration", duration, "--max-decrypts",
                 std::to_string(max_decrypts)},
                app());
    EXPECT_EQ(g["state"], "pending");
    EXPECT_EQ(g["quorum"], 2);
    return g.value("id", "");
  }
  Json Approve(const std::string& id, const std::string& config, int expect_exit = 0) {
    return Bg({"approve", id}, config, expect_exit);
  }
  absl::Status Decrypt(const EncryptionContext& context = kIncident) {
    auto p = app_->Decrypt(message_, context);
    if (p.ok()) {
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(p->data()), p->size()), kCanary);
    }
    return p.status();
  }

  std::shared_ptr<testing::Client> app_;
  std::string message_;
  std::vector<std::string> outputs_;  // every breakglass command's output
};

TEST_F(BreakGlassTest, QuorumOfOthersThenCountedUsesWithinContextThenReportProvesEachRecord) {
  // Sealed by the policy: nobody decrypts restricted/ data, the admin neither.
  EXPECT_THAT(Decrypt(), StatusIs(absl::StatusCode::kPermissionDenied,
                                  HasSubstr("dev-restricted-sealed")));
  auto admin = Connect(server_->admin_config());
  ASSERT_NE(admin, nullptr);
  EXPECT_THAT(admin->Decrypt(message_, kIncident).status(),
              StatusIs(absl::StatusCode::kPermissionDenied));

  // Only a requester the policy names may ask.
  ProcessResult denied = server_->Cli({"breakglass", "request", "--key", kKey, "--reason", "x"},
                                      approver());
  EXPECT_EQ(denied.exit_code, 5) << denied.err;
  EXPECT_THAT(denied.err, HasSubstr("no breakglass entry"));

  const std::string id = Request("1h", 3);
  ASSERT_FALSE(id.empty());

  // The requester never counts: self-approval is refused and changes nothing.
  ProcessResult self = server_->Cli({"breakglass", "approve", id}, app());
  EXPECT_EQ(self.exit_code, 5) << self.err;
  EXPECT_THAT(self.err, HasSubstr("requester never counts"));

  // One approval of two (M-1): still pending, decrypts still refused.
  Json one = Approve(id, server_->admin_config());
  EXPECT_EQ(one["state"], "pending");
  EXPECT_EQ(one["approvals"].size(), 1u);
  EXPECT_THAT(Decrypt(), StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("pending")));
  // The same approver twice is still one approval.
  ProcessResult twice = server_->Cli({"breakglass", "approve", id}, server_->admin_config());
  EXPECT_NE(twice.exit_code, 0);
  EXPECT_THAT(twice.err, HasSubstr("already approved"));
  EXPECT_EQ(Bg({"show", id}, app())["state"], "pending");

  Json active = Approve(id, approver());
  EXPECT_EQ(active["state"], "active");
  EXPECT_EQ(active["approvals"].size(), 2u);
  EXPECT_THAT(server_->HttpGet("/metrics"), HasSubstr("keyward_breakglass_grants_active 1"));
  EXPECT_THAT(server_->log(), HasSubstr("break-glass grant ACTIVE"));

  // Outside the context (a message of another incident): refused, and not
  // counted.
  auto other = app_->Encrypt(kKey, "another record", {{"incident", "INC-1"}});
  ASSERT_TRUE(other.ok());
  EXPECT_THAT(app_->Decrypt(*other, {{"incident", "INC-1"}}).status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // Only the requester: the admin still may not.
  EXPECT_THAT(admin->Decrypt(message_, kIncident).status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // Within key, context, time and count: three decrypts (two messages, one
  // data key), then refused.
  auto dk = app_->GenerateDataKey(kKey, kIncident);
  ASSERT_TRUE(dk.ok()) << dk.status();
  const std::string dek(reinterpret_cast<const char*>(dk->plaintext.data()), dk->plaintext.size());
  KW_EXPECT_OK(Decrypt());
  auto unwrapped = app_->DecryptDataKey(dk->encrypted.ciphertext, kIncident);
  ASSERT_TRUE(unwrapped.ok()) << unwrapped.status();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(unwrapped->data()), unwrapped->size()), dek);
  KW_EXPECT_OK(Decrypt());
  // (The refusal names the used-up grant unless keywardd closed it already.)
  EXPECT_THAT(Decrypt(), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(Bg({"show", id}, app())["decrypts"], 3);

  // The review: every linked record, proven against a signed checkpoint.
  // The grant's end (count used up) is recorded by keywardd on its own.
  Json report;
  for (int i = 0; i < 60; ++i) {
    report = Bg({"report", id}, approver());
    bool ended = false;
    for (const Json& r : report["records"]) ended = ended || r["operation"] == "breakglass-end";
    if (ended) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  EXPECT_EQ(report["all_verified"], true);
  std::map<std::string, int> ops;
  int allowed_decrypts = 0;
  for (const Json& r : report["records"]) {
    ops[r["operation"].get<std::string>()]++;
    EXPECT_EQ(r["inclusion_proof"]["verified"], true);
    EXPECT_EQ(r["inclusion_proof"]["leaf_hash"].get<std::string>().size(), 64u);
    if (r["operation"] == "decrypt" && r["decision"] == "allow") ++allowed_decrypts;
  }
  EXPECT_EQ(ops["breakglass-request"], 1);
  EXPECT_EQ(ops["breakglass-approve"], 4);  // self, admin, admin again, approver
  EXPECT_EQ(allowed_decrypts, 3);
  EXPECT_EQ(ops["breakglass-end"], 1);
  EXPECT_THAT(server_->HttpGet("/metrics"), HasSubstr("keyward_breakglass_grants_active 0"));

  // Text forms too, for the canary below.
  for (const char* cmd : {"show", "report"}) {
    ProcessResult r = server_->Cli({"breakglass", cmd, id}, approver());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    outputs_.push_back(r.out + r.err);
  }
  ProcessResult list = server_->Cli({"breakglass", "list", "--all"}, approver());
  EXPECT_THAT(list.out, HasSubstr(id));
  outputs_.push_back(list.out + list.err);
  outputs_.push_back(Bg({"list", "--all"}, app()).dump());

  // Canary: no plaintext and no data key in any breakglass output.
  for (const std::string& out : outputs_) {
    EXPECT_THAT(out, Not(HasSubstr(kCanary)));
    EXPECT_THAT(out, Not(HasSubstr(absl::BytesToHexString(dek))));
    EXPECT_THAT(out, Not(HasSubstr(absl::Base64Escape(dek))));
    EXPECT_THAT(out, Not(HasSubstr(absl::Base64Escape(message_).substr(0, 40))));
  }
}

TEST_F(BreakGlassTest, ExpiryAndRevocationEndAGrantAtOnce) {
  const std::string expiring = Request("2s", 100);
  Approve(expiring, server_->admin_config());
  Json g = Approve(expiring, approver());
  ASSERT_EQ(g["state"], "active");
  KW_EXPECT_OK(Decrypt());
  // Wait out its time (by the server's own expiry instant).
  while (Bg({"show", expiring}, app())["state"] == "active") {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_THAT(Decrypt(), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(Bg({"show", expiring}, app())["decrypts"], 1);

  const std::string revoked = Request("1h", 100);
  Approve(revoked, server_->admin_config());
  Approve(revoked, approver());
  KW_EXPECT_OK(Decrypt());
  Json r = Bg({"revoke", revoked}, approver());
  EXPECT_EQ(r["state"], "revoked");
  EXPECT_EQ(r["revoked_by"], "spiffe://keyward.dev/approver");
  // Immediately: the very next decrypt is refused.
  EXPECT_THAT(Decrypt(), StatusIs(absl::StatusCode::kPermissionDenied));
  // A revoked grant cannot be approved back to life nor revoked twice.
  ProcessResult again = server_->Cli({"breakglass", "revoke", revoked}, app());
  EXPECT_NE(again.exit_code, 0);
  EXPECT_THAT(again.err, HasSubstr("already revoked"));
}

TEST_F(BreakGlassTest, RestartKeepsApprovalsGrantsAndExactCounts) {
  const std::string counted = Request("1h", 4);
  Approve(counted, server_->admin_config());
  Approve(counted, approver());
  KW_EXPECT_OK(Decrypt());
  KW_EXPECT_OK(Decrypt());
  const std::string half = Request("1h", 1);
  Approve(half, server_->admin_config());

  app_.reset();
  ASSERT_EQ(server_->Stop(), 0);
  KW_ASSERT_OK(server_->Start());
  app_ = Connect(app());
  ASSERT_NE(app_, nullptr);

  Json g = Bg({"show", counted}, app());
  EXPECT_EQ(g["state"], "active");
  EXPECT_EQ(g["decrypts"], 2);
  Json h = Bg({"show", half}, app());
  EXPECT_EQ(h["state"], "pending");
  EXPECT_EQ(h["approvals"].size(), 1u);
  // Exactly the two uses left, across the restart (the other grant, once
  // approved below, adds its own one).
  KW_EXPECT_OK(Decrypt());
  KW_EXPECT_OK(Decrypt());
  EXPECT_EQ(Bg({"show", counted}, app())["decrypts"], 4);
  EXPECT_EQ(Approve(half, approver())["state"], "active");
  KW_EXPECT_OK(Decrypt());
  EXPECT_THAT(Decrypt(), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(Bg({"show", half}, app())["decrypts"], 1);
  EXPECT_EQ(Bg({"show", counted}, app())["decrypts"], 4);
}

}  // namespace
}  // namespace keyward
