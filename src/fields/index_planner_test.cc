// The blind index planner: auto bits by row count, fixed bits checked
// against the coincidence count, budgets shared by the indexes over one
// field and by compound indexes, domains from cardinality and transforms.
#include "fields/index_planner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace keyward::fields {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kHead[] = R"(version: 1
dataset: shop
key: shop
classes:
  pii: { encrypt: required, readers: [app] }
tables:
  users:
    id_column: id
)";

// A table "users" with `fields` (YAML under `fields:`) and `indexes`
// (YAML under the table's `indexes:`, may be empty).
TableSchema Table(const std::string& fields, const std::string& indexes = "") {
  std::string yaml = absl::StrCat(kHead, "    fields:\n", fields);
  if (!indexes.empty()) absl::StrAppend(&yaml, "    indexes:\n", indexes);
  auto schema = FieldSchema::Parse(yaml);
  EXPECT_TRUE(schema.ok()) << schema.status() << "\n" << yaml;
  if (!schema.ok()) return {};
  return *(*schema)->Table("users").value();
}

TablePlan Plan(const TableSchema& table, uint64_t rows,
               uint64_t min_matches = 2) {
  auto plan = PlanIndexes(table, rows, {.min_matches = min_matches});
  EXPECT_TRUE(plan.ok()) << plan.status();
  return plan.ok() ? *plan : TablePlan{};
}

const char kEmailAuto[] =
    "      email:\n"
    "        class: pii\n"
    "        treatment: randomized\n"
    "        indexes: [{ name: email_idx, transform: [trim, lowercase], bits: "
    "auto }]\n";

TEST(IndexPlannerTest, AutoBitsGrowWithTheRowCount) {
  const TableSchema table = Table(kEmailAuto);
  // log2(rows / 2), rounded down.
  for (auto [rows, bits] :
       {std::pair<uint64_t, int>{1000, 8}, {1000000, 18}, {1000000000, 28}}) {
    const TablePlan plan = Plan(table, rows);
    EXPECT_TRUE(plan.accepted) << absl::StrJoin(plan.refusals, "\n");
    const IndexPlan* p = plan.Index("email_idx");
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->declared_bits, 0);
    EXPECT_EQ(p->bits, bits) << rows;
    EXPECT_EQ(p->domain_source, DomainSource::kUnknown);
    EXPECT_DOUBLE_EQ(p->domain, static_cast<double>(rows));
    EXPECT_GE(p->rows_per_value, 2.0);
    EXPECT_LT(p->rows_per_value, 4.0);
    // Every lookup returns a few rows of other values, far below sqrt(rows).
    EXPECT_LE(p->false_positives, std::sqrt(static_cast<double>(rows)));
    const GroupPlan* g = plan.GroupOf("email");
    ASSERT_NE(g, nullptr);
    EXPECT_TRUE(g->accepted);
    EXPECT_GE(g->rows_per_fingerprint, 2.0);
    EXPECT_TRUE(plan.warnings.empty()) << absl::StrJoin(plan.warnings, "\n");
  }
  // Asking for more matches per value leaves fewer bits.
  EXPECT_EQ(Plan(table, 1000000, 64).Index("email_idx")->bits, 13);
}

