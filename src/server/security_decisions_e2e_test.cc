// keywardd from the attacker's side (issue 16), part 3: decisions — one key
// per decision, re-encryption as its own permission, key names, grants,
// listing and policy changes.  Each test is one limit or one decision rule,
// and fails on a keywardd without it.  The fixture is in
// security_e2e_fixture.h.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "format/encrypt_materials.h"
#include "gmock/gmock.h"
#include "keyward/errors.h"
#include "keyward/message.h"
#include "kms/data_key_blob.h"
#include "server/security_e2e_fixture.h"

namespace keyward {
namespace {

using ::keyward::testing::StatusIs;
using ::keyward::testing::WriteFileOrDie;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

// --- 4–5. One key per decision; re-encryption is its own permission ---------------

constexpr char kVaultPolicy[] = R"(rules:
  - name: dev-admin
    principals: ["spiffe://keyward.dev/admin"]
    keys: ["*"]
    operations: ["*"]
  - name: app-data
    principals: ["spiffe://keyward.dev/app"]
    keys: ["*"]
    operations: [encrypt, generate-data-key, decrypt, rewrap, describe]
  - name: vault-is-off-limits
    effect: deny
    principals: ["spiffe://keyward.dev/app"]
    keys: ["vault/*"]
    operations: ["*"]
)";

// A message whose header names "demo" but whose data key was wrapped by
// "vault/x": the app is denied on vault/*, so keywardd must not unwrap it.
// `entry_claims`: rewrite the name inside the wrapped key (breaking its
// seal) to one that need not exist.
std::string CraftedMessage(testing::Client& admin, const std::string& header_key,
                           const std::string& entry_key, const std::string& entry_claims = "") {
  auto dk = admin.GenerateDataKey(entry_key, {{"t", "1"}});
  EXPECT_TRUE(dk.ok()) << dk.status();
  if (!entry_claims.empty()) {
    auto blob = kms::DecodeBlob(dk->encrypted.ciphertext);
    EXPECT_TRUE(blob.ok()) << blob.status();
    blob->key_name = entry_claims;
    dk->encrypted.ciphertext = kms::EncodeBlob(*blob);
  }
  format::EncryptionMaterials m;
  m.key = dk->key;
  m.key.key_name = header_key;
  m.key.key_version = 1;
  dk->encrypted.provider_info = header_key;  // the unauthenticated hint lies too
  m.data_keys = {dk->encrypted};
  m.data_key = &dk->plaintext;
  m.context = {{"t", "1"}};
  auto message = format::EncryptBytesWithMaterials(m, "vault secret");
  EXPECT_TRUE(message.ok()) << message.status();
  return *message;
}

TEST_F(SecurityTest, AMessageIsDecidedOnTheKeyItsDataKeyIsBoundTo) {
  SetPolicy(kVaultPolicy);
  KW_ASSERT_OK(admin_->CreateKey("demo").status());
  KW_ASSERT_OK(admin_->CreateKey("vault/x").status());
  const std::string crafted = CraftedMessage(*admin_, "demo", "vault/x");
  KW_ASSERT_OK_AND_ASSIGN(KeyInfo before, admin_->GetKey("vault/x"));
  const absl::Status decrypt = app_->Decrypt(crafted, {{"t", "1"}}).status();
  EXPECT_THAT(decrypt, StatusIs(absl::StatusCode::kInvalidArgument,
                                HasSubstr("not wrapped by key 'demo'")));
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(crafted));
  const absl::Status rewrap =
      app_->RewrapMessageHeader(crafted.substr(0, info.header_bytes), {}).status();
  EXPECT_EQ(rewrap.message(), decrypt.message());
  // Through the data key path the wrapped key names vault/x, and that is
  // the key decided on: denied.
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey vault_dk, admin_->GenerateDataKey("vault/x", {{"t", "1"}}));
  KW_ASSERT_OK_AND_ASSIGN(before, admin_->GetKey("vault/x"));
  EXPECT_THAT(app_->DecryptDataKey(vault_dk.encrypted.ciphertext, {{"t", "1"}}),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("vault-is-off-limits")));
  KW_ASSERT_OK_AND_ASSIGN(KeyInfo after, admin_->GetKey("vault/x"));
  EXPECT_EQ(after.versions[0].decrypts, before.versions[0].decrypts)
      << "keywardd unwrapped a vault/x data key for a principal denied on vault/*";
  EXPECT_EQ(after.versions[0].last_decrypt, before.versions[0].last_decrypt);
  // One indistinguishable error: an entry naming a key that does not exist
  // at all gets the same answer as one naming a key that exists and is
  // forbidden.
  const std::string ghost = CraftedMessage(*admin_, "demo", "vault/x", "vault/ghost");
  EXPECT_EQ(app_->Decrypt(ghost, {{"t", "1"}}).status().message(), decrypt.message());
  EXPECT_THAT(admin_->GetKey("vault/ghost"), StatusIs(absl::StatusCode::kNotFound));
  // The refused messages are recorded under the key their header names
  // (demo); vault/x appears only in the denial of the direct call.
  int demo_refusals = 0;
  for (const Json& r : Records()) {
    if (r["principal"] != "spiffe://keyward.dev/app") continue;
    if (r["key"] == "demo") {
      EXPECT_EQ(r["result"], "INVALID_ARGUMENT") << r.dump();
      ++demo_refusals;
    }
    if (r["key"] == "vault/x") {
      EXPECT_EQ(r["decision"], "deny") << r.dump();
      EXPECT_EQ(r["operation"], "decrypt") << r.dump();
    }
  }
  EXPECT_EQ(demo_refusals, 3) << "decrypt, rewrap and the ghost decrypt";
}

