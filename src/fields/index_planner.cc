#include "fields/index_planner.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace keyward::fields {
namespace {

// Comparisons of bit counts computed in floating point.
constexpr double kEpsilon = 1e-9;

std::string Num(double x) {
  if (x >= 100 || x == std::floor(x)) return absl::StrFormat("%.0f", x);
  return absl::StrFormat("%.1f", x);
}

std::string Bits(double x) { return absl::StrFormat("%.1f", x); }

// The number of distinct values a transform chain can output, or 0 when
// it does not bound them: digits with first:N or last:N leave at most
// 10^N (strings shorter than N digits add a little; ignored).
double TransformDomain(const std::vector<IndexTransform>& chain) {
  bool digits = false;
  int cut = 0;
  for (const IndexTransform& t : chain) {
    if (t.kind == IndexTransform::Kind::kDigits) digits = true;
    if (t.kind == IndexTransform::Kind::kFirst ||
        t.kind == IndexTransform::Kind::kLast) {
      cut = cut == 0 ? t.n : std::min(cut, t.n);
    }
  }
  return digits && cut > 0 ? std::pow(10.0, cut) : 0;
}

struct Domain {
  double values = 0;  // not yet capped at the row count
  DomainSource source = DomainSource::kUnknown;
  std::string reason;
};

// What one column contributes to an index's input domain.
Domain ColumnDomain(const TableSchema& table, const std::string& column,
                    const std::vector<IndexTransform>& chain, double rows) {
  const auto rule = table.fields.find(column);
  const uint64_t card =
      rule == table.fields.end() ? 0 : rule->second.cardinality;
  const double by_transforms = TransformDomain(chain);
  if (by_transforms > 0 &&
      (card == 0 || by_transforms < static_cast<double>(card))) {
    std::vector<std::string> names;
    for (const IndexTransform& t : chain)
      names.push_back(IndexTransformName(t));
    return {by_transforms, DomainSource::kTransforms,
            absl::StrCat("transform ", absl::StrJoin(names, ", "),
                         " leaves at most ", Num(by_transforms))};
  }
  if (card > 0) {
    return {static_cast<double>(card), DomainSource::kCardinality,
            absl::StrCat("cardinality ", card)};
  }
  return {rows, DomainSource::kUnknown,
          "unknown: every row distinct, the worst case"};
}

// The index's input domain: the product over its columns, at most the rows.
Domain IndexDomain(const TableSchema& table, const BlindIndex& index,
                   double rows) {
  Domain out;
  out.values = 1;
  out.source = DomainSource::kCardinality;
  std::vector<std::string> reasons;
  bool transforms = false;
  for (const std::string& column : index.columns) {
    Domain d = ColumnDomain(table, column, index.transforms, rows);
    out.values *= d.values;
    if (d.source == DomainSource::kUnknown) out.source = DomainSource::kUnknown;
    transforms |= d.source == DomainSource::kTransforms;
    reasons.push_back(index.compound() ? absl::StrCat(column, ": ", d.reason)
                                       : d.reason);
  }
  if (out.source != DomainSource::kUnknown && transforms)
    out.source = DomainSource::kTransforms;
  out.reason = absl::StrJoin(reasons, " x ");
  if (out.values > rows) {
    if (out.source != DomainSource::kUnknown || index.compound()) {
      absl::StrAppend(&out.reason, "; capped at one value per row");
    }
    out.values = rows;
  }
  return out;
}

// Union-find over column names: fields linked by compound indexes.
class Groups {
 public:
  std::string Find(const std::string& c) {
    auto it = parent_.find(c);
    if (it == parent_.end()) {
      parent_[c] = c;
      return c;
    }
    if (it->second == c) return c;
    std::string root = Find(it->second);
    parent_[c] = root;
    return root;
  }
  void Union(const std::string& a, const std::string& b) {
    const std::string ra = Find(a), rb = Find(b);
    if (ra != rb) parent_[rb] = ra;
  }

 private:
  std::map<std::string, std::string> parent_;
};

// The widest auto index over a low-cardinality domain that still puts at
// least min_matches values behind each index value on average.
int LowCardinalityCap(double domain, double min_matches) {
  if (domain > static_cast<double>(kLowCardinality)) return kMaxIndexBits;
  const double bits = std::floor(std::log2(domain / min_matches) + kEpsilon);
  return static_cast<int>(
      std::clamp(bits, 1.0, static_cast<double>(kMaxIndexBits)));
}

int ClampBits(double bits, int cap) {
  return static_cast<int>(
      std::clamp(std::floor(bits + kEpsilon), 1.0, static_cast<double>(cap)));
}

}  // namespace

