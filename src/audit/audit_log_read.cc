// Reading the audit log back: a record by index, and records that match a
// filter, a bounded number per call.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "audit/audit_log.h"
#include "audit/audit_log_files.h"
#include "base/status_macros.h"
#include "nlohmann/json.hpp"

namespace keyward::audit {

bool RecordFilter::Matches(absl::string_view line) const {
  if (!since && !until && principal.empty() && key.empty() && operation.empty() &&
      decision.empty() && context.empty()) {
    return true;
  }
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object()) return false;
  auto field = [&](const char* name) {
    return j.contains(name) && j[name].is_string() ? j[name].get<std::string>()
                                                   : std::string();
  };
  if (!principal.empty() && field("principal") != principal) return false;
  if (!key.empty() && field("key") != key) return false;
  if (!operation.empty() && field("operation") != operation) return false;
  if (!decision.empty() && field("decision") != decision) return false;
  if (!context.empty()) {
    if (!j.contains("context") || !j["context"].is_object()) return false;
    const auto& ctx = j["context"];
    for (const auto& [k, v] : context) {
      if (!ctx.contains(k) || !ctx[k].is_string() || ctx[k].get<std::string>() != v) {
        return false;
      }
    }
  }
  if (since || until) {
    absl::Time t;
    std::string err;
    if (!absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", field("time"), &t, &err)) return false;
    if (since && t < *since) return false;
    if (until && t >= *until) return false;
  }
  return true;
}

absl::StatusOr<Hash> AuditLog::LeafAt(uint64_t index) const {
  if (index >= tree_.size()) return absl::OutOfRangeError("no such record");
  return tree_.LeafAt(index);
}

absl::StatusOr<std::string> AuditLog::ReadLine(uint64_t index) const {
  std::lock_guard<std::mutex> lock(lines_mu_);
  if (index >= offsets_.size()) return absl::OutOfRangeError("no such record");
  if (memory()) return memory_lines_[index];
  const uint64_t start = offsets_[index];
  int fd = ::open(Path(options_.dir, kRecordsFile).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::UnavailableError("cannot read the audit log");
  std::string out;
  char buf[4096];
  uint64_t pos = start;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof(buf), static_cast<off_t>(pos));
    if (n <= 0) break;
    const size_t len = static_cast<size_t>(n);
    const void* nl = std::memchr(buf, '\n', len);
    if (nl != nullptr) {
      out.append(buf, static_cast<const char*>(nl) - buf);
      break;
    }
    out.append(buf, len);
    pos += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return out;
}

absl::StatusOr<std::vector<std::string>> AuditLog::Read(uint64_t from, size_t limit,
                                                        const RecordFilter& filter,
                                                        uint64_t* next) const {
  std::vector<std::string> out;
  const uint64_t n = tree_.size();
  uint64_t i = from;
  // Bounded work per call: a selective filter over a long log returns
  // early with `next`, and the caller continues from there.
  constexpr uint64_t kMaxScan = 200000;
  for (; i < n && out.size() < limit && i - from < kMaxScan; ++i) {
    KW_ASSIGN_OR_RETURN(std::string line, ReadLine(i));
    if (filter.Matches(line)) out.push_back(std::move(line));
  }
  *next = i;
  return out;
}

}  // namespace keyward::audit
