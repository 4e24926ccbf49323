#include "keyward/caching_unwrapper.h"

#include <malloc.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "format/single_flight_cache.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace keyward {
namespace {

// Unwraps every entry of provider "p" to its ciphertext's first 32 bytes
// (padded), counting calls.
class FakeUnwrapper final : public KeyUnwrapper {
 public:
  absl::StatusOr<SecretData> UnwrapDataKey(const EncryptedDataKey& edk,
                                           const EncryptionContext& context) const override {
    ++calls;
    if (fail) return absl::UnavailableError("down");
    // A digest-like function of everything, so distinct entries differ.
    const std::string all = absl::StrCat(edk.provider_info.size(), ":", edk.provider_info,
                                         edk.ciphertext.size(), ":", edk.ciphertext,
                                         context.size());
    std::string key(32, '\0');
    for (size_t i = 0; i < all.size(); ++i) key[i % 32] = static_cast<char>(key[i % 32] * 31 + all[i]);
    return SecretData::CopyFrom(key);
  }
  bool Owns(const EncryptedDataKey& edk) const override { return edk.provider_id == "p"; }
  mutable std::atomic<int> calls{0};
  bool fail = false;
};

TEST(CachingUnwrapperTest, CacheKeysAreUnambiguous) {
  // Pairs of entries that a naive "a|b|c" key would confuse.
  const EncryptedDataKey a{"p", "k|x", "y"}, b{"p", "k", "x|y"};
  EXPECT_NE(CachingUnwrapper::CacheKey(a, {}), CachingUnwrapper::CacheKey(b, {}));
  const EncryptedDataKey c{"p", "k", "xy"};
  EXPECT_NE(CachingUnwrapper::CacheKey(c, {{"a", "b"}}),
            CachingUnwrapper::CacheKey({"p", "k", "x"}, {{"ya", "b"}}));
  auto inner = std::make_shared<FakeUnwrapper>();
  CachingUnwrapper cache(inner, {});
  KW_ASSERT_OK_AND_ASSIGN(SecretData ka, cache.UnwrapDataKey(a, {}));
  KW_ASSERT_OK_AND_ASSIGN(SecretData kb, cache.UnwrapDataKey(b, {}));
  EXPECT_NE(ka.AsStringView(), kb.AsStringView());
  EXPECT_EQ(inner->calls.load(), 2);
}

TEST(CachingUnwrapperTest, HitsMissesLimitsAndErrors) {
  auto inner = std::make_shared<FakeUnwrapper>();
  CacheLimits limits;
  limits.max_messages = 3;
  int hits = 0, misses = 0;
  CachingUnwrapper cache(inner, limits, [&](bool hit) { ++(hit ? hits : misses); });
  const EncryptedDataKey e{"p", "k", "w"};
  for (int i = 0; i < 4; ++i) KW_ASSERT_OK(cache.UnwrapDataKey(e, {{"t", "1"}}).status());
  // Three uses per entry, then a fresh unwrap.
  EXPECT_EQ(inner->calls.load(), 2);
  EXPECT_EQ(cache.misses(), 2u);
  EXPECT_EQ(cache.hits(), 2u);
  EXPECT_EQ(hits, 2);
  EXPECT_EQ(misses, 2);
  // Another context is another entry.
  KW_ASSERT_OK(cache.UnwrapDataKey(e, {{"t", "2"}}).status());
  EXPECT_EQ(inner->calls.load(), 3);
  // Not ours: kNotFound without calling the inner unwrapper.
  EXPECT_TRUE(absl::IsNotFound(cache.UnwrapDataKey({"q", "k", "w"}, {}).status()));
  EXPECT_EQ(inner->calls.load(), 3);
  // Errors are not cached.
  cache.Clear();
  inner->fail = true;
  EXPECT_FALSE(cache.UnwrapDataKey(e, {}).ok());
  inner->fail = false;
  KW_EXPECT_OK(cache.UnwrapDataKey(e, {}).status());
}

// Blocks every unwrap until `release` (so callers really overlap), then
// answers like FakeUnwrapper or fails.
class GatedUnwrapper final : public KeyUnwrapper {
 public:
  absl::StatusOr<SecretData> UnwrapDataKey(const EncryptedDataKey& edk,
                                           const EncryptionContext& context) const override {
    ++calls;
    while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (fail) return absl::UnavailableError("keywardd down");
    return inner.UnwrapDataKey(edk, context);
  }
  bool Owns(const EncryptedDataKey& edk) const override { return edk.provider_id == "p"; }
  FakeUnwrapper inner;
  mutable std::atomic<int> calls{0};
  std::atomic<bool> release{false};
  bool fail = false;
};

// Starts 16 unwraps of one entry, lets them pile up behind the first, then
// releases it.  Returns how many failed.
int Overlapping(const std::shared_ptr<GatedUnwrapper>& inner, CachingUnwrapper& cache) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  std::atomic<int> started{0};
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&] {
      ++started;
      if (!cache.UnwrapDataKey({"p", "k", "w"}, {}).ok()) ++failures;
    });
  }
  while (started.load() < 16) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // all waiting on the first
  inner->release = true;
  for (auto& t : threads) t.join();
  return failures.load();
}

