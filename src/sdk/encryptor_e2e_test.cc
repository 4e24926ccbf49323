// The SDK's safety properties against a real keywardd: an Encryptor reads
// only its own key, decrypt returns the authenticated context and matches
// an expected one exactly by default, a DiscoveryDecryptor reads any key
// the principal may, and Create refuses bad options.
#include <fstream>

#include "format/encrypt_materials.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keyward/caching_unwrapper.h"
#include "keyward/encryptor.h"
#include "keyward/errors.h"
#include "keyward/raw_aes_keyring.h"
#include "testing/e2e_fixture.h"
#include "testing/subprocess.h"

namespace keyward {
namespace {

using ::testing::HasSubstr;

class EncryptorTest : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    admin_ = Connect(server_->admin_config());
    app_ = Connect(server_->app_config());
    ASSERT_NE(admin_, nullptr);
    ASSERT_NE(app_, nullptr);
    KW_ASSERT_OK(admin_->CreateKey("cards").status());
    KW_ASSERT_OK(admin_->CreateKey("notes").status());
  }
  std::shared_ptr<Encryptor> For(const std::string& key) {
    auto e = Encryptor::Create(app_, {.key_name = key});
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? *e : nullptr;
  }
  std::shared_ptr<testing::Client> admin_, app_;
};

TEST_F(EncryptorTest, AnEncryptorRefusesAMessageUnderAnotherKeyBeforeUnwrapping) {
  auto cards = For("cards");
  auto notes = For("notes");
  KW_ASSERT_OK_AND_ASSIGN(std::string note, notes->Encrypt("a note", {{"n", "1"}}));
  // The caller may read "notes", yet the "cards" Encryptor refuses it...
  auto refused = cards->Decrypt(note);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(GetErrorCode(refused.status()), ErrorCode::kKeyMismatch);
  EXPECT_THAT(refused.status().message(), HasSubstr("'notes'"));
  // ...before any data key was asked for.
  EXPECT_EQ(cards->Stats().decrypt_cache_misses, 0u);
  // It will not rewrap it either.
  EXPECT_EQ(GetErrorCode(cards->Rewrap(note).status()), ErrorCode::kKeyMismatch);
  // Its own messages it reads.
  KW_ASSERT_OK_AND_ASSIGN(std::string card, cards->Encrypt("4111", {{"c", "1"}}));
  KW_ASSERT_OK_AND_ASSIGN(Decrypted opened, cards->Decrypt(card));
  EXPECT_EQ(opened.plaintext.AsStringView(), "4111");
  EXPECT_EQ(opened.key.key_name, "cards");
  EXPECT_EQ(opened.key.key_version, 1u);
}

// A reader of "notes" takes a notes data key, labels its entry and the
// header "cards", and computes the commitment and tag itself (it knows the
// data key).  The cards Encryptor must not return it as a card.
TEST_F(EncryptorTest, AHeaderRelabelledToThisKeyIsRefusedBeforeUnwrapping) {
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey notes_key, app_->GenerateDataKey("notes", {}));
  format::EncryptionMaterials m;
  m.key = {notes_key.key.environment, "cards", 1};
  m.data_keys = {EncryptedDataKey{kKmsProviderId, "cards", notes_key.encrypted.ciphertext}};
  m.data_key = &notes_key.plaintext;
  KW_ASSERT_OK_AND_ASSIGN(std::string forged, format::EncryptBytesWithMaterials(m, "not a card"));
  auto cards = For("cards");
  auto refused = cards->Decrypt(forged);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(GetErrorCode(refused.status()), ErrorCode::kMalformedHeader);
  EXPECT_EQ(cards->Stats().decrypt_cache_misses, 0u);  // nothing was asked of keywardd
  StringInputStream in(forged);
  std::string out;
  StringOutputStream sink(&out);
  EXPECT_FALSE(cards->DecryptStream(in, sink).ok());
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(cards->Rewrap(forged).ok());
  // A discovery reader refuses it too: its labels disagree with its blob.
  KW_ASSERT_OK_AND_ASSIGN(auto any, DiscoveryDecryptor::Create(app_));
  EXPECT_EQ(GetErrorCode(any->Decrypt(forged).status()), ErrorCode::kMalformedHeader);
}

TEST_F(EncryptorTest, DecryptReturnsTheContextAndMatchesAnExpectedOneExactly) {
  auto cards = For("cards");
  const EncryptionContext written = {{"tenant", "acme"}, {"table", "cards"}};
  KW_ASSERT_OK_AND_ASSIGN(std::string m, cards->Encrypt("4111", written));
  // No expectation: the context comes back for the caller to check.
  KW_ASSERT_OK_AND_ASSIGN(Decrypted any, cards->Decrypt(m));
  EXPECT_EQ(any.context, written);
  // Exact by default: a subset is refused, naming the extra pair's key.
  auto subset = cards->Decrypt(m, {{"tenant", "acme"}});
  ASSERT_FALSE(subset.ok());
  EXPECT_EQ(GetErrorCode(subset.status()), ErrorCode::kContextMismatch);
  EXPECT_THAT(subset.status().message(), HasSubstr("table"));
  // Unless asked.
  KW_ASSERT_OK_AND_ASSIGN(Decrypted at_least,
                          cards->Decrypt(m, {{"tenant", "acme"}}, ContextMatch::kAtLeast));
  EXPECT_EQ(at_least.context, written);
  KW_EXPECT_OK(cards->Decrypt(m, written).status());
  // A different value or a missing pair never matches.
  EXPECT_EQ(GetErrorCode(cards->Decrypt(m, {{"tenant", "evil"}, {"table", "cards"}}).status()),
            ErrorCode::kContextMismatch);
  EXPECT_EQ(GetErrorCode(cards->Decrypt(m, {{"tenant", "acme"}, {"table", "cards"}, {"x", "1"}},
                                        ContextMatch::kAtLeast)
                             .status()),
            ErrorCode::kContextMismatch);
  // Streams too.
  StringInputStream in(m);
  std::string out;
  StringOutputStream sink(&out);
  auto streamed = cards->DecryptStream(in, sink, EncryptionContext{{"tenant", "acme"}});
  EXPECT_EQ(GetErrorCode(streamed.status()), ErrorCode::kContextMismatch);
  EXPECT_TRUE(out.empty());
  StringInputStream again(m);
  KW_ASSERT_OK_AND_ASSIGN(Decrypted s, cards->DecryptStream(again, sink, written));
  EXPECT_EQ(out, "4111");
  EXPECT_EQ(s.context, written);
}

