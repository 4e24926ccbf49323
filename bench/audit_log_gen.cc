// Writes a realistic audit log of N records (as keywardd writes them: one
// record per request, group-committed, a signed checkpoint every 100,000
// records and at the end) for `keyward audit verify` and size figures.
//   audit_log_gen DIR N
// The signing key is a software P-256 key: verification work is the same.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "audit/audit_log.h"
#include "testing/software_root_of_trust.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: audit_log_gen DIR N\n");
    return 2;
  }
  const std::string dir = argv[1];
  const uint64_t n = std::strtoull(argv[2], nullptr, 10);
  keyward::hsm::testing::SoftwareRootOfTrust signer;
  keyward::audit::AuditLogOptions o;
  o.dir = dir;
  o.environment = "bench";
  o.signer = &signer;
  o.signing_key_label = "keyward-audit/bench";
  o.checkpoint_interval = absl::ZeroDuration();
  o.max_pending = 1 << 20;
  o.max_wait = absl::Seconds(30);
  auto log = keyward::audit::AuditLog::Open(o);
  if (!log.ok()) {
    std::fprintf(stderr, "%s\n", log.status().ToString().c_str());
    return 1;
  }
  const absl::Time start = absl::Now();
  constexpr uint64_t kChunk = 100000;
  for (uint64_t done = 0; done < n;) {
    const uint64_t end = std::min(n, done + kChunk);
    for (uint64_t i = done; i < end; ++i) {
      keyward::audit::AuditRecord r;
      r.time = start + absl::Milliseconds(i);
      r.request_id = absl::StrCat("9f3c1e2d", absl::Hex(i, absl::kZeroPad16));
      r.principal = "spiffe://example.org/tenant/acme/payments-api";
      r.peer = absl::StrCat("ipv4:10.1.", (i / 250) % 250, ".", i % 250, ":", 40000 + i % 20000);
      r.operation = i % 10 == 0 ? "generate-data-key" : "decrypt";
      r.key = "payments/card-numbers";
      r.version = 3;
      r.context = {{"tenant", "hmac:5b0e8a1f3c2d4e6f7a8b9c0d1e2f3a4b"},
                   {"table", "hmac:0a1b2c3d4e5f60718293a4b5c6d7e8f9"}};
      r.decision = "allow";
      r.rule = "tenant-data";
      r.result = "OK";
      r.latency_us = 180 + static_cast<int64_t>(i % 97);
      (*log)->AppendAsync(std::move(r));
    }
    while ((*log)->size() < end) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (auto c = (*log)->MakeCheckpoint(); !c.ok()) {
      std::fprintf(stderr, "%s\n", c.status().ToString().c_str());
      return 1;
    }
    done = end;
  }
  std::printf("wrote %llu records in %.2f s\n", static_cast<unsigned long long>(n),
              absl::ToDoubleSeconds(absl::Now() - start));
  return 0;
}
