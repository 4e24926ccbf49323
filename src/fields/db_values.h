// FieldValue (the SDK's) <-> appdb::Value (the database layer's), for the
// table jobs and searches that move values between the two.
#ifndef KEYWARD_FIELDS_DB_VALUES_H_
#define KEYWARD_FIELDS_DB_VALUES_H_

#include <string>
#include <utility>

#include "appdb/database.h"
#include "keyward/field_encryptor.h"

namespace keyward::fields {

inline FieldValue ToField(appdb::Value&& v) {
  switch (v.index()) {
    case 1: return std::get<int64_t>(v);
    case 2: return std::get<double>(v);
    case 3: return std::move(std::get<std::string>(v));
    case 4: return FieldBytes{std::move(std::get<appdb::Blob>(v).bytes)};
    default: return std::monostate();
  }
}

// JSON values are stored as their text.
inline appdb::Value ToDb(FieldValue&& v) {
  switch (v.index()) {
    case 1: return std::get<int64_t>(v);
    case 2: return std::get<double>(v);
    case 3: return std::move(std::get<std::string>(v));
    case 4: return appdb::Blob{std::move(std::get<FieldBytes>(v).bytes)};
    case 5: return std::move(std::get<FieldJson>(v).text);
    default: return std::monostate();
  }
}

}  // namespace keyward::fields

#endif  // KEYWARD_FIELDS_DB_VALUES_H_
