// End to end: access control, environment isolation and the audit log of a
// real keywardd (issue 6), driven by the SDK and the CLI.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "audit/testing/log_files.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keyward/errors.h"
#include "kms/data_key_blob.h"
#include "nlohmann/json.hpp"
#include "testing/e2e_fixture.h"

namespace keyward {
namespace {

using ::keyward::testing::ProcessResult;
using ::keyward::testing::ReadFileOrDie;
using ::keyward::testing::StatusIs;
using ::keyward::testing::WriteFileOrDie;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

constexpr char kApp[] = "spiffe://keyward.dev/app";

// Every kind of rule: principal and key globs, operation scope, the three
// condition kinds, and an explicit deny that beats the admin's allow.
constexpr char kPolicy[] = R"(rules:
  - name: admin
    principals: ["spiffe://keyward.dev/admin"]
    keys: ["*"]
    operations: ["*"]
  - name: tenant-data
    principals: ["spiffe://keyward.dev/*"]
    keys: ["tenants/*"]
    operations: [generate-data-key, decrypt]
    conditions:
      - context_key_present: purpose
      - context_equals: {key: region, value: eu}
      - context_equals_principal_segment: {key: tenant, segment: 1}
  - name: sealed-off
    effect: deny
    principals: ["*"]
    keys: ["tenants/sealed"]
    operations: ["*"]
)";

class AccessAuditTest : public E2eTest {
 protected:
  void SetPolicy(const std::string& yaml) {
    WriteFileOrDie(server_->File("new-policy.yaml"), yaml);
    ProcessResult r = server_->Cli({"policy", "set", server_->File("new-policy.yaml")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // Every record in the log, parsed.
  std::vector<Json> Records() {
    std::vector<Json> out;
    for (absl::string_view line :
         absl::StrSplit(audit::testing::ReadLogText(server_->File("audit")), '\n',
                        absl::SkipEmpty())) {
      out.push_back(Json::parse(line));
    }
    return out;
  }
  std::vector<Json> RecordsFor(const std::string& operation) {
    std::vector<Json> out;
    for (Json& r : Records()) {
      if (r["operation"] == operation) out.push_back(std::move(r));
    }
    return out;
  }
  static void ExpectDenied(const absl::Status& s, const std::string& why) {
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr(why)));
    EXPECT_EQ(GetErrorCode(s), ErrorCode::kAccessDenied) << s;
  }
};

TEST_F(AccessAuditTest, EveryRuleKindAllowsAndDeniesAsWritten) {
  auto admin = Connect(server_->admin_config());
  auto app = Connect(server_->app_config());
  for (const char* k : {"tenants/a", "tenants/sealed", "other"}) {
    KW_ASSERT_OK(admin->CreateKey(k).status());
  }
  SetPolicy(kPolicy);
  const EncryptionContext good = {{"purpose", "x"}, {"region", "eu"}, {"tenant", "app"}};
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey dk, app->GenerateDataKey("tenants/a", good));
  KW_EXPECT_OK(app->DecryptDataKey(dk.encrypted.ciphertext, good).status());

