// End to end over mutual TLS: tenant data keys (blob version 2) through
// every client path, and tenant erasure — who may do it, what it destroys,
// what it leaves, and what the audit log and keywardd's log say about it.
#include <memory>
#include <string>
#include <vector>

#include "audit/testing/log_files.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keyward/encryptor.h"
#include "keyward/errors.h"
#include "kms/data_key_blob.h"
#include "nlohmann/json.hpp"
#include "testing/e2e_fixture.h"

namespace keyward {
namespace {

using ::keyward::testing::ReadFileOrDie;
using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

constexpr char kKey[] = "fields";
constexpr char kAdmin[] = "spiffe://keyward.dev/admin";
constexpr char kApp[] = "spiffe://keyward.dev/app";
// Canaries: a tenant id must never show in clear in the logs.
constexpr char kAcme[] = "tenant-canary-acme-3e8b51";
constexpr char kGlobex[] = "tenant-canary-globex-d02c77";

EncryptionContext FieldContext(const std::string& tenant) {
  return {{"keyward:dataset", "orders"}, {"keyward:class", "pii"}, {kTenantContextKey, tenant}};
}

MATCHER(IsTenantErased, "") {
  return arg.code() == absl::StatusCode::kFailedPrecondition &&
         GetErrorCode(arg) == ErrorCode::kTenantErased;
}

class TenantErasureTest : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    admin_ = Connect(server_->admin_config());
    app_ = Connect(server_->app_config());
    ASSERT_NE(admin_, nullptr);
    ASSERT_NE(app_, nullptr);
    KW_ASSERT_OK(admin_->CreateKey(kKey).status());
  }
  std::shared_ptr<Encryptor> NewEncryptor() {
    EncryptorOptions options;
    options.key_name = kKey;
    options.cache = false;  // every decrypt asks keywardd
    auto e = Encryptor::Create(app_, options);
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? *e : nullptr;
  }
  // The erase-tenant records, read through the audit API.
  std::vector<Json> EraseRecords(const EncryptionContext& context = {}) {
    AuditQuery q;
    q.operation = "erase-tenant";
    q.context = context;
    auto page = admin_->ReadAuditRecords(q);
    EXPECT_TRUE(page.ok()) << page.status();
    std::vector<Json> out;
    if (page.ok()) {
      for (const std::string& line : page->records) out.push_back(Json::parse(line));
    }
    return out;
  }
  std::shared_ptr<testing::Client> admin_, app_;
};

