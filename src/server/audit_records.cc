// Audit records beside the pipeline's own: request ids, hashed context
// values, and records of calls refused before they reached a method.
#include "server/audit_records.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "crypto/random.h"
#include "format/wire.h"
#include "server/key_management_service.h"

namespace keyward::server {

std::string NewRequestId() {
  auto bytes = crypto::RandomBytes(12);
  return bytes.ok() ? absl::BytesToHexString(*bytes) : "unknown";
}

bool PlausibleRequestId(absl::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' &&
        c != '.') {
      return false;
    }
  }
  return true;
}

std::string HashContextValue(const crypto::HmacSha256& hmac, absl::string_view key,
                             absl::string_view value) {
  std::string input;
  format::AppendBigEndian(&input, key.size(), 4);
  input.append(key.data(), key.size());
  input.append(value.data(), value.size());
  auto tag = hmac.ComputeMac(input);
  return tag.ok() ? absl::StrCat("hmac:", absl::BytesToHexString(*tag)) : "hmac:error";
}

std::map<std::string, std::string> KeyManagementService::HashContext(
    const EncryptionContext& context) const {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : context) {
    out.emplace_hint(out.end(), k, HashContextValue(*deps_.context_hmac, k, v));
  }
  return out;
}

void KeyManagementService::AuditRefusal(const std::string& source, const std::string& peer,
                                        const char* operation, const absl::Status& status,
                                        std::string detail, std::function<void()> done) {
  if (!refusals_.ShouldRecord(source, operation)) {
    if (done) done();
    return;
  }
  audit::AuditRecord r;
  r.time = absl::Now();
  r.request_id = NewRequestId();
  r.principal = source;
  r.peer = peer;
  r.operation = operation;
  r.decision = "none";
  r.result = absl::StatusCodeToString(status.code());
  r.detail = std::move(detail);
  if (done) {
    deps_.audit->Submit(std::move(r), [done = std::move(done)](absl::Status) { done(); });
  } else {
    deps_.audit->AppendAsync(std::move(r));
  }
}

}  // namespace keyward::server
