// Audit records for connections that never became calls: TLS handshakes
// that failed (no client certificate, one from another CA, an old protocol
// version).  gRPC reports these only through its log, so keywardd installs
// a log function that forwards every line to stderr and turns handshake
// failures into audit records — through KeyManagementService::AuditRefusal,
// so that a flood of failed handshakes is summarized rather than recorded
// one by one.  gRPC does not say which peer failed; the record's peer is
// empty (docs/audit.md).
#ifndef KEYWARD_SERVER_HANDSHAKE_AUDIT_H_
#define KEYWARD_SERVER_HANDSHAKE_AUDIT_H_

#include "server/key_management_service.h"

namespace keyward::server {

// Sends handshake failures to `service` (nullptr: stop; the service must
// outlive the installation).
void InstallHandshakeAuditHook(KeyManagementService* service);

}  // namespace keyward::server

#endif  // KEYWARD_SERVER_HANDSHAKE_AUDIT_H_