TEST_F(TenantErasureTest, ErasureDestroysOneTenantForGoodAndIsAudited) {
  const EncryptionContext acme = FieldContext(kAcme);
  const EncryptionContext globex = FieldContext(kGlobex);
  // What the application's database holds: wrapped data keys, and messages.
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey a, app_->GenerateDataKey(kKey, acme));
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey b, app_->GenerateDataKey(kKey, globex));
  KW_ASSERT_OK_AND_ASSIGN(kms::DataKeyBlob blob, kms::DecodeBlob(a.encrypted.ciphertext));
  EXPECT_EQ(blob.version, kms::kTenantBlobVersion);
  EXPECT_EQ(blob.sealed.size(), 88u);
  auto encryptor = NewEncryptor();
  ASSERT_NE(encryptor, nullptr);
  KW_ASSERT_OK_AND_ASSIGN(std::string message, encryptor->Encrypt("acme's card", acme));
  KW_ASSERT_OK_AND_ASSIGN(std::string small, app_->Encrypt(kKey, "acme's note", acme));
  KW_ASSERT_OK_AND_ASSIGN(Decrypted opened, encryptor->Decrypt(message, acme));
  EXPECT_EQ(opened.plaintext.AsStringView(), "acme's card");
  // The header paths keep the tenant layer across a rotation.
  KW_ASSERT_OK(admin_->RotateKey(kKey).status());
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(message));
  KW_ASSERT_OK_AND_ASSIGN(RewrappedHeader rewrapped,
                          app_->RewrapMessageHeader(message.substr(0, info.header_bytes), acme));
  EXPECT_EQ(rewrapped.key.key_version, 2u);
  const std::string moved = rewrapped.header + message.substr(info.header_bytes);
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo moved_info, InspectMessage(moved));
  EXPECT_EQ(kms::DecodeBlob(moved_info.data_keys[0].ciphertext)->version,
            kms::kTenantBlobVersion);
  KW_ASSERT_OK_AND_ASSIGN(Decrypted moved_opened, encryptor->Decrypt(moved, acme));
  EXPECT_EQ(moved_opened.plaintext.AsStringView(), "acme's card");

  // A principal without erase-tenant is refused, and nothing changes.
  auto denied = app_->EraseTenant(kKey, kAcme);
  EXPECT_THAT(denied, StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("erase-tenant")));
  EXPECT_EQ(GetErrorCode(denied.status()), ErrorCode::kAccessDenied);
  KW_EXPECT_OK(app_->DecryptDataKey(a.encrypted.ciphertext, acme).status());

  // A dry run reports and changes nothing.
  KW_ASSERT_OK_AND_ASSIGN(TenantErasure dry, admin_->EraseTenant(kKey, kAcme, {.dry_run = true}));
  EXPECT_TRUE(dry.dry_run);
  EXPECT_EQ(dry.state, TenantErasure::State::kActive);
  EXPECT_TRUE(dry.created.has_value());
  EXPECT_FALSE(dry.erased.has_value());
  KW_EXPECT_OK(app_->DecryptDataKey(a.encrypted.ciphertext, acme).status());

  // The erasure.
  KW_ASSERT_OK_AND_ASSIGN(TenantErasure erased, admin_->EraseTenant(kKey, kAcme));
  EXPECT_FALSE(erased.dry_run);
  EXPECT_EQ(erased.state, TenantErasure::State::kActive);
  EXPECT_EQ(erased.created, dry.created);
  ASSERT_TRUE(erased.erased.has_value());
  EXPECT_EQ(erased.erased_by, kAdmin);

  // Nothing issued for the tenant opens any more, by any path.
  const absl::Status dk_status = app_->DecryptDataKey(a.encrypted.ciphertext, acme).status();
  EXPECT_THAT(dk_status, IsTenantErased()) << dk_status;
  EXPECT_THAT(dk_status.message(), HasSubstr(kAdmin));
  EXPECT_THAT(dk_status.message(), Not(HasSubstr(kAcme)));
  EXPECT_THAT(NewEncryptor()->Decrypt(message, acme).status(), IsTenantErased());
  EXPECT_THAT(NewEncryptor()->Decrypt(moved, acme).status(), IsTenantErased());
  EXPECT_THAT(app_->Decrypt(small, acme).status(), IsTenantErased());
  EXPECT_THAT(app_->ReWrapDataKey(a.encrypted.ciphertext, acme).status(), IsTenantErased());
  KW_ASSERT_OK_AND_ASSIGN(auto batch, app_->DecryptDataKeys({{a.encrypted.ciphertext, acme},
                                                             {b.encrypted.ciphertext, globex}}));
  EXPECT_THAT(batch[0].status(), IsTenantErased());
  KW_EXPECT_OK(batch[1].status());
  // ... nor is anything new made for it.
  EXPECT_THAT(app_->GenerateDataKey(kKey, acme).status(), IsTenantErased());
  EXPECT_THAT(NewEncryptor()->Encrypt("more", acme).status(), IsTenantErased());
  // The other tenant is untouched.
  KW_ASSERT_OK_AND_ASSIGN(SecretData b_back, app_->DecryptDataKey(b.encrypted.ciphertext, globex));
  EXPECT_TRUE(ConstantTimeEquals(b_back, b.plaintext));
  KW_EXPECT_OK(app_->GenerateDataKey(kKey, globex).status());

  // Idempotent; survives a restart of keywardd (nothing cached).
  ASSERT_EQ(server_->Stop(), 0);
  KW_ASSERT_OK(server_->Start());
  admin_ = Connect(server_->admin_config());
  app_ = Connect(server_->app_config());
  KW_ASSERT_OK_AND_ASSIGN(TenantErasure again, admin_->EraseTenant(kKey, kAcme));
  EXPECT_EQ(again.state, TenantErasure::State::kErased);
  EXPECT_EQ(again.erased, erased.erased);
  EXPECT_EQ(again.erased_by, kAdmin);
  EXPECT_THAT(app_->DecryptDataKey(a.encrypted.ciphertext, acme).status(), IsTenantErased());
  KW_EXPECT_OK(app_->DecryptDataKey(b.encrypted.ciphertext, globex).status());

  // The audit log, read through its API: the denial, the dry run, the
  // erasure written before it happened and its outcome, the repeat (ahead
  // and after).
  std::vector<Json> records = EraseRecords();
  ASSERT_EQ(records.size(), 6u);
  for (const Json& r : records) {
    EXPECT_EQ(r["key"], kKey);
    ASSERT_TRUE(r["context"].contains(kTenantContextKey)) << r.dump();
    EXPECT_THAT(r["context"][kTenantContextKey].get<std::string>(), ::testing::StartsWith("hmac:"));
  }
  EXPECT_EQ(records[0]["principal"], kApp);
  EXPECT_EQ(records[0]["decision"], "deny");
  EXPECT_EQ(records[0]["result"], "PERMISSION_DENIED");
  EXPECT_EQ(records[1]["principal"], kAdmin);
  EXPECT_EQ(records[1]["result"], "OK");
  EXPECT_THAT(records[1]["detail"].get<std::string>(), HasSubstr("dry run, nothing erased"));
  EXPECT_EQ(records[2]["result"], "PENDING");
  EXPECT_EQ(records[2]["decision"], "allow");
  EXPECT_EQ(records[3]["request_id"], records[2]["request_id"]);
  EXPECT_EQ(records[3]["result"], "OK");
  EXPECT_THAT(records[3]["detail"].get<std::string>(), HasSubstr("the tenant's key is destroyed"));
  EXPECT_EQ(records[2]["context"], records[3]["context"]);
  // The repeat was recorded ahead too: it could have been the first.
  EXPECT_EQ(records[4]["result"], "PENDING");
  EXPECT_EQ(records[5]["request_id"], records[4]["request_id"]);
  EXPECT_THAT(records[5]["detail"].get<std::string>(), HasSubstr("already erased"));
  // An auditor finds them by the tenant (keywardd hashes what is asked)
  // without the log ever holding it.
  EXPECT_EQ(EraseRecords({{kTenantContextKey, kAcme}}).size(), 6u);
  EXPECT_EQ(EraseRecords({{kTenantContextKey, kGlobex}}).size(), 0u);
  // Neither the audit log nor keywardd's log names a tenant in clear,
  // although the failures above were logged with their messages.
  const std::string audit_file = audit::testing::ReadLogText(server_->File("audit"));
  const std::string log = server_->log();
  EXPECT_THAT(log, HasSubstr("was erased from key fields"));
  for (const char* tenant : {kAcme, kGlobex}) {
    EXPECT_THAT(audit_file, Not(HasSubstr(tenant)));
    EXPECT_THAT(log, Not(HasSubstr(tenant)));
  }
  // The records written ahead are ordinary leaves: the log verifies.
  admin_.reset();
  app_.reset();
  ASSERT_EQ(server_->Stop(), 0);
  testing::ProcessResult verified = server_->Cli({"audit", "verify", "--log", server_->File("audit")});
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
}

