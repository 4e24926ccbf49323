// `keyward classify scan`: finds sensitive values stored in the clear in an
// application database and drafts the field schema that would encrypt them
// (docs/classify.md).  Needs no keywardd.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "appdb/database.h"
#include "base/status_macros.h"
#include "classify/draft_schema.h"
#include "classify/scan.h"
#include "cli/cli.h"
#include "cli/files.h"
#include "nlohmann/json.hpp"

namespace keyward::cli {
namespace {

using Json = nlohmann::ordered_json;

struct ClassifyArgs {
  std::string db;
  std::string table;
  int64_t sample = 1000;
  std::string schema_out;
};

Json ToJson(const classify::ScanResult& scan, const std::string& draft) {
  Json tables = Json::array(), columns = Json::array(),
       encrypted = Json::array();
  for (const classify::TableReport& t : scan.tables) {
    tables.push_back(
        {{"name", t.name},
         {"id_column", t.id_column.empty() ? Json(nullptr) : Json(t.id_column)},
         {"rows_sampled", t.rows_sampled},
         {"random_sample", t.random_sample}});
  }
  for (const classify::ColumnReport& c : scan.columns) {
    if (c.sensitive()) {
      columns.push_back({{"table", c.table},
                         {"column", c.column},
                         {"kind", classify::KindName(*c.kind)},
                         {"class", classify::ClassOf(*c.kind)},
                         {"matches", c.matches},
                         {"sampled", c.sampled},
                         {"encrypted", c.encrypted},
                         {"example", c.example}});
    } else if (c.encrypted > 0) {
      encrypted.push_back({{"table", c.table},
                           {"column", c.column},
                           {"encrypted", c.encrypted},
                           {"sampled", c.sampled}});
    }
  }
  return Json{{"database", scan.database}, {"dataset", scan.dataset},
              {"sample", scan.sample},     {"tables", tables},
              {"columns", columns},        {"encrypted_columns", encrypted},
              {"draft_schema", draft}};
}

// The findings as a table for a terminal, then the summary lines.
void PrintReport(FILE* out, const classify::ScanResult& scan) {
  size_t column_count = scan.columns.size();
  absl::FPrintF(
      out,
      "Scanned %d table(s), %d column(s) in %s, up to %d rows per table.\n\n",
      scan.tables.size(), column_count, scan.database, scan.sample);
  std::vector<const classify::ColumnReport*> found;
  size_t width = 6;
  for (const classify::ColumnReport& c : scan.columns) {
    if (!c.sensitive()) continue;
    found.push_back(&c);
    width = std::max(width, c.table.size() + 1 + c.column.size());
  }
  if (found.empty()) {
    absl::FPrintF(
        out, "No column holds unencrypted sensitive values in the sample.\n");
  } else {
    absl::FPrintF(out, "%-*s  %-7s  %-13s  %-9s  %s\n", width, "COLUMN", "KIND",
                  "MATCHES", "ENCRYPTED", "EXAMPLE (masked)");
    for (const classify::ColumnReport* c : found) {
      absl::FPrintF(out, "%-*s  %-7s  %-13s  %-9d  %s\n", width,
                    c->table + "." + c->column, classify::KindName(*c->kind),
                    absl::StrCat(c->matches, "/", c->sampled), c->encrypted,
                    c->example);
    }
    absl::FPrintF(out, "\n%d column(s) hold unencrypted sensitive values.\n",
                  found.size());
  }
  for (const classify::ColumnReport& c : scan.columns) {
    if (!c.sensitive() && c.encrypted > 0) {
      absl::FPrintF(
          out,
          "Already encrypted by Keyward: %s.%s (%d of %d sampled values).\n",
          c.table, c.column, c.encrypted, c.sampled);
    }
  }
  for (const classify::TableReport& t : scan.tables) {
    if (!t.random_sample) {
      absl::FPrintF(out,
                    "%s has over %d rows: sampled its first %d rows, not a "
                    "random sample.\n",
                    t.name, classify::kRandomSampleMaxRows, t.rows_sampled);
    }
  }
}

absl::Status RunScan(const ClassifyArgs& args, bool json) {
  if (args.sample < 1 || args.sample > 1000000) {
    return UsageError("--sample: give 1 to 1000000 rows per table");
  }
  if (json && args.schema_out == "-") {
    return UsageError(
        "--json already carries the draft (its draft_schema member); give "
        "--schema-out a FILE");
  }
  auto opened = appdb::Database::Open(args.db);
  if (!opened.ok()) {
    if (opened.status().code() == absl::StatusCode::kInvalidArgument) {
      return UsageError(absl::StrCat("--db: ", opened.status().message()));
    }
    return opened.status();
  }
  KW_ASSIGN_OR_RETURN(
      classify::ScanResult scan,
      classify::Scan(**opened, {.table = args.table, .sample = args.sample}));
  const std::string draft = classify::DraftSchema(scan, absl::Now());
  const bool any = std::any_of(
      scan.columns.begin(), scan.columns.end(),
      [](const classify::ColumnReport& c) { return c.sensitive(); });
  if (!args.schema_out.empty() && args.schema_out != "-") {
    KW_ASSIGN_OR_RETURN(auto output,
                        AtomicOutput::Create(args.schema_out, 0644));
    KW_RETURN_IF_ERROR(output->stream().Write(draft));
    KW_RETURN_IF_ERROR(output->Commit());
  }
  if (json) {
    std::printf("%s\n", ToJson(scan, draft).dump().c_str());
    return absl::OkStatus();
  }
  if (args.schema_out == "-") {
    // stdout is the schema alone, so that `> schema.yaml` saves just that.
    PrintReport(stderr, scan);
    std::fputs(draft.c_str(), stdout);
    return absl::OkStatus();
  }
  PrintReport(stdout, scan);
  if (!args.schema_out.empty()) {
    std::printf("\nDraft field schema written to %s: review it before use.\n",
                args.schema_out.c_str());
  } else if (any) {
    std::printf(
        "\nDraft field schema (review before use; --schema-out FILE saves "
        "it):\n\n%s",
        draft.c_str());
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterClassifyCommands(CLI::App& app, Globals& globals, Action& action) {
  static ClassifyArgs args;
  auto* classify = app.add_subcommand(
      "classify", "Find sensitive data stored in the clear (docs/classify.md)");
  classify->require_subcommand(1);
  auto* scan = classify->add_subcommand(
      "scan",
      "Sample the columns of a SQLite or PostgreSQL database and report those\n"
      "holding unencrypted card numbers, emails, phone numbers, IBANs, US "
      "SSNs,\n"
      "JWTs or API keys, with counts and a masked example (never a whole\n"
      "value), then print a draft field schema that would encrypt them.\n"
      "Values Keyward already encrypted are counted, not reported.  Reads\n"
      "only; needs no keywardd.  Exit 0 whether or not anything was found\n"
      "(scripts read --json's `columns`).\n"
      "  keyward classify scan --db sqlite:app.db\n"
      "  keyward classify scan --db postgresql://scanner@db:5432/shop "
      "--schema-out shop.yaml");
  scan->add_option("--db", args.db,
                   "sqlite:PATH or postgresql://USER@HOST[:PORT]/DBNAME (leave "
                   "the password "
                   "out of the URL: libpq reads PGPASSWORD or ~/.pgpass)")
      ->required();
  scan->add_option("--table", args.table,
                   "scan only this table (default: every user table)");
  scan->add_option("--sample", args.sample,
                   "rows sampled per table, 1-1000000 (random for tables up to "
                   "100000 rows, "
                   "else the first N)")
      ->capture_default_str();
  scan->add_flag("--json", globals.json,
                 "print one JSON object: database, tables, columns (findings), "
                 "encrypted_columns, draft_schema");
  scan->add_option(
      "--schema-out", args.schema_out,
      "write the draft field schema to FILE; '-' prints only the schema on "
      "stdout (the report goes to stderr)");
  scan->callback([&globals, &action] {
    action = [&globals] { return RunScan(args, globals.json); };
  });
}

}  // namespace keyward::cli
