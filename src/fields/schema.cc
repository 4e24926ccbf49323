// Parsing and checking a classification schema (keyward/field_schema.h).
// Every problem is collected with its line, so `keyward schema check` can
// list them all at once instead of one per run.
#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "keyward/field_schema.h"
#include "yaml-cpp/yaml.h"

namespace keyward {

absl::string_view EncryptRuleName(EncryptRule rule) {
  switch (rule) {
    case EncryptRule::kRequired: return "required";
    case EncryptRule::kOptional: return "optional";
    case EncryptRule::kNever: return "never";
  }
  return "?";
}

absl::string_view TreatmentName(Treatment treatment) {
  switch (treatment) {
    case Treatment::kPlaintext: return "plaintext";
    case Treatment::kRandomized: return "randomized";
    case Treatment::kDeterministic: return "deterministic";
  }
  return "?";
}

std::string IndexTransformName(const IndexTransform& t) {
  switch (t.kind) {
    case IndexTransform::Kind::kLowercase: return "lowercase";
    case IndexTransform::Kind::kTrim: return "trim";
    case IndexTransform::Kind::kDigits: return "digits";
    case IndexTransform::Kind::kLast: return absl::StrCat("last:", t.n);
    case IndexTransform::Kind::kFirst: return absl::StrCat("first:", t.n);
    case IndexTransform::Kind::kNfkc: return "normalize:NFKC";
  }
  return "?";
}

bool ParseIndexTransform(absl::string_view text, IndexTransform* out) {
  using Kind = IndexTransform::Kind;
  if (text == "lowercase") {
    out->kind = Kind::kLowercase;
  } else if (text == "trim") {
    out->kind = Kind::kTrim;
  } else if (text == "digits") {
    out->kind = Kind::kDigits;
  } else if (text == "normalize:NFKC" || text == "normalize:nfkc") {
    out->kind = Kind::kNfkc;
  } else if (absl::StartsWith(text, "last:") || absl::StartsWith(text, "first:")) {
    const bool last = absl::StartsWith(text, "last:");
    out->kind = last ? Kind::kLast : Kind::kFirst;
    return absl::SimpleAtoi(text.substr(last ? 5 : 6), &out->n) && out->n >= 1 && out->n <= 1024;
  } else {
    return false;
  }
  out->n = 0;
  return true;
}

const BlindIndex* TableSchema::Index(absl::string_view index_name) const {
  for (const BlindIndex& index : indexes) {
    if (index.name == index_name) return &index;
  }
  return nullptr;
}

std::vector<const BlindIndex*> TableSchema::IndexesOf(absl::string_view column) const {
  std::vector<const BlindIndex*> out;
  for (const BlindIndex& index : indexes) {
    for (const std::string& c : index.columns) {
      if (c == column) {
        out.push_back(&index);
        break;
      }
    }
  }
  return out;
}

std::vector<const FieldRule*> TableSchema::EncryptedFields() const {
  std::vector<const FieldRule*> out;
  for (const auto& [column, rule] : fields) {
    if (rule.encrypted()) out.push_back(&rule);
  }
  return out;
}

absl::StatusOr<const TableSchema*> FieldSchema::Table(absl::string_view name) const {
  auto it = tables_.find(std::string(name));
  if (it != tables_.end()) return &it->second;
  std::vector<std::string> names;
  for (const auto& [n, t] : tables_) names.push_back(n);
  return absl::NotFoundError(absl::StrCat("the schema for data set ", dataset_,
                                          " has no table \"", name, "\" (it has: ",
                                          absl::StrJoin(names, ", "), ")"));
}

class SchemaParser {
 public:
  explicit SchemaParser(FieldSchema& out) : out_(out) {}

