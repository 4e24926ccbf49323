// Field-level encryption of a real SQLite table with the schema in
// examples/fields/customers.yaml: the application writes rows through
// FieldEncryptor::EncryptRow and reads them back through DecryptRow.
//   customers CLIENT_CONFIG SCHEMA DATABASE_FILE
// With `make run` going (and `keyward key create customers` done):
//   customers .keyward-dev/dev/app.yaml examples/fields/customers.yaml /tmp/shop.db
#include <sqlite3.h>

#include <cstdio>
#include <string>

#include "keyward/data_client.h"
#include "keyward/field_encryptor.h"

namespace {

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "customers: %s\n", s.ToString().c_str());
  return 1;
}

// Binds a FieldValue the way the table stores it (text, integer or NULL).
void Bind(sqlite3_stmt* st, int i, const keyward::FieldValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) {
    sqlite3_bind_text(st, i, s->data(), static_cast<int>(s->size()), SQLITE_TRANSIENT);
  } else if (const auto* n = std::get_if<int64_t>(&v)) {
    sqlite3_bind_int64(st, i, *n);
  } else {
    sqlite3_bind_null(st, i);
  }
}

keyward::FieldValue Column(sqlite3_stmt* st, int i) {
  switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER: return static_cast<int64_t>(sqlite3_column_int64(st, i));
    case SQLITE_NULL: return std::monostate();
    default:
      return std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, i)),
                         static_cast<size_t>(sqlite3_column_bytes(st, i)));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return std::fprintf(stderr, "usage: customers CONFIG SCHEMA DB\n"), 2;
  auto options = keyward::LoadClientConfig(argv[1]);
  if (!options.ok()) return Fail(options.status());
  auto client = keyward::DataClient::Connect(*options);
  if (!client.ok()) return Fail(client.status());
  auto schema = keyward::FieldSchema::Load(argv[2]);
  if (!schema.ok()) return Fail(schema.status());
  sqlite3* db = nullptr;  // the application's own connection (creates the file)
  if (sqlite3_open(argv[3], &db) != SQLITE_OK) return std::fprintf(stderr, "cannot open db\n"), 1;
  // One FieldEncryptor per process and database; it keeps its data keys in
  // the table keyward_field_keys of the same database.
  auto fields = keyward::FieldEncryptor::Create(*schema, *client, std::string("sqlite:") + argv[3]);
  if (!fields.ok()) return Fail(fields.status());
  sqlite3_exec(db,
               "CREATE TABLE IF NOT EXISTS customers (id INTEGER PRIMARY KEY, tenant_id TEXT, "
               "email TEXT, card_number TEXT, ssn TEXT, notes TEXT); DELETE FROM customers;",
               nullptr, nullptr, nullptr);

  const keyward::FieldRow rows[] = {
      {{"id", int64_t{1}}, {"tenant_id", std::string("acme")},
       {"email", std::string("ada@acme.example")}, {"card_number", std::string("4111 1111 1111 1111")},
       {"ssn", std::string("123-45-6789")}, {"notes", std::string("prefers email")}},
      {{"id", int64_t{2}}, {"tenant_id", std::string("globex")},
       {"email", std::string("grace@globex.example")}, {"card_number", std::monostate()},
       {"ssn", std::string("987-65-4321")}, {"notes", std::string("")}},
  };
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO customers VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &insert,
                     nullptr);
  const char* columns[] = {"id", "tenant_id", "email", "card_number", "ssn", "notes"};
  for (const auto& row : rows) {
    // --- the application code: encrypt what the schema says, store it ---
    auto encrypted = (*fields)->EncryptRow("customers", row);
    if (!encrypted.ok()) return Fail(encrypted.status());
    for (int i = 0; i < 6; ++i) Bind(insert, i + 1, encrypted->at(columns[i]));
    if (sqlite3_step(insert) != SQLITE_DONE) return std::fprintf(stderr, "insert failed\n"), 1;
    sqlite3_reset(insert);
  }
  sqlite3_finalize(insert);

  sqlite3_stmt* select = nullptr;
  sqlite3_prepare_v2(db, "SELECT id, tenant_id, email, card_number, ssn, notes FROM customers "
                         "ORDER BY id", -1, &select, nullptr);
  int read = 0;
  while (sqlite3_step(select) == SQLITE_ROW) {
    keyward::FieldRow stored;
    for (int i = 0; i < 6; ++i) stored[columns[i]] = Column(select, i);
    // --- the application code: read a row back ---
    auto row = (*fields)->DecryptRow("customers", stored);
    if (!row.ok()) return Fail(row.status());
    const auto& email = std::get<std::string>(row->row.at("email"));
    std::printf("row %lld: stored email %.24s... decrypts to %s; card %s\n",
                static_cast<long long>(std::get<int64_t>(stored.at("id"))),
                std::get<std::string>(stored.at("email")).c_str(), email.c_str(),
                std::holds_alternative<std::monostate>(row->row.at("card_number")) ? "NULL"
                                                                                   : "present");
    if (row->row != rows[read]) return std::fprintf(stderr, "row %d differs\n", read), 1;
    ++read;
  }
  sqlite3_finalize(select);
  sqlite3_close(db);
  std::printf("customers: %d rows encrypted, stored and read back\n", read);
  return read == 2 ? 0 : 1;
}