TEST(IndexPlannerTest, AFixedIndexTooWideIsRefusedWithTheFix) {
  const TableSchema table = Table(
      "      email:\n"
      "        class: pii\n"
      "        treatment: randomized\n"
      "        indexes: [{ name: email_idx, bits: 20 }]\n");
  const TablePlan plan = Plan(table, 1000000);
  EXPECT_FALSE(plan.accepted);
  ASSERT_EQ(plan.refusals.size(), 1u);
  EXPECT_THAT(
      plan.refusals[0],
      AllOf(HasSubstr("index email_idx (20 bits) over email"),
            HasSubstr("1000000 rows"), HasSubstr("at most 18.9 bits"),
            HasSubstr("give email_idx at most 18 bits or make it auto")));
  EXPECT_EQ(plan.Index("email_idx")->bits, 20);
  // The same index is fine for a table 4 times larger.
  EXPECT_TRUE(Plan(table, 4000000).accepted);
  // IndexBits refuses to hand out bits for a refused plan.
  auto bits = IndexBits(table, 1000000);
  ASSERT_FALSE(bits.ok());
  EXPECT_EQ(bits.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(bits.status().message(), HasSubstr("email_idx"));
}

TEST(IndexPlannerTest, TwoTwentyBitIndexesOnOneFieldSingleOutRows) {
  const TableSchema table = Table(
      "      email:\n"
      "        class: pii\n"
      "        treatment: randomized\n"
      "        indexes:\n"
      "          - { name: email_full, transform: [lowercase], bits: 20 }\n"
      "          - { name: email_trim, transform: [trim], bits: 20 }\n");
  const TablePlan plan = Plan(table, 1000000);
  EXPECT_FALSE(plan.accepted);
  ASSERT_EQ(plan.refusals.size(), 1u);
  // 40 bits, but a million rows hold at most a million values: 19.9 bits.
  EXPECT_THAT(
      plan.refusals[0],
      AllOf(HasSubstr("email_full (20 bits), email_trim (20 bits) over email"),
            HasSubstr("carry 19.9 bits together (39.9 summed"),
            HasSubstr("row(s) per combination"),
            HasSubstr("at most 18 bits in total")));
  const GroupPlan* g = plan.GroupOf("email");
  ASSERT_NE(g, nullptr);
  EXPECT_FALSE(g->accepted);
  EXPECT_NEAR(g->combined_bits, std::log2(1e6), 1e-9);
  EXPECT_DOUBLE_EQ(g->rows_per_fingerprint, 1.0);
}

TEST(IndexPlannerTest, IndexesThatPassAloneCanSingleOutRowsTogether) {
  const TableSchema table = Table(
      "      email:\n"
      "        class: pii\n"
      "        treatment: randomized\n"
      "        indexes:\n"
      "          - { name: email_full, transform: [lowercase], bits: 12 }\n"
      "          - { name: email_trim, transform: [trim], bits: 12 }\n");
  const TablePlan plan = Plan(table, 1000000);
  // Each leaves 244 rows per index value; both together 0.06.
  EXPECT_NEAR(plan.Index("email_full")->rows_per_value, 1e6 / 4096, 1e-6);
  EXPECT_FALSE(plan.accepted);
  ASSERT_EQ(plan.refusals.size(), 1u);
  EXPECT_THAT(plan.refusals[0],
              AllOf(HasSubstr("(24.0 summed"),
                    HasSubstr("give email_full at most 6 bits or make it "
                              "auto; or give email_trim at most 6 bits")));
}

TEST(IndexPlannerTest, AutoIndexesShareWhatTheFixedOnesLeave) {
  const TableSchema table = Table(
      "      email:\n"
      "        class: pii\n"
      "        treatment: randomized\n"
      "        indexes:\n"
      "          - { name: email_idx, bits: 12 }\n"
      "          - { name: email_a, transform: [lowercase], bits: auto }\n"
      "          - { name: email_b, transform: [trim], bits: auto }\n");
  const TablePlan plan = Plan(table, 1000000);
  EXPECT_TRUE(plan.accepted) << absl::StrJoin(plan.refusals, "\n");
  // 18.9 - 12 = 6.9 bits left, 3.4 each.
  EXPECT_EQ(plan.Index("email_idx")->bits, 12);
  EXPECT_EQ(plan.Index("email_a")->bits, 3);
  EXPECT_EQ(plan.Index("email_b")->bits, 3);
  EXPECT_DOUBLE_EQ(plan.GroupOf("email")->combined_bits, 18.0);
  // Three bits over a million distinct values is not worth a column.
  EXPECT_THAT(absl::StrJoin(plan.warnings, "\n"),
              HasSubstr("index email_a returns about 125000 rows of other "
                        "values per lookup"));

  // A fixed index that leaves less than a bit for an auto one is refused.
  const TableSchema tight = Table(
      "      email:\n"
      "        class: pii\n"
      "        treatment: randomized\n"
      "        indexes:\n"
      "          - { name: email_idx, bits: 18 }\n"
      "          - { name: email_a, transform: [lowercase], bits: auto }\n");
  const TablePlan refused = Plan(tight, 1000000);
  EXPECT_FALSE(refused.accepted);
  EXPECT_EQ(refused.Index("email_a")->bits, 1);
  ASSERT_EQ(refused.refusals.size(), 1u);
  EXPECT_THAT(refused.refusals[0],
              HasSubstr("give email_idx at most 17 bits or make it auto"));
}

TEST(IndexPlannerTest, CompoundIndexesShareTheBudgetOfTheirFields) {
  const TableSchema table = Table(
      "      last_name:\n"
      "        class: pii\n"
      "        treatment: randomized\n"
      "        indexes: [{ name: last_name_idx, transform: [lowercase], bits: "
      "auto }]\n"
      "      birth_year: { class: pii, treatment: randomized, cardinality: 120 "
      "}\n"
      "      email:\n"
      "        class: pii\n"
      "        treatment: randomized\n"
      "        indexes: [{ name: email_idx, bits: auto }]\n",
      "      - { name: name_year, fields: [last_name, birth_year], bits: 12 "
      "}\n");
  const TablePlan plan = Plan(table, 1000000);
  EXPECT_TRUE(plan.accepted) << absl::StrJoin(plan.refusals, "\n");
  // last_name and birth_year are one group: 18.9 - 12 bits for last_name_idx.
  EXPECT_EQ(plan.Index("last_name_idx")->bits, 6);
  EXPECT_EQ(plan.Index("name_year")->bits, 12);
  const GroupPlan* g = plan.GroupOf("birth_year");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g, plan.GroupOf("last_name"));
  EXPECT_THAT(g->fields, ElementsAre("birth_year", "last_name"));
  EXPECT_THAT(g->indexes, ElementsAre("last_name_idx", "name_year"));
  EXPECT_DOUBLE_EQ(g->combined_bits, 18.0);
  EXPECT_GE(g->rows_per_fingerprint, 2.0);
  // email is a group of its own with the whole budget.
  EXPECT_EQ(plan.Index("email_idx")->bits, 18);
  ASSERT_EQ(plan.groups.size(), 2u);

  // A compound index too wide for its fields, next to a single-field one.
  const TableSchema wide = Table(
      "      last_name:\n"
      "        class: pii\n"
      "        treatment: randomized\n"
      "        indexes: [{ name: last_name_idx, bits: 10 }]\n"
      "      birth_year: { class: pii, treatment: randomized, cardinality: 120 "
      "}\n",
      "      - { name: name_year, fields: [last_name, birth_year], bits: 16 "
      "}\n");
  const TablePlan refused = Plan(wide, 1000000);
  EXPECT_FALSE(refused.accepted);
  ASSERT_EQ(refused.refusals.size(), 1u);
  EXPECT_THAT(
      refused.refusals[0],
      AllOf(HasSubstr("over birth_year + last_name"),
            HasSubstr("give last_name_idx at most 2 bits or make it auto"),
            HasSubstr("give name_year at most 8 bits or make it auto")));
}

