// Audit records for connections that never became calls: TLS handshakes
// that failed (no client certificate, one from another CA, an old protocol
// version).  gRPC reports these only through its log, so keywardd installs
// a log function that forwards every line to stderr and turns handshake
// failures into audit records.  gRPC does not say which peer failed; the
// record's peer is empty (docs/audit.md).
#ifndef KEYWARD_SERVER_HANDSHAKE_AUDIT_H_
#define KEYWARD_SERVER_HANDSHAKE_AUDIT_H_

#include "audit/audit_log.h"

namespace keyward::server {

// Sends handshake failures to `log` (nullptr: stop; the log must outlive
// the installation).
void InstallHandshakeAuditHook(audit::AuditLog* log);

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_HANDSHAKE_AUDIT_H_