  // Conditions: a key missing, a constant differing, an identity segment
  // differing.
  EncryptionContext no_purpose = good;
  no_purpose.erase("purpose");
  ExpectDenied(app->GenerateDataKey("tenants/a", no_purpose).status(),
               "context key 'purpose' is missing");
  EncryptionContext us = good;
  us["region"] = "us";
  // The denial names the context key but never the value the rule wants
  // (the caller is not told what to send).
  const absl::Status wrong_region = app->GenerateDataKey("tenants/a", us).status();
  ExpectDenied(wrong_region, "'region' does not have the value the rule requires");
  EXPECT_THAT(wrong_region.message(), Not(HasSubstr("eu")));
  EncryptionContext other_tenant = good;
  other_tenant["tenant"] = "acme";
  ExpectDenied(app->GenerateDataKey("tenants/a", other_tenant).status(),
               "segment 1 of the caller's identity");
  // Key glob, operation scope, default deny for admin operations.
  ExpectDenied(app->GenerateDataKey("other", good).status(), "no rule or grant allows");
  ExpectDenied(app->Encrypt("tenants/a", "x", good).status(), "to encrypt on key");
  ExpectDenied(app->RotateKey("tenants/a").status(), "to rotate-key");
  ExpectDenied(app->CreateKey("tenants/new").status(), "to create-key");
  ExpectDenied(app->SetPolicy("rules: []").status(), "manage-policy");
  // Explicit deny wins, even over the admin's allow-everything rule.
  ExpectDenied(app->GenerateDataKey("tenants/sealed", good).status(), "rule 'sealed-off'");
  ExpectDenied(admin->GenerateDataKey("tenants/sealed", {}).status(), "rule 'sealed-off'");
  ExpectDenied(admin->RotateKey("tenants/sealed").status(), "rule 'sealed-off'");
  // A wrapped key names its key: the decision follows it, not the caller.
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey other, admin->GenerateDataKey("other", good));
  ExpectDenied(app->DecryptDataKey(other.encrypted.ciphertext, good).status(), "key 'other'");
  // In a batch, each item is decided on its own.
  KW_ASSERT_OK_AND_ASSIGN(auto batch,
                          app->DecryptDataKeys({{dk.encrypted.ciphertext, good}, {other.encrypted.ciphertext, good}}));
  ASSERT_EQ(batch.size(), 2u);
  KW_EXPECT_OK(batch[0].status());
  ExpectDenied(batch[1].status(), "key 'other'");

  // `policy test` names the rule, and exits 5 for a denial.
  Json allowed = CliJson({"policy", "test", "--principal", kApp, "--key", "tenants/a", "--op",
                          "decrypt", "--context", "purpose=x", "--context", "region=eu",
                          "--context", "tenant=app", "--json"});
  EXPECT_EQ(allowed["decision"], "allow");
  EXPECT_EQ(allowed["rule"], "tenant-data");
  ProcessResult denied = server_->Cli({"policy", "test", "--principal", kApp, "--key",
                                       "tenants/sealed", "--op", "decrypt"});
  EXPECT_EQ(denied.exit_code, 5);
  EXPECT_THAT(denied.out, HasSubstr("DENY  denied by rule 'sealed-off'"));

  // Every denial is in the audit log with its rule.
  int deny_records = 0;
  for (const Json& r : Records()) {
    if (r["decision"] != "deny") continue;
    ++deny_records;
    EXPECT_EQ(r["result"], "PERMISSION_DENIED") << r;
    EXPECT_EQ(r["error_code"], "access-denied") << r;
  }
  EXPECT_EQ(deny_records, 12);
  const auto sealed = RecordsFor("rotate-key");
  ASSERT_EQ(sealed.size(), 2u);
  EXPECT_EQ(sealed[1]["principal"], "spiffe://keyward.dev/admin");
  EXPECT_EQ(sealed[1]["rule"], "sealed-off");
}

