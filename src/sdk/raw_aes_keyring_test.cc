#include "keyward/raw_aes_keyring.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/subprocess.h"

namespace keyward {
namespace {

using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;

using ::keyward::testing::TempDir;

TEST(RawAesKeyringTest, KeyFileRoundTripAndPermissions) {
  TempDir dir;
  KW_ASSERT_OK_AND_ASSIGN(auto keyring, RawAesKeyring::Generate());
  const std::string path = dir.File("k.key");
  KW_ASSERT_OK(keyring->WriteKeyFile(path));
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THAT(keyring->WriteKeyFile(path),
              StatusIs(absl::StatusCode::kAlreadyExists));
  KW_ASSERT_OK_AND_ASSIGN(auto loaded, RawAesKeyring::LoadKeyFile(path));
  EXPECT_EQ(loaded->key_id(), keyring->key_id());

  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey dk,
                          keyring->GenerateDataKey({{"a", "b"}}));
  KW_ASSERT_OK_AND_ASSIGN(SecretData back,
                          loaded->UnwrapDataKey(dk.encrypted, {{"a", "b"}}));
  EXPECT_TRUE(ConstantTimeEquals(back, dk.plaintext));
  EXPECT_EQ(dk.key.environment, "offline");
  EXPECT_EQ(dk.key.key_name, "raw/" + keyring->key_id());
}

TEST(RawAesKeyringTest, UnwrapChecksOwnerAndContext) {
  KW_ASSERT_OK_AND_ASSIGN(auto a, RawAesKeyring::Generate());
  KW_ASSERT_OK_AND_ASSIGN(auto b, RawAesKeyring::Generate());
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey dk, a->GenerateDataKey({{"t", "1"}}));
  EXPECT_TRUE(a->Owns(dk.encrypted));
  EXPECT_FALSE(b->Owns(dk.encrypted));
  EXPECT_THAT(b->UnwrapDataKey(dk.encrypted, {{"t", "1"}}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(a->UnwrapDataKey(dk.encrypted, {{"t", "2"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("encryption context")));
  EXPECT_THAT(a->UnwrapDataKey(dk.encrypted, {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(RawAesKeyringTest, RejectsBadKeyFiles) {
  TempDir dir;
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir.File(name)) << text;
    return dir.File(name);
  };
  EXPECT_THAT(RawAesKeyring::LoadKeyFile(dir.File("missing")),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(RawAesKeyring::LoadKeyFile(write("a", "hello\n")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not a Keyward raw key file")));
  KW_ASSERT_OK_AND_ASSIGN(auto keyring, RawAesKeyring::Generate());
  KW_ASSERT_OK(keyring->WriteKeyFile(dir.File("good")));
  std::ifstream in(dir.File("good"));
  std::string text((std::istreambuf_iterator<char>(in)), {});
  std::string tampered = text;
  tampered.replace(tampered.find("\nid ") + 4, 1,
                   text[text.find("\nid ") + 4] == '0' ? "1" : "0");
  EXPECT_THAT(RawAesKeyring::LoadKeyFile(write("b", tampered)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("does not match")));
  EXPECT_THAT(RawAesKeyring::FromKey(SecretData(16)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace keyward
