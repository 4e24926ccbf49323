// Searches over encrypted fields (fields/searchable.h).
#include "fields/searchable.h"

#include <openssl/crypto.h>

#include <cstring>
#include <set>

#include "absl/base/internal/endian.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "fields/index_value.h"
#include "format/field_value.h"
#include "keyward/errors.h"

namespace keyward::fields {
namespace {

using Condition = FieldEncryptor::Condition;
using SearchColumn = FieldEncryptor::SearchColumn;

// Wipes a string holding plaintext-derived bytes.
void Wipe(std::string& s) {
  OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

// The single-column indexes of `column`.
std::vector<const BlindIndex*> SingleIndexes(const TableSchema& table, absl::string_view column) {
  std::vector<const BlindIndex*> out;
  for (const BlindIndex* index : table.IndexesOf(column)) {
    if (!index->compound()) out.push_back(index);
  }
  return out;
}

// What a condition is compared with: the transform chains under which the
// decrypted value must equal the condition's value (one empty chain: exact).
struct ConditionPlan {
  std::string column;  // the table column the condition is on
  std::vector<const std::vector<IndexTransform>*> chains;
};

const std::vector<IndexTransform>& NoTransform() {
  static const std::vector<IndexTransform> none;
  return none;
}

absl::StatusOr<ConditionPlan> PlanCondition(const FieldSchema& schema, const TableSchema& table,
                                            const Condition& c,
                                            const std::vector<Condition>& all) {
  ConditionPlan plan;
  auto rule = table.fields.find(c.name);
  if (rule == table.fields.end()) {
    if (c.name == table.id_column || (!schema.tenant_column().empty() &&
                                      c.name == schema.tenant_column())) {
      plan.column = c.name;
      plan.chains.push_back(&NoTransform());
      return plan;
    }
    const BlindIndex* index = table.Index(c.name);
    if (index == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "table ", table.name, " has no field or blind index named ", c.name,
          " in the schema"));
    }
    if (index->compound()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "index ", c.name, " is compound: give a condition on each of its fields (",
          absl::StrJoin(index->columns, ", "), ") instead"));
    }
    plan.column = index->columns[0];
    plan.chains.push_back(&index->transforms);
    return plan;
  }
  plan.column = c.name;
  const FieldRule& f = rule->second;
  // Compound indexes whose every column has a condition are searched too:
  // the condition must then also hold under their transform.
  for (const BlindIndex* index : table.IndexesOf(c.name)) {
    if (!index->compound()) continue;
    bool covered = true;
    for (const std::string& col : index->columns) {
      bool has = false;
      for (const Condition& other : all) has = has || other.name == col;
      covered = covered && has;
    }
    if (covered) plan.chains.push_back(&index->transforms);
  }
  const bool through_compound = !plan.chains.empty();
  if (f.treatment != Treatment::kRandomized) {
    plan.chains.push_back(&NoTransform());
    return plan;
  }
  for (const BlindIndex* index : SingleIndexes(table, c.name)) {
    plan.chains.push_back(&index->transforms);
  }
  if (!plan.chains.empty() || through_compound) return plan;
  std::string hint = "add a blind index to it in the schema (docs/fields.md, \"Blind indexes\")";
  const auto compound = table.IndexesOf(c.name);
  if (!compound.empty()) {
    hint = absl::StrCat("compound index ", compound[0]->name, " covers it: give a condition on "
                        "each of ", absl::StrJoin(compound[0]->columns, ", "));
  }
  return absl::InvalidArgumentError(absl::StrCat(table.name, ".", c.name, " is encrypted with random nonces and "
                                "has no blind index, so it cannot be searched: ", hint));
}

// Whether a compound index over `column` has a condition on each of its
// columns.
bool CoveredByCompound(const TableSchema& table, const std::string& column,
                       const std::vector<Condition>& all) {
  for (const BlindIndex* index : table.IndexesOf(column)) {
    if (!index->compound()) continue;
    bool covered = true;
    for (const std::string& col : index->columns) {
      bool has = false;
      for (const Condition& other : all) has = has || other.name == col;
      covered = covered && has;
    }
    if (covered) return true;
  }
  return false;
}

}  // namespace

