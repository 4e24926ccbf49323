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

#include <sys/wait.h>
#include <unistd.h>

namespace keyward::crypto {
namespace {

// A forked child must not hand out the bytes its parent's pool still holds.
TEST(RandomTest, ForkedChildDoesNotReuseThePool) {
  KW_ASSERT_OK_AND_ASSIGN(std::string warm, RandomBytes(32));  // fill the pool
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    auto child = RandomBytes(32);
    ssize_t n = child.ok() ? ::write(fds[1], child->data(), 32) : -1;
    ::_exit(n == 32 ? 0 : 1);
  }
  KW_ASSERT_OK_AND_ASSIGN(std::string parent, RandomBytes(32));
  char buf[32];
  ASSERT_EQ(::read(fds[0], buf, 32), 32);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_NE(std::string(buf, 32), parent);
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace
}  // namespace keyward::crypto