TEST_F(EncryptorTest, ADiscoveryDecryptorReadsEveryKeyThePrincipalMay) {
  KW_ASSERT_OK_AND_ASSIGN(std::string card, For("cards")->Encrypt("4111", {{"c", "1"}}));
  KW_ASSERT_OK_AND_ASSIGN(std::string note, For("notes")->Encrypt("a note", {{"n", "1"}}));
  KW_ASSERT_OK_AND_ASSIGN(auto any, DiscoveryDecryptor::Create(app_));
  KW_ASSERT_OK_AND_ASSIGN(Decrypted c, any->Decrypt(card, {{"c", "1"}}));
  KW_ASSERT_OK_AND_ASSIGN(Decrypted n, any->Decrypt(note, {{"n", "1"}}));
  EXPECT_EQ(c.key.key_name, "cards");
  EXPECT_EQ(n.key.key_name, "notes");
  EXPECT_EQ(n.plaintext.AsStringView(), "a note");
  // What the policy denies stays denied.
  KW_ASSERT_OK(admin_->SetPolicy(R"(rules:
  - name: admin
    effect: allow
    principals: ["spiffe://keyward.dev/admin"]
    keys: ["*"]
    operations: ["*"]
  - name: app-cards-only
    effect: allow
    principals: ["spiffe://keyward.dev/app"]
    keys: ["cards"]
    operations: ["generate-data-key", "decrypt"]
)")
                   .status());
  any->ClearCaches();
  auto denied = any->Decrypt(note);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(GetErrorCode(denied.status()), ErrorCode::kAccessDenied);
}

TEST_F(EncryptorTest, CreateRefusesBadOptions) {
  EXPECT_THAT(Encryptor::Create(nullptr, {.key_name = "cards"}).status().message(),
              HasSubstr("DataClient"));
  EXPECT_THAT(Encryptor::Create(app_, {}).status().message(), HasSubstr("key_name is required"));
  EXPECT_THAT(Encryptor::Create(app_, {.key_name = "bad key!"}).status().message(),
              HasSubstr("key_name"));
  EncryptorOptions zero_age{.key_name = "cards"};
  zero_age.decrypt_cache.max_age = absl::ZeroDuration();
  EXPECT_THAT(Encryptor::Create(app_, zero_age).status().message(),
              HasSubstr("decrypt_cache.max_age"));
  EncryptorOptions tiny_frames{.key_name = "cards"};
  tiny_frames.format.frame_size = 1;
  EXPECT_THAT(Encryptor::Create(app_, tiny_frames).status().message(),
              HasSubstr("frame_size"));
  EncryptorOptions null_keyring{.key_name = "cards"};
  null_keyring.additional_keyrings.push_back(nullptr);
  EXPECT_THAT(Encryptor::Create(app_, null_keyring).status().message(),
              HasSubstr("null keyring"));
  for (const auto& s : {Encryptor::Create(app_, {}).status(),
                        Encryptor::Create(app_, tiny_frames).status()}) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST_F(EncryptorTest, TheEncryptorOwnsWhatItUses) {
  // Nothing the caller made has to outlive the Encryptor.
  std::shared_ptr<Encryptor> cards;
  {
    auto client = DataClient::Connect(*LoadClientConfig(server_->app_config()));
    ASSERT_TRUE(client.ok()) << client.status();
    KW_ASSERT_OK_AND_ASSIGN(auto dr, RawAesKeyring::Generate());
    EncryptorOptions o{.key_name = "cards"};
    o.additional_keyrings.push_back(std::shared_ptr<const Keyring>(std::move(dr)));
    KW_ASSERT_OK_AND_ASSIGN(cards, Encryptor::Create(*client, o));
  }
  KW_ASSERT_OK_AND_ASSIGN(std::string m, cards->Encrypt("4111", {}));
  KW_ASSERT_OK_AND_ASSIGN(Decrypted d, cards->Decrypt(m, {}));
  EXPECT_EQ(d.plaintext.AsStringView(), "4111");
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(m));
  EXPECT_EQ(info.data_keys.size(), 2u);  // the KMS and the extra raw key
}

TEST(ClientConfigTest, AFieldOfTheWrongShapeIsAnErrorNotAnException) {
  ::keyward::testing::TempDir dir;
  const std::string path = dir.File("client.yaml");
  std::ofstream(path) << "servers: [\"127.0.0.1:1\"]\nenvironment: [a, b]\n"
                         "tls: {ca: ca.pem, cert: c.pem, key: k.pem}\n";
  auto options = LoadClientConfig(path);
  ASSERT_FALSE(options.ok());
  EXPECT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(options.status().message(), HasSubstr("wrong type"));
}

}  // namespace
}  // namespace keyward
