// keyward_field_indexes (fields/index_catalog.h).
#include "fields/index_catalog.h"

#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"

namespace keyward::fields {
namespace {

constexpr char kColumns[] =
    "index_name, version, column_name, columns, transforms, bits, key_refs, state, "
    "checkpoint_int, checkpoint_text, rows_done, started_at, updated_at";

std::string Now() {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
}

int64_t AsInt(const appdb::Value& v) {
  if (const int64_t* i = std::get_if<int64_t>(&v)) return *i;
  return 0;
}

std::string AsText(const appdb::Value& v) {
  if (const std::string* s = std::get_if<std::string>(&v)) return *s;
  return "";
}

std::string RefsText(const std::map<std::string, uint32_t>& refs) {
  std::vector<std::string> parts;
  for (const auto& [cls, ref] : refs) parts.push_back(absl::StrCat(cls, ":", ref));
  return absl::StrJoin(parts, ",");
}

absl::Status Corrupt(absl::string_view what) {
  return absl::DataLossError(absl::StrCat(kIndexTable, " holds a row Keyward cannot read (", what,
                                          "): it was edited by hand; restore it or delete "
                                          "the row and run `keyward index rebuild`"));
}

}  // namespace

absl::string_view IndexStateName(IndexState state) {
  switch (state) {
    case IndexState::kBuilding: return "building";
    case IndexState::kActive: return "active";
    case IndexState::kRetired: return "retired";
  }
  return "?";
}

bool IndexVersion::SameSpec(const BlindIndex& spec, int resolved_bits) const {
  return columns == spec.columns && transforms == spec.transforms && bits == resolved_bits;
}

std::string IndexColumnName(absl::string_view index, int64_t version) {
  return version <= 1 ? std::string(index) : absl::StrCat(index, "_v", version);
}

absl::Status EnsureIndexTable(appdb::Database& db) {
  return db
      .Execute(absl::StrCat(
          "CREATE TABLE IF NOT EXISTS ", kIndexTable,
          " (dataset TEXT NOT NULL, table_name TEXT NOT NULL, index_name TEXT NOT NULL, "
          "version BIGINT NOT NULL, column_name TEXT NOT NULL, columns TEXT NOT NULL, "
          "transforms TEXT NOT NULL, bits BIGINT NOT NULL, key_refs TEXT NOT NULL, "
          "state TEXT NOT NULL, checkpoint_int BIGINT, checkpoint_text TEXT, "
          "rows_done BIGINT NOT NULL, started_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
          "PRIMARY KEY (dataset, table_name, index_name, version))"))
      .status();
}

absl::StatusOr<std::vector<IndexVersion>> LoadIndexVersions(appdb::Database& db,
                                                           absl::string_view dataset,
                                                           absl::string_view table) {
  KW_ASSIGN_OR_RETURN(
      auto rows, db.Query(absl::StrCat("SELECT ", kColumns, " FROM ", kIndexTable,
                                       " WHERE dataset = $1 AND table_name = $2 "
                                       "ORDER BY index_name, version"),
                          {std::string(dataset), std::string(table)}));
  std::vector<IndexVersion> out;
  for (const auto& r : rows) {
    if (r.size() != 13) return absl::InternalError("unexpected index table row");
    IndexVersion v;
    v.index = AsText(r[0]);
    v.version = AsInt(r[1]);
    v.column = AsText(r[2]);
    v.columns = absl::StrSplit(AsText(r[3]), ',', absl::SkipEmpty());
    for (absl::string_view t : absl::StrSplit(AsText(r[4]), ',', absl::SkipEmpty())) {
      IndexTransform step;
      if (!ParseIndexTransform(t, &step)) return Corrupt(absl::StrCat("transform ", t));
      v.transforms.push_back(step);
    }
    v.bits = static_cast<int>(AsInt(r[5]));
    for (absl::string_view part : absl::StrSplit(AsText(r[6]), ',', absl::SkipEmpty())) {
      std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits(':', 1));
      uint32_t ref = 0;
      if (!absl::SimpleAtoi(kv.second, &ref)) return Corrupt("key_refs");
      v.key_refs[kv.first] = ref;
    }
    const std::string state = AsText(r[7]);
    if (state == "building") {
      v.state = IndexState::kBuilding;
    } else if (state == "active") {
      v.state = IndexState::kActive;
    } else if (state == "retired") {
      v.state = IndexState::kRetired;
    } else {
      return Corrupt(absl::StrCat("state ", state));
    }
    if (!std::holds_alternative<std::monostate>(r[8])) {
      v.checkpoint = r[8];
    } else if (!std::holds_alternative<std::monostate>(r[9])) {
      v.checkpoint = r[9];
    }
    v.rows_done = AsInt(r[10]);
    v.started_at = AsText(r[11]);
    v.updated_at = AsText(r[12]);
    if (v.columns.empty() || v.bits < 1 || v.bits > kMaxIndexBits || v.key_refs.empty()) {
      return Corrupt(absl::StrCat("index ", v.index, " version ", v.version));
    }
    out.push_back(std::move(v));
  }
  return out;
}