void EncodeValue(const FieldValue& value, EncodedValue* out) {
  if (const int64_t* i = std::get_if<int64_t>(&value)) {
    out->type = format::FieldType::kInteger;
    absl::big_endian::Store64(out->number, static_cast<uint64_t>(*i));
    out->payload = absl::string_view(out->number, 8);
  } else if (const double* d = std::get_if<double>(&value)) {
    out->type = format::FieldType::kReal;
    uint64_t bits;
    std::memcpy(&bits, d, 8);
    absl::big_endian::Store64(out->number, bits);
    out->payload = absl::string_view(out->number, 8);
  } else if (const std::string* s = std::get_if<std::string>(&value)) {
    out->type = format::FieldType::kText;
    out->payload = *s;
  } else if (const FieldBytes* b = std::get_if<FieldBytes>(&value)) {
    out->type = format::FieldType::kBytes;
    out->payload = b->bytes;
  } else {
    out->type = format::FieldType::kJson;
    out->payload = std::get<FieldJson>(value).text;
  }
}

FieldValue DecodeValue(format::FieldType type, std::string&& payload) {
  FieldValue out;
  switch (type) {
    case format::FieldType::kInteger:
      out = static_cast<int64_t>(absl::big_endian::Load64(payload.data()));
      break;
    case format::FieldType::kReal: {
      const uint64_t bits = absl::big_endian::Load64(payload.data());
      double d;
      std::memcpy(&d, &bits, 8);
      out = d;
      break;
    }
    case format::FieldType::kText:
      out = std::move(payload);
      break;
    case format::FieldType::kBytes:
      out = FieldBytes{std::move(payload)};
      break;
    case format::FieldType::kJson:
      out = FieldJson{std::move(payload)};
      break;
  }
  // A short value lived in the string's own buffer, which a move copies
  // rather than steals: wipe what stays behind.
  OPENSSL_cleanse(payload.data(), payload.capacity());
  return out;
}

void WipeRow(FieldRow& row) {
  for (auto& [column, v] : row) {
    if (std::string* s = std::get_if<std::string>(&v)) OPENSSL_cleanse(s->data(), s->size());
    if (FieldBytes* b = std::get_if<FieldBytes>(&v)) {
      OPENSSL_cleanse(b->bytes.data(), b->bytes.size());
    }
    if (FieldJson* j = std::get_if<FieldJson>(&v)) OPENSSL_cleanse(j->text.data(), j->text.size());
  }
  row.clear();
}

std::vector<std::string> Searchable::ColumnsOf(const TableSchema& table,
                                               const std::string& name) const {
  if (table.fields.count(name)) return {name};
  if (const BlindIndex* index = table.Index(name)) return index->columns;
  return {name};
}

absl::StatusOr<std::optional<std::string>> Canonical(const FieldValue& value,
                                                     const std::vector<IndexTransform>& chain) {
  if (std::holds_alternative<std::monostate>(value)) return std::optional<std::string>();
  KW_ASSIGN_OR_RETURN(std::string text, IndexText(value));
  if (chain.empty()) return std::optional<std::string>(std::move(text));
  KW_ASSIGN_OR_RETURN(std::string out, ApplyTransforms(chain, std::move(text)));
  return std::optional<std::string>(std::move(out));
}

absl::StatusOr<std::shared_ptr<const Searchable::Versions>> Searchable::VersionsOf(
    const std::string& table) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  auto it = loaded_.find(table);
  if (it != loaded_.end() && now - it->second.at < absl::Seconds(kIndexRefreshSeconds) / 2) {
    return it->second.versions;
  }
  KW_ASSIGN_OR_RETURN(Versions versions,
                      LoadIndexVersions(*catalog_, schema_->dataset(), table));
  KW_ASSIGN_OR_RETURN(const TableSchema* spec, schema_->Table(table));
  KW_RETURN_IF_ERROR(ValidateIndexVersions(*schema_, *spec, versions));
  auto shared = std::make_shared<const Versions>(std::move(versions));
  loaded_[table] = Loaded{now, shared};
  return shared;
}

void Searchable::Reload() {
  absl::MutexLock lock(&mu_);
  loaded_.clear();
}

