// End to end: header rewrap in batches through keywardd — kms entries of
// another key and contexts a data key was not wrapped with are refused, and
// large calls are split to fit the server's limits.  The fixture is in
// reencrypt_e2e_fixture.h.
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "format/encrypt_materials.h"
#include "format/header.h"
#include "gmock/gmock.h"
#include "keyward/errors.h"
#include "reencrypt/reencrypt_e2e_fixture.h"

namespace keyward {
namespace {

using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;

// A header that names key "open" but whose kms entry belongs to key
// "secret": keywardd refuses it before authorizing or unwrapping anything
// (nothing is unwrapped under "secret"), and rewraps the honest header of
// the same batch.
TEST_F(ReencryptTest, BatchRewrapRefusesAKmsEntryOfAnotherKey) {
  KW_ASSERT_OK(admin_->CreateKey("open").status());
  KW_ASSERT_OK(admin_->CreateKey("secret").status());
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey secret_dk, admin_->GenerateDataKey("secret", {}));
  KW_ASSERT_OK_AND_ASSIGN(KeyInfo open, admin_->GetKey("open"));
  format::EncryptionMaterials m;
  m.key = secret_dk.key;
  m.key.key_name = "open";
  m.key.key_version = open.primary_version;
  m.data_keys = {secret_dk.encrypted};
  m.data_key = &secret_dk.plaintext;
  KW_ASSERT_OK_AND_ASSIGN(std::string crafted, format::EncryptBytesWithMaterials(m, "x"));
  KW_ASSERT_OK(admin_->RotateKey("open").status());
  KW_ASSERT_OK(admin_->RotateKey("secret").status());
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(crafted));
  KW_ASSERT_OK_AND_ASSIGN(std::string honest, admin_->Encrypt("open", "y", {}));
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo honest_info, InspectMessage(honest));
  KW_ASSERT_OK_AND_ASSIGN(KeyInfo secret_before, admin_->GetKey("secret"));
  KW_ASSERT_OK_AND_ASSIGN(
      auto results, admin_->RewrapMessageHeaders({crafted.substr(0, info.header_bytes),
                                                  honest.substr(0, honest_info.header_bytes)}));
  ASSERT_EQ(results.size(), 2u);
  EXPECT_THAT(results[0], StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("not wrapped by key 'open'")));
  KW_EXPECT_OK(results[1].status());
  KW_ASSERT_OK_AND_ASSIGN(KeyInfo secret_after, admin_->GetKey("secret"));
  EXPECT_EQ(secret_after.versions[0].decrypts, secret_before.versions[0].decrypts);
}

// Two messages sharing one wrapped data key, the second claiming a context
// that was never bound to it but that a careless cache key would confuse
// with the first's: keywardd must unwrap it for real and refuse it, not
// answer from the first message's cached unwrap (or verification).
TEST_F(ReencryptTest, BatchRewrapRefusesAContextTheDataKeyWasNotWrappedWith) {
  KW_ASSERT_OK(admin_->CreateKey("k").status());
  const EncryptionContext bound = {{"a", "x\n1:by"}};
  const EncryptionContext lookalike = {{"a", "x"}, {"b", "y"}};
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey dk, admin_->GenerateDataKey("k", bound));
  std::vector<std::string> headers;
  for (const EncryptionContext* context : {&bound, &lookalike}) {
    format::EncryptionMaterials m;
    m.key = dk.key;
    m.context = *context;
    m.data_keys = {dk.encrypted};
    m.data_key = &dk.plaintext;
    KW_ASSERT_OK_AND_ASSIGN(std::string message, format::EncryptBytesWithMaterials(m, "x"));
    KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(message));
    headers.push_back(message.substr(0, info.header_bytes));
  }
  KW_ASSERT_OK(admin_->RotateKey("k").status());
  KW_ASSERT_OK_AND_ASSIGN(auto results, admin_->RewrapMessageHeaders(headers));
  ASSERT_EQ(results.size(), 2u);
  KW_EXPECT_OK(results[0].status());
  EXPECT_THAT(results[1], StatusIs(absl::StatusCode::kFailedPrecondition,
                                   HasSubstr("encryption context mismatch")));
}

