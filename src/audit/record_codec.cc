// The binary record encoding (docs/audit.md "Record encoding",
// docs/decisions/0034-compact-audit-records.md) and the JSON line that
// clients see, rendered from it.
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "audit/record.h"
#include "audit/record_codec.h"
#include "base/status_macros.h"
#include "nlohmann/json.hpp"

namespace keyward::audit {
namespace codec {

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint(absl::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
    const uint8_t b = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    if (shift == 63 && b > 1) return false;
    result |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

namespace {

bool IsLowerHex(absl::string_view s) {
  if (s.empty() || s.size() % 2 != 0) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// "ipv4:A.B.C.D:PORT" exactly as gRPC writes it (no leading zeros), as 6
// bytes; anything else is not this form.
bool ParseIpv4Peer(absl::string_view s, uint8_t out[6]) {
  constexpr absl::string_view kPrefix = "ipv4:";
  if (!absl::StartsWith(s, kPrefix)) return false;
  s.remove_prefix(kPrefix.size());
  std::vector<absl::string_view> parts = absl::StrSplit(s, absl::ByAnyChar(".:"));
  if (parts.size() != 5 || s.find(':') == absl::string_view::npos ||
      s.find(':') < s.rfind('.')) {
    return false;
  }
  for (size_t i = 0; i < 5; ++i) {
    const absl::string_view p = parts[i];
    if (p.empty() || p.size() > 5 || (p.size() > 1 && p[0] == '0')) return false;
    uint32_t v = 0;
    if (!absl::SimpleAtoi(p, &v) || !absl::ascii_isdigit(static_cast<unsigned char>(p[0]))) {
      return false;
    }
    if (i < 4) {
      if (v > 255) return false;
      out[i] = static_cast<uint8_t>(v);
    } else {
      if (v > 65535) return false;
      out[4] = static_cast<uint8_t>(v >> 8);
      out[5] = static_cast<uint8_t>(v & 0xff);
    }
  }
  return true;
}

}  // namespace

namespace {
// Invalid UTF-8 (a principal from a strange certificate) becomes U+FFFD, as
// in the JSON line, so that a record and its JSON line say the same.
std::string ValidUtf8(absl::string_view s) {
  return nlohmann::json::parse(
             nlohmann::json(std::string(s))
                 .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
      .get<std::string>();
}
bool Ascii(absl::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}
}  // namespace

void PutString(std::string* out, absl::string_view s) {
  if (!Ascii(s)) {
    const std::string valid = ValidUtf8(s);
    if (valid != s) return PutString(out, valid);
  }
  constexpr absl::string_view kHmac = "hmac:";
  uint8_t ip[6];
  if (absl::StartsWith(s, kHmac) && IsLowerHex(s.substr(kHmac.size()))) {
    const std::string raw = absl::HexStringToBytes(s.substr(kHmac.size()));
    PutVarint(out, raw.size() << 3 | kHmacHex);
    out->append(raw);
  } else if (IsLowerHex(s)) {
    const std::string raw = absl::HexStringToBytes(s);
    PutVarint(out, raw.size() << 3 | kHex);
    out->append(raw);
  } else if (ParseIpv4Peer(s, ip)) {
    PutVarint(out, 6 << 3 | kIpv4Peer);
    out->append(reinterpret_cast<const char*>(ip), 6);
  } else {
    PutVarint(out, s.size() << 3 | kRaw);
    out->append(s.data(), s.size());
  }
}

bool GetStringToken(absl::string_view* in, StringToken* t) {
  uint64_t h = 0;
  if (!GetVarint(in, &h)) return false;
  t->kind = static_cast<StringKind>(h & 7);
  const uint64_t len = h >> 3;
  if (t->kind == kRef) {
    t->ref = len;
    t->payload = {};
    return true;
  }
  if (t->kind > kIpv4Peer || len > in->size() || (t->kind == kIpv4Peer && len != 6)) {
    return false;
  }
  t->payload = in->substr(0, len);
  in->remove_prefix(len);
  return true;
}

std::string TokenText(const StringToken& t) {
  switch (t.kind) {
    case kHex:
      return absl::BytesToHexString(t.payload);
    case kHmacHex:
      return absl::StrCat("hmac:", absl::BytesToHexString(t.payload));
    case kIpv4Peer: {
      const auto* b = reinterpret_cast<const uint8_t*>(t.payload.data());
      return absl::StrCat("ipv4:", b[0], ".", b[1], ".", b[2], ".", b[3], ":",
                          (static_cast<unsigned>(b[4]) << 8) | b[5]);
    }
    default:
      return std::string(t.payload);
  }
}

void PutToken(std::string* out, const StringToken& t) {
  PutVarint(out, (t.kind == kRef ? t.ref : t.payload.size()) << 3 | t.kind);
  out->append(t.payload.data(), t.payload.size());
}

absl::Status Walk(absl::string_view in, const WalkVisitor& visit) {
  auto bad = [](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("not an audit record (", why, ")"));
  };
  if (in.empty() || static_cast<uint8_t>(in[0]) != kBinaryRecordV1) return bad("format byte");
  visit.raw(in.substr(0, 1));
  in.remove_prefix(1);
  // seq, prev prefix, time
  absl::string_view start = in;
  uint64_t v = 0;
  if (!GetVarint(&in, &v)) return bad("seq");
  if (in.size() < kPrevPrefixBytes) return bad("prev");
  in.remove_prefix(kPrevPrefixBytes);
  if (!GetVarint(&in, &v)) return bad("time");
  visit.raw(start.substr(0, start.size() - in.size()));
  auto str = [&](Field f) -> absl::Status {
    StringToken t;
    if (!GetStringToken(&in, &t)) return bad("string field");
    KW_RETURN_IF_ERROR(visit.string(f, t));
    return absl::OkStatus();
  };
  auto num = [&]() -> absl::Status {
    absl::string_view s = in;
    if (!GetVarint(&in, &v)) return bad("number");
    visit.raw(s.substr(0, s.size() - in.size()));
    return absl::OkStatus();
  };
  KW_RETURN_IF_ERROR(str(Field::kRequestId));
  KW_RETURN_IF_ERROR(str(Field::kPrincipal));
  KW_RETURN_IF_ERROR(str(Field::kPeer));
  KW_RETURN_IF_ERROR(str(Field::kOperation));
  KW_RETURN_IF_ERROR(str(Field::kKey));
  KW_RETURN_IF_ERROR(num());  // version
  absl::string_view s = in;
  uint64_t n = 0;
  if (!GetVarint(&in, &n) || n > in.size()) return bad("context size");
  visit.raw(s.substr(0, s.size() - in.size()));
  for (uint64_t i = 0; i < n; ++i) {
    KW_RETURN_IF_ERROR(str(Field::kContextKey));
    KW_RETURN_IF_ERROR(str(Field::kContextValue));
  }
  KW_RETURN_IF_ERROR(str(Field::kDecision));
  KW_RETURN_IF_ERROR(str(Field::kRule));
  KW_RETURN_IF_ERROR(str(Field::kResult));
  KW_RETURN_IF_ERROR(str(Field::kErrorCode));
  KW_RETURN_IF_ERROR(num());  // latency
  KW_RETURN_IF_ERROR(str(Field::kDetail));
  if (!in.empty()) return bad("trailing bytes");
  return absl::OkStatus();
}

bool Internable(Field f) {
  return f != Field::kRequestId && f != Field::kContextValue && f != Field::kDetail;
}

}  // namespace codec

using codec::PutString;
using codec::PutVarint;

std::string EncodeRecordBody(const AuditRecord& r) {
  std::string out;
  out.reserve(128);
  PutVarint(&out, codec::ZigZagTime(r.time));
  PutString(&out, r.request_id);
  PutString(&out, r.principal);
  PutString(&out, r.peer);
  PutString(&out, r.operation);
  PutString(&out, r.key);
  PutVarint(&out, r.version);
  PutVarint(&out, r.context.size());
  for (const auto& [k, v] : r.context) {
    PutString(&out, k);
    PutString(&out, v);
  }
  PutString(&out, r.decision);
  PutString(&out, r.rule);
  PutString(&out, r.result);
  PutString(&out, r.error_code);
  PutVarint(&out, codec::ZigZag64(r.latency_us));
  PutString(&out, r.detail);
  return out;
}

std::string ChainBinaryRecord(absl::string_view body, uint64_t seq, const Hash& prev) {
  // The time leads the body; it goes after the chain fields.
  std::string out;
  out.reserve(body.size() + 16);
  out.push_back(static_cast<char>(codec::kBinaryRecordV1));
  PutVarint(&out, seq);
  out.append(reinterpret_cast<const char*>(prev.data()), codec::kPrevPrefixBytes);
  out.append(body.data(), body.size());
  return out;
}

absl::StatusOr<DecodedRecord> DecodeBinaryRecord(absl::string_view in) {
  auto bad = [](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("not an audit record (", why, ")"));
  };
  if (in.empty() || static_cast<uint8_t>(in[0]) != codec::kBinaryRecordV1) {
    return bad("format byte");
  }
  in.remove_prefix(1);
  DecodedRecord d;
  uint64_t v = 0;
  if (!codec::GetVarint(&in, &d.seq) || in.size() < codec::kPrevPrefixBytes) return bad("seq");
  std::memcpy(d.prev_prefix.data(), in.data(), codec::kPrevPrefixBytes);
  in.remove_prefix(codec::kPrevPrefixBytes);
  AuditRecord& r = d.record;
  if (!codec::GetVarint(&in, &v)) return bad("time");
  r.time = absl::FromUnixMicros(codec::UnZigZag64(v));
  auto str = [&](std::string* out) {
    codec::StringToken t;
    if (!codec::GetStringToken(&in, &t) || t.kind == codec::kRef) return false;
    *out = codec::TokenText(t);
    return true;
  };
  if (!str(&r.request_id) || !str(&r.principal) || !str(&r.peer) || !str(&r.operation) ||
      !str(&r.key)) {
    return bad("string field");
  }
  if (!codec::GetVarint(&in, &v) || v > UINT32_MAX) return bad("version");
  r.version = static_cast<uint32_t>(v);
  uint64_t n = 0;
  if (!codec::GetVarint(&in, &n) || n > in.size()) return bad("context size");
  for (uint64_t i = 0; i < n; ++i) {
    std::string k, val;
    if (!str(&k) || !str(&val)) return bad("context");
    r.context[std::move(k)] = std::move(val);
  }
  if (!str(&r.decision) || !str(&r.rule) || !str(&r.result) || !str(&r.error_code)) {
    return bad("string field");
  }
  if (!codec::GetVarint(&in, &v)) return bad("latency");
  r.latency_us = codec::UnZigZag64(v);
  if (!str(&r.detail)) return bad("detail");
  if (!in.empty()) return bad("trailing bytes");
  return d;
}

absl::StatusOr<std::string> RecordAsJson(absl::string_view stored, const Hash& prev) {
  if (IsJsonRecord(stored)) return std::string(stored);
  KW_ASSIGN_OR_RETURN(DecodedRecord d, DecodeBinaryRecord(stored));
  return SerializeRecord(d.record, d.seq, prev);
}

absl::StatusOr<ParsedJsonRecord> ParseJsonRecord(absl::string_view line) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object()) return absl::InvalidArgumentError("not a JSON audit record");
  ParsedJsonRecord p;
  try {
    p.seq = j.at("seq").get<uint64_t>();
    if (!FromHex(j.at("prev").get<std::string>(), &p.prev)) {
      return absl::InvalidArgumentError("an audit record's prev is not a hex hash");
    }
    AuditRecord& r = p.record;
    std::string err;
    if (!absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", j.at("time").get<std::string>(), &r.time,
                         &err)) {
      return absl::InvalidArgumentError("an audit record's time is malformed");
    }
    r.request_id = j.at("request_id").get<std::string>();
    r.principal = j.at("principal").get<std::string>();
    r.peer = j.at("peer").get<std::string>();
    r.operation = j.at("operation").get<std::string>();
    r.key = j.at("key").get<std::string>();
    r.version = j.at("version").get<uint32_t>();
    for (const auto& [k, v] : j.at("context").items()) r.context[k] = v.get<std::string>();
    r.decision = j.at("decision").get<std::string>();
    r.rule = j.at("rule").get<std::string>();
    r.result = j.at("result").get<std::string>();
    r.error_code = j.at("error_code").get<std::string>();
    r.latency_us = j.at("latency_us").get<int64_t>();
    r.detail = j.at("detail").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not a JSON audit record: ", e.what()));
  }
  return p;
}

std::vector<Hash> PossibleLeaves(absl::string_view line) {
  std::vector<Hash> out = {LeafHash(line)};
  if (auto p = ParseJsonRecord(line); p.ok()) {
    out.push_back(LeafHash(ChainBinaryRecord(EncodeRecordBody(p->record), p->seq, p->prev)));
  }
  return out;
}

}  // namespace keyward::audit