TEST_F(AccessAuditTest, PolicyMistakesAreRefusedAndSighupReloadsTheFile) {
  SetPolicy(kPolicy);
  // A policy with a mistake is refused, naming it, and the old one stays.
  WriteFileOrDie(server_->File("bad.yaml"), "rules:\n  - name: x\n    principals: [a]\n    keys: [b]\n    operations: [fly]\n");
  ProcessResult bad = server_->Cli({"policy", "set", server_->File("bad.yaml")});
  EXPECT_EQ(bad.exit_code, 3) << bad.err;
  EXPECT_THAT(bad.err, HasSubstr("fly"));
  EXPECT_THAT(ReadFileOrDie(server_->File("policy.yaml")), HasSubstr("sealed-off"));

  auto app = Connect(server_->app_config());
  auto admin = Connect(server_->admin_config());
  KW_ASSERT_OK(admin->CreateKey("k").status());
  ExpectDenied(app->GenerateDataKey("k", {}).status(), "no rule or grant allows");
  // Edit the file and SIGHUP: the new rule applies.
  WriteFileOrDie(server_->File("policy.yaml"),
                 std::string(kPolicy) + "  - name: app-k\n    principals: [\"" + kApp +
                     "\"]\n    keys: [k]\n    operations: [generate-data-key]\n");
  server_->Signal(SIGHUP);
  absl::Status s;
  for (int i = 0; i < 50; ++i) {
    s = app->GenerateDataKey("k", {}).status();
    if (s.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  KW_EXPECT_OK(s);
  // A broken file on SIGHUP keeps the policy in force.
  WriteFileOrDie(server_->File("policy.yaml"), "rules: [oops");
  server_->Signal(SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_THAT(server_->log(), HasSubstr("policy NOT reloaded"));
  KW_EXPECT_OK(app->GenerateDataKey("k", {}).status());
}

TEST_F(AccessAuditTest, GrantsAllowUntilTheyExpireOrAreRevoked) {
  auto admin = Connect(server_->admin_config());
  auto app = Connect(server_->app_config());
  KW_ASSERT_OK(admin->CreateKey("payments").status());
  ExpectDenied(app->RotateKey("payments").status(), "no rule or grant allows");

  // Revoked: allowed, then refused the moment it is revoked.
  Json g = CliJson({"grant", "create", "--principal", kApp, "--key", "payments", "--op",
                    "rotate-key", "--ttl", "1h", "--reason", "INC-1", "--json"});
  const std::string id = g["id"];
  EXPECT_EQ(g["created_by"], "spiffe://keyward.dev/admin");
  KW_EXPECT_OK(app->RotateKey("payments").status());
  EXPECT_EQ(RecordsFor("rotate-key").back()["rule"], "grant:" + id);
  Json revoked = CliJson({"grant", "revoke", id, "--json"});
  EXPECT_FALSE(revoked["revoked"].is_null());
  ExpectDenied(app->RotateKey("payments").status(), "no rule or grant allows");
  EXPECT_EQ(server_->Cli({"grant", "revoke", id}).exit_code, 5);  // already revoked

  // Context-scoped: only requests carrying the pair.
  GrantSpec scoped;
  scoped.principal = kApp;
  scoped.key = "payments";
  scoped.operations = {"rotate-key"};
  scoped.context = {{"ticket", "INC-2"}};
  KW_ASSERT_OK(admin->CreateGrant(scoped).status());
  ExpectDenied(app->RotateKey("payments").status(), "no rule or grant allows");

  // Expired: allowed for two seconds, then refused.
  GrantSpec brief;
  brief.principal = kApp;
  brief.key = "pay*";
  brief.operations = {"update-key", "rotate-key"};
  brief.ttl = absl::Seconds(2);
  KW_ASSERT_OK_AND_ASSIGN(GrantInfo b, admin->CreateGrant(brief));
  KW_EXPECT_OK(app->RotateKey("payments").status());
  std::this_thread::sleep_for(std::chrono::milliseconds(2200));
  ExpectDenied(app->RotateKey("payments").status(), "no rule or grant allows");

  // Listing: active only by default, everything with --all.
  ProcessResult active = server_->Cli({"grant", "list", "--json"});
  EXPECT_EQ(active.exit_code, 0);
  EXPECT_THAT(active.out, Not(HasSubstr(id)));
  EXPECT_THAT(active.out, Not(HasSubstr(b.id)));
  ProcessResult all = server_->Cli({"grant", "list", "--all"});
  EXPECT_THAT(all.out, HasSubstr(id));
  EXPECT_THAT(all.out, HasSubstr("revoked"));
  EXPECT_THAT(all.out, HasSubstr("expired"));
  // Grants only for real operations, for a bounded time, and only by those
  // allowed to manage grants.
  brief.operations = {"teleport"};
  EXPECT_THAT(admin->CreateGrant(brief), StatusIs(absl::StatusCode::kInvalidArgument));
  brief.operations = {"decrypt"};
  brief.ttl = absl::Hours(24 * 91);
  EXPECT_THAT(admin->CreateGrant(brief), StatusIs(absl::StatusCode::kInvalidArgument));
  brief.ttl = absl::Hours(1);
  ExpectDenied(app->CreateGrant(brief).status(), "manage-grants");
}

TEST_F(AccessAuditTest, MaterialFromAnotherEnvironmentIsRefusedNamingBoth) {
  auto admin = Connect(server_->admin_config());
  KW_ASSERT_OK(admin->CreateKey("k").status());
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey dk, admin->GenerateDataKey("k", {}));
  KW_ASSERT_OK_AND_ASSIGN(kms::DataKeyBlob blob, kms::DecodeBlob(dk.encrypted.ciphertext));
  blob.environment = "staging";
  const std::string foreign = kms::EncodeBlob(blob);
  for (const absl::Status& s : {admin->DecryptDataKey(foreign, {}).status(),
                                admin->ReWrapDataKey(foreign, {}).status()}) {
    EXPECT_EQ(GetErrorCode(s), ErrorCode::kEnvironmentMismatch) << s;
    EXPECT_THAT(s.message(), HasSubstr("'staging'"));
    EXPECT_THAT(s.message(), HasSubstr("'dev'"));
  }
}

// Canary values that must never appear in any log line, audit record or
// error message.
constexpr char kCanaryPlaintext[] = "CANARY-PLAINTEXT-b3f1c2d4e5";
constexpr char kCanaryContext[] = "CANARY-CONTEXT-77aa01";

TEST_F(AccessAuditTest, EveryRequestIsRecordedWithoutSecretsAndTheLogVerifies) {
  auto admin = Connect(server_->admin_config());
  auto app = Connect(server_->app_config());
  KW_ASSERT_OK(admin->CreateKey("k").status());
  const EncryptionContext ctx = {{"order", kCanaryContext}};
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey dk, app->GenerateDataKey("k", ctx));
  KW_ASSERT_OK_AND_ASSIGN(std::string message, app->Encrypt("k", kCanaryPlaintext, ctx));
  KW_ASSERT_OK(app->Decrypt(message, ctx).status());
  std::vector<std::string> errors;
  // Failures of several kinds: wrong context, garbage, denied, missing key.
  errors.emplace_back(app->Decrypt(message, {{"order", "other"}}).status().message());
  errors.emplace_back(app->DecryptDataKey("garbage", ctx).status().message());
  errors.emplace_back(app->RotateKey("k").status().message());
  errors.emplace_back(app->GenerateDataKey("missing", ctx).status().message());
  ProcessResult cli_error = server_->Cli({"decrypt", "-o", "-", "-"}, server_->app_config(),
                                         message.substr(0, message.size() - 3));
  EXPECT_NE(cli_error.exit_code, 0);
  errors.push_back(cli_error.err);
  // A client without a certificate fails at TLS, and is recorded too.
  ProcessResult anonymous = testing::RunProcess(
      {"/bin/sh", "-c",
       absl::StrCat("echo | /usr/bin/openssl s_client -connect 127.0.0.1:", server_->port(),
                    " -tls1_3 -alpn h2 -CAfile ", server_->File("certs/ca.pem"))});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  // One record per request, with who, what, which key, the decision and
  // the result.
  const auto gdk = RecordsFor("generate-data-key");
  ASSERT_EQ(gdk.size(), 2u);
  EXPECT_EQ(gdk[0]["principal"], kApp);
  EXPECT_EQ(gdk[0]["key"], "k");
  EXPECT_EQ(gdk[0]["version"], 1);
  EXPECT_EQ(gdk[0]["decision"], "allow");
  EXPECT_EQ(gdk[0]["rule"], "dev-app-data");
  EXPECT_EQ(gdk[0]["result"], "OK");
  EXPECT_THAT(gdk[0]["peer"].get<std::string>(), HasSubstr("127.0.0.1"));
  EXPECT_EQ(gdk[0]["request_id"].get<std::string>().size(), 24u);
  EXPECT_THAT(gdk[0]["context"]["order"].get<std::string>(), HasSubstr("hmac:"));
  EXPECT_EQ(gdk[1]["result"], "NOT_FOUND");
  const auto decrypts = RecordsFor("decrypt");
  ASSERT_EQ(decrypts.size(), 4u);
  EXPECT_EQ(decrypts[0]["result"], "OK");
  EXPECT_EQ(decrypts[1]["error_code"], "context-mismatch");
  EXPECT_EQ(decrypts[2]["result"], "INVALID_ARGUMENT");
  EXPECT_EQ(decrypts[2]["decision"], "none");  // failed before any decision
  EXPECT_EQ(decrypts[3]["result"], "OK");  // the CLI's unwrap; it failed locally after
  EXPECT_EQ(RecordsFor("rotate-key")[0]["decision"], "deny");
  const auto handshakes = RecordsFor("tls-handshake");
  ASSERT_GE(handshakes.size(), 1u);
  EXPECT_EQ(handshakes[0]["result"], "UNAUTHENTICATED");
  EXPECT_THAT(handshakes[0]["detail"].get<std::string>(), HasSubstr("certificate"));
  // Same context value, same keyed hash: records can be correlated, and
  // queried by value through keywardd, without the value in clear.
  EXPECT_EQ(gdk[0]["context"]["order"], decrypts[0]["context"]["order"]);
  ProcessResult q = server_->Cli({"audit", "query", "--context",
                                  absl::StrCat("order=", kCanaryContext), "--json"});
  EXPECT_EQ(q.exit_code, 0) << q.err;
  EXPECT_EQ(std::count(q.out.begin(), q.out.end(), '\n'), 6) << q.out;

  // No canary anywhere: audit files, server log, error messages.
  std::vector<std::string> haystacks = errors;
  haystacks.push_back(server_->log());
  for (const auto& f : std::filesystem::directory_iterator(server_->File("audit"))) {
    haystacks.push_back(ReadFileOrDie(f.path().string()));
  }
  haystacks.push_back(server_->Cli({"audit", "export", "-o", "-"}).out);
  const std::string dek(dk.plaintext.AsStringView());
  for (const std::string& h : haystacks) {
    EXPECT_THAT(h, Not(HasSubstr(kCanaryPlaintext)));
    EXPECT_THAT(h, Not(HasSubstr(kCanaryContext)));
    EXPECT_THAT(h, Not(HasSubstr(dek)));
    EXPECT_THAT(h, Not(HasSubstr(absl::BytesToHexString(dek))));
    EXPECT_THAT(h, Not(HasSubstr(absl::Base64Escape(dek))));
  }

  // Signed checkpoint, proofs, and an offline verification of everything.
  ProcessResult saved = server_->Cli({"audit", "checkpoint", "-o", server_->File("cp.json")});
  ASSERT_EQ(saved.exit_code, 0) << saved.err;
  KW_ASSERT_OK_AND_ASSIGN(AuditCheckpointInfo cp, admin->GetAuditCheckpoint(false));
  KW_ASSERT_OK_AND_ASSIGN(AuditInclusionProof inc, admin->GetInclusionProof(3, 0));
  EXPECT_EQ(inc.tree_size, cp.tree_size);
  EXPECT_EQ(inc.root_hash, cp.root_hash);
  EXPECT_FALSE(inc.path.empty());
  KW_ASSERT_OK_AND_ASSIGN(AuditConsistencyProof con, admin->GetConsistencyProof(3, 0));
  EXPECT_EQ(con.to_root, cp.root_hash);
  ExpectDenied(app->GetAuditCheckpoint(false).status(), "read-audit");
  admin.reset();
  app.reset();
  EXPECT_EQ(server_->Stop(), 0);  // writes the final checkpoint
  ProcessResult verified = server_->Cli(
      {"audit", "verify", "--log", server_->File("audit"), "--checkpoint",
       server_->File("cp.json"), "--json"});
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  Json report = Json::parse(verified.out);
  EXPECT_TRUE(report["ok"]);
  EXPECT_EQ(report["records"].get<uint64_t>(), Records().size());
}

TEST_F(AccessAuditTest, TamperingWithTheStoredLogIsDetectedAndNamed) {
  auto admin = Connect(server_->admin_config());
  for (int i = 0; i < 16; ++i) {
    KW_ASSERT_OK(admin->CreateKey(absl::StrCat("k", i)).status());
  }
  ASSERT_EQ(server_->Cli({"audit", "checkpoint", "-o", server_->File("cp.json")}).exit_code, 0);
  admin.reset();  // an idle connection makes gRPC's graceful stop wait
  ASSERT_EQ(server_->Stop(), 0);
  const std::string original = audit::testing::ReadLogText(server_->File("audit"));
  std::vector<std::string> lines = absl::StrSplit(original, '\n', absl::SkipEmpty());
  ASSERT_GE(lines.size(), 17u);
  auto join = [](const std::vector<std::string>& ls) {
    std::string out;
    for (const auto& l : ls) out += l + "\n";
    return out;
  };
  struct Case {
    const char* name;
    std::vector<std::string> lines;
    const char* expected;
  };
  std::vector<Case> cases;
  {
    auto edited = lines;
    edited[5].replace(edited[5].find("\"allow\""), 7, "\"deny\" ");
    cases.push_back({"edit", edited, "first bad record: 5"});
    auto deleted = lines;
    deleted.erase(deleted.begin() + 4);
    cases.push_back({"delete", deleted, "first bad record: 4"});
    auto inserted = lines;
    inserted.insert(inserted.begin() + 6, lines[6]);
    cases.push_back({"insert", inserted, "first bad record: 7"});
    auto reordered = lines;
    std::swap(reordered[8], reordered[9]);
    cases.push_back({"reorder", reordered, "first bad record: 8"});
    auto truncated = lines;
    truncated.resize(10);
    cases.push_back({"truncate", truncated, ""});
  }
  for (const Case& c : cases) {
    audit::testing::WriteLogText(server_->File("audit"), join(c.lines));
    ProcessResult r = server_->Cli({"audit", "verify", "--log", server_->File("audit"),
                                    "--checkpoint", server_->File("cp.json")});
    EXPECT_EQ(r.exit_code, 4) << c.name << ": " << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr("FAILED verification")) << c.name;
    EXPECT_THAT(r.err, HasSubstr(c.expected)) << c.name << ": " << r.err;
  }
  audit::testing::WriteLogText(server_->File("audit"), original);
  EXPECT_EQ(server_->Cli({"audit", "verify", "--log", server_->File("audit"), "--checkpoint",
                          server_->File("cp.json")})
                .exit_code,
            0);
}