TEST_F(SecurityTest, DecryptingForReencryptionIsItsOwnPermission) {
  KW_ASSERT_OK(admin_->CreateKey("k").status());
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey dk, admin_->GenerateDataKey("k", {}));
  // The app may decrypt, but not hide its reads from the retirement gate.
  KW_ASSERT_OK_AND_ASSIGN(
      auto hidden, app_->DecryptDataKeys({{dk.encrypted.ciphertext, {}}}, /*for_reencryption=*/true));
  EXPECT_THAT(hidden[0], StatusIs(absl::StatusCode::kPermissionDenied));
  bool recorded = false;
  for (const Json& r : Records()) {
    if (r["principal"] == "spiffe://keyward.dev/app" && r["operation"] == "reencrypt") {
      recorded = true;
      EXPECT_EQ(r["decision"], "deny");
    }
  }
  EXPECT_TRUE(recorded);
  // The admin holds `reencrypt`: allowed, audited as such, and not a read.
  KW_ASSERT_OK_AND_ASSIGN(KeyInfo before, admin_->GetKey("k"));
  KW_ASSERT_OK_AND_ASSIGN(auto ok, admin_->DecryptDataKeys({{dk.encrypted.ciphertext, {}}}, true));
  KW_EXPECT_OK(ok[0].status());
  KW_ASSERT_OK_AND_ASSIGN(KeyInfo after, admin_->GetKey("k"));
  EXPECT_EQ(after.versions[0].last_decrypt, before.versions[0].last_decrypt);
}

// --- 7. The smaller ones ------------------------------------------------------

TEST_F(SecurityTest, KeyNamesAreCheckedOnEveryRequestAndNeverEchoed) {
  for (const std::string& name :
       {std::string("a/../b"), std::string("./a"), std::string("a/."), std::string("a//b")}) {
    absl::Status s = admin_->GetKey(name).status();
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument)) << name;
    EXPECT_THAT(s.message(), Not(HasSubstr(name))) << name;
    EXPECT_THAT(admin_->CreateKey(name), StatusIs(absl::StatusCode::kInvalidArgument)) << name;
  }
  EXPECT_THAT(admin_->GetKey(std::string(257, 'a')), StatusIs(absl::StatusCode::kInvalidArgument));
  // Errors that mention caller input quote a bounded, cleaned piece of it.
  const std::string op = std::string(60, 'x') + "\n\x1b[31m";
  KW_ASSERT_OK_AND_ASSIGN(auto unused, admin_->GetServerInfo());
  (void)unused;
  absl::Status s = admin_->TestPolicy(kMallory, "k", op, {}).status();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(s.message(), Not(HasSubstr("\x1b")));
}

