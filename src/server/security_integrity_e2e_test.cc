// keywardd from the attacker's side (issue 16), part 4: integrity — signed
// messages readers cannot forge, an audit log that cannot be rewritten or
// cut back.  Each test is one limit or one decision rule, and fails on a
// keywardd without it.  The fixture is in security_e2e_fixture.h.
#include <cstdio>
#include <string>
#include <vector>

#include "audit/testing/log_files.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "audit/testing/forgery.h"
#include "crypto/signature.h"
#include "format/encrypt_materials.h"
#include "format/header.h"
#include "gmock/gmock.h"
#include "keyward/encryptor.h"
#include "keyward/message.h"
#include "server/security_e2e_fixture.h"

namespace keyward {
namespace {

using ::keyward::testing::ReadFileOrDie;
using ::keyward::testing::StatusIs;
using ::keyward::testing::WriteFileOrDie;
using ::testing::HasSubstr;
using Json = nlohmann::json;

// --- 11. Signed messages: readers who can decrypt cannot forge -------------------

TEST_F(SecurityTest, ReadersWhoCanDecryptCannotForgeSignedMessages) {
  SetPolicy(R"(rules:
  - name: dev-admin
    principals: ["spiffe://keyward.dev/admin"]
    keys: ["*"]
    operations: ["*"]
  - name: readers
    principals: ["spiffe://keyward.dev/app"]
    keys: ["signed/*"]
    operations: [decrypt, describe]
)");
  CreateKeyOptions signed_key;
  signed_key.suite = Suite::kAes256GcmHkdfSha256CommitEcdsaP384;
  KW_ASSERT_OK(admin_->CreateKey("signed/k", signed_key).status());
  // Even the writer cannot get a data key for an unsigned message under it.
  EXPECT_THAT(admin_->GenerateDataKey("signed/k", {{"t", "1"}}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("signed messages")));
  EncryptorOptions writer;
  writer.key_name = "signed/k";
  writer.format.suite = Suite::kAes256GcmHkdfSha256CommitEcdsaP384;
  KW_ASSERT_OK_AND_ASSIGN(std::shared_ptr<Encryptor> admin_encryptor_owner,
                          Encryptor::Create(admin_, writer));
  Encryptor& admin_encryptor = *admin_encryptor_owner;
  KW_ASSERT_OK_AND_ASSIGN(std::string genuine, admin_encryptor.Encrypt("pay 10", {{"t", "1"}}));
  KW_ASSERT_OK_AND_ASSIGN(std::shared_ptr<Encryptor> reader_owner,
                          Encryptor::Create(app_, EncryptorOptions{.key_name = "signed/k"}));
  Encryptor& reader = *reader_owner;
  KW_ASSERT_OK_AND_ASSIGN(Decrypted read_opened, reader.Decrypt(genuine, {{"t", "1"}}));
  SecretData& read = read_opened.plaintext;
  EXPECT_EQ(read.AsStringView(), "pay 10");

  // The reader holds the data key of the genuine message...
  std::string authenticated;
  KW_ASSERT_OK_AND_ASSIGN(format::Header h, format::ParseHeader(genuine, &authenticated));
  KW_ASSERT_OK_AND_ASSIGN(SecretData dek,
                          app_->DecryptDataKey(h.data_keys[0].ciphertext, h.context));
  auto forge = [&](Suite suite, EncryptionContext context, crypto::EcdsaP384Signer* signer) {
    format::EncryptionMaterials m;
    m.suite = suite;
    m.frame_size = h.frame_size;
    m.key = h.key;
    m.context = std::move(context);
    m.data_keys = h.data_keys;
    m.data_key = &dek;
    m.signer = signer;
    return format::EncryptBytesWithMaterials(m, "pay 1000");
  };
  // ...but cannot get one of its own (no generate-data-key)...
  EXPECT_THAT(app_->GenerateDataKey("signed/k", {}),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // ...a message signed by a key of its own does not open: the wrapped data
  // key is bound to the writer's public key...
  KW_ASSERT_OK_AND_ASSIGN(auto forger, crypto::EcdsaP384Signer::Generate());
  EncryptionContext own = h.context;
  own[kSigningKeyContextKey] = absl::Base64Escape(forger->public_key());
  KW_ASSERT_OK_AND_ASSIGN(std::string signed_forgery,
                          forge(Suite::kAes256GcmHkdfSha256CommitEcdsaP384, own, forger.get()));
  EXPECT_FALSE(reader.Decrypt(signed_forgery, {{"t", "1"}}).ok());
  // ...and the same message unsigned is refused: an unsigned message may
  // not carry a signing key, and without it the data key does not unwrap.
  EncryptionContext bare = h.context;
  bare.erase(kSigningKeyContextKey);
  KW_ASSERT_OK_AND_ASSIGN(std::string unsigned_forgery,
                          forge(Suite::kAes256GcmHkdfSha256Commit, bare, nullptr));
  EXPECT_FALSE(reader.Decrypt(unsigned_forgery, {{"t", "1"}}).ok());
  std::string relabelled = genuine;
  relabelled[5] = 0x00;
  relabelled[6] = 0x01;
  EXPECT_THAT(reader.Decrypt(relabelled, {{"t", "1"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("signing key")));
  // The genuine message still reads, as do keywardd's own (signed) ones.
  KW_EXPECT_OK(reader.Decrypt(genuine, {{"t", "1"}}).status());
}

// --- 8. An audit log that cannot be rewritten and re-signed ---------------------

TEST_F(SecurityTest, ARewrittenAuditLogIsCaughtByTheVerifierAndByKeywardd) {
  // `keyward dev init` pinned the signing key in the client configs;
  // keywardd reports the same key.
  KW_ASSERT_OK_AND_ASSIGN(ClientOptions options, LoadClientConfig(server_->admin_config()));
  ASSERT_EQ(options.audit_checkpoint_key_fingerprint.size(), 64u);
  KW_ASSERT_OK_AND_ASSIGN(ServerInfo info, admin_->GetServerInfo());
  EXPECT_EQ(info.audit_checkpoint_key_fingerprint, options.audit_checkpoint_key_fingerprint);
  KW_ASSERT_OK(admin_->CreateKey("k").status());
  for (int i = 0; i < 25; ++i) KW_ASSERT_OK(app_->GenerateDataKey("k", {}).status());
  admin_.reset();  // idle connections would hold up a graceful stop
  app_.reset();
  ASSERT_EQ(server_->Stop(), 0);  // writes the final checkpoint
  const std::string dir = server_->File("audit");
  EXPECT_EQ(server_->Cli({"audit", "verify", "--log", dir}).exit_code, 0);
  // Without a pin, verify refuses to guess.
  EXPECT_EQ(testing::RunProcess({KEYWARD_CLI, "audit", "verify", "--log", dir}).exit_code, 2);
  // A pin that is not a key is bad input (exit 3), not a failed log (4).
  WriteFileOrDie(server_->File("garbage.pem"), "not a key\n");
  testing::ProcessResult bad_pin = testing::RunProcess(
      {KEYWARD_CLI, "audit", "verify", "--log", dir, "--checkpoint-key",
       server_->File("garbage.pem")});
  EXPECT_EQ(bad_pin.exit_code, 3) << bad_pin.err;
  EXPECT_THAT(bad_pin.err, HasSubstr("not a PEM public key"));

  // The attack: three records deleted, the chain rebuilt, the checkpoints
  // re-signed with the attacker's key, which is left in the directory.
  std::vector<std::string> lines = RawRecordLines();
  lines.erase(lines.begin() + 5, lines.begin() + 8);
  KW_ASSERT_OK(audit::testing::RewriteAndResign(dir, lines, "dev"));
  testing::ProcessResult verify = server_->Cli({"audit", "verify", "--log", dir});
  EXPECT_EQ(verify.exit_code, 4) << verify.out << verify.err;
  EXPECT_THAT(verify.err, HasSubstr("FAILED verification"));
  // keywardd will not sign it with the real key: it refuses to start.
  absl::Status start = server_->Start();
  EXPECT_FALSE(start.ok());
  EXPECT_THAT(server_->log(), HasSubstr("the audit log is not the one keywardd wrote"));
  // Moved aside (it is evidence), an empty directory is refused too: the
  // key store remembers the old log...
  ASSERT_EQ(::rename(dir.c_str(), server_->File("audit.evidence").c_str()), 0);
  EXPECT_FALSE(server_->Start().ok());
  // ...until the operator starts a new log deliberately, which the new log
  // records first thing after its start.
  KW_ASSERT_OK(server_->Start({"--new-audit-log"}));
  std::vector<Json> records = Records();
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records[0]["operation"], "start");
  EXPECT_THAT(records[0]["detail"].get<std::string>(), HasSubstr("NEW audit log started"));
  EXPECT_THAT(records[0]["detail"].get<std::string>(), HasSubstr("policy "));
}

// Deleting the key store's anchor must not let the log be cut back to an
// earlier checkpoint: keywardd refuses a log with records and no anchor
// until the operator adopts it on purpose.
TEST_F(SecurityTest, KeywarddRefusesALogWhoseAnchorWasRemoved) {
  KW_ASSERT_OK(admin_->CreateKey("a").status());
  admin_.reset();
  app_.reset();
  ASSERT_EQ(server_->Stop(), 0);
  testing::ProcessResult del = testing::RunProcess(
      {"/usr/bin/sqlite3", server_->File("data/keys.db"),
       "DELETE FROM sealed_secrets WHERE name = 'audit-checkpoint-anchor'"});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  EXPECT_FALSE(server_->Start().ok());
  EXPECT_THAT(server_->log(), HasSubstr("holds no sealed checkpoint"));
  EXPECT_THAT(server_->log(), HasSubstr("--adopt-audit-log"));
  const size_t before = Records().size();
  KW_ASSERT_OK(server_->Start({"--adopt-audit-log"}));
  std::vector<Json> records = Records();
  ASSERT_GT(records.size(), before);
  EXPECT_EQ(records[before]["operation"], "start");
  EXPECT_THAT(records[before]["detail"].get<std::string>(),
              HasSubstr(absl::StrCat("audit log of ", before, " records adopted")));
  // Anchored again: the next start needs no flag, and cutting the log back
  // to its first genuine checkpoint (whose signature still verifies) is
  // caught by the new anchor.
  ASSERT_EQ(server_->Stop(), 0);
  KW_ASSERT_OK(server_->Start());
  ASSERT_EQ(server_->Stop(), 0);
  std::vector<std::string> checkpoints = absl::StrSplit(
      ReadFileOrDie(server_->File("audit/checkpoints.log")), '\n', absl::SkipEmpty());
  ASSERT_GE(checkpoints.size(), 2u);
  const uint64_t first = Json::parse(checkpoints[0])["tree_size"].get<uint64_t>();
  std::vector<std::string> lines = RawRecordLines();
  ASSERT_GT(lines.size(), first);
  lines.resize(first);
  audit::testing::WriteLogText(server_->File("audit"), absl::StrJoin(lines, "\n") + "\n");
  WriteFileOrDie(server_->File("audit/checkpoints.log"), checkpoints[0] + "\n");
  EXPECT_FALSE(server_->Start().ok());
  EXPECT_THAT(server_->log(), HasSubstr("records were removed"));
}

}  // namespace
}  // namespace keyward
