// Blind index rebuild and retire (fields/index_job.h).
#include "fields/index_job.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "fields/db_values.h"
#include "fields/encryptor_access.h"
#include "fields/index_catalog.h"
#include "format/field_value.h"
#include "keyward/errors.h"

namespace keyward::fields {
namespace {

using appdb::Database;

std::string Q(absl::string_view name) { return Database::QuoteIdentifier(name); }

// "kw_idx_" and 16 hex digits of SHA-256(table, column): unique per column,
// and short enough for PostgreSQL's 63-byte names.
std::string SqlIndexName(absl::string_view table, absl::string_view column) {
  std::string input = absl::StrCat(table.size(), ":", table, column);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return absl::StrCat("kw_idx_", absl::BytesToHexString(absl::string_view(
                                     reinterpret_cast<const char*>(digest), 8)));
}

absl::StatusOr<std::string> KeyText(const appdb::Value& v, const std::string& column) {
  if (const int64_t* i = std::get_if<int64_t>(&v)) return absl::StrCat(*i);
  if (const std::string* s = std::get_if<std::string>(&v)) return *s;
  return absl::FailedPreconditionError(absl::StrCat(
      "column ", column, " holds a ", appdb::ValueTypeName(v),
      ": id and tenant columns must hold integers or text"));
}

// One row's new index value, and the id and fields as read (the update
// applies only if they are unchanged).
struct Computed {
  appdb::Value value;
  std::vector<appdb::Value> key;
};

class Rebuild {
 public:
  Rebuild(FieldEncryptor& enc, Database& db, const TableSchema& table,
          const IndexJobOptions& options)
      : enc_(enc),
        db_(db),
        table_(table),
        options_(options),
        search_(EncryptorAccess::Search(enc)),
        keys_(EncryptorAccess::Keys(enc)) {}