  std::vector<SchemaProblem> Run(absl::string_view yaml) {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(yaml));
    } catch (const YAML::Exception& e) {
      Problem(e.mark.line + 1, absl::StrCat("not valid YAML: ", e.msg));
      return problems_;
    }
    if (!root.IsMap()) {
      Problem(0, "a schema is a YAML mapping with version, dataset, key, classes and tables");
      return problems_;
    }
    Known(root, "the schema", {"version", "dataset", "key", "tenant_column", "classes", "tables"});
    const YAML::Node version = root["version"];
    if (!version) {
      Problem(0, "version is missing: start the file with `version: 1`");
    } else if (Scalar(version) != "1") {
      Problem(Line(version), absl::StrCat("version ", Scalar(version),
                                          " is not supported: this build reads version 1"));
    }
    out_.dataset_ = Name(root, "dataset", "the data set's name");
    out_.key_ = Name(root, "key", "the Keyward key that protects the data set");
    if (root["tenant_column"]) out_.tenant_column_ = Name(root, "tenant_column", "a column");
    ParseClasses(root["classes"]);
    ParseTables(root["tables"]);
    return problems_;
  }

 private:
  static int Line(const YAML::Node& n) { return n.Mark().line + 1; }

  void Problem(int line, std::string message) {
    problems_.push_back(SchemaProblem{line, std::move(message), false});
  }
  void Warning(int line, std::string message) {
    problems_.push_back(SchemaProblem{line, std::move(message), true});
  }

  std::string Scalar(const YAML::Node& n) {
    return n.IsScalar() ? n.Scalar() : std::string("(not a single value)");
  }

  // Names in a schema end up in SQL identifiers, encryption contexts and
  // policy conditions: keep them to a portable character set.
  static bool ValidName(absl::string_view s) {
    if (s.empty() || s.size() > 63) return false;
    for (char c : s) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
      if (!ok) return false;
    }
    return true;
  }

  // Readers end up quoted in policy YAML (`keyward schema policy`).
  static bool ValidPrincipal(absl::string_view s) {
    if (s.empty() || s.size() > 512) return false;
    for (char c : s) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || absl::string_view(":/._-*?@").find(c) !=
                                                    absl::string_view::npos;
      if (!ok) return false;
    }
    return true;
  }

  std::string Name(const YAML::Node& parent, const std::string& field, const std::string& what) {
    const YAML::Node n = parent[field];
    if (!n) {
      Problem(Line(parent), absl::StrCat(field, " is missing: ", what));
      return "";
    }
    if (!n.IsScalar() || !ValidName(n.Scalar())) {
      Problem(Line(n), absl::StrCat(field, " must be 1 to 63 letters, digits, '_', '-' or '.'"));
      return "";
    }
    return n.Scalar();
  }

  void Known(const YAML::Node& map, const std::string& where,
             std::initializer_list<const char*> keys) {
    for (const auto& kv : map) {
      const std::string k = kv.first.IsScalar() ? kv.first.Scalar() : "";
      bool known = false;
      for (const char* allowed : keys) known = known || k == allowed;
      if (!known) {
        Problem(Line(kv.first), absl::StrCat("unknown key \"", k, "\" in ", where,
                                             " (expected one of: ",
                                             absl::StrJoin(keys, ", "), ")"));
      }
    }
  }

  void ParseClasses(const YAML::Node& classes) {
    if (!classes) {
      Problem(0, "classes is missing: declare each class the fields use, e.g. "
                 "`pii: { encrypt: required, readers: [...] }`");
      return;
    }
    if (!classes.IsMap()) {
      Problem(Line(classes), "classes must be a mapping of class name to its rules");
      return;
    }
    for (const auto& kv : classes) {
      FieldClass c;
      c.name = kv.first.Scalar();
      const int line = Line(kv.first);
      if (!ValidName(c.name)) Problem(line, absl::StrCat("class name \"", c.name, "\" is invalid"));
      const YAML::Node body = kv.second;
      if (!body.IsMap()) {
        Problem(line, absl::StrCat("class ", c.name, " must be a mapping with encrypt and readers"));
        continue;
      }
      Known(body, absl::StrCat("class ", c.name), {"encrypt", "readers", "description"});
      const std::string rule = body["encrypt"] ? Scalar(body["encrypt"]) : "";
      if (rule == "required") {
        c.encrypt = EncryptRule::kRequired;
      } else if (rule == "optional") {
        c.encrypt = EncryptRule::kOptional;
      } else if (rule == "never") {
        c.encrypt = EncryptRule::kNever;
      } else {
        Problem(body["encrypt"] ? Line(body["encrypt"]) : line,
                absl::StrCat("class ", c.name, ": encrypt must be required, optional or never",
                             rule.empty() ? " (it is missing)" : absl::StrCat(", not ", rule)));
      }
      if (const YAML::Node readers = body["readers"]) {
        if (!readers.IsSequence()) {
          Problem(Line(readers), absl::StrCat("class ", c.name, ": readers must be a list"));
        } else {
          for (const auto& r : readers) {
            if (!r.IsScalar() || !ValidPrincipal(r.Scalar())) {
              Problem(Line(r), absl::StrCat("class ", c.name, ": a reader must be a principal "
                                            "or glob (letters, digits and :/._-*?@)"));
            } else {
              c.readers.push_back(r.Scalar());
            }
          }
        }
      }
      class_lines_[c.name] = line;
      out_.classes_[c.name] = std::move(c);
    }
  }

  void ParseTables(const YAML::Node& tables) {
    if (!tables || !tables.IsMap() || tables.size() == 0) {
      Problem(tables ? Line(tables) : 0, "tables is missing or empty: list each table with "
                                         "its id_column and fields");
      return;
    }
    for (const auto& kv : tables) {
      TableSchema t;
      t.name = kv.first.Scalar();
      const int line = Line(kv.first);
      if (!ValidName(t.name)) Problem(line, absl::StrCat("table name \"", t.name, "\" is invalid"));
      const YAML::Node body = kv.second;
      if (!body.IsMap()) {
        Problem(line, absl::StrCat("table ", t.name, " must be a mapping with id_column and fields"));
        continue;
      }
      Known(body, absl::StrCat("table ", t.name), {"id_column", "fields", "indexes"});
      t.id_column = Name(body, "id_column", "the column that identifies a row (its primary key)");
      const YAML::Node fields = body["fields"];
      if (!fields || !fields.IsMap()) {
        Problem(fields ? Line(fields) : line,
                absl::StrCat("table ", t.name, ": fields must map each column to its class and treatment"));
      } else {
        for (const auto& f : fields) ParseField(t, f.first, f.second);
      }
      if (const YAML::Node compound = body["indexes"]) {
        if (!compound.IsSequence()) {
          Problem(Line(compound), absl::StrCat("table ", t.name, ": indexes must be a list of "
                                               "`{ name: N, fields: [a, b], bits: B }`"));
        } else {
          for (const auto& i : compound) ParseIndex(t, i, "");
        }
      }
      CheckIndexes(t);
      used_any_ |= !t.EncryptedFields().empty();
      out_.tables_[t.name] = std::move(t);
    }
    for (const auto& [name, c] : out_.classes_) {
      if (used_classes_.count(name) && c.encrypt != EncryptRule::kNever && c.readers.empty()) {
        Problem(class_lines_[name],
                absl::StrCat("class ", name, " has encrypted fields but no readers: nobody could "
                             "read them; add `readers: [principal, ...]`"));
      }
    }
  }

  void ParseField(TableSchema& t, const YAML::Node& key, const YAML::Node& body) {
    FieldRule f;
    f.column = key.Scalar();
    const int line = Line(key);
    const std::string where = absl::StrCat("field ", t.name, ".", f.column);
    if (!ValidName(f.column)) Problem(line, absl::StrCat(where, ": the column name is invalid"));
    if (!body.IsMap()) {
      Problem(line, absl::StrCat(where, " must be `{ class: C, treatment: T }`"));
      return;
    }
    Known(body, where, {"class", "treatment", "cardinality", "indexes"});
    f.line = line;
    if (const YAML::Node card = body["cardinality"]) {
      uint64_t n = 0;
      if (!card.IsScalar() || !absl::SimpleAtoi(card.Scalar(), &n) || n < 1) {
        Problem(Line(card), absl::StrCat(where, ": cardinality is the expected number of distinct "
                                         "values, a whole number of at least 1"));
      }
      f.cardinality = n;
    }
    f.class_name = body["class"] ? Scalar(body["class"]) : "";
    const auto cls = out_.classes_.find(f.class_name);
    if (f.class_name.empty()) {
      Problem(line, absl::StrCat(where, ": class is missing"));
    } else if (cls == out_.classes_.end()) {
      Problem(Line(body["class"]), absl::StrCat(where, ": class ", f.class_name,
                                                " is not declared under classes"));
    }
    const std::string treatment = body["treatment"] ? Scalar(body["treatment"]) : "";
    const int tline = body["treatment"] ? Line(body["treatment"]) : line;
    if (treatment == "plaintext") {
      f.treatment = Treatment::kPlaintext;
    } else if (treatment == "randomized") {
      f.treatment = Treatment::kRandomized;
    } else if (treatment == "deterministic") {
      f.treatment = Treatment::kDeterministic;
      if (f.cardinality > 0 && f.cardinality <= kLowCardinality) {
        Warning(tline, absl::StrCat(
            where, ": deterministic encryption of a field with about ", f.cardinality,
            " distinct values shows how often each value occurs, which is often enough to guess "
            "them; use randomized with a compound blind index over it and a field with many "
            "values (docs/fields.md, \"What each choice leaks\")"));
      }
    } else {
      Problem(tline, absl::StrCat(where, ": treatment must be plaintext, randomized or "
                                  "deterministic", treatment.empty() ? " (it is missing)"
                                                                     : absl::StrCat(", not ", treatment)));
    }
    if (cls != out_.classes_.end()) {
      if (cls->second.encrypt == EncryptRule::kRequired && f.treatment == Treatment::kPlaintext &&
          treatment == "plaintext") {
        Problem(tline, absl::StrCat(where, " is left plaintext but its class ", f.class_name,
                                    " requires encryption (encrypt: required); use treatment: "
                                    "randomized"));
      }
      if (cls->second.encrypt == EncryptRule::kNever && f.treatment != Treatment::kPlaintext) {
        Problem(tline, absl::StrCat(where, " is encrypted but its class ", f.class_name,
                                    " says encrypt: never; use treatment: plaintext"));
      }
      if (f.encrypted()) used_classes_.insert(f.class_name);
    }
    if (f.encrypted() && (f.column == t.id_column || f.column == out_.tenant_column_)) {
      Problem(line, absl::StrCat(where, ": the ", f.column == t.id_column ? "id" : "tenant",
                                 " column must stay plaintext: every encrypted value is bound "
                                 "to it"));
    }
    const std::string column = f.column;
    const bool encrypted = f.encrypted();
    t.fields[column] = std::move(f);
    if (const YAML::Node indexes = body["indexes"]) {
      if (!indexes.IsSequence()) {
        Problem(Line(indexes), absl::StrCat(where, ": indexes must be a list of "
                                            "`{ name: N, transform: [...], bits: B }`"));
      } else if (!encrypted) {
        Problem(Line(indexes), absl::StrCat(where, " is plaintext: query it directly, a blind "
                                            "index adds nothing"));
      } else {
        for (const auto& i : indexes) ParseIndex(t, i, column);
      }
    }
  }

  // Index names become SQL column names (with a _vN suffix for later
  // versions): a stricter set than other names.
  static bool ValidIndexName(absl::string_view s) {
    if (s.empty() || s.size() > 48) return false;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_')) {
      return false;
    }
    for (char c : s) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '_';
      if (!ok) return false;
    }
    return true;
  }

  bool ParseTransform(const YAML::Node& n, const std::string& where, IndexTransform* out) {
    const std::string text = n.IsScalar() ? n.Scalar() : "";
    if (ParseIndexTransform(text, out)) return true;
    if (absl::StartsWith(text, "last:") || absl::StartsWith(text, "first:")) {
      Problem(Line(n), absl::StrCat(where, ": ", text, ": the count after the colon must be "
                                    "1..1024"));
    } else {
      Problem(Line(n), absl::StrCat(where, ": unknown transform \"", text, "\" (expected "
                                    "lowercase, trim, digits, last:N, first:N or "
                                    "normalize:NFKC)"));
    }
    return false;
  }

  // One index, under a field (`column` set) or under the table (compound).
  void ParseIndex(TableSchema& t, const YAML::Node& body, const std::string& column) {
    BlindIndex index;
    index.line = Line(body);
    const std::string owner = column.empty() ? absl::StrCat("table ", t.name)
                                             : absl::StrCat("field ", t.name, ".", column);
    if (!body.IsMap()) {
      Problem(index.line, absl::StrCat(owner, ": an index is `{ name: N, transform: [...], "
                                       "bits: B }`"));
      return;
    }
    if (column.empty()) {
      Known(body, absl::StrCat(owner, " index"), {"name", "fields", "transform", "bits"});
    } else {
      Known(body, absl::StrCat(owner, " index"), {"name", "transform", "bits"});
    }
    index.name = body["name"] && body["name"].IsScalar() ? body["name"].Scalar() : "";
    const std::string where = absl::StrCat(owner, ": index ", index.name);
    if (!ValidIndexName(index.name)) {
      Problem(index.line, absl::StrCat(owner, ": an index needs a name of 1 to 48 letters, "
                                       "digits or '_', starting with a letter or '_' (it names "
                                       "the index's column)"));
    }
    if (column.empty()) {
      const YAML::Node fields = body["fields"];
      if (!fields || !fields.IsSequence() || fields.size() < 2) {
        Problem(index.line, absl::StrCat(where, ": a table-level (compound) index lists two or "
                                         "more fields, e.g. `fields: [last_name, birth_year]`; "
                                         "declare a one-field index under its field"));
      } else {
        for (const auto& f : fields) {
          const std::string c = f.IsScalar() ? f.Scalar() : "";
          auto rule = t.fields.find(c);
          if (rule == t.fields.end()) {
            Problem(Line(f), absl::StrCat(where, ": ", c, " is not a field of table ", t.name));
          } else if (!rule->second.encrypted()) {
            Problem(Line(f), absl::StrCat(where, ": ", c, " is plaintext; a compound index "
                                          "covers encrypted fields only"));
          } else if (std::find(index.columns.begin(), index.columns.end(), c) !=
                     index.columns.end()) {
            Problem(Line(f), absl::StrCat(where, ": ", c, " is listed twice"));
          }
          index.columns.push_back(c);
        }
      }
    } else {
      index.columns.push_back(column);
    }
    if (const YAML::Node transform = body["transform"]) {
      if (transform.IsScalar()) {
        IndexTransform step;
        if (ParseTransform(transform, where, &step)) index.transforms.push_back(step);
      } else if (transform.IsSequence()) {
        for (const auto& n : transform) {
          IndexTransform step;
          if (ParseTransform(n, where, &step)) index.transforms.push_back(step);
        }
      } else {
        Problem(Line(transform), absl::StrCat(where, ": transform is a list such as "
                                              "[trim, lowercase]"));
      }
    }
    const YAML::Node bits = body["bits"];
    const std::string b = bits && bits.IsScalar() ? bits.Scalar() : "auto";
    if (b != "auto" &&
        (!absl::SimpleAtoi(b, &index.bits) || index.bits < 1 || index.bits > kMaxIndexBits)) {
      Problem(Line(bits), absl::StrCat(where, ": bits must be auto or 1..", kMaxIndexBits,
                                       ", not ", b));
      index.bits = 0;
    }
    t.indexes.push_back(std::move(index));
  }

  // Across a table's indexes: unique names that no field uses, and the
  // warnings for wide indexes over low-cardinality fields.
  void CheckIndexes(const TableSchema& t) {
    std::set<std::string> seen;
    for (const BlindIndex& index : t.indexes) {
      if (index.name.empty()) continue;
      if (!seen.insert(index.name).second) {
        Problem(index.line, absl::StrCat("table ", t.name, ": two indexes are named ",
                                         index.name));
      }
      // Its columns are NAME and NAME_vN: keep both from meeting a field
      // or another index's columns.
      const auto versioned = [](absl::string_view name) {
        const size_t v = name.rfind("_v");
        if (v == absl::string_view::npos || v + 2 == name.size()) return false;
        for (char c : name.substr(v + 2)) {
          if (c < '0' || c > '9') return false;
        }
        return true;
      };
      if (versioned(index.name)) {
        Problem(index.line, absl::StrCat("table ", t.name, ": index ", index.name,
                                         " ends like a later version's column (_vN); rename it"));
      }
      for (const auto& [column, rule] : t.fields) {
        if (absl::StartsWith(column, index.name + "_v") && versioned(column)) {
          Problem(index.line, absl::StrCat("table ", t.name, ": index ", index.name,
                                           " would one day need column ", column,
                                           ", which is a field; rename the index"));
        }
      }
      if (t.fields.count(index.name) || index.name == t.id_column ||
          index.name == out_.tenant_column_) {
        Problem(index.line, absl::StrCat("table ", t.name, ": index ", index.name,
                                         " has the name of a column; the index needs a column "
                                         "of its own"));
      }
      if (index.compound() || index.columns.empty()) continue;
      const auto rule = t.fields.find(index.columns[0]);
      if (rule == t.fields.end()) continue;
      const uint64_t card = rule->second.cardinality;
      // 2^bits >= cardinality/2: about one value per index value, so the
      // index shows each value's frequency.
      if (card > 0 && card <= kLowCardinality &&
          (index.bits == 0 || (uint64_t{1} << index.bits) * 2 >= card)) {
        Warning(index.line, absl::StrCat(
            "table ", t.name, ": index ", index.name, " over ", index.columns[0], " (about ",
            card, " distinct values) is ", index.bits == 0 ? "auto-sized and may be " : "",
            "wide enough to tell the values apart, which shows how often each occurs; index it "
            "together with a field that has many values (a compound index under the table's "
            "`indexes`), or give it fewer bits"));
      }
    }
  }

  FieldSchema& out_;
  std::vector<SchemaProblem> problems_;
  std::map<std::string, int> class_lines_;
  std::set<std::string> used_classes_;
  bool used_any_ = false;
};

