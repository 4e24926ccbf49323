// The version retirement gate of KeyService and its evidence: data set
// reports (rows left on each version) and the last decrypt of a version.
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kms/key_service.h"
#include "kms/version_errors.h"

namespace keyward::kms {

using keystore::Key;
using keystore::KeyVersion;

absl::Status KeyService::CheckRetirement(absl::string_view name, uint32_t version) {
  KW_ASSIGN_OR_RETURN(Key key, GetKey(name));
  const KeyVersion* v = key.FindVersion(version);
  if (v == nullptr) return NoSuchVersion(name, version);
  KW_ASSIGN_OR_RETURN(auto reports, store_->ListDataSetReports(name));
  for (const keystore::DataSetReport& r : reports) {
    auto it = r.rows_per_version.find(version);
    if (it != r.rows_per_version.end() && it->second > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "key ", name, " version ", version, " still has ", it->second,
          " row(s) in data set ", r.data_set, " (report of ", HumanTime(r.reported),
          "); re-encrypt them first (`keyward reencrypt ...`) or pass --force"));
    }
  }
  if (v->usage.last_decrypt &&
      options_.clock->Now() - *v->usage.last_decrypt < options_.retirement_quiet_period) {
    return absl::FailedPreconditionError(absl::StrCat(
        "key ", name, " version ", version, " served a decrypt at ",
        HumanTime(*v->usage.last_decrypt), ", within the quiet period of ",
        absl::FormatDuration(options_.retirement_quiet_period),
        ": something still reads data under it; wait, re-encrypt, or pass --force"));
  }
  return absl::OkStatus();
}

absl::Status KeyService::ReportDataSet(keystore::DataSetReport report) {
  KW_ASSIGN_OR_RETURN(Key key, GetKey(report.key_name));
  if (report.data_set.empty() || report.data_set.size() > 1024) {
    return absl::InvalidArgumentError("a data set name is 1 to 1024 bytes");
  }
  for (const auto& [version, rows] : report.rows_per_version) {
    if (key.FindVersion(version) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the report counts rows on version ", version, " of key ", report.key_name,
          ", which does not exist"));
    }
  }
  report.reported = options_.clock->Now();
  return store_->PutDataSetReport(report);
}

absl::StatusOr<std::vector<keystore::DataSetReport>> KeyService::ListDataSetReports(
    absl::string_view name) {
  KW_RETURN_IF_ERROR(GetKey(name).status());
  return store_->ListDataSetReports(name);
}

}  // namespace keyward::kms