  absl::StatusOr<IndexJobReport::Index> Run(const BlindIndex& index) {
    IndexJobReport::Index report;
    report.name = index.name;
    const absl::Time start = absl::Now();
    auto bits = options_.bits.find(index.name);
    if (bits == options_.bits.end()) {
      return absl::InvalidArgumentError(absl::StrCat("no bits given for index ", index.name,
                                                     " (resolve auto with the planner)"));
    }
    const std::string& dataset = enc_.schema().dataset();
    // The data keys the new version would use: each class's current one.
    std::map<std::string, uint32_t> refs;
    for (const std::string& col : index.columns) {
      const std::string& cls = table_.fields.at(col).class_name;
      if (refs.count(cls)) continue;
      KW_ASSIGN_OR_RETURN(FieldKeys::Key key, keys_.ForEncryption(SlotView(dataset, cls, "")));
      refs[cls] = key.ref;
    }
    KW_ASSIGN_OR_RETURN(std::vector<IndexVersion> versions,
                        LoadIndexVersions(db_, dataset, table_.name));
    KW_RETURN_IF_ERROR(ValidateIndexVersions(enc_.schema(), table_, versions));
    const IndexVersion* active = nullptr;
    std::optional<IndexVersion> building;
    int64_t last = 0;
    for (const IndexVersion& v : versions) {
      if (v.index != index.name) continue;
      last = std::max(last, v.version);
      if (v.state == IndexState::kActive) active = &v;
      if (v.state == IndexState::kBuilding) building = v;
    }
    const auto current = [&](const IndexVersion& v) {
      return v.SameSpec(index, bits->second) && v.key_refs == refs;
    };
    report.action = "built";
    if (building.has_value() && !current(*building)) {
      // Started under another spec or key: abandon it for a current one.
      KW_RETURN_IF_ERROR(SetIndexStateFrom(db_, dataset, table_.name, index.name,
                                           building->version, IndexState::kBuilding,
                                           IndexState::kRetired)
                             .status());
      building.reset();
      report.action = "restarted";
    } else if (building.has_value()) {
      report.action = "resumed";
    }
    if (!building.has_value() && active != nullptr && current(*active)) {
      // Up to date; still fill the rows left NULL (a run that found
      // failures, a writer that was paused longer than the refresh).
      report.action = "up to date";
      report.version = active->version;
      report.column = active->column;
      IndexVersion v = *active;
      v.checkpoint = appdb::Value();
      KW_RETURN_IF_ERROR(CatchUp(v, &report, start));
      report.seconds = absl::ToDoubleSeconds(absl::Now() - start);
      return report;
    }
    bool fresh = false;
    if (!building.has_value()) {
      IndexVersion v;
      v.index = index.name;
      v.version = last + 1;
      v.column = IndexColumnName(index.name, v.version);
      v.columns = index.columns;
      v.transforms = index.transforms;
      v.bits = bits->second;
      v.key_refs = refs;
      v.state = IndexState::kBuilding;
      KW_RETURN_IF_ERROR(CheckColumnIsFree(v.column));
      // Recorded before the column exists: a column is only ever added for
      // a version the catalog names, and retire drops only those.
      KW_RETURN_IF_ERROR(InsertIndexVersion(db_, dataset, table_.name, v));
      building = std::move(v);
      fresh = true;
    }
    KW_RETURN_IF_ERROR(EnsureColumn(building->column));
    search_.Reload();
    report.version = building->version;
    report.column = building->column;
    if (active != nullptr) report.retired_column = active->column;
    KW_ASSIGN_OR_RETURN(auto count, db_.Query(absl::StrCat("SELECT COUNT(*) FROM ", Q(table_.name))));
    report.rows = count.empty() ? 0 : static_cast<uint64_t>(std::get<int64_t>(count[0][0]));

    // Writers reload the versions within kIndexRefreshSeconds.  Before
    // that, one could update a row the scan has filled without updating the
    // new column, leaving a stale value no later pass would notice: wait.
    if (fresh) absl::SleepFor(absl::Seconds(kIndexRefreshSeconds));
    KW_RETURN_IF_ERROR(Scan(*building, /*catch_up=*/false, &report, start));
    // Rows a writer inserted before it saw the new version are the NULL
    // ones left; by now every writer has seen it.
    absl::SleepFor(absl::Seconds(kIndexRefreshSeconds));
    building->checkpoint = appdb::Value();
    KW_RETURN_IF_ERROR(CatchUp(*building, &report, start));
    if (report.failed > 0 || report.conflicts_left > 0) {
      // Not made active: searches keep using the old version too, and the
      // next run fills what is missing.
      report.action = "incomplete";
      report.seconds = absl::ToDoubleSeconds(absl::Now() - start);
      return report;
    }
    KW_RETURN_IF_ERROR(appdb::InTransaction(db_, [&]() -> absl::Status {
      KW_ASSIGN_OR_RETURN(bool flipped,
                          SetIndexStateFrom(db_, dataset, table_.name, index.name,
                                            building->version, IndexState::kBuilding,
                                            IndexState::kActive));
      if (!flipped) {
        return absl::AbortedError(absl::StrCat(
            "index ", index.name, " version ", building->version,
            " was changed by another rebuild meanwhile; run the command again"));
      }
      return RetireOthers(db_, dataset, table_.name, index.name, building->version);
    }));
    search_.Reload();
    report.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    return report;
  }

  // Catch-up passes until one meets no row changed meanwhile (at most 5).
  absl::Status CatchUp(IndexVersion& v, IndexJobReport::Index* report, absl::Time start) {
    for (int pass = 0; pass < 5; ++pass) {
      const uint64_t before = report->conflicts;
      v.checkpoint = appdb::Value();
      KW_RETURN_IF_ERROR(Scan(v, /*catch_up=*/true, report, start));
      report->conflicts_left = report->conflicts - before;
      if (report->conflicts_left == 0) break;
    }
    return absl::OkStatus();
  }

