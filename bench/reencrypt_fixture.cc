// Helpers for bench/reencrypt_bench.sh:
//   reencrypt_fixture generate CLIENT_CONFIG DB ROWS SIZE KEY [MESSAGES_PER_KEY]
//     a table items(id INTEGER PRIMARY KEY, secret BLOB) of ROWS Keyward
//     messages of SIZE plaintext bytes under KEY, written by the SDK's
//     Encryptor (a data key serves up to MESSAGES_PER_KEY messages, default
//     1,000, as a caching application's would; 1 = a data key per row);
//   reencrypt_fixture plain-update DB BATCH
//     the reference: the same reads and compare-and-swap UPDATEs the job
//     does (batches by id, one transaction each, with a checkpoint row), but
//     the new value is the old one with its last byte flipped — no crypto,
//     no keywardd.  Prints rows/s.
#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "keyward/data_client.h"
#include "keyward/encryptor.h"
#include "reencrypt/database_table.h"

namespace {

int Generate(const char* config, const char* db_path, uint64_t rows, size_t size,
             const char* key, uint64_t messages_per_key) {
  auto options = keyward::LoadClientConfig(config);
  if (!options.ok()) return std::fprintf(stderr, "%s\n", options.status().ToString().c_str()), 1;
  auto client = keyward::DataClient::Connect(*options);
  if (!client.ok()) return std::fprintf(stderr, "%s\n", client.status().ToString().c_str()), 1;
  keyward::EncryptorOptions eo;
  eo.key_name = key;
  eo.encrypt_cache.max_messages = messages_per_key;
  auto created = keyward::Encryptor::Create(*client, eo);
  if (!created.ok()) return std::fprintf(stderr, "%s\n", created.status().ToString().c_str()), 1;
  keyward::Encryptor& encryptor = **created;
  sqlite3* db = nullptr;
  sqlite3_open(db_path, &db);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE items (id INTEGER PRIMARY KEY, secret BLOB)",
               nullptr, nullptr, nullptr);
  sqlite3_stmt* ins = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO items (id, secret) VALUES (?1, ?2)", -1, &ins, nullptr);
  std::string plaintext(size, 'x');
  const absl::Time start = absl::Now();
  for (uint64_t i = 0; i < rows; ++i) {
    if (i % 10000 == 0) sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    std::snprintf(plaintext.data(), plaintext.size(), "row %llu ", static_cast<unsigned long long>(i));
    auto m = encryptor.Encrypt(plaintext, {{"table", "items"}});
    if (!m.ok()) return std::fprintf(stderr, "%s\n", m.status().ToString().c_str()), 1;
    sqlite3_bind_int64(ins, 1, static_cast<int64_t>(i));
    sqlite3_bind_blob(ins, 2, m->data(), static_cast<int>(m->size()), SQLITE_TRANSIENT);
    if (sqlite3_step(ins) != SQLITE_DONE) return std::fprintf(stderr, "insert failed\n"), 1;
    sqlite3_reset(ins);
    if (i % 10000 == 9999 || i + 1 == rows) sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  sqlite3_finalize(ins);
  sqlite3_close(db);
  std::printf("generated %llu rows in %.1f s\n", static_cast<unsigned long long>(rows),
              absl::ToDoubleSeconds(absl::Now() - start));
  return 0;
}

int PlainUpdate(const char* db_path, size_t batch) {
  auto table = keyward::reencrypt::DatabaseTable::Open(absl::StrCat("sqlite:", db_path),
                                                       "items", "secret", "id");
  if (!table.ok()) return std::fprintf(stderr, "%s\n", table.status().ToString().c_str()), 1;
  const absl::Time start = absl::Now();
  keyward::reencrypt::Checkpoint cp;
  cp.started = start;
  uint64_t done = 0;
  for (;;) {
    auto rows = (*table)->ReadBatch(cp.after, batch);
    if (!rows.ok()) return 1;
    if (rows->empty()) break;
    std::vector<keyward::reencrypt::Update> updates;
    updates.reserve(rows->size());
    for (auto& row : *rows) {
      std::string changed = row.value;
      changed.back() ^= 1;
      updates.push_back({row.id, std::move(row.value), std::move(changed)});
    }
    cp.after = rows->back().id;
    cp.rows_done += rows->size();
    auto n = (*table)->CommitBatch(updates, "plain-update", cp);
    if (!n.ok()) return std::fprintf(stderr, "%s\n", n.status().ToString().c_str()), 1;
    done += *n;
  }
  const double s = absl::ToDoubleSeconds(absl::Now() - start);
  std::printf("{\"rows\": %llu, \"seconds\": %.3f, \"rows_per_second\": %.0f}\n",
              static_cast<unsigned long long>(done), s, done / s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if ((argc == 7 || argc == 8) && std::string(argv[1]) == "generate") {
    uint64_t per_key = 1000;
    if (argc == 8) {
      char* end = nullptr;
      const long long n = std::strtoll(argv[7], &end, 10);
      if (*argv[7] == '\0' || *end != '\0' || n < 1) {
        return std::fprintf(stderr, "MESSAGES_PER_KEY must be a whole number, at least 1\n"), 2;
      }
      per_key = static_cast<uint64_t>(n);
    }
    return Generate(argv[2], argv[3], std::strtoull(argv[4], nullptr, 10),
                    std::strtoull(argv[5], nullptr, 10), argv[6], per_key);
  }
  if (argc == 4 && std::string(argv[1]) == "plain-update") {
    return PlainUpdate(argv[2], std::strtoull(argv[3], nullptr, 10));
  }
  std::fprintf(stderr,
               "usage: reencrypt_fixture generate CLIENT_CONFIG DB ROWS SIZE KEY [MESSAGES_PER_KEY]\n"
               "       reencrypt_fixture plain-update DB BATCH\n");
  return 2;
}
