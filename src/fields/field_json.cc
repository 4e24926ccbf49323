// FieldEncryptor's JSON documents: a JSON object read as a row, through the
// row methods, and written back.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "keyward/errors.h"
#include "keyward/field_encryptor.h"
#include "absl/strings/escaping.h"
#include "format/field_value.h"
#include "nlohmann/json.hpp"

namespace keyward {
namespace {

using Json = nlohmann::ordered_json;

// Deeper documents are refused before parsing: the library's serializer
// and destructor recurse, and a row is never that deep.
constexpr int kMaxDepth = 128;

bool TooDeep(absl::string_view text) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

// Text that is not UTF-8 (a field's bytes are not checked) is replaced,
// not thrown on.
std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

absl::StatusOr<Json> ParseObject(absl::string_view text) {
  if (TooDeep(text)) {
    return absl::InvalidArgumentError(absl::StrCat("JSON nested deeper than ", kMaxDepth,
                                                   " levels is refused"));
  }
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
    return FieldJson{Dump(v)};
  }
  if (v.is_number_float()) return v.get<double>();
  if (v.is_string()) return v.get<std::string>();
  return FieldJson{Dump(v)};  // objects, arrays and booleans keep their JSON text
}

Json ToJson(const FieldValue& v) {
  if (std::holds_alternative<std::monostate>(v)) return nullptr;
  if (const int64_t* i = std::get_if<int64_t>(&v)) return *i;
  if (const double* d = std::get_if<double>(&v)) return *d;
  if (const std::string* s = std::get_if<std::string>(&v)) return *s;
  if (const FieldBytes* b = std::get_if<FieldBytes>(&v)) {
    // An encrypted value in binary form (Encoding::kBytes) travels in its
    // text form; other bytes as base64.
    if (format::LooksLikeFieldBinary(b->bytes)) return format::FieldToText(b->bytes);
    return absl::Base64Escape(b->bytes);
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
  return Dump(doc);
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
  return Dump(with_errors);
}

}  // namespace keyward