 private:
  // A new version's column must not be one of the application's: free, or
  // present with nothing in it (created by the application's DDL for the
  // index, as docs/fields.md allows).
  absl::Status CheckColumnIsFree(const std::string& column) {
    KW_ASSIGN_OR_RETURN(auto columns, db_.ListColumns(table_.name));
    for (const auto& c : columns) {
      if (c.name != column) continue;
      KW_ASSIGN_OR_RETURN(auto used, db_.Query(absl::StrCat("SELECT COUNT(", Q(column), ") FROM ",
                                                            Q(table_.name))));
      if (!used.empty() && std::get<int64_t>(used[0][0]) != 0) {
        return absl::FailedPreconditionError(absl::StrCat(
            "table ", table_.name, " already has a column ", column,
            " holding values, which no index version of Keyward's names: rename the index in "
            "the schema (its columns are NAME and NAME_vN)"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status EnsureColumn(const std::string& column) {
    KW_ASSIGN_OR_RETURN(auto columns, db_.ListColumns(table_.name));
    bool exists = false;
    for (const auto& c : columns) exists = exists || c.name == column;
    if (!exists) {
      KW_RETURN_IF_ERROR(db_.Execute(absl::StrCat("ALTER TABLE ", Q(table_.name), " ADD COLUMN ",
                                                  Q(column), " BIGINT"))
                             .status());
    }
    // PostgreSQL builds it without blocking writes (outside a transaction).
    const bool pg = db_.dialect() == appdb::Dialect::kPostgres;
    return db_
        .Execute(absl::StrCat("CREATE INDEX ", pg ? "CONCURRENTLY " : "", "IF NOT EXISTS ",
                              Q(SqlIndexName(table_.name, column)), " ON ", Q(table_.name), " (",
                              Q(column), ")"))
        .status();
  }

  // One pass: every row (after the checkpoint) or, for the catch-up, the
  // rows whose index value is NULL although none of its fields is.
  absl::Status Scan(IndexVersion& v, bool catch_up, IndexJobReport::Index* report,
                    absl::Time start) {
    const std::string& dataset = enc_.schema().dataset();
    const std::string& tenant = enc_.schema().tenant_column();
    std::vector<std::string> select = {Q(table_.id_column),
                                       tenant.empty() ? std::string("NULL") : Q(tenant)};
    for (const std::string& c : v.columns) select.push_back(Q(c));
    std::string base = absl::StrCat("SELECT ", absl::StrJoin(select, ", "), " FROM ",
                                    Q(table_.name), " WHERE ", Q(table_.id_column), " IS NOT NULL");
    if (catch_up) {
      absl::StrAppend(&base, " AND ", Q(v.column), " IS NULL");
      for (const std::string& c : v.columns) absl::StrAppend(&base, " AND ", Q(c), " IS NOT NULL");
    }
    std::string update = absl::StrCat("UPDATE ", Q(table_.name), " SET ", Q(v.column),
                                      " = $1 WHERE ", Q(table_.id_column), " = $2");
    for (size_t i = 0; i < v.columns.size(); ++i) {
      absl::StrAppend(&update, " AND ", Q(v.columns[i]), " IS NOT DISTINCT FROM $", i + 3);
    }
    uint64_t scanned = 0;
    for (;;) {
      std::string sql = base;
      std::vector<appdb::Value> params;
      if (!std::holds_alternative<std::monostate>(v.checkpoint)) {
        absl::StrAppend(&sql, " AND ", Q(table_.id_column), " > $1");
        params.push_back(v.checkpoint);
      }
      absl::StrAppend(&sql, " ORDER BY ", Q(table_.id_column), " LIMIT ", options_.batch);
      KW_ASSIGN_OR_RETURN(std::vector<appdb::ResultRow> rows, db_.Query(sql, params));
      if (rows.empty()) break;
      std::vector<Computed> updates;
      updates.reserve(rows.size());
      for (appdb::ResultRow& row : rows) {
        KW_ASSIGN_OR_RETURN(std::optional<Computed> u, ComputeRow(v, row, report));
        if (u.has_value()) updates.push_back(std::move(*u));
      }
      v.checkpoint = rows.back()[0];
      if (!catch_up) v.rows_done += static_cast<int64_t>(rows.size());
      KW_RETURN_IF_ERROR(appdb::InTransaction(db_, [&]() -> absl::Status {
        for (Computed& u : updates) {
          std::vector<appdb::Value> p;
          p.reserve(1 + u.key.size());
          p.push_back(std::move(u.value));
          for (auto& k : u.key) p.push_back(std::move(k));
          KW_ASSIGN_OR_RETURN(uint64_t n, db_.Execute(update, p));
          if (n == 1) {
            ++(catch_up ? report->caught_up : report->updated);
          } else {
            ++report->conflicts;
          }
        }
        return SaveIndexProgress(db_, dataset, table_.name, v);
      }));
      scanned += rows.size();
      const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
      if (options_.rate > 0) {
        const double ahead = static_cast<double>(scanned) / options_.rate - elapsed;
        if (ahead > 0) absl::SleepFor(absl::Seconds(ahead));
      }
      if (options_.progress && !catch_up) {
        options_.progress({v.index, static_cast<uint64_t>(v.rows_done), report->rows,
                           elapsed > 0 ? static_cast<double>(scanned) / elapsed : 0});
      }
    }
    return absl::OkStatus();
  }

  // The update for one row read by Scan (nullopt: leave the row; counted
  // in the report as a NULL field or a failure).
  absl::StatusOr<std::optional<Computed>> ComputeRow(const IndexVersion& v, appdb::ResultRow& row,
                                                     IndexJobReport::Index* report) {
    FieldEncryptor::Location where;
    where.table = table_.name;
    KW_ASSIGN_OR_RETURN(where.row_id, KeyText(row[0], table_.id_column));
    if (!std::holds_alternative<std::monostate>(row[1])) {
      KW_ASSIGN_OR_RETURN(where.tenant, KeyText(row[1], enc_.schema().tenant_column()));
    }
    std::vector<FieldValue> plain;
    plain.reserve(v.columns.size());
    Computed out;
    out.key.push_back(row[0]);
    for (size_t i = 0; i < v.columns.size(); ++i) {
      appdb::Value& stored = row[2 + i];
      out.key.push_back(stored);
      where.column = v.columns[i];
      FieldValue as_field = ToField(appdb::Value(stored));
      if (std::holds_alternative<std::monostate>(as_field)) {
        plain.emplace_back();
        continue;
      }
      absl::StatusOr<FieldValue> opened = enc_.DecryptValue(where, as_field);
      if (!opened.ok() && GetErrorCode(opened.status()) == ErrorCode::kNotAKeywardMessage) {
        // Not encrypted yet (a table being migrated): index the plaintext.
        opened = std::move(as_field);
      }
      if (!opened.ok() && GetErrorCode(opened.status()) == ErrorCode::kTenantErased) {
        ++report->erased;  // gone for good: nothing to index
        return std::optional<Computed>();
      }
      if (!opened.ok()) {
        if (report->failed++ == 0) {
          report->first_failure = absl::StrCat("row ", where.row_id, ": ",
                                               opened.status().ToString());
        }
        return std::optional<Computed>();
      }
      plain.push_back(std::move(*opened));
    }
    std::vector<const FieldValue*> values;
    for (const FieldValue& p : plain) values.push_back(&p);
    absl::StatusOr<std::optional<int64_t>> value = search_.IndexValue(table_.name, v, values);
    WipeValues(plain);
    if (!value.ok()) {
      if (report->failed++ == 0) {
        report->first_failure = absl::StrCat("row ", where.row_id, ": ", value.status().ToString());
      }
      return std::optional<Computed>();
    }
    if (!value->has_value()) {
      ++report->nulls;
      return std::optional<Computed>();
    }
    out.value = **value;
    return std::optional<Computed>(std::move(out));
  }

  static void WipeValues(std::vector<FieldValue>& values) {
    for (FieldValue& v : values) {
      if (std::string* s = std::get_if<std::string>(&v)) OPENSSL_cleanse(s->data(), s->size());
      if (FieldBytes* b = std::get_if<FieldBytes>(&v)) {
        OPENSSL_cleanse(b->bytes.data(), b->bytes.size());
      }
      if (FieldJson* j = std::get_if<FieldJson>(&v)) OPENSSL_cleanse(j->text.data(), j->text.size());
    }
  }

  FieldEncryptor& enc_;
  Database& db_;
  const TableSchema& table_;
  const IndexJobOptions& options_;
  Searchable& search_;
  FieldKeys& keys_;
};

}  // namespace
}  // namespace keyward::fields

namespace keyward::fields {

absl::StatusOr<IndexJobReport> RebuildIndexes(FieldEncryptor& encryptor, appdb::Database& db,
                                              const std::string& table_name,
                                              const IndexJobOptions& options) {
  if (options.batch < 1 || options.batch > 10000) {
    return absl::InvalidArgumentError("--batch must be 1 to 10000 rows");
  }
  KW_ASSIGN_OR_RETURN(const TableSchema* table, encryptor.schema().Table(table_name));
  std::vector<const BlindIndex*> chosen;
  if (options.indexes.empty()) {
    for (const BlindIndex& index : table->indexes) chosen.push_back(&index);
  } else {
    for (const std::string& name : options.indexes) {
      const BlindIndex* index = table->Index(name);
      if (index == nullptr) {
        std::vector<std::string> names;
        for (const BlindIndex& i : table->indexes) names.push_back(i.name);
        return absl::NotFoundError(absl::StrCat("table ", table_name, " has no index ", name,
                                                " in the schema (it has: ",
                                                names.empty() ? "none" : absl::StrJoin(names, ", "),
                                                ")"));
      }
      chosen.push_back(index);
    }
  }
  if (chosen.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the schema declares no blind index on table ", table_name, ": nothing to build"));
  }
  KW_RETURN_IF_ERROR(EnsureIndexTable(db));
  IndexJobReport report;
  Rebuild job(encryptor, db, *table, options);
  for (const BlindIndex* index : chosen) {
    KW_ASSIGN_OR_RETURN(IndexJobReport::Index one, job.Run(*index));
    report.indexes.push_back(std::move(one));
  }
  return report;
}

absl::StatusOr<RetireReport> RetireIndexes(FieldEncryptor& encryptor, appdb::Database& db,
                                           const std::string& table_name,
                                           const std::vector<std::string>& indexes) {
  KW_ASSIGN_OR_RETURN(const TableSchema* table, encryptor.schema().Table(table_name));
  KW_RETURN_IF_ERROR(EnsureIndexTable(db));
  const std::string& dataset = encryptor.schema().dataset();
  KW_ASSIGN_OR_RETURN(std::vector<IndexVersion> versions,
                      LoadIndexVersions(db, dataset, table->name));
  KW_RETURN_IF_ERROR(ValidateIndexVersions(encryptor.schema(), *table, versions));
  KW_ASSIGN_OR_RETURN(auto columns, db.ListColumns(table->name));
  std::set<std::string> existing;
  for (const auto& c : columns) existing.insert(c.name);
  RetireReport report;
  for (const IndexVersion& v : versions) {
    if (v.state != IndexState::kRetired) continue;
    if (!indexes.empty() && std::find(indexes.begin(), indexes.end(), v.index) == indexes.end()) {
      continue;
    }
    // Validated above: the column is this version's own (NAME or NAME_vN,
    // which the schema keeps from colliding with fields and other indexes).
    KW_RETURN_IF_ERROR(db.Execute(absl::StrCat("DROP INDEX IF EXISTS ",
                                               Q(SqlIndexName(table->name, v.column))))
                           .status());
    if (existing.count(v.column)) {
      KW_RETURN_IF_ERROR(db.Execute(absl::StrCat("ALTER TABLE ", Q(table->name), " DROP COLUMN ",
                                                 Q(v.column)))
                             .status());
      report.dropped.push_back(v.column);
    }
    KW_RETURN_IF_ERROR(DeleteIndexVersion(db, dataset, table->name, v.index, v.version));
  }
  EncryptorAccess::Search(encryptor).Reload();
  return report;
}

absl::StatusOr<uint64_t> ClearTenantIndexValues(appdb::Database& db, const FieldSchema& schema,
                                                const std::string& tenant) {
  if (schema.tenant_column().empty()) return uint64_t{0};
  KW_RETURN_IF_ERROR(EnsureIndexTable(db));
  uint64_t changed = 0;
  for (const auto& [name, table] : schema.tables()) {
    KW_ASSIGN_OR_RETURN(std::vector<IndexVersion> versions,
                        LoadIndexVersions(db, schema.dataset(), name));
    if (versions.empty()) continue;
    KW_RETURN_IF_ERROR(ValidateIndexVersions(schema, table, versions));
    KW_ASSIGN_OR_RETURN(auto columns, db.ListColumns(name));
    std::set<std::string> existing;
    for (const auto& c : columns) existing.insert(c.name);
    std::vector<std::string> sets;
    for (const IndexVersion& v : versions) {
      if (existing.count(v.column)) sets.push_back(absl::StrCat(Q(v.column), " = NULL"));
    }
    if (sets.empty()) continue;
    KW_ASSIGN_OR_RETURN(uint64_t n,
                        db.Execute(absl::StrCat("UPDATE ", Q(name), " SET ",
                                                absl::StrJoin(sets, ", "), " WHERE ",
                                                Q(schema.tenant_column()), " = $1"),
                                   {tenant}));
    changed += n;
  }
  return changed;
}

}  // namespace keyward::fields
