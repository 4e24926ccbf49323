// Handlers: tenant erasure.  The tenant travels as the call's encryption
// context ({keyward:tenant: T}), so the policy can put conditions on it and
// the audit record holds it only as its keyed hash, like every context
// value; nothing here writes it anywhere else.
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/status_macros.h"
#include "format/wire_names.h"
#include "server/key_management_service.h"

namespace keyward::server {
namespace {

absl::string_view StateName(kms::TenantKeyState state) {
  switch (state) {
    case kms::TenantKeyState::kNone:
      return format::wire::kTenantStateNone;
    case kms::TenantKeyState::kActive:
      return format::wire::kTenantStateActive;
    case kms::TenantKeyState::kErased:
      return format::wire::kTenantStateErased;
  }
  return "unknown";
}

std::string Time(const std::optional<absl::Time>& t) {
  return t ? absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", *t, absl::UTCTimeZone()) : "?";
}

void ToProto(kms::TenantKeyState state_before, const kms::TenantKeyStatus& status,
             v1::TenantErasure* out) {
  out->set_state_before(std::string(StateName(state_before)));
  if (status.created) out->set_created_unix_micros(absl::ToUnixMicros(*status.created));
  if (status.erased) out->set_erased_unix_micros(absl::ToUnixMicros(*status.erased));
  out->set_erased_by(status.erased_by);
}

}  // namespace

absl::Status KeyManagementService::EraseTenant(Call& call, const v1::EraseTenantRequest& req,
                                               v1::TenantErasure* resp) {
  // Decided and acted on the same key, with the tenant as the context.
  const EncryptionContext context{{kTenantContextKey, req.tenant()}};
  KW_RETURN_IF_ERROR(call.Authorize(req.key_name(), context));
  resp->set_dry_run(req.dry_run());
  if (req.dry_run()) {
    KW_ASSIGN_OR_RETURN(kms::TenantKeyStatus status,
                        core_->GetTenantStatus(req.key_name(), req.tenant()));
    call.set_detail(absl::StrCat("dry run, nothing erased: the tenant is ",
                                 StateName(status.state)));
    ToProto(status.state, status, resp);
    return absl::OkStatus();
  }
  // Irreversible: the record that it is about to happen is durable first.
  KW_RETURN_IF_ERROR(call.RecordIntent(
      "erasing the tenant's key under this key (irreversible); the outcome follows under this "
      "request id"));
  absl::StatusOr<kms::TenantErasure> erasure =
      core_->EraseTenant(req.key_name(), req.tenant(), call.principal());
  if (!erasure.ok()) {
    // Say in the record whether the key is gone anyway (a failed scrub, a
    // store error after the commit): the error itself is not recorded.
    auto now = core_->GetTenantStatus(req.key_name(), req.tenant());
    call.set_detail(now.ok() && now->state == kms::TenantKeyState::kErased
                        ? "the erasure failed to finish, but the tenant's key is erased"
                        : "the erasure failed; the tenant's key may not be erased");
    return erasure.status();
  }
  switch (erasure->state_before) {
    case kms::TenantKeyState::kActive:
      call.set_detail("erased: the tenant's key is destroyed");
      break;
    case kms::TenantKeyState::kNone:
      call.set_detail("erased: the tenant had no key; none can be made for it from now on");
      break;
    case kms::TenantKeyState::kErased:
      call.set_detail(absl::StrCat("already erased on ", Time(erasure->status.erased), " by ",
                                   erasure->status.erased_by, "; nothing changed"));
      break;
  }
  ToProto(erasure->state_before, erasure->status, resp);
  return absl::OkStatus();
}

}  // namespace keyward::server
