#include "classify/scan.h"

#include <algorithm>
#include <array>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"

namespace keyward::classify {
namespace {

constexpr size_t kKinds = std::size(kAllKinds);

struct Tally {
  int64_t sampled = 0;
  int64_t encrypted = 0;
  std::array<int64_t, kKinds> matches{};
  std::array<std::string, kKinds> examples;  // masked
};

// Bytes from a BLOB are scanned only when they read as text.
bool LooksLikeText(absl::string_view bytes) {
  for (char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 && c != '\t' && c != '\n' && c != '\r') return false;
  }
  return true;
}

void Count(const appdb::Value& value, Tally& tally) {
  std::string text;
  bool binary = false;
  if (const auto* n = std::get_if<int64_t>(&value)) {
    text = absl::StrCat(*n);  // card numbers stored as integers
  } else if (const auto* s = std::get_if<std::string>(&value)) {
    text = *s;
  } else if (const auto* b = std::get_if<appdb::Blob>(&value)) {
    text = b->bytes;
    binary = true;
  } else if (std::holds_alternative<double>(value)) {
    ++tally.sampled;
    return;
  } else {
    return;  // NULL
  }
  ++tally.sampled;
  if (IsKeywardCiphertext(text, binary)) {
    ++tally.encrypted;
    return;
  }
  if (binary && !LooksLikeText(text)) return;
  const std::optional<Kind> kind = Detect(text);
  if (!kind) return;
  const auto i = static_cast<size_t>(*kind);
  if (tally.matches[i]++ == 0) tally.examples[i] = Mask(*kind, text);
}

absl::StatusOr<std::string> DatasetName(appdb::Database& db) {
  if (db.dialect() == appdb::Dialect::kPostgres) {
    KW_ASSIGN_OR_RETURN(auto rows, db.Query("SELECT current_database()::text"));
    if (!rows.empty() && std::holds_alternative<std::string>(rows[0][0])) {
      return std::get<std::string>(rows[0][0]);
    }
    return std::string("dataset");
  }
  // sqlite:/var/lib/app/orders.db → orders
  std::string path = db.RedactedUrl();
  if (const size_t slash = path.find_last_of("/:");
      slash != std::string::npos) {
    path = path.substr(slash + 1);
  }
  if (const size_t dot = path.find('.'); dot != std::string::npos && dot > 0)
    path.resize(dot);
  return path.empty() ? std::string("dataset") : path;
}

absl::Status ScanTable(appdb::Database& db, const std::string& table,
                       int64_t sample, ScanResult& result) {
  KW_ASSIGN_OR_RETURN(std::vector<appdb::ColumnInfo> columns,
                      db.ListColumns(table));
  TableReport report{.name = table};
  std::vector<std::string> quoted;
  for (const appdb::ColumnInfo& c : columns) {
    quoted.push_back(appdb::Database::QuoteIdentifier(c.name));
    if (c.primary_key) report.primary_key.push_back(c.name);
  }
  if (!report.primary_key.empty())
    report.id_column = report.primary_key.front();
  const std::string from = appdb::Database::QuoteIdentifier(table);
  // Counting stops past the random-sample limit: a bounded cost on any table.
  KW_ASSIGN_OR_RETURN(
      auto counted, db.Query(absl::StrCat(
                        "SELECT count(*) FROM (SELECT 1 FROM ", from, " LIMIT ",
                        kRandomSampleMaxRows + 1, ") AS bounded")));
  const int64_t* rows_seen =
      counted.empty() ? nullptr : std::get_if<int64_t>(&counted[0][0]);
  report.random_sample =
      rows_seen != nullptr && *rows_seen <= kRandomSampleMaxRows;
  KW_ASSIGN_OR_RETURN(
      auto rows,
      db.Query(
          absl::StrCat("SELECT ", absl::StrJoin(quoted, ", "), " FROM ", from,
                       report.random_sample ? " ORDER BY random()" : "",
                       " LIMIT $1"),
          {sample}));
  report.rows_sampled = static_cast<int64_t>(rows.size());
  std::vector<Tally> tallies(columns.size());
  for (const appdb::ResultRow& row : rows) {
    for (size_t c = 0; c < row.size() && c < tallies.size(); ++c)
      Count(row[c], tallies[c]);
  }
  for (size_t c = 0; c < columns.size(); ++c) {
    const Tally& t = tallies[c];
    ColumnReport column{.table = table,
                        .column = columns[c].name,
                        .sampled = t.sampled,
                        .encrypted = t.encrypted};
    for (size_t k = 0; k < kKinds; ++k) {
      // Ties go to the kind tried first (kAllKinds order).
      if (t.matches[k] > column.matches) {
        column.matches = t.matches[k];
        column.kind = kAllKinds[k];
        column.example = t.examples[k];
      }
    }
    result.columns.push_back(std::move(column));
  }
  result.tables.push_back(std::move(report));
  return absl::OkStatus();
}

}  // namespace

bool ColumnReport::sensitive() const {
  const int64_t needed = std::max<int64_t>(1, (sampled * 5 + 99) / 100);
  return kind.has_value() && matches >= needed;
}

absl::StatusOr<ScanResult> Scan(appdb::Database& db,
                                const ScanOptions& options) {
  if (options.sample < 1 || options.sample > 1000000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sample size ", options.sample, ": use 1 to 1000000 rows per table"));
  }
  ScanResult result{.database = db.RedactedUrl(), .sample = options.sample};
  KW_ASSIGN_OR_RETURN(result.dataset, DatasetName(db));
  std::vector<std::string> tables;
  if (options.table.empty()) {
    KW_ASSIGN_OR_RETURN(tables, db.ListTables());
  } else {
    tables.push_back(options.table);
  }
  for (const std::string& table : tables) {
    absl::Status scanned = ScanTable(db, table, options.sample, result);
    // A listed table can be gone by now, or (PostgreSQL) have no columns:
    // nothing to report.  A table the caller named must exist.
    if (scanned.code() == absl::StatusCode::kNotFound && options.table.empty())
      continue;
    KW_RETURN_IF_ERROR(scanned);
  }
  return result;
}

}  // namespace keyward::classify
