// `keyward audit export`: the audit log's records as JSON lines for a SIEM,
// once or following the log, resumable by record index (docs/audit.md,
// "Exporting for a SIEM").
#ifndef KEYWARD_CLI_AUDIT_EXPORT_H_
#define KEYWARD_CLI_AUDIT_EXPORT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "cli/cli.h"
#include "keyward/admin_client.h"

namespace keyward::cli {

struct AuditExportOptions {
  // The filters (from_index and limit are the export's own).  Any filter
  // makes the export "filtered": its output starts with a header line
  // naming them.
  AuditQuery query;
  std::string output;  // FILE, or "-" for stdout
  bool follow = false;  // keep reading new records until SIGINT/SIGTERM
  bool append = false;  // continue FILE after its last record
  std::optional<uint64_t> from_index;
  std::string server;  // the replica whose log to read ("host:port")
};

// Writes the records; returns OK also when a follow is stopped by a signal
// (after printing the index to resume from on stderr).  Errors: usage
// (exit 2) for inconsistent flags or an --append that would duplicate,
// skip or mislabel records; kDataLoss when keywardd's records do not
// continue the ones already exported; the connection's and the file's.
absl::Status RunAuditExport(Globals& globals, const AuditExportOptions& options);

}  // namespace keyward::cli

#endif  // KEYWARD_CLI_AUDIT_EXPORT_H_
