// Table jobs (fields/table_job.h): batches read and verified outside a
// transaction, committed with the checkpoint inside one.
#include "fields/table_job.h"

#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "fields/db_values.h"
#include "fields/encryptor_access.h"
#include "format/field_value.h"
#include "keyward/errors.h"

namespace keyward::fields {
namespace {

using appdb::Database;
using appdb::Dialect;

constexpr char kJobTable[] = "keyward_field_jobs";

std::string Q(absl::string_view name) { return Database::QuoteIdentifier(name); }

struct Column {
  std::string name;
  bool binary = false;  // BLOB / BYTEA: field values in their binary form
};

class Job {
 public:
  Job(FieldEncryptor& enc, Database& db, const TableJobOptions& options)
      : enc_(enc), db_(db), options_(options), keys_(EncryptorAccess::Keys(enc)) {}

  absl::StatusOr<TableJobReport> Run(const std::string& table_name) {
    if (options_.batch < 1 || options_.batch > 10000) {
      return absl::InvalidArgumentError("--batch must be 1 to 10000 rows");
    }
    if (options_.rate < 0) return absl::InvalidArgumentError("--rate must not be negative");
    KW_ASSIGN_OR_RETURN(table_, enc_.schema().Table(table_name));
    report_.table = table_name;
    KW_RETURN_IF_ERROR(CheckColumns());
    KW_RETURN_IF_ERROR(db_.Execute(absl::StrCat(
        "CREATE TABLE IF NOT EXISTS ", kJobTable,
        " (job TEXT PRIMARY KEY, after_int BIGINT, after_text TEXT, rows_done BIGINT NOT NULL, "
        "rows_changed BIGINT NOT NULL, started TEXT NOT NULL)")).status());
    job_ = absl::StrCat(TableJobKindName(options_.kind), ":", enc_.schema().dataset(), ":",
                        table_name);
    // A checkpoint of another kind of job on this table is stale once this
    // one runs (say, encrypt resumed after a decrypt-table): forget it.
    for (TableJobKind other : {TableJobKind::kEncrypt, TableJobKind::kDecrypt, TableJobKind::kRotate}) {
      if (other == options_.kind || options_.dry_run) continue;
      KW_RETURN_IF_ERROR(db_.Execute(absl::StrCat("DELETE FROM ", kJobTable, " WHERE job = $1"),
                                     {absl::StrCat(TableJobKindName(other), ":",
                                                   enc_.schema().dataset(), ":", table_name)})
                             .status());
    }
    KW_RETURN_IF_ERROR(LoadCheckpoint());
    KW_ASSIGN_OR_RETURN(auto count, db_.Query(absl::StrCat("SELECT COUNT(*) FROM ", Q(table_name))));
    report_.rows = count.empty() ? 0 : static_cast<uint64_t>(std::get<int64_t>(count[0][0]));
    if (options_.kind == TableJobKind::kRotate && !options_.dry_run) {
      KW_RETURN_IF_ERROR(RotateKeys());
    }
    const absl::Time start = absl::Now();
    for (;;) {
      KW_ASSIGN_OR_RETURN(auto rows, ReadBatch());
      if (rows.empty()) break;
      KW_RETURN_IF_ERROR(ProcessBatch(rows));
      if (options_.rate > 0) {
        // Throttled: sleep off whatever this run is ahead of its rate.
        const double ahead = static_cast<double>(report_.scanned) / options_.rate -
                             absl::ToDoubleSeconds(absl::Now() - start);
        if (ahead > 0) absl::SleepFor(absl::Seconds(ahead));
      }
      if (options_.progress) {
        const double s = absl::ToDoubleSeconds(absl::Now() - start);
        options_.progress({done_, report_.rows, report_.changed,
                           s > 0 ? static_cast<double>(report_.scanned) / s : 0});
      }
    }
    if (!options_.dry_run) {
      if (options_.kind == TableJobKind::kRotate) KW_RETURN_IF_ERROR(RewrapOlderKeys());
      KW_RETURN_IF_ERROR(db_.Execute(absl::StrCat("DELETE FROM ", kJobTable, " WHERE job = $1"),
                                     {job_}).status());
    }
    report_.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    return report_;
  }

