#include "crypto/random.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace keyward::crypto {
namespace {

TEST(RandomTest, KeysAreDistinctAndLocked) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    KW_ASSERT_OK_AND_ASSIGN(SecretData key, GenerateKey(32));
    ASSERT_EQ(key.size(), 32u);
    seen.insert(std::string(key.AsStringView()));
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(RandomTest, LargeBuffersAreFilled) {
  KW_ASSERT_OK_AND_ASSIGN(std::string bytes, RandomBytes(3 << 20));
  // A 3 MiB all-zero tail would mean a chunk was skipped.
  EXPECT_NE(bytes.substr(bytes.size() - 64), std::string(64, '\0'));
  EXPECT_NE(bytes.substr((1 << 20) + 7, 64), std::string(64, '\0'));
}

}  // namespace
}  // namespace keyward::crypto
