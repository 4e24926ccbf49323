#include "base/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace keyward {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Runs `f` with stderr redirected to a file and returns what it wrote.
template <typename F>
std::string CaptureStderr(F f) {
  char path[] = "/tmp/keyward-log-test-XXXXXX";
  const int fd = ::mkstemp(path);
  const int saved = ::dup(STDERR_FILENO);
  ::dup2(fd, STDERR_FILENO);
  f();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  std::string out;
  ::lseek(fd, 0, SEEK_SET);
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  ::unlink(path);
  return out;
}

TEST(LogTest, JsonLinesEscapeEverythingThatCouldBreakThem) {
  ConfigureLog(/*json=*/true, LogLevel::kInfo);
  const std::string out = CaptureStderr([] {
    Log(LogLevel::kInfo, "request", "denied \"x\"\nforged line\r\x1b[31m",
        {{"key", std::string("a\\b\xff\xfe")}, {"code", "OK"}});
    Log(LogLevel::kDebug, "request", "not shown at info");
  });
  ASSERT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  nlohmann::json j = nlohmann::json::parse(out);  // valid JSON, valid UTF-8
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["event"], "request");
  EXPECT_EQ(j["msg"], "denied \"x\"\nforged line\r\x1b[31m");
  EXPECT_EQ(j["key"], "a\\b\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(j["code"], "OK");
  EXPECT_TRUE(j.contains("time"));
}

TEST(LogTest, TextLinesCannotBeForged) {
  ConfigureLog(/*json=*/false, LogLevel::kDebug);
  const std::string out = CaptureStderr([] {
    Log(LogLevel::kWarning, "request", "line one\n2026-01-01T00:00:00Z INFO forged\r",
        {{"key", "pay/cards"}, {"error", "two words"}, {"esc", "\x1b[2J"}});
  });
  ConfigureLog(/*json=*/false, LogLevel::kInfo);
  ASSERT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_THAT(out, HasSubstr(" WARNING request: line one\\n2026-01-01T00:00:00Z INFO forged\\u000d"));
  EXPECT_THAT(out, HasSubstr(" key=pay/cards"));
  EXPECT_THAT(out, HasSubstr(" error=\"two words\""));
  EXPECT_THAT(out, HasSubstr(" esc=\"\\u001b[2J\""));
  EXPECT_THAT(out, Not(HasSubstr("\x1b")));
}

TEST(LogTest, ParsesLevels) {
  EXPECT_EQ(*ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_EQ(*ParseLogLevel("WARN"), LogLevel::kWarning);
  EXPECT_EQ(*ParseLogLevel("error"), LogLevel::kError);
  EXPECT_FALSE(ParseLogLevel("loud").ok());
}

}  // namespace
}  // namespace keyward