std::vector<SchemaProblem> FieldSchema::Check(absl::string_view yaml) {
  FieldSchema scratch;
  return SchemaParser(scratch).Run(yaml);
}

absl::StatusOr<std::shared_ptr<const FieldSchema>> FieldSchema::Parse(absl::string_view yaml,
                                                                      const std::string& source) {
  auto schema = std::shared_ptr<FieldSchema>(new FieldSchema());
  std::vector<SchemaProblem> problems = SchemaParser(*schema).Run(yaml);
  std::vector<std::string> lines;
  for (const auto& p : problems) {
    if (!p.warning) lines.push_back(absl::StrCat(source, ":", p.line, ": ", p.message));
  }
  if (!lines.empty()) return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
  return std::shared_ptr<const FieldSchema>(std::move(schema));
}

absl::StatusOr<std::shared_ptr<const FieldSchema>> FieldSchema::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read schema file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path);
}

std::string FieldSchema::PolicyRules() const {
  std::string out = absl::StrCat("# Rules for data set ", dataset_, " (key ", key_,
                                 "), from its classification schema.\n"
                                 "# Each class's readers may get and unwrap that class's "
                                 "data keys, and no other.\n");
  for (const auto& [name, c] : classes_) {
    if (c.encrypt == EncryptRule::kNever || c.readers.empty()) continue;
    std::vector<std::string> quoted;
    for (const auto& r : c.readers) quoted.push_back(absl::StrCat("\"", r, "\""));
    absl::StrAppend(&out, "  - name: fields-", dataset_, "-", name, "\n",
                    "    principals: [", absl::StrJoin(quoted, ", "), "]\n",
                    "    keys: [\"", key_, "\"]\n",
                    "    operations: [generate-data-key, decrypt, rewrap]\n",
                    "    conditions:\n",
                    "      - context_equals: {key: \"keyward:dataset\", value: \"", dataset_, "\"}\n",
                    "      - context_equals: {key: \"keyward:class\", value: \"", name, "\"}\n");
  }
  return out;
}

}  // namespace keyward