TEST_F(AccessAuditTest, AnUnwritableAuditLogFailsRequestsClosedAndRecovers) {
  auto admin = Connect(server_->admin_config());
  auto app = Connect(server_->app_config());
  KW_ASSERT_OK(admin->CreateKey("k").status());
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey dk, app->GenerateDataKey("k", {}));
  const std::string records = audit::testing::OpenSegmentPath(server_->File("audit"));
  // Every write to the log now fails (ENOSPC), as on a full disk.
  ASSERT_EQ(::rename(records.c_str(), (records + ".saved").c_str()), 0);
  ASSERT_EQ(::symlink("/dev/full", records.c_str()), 0);

  for (int i = 0; i < 3; ++i) {
    absl::Status s = app->DecryptDataKey(dk.encrypted.ciphertext, {}).status();
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable,
                            HasSubstr("the audit log is unavailable")));
    EXPECT_EQ(GetErrorCode(s), ErrorCode::kAuditUnavailable);
  }
  EXPECT_THAT(admin->CreateKey("during-outage"),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("audit log")));
  // Nothing else breaks: the process answers health checks, and says why
  // it is not ready.
  EXPECT_THAT(server_->HttpGet("/healthz"), HasSubstr("200"));
  const std::string ready = server_->HttpGet("/readyz");
  EXPECT_THAT(ready, HasSubstr("503"));
  EXPECT_THAT(ready, HasSubstr("audit log not writable"));
  EXPECT_THAT(ready, HasSubstr("No space left on device"));
  ProcessResult cli = server_->Cli({"datakey", "--key", "k"}, server_->app_config());
  EXPECT_EQ(cli.exit_code, 7) << cli.err;
  EXPECT_THAT(cli.err, HasSubstr("audit log is unavailable"));

  // The disk recovers: keywardd resumes by itself.
  ASSERT_EQ(::unlink(records.c_str()), 0);
  ASSERT_EQ(::rename((records + ".saved").c_str(), records.c_str()), 0);
  absl::Status s;
  for (int i = 0; i < 100; ++i) {
    s = app->DecryptDataKey(dk.encrypted.ciphertext, {}).status();
    if (s.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  KW_EXPECT_OK(s);
  EXPECT_THAT(server_->HttpGet("/readyz"), HasSubstr("200"));
  KW_EXPECT_OK(admin->GetKey("k").status());
  EXPECT_THAT(admin->GetKey("during-outage"), StatusIs(absl::StatusCode::kNotFound));
  // The refusals are summarized in the log, which still verifies.
  bool gap = false;
  for (const Json& r : Records()) {
    if (r["detail"].get<std::string>().find("refused") != std::string::npos) gap = true;
  }
  EXPECT_TRUE(gap);
  admin.reset();
  app.reset();
  EXPECT_EQ(server_->Stop(), 0);
  EXPECT_EQ(server_->Cli({"audit", "verify", "--log", server_->File("audit")}).exit_code, 0);
}

}  // namespace
}  // namespace keyward
