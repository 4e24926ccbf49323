// The names keywardd's API (proto/keyward/v1) and the CLI use for key
// purposes, version states, KEK protection and tenant states, and other
// wire constants.
// Defined once: keywardd's key model and the SDK both map their enums to
// these.
#ifndef KEYWARD_FORMAT_WIRE_NAMES_H_
#define KEYWARD_FORMAT_WIRE_NAMES_H_

#include "absl/strings/string_view.h"

namespace keyward::format::wire {

inline constexpr absl::string_view kPurposeEnvelopeEncryption = "envelope-encryption";
inline constexpr absl::string_view kPurposeDeterministicEncryption = "deterministic-encryption";
inline constexpr absl::string_view kPurposeBlindIndex = "blind-index";

inline constexpr absl::string_view kStateEnabled = "enabled";
inline constexpr absl::string_view kStateDecryptOnly = "decrypt-only";
inline constexpr absl::string_view kStateDisabled = "disabled";
inline constexpr absl::string_view kStatePendingDestruction = "pending-destruction";
inline constexpr absl::string_view kStateDestroyed = "destroyed";

inline constexpr absl::string_view kProtectionWrappedByRoot = "wrapped-by-root";
inline constexpr absl::string_view kProtectionHsmResident = "hsm-resident";

// Where a tenant stands under a key (EraseTenant's reply).
inline constexpr absl::string_view kTenantStateNone = "none";
inline constexpr absl::string_view kTenantStateActive = "active";
inline constexpr absl::string_view kTenantStateErased = "erased";

// The gRPC trailing metadata that carries a Keyward ErrorCode's name.
inline constexpr char kErrorCodeMetadata[] = "keyward-error-code";

}  // namespace keyward::format::wire

#endif  // KEYWARD_FORMAT_WIRE_NAMES_H_
