// Searches on the application's database (fields/finder.h).
#include "fields/finder.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "fields/db_values.h"
#include "fields/encryptor_access.h"
#include "fields/searchable.h"
#include "format/field_value.h"

namespace keyward::fields {

absl::StatusOr<std::unique_ptr<Finder>> Finder::New(FieldEncryptor& encryptor,
                                                    appdb::Database& db,
                                                    const std::string& table) {
  KW_RETURN_IF_ERROR(encryptor.schema().Table(table).status());
  KW_ASSIGN_OR_RETURN(auto columns, db.ListColumns(table));
  std::unique_ptr<Finder> f(new Finder(encryptor, db, table));
  std::vector<std::string> quoted;
  for (const auto& c : columns) {
    f->columns_.push_back(c.name);
    f->types_[c.name] = c.declared_type;
    quoted.push_back(appdb::Database::QuoteIdentifier(c.name));
  }
  f->select_ = absl::StrCat("SELECT ", absl::StrJoin(quoted, ", "), " FROM ",
                            appdb::Database::QuoteIdentifier(table), " WHERE ");
  return f;
}

appdb::Value Finder::ForColumn(const std::string& column, const FieldValue& value) const {
  auto t = types_.find(column);
  const std::string type = t == types_.end() ? "" : t->second;
  const bool binary = type == "blob" || type == "bytea";
  const bool integer = absl::StrContains(type, "int");
  const bool text = absl::StrContains(type, "char") || absl::StrContains(type, "text");
  if (const std::string* s = std::get_if<std::string>(&value)) {
    if (binary && format::LooksLikeFieldText(*s)) {
      absl::StatusOr<std::string> bytes = format::FieldFromText(*s);
      if (bytes.ok()) return appdb::Blob{std::move(*bytes)};
    }
    int64_t n;
    if (integer && absl::SimpleAtoi(*s, &n)) return n;
  }
  if (const int64_t* i = std::get_if<int64_t>(&value); i != nullptr && text) {
    return absl::StrCat(*i);
  }
  return ToDb(FieldValue(value));
}

absl::StatusOr<Finder::Result> Finder::Find(std::vector<FieldEncryptor::Condition> conditions,
                                            absl::string_view tenant, size_t limit) {
  KW_ASSIGN_OR_RETURN(FieldEncryptor::Search search,
                      enc_.PrepareSearch(table_, std::move(conditions), tenant));
  std::vector<FieldValue> params;
  std::string sql = absl::StrCat(select_, search.WhereClause(/*dollar=*/true, &params));
  // The same walk as WhereClause, for each placeholder's column.
  std::vector<appdb::Value> values;
  values.reserve(params.size());
  for (const auto& term : search.terms) {
    for (const auto& c : term) {
      for (const FieldValue& v : c.values) values.push_back(ForColumn(c.column, v));
    }
  }
  const TableSchema& table = *enc_.schema().Table(table_).value();
  absl::StrAppend(&sql, " ORDER BY ", appdb::Database::QuoteIdentifier(table.id_column));
  if (limit > 0) absl::StrAppend(&sql, " LIMIT ", limit);
  KW_ASSIGN_OR_RETURN(std::vector<appdb::ResultRow> rows, db_.Query(sql, values));
  Result out;
  out.columns = columns_;
  out.candidates = rows.size();
  // FieldEncryptor::ConfirmMatch for each candidate, with the conditions
  // planned and their canonical values computed once for all of them.
  const Searchable::Matcher matcher(EncryptorAccess::Search(enc_), search);
  for (appdb::ResultRow& r : rows) {
    FieldRow row;
    for (size_t i = 0; i < r.size() && i < columns_.size(); ++i) {
      row.emplace_hint(row.end(), columns_[i], ToField(std::move(r[i])));
    }
    absl::StatusOr<DecryptedRow> decrypted =
        enc_.DecryptRow(search.table, std::move(row), FieldEncryptor::Failure::kPartial);
    absl::StatusOr<bool> match =
        decrypted.ok() ? matcher.Matches(decrypted->row, decrypted->failed) : decrypted.status();
    if (!match.ok()) {
      if (out.unreadable++ == 0) out.first_unreadable = match.status();
    } else if (*match) {
      out.rows.push_back(std::move(*decrypted));
    } else {
      ++out.false_positives;
    }
  }
  return out;
}

}  // namespace keyward::fields
