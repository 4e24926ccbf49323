#include "audit/record.h"

#include "audit/record_codec.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace keyward::audit {

namespace {

// A JSON string.  Invalid UTF-8 (a principal from a strange certificate) is
// replaced, not fatal: the record must be written.
void AppendQuoted(std::string* out, absl::string_view s) {
  out->append(nlohmann::json(std::string(s))
                  .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void AppendField(std::string* out, absl::string_view name, absl::string_view value) {
  absl::StrAppend(out, ",\"", name, "\":");
  AppendQuoted(out, value);
}

}  // namespace

// Written field by field, so the cost is linear in the record's size (a
// JSON object library that keeps insertion order pays per key for each
// insert: quadratic in the number of context entries).
std::string SerializeRecordBody(const AuditRecord& r) {
  std::string out = "\"time\":";
  AppendQuoted(&out, absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", r.time, absl::UTCTimeZone()));
  AppendField(&out, "request_id", r.request_id);
  AppendField(&out, "principal", r.principal);
  AppendField(&out, "peer", r.peer);
  AppendField(&out, "operation", r.operation);
  AppendField(&out, "key", r.key);
  absl::StrAppend(&out, ",\"version\":", r.version, ",\"context\":{");
  bool first = true;
  for (const auto& [k, v] : r.context) {
    if (!first) out.push_back(',');
    first = false;
    AppendQuoted(&out, k);
    out.push_back(':');
    AppendQuoted(&out, v);
  }
  out.push_back('}');
  AppendField(&out, "decision", r.decision);
  AppendField(&out, "rule", r.rule);
  AppendField(&out, "result", r.result);
  AppendField(&out, "error_code", r.error_code);
  absl::StrAppend(&out, ",\"latency_us\":", r.latency_us);
  AppendField(&out, "detail", r.detail);
  out.push_back('}');
  return out;
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
  if (!line.empty() && static_cast<uint8_t>(line[0]) == codec::kBinaryRecordV1) {
    absl::string_view in = line.substr(1);
    ChainFields f;
    if (!codec::GetVarint(&in, &f.seq) || in.size() < codec::kPrevPrefixBytes) {
      return absl::DataLossError("not an audit record (bad seq)");
    }
    std::copy(in.begin(), in.begin() + codec::kPrevPrefixBytes, f.prev.begin());
    f.prefix_only = true;
    return f;
  }
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
