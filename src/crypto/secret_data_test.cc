#include "keyward/secret_data.h"

#include <type_traits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace keyward {
namespace {

// Printing a secret must not compile; conversion to std::string must be
// explicit.
template <typename T, typename = void>
struct IsStreamable : std::false_type {};
template <typename T>
struct IsStreamable<T, std::void_t<decltype(std::declval<std::ostream&>()
                                            << std::declval<const T&>())>>
    : std::true_type {};
static_assert(!IsStreamable<SecretData>::value);
static_assert(!std::is_convertible_v<SecretData, std::string>);
static_assert(!std::is_copy_constructible_v<SecretData>);

TEST(SecretDataTest, KeysLiveInLockedMemory) {
  SecretData key = SecretData::CopyFrom(std::string(32, 'k'));
  SecureMemoryStats stats = GetSecureMemoryStats();
  if (!stats.arena_available) {
    GTEST_SKIP() << "mlock() is not permitted here (RLIMIT_MEMLOCK)";
  }
  EXPECT_TRUE(key.is_locked());
  EXPECT_GT(stats.arena_used_bytes, 0u);
  SecretData big(SecretData::kLockedLimit + 1);
  EXPECT_FALSE(big.is_locked());
}

TEST(SecretDataTest, MoveLeavesSourceEmpty) {
  SecretData a = SecretData::CopyFrom(std::string("secret"));
  SecretData b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(b.AsStringView(), "secret");
  SecretData c = b.Clone();
  EXPECT_TRUE(ConstantTimeEquals(b, c));
}

TEST(SecretDataTest, ResizeWipesAndZeroFills) {
  SecretData a = SecretData::CopyFrom(std::string("abcdef"));
  const uint8_t* raw = a.data();
  a.Resize(3);
  EXPECT_EQ(a.AsStringView(), "abc");
  // The dropped tail is wiped in place (same buffer, capacity unchanged).
  EXPECT_EQ(raw[3], 0);
  EXPECT_EQ(raw[5], 0);
  a.Resize(5);
  EXPECT_EQ(a.AsStringView(), std::string("abc\0\0", 5));
  a.Resize(5000);
  EXPECT_EQ(a.size(), 5000u);
  EXPECT_EQ(a.AsStringView().substr(0, 3), "abc");
  a.Clear();
  EXPECT_TRUE(a.empty());
}

TEST(SecretDataTest, ConstantTimeEqualsComparesLengthsAndBytes) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
}

}  // namespace
}  // namespace keyward

#include "crypto/random.h"

namespace keyward {
namespace {

// Filling the locked arena with keys must never starve OpenSSL, which draws
// its DRBG buffers from the same arena.
TEST(SecretDataTest, ManyKeysLeaveRoomForTheRandomGenerator) {
  std::vector<SecretData> keys;
  for (int i = 0; i < 200'000; ++i) keys.push_back(SecretData(32));
  for (int i = 0; i < 1000; ++i) {
    auto k = crypto::GenerateKey(32);
    ASSERT_TRUE(k.ok()) << k.status();
  }
  SecureMemoryStats stats = GetSecureMemoryStats();
  if (stats.arena_available) {
    EXPECT_GT(stats.fallback_allocations, 0u);
    EXPECT_LE(stats.arena_used_bytes, stats.arena_bytes);
  }
}

}  // namespace
}  // namespace keyward