TEST(IndexPlannerTest, TransformsImplyTheDomain) {
  const TableSchema table = Table(
      "      card:\n"
      "        class: pii\n"
      "        treatment: randomized\n"
      "        indexes: [{ name: card_last4, transform: [digits, \"last:4\"], "
      "bits: auto }]\n"
      "      phone:\n"
      "        class: pii\n"
      "        treatment: randomized\n"
      "        indexes: [{ name: phone_prefix, transform: [\"first:3\", "
      "digits], bits: 12 }]\n");
  const TablePlan plan = Plan(table, 1000000);
  EXPECT_TRUE(plan.accepted) << absl::StrJoin(plan.refusals, "\n");
  const IndexPlan* last4 = plan.Index("card_last4");
  EXPECT_EQ(last4->domain_source, DomainSource::kTransforms);
  EXPECT_DOUBLE_EQ(last4->domain, 10000.0);
  EXPECT_NEAR(last4->effective_bits, std::log2(10000.0), 1e-9);
  EXPECT_DOUBLE_EQ(last4->rows_per_value, 100.0);
  // Enough bits to tell the 10^4 values apart, within the field's budget.
  EXPECT_EQ(last4->bits, 18);
  EXPECT_THAT(last4->domain_reason, HasSubstr("digits, last:4"));
  const IndexPlan* prefix = plan.Index("phone_prefix");
  EXPECT_DOUBLE_EQ(prefix->domain, 1000.0);
  // 12 bits over 1000 values: about one value per index value (a warning,
  // since 1000 is a low cardinality).
  EXPECT_NEAR(prefix->effective_bits, std::log2(1000.0), 1e-9);
  EXPECT_THAT(absl::StrJoin(plan.warnings, "\n"),
              HasSubstr("index phone_prefix over phone"));
  // A declared cardinality below the transform's bound wins.
  const TableSchema small = Table(
      "      card:\n"
      "        class: pii\n"
      "        treatment: randomized\n"
      "        cardinality: 5000\n"
      "        indexes: [{ name: card_last4, transform: [digits, \"last:4\"], "
      "bits: auto }]\n");
  const IndexPlan* p = Plan(small, 1000000).Index("card_last4");
  EXPECT_EQ(p->domain_source, DomainSource::kCardinality);
  EXPECT_DOUBLE_EQ(p->domain, 5000.0);
}