TEST_F(TenantErasureTest, ATenantErasedBeforeItsFirstUseNeverGetsAKey) {
  KW_ASSERT_OK_AND_ASSIGN(TenantErasure dry, admin_->EraseTenant(kKey, kAcme, {.dry_run = true}));
  EXPECT_EQ(dry.state, TenantErasure::State::kNone);
  KW_ASSERT_OK_AND_ASSIGN(TenantErasure erased, admin_->EraseTenant(kKey, kAcme));
  EXPECT_EQ(erased.state, TenantErasure::State::kNone);
  EXPECT_FALSE(erased.created.has_value());
  EXPECT_TRUE(erased.erased.has_value());
  EXPECT_THAT(app_->GenerateDataKey(kKey, FieldContext(kAcme)).status(), IsTenantErased());
  // Bad requests: an unknown key, an empty tenant.
  EXPECT_THAT(admin_->EraseTenant("missing", kAcme), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(admin_->EraseTenant(kKey, ""), StatusIs(absl::StatusCode::kInvalidArgument));
  // Over the declared limit: refused before it is read.
  EXPECT_THAT(admin_->EraseTenant(kKey, std::string(4097, 't')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tenant")));
}

// The same layer with HSM-resident KEKs (the outer seal made in SoftHSM),
// and as the CLI sees it: tenant-erased exits 5 like other refusals.
TEST_F(TenantErasureTest, HsmResidentKeysAndTheCliSeeTheSameLayer) {
  constexpr char kHsmKey[] = "fields-hsm";
  KW_ASSERT_OK(
      admin_->CreateKey(kHsmKey, {.protection = KeyProtection::kHsmResident}).status());
  const EncryptionContext acme = FieldContext(kAcme);
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey a, app_->GenerateDataKey(kHsmKey, acme));
  EXPECT_EQ(kms::DecodeBlob(a.encrypted.ciphertext)->version, kms::kTenantBlobVersion);
  KW_ASSERT_OK_AND_ASSIGN(SecretData back, app_->DecryptDataKey(a.encrypted.ciphertext, acme));
  EXPECT_TRUE(ConstantTimeEquals(back, a.plaintext));

  const std::string plain = server_->File("plain.txt");
  const std::string sealed = server_->File("msg.kw");
  testing::WriteFileOrDie(plain, "acme's invoice");
  const std::string tenant_pair = absl::StrCat(kTenantContextKey, "=", kAcme);
  testing::ProcessResult enc = server_->Cli(
      {"encrypt", "--key", kHsmKey, "--context", tenant_pair, "-o", sealed, plain},
      server_->app_config());
  ASSERT_EQ(enc.exit_code, 0) << enc.err;
  testing::ProcessResult dec =
      server_->Cli({"decrypt", "--context", tenant_pair, sealed}, server_->app_config());
  ASSERT_EQ(dec.exit_code, 0) << dec.err;
  EXPECT_EQ(dec.out, "acme's invoice");

  KW_ASSERT_OK(admin_->EraseTenant(kHsmKey, kAcme).status());
  EXPECT_THAT(app_->DecryptDataKey(a.encrypted.ciphertext, acme).status(), IsTenantErased());
  dec = server_->Cli({"decrypt", "--context", tenant_pair, sealed}, server_->app_config());
  EXPECT_EQ(dec.exit_code, 5) << dec.err;
  EXPECT_THAT(dec.err, HasSubstr("was erased from key fields-hsm"));
  EXPECT_THAT(dec.err, Not(HasSubstr(kAcme)));
  EXPECT_EQ(dec.out, "");
  // The tenant under the other key is another tenant key: untouched.
  KW_EXPECT_OK(app_->GenerateDataKey(kKey, acme).status());
}

}  // namespace
}  // namespace keyward
