#include "format/message_keys.h"

#include <string>

#include "crypto/hkdf.h"
#include "format/encrypt_materials.h"
#include "keyward/raw_aes_keyring.h"
#include "crypto/random.h"
#include "format/header.h"
#include "format/wire.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace keyward::format {
namespace {

using ::keyward::testing::IsOk;
using ::keyward::testing::StatusIs;

// The message keys a schedule derives: commitment = okm[32:64] of OpenSSL's
// HKDF-Expand, and the AEAD keyed with okm[0:32] (checked by opening what an
// AEAD keyed so sealed); the same as DeriveMessageKeys.
TEST(DataKeyScheduleTest, DeriveSplitsTheOutputAsTheFormatSays) {
  auto key = crypto::RandomBytes(32);
  auto id = crypto::RandomBytes(kMessageIdSize);
  ASSERT_THAT(key.status(), IsOk());
  ASSERT_THAT(id.status(), IsOk());
  std::string info(kKeyScheduleLabel);
  AppendBigEndian(&info, static_cast<uint16_t>(Suite::kAes256GcmHkdfSha256Commit), 2);
  info.append(*id);
  auto okm = crypto::HkdfExpand(crypto::HashFunction::kSha256, *key, info, 64);
  ASSERT_THAT(okm.status(), IsOk());
  auto schedule = DataKeySchedule::New(SecretData::CopyFrom(*key));
  ASSERT_THAT(schedule.status(), IsOk());
  auto keys = (*schedule)->Derive(Suite::kAes256GcmHkdfSha256Commit, *id);
  ASSERT_THAT(keys.status(), IsOk());
  EXPECT_EQ(keys->commitment, okm->AsStringView().substr(32, 32));
  auto reference = crypto::internal::NewNonceAead(
      crypto::AeadAlgorithm::kAes256Gcm, SecretData::CopyFrom(okm->AsStringView().substr(0, 32)));
  ASSERT_THAT(reference.status(), IsOk());
  const std::string nonce(12, '\0'), plaintext = "frame";
  std::string sealed(plaintext.size() + crypto::kAeadTagSize, '\0');
  ASSERT_THAT((*reference)->Seal(nonce, plaintext, "aad",
                                 {reinterpret_cast<uint8_t*>(sealed.data()), sealed.size()}),
              IsOk());
  std::string opened(plaintext.size(), '\0');
  EXPECT_THAT(keys->aead->Open(nonce, sealed, "aad",
                               {reinterpret_cast<uint8_t*>(opened.data()), opened.size()}),
              IsOk());
  EXPECT_EQ(opened, plaintext);
  // The one-shot form derives the same.
  auto once = DeriveMessageKeys(Suite::kAes256GcmHkdfSha256Commit, SecretData::CopyFrom(*key), *id);
  ASSERT_THAT(once.status(), IsOk());
  EXPECT_EQ(once->commitment, keys->commitment);
}

TEST(DataKeyScheduleTest, RefusesADataKeyThatIsNot32Bytes) {
  EXPECT_THAT(DataKeySchedule::New(SecretData::CopyFrom(std::string(31, 'k'))).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DataKeySchedule::New(SecretData::CopyFrom(std::string(33, 'k'))).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// What the SDK's encrypt-side cache keeps beside a data key (its schedule
// and the header template) changes how a message is computed, not its
// bytes: with the same message id, every combination of the cached and
// the one-shot paths writes the same message, for small (libsodium
// AES-GCM) and large (EVP) bodies and for both unsigned suites, and it
// decrypts.
TEST(CachedMaterialsTest, WriteTheSameBytesAsTheOneShotPath) {
  auto keyring = RawAesKeyring::Generate();
  ASSERT_THAT(keyring.status(), IsOk());
  for (Suite suite : {Suite::kAes256GcmHkdfSha256Commit,
                      Suite::kChaCha20Poly1305HkdfSha256Commit}) {
    auto generated = (*keyring)->GenerateDataKey({{"tenant", "acme"}});
    ASSERT_THAT(generated.status(), IsOk());
    EncryptionMaterials m;
    m.suite = suite;
    m.key = generated->key;
    m.context = {{"tenant", "acme"}};
    m.data_keys = {generated->encrypted};
    m.data_key = &generated->plaintext;
    m.message_id = std::string(kMessageIdSize, '\x42');
    auto schedule = DataKeySchedule::New(generated->plaintext);
    ASSERT_THAT(schedule.status(), IsOk());
    auto header = MakeHeaderTemplate(m);
    ASSERT_THAT(header.status(), IsOk());
    for (size_t size : {size_t{0}, size_t{1024}, kSmallMessageBody, kSmallMessageBody + 1,
                        size_t{200} << 10}) {
      const std::string plaintext(size, 'p');
      auto reference = EncryptBytesWithMaterials(m, plaintext);
      ASSERT_THAT(reference.status(), IsOk());
      for (int variant = 1; variant < 4; ++variant) {
        EncryptionMaterials cached = m;
        if (variant & 1) cached.schedule = schedule->get();
        if (variant & 2) cached.header = &*header;
        auto message = EncryptBytesWithMaterials(cached, plaintext);
        ASSERT_THAT(message.status(), IsOk());
        EXPECT_EQ(*message, *reference) << "size " << size << " variant " << variant;
      }
      const KeyUnwrapper* keyrings[] = {keyring->get()};
      auto opened = DecryptMessage(*reference, keyrings);
      ASSERT_THAT(opened.status(), IsOk());
      EXPECT_EQ(opened->AsStringView(), plaintext);
    }
  }
}

TEST(CachedMaterialsTest, ATemplateServesOnlyTheMaterialsItWasMadeFrom) {
  auto keyring = RawAesKeyring::Generate();
  ASSERT_THAT(keyring.status(), IsOk());
  auto generated = (*keyring)->GenerateDataKey({});
  ASSERT_THAT(generated.status(), IsOk());
  EncryptionMaterials m;
  m.key = generated->key;
  m.data_keys = {generated->encrypted};
  m.data_key = &generated->plaintext;
  auto header = MakeHeaderTemplate(m);
  ASSERT_THAT(header.status(), IsOk());
  m.header = &*header;
  m.frame_size = 4096;
  EXPECT_THAT(EncryptBytesWithMaterials(m, "x").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  m.frame_size = kDefaultFrameSize;
  m.suite = Suite::kAes256GcmHkdfSha256CommitEcdsaP384;
  EXPECT_THAT(MakeHeaderTemplate(m).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EncryptBytesWithMaterials(m, "x").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace keyward::format
