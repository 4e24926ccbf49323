// Handlers: rotation and re-encryption — header rewraps, data set reports,
// drill samples.
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keystore/key_model.h"
#include "kms/batch_rewrap.h"
#include "server/batch_items.h"
#include "server/convert.h"
#include "server/key_management_service.h"
#include "server/message_headers.h"

namespace keyward::server {

absl::Status KeyManagementService::RewrapMessageHeader(Call& call,
                                                       const v1::RewrapMessageHeaderRequest& req,
                                                       v1::RewrapMessageHeaderResponse* resp) {
  // The header names its key; rewrap to that key's primary version.
  KW_ASSIGN_OR_RETURN(format::Header header, ReadableHeader(req.header(), &call));
  KW_RETURN_IF_ERROR(call.Authorize(header.key.key_name, header.context, header.key.key_version));
  kms::RewrapOptions options;
  options.expected_context = FromProto(req.encryption_context());
  auto results = kms::RewrapHeaders(core_, {req.header()}, {false}, {header.key.key_name},
                                    options);
  // Not KW_ASSIGN_OR_RETURN: GCC 12 sees the moved-from StatusOr as maybe
  // uninitialized (-Wmaybe-uninitialized).
  if (!results[0].ok()) return results[0].status();
  kms::RewrappedHeader& rewrapped = *results[0];
  call.set_version(rewrapped.key.key_version);
  ToProto(rewrapped.key, resp->mutable_key());
  resp->set_header(std::move(rewrapped.header));
  return absl::OkStatus();
}

absl::Status KeyManagementService::BatchRewrapMessageHeaders(
    Call& call, const v1::BatchRewrapMessageHeadersRequest& req,
    v1::BatchRewrapMessageHeadersResponse* resp) {
  const int n = req.headers_size();
  if (n < 1) return absl::InvalidArgumentError("a batch holds 1 to 10000 headers, got none");
  // Each header is decided on its own, on the key it names.
  std::vector<std::string> headers(req.headers().begin(), req.headers().end());
  BatchItems items(call, n, "header");
  KW_RETURN_IF_ERROR(items.ReadAndDecide([&](int i) -> absl::StatusOr<BatchItem> {
    KW_ASSIGN_OR_RETURN(format::Header h, ReadableHeader(headers[static_cast<size_t>(i)]));
    return BatchItem{std::move(h.key.key_name), std::move(h.context)};
  }));
  std::vector<bool> skip(headers.size(), false);
  std::vector<std::string> header_keys(headers.size());
  for (int i = 0; i < n; ++i) {
    if (items.allowed(i)) {
      header_keys[static_cast<size_t>(i)] = items.item(i).key;
    } else {
      skip[static_cast<size_t>(i)] = true;
    }
  }
  kms::RewrapOptions options;
  int since_yield = 0;
  options.between_headers = [&] {
    if (++since_yield % 64 == 0) call.Yield();
  };
  auto results = kms::RewrapHeaders(core_, headers, skip, header_keys, options);
  resp->mutable_results()->Reserve(n);
  for (int i = 0; i < n; ++i) {
    v1::RewrapResult* out = resp->add_results();
    if (items.AnswerRefused(i, out)) continue;
    items.Answer(results[static_cast<size_t>(i)], out,
                 [](kms::RewrappedHeader& rewrapped, v1::RewrapResult* result) {
                   result->set_header(std::move(rewrapped.header));
                   ToProto(rewrapped.key, result->mutable_key());
                 });
  }
  items.Finish();
  return absl::OkStatus();
}

absl::Status KeyManagementService::ReportDataSet(Call& call, const v1::DataSetReport& req,
                                                 v1::DataSetReport* resp) {
  KW_RETURN_IF_ERROR(call.Authorize(req.key_name(), {}));
  keystore::DataSetReport r;
  r.data_set = req.data_set();
  r.key_name = req.key_name();
  for (const auto& [version, rows] : req.rows_per_version()) r.rows_per_version[version] = rows;
  r.rows_total = req.rows_total();
  r.reported_by = call.principal();
  call.set_detail(absl::StrCat("data set ", Bounded(r.data_set, 200), ": ", r.rows_total, " rows"));
  KW_RETURN_IF_ERROR(core_->ReportDataSet(r));
  *resp = req;
  resp->set_reported_by(call.principal());
  resp->set_reported_unix_micros(absl::ToUnixMicros(absl::Now()));
  return absl::OkStatus();
}

absl::Status KeyManagementService::ListDataSets(Call& call, const v1::ListDataSetsRequest& req,
                                                v1::ListDataSetsResponse* resp) {
  KW_RETURN_IF_ERROR(call.Authorize(req.key_name(), {}));
  KW_ASSIGN_OR_RETURN(auto reports, core_->ListDataSetReports(req.key_name()));
  for (const auto& r : reports) {
    v1::DataSetReport* out = resp->add_reports();
    out->set_data_set(r.data_set);
    out->set_key_name(r.key_name);
    for (const auto& [version, rows] : r.rows_per_version) {
      (*out->mutable_rows_per_version())[version] = rows;
    }
    out->set_rows_total(r.rows_total);
    out->set_reported_unix_micros(absl::ToUnixMicros(r.reported));
    out->set_reported_by(r.reported_by);
  }
  return absl::OkStatus();
}

absl::Status KeyManagementService::GetDrillSamples(Call& call,
                                                   const v1::GetDrillSamplesRequest& req,
                                                   v1::GetDrillSamplesResponse* resp) {
  KW_RETURN_IF_ERROR(call.Authorize(req.key_name(), {}));
  KW_ASSIGN_OR_RETURN(keystore::Key key, core_->GetKey(req.key_name()));
  for (const keystore::KeyVersion& v : key.versions) {
    v1::DrillSample* out = resp->add_samples();
    out->set_version(v.version);
    out->set_state(std::string(keystore::VersionStateName(v.state)));
    out->set_message(v.drill_sample);
    out->set_expected_plaintext(kms::KeyService::DrillPlaintext(key.name, v.version));
  }
  return absl::OkStatus();
}

}  // namespace keyward::server