absl::string_view DomainSourceName(DomainSource source) {
  switch (source) {
    case DomainSource::kCardinality:
      return "cardinality";
    case DomainSource::kTransforms:
      return "transforms";
    case DomainSource::kUnknown:
      return "unknown";
  }
  return "unknown";
}

const IndexPlan* TablePlan::Index(absl::string_view name) const {
  for (const IndexPlan& p : indexes) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const GroupPlan* TablePlan::GroupOf(absl::string_view field) const {
  for (const GroupPlan& g : groups) {
    if (std::find(g.fields.begin(), g.fields.end(), field) != g.fields.end())
      return &g;
  }
  return nullptr;
}

absl::StatusOr<TablePlan> PlanIndexes(const TableSchema& table, uint64_t rows,
                                      const PlanOptions& options) {
  if (rows == 0) {
    return absl::InvalidArgumentError(
        "the expected row count must be at least 1 (plan for the size the "
        "table will reach)");
  }
  if (options.min_matches < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_matches must be at least 2 (", options.min_matches,
                     " lets an index value single out one row)"));
  }
  for (const BlindIndex& index : table.indexes) {
    if (index.columns.empty() || index.bits < 0 || index.bits > kMaxIndexBits) {
      return absl::InvalidArgumentError(
          absl::StrCat("table ", table.name, ": index ", index.name,
                       " needs at least one column and 1..", kMaxIndexBits,
                       " bits or auto (is the schema checked?)"));
    }
  }
  TablePlan plan;
  plan.table = table.name;
  plan.rows = rows;
  plan.min_matches = options.min_matches;
  const double r = static_cast<double>(rows);
  const double m = static_cast<double>(options.min_matches);
  const double budget = std::log2(r / m);
  const double sqrt_r = std::sqrt(r);

  plan.reasoning.push_back(absl::StrCat(
      "table ", table.name, ", ", rows,
      " rows; every index value, and every combination of "
      "index values a row carries, must match at least ",
      options.min_matches,
      " rows: the indexes over one group of fields may carry at most log2(",
      rows, "/", options.min_matches, ") = ", Bits(budget),
      " bits (coincidences C = rows / 2^bits >= ", options.min_matches,
      "; docs/decisions/0025-blind-index-planning.md)"));
  if (table.indexes.empty()) {
    plan.reasoning.push_back("no blind indexes: nothing to plan");
    plan.accepted = true;
    return plan;
  }

  // Indexes and their domains.
  std::vector<double> log_domain;
  for (const BlindIndex& index : table.indexes) {
    IndexPlan p;
    p.name = index.name;
    p.columns = index.columns;
    p.declared_bits = index.bits;
    Domain d = IndexDomain(table, index, r);
    p.domain = d.values;
    p.domain_source = d.source;
    p.domain_reason = std::move(d.reason);
    log_domain.push_back(std::log2(p.domain));
    plan.indexes.push_back(std::move(p));
  }

  // Groups of fields linked by indexes, in the order of their first index.
  Groups uf;
  for (const BlindIndex& index : table.indexes) {
    for (const std::string& c : index.columns) uf.Union(index.columns[0], c);
  }
  std::map<std::string, size_t> group_of_root;
  std::vector<std::vector<size_t>> members;  // index positions per group
  for (size_t i = 0; i < table.indexes.size(); ++i) {
    const std::string root = uf.Find(table.indexes[i].columns[0]);
    auto [it, fresh] = group_of_root.emplace(root, plan.groups.size());
    if (fresh) {
      plan.groups.emplace_back();
      members.emplace_back();
    }
    GroupPlan& g = plan.groups[it->second];
    members[it->second].push_back(i);
    g.indexes.push_back(table.indexes[i].name);
    for (const std::string& c : table.indexes[i].columns) {
      if (std::find(g.fields.begin(), g.fields.end(), c) == g.fields.end())
        g.fields.push_back(c);
    }
  }

  for (size_t gi = 0; gi < plan.groups.size(); ++gi) {
    GroupPlan& g = plan.groups[gi];
    std::sort(g.fields.begin(), g.fields.end());
    const std::string group_name = absl::StrJoin(g.fields, " + ");
    g.domain = 1;
    for (const std::string& f : g.fields) {
      const auto rule = table.fields.find(f);
      const uint64_t card =
          rule == table.fields.end() ? 0 : rule->second.cardinality;
      g.domain =
          std::min(r, g.domain * (card > 0 ? static_cast<double>(card) : r));
    }
    g.budget_bits = budget;
    const double group_cap = std::log2(g.domain);

    // Fixed indexes first; the rest of the budget is shared by the auto
    // indexes (water-filling: an auto index whose domain needs less than
    // its share takes what it needs, and the rest is shared again).
    double fixed = 0;
    std::vector<size_t> autos;
    for (size_t i : members[gi]) {
      IndexPlan& p = plan.indexes[i];
      if (p.declared_bits > 0) {
        p.bits = p.declared_bits;
        fixed += std::min<double>(p.bits, log_domain[i]);
      } else {
        autos.push_back(i);
      }
    }
    if (group_cap <= budget + kEpsilon) {
      plan.reasoning.push_back(absl::StrCat(
          group_name, ": at most ", Num(g.domain),
          " distinct values, so at least ", Num(r / g.domain),
          " rows share each even when its indexes tell every value apart"));
      for (size_t i : autos) {
        IndexPlan& p = plan.indexes[i];
        const int cap = LowCardinalityCap(p.domain, m);
        p.bits = std::min(
            cap, std::max(static_cast<int>(std::ceil(log_domain[i] - kEpsilon)),
                          ClampBits(budget, kMaxIndexBits)));
        p.bits = std::max(p.bits, 1);
      }
    } else {
      double remaining = budget - fixed;
      std::vector<size_t> open = autos;
      while (!open.empty()) {
        const double share = remaining / static_cast<double>(open.size());
        std::vector<size_t> saturated, rest;
        for (size_t i : open) {
          const int cap = LowCardinalityCap(plan.indexes[i].domain, m);
          (std::min<double>(cap, log_domain[i]) <= share + kEpsilon ? saturated
                                                                    : rest)
              .push_back(i);
        }
        if (saturated.empty()) {
          for (size_t i : open) {
            plan.indexes[i].bits =
                ClampBits(share, LowCardinalityCap(plan.indexes[i].domain, m));
          }
          break;
        }
        for (size_t i : saturated) {
          IndexPlan& p = plan.indexes[i];
          const int cap = LowCardinalityCap(p.domain, m);
          p.bits = std::max(
              1, std::min(cap, std::max(static_cast<int>(std::ceil(
                                            log_domain[i] - kEpsilon)),
                                        ClampBits(share, kMaxIndexBits))));
          remaining -= std::min<double>(p.bits, log_domain[i]);
        }
        open = std::move(rest);
      }
    }

    // Per index: what it shows and what a lookup costs.
    double sum = 0;
    for (size_t i : members[gi]) {
      IndexPlan& p = plan.indexes[i];
      p.effective_bits = std::min<double>(p.bits, log_domain[i]);
      sum += p.effective_bits;
      p.rows_per_value = std::max(1.0, r / std::exp2(p.effective_bits));
      const double matches = std::max(1.0, r / p.domain);
      const double others = std::max(0.0, r - matches);
      p.false_positives = others / std::exp2(p.bits);
      p.useful_bits =
          others > sqrt_r
              ? static_cast<int>(
                    std::clamp(std::ceil(std::log2(others / sqrt_r) - kEpsilon),
                               1.0, static_cast<double>(kMaxIndexBits)))
              : 1;
      plan.reasoning.push_back(absl::StrCat(
          p.name, " (", absl::StrJoin(p.columns, ", "), "): domain about ",
          Num(p.domain), " (", p.domain_reason, "); ",
          p.declared_bits > 0 ? absl::StrCat("declared ", p.bits, " bits")
                              : absl::StrCat("auto: ", p.bits, " bits"),
          "; effective ", Bits(p.effective_bits), " bits; about ",
          Num(p.rows_per_value), " rows per index value, ",
          Num(p.false_positives), " false positives per lookup"));
      const bool low = p.domain <= static_cast<double>(kLowCardinality);
      if (low && std::exp2(p.bits) * m > p.domain) {
        const int cap = LowCardinalityCap(p.domain, m);
        plan.warnings.push_back(absl::StrCat(
            "index ", p.name, " over ", absl::StrJoin(p.columns, ", "),
            " (about ", Num(p.domain), " distinct values) has ",
            Num(std::exp2(p.bits)), " index values, fewer than ",
            options.min_matches,
            " values behind each: it tells the values apart and shows how "
            "often each occurs (docs/fields.md, \"What each choice leaks\"); ",
            cap >= 1 && std::exp2(cap) * m <= p.domain
                ? absl::StrCat("give it at most ", cap,
                               " bits (or make it auto), or ")
                : "",
            "index the field together with one that has many values (a "
            "compound index under "
            "the table's `indexes`)"));
      } else if (!low && p.bits < p.useful_bits) {
        plan.warnings.push_back(absl::StrCat(
            "index ", p.name, " returns about ", Num(p.false_positives),
            " rows of other values per lookup, more than sqrt(rows) = ",
            Num(sqrt_r), "; it needs ", p.useful_bits,
            " bits to be worth its column",
            p.declared_bits > 0 ? ""
                                : ", which the other indexes over its fields "
                                  "leave no room for"));
      }
    }

    g.combined_bits = std::min(sum, group_cap);
    g.rows_per_fingerprint = std::max(1.0, r / std::exp2(g.combined_bits));
    g.accepted = g.rows_per_fingerprint + kEpsilon >= m;
    plan.reasoning.push_back(absl::StrCat(
        group_name, ": indexes ", absl::StrJoin(g.indexes, ", "), " carry ",
        Bits(g.combined_bits), " of ", Bits(std::max(0.0, budget)),
        " bits; about ", Num(g.rows_per_fingerprint),
        " rows share one combination of their values: ",
        g.accepted
            ? "ok"
            : absl::StrCat("REFUSED (fewer than ", options.min_matches, ")")));
    if (g.accepted) continue;

    // The refusal names the numbers and a fix.
    std::vector<std::string> described, fixes;
    for (size_t i : members[gi]) {
      const IndexPlan& p = plan.indexes[i];
      described.push_back(absl::StrCat(
          p.name, " (", p.declared_bits > 0 ? "" : "auto, ", p.bits, " bits)"));
      if (p.declared_bits == 0) continue;
      const double others = sum - p.effective_bits;
      const double room = std::floor(budget - others + kEpsilon);
      if (room >= 1 && room < p.bits) {
        fixes.push_back(absl::StrCat("give ", p.name, " at most ",
                                     static_cast<int>(room),
                                     " bits or make it auto"));
      }
    }
    std::string fix;
    if (budget < 1 - kEpsilon) {
      fix = absl::StrCat(
          "at ", rows, " rows even a 1-bit index leaves fewer than ",
          options.min_matches, " rows per value: drop the indexes over ",
          group_name, " or plan for a larger table");
    } else if (!fixes.empty()) {
      fix = absl::StrJoin(fixes, "; or ");
    } else {
      fix = absl::StrCat(
          "give them at most ", static_cast<int>(std::floor(budget + kEpsilon)),
          " bits in total (making them auto shares the budget between them), "
          "or drop one");
    }
    plan.refusals.push_back(absl::StrCat(
        "table ", table.name, ": ",
        described.size() == 1 ? "index " : "indexes ",
        absl::StrJoin(described, ", "), " over ", group_name,
        described.size() == 1 ? " carries " : " carry ", Bits(g.combined_bits),
        " bits together",
        sum > g.combined_bits + kEpsilon
            ? absl::StrCat(" (", Bits(sum), " summed, capped by the ",
                           Num(g.domain), " distinct values)")
            : "",
        "; at ", rows, " rows that leaves about ", Num(g.rows_per_fingerprint),
        " row(s) per combination of index values, fewer than ",
        options.min_matches, " (at most ", Bits(std::max(0.0, budget)),
        " bits keep ", options.min_matches, "): ", fix));
  }
  plan.accepted = plan.refusals.empty();
  return plan;
}

absl::StatusOr<std::map<std::string, int>> IndexBits(
    const TableSchema& table, uint64_t rows, const PlanOptions& options) {
  absl::StatusOr<TablePlan> plan = PlanIndexes(table, rows, options);
  if (!plan.ok()) return plan.status();
  if (!plan->accepted) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the blind index plan is refused (`keyward index plan` explains): ",
        absl::StrJoin(plan->refusals, "; ")));
  }
  std::map<std::string, int> bits;
  for (const IndexPlan& p : plan->indexes) bits[p.name] = p.bits;
  return bits;
}

}  // namespace keyward::fields
