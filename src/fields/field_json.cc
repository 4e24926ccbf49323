// FieldEncryptor's JSON documents: a JSON object read as a row, through the
// row methods, and written back.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keyward/errors.h"
#include "keyward/field_encryptor.h"
#include "nlohmann/json.hpp"

namespace keyward {
namespace {

using Json = nlohmann::ordered_json;

absl::StatusOr<Json> ParseObject(absl::string_view text) {
  Json doc = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError("expected a JSON object whose members are a row's columns");
  }
  return doc;
}

FieldValue FromJson(const Json& v) {
  if (v.is_null()) return std::monostate();
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u <= static_cast<uint64_t>(INT64_MAX)) return static_cast<int64_t>(u);
    return FieldJson{v.dump()};
  }
  if (v.is_number_float()) return v.get<double>();
  if (v.is_string()) return v.get<std::string>();
  return FieldJson{v.dump()};  // objects, arrays and booleans keep their JSON text
}

Json ToJson(const FieldValue& v) {
  if (std::holds_alternative<std::monostate>(v)) return nullptr;
  if (const int64_t* i = std::get_if<int64_t>(&v)) return *i;
  if (const double* d = std::get_if<double>(&v)) return *d;
  if (const std::string* s = std::get_if<std::string>(&v)) return *s;
  if (const FieldBytes* b = std::get_if<FieldBytes>(&v)) {
    // Binary form values only arise from kBytes encoding; JSON carries text.
    return Json::binary(std::vector<uint8_t>(b->bytes.begin(), b->bytes.end()));
  }
  Json parsed = Json::parse(std::get<FieldJson>(v).text, nullptr, false);
  if (parsed.is_discarded()) return std::get<FieldJson>(v).text;
  return parsed;
}

FieldRow RowOf(const Json& doc) {
  FieldRow row;
  for (auto it = doc.begin(); it != doc.end(); ++it) row[it.key()] = FromJson(it.value());
  return row;
}

// The document with its members replaced by `row`'s values, in the
// document's order; members `row` lacks become null.
std::string Rewrite(Json doc, const FieldRow& row) {
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    auto v = row.find(it.key());
    it.value() = v == row.end() ? Json(nullptr) : ToJson(v->second);
  }
  return doc.dump();
}

}  // namespace

absl::StatusOr<std::string> FieldEncryptor::EncryptJson(absl::string_view table,
                                                        absl::string_view json_object) {
  KW_ASSIGN_OR_RETURN(Json doc, ParseObject(json_object));
  KW_ASSIGN_OR_RETURN(FieldRow encrypted, EncryptRow(table, RowOf(doc)));
  return Rewrite(std::move(doc), encrypted);
}

absl::StatusOr<std::string> FieldEncryptor::DecryptJson(absl::string_view table,
                                                        absl::string_view json_object,
                                                        Failure failure) {
  KW_ASSIGN_OR_RETURN(Json doc, ParseObject(json_object));
  KW_ASSIGN_OR_RETURN(DecryptedRow decrypted, DecryptRow(table, RowOf(doc), failure));
  std::string out = Rewrite(std::move(doc), decrypted.row);
  if (decrypted.failed.empty()) return out;
  Json with_errors = Json::parse(out);
  Json errors = Json::object();
  for (const auto& [column, status] : decrypted.failed) {
    errors[column] = absl::StrCat(ErrorCodeName(GetErrorCode(status)), ": ", status.message());
  }
  with_errors["_keyward_errors"] = std::move(errors);
  return with_errors.dump();
}

}  // namespace keyward
