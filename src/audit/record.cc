#include "audit/record.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace keyward::audit {

std::string SerializeRecordBody(const AuditRecord& r) {
  nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
  for (const auto& [k, v] : r.context) ctx[k] = v;
  nlohmann::ordered_json j = {
      {"time", absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", r.time, absl::UTCTimeZone())},
      {"request_id", r.request_id},
      {"principal", r.principal},
      {"peer", r.peer},
      {"operation", r.operation},
      {"key", r.key},
      {"version", r.version},
      {"context", ctx},
      {"decision", r.decision},
      {"rule", r.rule},
      {"result", r.result},
      {"error_code", r.error_code},
      {"latency_us", r.latency_us},
      {"detail", r.detail}};
  // Invalid UTF-8 (a principal from a strange certificate) is replaced, not
  // fatal: the record must be written.
  std::string out = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return out.substr(1);  // without the opening brace
}

std::string ChainRecord(absl::string_view body, uint64_t seq, const Hash& prev) {
  std::string line = absl::StrCat("{\"seq\":", seq, ",\"prev\":\"", ToHex(prev), "\",");
  line.append(body.data(), body.size());
  return line;
}

std::string SerializeRecord(const AuditRecord& record, uint64_t seq, const Hash& prev) {
  return ChainRecord(SerializeRecordBody(record), seq, prev);
}

absl::StatusOr<ChainFields> ReadChainFields(absl::string_view line) {
  constexpr absl::string_view kSeq = "{\"seq\":";
  constexpr absl::string_view kPrev = ",\"prev\":\"";
  if (line.substr(0, kSeq.size()) != kSeq) {
    return absl::DataLossError("not an audit record (no leading seq)");
  }
  size_t i = kSeq.size();
  size_t j = i;
  while (j < line.size() && line[j] >= '0' && line[j] <= '9') ++j;
  ChainFields f;
  if (j == i || !absl::SimpleAtoi(line.substr(i, j - i), &f.seq)) {
    return absl::DataLossError("not an audit record (bad seq)");
  }
  if (line.substr(j, kPrev.size()) != kPrev ||
      !FromHex(line.substr(j + kPrev.size(), 64), &f.prev) ||
      line.substr(j + kPrev.size() + 64, 1) != "\"") {
    return absl::DataLossError("not an audit record (bad prev)");
  }
  return f;
}

}  // namespace keyward::audit