TEST(IndexPlannerTest, LowCardinalityFieldsAreWarnedAndKeptNarrow) {
  const TableSchema wide = Table(
      "      hiv_status:\n"
      "        class: pii\n"
      "        treatment: randomized\n"
      "        cardinality: 2\n"
      "        indexes: [{ name: hiv_idx, bits: 16 }]\n");
  const TablePlan plan = Plan(wide, 1000000);
  // Half a million rows per value: no row is singled out ...
  EXPECT_TRUE(plan.accepted);
  EXPECT_DOUBLE_EQ(plan.Index("hiv_idx")->effective_bits, 1.0);
  EXPECT_DOUBLE_EQ(plan.Index("hiv_idx")->rows_per_value, 500000.0);
  // ... but the index shows which rows share a value, and how many.
  ASSERT_EQ(plan.warnings.size(), 1u);
  EXPECT_THAT(
      plan.warnings[0],
      AllOf(
          HasSubstr("index hiv_idx over hiv_status (about 2 distinct values)"),
          HasSubstr("What each choice leaks"), HasSubstr("compound index")));

  // Auto: one bit, still warned (no width hides two values).
  const TableSchema automatic = Table(
      "      hiv_status:\n"
      "        class: pii\n"
      "        treatment: randomized\n"
      "        cardinality: 2\n"
      "        indexes: [{ name: hiv_idx, bits: auto }]\n"
      "      country:\n"
      "        class: pii\n"
      "        treatment: randomized\n"
      "        cardinality: 200\n"
      "        indexes: [{ name: country_idx, bits: auto }]\n");
  const TablePlan a = Plan(automatic, 1000000);
  EXPECT_TRUE(a.accepted);
  EXPECT_EQ(a.Index("hiv_idx")->bits, 1);
  // 200 countries: 64 index values, about 3 countries behind each.
  EXPECT_EQ(a.Index("country_idx")->bits, 6);
  ASSERT_EQ(a.warnings.size(), 1u) << absl::StrJoin(a.warnings, "\n");
  EXPECT_THAT(a.warnings[0], HasSubstr("index hiv_idx"));
}

TEST(IndexPlannerTest, SmallTablesAndBadArguments) {
  const TableSchema table = Table(kEmailAuto);
  const TablePlan tiny = Plan(table, 3);
  EXPECT_FALSE(tiny.accepted);
  ASSERT_EQ(tiny.refusals.size(), 1u);
  EXPECT_THAT(tiny.refusals[0],
              HasSubstr("even a 1-bit index leaves fewer than 2 rows"));

  EXPECT_EQ(PlanIndexes(table, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PlanIndexes(table, 10, {.min_matches = 1}).status().code(),
            absl::StatusCode::kInvalidArgument);

  TableSchema broken = table;
  broken.indexes[0].columns.clear();
  EXPECT_EQ(PlanIndexes(broken, 10).status().code(),
            absl::StatusCode::kInvalidArgument);

  auto bits = IndexBits(table, 1000000);
  ASSERT_TRUE(bits.ok()) << bits.status();
  EXPECT_EQ(bits->at("email_idx"), 18);

  const TablePlan none =
      Plan(Table("      notes: { class: pii, treatment: randomized }\n"), 10);
  EXPECT_TRUE(none.accepted);
  EXPECT_TRUE(none.indexes.empty());
}

TEST(IndexPlannerTest, ReasoningNamesTheFormulaAndEachChoice) {
  const TablePlan plan = Plan(Table(kEmailAuto), 1000000);
  const std::string text = absl::StrJoin(plan.reasoning, "\n");
  EXPECT_THAT(
      text,
      AllOf(HasSubstr("log2(1000000/2) = 18.9 bits"),
            HasSubstr(
                "email_idx (email): domain about 1000000 (unknown: every row "
                "distinct, the worst case); auto: 18 bits"),
            HasSubstr("about 3.8 rows per index value"),
            HasSubstr("email: indexes email_idx carry 18.0 of 18.9 bits")));
}

}  // namespace
}  // namespace keyward::fields