// More headers than one request may hold (10,000) and more bytes than
// keywardd accepts in one (4 MiB): the SDK splits the call, and every
// header comes back rewrapped, in order.
TEST_F(ReencryptTest, RewrapMessageHeadersSplitsLargeCallsIntoRequests) {
  KW_ASSERT_OK(admin_->CreateKey("k").status());
  EncryptorOptions o;
  o.key_name = "k";
  KW_ASSERT_OK_AND_ASSIGN(std::shared_ptr<Encryptor> e_owner,
                          Encryptor::Create(app_, o));
  Encryptor& e = *e_owner;
  const EncryptionContext context = {{"padding", std::string(500, 'p')}};
  std::vector<std::string> headers;
  std::vector<std::string> ids;
  size_t bytes = 0;
  for (int i = 0; i < 10001; ++i) {
    KW_ASSERT_OK_AND_ASSIGN(std::string m, e.Encrypt(absl::StrCat("row ", i), context));
    KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(m));
    headers.push_back(m.substr(0, info.header_bytes));
    ids.push_back(info.message_id);
    bytes += info.header_bytes;
  }
  ASSERT_GT(bytes, 4u << 20);
  KW_ASSERT_OK(admin_->RotateKey("k").status());
  KW_ASSERT_OK_AND_ASSIGN(auto results, admin_->RewrapMessageHeaders(headers));
  ASSERT_EQ(results.size(), headers.size());
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status();
    EXPECT_EQ(results[i]->key.key_version, 2u);
    std::string authenticated;
    KW_ASSERT_OK_AND_ASSIGN(format::Header h,
                            format::ParseHeader(results[i]->header, &authenticated));
    ASSERT_EQ(h.message_id, ids[i]) << i;
  }
}

// keywardd configured to accept only small requests: the SDK sends the
// headers again in smaller requests, and a header that alone is too large
// fails on its own, the others are rewrapped.
TEST_F(ReencryptTest, RewrapMessageHeadersFitsAServerWithASmallRequestLimit) {
  KW_ASSERT_OK(admin_->CreateKey("k").status());
  EncryptorOptions o;
  o.key_name = "k";
  KW_ASSERT_OK_AND_ASSIGN(std::shared_ptr<Encryptor> e_owner,
                          Encryptor::Create(app_, o));
  Encryptor& e = *e_owner;
  std::vector<std::string> headers;
  for (int i = 0; i < 31; ++i) {
    // Row 13's context is larger than a whole request may be.
    const EncryptionContext context =
        i == 13 ? EncryptionContext{{"a", std::string(4096, 'a')}, {"b", std::string(4096, 'b')}}
                : EncryptionContext{{"padding", std::string(500, 'p')}};
    KW_ASSERT_OK_AND_ASSIGN(std::string m, e.Encrypt(absl::StrCat("row ", i), context));
    KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(m));
    headers.push_back(m.substr(0, info.header_bytes));
  }
  ASSERT_EQ(server_->Stop(), 0);
  std::string config = testing::ReadFileOrDie(server_->File("keywardd.yaml"));
  const std::string limit = "max_request_bytes: 4194304";
  const size_t at = config.find(limit);
  ASSERT_NE(at, std::string::npos);
  config.replace(at, limit.size(), "max_request_bytes: 8192");
  std::ofstream(server_->File("keywardd.yaml")) << config;
  KW_ASSERT_OK(server_->Start());
  KW_ASSERT_OK(admin_->RotateKey("k").status());
  KW_ASSERT_OK_AND_ASSIGN(auto results, admin_->RewrapMessageHeaders(headers));
  ASSERT_EQ(results.size(), headers.size());
  for (size_t i = 0; i < results.size(); ++i) {
    if (i == 13) {
      EXPECT_EQ(GetErrorCode(results[i].status()), ErrorCode::kLimitExceeded)
          << results[i].status();
      continue;
    }
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status();
    EXPECT_EQ(results[i]->key.key_version, 2u);
  }
}

}  // namespace
}  // namespace keyward
