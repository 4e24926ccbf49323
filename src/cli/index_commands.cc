// Blind index commands: `keyward index plan`, `rebuild` and `retire`,
// registered by RegisterIndexCommands.  docs/fields.md ("Planning blind indexes") is the guide and
// docs/decisions/0025-blind-index-planning.md the reasoning.
#include <algorithm>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "cli/cli.h"
#include "appdb/database.h"
#include "fields/index_job.h"
#include "fields/index_planner.h"
#include "keyward/field_encryptor.h"
#include "keyward/field_schema.h"
#include "nlohmann/json.hpp"

namespace keyward::cli {
namespace {

using Json = nlohmann::ordered_json;

// Largest row count accepted: far beyond any table, and exact in a double.
constexpr uint64_t kMaxRows = uint64_t{1} << 50;

struct IndexArgs {
  std::string schema, table, rows, db;
  uint64_t min_matches = 2;
  std::vector<std::string> indexes;
  int batch = 500;
  double rate = 0;
};

// "1000000", "1e6", "2.5e6", "1_000_000".
absl::StatusOr<uint64_t> ParseRows(std::string text) {
  text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
  uint64_t n = 0;
  double d = 0;
  if (absl::SimpleAtoi(text, &n)) {
    // parsed as an integer
  } else if (text.find_first_of("eE") != std::string::npos &&
             absl::SimpleAtod(text, &d) && d >= 0 &&
             d <= static_cast<double>(kMaxRows) &&
             d == static_cast<double>(static_cast<uint64_t>(d))) {
    n = static_cast<uint64_t>(d);
  } else {
    return UsageError(absl::StrCat(
        "--rows: expected a whole number of rows such as 1000000 or "
        "1e6, not \"",
        text, "\""));
  }
  if (n == 0 || n > kMaxRows) {
    return UsageError(absl::StrCat(
        "--rows: between 1 and 2^50 (the number of rows the table is "
        "expected to reach), not ",
        text));
  }
  return n;
}

std::string Declared(int bits) {
  return bits == 0 ? "auto" : absl::StrCat(bits);
}

Json PlanJson(const fields::TablePlan& plan, const std::string& schema) {
  Json indexes = Json::array(), groups = Json::array();
  for (const fields::IndexPlan& p : plan.indexes) {
    indexes.push_back({{"name", p.name},
                       {"columns", p.columns},
                       {"declared_bits", Declared(p.declared_bits)},
                       {"bits", p.bits},
                       {"domain", p.domain},
                       {"domain_source",
                        std::string(fields::DomainSourceName(p.domain_source))},
                       {"domain_reason", p.domain_reason},
                       {"effective_bits", p.effective_bits},
                       {"rows_per_value", p.rows_per_value},
                       {"false_positives_per_lookup", p.false_positives},
                       {"useful_bits", p.useful_bits}});
  }
  for (const fields::GroupPlan& g : plan.groups) {
    groups.push_back({{"fields", g.fields},
                      {"indexes", g.indexes},
                      {"domain", g.domain},
                      {"budget_bits", g.budget_bits},
                      {"combined_bits", g.combined_bits},
                      {"rows_per_fingerprint", g.rows_per_fingerprint},
                      {"accepted", g.accepted}});
  }
  return Json{{"schema", schema},          {"table", plan.table},
              {"rows", plan.rows},         {"min_matches", plan.min_matches},
              {"accepted", plan.accepted}, {"indexes", indexes},
              {"groups", groups},          {"reasoning", plan.reasoning},
              {"warnings", plan.warnings}, {"refusals", plan.refusals}};
}

void PrintPlan(const fields::TablePlan& plan) {
  for (const std::string& line : plan.reasoning)
    std::printf("%s\n", line.c_str());
  if (!plan.indexes.empty()) {
    size_t name_width = 5, columns_width = 7;
    for (const fields::IndexPlan& p : plan.indexes) {
      name_width = std::max(name_width, p.name.size());
      columns_width =
          std::max(columns_width, absl::StrJoin(p.columns, ",").size());
    }
    std::printf("\n%-*s  %-*s  %-8s  %4s  %9s  %14s  %12s\n",
                static_cast<int>(name_width), "INDEX",
                static_cast<int>(columns_width), "COLUMNS", "DECLARED", "BITS",
                "EFFECTIVE", "ROWS/VALUE", "FALSE+/LOOKUP");
    for (const fields::IndexPlan& p : plan.indexes) {
      std::printf("%-*s  %-*s  %-8s  %4d  %9.1f  %14.1f  %12.1f\n",
                  static_cast<int>(name_width), p.name.c_str(),
                  static_cast<int>(columns_width),
                  absl::StrJoin(p.columns, ",").c_str(),
                  Declared(p.declared_bits).c_str(), p.bits, p.effective_bits,
                  p.rows_per_value, p.false_positives);
    }
  }
  if (!plan.warnings.empty()) std::printf("\n");
  for (const std::string& w : plan.warnings)
    std::printf("warning: %s\n", w.c_str());
  if (!plan.refusals.empty()) std::printf("\n");
  for (const std::string& r : plan.refusals)
    std::printf("refused: %s\n", r.c_str());
  std::printf("\n%s\n", plan.accepted
                            ? absl::StrCat("accepted: table ", plan.table,
                                           " at ", plan.rows, " rows")
                                  .c_str()
                            : absl::StrCat("refused: table ", plan.table,
                                           " at ", plan.rows, " rows (",
                                           plan.refusals.size(), " problem(s))")
                                  .c_str());
}

absl::Status RunIndexPlan(Globals& globals, const IndexArgs& args) {
  KW_ASSIGN_OR_RETURN(const uint64_t rows, ParseRows(args.rows));
  if (args.min_matches < 2) {
    return UsageError(absl::StrCat(
        "--min-matches: at least 2 (1 lets an index value single out "
        "a row), not ",
        args.min_matches));
  }
  KW_ASSIGN_OR_RETURN(auto schema, FieldSchema::Load(args.schema));
  KW_ASSIGN_OR_RETURN(const TableSchema* table, schema->Table(args.table));
  KW_ASSIGN_OR_RETURN(
      fields::TablePlan plan,
      fields::PlanIndexes(*table, rows, {.min_matches = args.min_matches}));
  if (globals.json) {
    std::printf("%s\n", PlanJson(plan, args.schema).dump().c_str());
  } else {
    PrintPlan(plan);
  }
  if (!plan.accepted) {
    // Bad input (exit 3): the schema's indexes, not the command, are wrong.
    return absl::InvalidArgumentError(
        absl::StrCat(args.schema, ": the blind indexes of table ", plan.table,
                     " would single out rows at ", rows,
                     " rows: ", absl::StrJoin(plan.refusals, "; ")));
  }
  return absl::OkStatus();
}

}  // namespace

struct OpenedIndex {
  std::shared_ptr<const FieldSchema> schema;
  std::shared_ptr<FieldEncryptor> encryptor;
  std::unique_ptr<appdb::Database> db;
};

absl::StatusOr<OpenedIndex> OpenForIndex(Globals& globals, const IndexArgs& a) {
  OpenedIndex o;
  KW_ASSIGN_OR_RETURN(o.schema, FieldSchema::Load(a.schema));
  KW_RETURN_IF_ERROR(o.schema->Table(a.table).status());
  KW_ASSIGN_OR_RETURN(o.db, appdb::Database::Open(a.db));
  KW_ASSIGN_OR_RETURN(std::shared_ptr<DataClient> data, globals.SharedData());
  KW_ASSIGN_OR_RETURN(o.encryptor, FieldEncryptor::Create(o.schema, std::move(data), a.db));
  return o;
}

absl::Status RunIndexRebuild(Globals& globals, const IndexArgs& a) {
  if (a.batch < 1 || a.batch > 10000) return UsageError("--batch is 1..10000");
  if (a.rate < 0) return UsageError("--rate must not be negative");
  KW_ASSIGN_OR_RETURN(OpenedIndex o, OpenForIndex(globals, a));
  const TableSchema& table = *o.schema->Table(a.table).value();
  // Auto bits are planned for the larger of the table's rows and --rows.
  KW_ASSIGN_OR_RETURN(auto count, o.db->Query(absl::StrCat(
                                      "SELECT COUNT(*) FROM ",
                                      appdb::Database::QuoteIdentifier(a.table))));
  uint64_t rows = 0;
  if (!count.empty()) {
    if (const int64_t* n = std::get_if<int64_t>(&count[0][0])) rows = static_cast<uint64_t>(*n);
  }
  if (!a.rows.empty()) {
    KW_ASSIGN_OR_RETURN(uint64_t expected, ParseRows(a.rows));
    rows = std::max(rows, expected);
  }
  if (rows == 0) {
    return UsageError(absl::StrCat("table ", a.table, " is empty: pass --rows with the number "
                                   "of rows you expect, so auto bits can be planned"));
  }
  fields::PlanOptions plan_options;
  plan_options.min_matches = a.min_matches;
  using BitsByIndex = std::map<std::string, int>;
  KW_ASSIGN_OR_RETURN(BitsByIndex bits, fields::IndexBits(table, rows, plan_options));
  fields::IndexJobOptions opts;
  opts.indexes = a.indexes;
  opts.bits = std::move(bits);
  opts.batch = static_cast<size_t>(a.batch);
  opts.rate = a.rate;
  bool drawn = false;
  if (::isatty(STDERR_FILENO) != 0 && !globals.json) {
    opts.progress = [&](const fields::IndexJobOptions::Progress& p) {
      const double pct = p.total > 0 ? 100.0 * p.done / p.total : 100.0;
      std::fprintf(stderr, "\rbuilding %s %3.0f%%  %llu of %llu rows  %.0f rows/s   ",
                   p.index.c_str(), pct > 100 ? 100.0 : pct,
                   static_cast<unsigned long long>(p.done),
                   static_cast<unsigned long long>(p.total), p.rows_per_s);
      drawn = true;
    };
  }
  absl::StatusOr<fields::IndexJobReport> report =
      fields::RebuildIndexes(*o.encryptor, *o.db, a.table, opts);
  if (drawn) std::fprintf(stderr, "\r\033[K");
  if (!report.ok()) return report.status();
  uint64_t failed = 0;
  std::string first_failure;
  Json list = Json::array();
  for (const auto& r : report->indexes) {
    failed += r.failed;
    if (first_failure.empty()) first_failure = r.first_failure;
    list.push_back({{"index", r.name},
                    {"version", r.version},
                    {"column", r.column},
                    {"action", r.action},
                    {"bits", opts.bits[r.name]},
                    {"rows", r.rows},
                    {"updated", r.updated},
                    {"nulls", r.nulls},
                    {"failed", r.failed},
                    {"erased", r.erased},
                    {"conflicts", r.conflicts},
                    {"caught_up", r.caught_up},
                    {"replaces", r.retired_column},
                    {"first_failure", r.first_failure},
                    {"seconds", r.seconds}});
    if (!globals.json) {
      if (r.action == "up to date") {
        std::printf("%s: up to date (version %lld in column %s, %d bits)\n", r.name.c_str(),
                    static_cast<long long>(r.version), r.column.c_str(), opts.bits[r.name]);
        continue;
      }
      std::printf("%s: %s version %lld in column %s (%d bits): %llu rows, %llu indexed, %llu "
                  "NULL, %llu failed, %llu written by the application meanwhile, %llu caught "
                  "up; %.1f s%s\n",
                  r.name.c_str(), r.action.c_str(), static_cast<long long>(r.version),
                  r.column.c_str(), opts.bits[r.name], static_cast<unsigned long long>(r.rows),
                  static_cast<unsigned long long>(r.updated),
                  static_cast<unsigned long long>(r.nulls),
                  static_cast<unsigned long long>(r.failed),
                  static_cast<unsigned long long>(r.conflicts),
                  static_cast<unsigned long long>(r.caught_up), r.seconds,
                  r.retired_column.empty()
                      ? ""
                      : absl::StrCat("; replaces ", r.retired_column,
                                     " (drop it with `keyward index retire`)")
                            .c_str());
    }
  }
  if (globals.json) {
    std::printf("%s\n", Json{{"table", a.table}, {"rows_planned", rows}, {"indexes", list}}
                            .dump()
                            .c_str());
  }
  if (failed > 0) {
    return absl::AbortedError(absl::StrCat(
        failed, " row(s) could not be indexed (first: ", first_failure,
        "); the new version stays building and is searched beside the old one: fix the cause "
        "and run the same command again to finish"));
  }
  return absl::OkStatus();
}

absl::Status RunIndexRetire(Globals& globals, const IndexArgs& a) {
  KW_ASSIGN_OR_RETURN(OpenedIndex o, OpenForIndex(globals, a));
  KW_ASSIGN_OR_RETURN(fields::RetireReport report,
                      fields::RetireIndexes(*o.encryptor, *o.db, a.table, a.indexes));
  if (globals.json) {
    std::printf("%s\n", Json{{"table", a.table}, {"dropped", report.dropped}}.dump().c_str());
  } else if (report.dropped.empty()) {
    std::printf("%s: no retired index column to drop\n", a.table.c_str());
  } else {
    std::printf("%s: dropped %s\n", a.table.c_str(), absl::StrJoin(report.dropped, ", ").c_str());
  }
  return absl::OkStatus();
}

void RegisterIndexCommands(CLI::App& app, Globals& globals, Action& action) {
  static IndexArgs args;
  auto* index =
      app.add_subcommand("index", "Blind indexes of field-encrypted tables");
  index->require_subcommand(1);

  auto* plan =
      index->add_subcommand("plan",
                            "Choose and check the bits of a table's blind "
                            "indexes for an expected row count: every\n"
                            "index value, and every combination of index "
                            "values on a row, must be expected to\n"
                            "match at least --min-matches rows.  Prints the "
                            "reasoning and the bits per index;\n"
                            "exit 0 when accepted, 3 when the schema's indexes "
                            "would single out rows.\n"
                            "No keywardd needed.");
  plan->add_option("--schema", args.schema, "the classification schema (YAML)")
      ->required();
  plan->add_option("--table", args.table, "the table")->required();
  plan->add_option("--rows", args.rows,
                   "rows the table is expected to reach (1000000, 1e6)")
      ->required();
  plan->add_option(
      "--min-matches", args.min_matches,
      "rows each index value must be expected to match (default 2)");
  plan->add_flag("--json", globals.json, "print the plan as one JSON object");
  plan->callback([&globals, &action] {
    action = [&globals] { return RunIndexPlan(globals, args); };
  });

  auto* rebuild = index->add_subcommand(
      "rebuild",
      "Build the table's blind indexes, or a new version of each whose spec, bits or data\n"
      "key changed (after `keyward reencrypt --schema`), beside the old one and without\n"
      "downtime: searches use both until the new one is complete.  Resumable and safe to\n"
      "kill at any moment; rerun the same command to continue.  Auto bits are planned for\n"
      "the larger of the table's rows and --rows.  Needs keywardd (it decrypts each value).");
  rebuild->add_option("--schema", args.schema, "the classification schema (YAML)")->required();
  rebuild->add_option("--db", args.db, "sqlite:PATH or postgresql://USER@HOST:PORT/DB")
      ->required();
  rebuild->add_option("--table", args.table, "the table")->required();
  rebuild->add_option("--index", args.indexes, "only this index (repeat for several)");
  rebuild->add_option("--rows", args.rows, "rows the table is expected to reach (for auto bits)");
  rebuild->add_option("--min-matches", args.min_matches,
                      "rows each index value must be expected to match (default 2)");
  rebuild->add_option("--batch", args.batch, "rows per transaction (default 500)");
  rebuild->add_option("--rate", args.rate, "at most this many rows per second (default: no limit)");
  rebuild->add_flag("--json", globals.json, "print the result as one JSON object");
  rebuild->callback([&globals, &action] {
    action = [&globals] { return RunIndexRebuild(globals, args); };
  });

  auto* retire = index->add_subcommand(
      "retire",
      "Drop the columns of index versions a rebuild replaced (the explicit last step).\n"
      "Writers stop filling them within 2 seconds of the rebuild finishing; drop them once\n"
      "nothing else (reports, your own SQL) reads them.");
  retire->add_option("--schema", args.schema, "the classification schema (YAML)")->required();
  retire->add_option("--db", args.db, "sqlite:PATH or postgresql://USER@HOST:PORT/DB")->required();
  retire->add_option("--table", args.table, "the table")->required();
  retire->add_option("--index", args.indexes, "only this index (repeat for several)");
  retire->add_flag("--json", globals.json, "print {table, dropped: [columns]}");
  retire->callback([&globals, &action] {
    action = [&globals] { return RunIndexRetire(globals, args); };
  });
}

}  // namespace keyward::cli
