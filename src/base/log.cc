#include "base/log.h"

#include <unistd.h>

#include <atomic>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace keyward {
namespace {

std::atomic<bool> log_json{false};
std::atomic<int> log_min{static_cast<int>(LogLevel::kInfo)};

const char* LevelName(LogLevel level, bool upper) {
  switch (level) {
    case LogLevel::kDebug:
      return upper ? "DEBUG" : "debug";
    case LogLevel::kInfo:
      return upper ? "INFO" : "info";
    case LogLevel::kWarning:
      return upper ? "WARNING" : "warning";
    case LogLevel::kError:
      return upper ? "ERROR" : "error";
  }
  return "info";
}

// Length of the valid UTF-8 sequence at the start of `s`, or 0.
size_t Utf8Length(absl::string_view s) {
  const auto c = static_cast<unsigned char>(s[0]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (n == 0 || n > s.size()) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80) return 0;
  }
  return n;
}

// Escapes quotes and backslashes (when `quotes`), every control character
// and DEL, and replaces invalid UTF-8 with U+FFFD: a logged value can never
// forge a line break, a terminal escape or broken JSON.
void AppendEscaped(std::string* out, absl::string_view s, bool quotes) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (quotes && (c == '"' || c == '\\')) {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
      ++i;
    } else if (c == '\n') {
      out->append("\\n");
      ++i;
    } else if (c == '\t') {
      out->append("\\t");
      ++i;
    } else if (c < 0x20 || c == 0x7f) {
      absl::StrAppend(out, "\\u00", absl::Hex(c, absl::kZeroPad2));
      ++i;
    } else if (const size_t n = Utf8Length(s.substr(i)); n > 0) {
      out->append(s.data() + i, n);
      i += n;
    } else {
      out->append("\\ufffd");
      ++i;
    }
  }
}

void AppendJsonString(std::string* out, absl::string_view s) {
  out->push_back('"');
  AppendEscaped(out, s, /*quotes=*/true);
  out->push_back('"');
}

// Text values with spaces, quotes, '=' or any control byte are quoted so
// lines stay parseable.
void AppendTextValue(std::string* out, absl::string_view v) {
  bool plain = !v.empty();
  for (unsigned char c : v) {
    if (c <= 0x20 || c == 0x7f || c == '"' || c == '=' || c >= 0x80) plain = false;
  }
  if (plain) {
    out->append(v.data(), v.size());
  } else {
    AppendJsonString(out, v);
  }
}

}  // namespace

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(name);
  if (n == "debug") return LogLevel::kDebug;
  if (n == "info") return LogLevel::kInfo;
  if (n == "warning" || n == "warn") return LogLevel::kWarning;
  if (n == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log level '", name, "' (debug, info, warning, error)"));
}

void ConfigureLog(bool json, LogLevel min_level) {
  log_json = json;
  log_min = static_cast<int>(min_level);
}

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= log_min.load(); }

void Log(LogLevel level, absl::string_view event, absl::string_view message,
         std::initializer_list<LogField> fields) {
  if (!LogEnabled(level)) return;
  const std::string time =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  std::string line;
  if (log_json) {
    line = absl::StrCat("{\"time\":\"", time, "\",\"level\":\"", LevelName(level, false),
                        "\",\"event\":");
    AppendJsonString(&line, event);
    line.append(",\"msg\":");
    AppendJsonString(&line, message);
    for (const auto& [k, v] : fields) {
      line.push_back(',');
      AppendJsonString(&line, k);
      line.push_back(':');
      AppendJsonString(&line, v);
    }
    line.append("}\n");
  } else {
    line = absl::StrCat(time, " ", LevelName(level, true), " ");
    AppendEscaped(&line, event, /*quotes=*/false);
    line.append(": ");
    AppendEscaped(&line, message, /*quotes=*/false);
    for (const auto& [k, v] : fields) {
      absl::StrAppend(&line, " ", k, "=");
      AppendTextValue(&line, v);
    }
    line.push_back('\n');
  }
  // One write per line: lines from different threads never interleave.
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
}

}  // namespace keyward
