// Reading the audit log back: a record by index, and records that match a
// filter, a bounded number per call.
#include <algorithm>
#include <string>
#include <vector>

#include "audit/audit_log.h"
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

absl::StatusOr<std::vector<std::string>> AuditLog::Read(uint64_t from, size_t limit,
                                                        const RecordFilter& filter,
                                                        uint64_t* next) const {
  std::vector<std::string> out;
  const uint64_t n = tree_.size();
  uint64_t i = from;
  // Bounded work per call: a selective filter over a long log returns
  // early with `next`, and the caller continues from there.
  constexpr uint64_t kMaxScan = 200000;
  // Fetched in chunks (one query each, on PostgreSQL).
  constexpr uint64_t kChunk = 1000;
  while (i < n && out.size() < limit && i - from < kMaxScan) {
    const uint64_t count = std::min({kChunk, n - i, kMaxScan - (i - from),
                                     std::max<uint64_t>(limit - out.size(), 64)});
    KW_ASSIGN_OR_RETURN(std::vector<std::string> lines, storage_->ReadRecords(i, count));
    for (std::string& line : lines) {
      ++i;
      if (filter.Matches(line)) out.push_back(std::move(line));
      if (out.size() >= limit) break;
    }
  }
  *next = i;
  return out;
}

}  // namespace keyward::audit