 private:
  absl::Status CheckColumns() {
    KW_ASSIGN_OR_RETURN(auto columns, db_.ListColumns(table_->name));
    std::map<std::string, std::string> types;
    for (const auto& c : columns) types[c.name] = c.declared_type;
    auto need = [&](const std::string& column, const std::string& what) -> absl::Status {
      if (!types.count(column)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "table ", table_->name, " has no column ", column, " (", what, " in the schema)"));
      }
      return absl::OkStatus();
    };
    KW_RETURN_IF_ERROR(need(table_->id_column, "its id_column"));
    const std::string& tenant = enc_.schema().tenant_column();
    if (!tenant.empty()) KW_RETURN_IF_ERROR(need(tenant, "tenant_column"));
    for (const FieldRule* rule : table_->EncryptedFields()) {
      KW_RETURN_IF_ERROR(need(rule->column, "an encrypted field"));
      const std::string& type = types[rule->column];
      Column c{rule->column, type == "blob" || type == "bytea"};
      if (db_.dialect() == Dialect::kPostgres && options_.kind != TableJobKind::kDecrypt &&
          !c.binary && type != "text" && type != "character varying") {
        return absl::FailedPreconditionError(absl::StrCat(
            "column ", table_->name, ".", rule->column, " is ", type,
            ", which cannot hold encrypted values: change it to text or bytea first (ALTER TABLE ",
            table_->name, " ALTER COLUMN ", rule->column, " TYPE text USING ", rule->column,
            "::text)"));
      }
      columns_.push_back(std::move(c));
    }
    if (columns_.size() > 32) {
      return absl::FailedPreconditionError(absl::StrCat(
          "table ", table_->name, " has ", columns_.size(),
          " encrypted fields; table jobs handle at most 32 per table"));
    }
    if (columns_.empty()) {
      return absl::FailedPreconditionError(absl::StrCat("the schema encrypts no column of table ",
                                                        table_->name, ": nothing to do"));
    }
    return absl::OkStatus();
  }