absl::StatusOr<std::optional<int64_t>> Searchable::IndexValue(
    const std::string& table, const IndexVersion& version,
    const std::vector<const FieldValue*>& values) {
  for (const FieldValue* v : values) {
    if (v == nullptr || std::holds_alternative<std::monostate>(*v)) {
      return std::optional<int64_t>();
    }
  }
  std::map<std::string, FieldKeys::Key> class_keys;
  for (const auto& [cls, ref] : version.key_refs) {
    KW_ASSIGN_OR_RETURN(class_keys[cls],
                        keys_.ForDecryption(SlotView(schema_->dataset(), cls, ""), ref));
  }
  KW_ASSIGN_OR_RETURN(std::shared_ptr<const IndexHasher> hasher,
                      derived_.Index(class_keys, schema_->dataset(), table, version.index,
                                     version.version, version.bits));
  std::vector<std::string> parts;
  parts.reserve(values.size());
  absl::Status failed;
  for (const FieldValue* v : values) {
    absl::StatusOr<std::string> text = IndexText(*v);
    if (text.ok()) text = ApplyTransforms(version.transforms, std::move(*text));
    if (!text.ok()) {
      failed = text.status();
      break;
    }
    parts.push_back(std::move(*text));
  }
  std::optional<int64_t> out;
  if (failed.ok()) {
    std::vector<absl::string_view> views(parts.begin(), parts.end());
    out = static_cast<int64_t>(hasher->Value(views));
  }
  for (std::string& p : parts) Wipe(p);
  if (!failed.ok()) return failed;
  return out;
}

absl::Status Searchable::AddIndexValues(const TableSchema& table, FieldRow& row) {
  if (table.indexes.empty()) return absl::OkStatus();
  KW_ASSIGN_OR_RETURN(std::shared_ptr<const Versions> versions, VersionsOf(table.name));
  for (const IndexVersion& v : *versions) {
    if (!v.live()) continue;
    std::vector<const FieldValue*> values;
    std::vector<std::string> missing;
    for (const std::string& col : v.columns) {
      auto it = row.find(col);
      if (it == row.end()) {
        missing.push_back(col);
      } else {
        values.push_back(&it->second);
      }
    }
    if (missing.size() == v.columns.size()) continue;  // the row does not touch this index
    if (!missing.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "index ", v.index, " of ", table.name, " covers ", absl::StrJoin(v.columns, ", "),
          ": the row lacks ", absl::StrJoin(missing, ", "),
          "; pass every field of the index, or the index would go stale"));
    }
    KW_ASSIGN_OR_RETURN(std::optional<int64_t> value, IndexValue(table.name, v, values));
    row[v.column] = value.has_value() ? FieldValue(*value) : FieldValue();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<FieldValue>> Searchable::DeterministicCandidates(
    const TableSchema& table, const FieldRule& rule, const FieldValue& value,
    absl::string_view tenant) {
  if (!schema_->tenant_column().empty() && tenant.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        table.name, ".", rule.column, " is deterministic under a key per tenant: search it "
        "within one tenant (pass the tenant; the CLI's --tenant)"));
  }
  const KeySlot slot{schema_->dataset(), rule.class_name, std::string(tenant)};
  KW_ASSIGN_OR_RETURN(std::vector<VaultKey> generations, keys_.vault().Generations(slot));
  // The forms a stored value may have: the value itself, and for text
  // holding a decimal integer (as a CLI gives it) the integer too.
  std::vector<const FieldValue*> forms = {&value};
  FieldValue other;  // the same number in the other form, if any
  int64_t as_int = 0;
  if (const std::string* s = std::get_if<std::string>(&value);
      s != nullptr && absl::SimpleAtoi(*s, &as_int) && absl::StrCat(as_int) == *s) {
    other.emplace<int64_t>(as_int);
    forms.push_back(&other);
  } else if (const int64_t* i = std::get_if<int64_t>(&value)) {
    other.emplace<std::string>(absl::StrCat(*i));
    forms.push_back(&other);
  }
  const format::FieldWhere where(schema_->dataset(), table.name, rule.column, tenant, "");
  std::vector<FieldValue> out;
  for (const VaultKey& stored : generations) {
    KW_ASSIGN_OR_RETURN(FieldKeys::Key key, keys_.ForDecryption(SlotView(slot), stored.ref));
    KW_ASSIGN_OR_RETURN(std::shared_ptr<const crypto::DeterministicAead> daead,
                        derived_.Deterministic(key, where));
    for (const FieldValue* form : forms) {
      EncodedValue encoded;
      EncodeValue(*form, &encoded);
      std::string binary;
      absl::Status sealed = format::SealDeterministicFieldInto(*daead, key.ref, where,
                                                               encoded.type, encoded.payload,
                                                               &binary);
      OPENSSL_cleanse(encoded.number, sizeof(encoded.number));
      KW_RETURN_IF_ERROR(sealed);
      if (encoding_ == FieldEncryptor::Encoding::kBytes) {
        out.emplace_back(std::in_place_type<FieldBytes>, FieldBytes{std::move(binary)});
      } else {
        out.emplace_back(std::in_place_type<std::string>, format::FieldToText(binary));
      }
    }
  }
  return out;
}