TEST_F(SecurityTest, PermissionIsCheckedBeforeExistence) {
  // No rights: denied whether or not the grant exists.
  auto mallory = Connect(server_->File("mallory.yaml"));
  ASSERT_NE(mallory, nullptr);
  EXPECT_THAT(mallory->RevokeGrant("g-0000000000000000"),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(mallory->GetKey("no-such-key"), StatusIs(absl::StatusCode::kPermissionDenied));
  // The administrator learns that it does not exist.
  EXPECT_THAT(admin_->RevokeGrant("g-0000000000000000"),
              StatusIs(absl::StatusCode::kNotFound));
}

// --- 12. Grants stay within their creator's scope --------------------------------

TEST_F(SecurityTest, AGrantMustLieWithinItsCreatorsScope) {
  SetPolicy(absl::StrCat(R"(rules:
  - name: dev-admin
    principals: ["spiffe://keyward.dev/admin"]
    keys: ["*"]
    operations: ["*"]
  - name: granter
    principals: [")", kGranter, R"("]
    keys: ["g/?"]
    operations: [manage-grants]
)"));
  KW_ASSERT_OK(admin_->CreateKey("g/ab").status());
  auto granter = Connect(server_->File("granter.yaml"));
  ASSERT_NE(granter, nullptr);
  GrantSpec wide;
  wide.principal = "spiffe://keyward.dev/app";
  wide.key = "g/*";  // matches "g/?" as a name, but is far wider
  wide.operations = {"rotate-key"};
  wide.ttl = absl::Hours(1);
  wide.reason = "escape";
  EXPECT_THAT(granter->CreateGrant(wide), StatusIs(absl::StatusCode::kPermissionDenied));
  GrantSpec narrow = wide;
  narrow.key = "g/a";
  KW_EXPECT_OK(granter->CreateGrant(narrow).status());
  // Not to itself, unless the policy says so.
  GrantSpec self = narrow;
  self.principal = kGranter;
  EXPECT_THAT(granter->CreateGrant(self), StatusIs(absl::StatusCode::kPermissionDenied));
  // What the escape was for: the grantee may rotate what the narrow grant
  // names and nothing the refused wide one would have given it.
  KW_ASSERT_OK(admin_->CreateKey("g/a").status());
  KW_EXPECT_OK(app_->RotateKey("g/a").status());
  EXPECT_THAT(app_->RotateKey("g/ab"), StatusIs(absl::StatusCode::kPermissionDenied));
}

// Listing is decided key by key: a prefix the caller may list says nothing
// about the keys under it that a deny rule or a narrower pattern leaves out.
TEST_F(SecurityTest, ListingShowsOnlyTheKeysTheCallerMayList) {
  SetPolicy(R"(rules:
  - name: dev-admin
    principals: ["spiffe://keyward.dev/admin"]
    keys: ["*"]
    operations: ["*"]
  - name: app-lists-payments
    principals: ["spiffe://keyward.dev/app"]
    keys: ["payments/*", "q/?"]
    operations: [list-keys]
  - name: app-not-secrets
    effect: deny
    principals: ["spiffe://keyward.dev/app"]
    keys: ["payments/secret/*"]
    operations: ["*"]
)");
  for (const char* k : {"payments/cards", "payments/secret/root", "q/x", "q/xyz"}) {
    KW_ASSERT_OK(admin_->CreateKey(k).status());
  }
  auto names = [](const KeyList& list) {
    std::vector<std::string> out;
    for (const KeyInfo& k : list.keys) out.push_back(k.name);
    return out;
  };
  KW_ASSERT_OK_AND_ASSIGN(KeyList payments, app_->ListKeys("payments/"));
  EXPECT_THAT(names(payments), ElementsAre("payments/cards"));
  KW_ASSERT_OK_AND_ASSIGN(KeyList q, app_->ListKeys("q/x"));
  EXPECT_THAT(names(q), ElementsAre("q/x"));
  // One key per page: the hidden ones are skipped across pages too.
  std::vector<std::string> paged;
  std::string token;
  do {
    KW_ASSERT_OK_AND_ASSIGN(KeyList page, app_->ListKeys("payments/", 1, token));
    for (auto& n : names(page)) paged.push_back(n);
    token = page.next_page_token;
  } while (!token.empty());
  EXPECT_THAT(paged, ElementsAre("payments/cards"));
  KW_ASSERT_OK_AND_ASSIGN(KeyList all, admin_->ListKeys("payments/"));
  EXPECT_EQ(all.keys.size(), 2u);
  bool recorded = false;
  for (const Json& r : Records()) {
    if (r["operation"] == "list-keys" && r["principal"] == "spiffe://keyward.dev/app" &&
        r["detail"].get<std::string>().find("1 key(s) under the prefix not shown") == 0) {
      recorded = true;
    }
  }
  EXPECT_TRUE(recorded);
}

// --- 13. Policy changes leave a trace ----------------------------------------------

TEST_F(SecurityTest, PolicyChangesAreRecordedWithTheirDigests) {
  KW_ASSERT_OK_AND_ASSIGN(std::string current, admin_->GetPolicy());
  const std::string changed = current + "\n# changed by set\n";
  KW_ASSERT_OK(admin_->SetPolicy(changed).status());
  // A reload after someone edited the file.
  WriteFileOrDie(server_->File("policy.yaml"), changed + "# edited on disk\n");
  server_->Signal(SIGHUP);
  bool set = false, reloaded = false;
  for (int i = 0; i < 50 && !reloaded; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (const Json& r : Records()) {
      const std::string detail = r["detail"].get<std::string>();
      if (r["operation"] == "manage-policy" && detail.rfind("policy set: sha256:", 0) == 0) {
        set = true;
        EXPECT_EQ(r["principal"], "spiffe://keyward.dev/admin");
      }
      if (r["principal"] == "keywardd:sighup" && detail.find("policy reloaded") == 0) {
        reloaded = true;
        EXPECT_THAT(detail, HasSubstr("-> sha256:"));
      }
    }
  }
  EXPECT_TRUE(set);
  EXPECT_TRUE(reloaded);
  // A policy that leaves nobody able to manage the policy is refused.
  EXPECT_THAT(admin_->SetPolicy(R"(rules:
  - name: app-only
    principals: ["spiffe://keyward.dev/app"]
    keys: ["*"]
    operations: [decrypt]
)"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("manage-policy")));
  // A string where a list belongs is refused, not read as a one-item list.
  EXPECT_THAT(admin_->SetPolicy(R"(rules:
  - name: admin
    principals: "spiffe://keyward.dev/admin"
    keys: ["*"]
    operations: ["*"]
)"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("must be a list")));
}

}  // namespace
}  // namespace keyward