absl::Status InsertIndexVersion(appdb::Database& db, absl::string_view dataset,
                                absl::string_view table, const IndexVersion& v) {
  std::vector<std::string> transforms;
  for (const IndexTransform& t : v.transforms) transforms.push_back(IndexTransformName(t));
  const std::string now = Now();
  KW_ASSIGN_OR_RETURN(
      uint64_t n,
      db.Execute(absl::StrCat("INSERT INTO ", kIndexTable, " (dataset, table_name, ", kColumns,
                              ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, "
                              "0, $11, $11) ON CONFLICT DO NOTHING"),
                 {std::string(dataset), std::string(table), v.index, v.version, v.column,
                  absl::StrJoin(v.columns, ","), absl::StrJoin(transforms, ","),
                  static_cast<int64_t>(v.bits), RefsText(v.key_refs),
                  std::string(IndexStateName(v.state)), now}));
  if (n != 1) {
    return absl::AlreadyExistsError(absl::StrCat("index ", v.index, " version ", v.version,
                                                 " exists already (another rebuild started it)"));
  }
  return absl::OkStatus();
}

absl::Status SaveIndexProgress(appdb::Database& db, absl::string_view dataset,
                               absl::string_view table, const IndexVersion& v) {
  appdb::Value as_int, as_text;
  if (std::holds_alternative<int64_t>(v.checkpoint)) as_int = v.checkpoint;
  if (std::holds_alternative<std::string>(v.checkpoint)) as_text = v.checkpoint;
  KW_ASSIGN_OR_RETURN(
      uint64_t n,
      db.Execute(absl::StrCat("UPDATE ", kIndexTable,
                              " SET checkpoint_int = $1, checkpoint_text = $2, rows_done = $3, "
                              "updated_at = $4 WHERE dataset = $5 AND table_name = $6 AND "
                              "index_name = $7 AND version = $8"),
                 {as_int, as_text, v.rows_done, Now(), std::string(dataset), std::string(table),
                  v.index, v.version}));
  if (n != 1) return absl::NotFoundError(absl::StrCat("index ", v.index, " version ", v.version,
                                                      " is no longer in ", kIndexTable));
  return absl::OkStatus();
}

absl::StatusOr<bool> SetIndexStateFrom(appdb::Database& db, absl::string_view dataset,
                                       absl::string_view table, absl::string_view index,
                                       int64_t version, IndexState from, IndexState to) {
  KW_ASSIGN_OR_RETURN(
      uint64_t n,
      db.Execute(absl::StrCat("UPDATE ", kIndexTable,
                              " SET state = $1, updated_at = $2 WHERE dataset = $3 AND "
                              "table_name = $4 AND index_name = $5 AND version = $6 AND "
                              "state = $7"),
                 {std::string(IndexStateName(to)), Now(), std::string(dataset),
                  std::string(table), std::string(index), version,
                  std::string(IndexStateName(from))}));
  return n == 1;
}

absl::Status RetireOthers(appdb::Database& db, absl::string_view dataset, absl::string_view table,
                          absl::string_view index, int64_t keep) {
  return db
      .Execute(absl::StrCat("UPDATE ", kIndexTable,
                            " SET state = 'retired', updated_at = $1 WHERE dataset = $2 AND "
                            "table_name = $3 AND index_name = $4 AND version <> $5 AND "
                            "state = 'active'"),
               {Now(), std::string(dataset), std::string(table), std::string(index), keep})
      .status();
}

absl::Status ValidateIndexVersions(const FieldSchema& schema, const TableSchema& table,
                                   const std::vector<IndexVersion>& versions) {
  for (const IndexVersion& v : versions) {
    const std::string which = absl::StrCat("index ", v.index, " version ", v.version);
    const BlindIndex* index = table.Index(v.index);
    if (index == nullptr) {
      // An index removed from the schema: only its retired versions may
      // stay (for `keyward index retire` to drop).
      if (v.state != IndexState::kRetired) {
        return Corrupt(absl::StrCat(which, " is ", IndexStateName(v.state),
                                    " but the schema has no such index on table ", table.name,
                                    "; put it back, or retire it by editing its state"));
      }
    }
    if (v.version < 1 || v.column != IndexColumnName(v.index, v.version)) {
      return Corrupt(absl::StrCat(which, " names column ", v.column));
    }
    std::set<std::string> classes;
    for (const std::string& c : v.columns) {
      auto f = table.fields.find(c);
      if (f == table.fields.end() || !f->second.encrypted()) {
        return Corrupt(absl::StrCat(which, " covers ", c, ", not an encrypted field"));
      }
      classes.insert(f->second.class_name);
    }
    std::set<std::string> keyed;
    for (const auto& [cls, ref] : v.key_refs) keyed.insert(cls);
    if (keyed != classes) {
      return Corrupt(absl::StrCat(which, " is keyed by classes other than its fields'"));
    }
    if (index != nullptr && index->bits > 0 && v.columns == index->columns &&
        v.transforms == index->transforms && v.bits != index->bits) {
      return Corrupt(absl::StrCat(which, " has ", v.bits, " bits; the schema declares ",
                                  index->bits));
    }
  }
  (void)schema;
  return absl::OkStatus();
}

absl::Status DeleteIndexVersion(appdb::Database& db, absl::string_view dataset,
                                absl::string_view table, absl::string_view index,
                                int64_t version) {
  return db
      .Execute(absl::StrCat("DELETE FROM ", kIndexTable,
                            " WHERE dataset = $1 AND table_name = $2 AND index_name = $3 AND "
                            "version = $4"),
               {std::string(dataset), std::string(table), std::string(index), version})
      .status();
}

}  // namespace keyward::fields
