// Writes a realistic audit log of N records as keywardd writes them (one
// record per request, group-committed, in segments closed by size with a
// signed checkpoint each, a checkpoint every 100,000 records and at the
// end), and reports the sustained rate and the directory's size.  With
// --archive-and-prune ARCH it then archives every closed segment to ARCH
// and prunes them, and reports the sizes after.  Prints one JSON object.
//   audit_log_gen DIR N [--segment-mib M] [--archive-and-prune ARCH]
// The signing key is a software P-256 key: verification work is the same.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "audit/archive.h"
#include "audit/audit_log.h"
#include "testing/software_root_of_trust.h"

namespace {

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: audit_log_gen DIR N [--segment-mib M] [--archive-and-prune ARCH]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const uint64_t n = std::strtoull(argv[2], nullptr, 10);
  uint64_t segment_mib = 64;
  std::string archive;
  for (int i = 3; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--segment-mib") == 0) segment_mib = std::strtoull(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "--archive-and-prune") == 0) archive = argv[i + 1];
  }
  keyward::hsm::testing::SoftwareRootOfTrust signer;
  keyward::audit::AuditLogOptions o;
  o.dir = dir;
  o.environment = "bench";
  o.signer = &signer;
  o.signing_key_label = "keyward-audit/bench";
  o.checkpoint_interval = absl::ZeroDuration();
  o.max_pending = 1 << 20;
  o.max_wait = absl::Seconds(30);
  o.segments.max_bytes = segment_mib << 20;
  auto log = keyward::audit::AuditLog::Open(o);
  if (!log.ok()) {
    std::fprintf(stderr, "%s\n", log.status().ToString().c_str());
    return 1;
  }
  // The public key, for `keyward audit verify --checkpoint-key`.
  if (FILE* f = std::fopen((dir + "/bench-key.pem").c_str(), "w")) {
    std::fputs((*log)->public_key_pem().c_str(), f);
    std::fclose(f);
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
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const auto segments = (*log)->Segments();
  const uint64_t bytes = DirBytes(dir);
  uint64_t segment_bytes = 0;
  for (const auto& s : segments) segment_bytes += s.bytes;
  std::string prune_json;
  if (!archive.empty()) {
    keyward::audit::ArchiveOptions a;
    a.log_dir = dir;
    a.archive_dir = archive;
    a.by = "audit_log_gen";
    const absl::Time t0 = absl::Now();
    if (auto s = (*log)->SignClosedSegments(); !s.ok()) {
      std::fprintf(stderr, "sign: %s\n", s.ToString().c_str());
      return 1;
    }
    auto report = keyward::audit::ArchiveSegments(
        a, [&](const keyward::audit::ArchiveMark& m) { return (*log)->MarkArchived(m); });
    if (!report.ok()) {
      std::fprintf(stderr, "archive: %s\n", report.status().ToString().c_str());
      return 1;
    }
    const double archive_s = absl::ToDoubleSeconds(absl::Now() - t0);
    keyward::audit::AuditLog::PruneRequest p;
    p.before = absl::InfiniteFuture();
    p.principal = "audit_log_gen";
    auto pruned = (*log)->Prune(p);
    if (!pruned.ok()) {
      std::fprintf(stderr, "prune: %s\n", pruned.status().ToString().c_str());
      return 1;
    }
    prune_json = absl::StrCat(",\"archived_segments\":", report->segments.size(),
                              ",\"archive_seconds\":", archive_s,
                              ",\"pruned_records\":", pruned->pruned_after,
                              ",\"dir_bytes_after_prune\":", DirBytes(dir),
                              ",\"archive_bytes\":", DirBytes(archive));
  }
  log->reset();
  std::printf("{\"records\":%llu,\"seconds\":%.3f,\"records_per_second\":%.0f,"
              "\"segments\":%zu,\"segment_bytes\":%llu,\"dir_bytes\":%llu%s}\n",
              static_cast<unsigned long long>(n), seconds, n / seconds, segments.size(),
              static_cast<unsigned long long>(segment_bytes),
              static_cast<unsigned long long>(bytes), prune_json.c_str());
  return 0;
}