TEST(CachingUnwrapperTest, OverlappingUnwrapsOfOneEntryMakeOneCall) {
  auto inner = std::make_shared<GatedUnwrapper>();
  CachingUnwrapper cache(inner, {});
  EXPECT_EQ(Overlapping(inner, cache), 0);
  EXPECT_EQ(inner->calls.load(), 1);
}

TEST(CachingUnwrapperTest, WaitersShareAFailedFetchInsteadOfRepeatingIt) {
  auto inner = std::make_shared<GatedUnwrapper>();
  inner->fail = true;
  CachingUnwrapper cache(inner, {});
  EXPECT_EQ(Overlapping(inner, cache), 16);
  EXPECT_EQ(inner->calls.load(), 1);
  // Not cached: the next caller tries again.
  inner->fail = false;
  KW_EXPECT_OK(cache.UnwrapDataKey({"p", "k", "w"}, {}).status());
  EXPECT_EQ(inner->calls.load(), 2);
}

TEST(CachingUnwrapperTest, ConcurrentUnwrapsOfOneEntryMakeOneCall) {
  auto inner = std::make_shared<FakeUnwrapper>();
  CachingUnwrapper cache(inner, {});
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&] {
      if (!cache.UnwrapDataKey({"p", "k", "w"}, {}).ok()) ++failures;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(inner->calls.load(), 1);
}

TEST(CachingUnwrapperTest, LimitsMustBeAboveZero) {
  CacheLimits l;
  KW_EXPECT_OK(ValidateCacheLimits(l, "c"));
  l.max_entries = 0;
  EXPECT_FALSE(ValidateCacheLimits(l, "c").ok());
}

// Memory held by the process's heap and by the locked arena that keys live
// in (SecretData), for the tests below.
struct MemoryInUse {
  size_t heap = mallinfo2().uordblks;
  size_t locked = CRYPTO_secure_used();
};
constexpr int kContexts = 1'000'000;
constexpr size_t kMaxEntries = 1000;
// What a bounded cache may still add after warming up: allocator slack, not
// per-context growth (an unbounded cache of a million entries holds
// hundreds of MiB).
constexpr size_t kHeapSlack = size_t{8} << 20;
constexpr size_t kLockedSlack = size_t{64} << 10;

// A million distinct encryption contexts (one per row, say) through the
// decrypt-side cache: it never holds more than max_entries, and the memory
// it holds does not grow with the number of contexts it has seen.
TEST(CachingUnwrapperTest, AMillionDistinctContextsStayWithinMaxEntries) {
  auto inner = std::make_shared<FakeUnwrapper>();
  CacheLimits limits;
  limits.max_entries = kMaxEntries;
  CachingUnwrapper cache(inner, limits);
  const EncryptedDataKey e{"p", "k", "w"};
  size_t most = 0;
  MemoryInUse warm;
  for (int i = 0; i < kContexts; ++i) {
    KW_ASSERT_OK(cache.UnwrapDataKey(e, {{"row", absl::StrCat(i)}}).status());
    most = std::max(most, cache.entries());
    if (i == 10 * static_cast<int>(kMaxEntries)) warm = MemoryInUse();
  }
  const MemoryInUse end;
  EXPECT_LE(most, kMaxEntries);
  EXPECT_GT(most, kMaxEntries / 2);  // it does cache
  EXPECT_EQ(inner->calls.load(), kContexts);
  EXPECT_LE(end.heap, warm.heap + kHeapSlack);
  EXPECT_LE(end.locked, warm.locked + kLockedSlack);
  cache.Clear();
  EXPECT_EQ(cache.entries(), 0u);
}

// The encrypt-side cache (the same SingleFlightCache, by partition = the
// serialized context) under a million distinct partitions.
struct TestEntry {
  SecretData data_key;
  absl::Time created;
  std::atomic<uint64_t> messages{0};
  std::atomic<uint64_t> bytes{0};
};

TEST(SingleFlightCacheTest, AMillionDistinctPartitionsStayWithinMaxEntries) {
  CacheLimits limits;
  limits.max_entries = kMaxEntries;
  format::SingleFlightCache<TestEntry> cache(limits);
  size_t most = 0, fetches = 0;
  MemoryInUse warm;
  for (int i = 0; i < kContexts; ++i) {
    bool hit = false;
    auto entry = cache.Acquire(
        absl::StrCat("tenant-", i), 1024,
        [&]() -> absl::StatusOr<std::shared_ptr<TestEntry>> {
          ++fetches;
          auto e = std::make_shared<TestEntry>();
          e->data_key = SecretData::CopyFrom(std::string(32, 'k'));
          return e;
        },
        &hit);
    KW_ASSERT_OK(entry.status());
    most = std::max(most, cache.size());
    if (i == 10 * static_cast<int>(kMaxEntries)) warm = MemoryInUse();
  }
  const MemoryInUse end;
  EXPECT_LE(most, kMaxEntries);
  EXPECT_GT(most, kMaxEntries / 2);
  EXPECT_EQ(fetches, static_cast<size_t>(kContexts));
  EXPECT_LE(end.heap, warm.heap + kHeapSlack);
  EXPECT_LE(end.locked, warm.locked + kLockedSlack);
}

}  // namespace
}  // namespace keyward
