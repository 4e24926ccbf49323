// Reading the audit log back: a record by index, and records that match a
// filter, a bounded number per call.
#include <algorithm>
#include <string>
#include <vector>

#include "audit/audit_log.h"
#include "base/status_macros.h"
#include "nlohmann/json.hpp"

namespace keyward::audit {

bool RecordFilter::Matches(const AuditRecord& r) const {
  if (!principal.empty() && r.principal != principal) return false;
  if (!key.empty() && r.key != key) return false;
  if (!operation.empty() && r.operation != operation) return false;
  if (!decision.empty() && r.decision != decision) return false;
  for (const auto& [k, v] : context) {
    auto it = r.context.find(k);
    if (it == r.context.end() || it->second != v) return false;
  }
  if (since && r.time < *since) return false;
  if (until && r.time >= *until) return false;
  return true;
}

bool RecordFilter::Matches(absl::string_view line) const {
  if (empty()) return true;
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
  Hash leaf;
  if (tree_.TryLeafAt(index, &leaf)) return leaf;
  if (index >= tree_.size()) return absl::OutOfRangeError("no such record");
  return absl::FailedPreconditionError(absl::StrCat(
      "record ", index, " was pruned from the live log (records before ", tree_.pruned(),
      "); its proof is in the archive"));
}

absl::StatusOr<Hash> AuditLog::PrevOf(uint64_t index) const {
  if (index == 0) return Hash{};
  Hash leaf;
  if (tree_.TryLeafAt(index - 1, &leaf)) return leaf;
  {
    std::lock_guard<std::mutex> lock(prune_mu_);
    if (pruned_history_ && pruned_history_->size == index) return pruned_history_->last_leaf;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "record ", index - 1, " was pruned while it was being read; read from record ",
      tree_.pruned(), " on"));
}

absl::StatusOr<std::vector<std::string>> AuditLog::Read(uint64_t from, size_t limit,
                                                        const RecordFilter& filter,
                                                        uint64_t* next) const {
  std::vector<std::string> out;
  const uint64_t n = tree_.size();
  // Records pruned from the live log are in the archive only.
  from = std::max(from, tree_.pruned());
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
      const uint64_t index = i++;
      if (IsJsonRecord(line)) {
        if (filter.Matches(line)) out.push_back(std::move(line));
      } else {
        KW_ASSIGN_OR_RETURN(DecodedRecord d, DecodeBinaryRecord(line));
        if (filter.Matches(d.record)) {
          KW_ASSIGN_OR_RETURN(Hash prev, PrevOf(index));
          out.push_back(SerializeRecord(d.record, d.seq, prev));
        }
      }
      if (out.size() >= limit) break;
    }
  }
  *next = i;
  return out;
}

}  // namespace keyward::audit
