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

void AppendJsonString(std::string* out, absl::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          absl::StrAppend(out, "\\u00", absl::Hex(c, absl::kZeroPad2));
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

// Text values with spaces or quotes are quoted so lines stay parseable.
void AppendTextValue(std::string* out, absl::string_view v) {
  const bool plain = !v.empty() && v.find_first_of(" \"=\n\t") == absl::string_view::npos;
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
    line = absl::StrCat(time, " ", LevelName(level, true), " ", event, ": ", message);
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