absl::StatusOr<std::vector<SearchColumn>> Searchable::IndexTerm(
    const TableSchema& table, const BlindIndex& index,
    const std::map<std::string, const FieldValue*>& values) {
  KW_ASSIGN_OR_RETURN(std::shared_ptr<const Versions> versions, VersionsOf(table.name));
  std::vector<SearchColumn> term;
  for (const IndexVersion& v : *versions) {
    if (v.index != index.name || !v.live()) continue;
    std::vector<const FieldValue*> in_order;
    for (const std::string& col : v.columns) {
      auto it = values.find(col);
      if (it == values.end()) {
        return absl::InvalidArgumentError(absl::StrCat("index ", index.name, " version ",
                                                       v.version, " covers ", col,
                                                       ", which has no condition"));
      }
      in_order.push_back(it->second);
    }
    KW_ASSIGN_OR_RETURN(std::optional<int64_t> value, IndexValue(table.name, v, in_order));
    if (!value.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("a condition on index ", index.name, " is NULL: NULL is never equal"));
    }
    term.push_back(SearchColumn{v.column, {*value}});
  }
  if (term.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("blind index ", index.name, " of ", table.name,
                                  " has not been built yet: run `keyward index rebuild --table ",
                                  table.name, "`"));
  }
  return term;
}

absl::StatusOr<FieldEncryptor::Search> Searchable::Prepare(absl::string_view table_name,
                                                           std::vector<Condition> conditions,
                                                           absl::string_view tenant) {
  KW_ASSIGN_OR_RETURN(const TableSchema* table, schema_->Table(table_name));
  if (conditions.empty()) {
    return absl::InvalidArgumentError("a search needs at least one condition");
  }
  FieldEncryptor::Search search;
  search.table = table->name;
  search.tenant = std::string(tenant);
  for (const Condition& c : conditions) {
    if (std::holds_alternative<std::monostate>(c.value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("the condition on ", c.name, " is NULL: NULL is never equal"));
    }
    // Refuses what cannot be searched before any key is fetched.
    KW_RETURN_IF_ERROR(PlanCondition(*schema_, *table, c, conditions).status());
    auto rule = table->fields.find(c.name);
    if (rule == table->fields.end()) {
      if (const BlindIndex* index = table->Index(c.name)) {
        KW_ASSIGN_OR_RETURN(auto term, IndexTerm(*table, *index, {{index->columns[0], &c.value}}));
        search.terms.push_back(std::move(term));
      } else {
        search.terms.push_back({SearchColumn{c.name, {c.value}}});
      }
      continue;
    }
    const FieldRule& f = rule->second;
    if (f.treatment == Treatment::kPlaintext) {
      search.terms.push_back({SearchColumn{c.name, {c.value}}});
    } else if (f.treatment == Treatment::kDeterministic) {
      KW_ASSIGN_OR_RETURN(std::vector<FieldValue> candidates,
                          DeterministicCandidates(*table, f, c.value, tenant));
      if (candidates.empty()) {
        // No key yet for this tenant and class: nothing was ever stored.
        search.terms.push_back({});
      } else {
        search.terms.push_back({SearchColumn{c.name, std::move(candidates)}});
      }
    } else {
      // An index added to the schema but not built yet is skipped while
      // another covers the condition (Matches still checks its transform).
      absl::Status unbuilt;
      bool any = false;
      for (const BlindIndex* index : SingleIndexes(*table, c.name)) {
        absl::StatusOr<std::vector<SearchColumn>> term =
            IndexTerm(*table, *index, {{c.name, &c.value}});
        if (absl::IsFailedPrecondition(term.status())) {
          unbuilt = term.status();
          continue;
        }
        if (!term.ok()) return term.status();
        search.terms.push_back(std::move(*term));
        any = true;
      }
      if (!any && !unbuilt.ok() && !CoveredByCompound(*table, c.name, conditions)) return unbuilt;
    }
  }
  // Compound indexes with a condition on each of their columns.
  std::map<std::string, const FieldValue*> values;
  for (const Condition& c : conditions) values[c.name] = &c.value;
  for (const BlindIndex& index : table->indexes) {
    if (!index.compound()) continue;
    bool covered = true;
    for (const std::string& col : index.columns) covered = covered && values.count(col) > 0;
    if (!covered) continue;
    absl::StatusOr<std::vector<SearchColumn>> term = IndexTerm(*table, index, values);
    if (absl::IsFailedPrecondition(term.status())) {
      // Not built yet: fine when each of its fields is searched otherwise.
      bool others = true;
      for (const std::string& col : index.columns) {
        const auto rule = table->fields.find(col);
        others = others && rule != table->fields.end() &&
                 (rule->second.treatment == Treatment::kDeterministic ||
                  !SingleIndexes(*table, col).empty());
      }
      if (others) continue;
      return term.status();
    }
    if (!term.ok()) return term.status();
    search.terms.push_back(std::move(*term));
  }
  if (!schema_->tenant_column().empty() && !tenant.empty()) {
    search.terms.push_back({SearchColumn{schema_->tenant_column(), {std::string(tenant)}}});
  }
  search.conditions = std::move(conditions);
  return search;
}