  absl::Status LoadCheckpoint() {
    KW_ASSIGN_OR_RETURN(auto rows,
                        db_.Query(absl::StrCat("SELECT after_int, after_text, rows_done FROM ",
                                               kJobTable, " WHERE job = $1"),
                                  {job_}));
    if (rows.empty()) return absl::OkStatus();
    report_.resumed = true;
    if (std::holds_alternative<int64_t>(rows[0][0])) {
      after_ = rows[0][0];
    } else if (std::holds_alternative<std::string>(rows[0][1])) {
      after_ = rows[0][1];
    }
    if (const int64_t* d = std::get_if<int64_t>(&rows[0][2])) done_ = static_cast<uint64_t>(*d);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<appdb::ResultRow>> ReadBatch() {
    std::vector<std::string> select = {Q(table_->id_column)};
    const std::string& tenant = enc_.schema().tenant_column();
    select.push_back(tenant.empty() ? std::string("NULL") : Q(tenant));
    for (const auto& c : columns_) select.push_back(Q(c.name));
    std::string sql = absl::StrCat("SELECT ", absl::StrJoin(select, ", "), " FROM ", Q(table_->name));
    std::vector<appdb::Value> params;
    // Rows without an id cannot be bound to one: they are never read here
    // (and a NULL would sort first and restart the scan).
    absl::StrAppend(&sql, " WHERE ", Q(table_->id_column), " IS NOT NULL");
    if (!std::holds_alternative<std::monostate>(after_)) {
      absl::StrAppend(&sql, " AND ", Q(table_->id_column), " > $1");
      params.push_back(after_);
    }
    absl::StrAppend(&sql, " ORDER BY ", Q(table_->id_column), " LIMIT ", options_.batch);
    return db_.Query(sql, params);
  }

  static absl::StatusOr<std::string> KeyText(const appdb::Value& v, const std::string& column) {
    if (const int64_t* i = std::get_if<int64_t>(&v)) return absl::StrCat(*i);
    if (const std::string* s = std::get_if<std::string>(&v)) return *s;
    return absl::FailedPreconditionError(absl::StrCat(
        "column ", column, " holds a ", appdb::ValueTypeName(v),
        ": id and tenant columns must hold integers or text"));
  }

  // The stored form for `column` (binary for BLOB/BYTEA columns).
  static absl::StatusOr<FieldValue> Stored(const Column& column, FieldValue encrypted) {
    const std::string* text = std::get_if<std::string>(&encrypted);
    if (!column.binary || text == nullptr) return encrypted;
    KW_ASSIGN_OR_RETURN(std::string binary, format::FieldFromText(*text));
    return FieldBytes{std::move(binary)};
  }

  // The new value of one field, or nullopt to leave it.
  absl::StatusOr<std::optional<FieldValue>> Transform(const FieldEncryptor::Location& where,
                                                      const Column& column,
                                                      const FieldValue& old) {
    if (std::holds_alternative<std::monostate>(old)) {
      ++report_.nulls;
      return std::nullopt;
    }
    // A cheap look at the prefix or first byte first: most values of a
    // plaintext table are not field values, and KeyRefOf builds an error
    // for each of those.
    const std::string* text = std::get_if<std::string>(&old);
    const FieldBytes* bytes = std::get_if<FieldBytes>(&old);
    const bool maybe = (text != nullptr && format::LooksLikeFieldText(*text)) ||
                       (bytes != nullptr && format::LooksLikeFieldBinary(bytes->bytes));
    const bool looks_encrypted = maybe && FieldEncryptor::KeyRefOf(old).ok();
    switch (options_.kind) {
      case TableJobKind::kEncrypt: {
        if (looks_encrypted) {
          // Already encrypted (an earlier run, or the application): it must
          // authenticate here, or it is left for a person to look at.
          KW_RETURN_IF_ERROR(enc_.DecryptValue(where, old).status());
          ++report_.already;
          return std::nullopt;
        }
        KW_ASSIGN_OR_RETURN(FieldValue text_form, enc_.EncryptValue(where, old));
        KW_ASSIGN_OR_RETURN(FieldValue fresh, Stored(column, std::move(text_form)));
        KW_RETURN_IF_ERROR(Verify(where, fresh, old));
        return fresh;
      }
      case TableJobKind::kDecrypt: {
        if (!looks_encrypted) {
          ++report_.already;
          return std::nullopt;
        }
        return enc_.DecryptValue(where, old);
      }
      case TableJobKind::kRotate: {
        if (!looks_encrypted) {
          return MakeError(absl::StatusCode::kFailedPrecondition, ErrorCode::kNotAKeywardMessage,
                           "a plaintext value: run `keyward fields encrypt-table` first");
        }
        KW_ASSIGN_OR_RETURN(uint32_t ref, FieldEncryptor::KeyRefOf(old));
        const FieldRule& rule = table_->fields.at(column.name);
        KW_ASSIGN_OR_RETURN(FieldKeys::Key current,
                            keys_.ForEncryption(KeySlot{enc_.schema().dataset(), rule.class_name,
                                                        enc_.schema().tenant_column().empty()
                                                            ? ""
                                                            : where.tenant}));
        if (ref == current.ref) {
          ++report_.already;
          return std::nullopt;
        }
        KW_ASSIGN_OR_RETURN(FieldValue plain, enc_.DecryptValue(where, old));
        KW_ASSIGN_OR_RETURN(FieldValue text_form, enc_.EncryptValue(where, plain));
        KW_ASSIGN_OR_RETURN(FieldValue fresh, Stored(column, std::move(text_form)));
        KW_RETURN_IF_ERROR(Verify(where, fresh, plain));
        return fresh;
      }
    }
    return absl::InternalError("unknown job kind");
  }

  // The new value must decrypt, here, to exactly what was there: the same
  // type and the same bytes (reals bit for bit, so a NaN verifies too).
  static bool SameValue(const FieldValue& a, const FieldValue& b) {
    if (a.index() != b.index()) return false;
    if (const double* x = std::get_if<double>(&a)) {
      return std::memcmp(x, &std::get<double>(b), sizeof(double)) == 0;
    }
    return a == b;
  }

  absl::Status Verify(const FieldEncryptor::Location& where, const FieldValue& fresh,
                      const FieldValue& original) {
    KW_ASSIGN_OR_RETURN(FieldValue back, enc_.DecryptValue(where, fresh));
    if (!SameValue(back, original)) {
      return absl::InternalError("the new value did not decrypt to the original (not written)");
    }
    return absl::OkStatus();
  }

  struct RowUpdate {
    appdb::Value id;
    appdb::Value tenant;  // as read: the values are bound to it
    std::vector<std::pair<size_t, FieldValue>> changes;  // column index, new value
    std::vector<FieldValue> old;                          // per column
  };

  absl::Status ProcessBatch(std::vector<appdb::ResultRow>& rows) {
    std::vector<RowUpdate> updates;
    for (auto& row : rows) {
      ++report_.scanned;
      FieldEncryptor::Location where;
      where.table = table_->name;
      absl::StatusOr<std::string> id = KeyText(row[0], table_->id_column);
      if (!id.ok()) {
        Fail(id.status());
        continue;
      }
      where.row_id = std::move(*id);
      if (!enc_.schema().tenant_column().empty()) {
        if (std::holds_alternative<std::monostate>(row[1])) {
          Fail(absl::InvalidArgumentError(absl::StrCat(
              "row ", where.row_id, " has no ", enc_.schema().tenant_column())));
          continue;
        }
        absl::StatusOr<std::string> tenant = KeyText(row[1], enc_.schema().tenant_column());
        if (!tenant.ok()) {
          Fail(tenant.status());
          continue;
        }
        where.tenant = std::move(*tenant);
      }
      RowUpdate u;
      u.id = row[0];
      u.tenant = row[1];
      bool row_failed = false;
      for (size_t i = 0; i < columns_.size(); ++i) {
        where.column = columns_[i].name;
        u.old.push_back(ToField(std::move(row[2 + i])));
        auto fresh = Transform(where, columns_[i], u.old.back());
        if (!fresh.ok()) {
          if (absl::IsUnavailable(fresh.status())) return fresh.status();  // keywardd is down
          Fail(absl::Status(fresh.status().code(),
                            absl::StrCat("row ", where.row_id, " column ", where.column, ": ",
                                         fresh.status().message())));
          row_failed = true;
          break;
        }
        if (fresh->has_value()) u.changes.emplace_back(i, std::move(**fresh));
      }
      if (!row_failed && !u.changes.empty()) updates.push_back(std::move(u));
    }
    after_ = rows.back()[0];
    done_ += rows.size();
    if (options_.dry_run) {
      report_.changed += updates.size();
      for (const auto& u : updates) report_.values_changed += u.changes.size();
      return absl::OkStatus();
    }
    return appdb::InTransaction(db_, [&]() -> absl::Status {
      uint64_t changed = 0;
      for (auto& u : updates) {
        const size_t values = u.changes.size();
        KW_ASSIGN_OR_RETURN(uint64_t n, Apply(u));
        if (n == 1) {
          ++changed;
          report_.values_changed += values;
        } else {
          ++report_.conflicts;
        }
      }
      report_.changed += changed;
      return SaveCheckpoint();
    });
  }

  absl::StatusOr<uint64_t> Apply(RowUpdate& u) {
    // One statement per set of changed columns, built once.
    uint32_t mask = 0;
    for (const auto& [i, v] : u.changes) mask |= 1u << i;
    std::string& sql = update_sql_[mask];
    if (sql.empty()) {
      const char* same = db_.dialect() == Dialect::kSqlite ? " IS " : " IS NOT DISTINCT FROM ";
      std::vector<std::string> sets, checks;
      size_t n = 0;
      for (const auto& [i, v] : u.changes) sets.push_back(absl::StrCat(Q(columns_[i].name), " = $", ++n));
      checks.push_back(absl::StrCat(Q(table_->id_column), " = $", ++n));
      for (const auto& [i, v] : u.changes) {
        checks.push_back(absl::StrCat(Q(columns_[i].name), same, "$", ++n));
      }
      // The values were bound to the tenant read; a row moved to another
      // tenant meanwhile is left to the application.
      if (!enc_.schema().tenant_column().empty()) {
        checks.push_back(absl::StrCat(Q(enc_.schema().tenant_column()), same, "$", ++n));
      }
      sql = absl::StrCat("UPDATE ", Q(table_->name), " SET ", absl::StrJoin(sets, ", "), " WHERE ",
                         absl::StrJoin(checks, " AND "));
    }
    std::vector<appdb::Value> params;
    params.reserve(1 + 2 * u.changes.size());
    for (auto& [i, v] : u.changes) params.push_back(ToDb(std::move(v)));
    params.push_back(std::move(u.id));
    for (const auto& [i, v] : u.changes) params.push_back(ToDb(std::move(u.old[i])));
    if (!enc_.schema().tenant_column().empty()) params.push_back(std::move(u.tenant));
    KW_ASSIGN_OR_RETURN(uint64_t n, db_.Execute(sql, params));
    if (n > 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          "an update by ", table_->id_column, " changed ", n, " rows of ", table_->name,
          ": the schema's id_column must be unique (the batch was rolled back)"));
    }
    return n;
  }

  absl::Status SaveCheckpoint() {
    appdb::Value after_int, after_text;
    if (std::holds_alternative<int64_t>(after_)) {
      after_int = after_;
    } else {
      after_text = after_;
    }
    return db_.Execute(absl::StrCat("INSERT INTO ", kJobTable,
                                    " (job, after_int, after_text, rows_done, rows_changed, started) "
                                    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (job) DO UPDATE SET "
                                    "after_int = excluded.after_int, after_text = excluded.after_text, "
                                    "rows_done = excluded.rows_done, "
                                    "rows_changed = excluded.rows_changed"),
                       {job_, after_int, after_text, static_cast<int64_t>(done_),
                        static_cast<int64_t>(report_.changed),
                        absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone())})
        .status();
  }

  void Fail(const absl::Status& s) {
    ++report_.failed;
    if (report_.first_failure.empty()) report_.first_failure = std::string(s.message());
  }

  // Rotation, before the scan: a class and tenant whose newest key is under
  // an older KEK version than the primary gets a new generation.
  absl::Status RotateKeys() {
    KW_ASSIGN_OR_RETURN(auto all, keys_.vault().List(enc_.schema().dataset(), std::nullopt));
    std::map<std::string, VaultKey> newest;
    for (auto& k : all) {
      auto& n = newest[SlotKey(k.slot)];
      if (k.generation > n.generation || n.ref == 0) n = k;
    }
    for (const auto& [slot, k] : newest) {
      KW_RETURN_IF_ERROR(CheckWrappedBelongs(k.wrapped, enc_.schema().key(), k.slot, k.ref));
      absl::StatusOr<WrappedKeyResult> rewrapped =
          keys_.client().ReWrapDataKey(k.wrapped, FieldKeyContext(k.slot, k.ref));
      if (GetErrorCode(rewrapped.status()) == ErrorCode::kTenantErased) continue;  // nothing to rotate
      KW_RETURN_IF_ERROR(rewrapped.status());
      if (rewrapped->key.key_version != k.kek_version) {
        KW_RETURN_IF_ERROR(keys_.NewGeneration(k.slot).status());
        ++report_.new_keys;
      }
    }
    keys_.Clear();
    return absl::OkStatus();
  }

  // Rotation, after the scan: every older key (still named by values the
  // application wrote meanwhile, or by failed rows) is rewrapped to the
  // primary version so older versions can be retired; then the key table
  // is reported to keywardd as a data set.
  absl::Status RewrapOlderKeys() {
    KW_ASSIGN_OR_RETURN(auto all, keys_.vault().List(enc_.schema().dataset(), std::nullopt));
    std::map<uint32_t, uint64_t> per_version;
    for (const auto& k : all) {
      KW_RETURN_IF_ERROR(CheckWrappedBelongs(k.wrapped, enc_.schema().key(), k.slot, k.ref));
      absl::StatusOr<WrappedKeyResult> rewrapped =
          keys_.client().ReWrapDataKey(k.wrapped, FieldKeyContext(k.slot, k.ref));
      if (GetErrorCode(rewrapped.status()) == ErrorCode::kTenantErased) continue;  // dead anyway
      KW_RETURN_IF_ERROR(rewrapped.status());
      if (rewrapped->key.key_version != k.kek_version) {
        KW_RETURN_IF_ERROR(
            keys_.vault().Rewrap(k.ref, rewrapped->wrapped, rewrapped->key.key_version));
        ++report_.rewrapped_keys;
      }
      ++per_version[rewrapped->key.key_version];
    }
    if (options_.admin != nullptr && !all.empty()) {
      DataSetReportInfo r;
      r.data_set = absl::StrCat(db_.RedactedUrl(), "#", kKeyTable, "/", enc_.schema().dataset());
      r.key_name = enc_.schema().key();
      r.rows_per_version = per_version;
      for (const auto& [v, n] : per_version) r.rows_total += n;
      KW_RETURN_IF_ERROR(options_.admin->ReportDataSet(r));
    }
    return absl::OkStatus();
  }

  FieldEncryptor& enc_;
  Database& db_;
  const TableJobOptions& options_;
  FieldKeys& keys_;
  const TableSchema* table_ = nullptr;
  std::vector<Column> columns_;
  std::map<uint32_t, std::string> update_sql_;  // by changed-column mask
  std::string job_;
  appdb::Value after_;
  uint64_t done_ = 0;
  TableJobReport report_;
};

}  // namespace

absl::string_view TableJobKindName(TableJobKind kind) {
  switch (kind) {
    case TableJobKind::kEncrypt: return "encrypt";
    case TableJobKind::kDecrypt: return "decrypt";
    case TableJobKind::kRotate: return "rotate";
  }
  return "?";
}

absl::StatusOr<TableJobReport> RunTableJob(FieldEncryptor& encryptor, appdb::Database& db,
                                           const std::string& table,
                                           const TableJobOptions& options) {
  return Job(encryptor, db, options).Run(table);
}

}  // namespace keyward::fields
