// FieldEncryptor (keyward/field_encryptor.h): values, rows and JSON
// documents through the field value format and the key vault.
#include "keyward/field_encryptor.h"

#include <openssl/crypto.h>

#include <atomic>
#include <cstring>

#include "absl/base/internal/endian.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "crypto/aead.h"
#include "crypto/random.h"
#include "fields/encryptor_access.h"
#include "fields/index_catalog.h"
#include "fields/searchable.h"
#include "fields/field_keys.h"
#include "fields/key_vault.h"
#include "format/field_value.h"
#include "keyward/errors.h"

namespace keyward {

using fields::FieldKeys;
using fields::KeySlot;

class FieldEncryptor::Impl {
 public:
  Impl(std::shared_ptr<const FieldSchema> schema, std::unique_ptr<FieldKeys> keys,
       std::unique_ptr<appdb::Database> catalog, Options options)
      : schema_(std::move(schema)),
        keys_(std::move(keys)),
        options_(options),
        derived_(options.cache_max_age, options.cache_entries),
        searchable_(schema_, *keys_, derived_, std::move(catalog), options.encoding) {
    keys_->set_on_clear([this] { derived_.Clear(); });
    for (const auto& [name, table] : schema_->tables()) {
      auto& columns = tables_[name];
      for (const FieldRule* f : table.EncryptedFields()) columns[f->column] = f;
    }
  }

  const FieldSchema& schema() const { return *schema_; }

