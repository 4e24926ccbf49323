// Field-level encryption commands: `keyward schema check|policy`,
// `keyward fields encrypt-table|decrypt-table|get`, `keyward tenant erase`,
// and the field mode of `keyward reencrypt`.  docs/fields.md is the guide.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "appdb/database.h"
#include "base/status_macros.h"
#include "cli/cli.h"
#include "cli/fields_cli.h"
#include "fields/encryptor_access.h"
#include "fields/finder.h"
#include "fields/table_job.h"
#include "keyward/errors.h"
#include "keyward/field_encryptor.h"
#include "nlohmann/json.hpp"

namespace keyward::cli {
namespace {

using Json = nlohmann::ordered_json;

absl::StatusOr<std::string> ReadAll(const std::string& path) {
  if (path == "-") {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  std::ifstream in(path);
  if (!in) {
    return MakeError(absl::StatusCode::kUnavailable, ErrorCode::kIoError,
                     absl::StrCat("cannot read ", path));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status RunSchemaCheck(Globals& globals, const std::string& path) {
  KW_ASSIGN_OR_RETURN(std::string yaml, ReadAll(path));
  const std::vector<SchemaProblem> found = FieldSchema::Check(yaml);
  size_t errors = 0;
  for (const auto& p : found) errors += p.warning ? 0 : 1;
  if (globals.json) {
    Json problems = Json::array(), warnings = Json::array();
    for (const auto& p : found) {
      (p.warning ? warnings : problems).push_back({{"line", p.line}, {"message", p.message}});
    }
    std::printf("%s\n", Json{{"file", path},
                             {"valid", errors == 0},
                             {"problems", problems},
                             {"warnings", warnings}}
                            .dump()
                            .c_str());
  } else {
    for (const auto& p : found) {
      std::fprintf(stderr, "%s:%d: %s%s\n", path.c_str(), p.line, p.warning ? "warning: " : "",
                   p.message.c_str());
    }
  }
  if (errors > 0) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kMalformedHeader,
                     absl::StrCat(path, ": ", errors, " problem(s) in the schema"));
  }
  if (!globals.json) {
    auto schema = FieldSchema::Parse(yaml, path);
    if (!schema.ok()) return schema.status();
    size_t encrypted = 0, indexes = 0;
    for (const auto& [name, t] : (*schema)->tables()) {
      encrypted += t.EncryptedFields().size();
      indexes += t.indexes.size();
    }
    std::printf("%s: valid; data set %s, key %s, %zu table(s), %zu encrypted field(s), %zu blind "
                "index(es)%s%s\n",
                path.c_str(), (*schema)->dataset().c_str(), (*schema)->key().c_str(),
                (*schema)->tables().size(), encrypted, indexes,
                (*schema)->tenant_column().empty()
                    ? ""
                    : absl::StrCat(", a key per tenant (", (*schema)->tenant_column(), ")").c_str(),
                found.empty() ? "" : absl::StrCat("; ", found.size(), " warning(s)").c_str());
  }
  return absl::OkStatus();
}

absl::Status RunSchemaPolicy(const std::string& path) {
  KW_ASSIGN_OR_RETURN(auto schema, FieldSchema::Load(path));
  std::printf("%s", schema->PolicyRules().c_str());
  return absl::OkStatus();
}

struct Opened {
  std::shared_ptr<const FieldSchema> schema;
  std::shared_ptr<FieldEncryptor> encryptor;
  std::unique_ptr<appdb::Database> db;
};

absl::StatusOr<Opened> Open(Globals& globals, const FieldArgs& a) {
  Opened o;
  KW_ASSIGN_OR_RETURN(o.schema, FieldSchema::Load(a.schema));
  KW_ASSIGN_OR_RETURN(o.db, appdb::Database::Open(a.db));
  KW_ASSIGN_OR_RETURN(std::shared_ptr<DataClient> data, globals.SharedData());
  KW_ASSIGN_OR_RETURN(o.encryptor, FieldEncryptor::Create(o.schema, std::move(data), a.db));
  return o;
}

absl::Status RunTableJob(Globals& globals, const FieldArgs& a, fields::TableJobKind kind) {
  if (a.batch < 1 || a.batch > 10000) return UsageError("--batch is 1..10000");
  KW_ASSIGN_OR_RETURN(Opened o, Open(globals, a));
  fields::TableJobOptions opts;
  opts.kind = kind;
  if (a.rate < 0) return UsageError("--rate must not be negative");
  opts.batch = static_cast<size_t>(a.batch);
  opts.rate = a.rate;
  opts.dry_run = a.dry_run;
  if (kind == fields::TableJobKind::kRotate && !a.dry_run) {
    KW_ASSIGN_OR_RETURN(opts.admin, globals.Admin());
  }
  const std::string verb = absl::StrCat(a.dry_run ? "checking " : "", TableJobKindName(kind));
  bool drawn = false;
  if (::isatty(STDERR_FILENO) != 0) {
    opts.progress = [&](const fields::TableJobOptions::Progress& p) {
      const double pct = p.total > 0 ? 100.0 * p.done / p.total : 100.0;
      std::fprintf(stderr, "\r%s %3.0f%%  %llu of %llu rows  %.0f rows/s   ", verb.c_str(),
                   pct > 100 ? 100.0 : pct, static_cast<unsigned long long>(p.done),
                   static_cast<unsigned long long>(p.total), p.rows_per_s);
      drawn = true;
    };
  }
  auto report = fields::RunTableJob(*o.encryptor, *o.db, a.table, opts);
  if (drawn) std::fprintf(stderr, "\r\033[K");
  KW_RETURN_IF_ERROR(report.status());
  const fields::TableJobReport& r = *report;
  if (globals.json) {
    std::printf("%s\n", Json{{"table", r.table},
                             {"job", std::string(TableJobKindName(kind))},
                             {"dry_run", a.dry_run},
                             {"resumed", r.resumed},
                             {"rows", r.rows},
                             {"scanned", r.scanned},
                             {"changed", r.changed},
                             {"values_changed", r.values_changed},
                             {"already", r.already},
                             {"nulls", r.nulls},
                             {"failed", r.failed},
                             {"conflicts", r.conflicts},
                             {"first_failure", r.first_failure},
                             {"new_keys", r.new_keys},
                             {"rewrapped_keys", r.rewrapped_keys},
                             {"seconds", r.seconds}}
                            .dump()
                            .c_str());
  } else {
    std::printf("%s%s %s%s: %llu rows, %llu %s (%llu values), %llu values already done, %llu "
                "NULL, %llu failed, %llu changed by others meanwhile; %.1f s\n",
                a.dry_run ? "dry run: " : "", std::string(TableJobKindName(kind)).c_str(),
                r.table.c_str(), r.resumed ? " (resumed from its checkpoint)" : "",
                static_cast<unsigned long long>(r.rows), static_cast<unsigned long long>(r.changed),
                a.dry_run ? "rows would change" : "rows changed",
                static_cast<unsigned long long>(r.values_changed),
                static_cast<unsigned long long>(r.already), static_cast<unsigned long long>(r.nulls),
                static_cast<unsigned long long>(r.failed),
                static_cast<unsigned long long>(r.conflicts), r.seconds);
    if (kind == fields::TableJobKind::kRotate) {
      std::printf("%llu new data key(s), %llu older key(s) rewrapped to the primary version%s\n",
                  static_cast<unsigned long long>(r.new_keys),
                  static_cast<unsigned long long>(r.rewrapped_keys),
                  a.dry_run ? "" : "; key table reported to keywardd");
    }
  }
  if (r.failed > 0) {
    return absl::AbortedError(absl::StrCat(
        r.failed, " row(s) could not be processed and were left as they were (first: ",
        r.first_failure, "); fix the cause and run the same command again"));
  }
  return absl::OkStatus();
}

// An id given on the command line, as the id column holds it.
appdb::Value IdValue(const std::string& id) {
  int64_t n;
  if (absl::SimpleAtoi(id, &n) && absl::StrCat(n) == id) return n;
  return id;
}

Json ValueJson(const FieldValue& v) {
  switch (v.index()) {
    case 0: return nullptr;
    case 1: return std::get<int64_t>(v);
    case 2: return std::get<double>(v);
    case 3: return std::get<std::string>(v);
    case 4: {
      const std::string& b = std::get<FieldBytes>(v).bytes;
      return Json{{"base64", absl::Base64Escape(b)}};
    }
    default: {
      Json parsed = Json::parse(std::get<FieldJson>(v).text, nullptr, false);
      return parsed.is_discarded() ? Json(std::get<FieldJson>(v).text) : parsed;
    }
  }
}

std::string ValueText(const FieldValue& v) {
  switch (v.index()) {
    case 0: return "NULL";
    case 1: return absl::StrCat(std::get<int64_t>(v));
    case 2: return absl::StrCat(std::get<double>(v));
    case 3: return std::get<std::string>(v);
    case 4: return absl::StrCat("(", std::get<FieldBytes>(v).bytes.size(), " bytes) ",
                                absl::BytesToHexString(std::get<FieldBytes>(v).bytes));
    default: return std::get<FieldJson>(v).text;
  }
}

absl::Status RunGet(Globals& globals, const FieldArgs& a) {
  KW_ASSIGN_OR_RETURN(Opened o, Open(globals, a));
  KW_ASSIGN_OR_RETURN(const TableSchema* table, o.schema->Table(a.table));
  KW_ASSIGN_OR_RETURN(auto columns, o.db->ListColumns(a.table));
  KW_ASSIGN_OR_RETURN(auto rows, o.db->Query(absl::StrCat("SELECT * FROM ",
                                                         appdb::Database::QuoteIdentifier(a.table),
                                                         " WHERE ",
                                                         appdb::Database::QuoteIdentifier(table->id_column),
                                                         " = $1"),
                                            {IdValue(a.id)}));
  if (rows.empty()) {
    return absl::NotFoundError(absl::StrCat("table ", a.table, " has no row with ",
                                            table->id_column, " = ", a.id));
  }
  FieldRow row;
  std::vector<std::string> order;
  for (size_t i = 0; i < columns.size() && i < rows[0].size(); ++i) {
    const appdb::Value& v = rows[0][i];
    FieldValue f;
    switch (v.index()) {
      case 1: f = std::get<int64_t>(v); break;
      case 2: f = std::get<double>(v); break;
      case 3: f = std::get<std::string>(v); break;
      case 4: f = FieldBytes{std::get<appdb::Blob>(v).bytes}; break;
      default: break;
    }
    row[columns[i].name] = std::move(f);
    order.push_back(columns[i].name);
  }
  KW_ASSIGN_OR_RETURN(DecryptedRow d,
                      o.encryptor->DecryptRow(a.table, row, FieldEncryptor::Failure::kPartial));
  if (globals.json) {
    Json values = Json::object();
    Json errors = Json::object();
    for (const auto& c : order) {
      auto failed = d.failed.find(c);
      if (failed != d.failed.end()) {
        values[c] = nullptr;
        errors[c] = {{"error", std::string(ErrorCodeName(GetErrorCode(failed->second)))},
                     {"message", std::string(failed->second.message())}};
      } else {
        values[c] = ValueJson(d.row[c]);
      }
    }
    Json out = {{"table", a.table}, {"id", a.id}, {"values", values}};
    if (!errors.empty()) out["errors"] = errors;
    std::printf("%s\n", out.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
  } else {
    size_t width = 0;
    for (const auto& c : order) width = std::max(width, c.size());
    for (const auto& c : order) {
      auto failed = d.failed.find(c);
      if (failed != d.failed.end()) {
        std::printf("%-*s  <cannot decrypt: %s>\n", static_cast<int>(width), c.c_str(),
                    std::string(failed->second.message()).c_str());
      } else {
        std::printf("%-*s  %s\n", static_cast<int>(width), c.c_str(), ValueText(d.row[c]).c_str());
      }
    }
  }
  if (!d.failed.empty()) {
    const absl::Status& first = d.failed.begin()->second;
    ErrorCode code = GetErrorCode(first);
    if (code == ErrorCode::kNone) code = ErrorCode::kAuthenticationFailed;
    return MakeError(first.code(), code,
                     absl::StrCat(d.failed.size(), " field(s) could not be decrypted (first: ",
                                  d.failed.begin()->first, ": ", first.message(), ")"));
  }
  return absl::OkStatus();
}

absl::Status RunFind(Globals& globals, const FieldArgs& a) {
  std::vector<FieldEncryptor::Condition> conditions;
  for (const std::string& w : a.where) {
    const size_t eq = w.find('=');
    if (eq == std::string::npos || eq == 0) {
      return UsageError(absl::StrCat("--where takes NAME=VALUE (a field, index or column name, "
                                     "then the value), not \"", w, "\""));
    }
    conditions.push_back({w.substr(0, eq), w.substr(eq + 1)});
  }
  if (conditions.empty()) return UsageError("give at least one --where NAME=VALUE");
  KW_ASSIGN_OR_RETURN(Opened o, Open(globals, a));
  KW_ASSIGN_OR_RETURN(auto finder, fields::Finder::New(*o.encryptor, *o.db, a.table));
  KW_ASSIGN_OR_RETURN(fields::Finder::Result found,
                      finder->Find(std::move(conditions), a.tenant, a.limit));
  if (globals.json) {
    Json rows = Json::array();
    for (const DecryptedRow& d : found.rows) {
      Json row = Json::object();
      for (const std::string& c : found.columns) {
        auto v = d.row.find(c);
        row[c] = v == d.row.end() ? Json(nullptr) : ValueJson(v->second);
      }
      if (!d.failed.empty()) {
        Json errors = Json::object();
        for (const auto& [c, st] : d.failed) {
          errors[c] = {{"error", std::string(ErrorCodeName(GetErrorCode(st)))},
                       {"message", std::string(st.message())}};
        }
        row["_keyward_errors"] = errors;
      }
      rows.push_back(std::move(row));
    }
    std::printf("%s\n", rows.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
  } else {
    size_t width = 0;
    for (const auto& c : found.columns) width = std::max(width, c.size());
    bool first = true;
    for (const DecryptedRow& d : found.rows) {
      if (!first) std::printf("\n");
      first = false;
      for (const std::string& c : found.columns) {
        auto failed = d.failed.find(c);
        auto v = d.row.find(c);
        if (failed != d.failed.end()) {
          std::printf("%-*s  <cannot decrypt: %s>\n", static_cast<int>(width), c.c_str(),
                      std::string(failed->second.message()).c_str());
        } else {
          std::printf("%-*s  %s\n", static_cast<int>(width), c.c_str(),
                      v == d.row.end() ? "NULL" : ValueText(v->second).c_str());
        }
      }
    }
    std::fprintf(stderr, "%zu row(s) matched; %llu candidate(s) read, %llu false positive(s) "
                 "dropped after decryption\n",
                 found.rows.size(), static_cast<unsigned long long>(found.candidates),
                 static_cast<unsigned long long>(found.false_positives));
  }
  if (found.unreadable > 0) {
    std::fprintf(stderr, "keyward: warning: %llu candidate row(s) could not be decrypted and were "
                 "skipped (first: %s)\n",
                 static_cast<unsigned long long>(found.unreadable),
                 found.first_unreadable.ToString().c_str());
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunFieldReencrypt(Globals& globals, const std::string& schema, const std::string& db,
                               const std::string& table, int batch, double rate, bool dry_run) {
  FieldArgs a;
  a.rate = rate;
  a.schema = schema;
  a.db = db;
  a.table = table;
  a.batch = batch;
  a.dry_run = dry_run;
  return RunTableJob(globals, a, fields::TableJobKind::kRotate);
}

void RegisterFieldCommands(CLI::App& app, Globals& globals, Action& action) {
  static FieldArgs args;
  static std::string schema_file;

  auto* schema = app.add_subcommand("schema", "Classification schemas for field-level encryption");
  schema->require_subcommand(1);
  auto* check = schema->add_subcommand(
      "check", "Validate a schema file and list every problem with its line (- reads stdin).");
  check->add_option("FILE", schema_file, "the schema (YAML; docs/fields.md)")->required();
  check->add_flag("--json", globals.json, "print {valid, problems: [{line, message}]}");
  check->callback([&globals, &action] {
    action = [&globals] { return RunSchemaCheck(globals, schema_file); };
  });
  auto* policy = schema->add_subcommand(
      "policy", "Print the keywardd policy rules that give each class's readers its data keys.");
  policy->add_option("FILE", schema_file, "the schema")->required();
  policy->callback([&action] { action = [] { return RunSchemaPolicy(schema_file); }; });

  auto* fields = app.add_subcommand("fields", "Encrypt, decrypt and read table fields by schema");
  fields->require_subcommand(1);
  auto common = [&globals](CLI::App* c) {
    c->add_option("--schema", args.schema, "the classification schema (YAML)")->required();
    c->add_option("--db", args.db, "sqlite:PATH or postgresql://USER@HOST:PORT/DB")->required();
    c->add_option("--table", args.table, "the table")->required();
    c->add_flag("--json", globals.json, "print the result as one JSON object");
  };
  for (auto kind : {fields::TableJobKind::kEncrypt, fields::TableJobKind::kDecrypt}) {
    const bool enc = kind == fields::TableJobKind::kEncrypt;
    auto* job = fields->add_subcommand(
        enc ? "encrypt-table" : "decrypt-table",
        enc ? "Encrypt, in place, the plaintext values of every field the schema encrypts.\n"
              "Resumable and safe to kill at any moment: each batch is verified, then\n"
              "committed with its checkpoint in one transaction; a rerun continues."
            : "Decrypt, in place, every encrypted field of the table back to its\n"
              "original value and type (resumable, like encrypt-table).");
    common(job);
    job->add_option("--batch", args.batch, "rows per transaction (default 500)");
    job->add_option("--rate", args.rate, "at most this many rows per second (default: no limit)");
    job->add_flag("--dry-run", args.dry_run, "count what would change; write nothing");
    job->callback([&globals, &action, kind] {
      action = [&globals, kind] { return RunTableJob(globals, args, kind); };
    });
  }
  auto* get = fields->add_subcommand(
      "get", "Print one row with its fields decrypted (audited by keywardd like every decrypt).\n"
             "A field that cannot be decrypted is reported as an error for that field.");
  common(get);
  get->add_option("--id", args.id, "the row's id (the schema's id_column)")->required();
  get->callback([&globals, &action] { action = [&globals] { return RunGet(globals, args); }; });
  auto* find = fields->add_subcommand(
      "find",
      "Find rows by equality on encrypted fields, and print them decrypted.\n"
      "A deterministic field is matched by its ciphertext; a field with a blind index\n"
      "by its index column, after the index's transform (a lowercase index makes the\n"
      "match case-insensitive).  The false positives a blind index returns are\n"
      "decrypted and dropped before anything is printed.  Nothing found: exit 0, [].");
  common(find);
  find->add_option("--where", args.where,
                   "NAME=VALUE: a field, a blind index's name or a plaintext column, and the "
                   "value; repeat to AND conditions")
      ->required();
  find->add_option("--tenant", args.tenant,
                   "search within this tenant (required for deterministic fields of a data set "
                   "with tenants)");
  find->add_option("--limit", args.limit, "read at most this many candidate rows");
  find->callback([&globals, &action] { action = [&globals] { return RunFind(globals, args); }; });

  auto* tenant = app.add_subcommand("tenant", "Tenants of field-encrypted data sets");
  tenant->require_subcommand(1);
  auto* erase = tenant->add_subcommand(
      "erase",
      "Crypto-shred a tenant: destroy its key material under the schema's key inside\n"
      "keywardd and its wrapped data keys in the database, so none of its encrypted values\n"
      "can be decrypted by anyone again, from this database or any copy of it.  Everything\n"
      "else of the tenant under that key (other data sets, messages) goes with it; other\n"
      "tenants are untouched.  Irreversible: asks for confirmation unless --yes.");
  erase->add_option("--schema", args.schema, "the classification schema (YAML)")->required();
  erase->add_option("--db", args.db, "sqlite:PATH or postgresql://USER@HOST:PORT/DB")->required();
  erase->add_option("--tenant", args.tenant, "the tenant (a value of the tenant column)")->required();
  erase->add_flag("--yes", args.yes, "do not ask (for scripts)");
  erase->add_flag("--dry-run", args.dry_run, "count what would become unreadable; change nothing");
  erase->add_flag("--json", globals.json, "print the result as one JSON object");
  erase->callback([&globals, &action] {
    action = [&globals] { return RunTenantErase(globals, args); };
  });
}

}  // namespace keyward::cli