Searchable::Matcher::Matcher(Searchable& searchable, const FieldEncryptor::Search& search)
    : search_(search) {
  const FieldSchema& schema = *searchable.schema_;
  absl::StatusOr<const TableSchema*> table = schema.Table(search.table);
  if (!table.ok()) {
    table_status_ = table.status();
    return;
  }
  if (!search.tenant.empty() && !schema.tenant_column().empty()) {
    tenant_column_ = &schema.tenant_column();
  }
  checks_.reserve(search.conditions.size());
  for (const Condition& c : search.conditions) {
    absl::StatusOr<ConditionPlan> plan = PlanCondition(schema, **table, c, search.conditions);
    if (!plan.ok()) {
      checks_.push_back(plan.status());
      continue;
    }
    Check check;
    check.column = std::move(plan->column);
    for (const std::vector<IndexTransform>* chain : plan->chains) {
      check.wants.emplace_back(chain, Canonical(c.value, *chain));
    }
    checks_.push_back(std::move(check));
  }
}

Searchable::Matcher::~Matcher() {
  for (absl::StatusOr<Check>& check : checks_) {
    if (!check.ok()) continue;
    for (auto& [chain, want] : check->wants) {
      if (want.ok() && want->has_value()) Wipe(**want);
    }
  }
}

absl::StatusOr<bool> Searchable::Matcher::Matches(
    const FieldRow& row, const std::map<std::string, absl::Status>& failed) const {
  KW_RETURN_IF_ERROR(table_status_);
  if (tenant_column_ != nullptr) {
    auto t = row.find(*tenant_column_);
    KW_ASSIGN_OR_RETURN(std::optional<std::string> have,
                        Canonical(t == row.end() ? FieldValue() : t->second, NoTransform()));
    if (!have.has_value() || *have != search_.tenant) return false;
  }
  for (const absl::StatusOr<Check>& check : checks_) {
    if (!check.ok()) return check.status();
    if (auto f = failed.find(check->column); f != failed.end()) return f->second;
    auto it = row.find(check->column);
    if (it == row.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the candidate row has no column ", check->column, ": select it to confirm the match"));
    }
    for (const auto& [chain, want] : check->wants) {
      if (!want.ok()) return want.status();
      absl::StatusOr<std::optional<std::string>> have = Canonical(it->second, *chain);
      // A stored value the transform cannot read (bytes that are not
      // UTF-8) does not match.
      const bool equal = have.ok() && have->has_value() && want->has_value() && **have == **want;
      if (have.ok() && have->has_value()) Wipe(**have);
      if (!equal) return false;
    }
  }
  return true;
}

absl::StatusOr<bool> Searchable::Matches(const FieldEncryptor::Search& search,
                                         const FieldRow& row,
                                         const std::map<std::string, absl::Status>& failed) {
  return Matcher(*this, search).Matches(row, failed);
}

}  // namespace keyward::fields