  // The rule for `where`'s column (nullptr when the column is not
  // encrypted).  Looked up without building strings: this is on every
  // value's path.
  absl::StatusOr<const FieldRule*> Rule(const Location& where) {
    // Each thread remembers its last column: values of one column come in
    // runs, and this is on every value's path.
    struct Last {
      uint64_t owner = 0;
      std::string table, column;
      const FieldRule* rule = nullptr;
    };
    thread_local Last last;
    const FieldRule* rule;
    if (last.owner == id_ && last.table == where.table && last.column == where.column) {
      rule = last.rule;
    } else {
      auto table = tables_.find(where.table);
      if (table == tables_.end()) return schema_->Table(where.table).status();
      auto it = table->second.find(where.column);
      rule = it == table->second.end() ? nullptr : it->second;
      last.owner = id_;
      last.table = where.table;
      last.column = where.column;
      last.rule = rule;
    }
    if (rule == nullptr) return nullptr;
    if (where.row_id.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "encrypting ", where.table, ".", where.column, " needs the row's id (column ",
          schema_->tables().at(where.table).id_column, "): every value is bound to its row"));
    }
    if (!schema_->tenant_column().empty() && where.tenant.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "data set ", schema_->dataset(), " has a key per tenant: the row's ",
          schema_->tenant_column(), " is missing or empty"));
    }
    return rule;
  }

  absl::string_view Tenant(const Location& where) const {
    return schema_->tenant_column().empty() ? absl::string_view() : absl::string_view(where.tenant);
  }

  format::FieldWhere WhereOf(const Location& where) const {
    return format::FieldWhere(schema_->dataset(), where.table, where.column, Tenant(where),
                              where.row_id);
  }

  fields::SlotView SlotOf(const FieldRule& rule, const Location& where) const {
    return fields::SlotView(schema_->dataset(), rule.class_name, Tenant(where));
  }

  absl::StatusOr<FieldValue> Encrypt(const Location& where, const FieldValue& value) {
    KW_ASSIGN_OR_RETURN(const FieldRule* rule, Rule(where));
    if (rule == nullptr || std::holds_alternative<std::monostate>(value)) return value;
    KW_ASSIGN_OR_RETURN(FieldKeys::Key key, keys_->ForEncryption(SlotOf(*rule, where)));
    fields::EncodedValue encoded;
    fields::EncodeValue(value, &encoded);
    thread_local std::string binary;  // ciphertext only: not secret
    std::string bytes_out;
    std::string* out = options_.encoding == Encoding::kBytes ? &bytes_out : &binary;
    absl::Status sealed;
    if (rule->treatment == Treatment::kDeterministic) {
      absl::StatusOr<std::shared_ptr<const crypto::DeterministicAead>> daead =
          derived_.Deterministic(key, WhereOf(where));
      sealed = daead.ok() ? format::SealDeterministicFieldInto(**daead, key.ref, WhereOf(where),
                                                               encoded.type, encoded.payload, out)
                          : daead.status();
    } else {
      sealed = format::SealFieldInto(*key.aead, key.ref, WhereOf(where), encoded.type,
                                     encoded.payload, out);
    }
    OPENSSL_cleanse(encoded.number, sizeof(encoded.number));
    KW_RETURN_IF_ERROR(sealed);
    if (options_.encoding == Encoding::kBytes) return FieldBytes{std::move(bytes_out)};
    std::string text;
    format::FieldToTextInto(binary, &text);
    return text;
  }

  absl::StatusOr<FieldValue> Decrypt(const Location& where, const FieldValue& stored) {
    KW_ASSIGN_OR_RETURN(const FieldRule* rule, Rule(where));
    if (rule == nullptr || std::holds_alternative<std::monostate>(stored)) return stored;
    thread_local std::string from_text;  // ciphertext only: not secret
    absl::string_view binary;
    if (const std::string* s = std::get_if<std::string>(&stored)) {
      if (absl::Status b = format::FieldFromTextInto(*s, &from_text); !b.ok()) {
        return NotEncrypted(where, b);
      }
      binary = from_text;
    } else if (const FieldBytes* b = std::get_if<FieldBytes>(&stored)) {
      binary = b->bytes;
    } else {
      return NotEncrypted(where, absl::InvalidArgumentError(absl::StrCat(
                                     "it holds a ", TypeName(stored), ", not text or bytes")));
    }
    auto envelope = format::ParseField(binary);
    if (!envelope.ok()) return NotEncrypted(where, envelope.status());
    KW_ASSIGN_OR_RETURN(FieldKeys::Key key,
                        keys_->ForDecryption(SlotOf(*rule, where), envelope->key_ref));
    std::string payload;
    absl::StatusOr<format::FieldType> type;
    if (envelope->deterministic()) {
      KW_ASSIGN_OR_RETURN(std::shared_ptr<const crypto::DeterministicAead> daead,
                          derived_.Deterministic(key, WhereOf(where)));
      type = format::OpenDeterministicFieldInto(*daead, *envelope, WhereOf(where), &payload);
    } else {
      type = format::OpenFieldInto(*key.aead, *envelope, WhereOf(where), &payload);
    }
    if (!type.ok()) return type.status();
    return fields::DecodeValue(*type, std::move(payload));
  }

  static absl::string_view TypeName(const FieldValue& v) {
    switch (v.index()) {
      case 0: return "NULL";
      case 1: return "integer";
      case 2: return "real";
      case 3: return "text";
      case 4: return "bytes";
      default: return "JSON value";
    }
  }

  static absl::Status NotEncrypted(const Location& where, const absl::Status& why) {
    ErrorCode code = GetErrorCode(why);
    if (code == ErrorCode::kNone) code = ErrorCode::kNotAKeywardMessage;
    return MakeError(absl::StatusCode::kInvalidArgument, code,
                     absl::StrCat(where.table, ".", where.column, " of row ", where.row_id,
                                  " is not an encrypted field value (", why.message(),
                                  "); encrypt the table first (`keyward fields encrypt-table`)"));
  }

  // The row's id and tenant as the value format binds them.
  absl::StatusOr<Location> RowLocation(const TableSchema& table, const FieldRow& row) {
    Location where;
    where.table = table.name;
    auto id = row.find(table.id_column);
    if (id == row.end() || std::holds_alternative<std::monostate>(id->second)) {
      return absl::InvalidArgumentError(absl::StrCat("the row has no ", table.id_column,
                                                     " (the id column of ", table.name, ")"));
    }
    KW_ASSIGN_OR_RETURN(where.row_id, KeyText(id->second, table.id_column));
    if (!schema_->tenant_column().empty()) {
      auto t = row.find(schema_->tenant_column());
      if (t == row.end() || std::holds_alternative<std::monostate>(t->second)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the row (", table.id_column, " ", where.row_id, ") has no ",
            schema_->tenant_column(), ": data set ", schema_->dataset(), " has keys per tenant"));
      }
      KW_ASSIGN_OR_RETURN(where.tenant, KeyText(t->second, schema_->tenant_column()));
    }
    return where;
  }

  // Id and tenant values as text: integers in decimal, text as it is.
  static absl::StatusOr<std::string> KeyText(const FieldValue& v, const std::string& column) {
    if (const int64_t* i = std::get_if<int64_t>(&v)) return absl::StrCat(*i);
    if (const std::string* s = std::get_if<std::string>(&v)) return *s;
    return absl::InvalidArgumentError(absl::StrCat(
        "column ", column, " holds a ", TypeName(v), ": ids and tenants must be integers or text"));
  }

  absl::StatusOr<FieldRow> EncryptRow(absl::string_view table_name, FieldRow row) {
    KW_ASSIGN_OR_RETURN(const TableSchema* table, schema_->Table(table_name));
    KW_ASSIGN_OR_RETURN(Location where, RowLocation(*table, row));
    FieldRow out = std::move(row);
    KW_RETURN_IF_ERROR(searchable_.AddIndexValues(*table, out));
    for (const FieldRule* rule : table->EncryptedFields()) {
      auto it = out.find(rule->column);
      if (it == out.end()) continue;
      where.column = rule->column;
      KW_ASSIGN_OR_RETURN(it->second, Encrypt(where, it->second));
    }
    return out;
  }

  absl::StatusOr<DecryptedRow> DecryptRow(absl::string_view table_name, FieldRow row,
                                          Failure failure) {
    KW_ASSIGN_OR_RETURN(const TableSchema* table, schema_->Table(table_name));
    KW_ASSIGN_OR_RETURN(Location where, RowLocation(*table, row));
    DecryptedRow out;
    out.row = std::move(row);
    for (const FieldRule* rule : table->EncryptedFields()) {
      auto it = out.row.find(rule->column);
      if (it == out.row.end()) continue;
      where.column = rule->column;
      absl::StatusOr<FieldValue> v = Decrypt(where, it->second);
      if (v.ok()) {
        it->second = std::move(*v);
      } else if (failure == Failure::kPartial) {
        out.failed[rule->column] = v.status();
        out.row.erase(it);
      } else {
        return v.status();
      }
    }
    return out;
  }

  FieldKeys& keys() { return *keys_; }
  fields::Searchable& searchable() { return searchable_; }

  absl::StatusOr<std::optional<DecryptedRow>> ConfirmMatch(const Search& search,
                                                           FieldRow candidate) {
    KW_ASSIGN_OR_RETURN(const TableSchema* table, schema_->Table(search.table));
    // The conditions' columns first: most candidates of a blind index are
    // false positives, and their other fields need not be decrypted.
    {
      KW_ASSIGN_OR_RETURN(Location where, RowLocation(*table, candidate));
      FieldRow probe;
      for (const Condition& c : search.conditions) {
        for (const std::string& column : searchable_.ColumnsOf(*table, c.name)) {
          auto it = candidate.find(column);
          if (it == candidate.end() || probe.count(column)) continue;
          where.column = column;
          absl::StatusOr<FieldValue> opened = Decrypt(where, it->second);
          if (!opened.ok()) {
            fields::WipeRow(probe);
            return opened.status();
          }
          probe[column] = std::move(*opened);
        }
      }
      if (!schema_->tenant_column().empty()) {
        probe[schema_->tenant_column()] = FieldValue(where.tenant);
      }
      absl::StatusOr<bool> match = searchable_.Matches(search, probe, {});
      fields::WipeRow(probe);
      if (!match.ok()) return match.status();
      if (!*match) return std::optional<DecryptedRow>();
    }
    KW_ASSIGN_OR_RETURN(DecryptedRow row,
                        DecryptRow(search.table, std::move(candidate), Failure::kPartial));
    return std::optional<DecryptedRow>(std::move(row));
  }

 private:
  std::shared_ptr<const FieldSchema> schema_;
  std::unique_ptr<FieldKeys> keys_;
  Options options_;
  fields::DerivedKeys derived_;
  fields::Searchable searchable_;
  const uint64_t id_ = NextId();  // for the per-thread memo in Rule
  static uint64_t NextId() {
    static std::atomic<uint64_t> next{1};
    return next.fetch_add(1);
  }
  // Encrypted columns by table, for lookups by string_view.
  absl::flat_hash_map<std::string, absl::flat_hash_map<std::string, const FieldRule*>> tables_;
};

