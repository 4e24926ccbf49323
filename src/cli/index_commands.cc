// Blind index commands: `keyward index plan`.  The group is registered by
// RegisterIndexCommands; later subcommands (rebuild, retire) join it
// there.  docs/fields.md ("Planning blind indexes") is the guide and
// docs/decisions/0025-blind-index-planning.md the reasoning.
#include <algorithm>
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
#include "fields/index_planner.h"
#include "keyward/field_schema.h"
#include "nlohmann/json.hpp"

namespace keyward::cli {
namespace {

using Json = nlohmann::ordered_json;

// Largest row count accepted: far beyond any table, and exact in a double.
constexpr uint64_t kMaxRows = uint64_t{1} << 50;

struct IndexArgs {
  std::string schema, table, rows;
  uint64_t min_matches = 2;
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
}

}  // namespace keyward::cli