FieldEncryptor::FieldEncryptor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FieldEncryptor::~FieldEncryptor() = default;

absl::StatusOr<std::shared_ptr<FieldEncryptor>> FieldEncryptor::Create(
    std::shared_ptr<const FieldSchema> schema, std::shared_ptr<DataClient> client,
    const std::string& database_url, Options options) {
  if (schema == nullptr || client == nullptr) {
    return absl::InvalidArgumentError("FieldEncryptor needs a schema and a client");
  }
  if (options.cache_entries == 0 || options.cache_max_age <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("FieldEncryptor's cache needs entries and a max age above 0");
  }
  KW_ASSIGN_OR_RETURN(std::unique_ptr<appdb::Database> db, appdb::Database::Open(database_url));
  KW_ASSIGN_OR_RETURN(std::unique_ptr<fields::KeyVault> vault, fields::KeyVault::Open(std::move(db)));
  KW_ASSIGN_OR_RETURN(std::unique_ptr<appdb::Database> catalog, appdb::Database::Open(database_url));
  KW_RETURN_IF_ERROR(fields::EnsureIndexTable(*catalog));
  auto keys = std::make_unique<FieldKeys>(schema->key(), std::move(client), std::move(vault),
                                          CacheLimits{options.cache_max_age, UINT64_MAX,
                                                      UINT64_MAX, options.cache_entries});
  return std::shared_ptr<FieldEncryptor>(
      new FieldEncryptor(std::make_unique<Impl>(std::move(schema), std::move(keys),
                                                std::move(catalog), options)));
}

const FieldSchema& FieldEncryptor::schema() const { return impl_->schema(); }

absl::StatusOr<FieldValue> FieldEncryptor::EncryptValue(const Location& where,
                                                        const FieldValue& value) {
  return impl_->Encrypt(where, value);
}

absl::StatusOr<FieldValue> FieldEncryptor::DecryptValue(const Location& where,
                                                        const FieldValue& stored) {
  return impl_->Decrypt(where, stored);
}

absl::StatusOr<FieldRow> FieldEncryptor::EncryptRow(absl::string_view table, FieldRow row) {
  return impl_->EncryptRow(table, std::move(row));
}

absl::StatusOr<DecryptedRow> FieldEncryptor::DecryptRow(absl::string_view table, FieldRow row,
                                                        Failure failure) {
  return impl_->DecryptRow(table, std::move(row), failure);
}

absl::StatusOr<FieldEncryptor::Search> FieldEncryptor::PrepareSearch(
    absl::string_view table, std::vector<Condition> conditions, absl::string_view tenant) {
  return impl_->searchable().Prepare(table, std::move(conditions), tenant);
}

absl::StatusOr<std::optional<DecryptedRow>> FieldEncryptor::ConfirmMatch(const Search& search,
                                                                         FieldRow candidate) {
  return impl_->ConfirmMatch(search, std::move(candidate));
}

std::string FieldEncryptor::Search::WhereClause(bool dollar, std::vector<FieldValue>* params,
                                                int first) const {
  std::string out;
  int n = first;
  for (const auto& term : terms) {
    if (!out.empty()) out += " AND ";
    if (term.empty()) {
      out += "1 = 0";  // nothing can match (no key was ever made for it)
      continue;
    }
    out += "(";
    bool first_column = true;
    for (const SearchColumn& c : term) {
      if (!first_column) out += " OR ";
      first_column = false;
      absl::StrAppend(&out, appdb::Database::QuoteIdentifier(c.column), " IN (");
      for (size_t i = 0; i < c.values.size(); ++i) {
        if (i > 0) out += ", ";
        if (dollar) {
          absl::StrAppend(&out, "$", n++);
        } else {
          out += "?";
        }
        params->push_back(c.values[i]);
      }
      out += ")";
    }
    out += ")";
  }
  return out;
}

absl::StatusOr<uint32_t> FieldEncryptor::KeyRefOf(const FieldValue& stored) {
  std::string from_text;
  absl::string_view binary;
  if (const std::string* s = std::get_if<std::string>(&stored)) {
    KW_ASSIGN_OR_RETURN(from_text, format::FieldFromText(*s));
    binary = from_text;
  } else if (const FieldBytes* b = std::get_if<FieldBytes>(&stored)) {
    binary = b->bytes;
  } else {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kNotAKeywardMessage,
                     "not an encrypted field value (neither text nor bytes)");
  }
  KW_ASSIGN_OR_RETURN(format::FieldEnvelope e, format::ParseField(binary));
  return e.key_ref;
}

}  // namespace keyward

namespace keyward::fields {

FieldKeys& EncryptorAccess::Keys(FieldEncryptor& encryptor) { return encryptor.impl_->keys(); }

Searchable& EncryptorAccess::Search(FieldEncryptor& encryptor) {
  return encryptor.impl_->searchable();
}

}  // namespace keyward::fields
