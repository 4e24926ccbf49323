// Field-level encryption benchmarks, each against a reference measured in
// the same run (docs/benchmarks.md, "Field-level encryption"):
//
//   fields_bench micro CONFIG SCHEMA WORKDIR
//     one 64-byte field encrypted / decrypted through FieldEncryptor with a
//     cached data key, vs raw EVP AES-256-GCM on 64 bytes (one context keyed
//     once, new IV per message), Google Benchmark, one thread;
//   fields_bench table CONFIG ADMIN_CONFIG SCHEMA KEYWARD_CLI sqlite|postgres ROWS WORKDIR
//     `keyward fields encrypt-table` on ROWS rows with three encrypted
//     fields, vs a plain UPDATE of the same three columns (values of the
//     same lengths, same batches of 500 by id) on a copy of the same table;
//   fields_bench read CONFIG SCHEMA ROWS WORKDIR sqlite|postgres
//     reading ROWS rows through FieldEncryptor::DecryptRow vs reading the
//     same rows in plaintext through the same code (best of five).
// Prints one JSON object per figure on stdout.
#include <benchmark/benchmark.h>
#include <openssl/evp.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "appdb/database.h"
#include "crypto/internal/nonce_aead.h"
#include "crypto/random.h"
#include "keyward/data_client.h"
#include "keyward/field_encryptor.h"
#include "nlohmann/json.hpp"
#include "testing/postgres_server.h"
#include "testing/subprocess.h"

namespace {

using keyward::FieldEncryptor;
using keyward::FieldRow;
using keyward::FieldValue;
using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const absl::Status& s) {
  std::fprintf(stderr, "fields_bench: %s\n", s.ToString().c_str());
  std::exit(1);
}
template <typename T>
T Must(absl::StatusOr<T> v) {
  if (!v.ok()) Die(v.status());
  return std::move(*v);
}

std::shared_ptr<FieldEncryptor> Encryptor(const std::string& config, const std::string& schema,
                                          const std::string& url) {
  auto options = Must(keyward::LoadClientConfig(config));
  auto client = Must(keyward::DataClient::Connect(options));
  return Must(FieldEncryptor::Create(Must(keyward::FieldSchema::Load(schema)), client, url));
}

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// ---------------------------------------------------------------- micro --

int Micro(int argc, char** argv) {
  const std::string config = argv[2], schema = argv[3], work = argv[4];
  Must(keyward::appdb::Database::Open(absl::StrCat("sqlite:", work, "/micro.db"), true));
  auto enc = Encryptor(config, schema, absl::StrCat("sqlite:", work, "/micro.db"));
  const FieldEncryptor::Location where{"customers", "email", "42", "acme"};
  const FieldValue value = std::string(64, 'e');
  const FieldValue stored = Must(enc->EncryptValue(where, value));  // warms the cache
  auto binary = Encryptor(config, schema, absl::StrCat("sqlite:", work, "/micro.db"));
  (void)Must(binary->EncryptValue(where, value));

  benchmark::RegisterBenchmark("BM_RawEvpAes256GcmEncrypt/64", [](benchmark::State& state) {
    unsigned char key[32] = {1}, iv[12] = {0}, tag[16];
    const std::string plaintext(64, 'p');
    std::string out(64, '\0');
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key, nullptr);
    for (auto _ : state) {
      int len = 0;
      ++iv[0];
      EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, iv);
      EVP_EncryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &len,
                        reinterpret_cast<const unsigned char*>(plaintext.data()), 64);
      EVP_EncryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()) + len, &len);
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag);
      benchmark::DoNotOptimize(out);
      benchmark::DoNotOptimize(tag);
    }
    EVP_CIPHER_CTX_free(ctx);
  });
  benchmark::RegisterBenchmark("BM_RawEvpAes256GcmDecrypt/64", [](benchmark::State& state) {
    unsigned char key[32] = {1}, iv[12] = {0}, tag[16];
    std::string ct(64, 'c'), out(64, '\0');
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key, iv);
    int len = 0;
    EVP_EncryptUpdate(ctx, reinterpret_cast<unsigned char*>(ct.data()), &len,
                      reinterpret_cast<const unsigned char*>(out.data()), 64);
    EVP_EncryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(ct.data()) + len, &len);
    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag);
    EVP_CIPHER_CTX_free(ctx);
    ctx = EVP_CIPHER_CTX_new();
    EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key, nullptr);
    for (auto _ : state) {
      EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, iv);
      EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &len,
                        reinterpret_cast<const unsigned char*>(ct.data()), 64);
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, tag);
      const int ok = EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()) + len, &len);
      benchmark::DoNotOptimize(ok);
      benchmark::DoNotOptimize(out);
    }
    EVP_CIPHER_CTX_free(ctx);
  });
  // The sealing step alone, per backend (docs/benchmarks.md explains the pick).
  for (bool sodium : {false, true}) {
    benchmark::RegisterBenchmark(sodium ? "BM_SealOnlySodium/64" : "BM_SealOnlyEvp/64",
                                 [sodium](benchmark::State& state) {
      auto key = Must(keyward::crypto::GenerateKey(32));
      auto aead = sodium ? Must(keyward::crypto::internal::NewAesGcmForSmallRecords(key))
                         : Must(keyward::crypto::internal::NewNonceAead(
                               keyward::crypto::AeadAlgorithm::kAes256Gcm, key));
      std::string buf(65 + 16, 'p');
      const std::string aad(70, 'a');
      std::string nonce(12, 'n');
      for (auto _ : state) {
        ++nonce[0];
        auto* p = reinterpret_cast<uint8_t*>(buf.data());
        benchmark::DoNotOptimize(aead->Seal(nonce, absl::string_view(buf.data(), 65), aad,
                                            {p, buf.size()}));
      }
    });
  }
  benchmark::RegisterBenchmark("BM_FieldEncrypt/64", [&](benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(enc->EncryptValue(where, value));
  });
  benchmark::RegisterBenchmark("BM_FieldDecrypt/64", [&](benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(enc->DecryptValue(where, stored));
  });
  int bargc = argc - 4;
  char** bargv = argv + 4;
  bargv[0] = argv[0];
  benchmark::Initialize(&bargc, bargv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

// ---------------------------------------------------------------- table --

// ROWS customers across three tenants, generated by the database itself.
void Generate(keyward::appdb::Database& db, int64_t rows) {
  const bool sqlite = db.dialect() == keyward::appdb::Dialect::kSqlite;
  Must(db.Execute(absl::StrCat("CREATE TABLE customers (id ", sqlite ? "INTEGER" : "BIGINT",
                               " PRIMARY KEY, tenant_id TEXT, email TEXT, card_number TEXT, "
                               "ssn TEXT, notes TEXT)")));
  const std::string cat = "||";
  const std::string series =
      sqlite ? absl::StrCat("WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g "
                            "WHERE n < ", rows, ") ")
             : "";
  const std::string from =
      sqlite ? "FROM g" : absl::StrCat("FROM generate_series(1, ", rows, ") AS g(n)");
  Must(db.Execute(absl::StrCat(
      series,
      "INSERT INTO customers SELECT n, CASE n % 3 WHEN 0 THEN 'acme' WHEN 1 THEN 'globex' ELSE "
      "'initech' END, 'user' ", cat, " n ", cat, " '@example.com', '4111 1111 1111 ' ", cat,
      " (1000 + n % 9000), '123-45-' ", cat, " (1000 + n % 9000), 'note ' ", cat, " n ", from)));
}

size_t TextFormLength(size_t plaintext) {
  return 4 + (8 * (plaintext + 34) + 5) / 6;
}

// The reference: the same batches of 500 by id, each row's three columns
// set to values as long as their encrypted text forms, one transaction
// per batch.
double PlainUpdate(keyward::appdb::Database& db) {
  const auto start = Clock::now();
  keyward::appdb::Value after = int64_t{0};
  uint64_t rows = 0;
  for (;;) {
    auto batch = Must(db.Query("SELECT id, tenant_id, email, card_number, ssn FROM customers "
                               "WHERE id > $1 ORDER BY id LIMIT 500",
                               {after}));
    if (batch.empty()) break;
    absl::Status s = keyward::appdb::InTransaction(db, [&]() -> absl::Status {
      for (const auto& r : batch) {
        std::vector<keyward::appdb::Value> p;
        for (int c = 2; c < 5; ++c) {
          p.push_back(std::string(TextFormLength(std::get<std::string>(r[c]).size()), 'x'));
        }
        p.push_back(r[0]);
        auto n = db.Execute("UPDATE customers SET email = $1, card_number = $2, ssn = $3 "
                            "WHERE id = $4",
                            p);
        if (!n.ok()) return n.status();
      }
      return absl::OkStatus();
    });
    if (!s.ok()) Die(s);
    rows += batch.size();
    after = batch.back()[0];
  }
  return static_cast<double>(rows) / Seconds(start);
}

int Table(char** argv) {
  const std::string admin = argv[3], schema = argv[4], cli = argv[5], backend = argv[6];
  const int64_t rows = std::stoll(argv[7]);
  const std::string work = argv[8];
  std::string reference_url, job_url;
  std::unique_ptr<keyward::testing::PostgresServer> pg;
  if (backend == "sqlite") {
    reference_url = absl::StrCat("sqlite:", work, "/reference.db");
    job_url = absl::StrCat("sqlite:", work, "/job.db");
    {
      auto db = Must(keyward::appdb::Database::Open(reference_url, true));
      Generate(*db, rows);
    }
    std::filesystem::copy_file(work + "/reference.db", work + "/job.db");
  } else {
    pg = Must(keyward::testing::PostgresServer::Start());
    reference_url = Must(pg->CreateDatabase("reference"));
    {
      auto db = Must(keyward::appdb::Database::Open(reference_url));
      Generate(*db, rows);
      Must(db->Execute("VACUUM ANALYZE customers"));
    }
    auto keyward_test = Must(keyward::appdb::Database::Open(pg->Url()));
    Must(keyward_test->Execute("CREATE DATABASE job TEMPLATE reference"));
    job_url = pg->Url("job");
  }
  double reference = 0;
  {
    auto db = Must(keyward::appdb::Database::Open(reference_url));
    reference = PlainUpdate(*db);
  }
  const auto start = Clock::now();
  keyward::testing::ProcessResult r = keyward::testing::RunProcess(
      {cli, "--config", admin, "fields", "encrypt-table", "--schema", schema, "--db", job_url,
       "--table", "customers", "--json"});
  const double wall = Seconds(start);
  if (r.exit_code != 0) {
    std::fprintf(stderr, "encrypt-table failed: %s\n", r.err.c_str());
    return 1;
  }
  auto report = nlohmann::json::parse(r.out);
  const double job = static_cast<double>(rows) / report["seconds"].get<double>();
  std::printf("%s\n", nlohmann::json{{"figure", "encrypt-table"},
                                     {"backend", backend},
                                     {"rows", rows},
                                     {"reference_plain_update_rows_per_second", reference},
                                     {"encrypt_table_rows_per_second", job},
                                     {"encrypt_table_wall_seconds_with_startup", wall},
                                     {"ratio", job / reference},
                                     {"values_changed", report["values_changed"]},
                                     {"failed", report["failed"]}}
                          .dump()
                          .c_str());
  return 0;
}

// ----------------------------------------------------------------- read --

FieldRow RowOf(const keyward::appdb::ResultRow& r) {
  static const char* names[] = {"id", "tenant_id", "email", "card_number", "ssn", "notes"};
  FieldRow row;
  for (size_t i = 0; i < r.size(); ++i) {
    if (const int64_t* n = std::get_if<int64_t>(&r[i])) row[names[i]] = *n;
    if (const std::string* s = std::get_if<std::string>(&r[i])) row[names[i]] = *s;
  }
  return row;
}

int Read(char** argv) {
  const std::string config = argv[2], schema = argv[3];
  const int64_t rows = std::stoll(argv[4]);
  const std::string work = argv[5], backend = argv[6];
  std::string plain_url = absl::StrCat("sqlite:", work, "/read-plain.db");
  std::string enc_url = absl::StrCat("sqlite:", work, "/read-enc.db");
  std::unique_ptr<keyward::testing::PostgresServer> pg;
  if (backend == "postgres") {
    pg = Must(keyward::testing::PostgresServer::Start());
    plain_url = Must(pg->CreateDatabase("read_plain"));
    enc_url = Must(pg->CreateDatabase("read_enc"));
  }
  Must(keyward::appdb::Database::Open(enc_url, true));
  auto enc = Encryptor(config, schema, enc_url);
  {
    auto plain = Must(keyward::appdb::Database::Open(plain_url, true));
    Generate(*plain, rows);
    auto out = Must(keyward::appdb::Database::Open(enc_url, true));
    Must(out->Execute("CREATE TABLE customers (id BIGINT PRIMARY KEY, tenant_id TEXT, email TEXT, "
                      "card_number TEXT, ssn TEXT, notes TEXT)"));
    auto all = Must(plain->Query("SELECT id, tenant_id, email, card_number, ssn, notes FROM "
                                 "customers ORDER BY id"));
    // Encrypted before the transaction: the encryptor writes new data keys
    // on its own connection, which a write transaction here would block.
    std::vector<FieldRow> encrypted;
    for (const auto& r : all) encrypted.push_back(Must(enc->EncryptRow("customers", RowOf(r))));
    absl::Status s = keyward::appdb::InTransaction(*out, [&]() -> absl::Status {
      for (auto& e : encrypted) {
        auto n = out->Execute("INSERT INTO customers VALUES ($1, $2, $3, $4, $5, $6)",
                              {std::get<int64_t>(e["id"]), std::get<std::string>(e["tenant_id"]),
                               std::get<std::string>(e["email"]),
                               std::get<std::string>(e["card_number"]),
                               std::get<std::string>(e["ssn"]), std::get<std::string>(e["notes"])});
        if (!n.ok()) return n.status();
      }
      return absl::OkStatus();
    });
    if (!s.ok()) Die(s);
  }
  auto time_read = [&](const std::string& url, bool decrypt) {
    auto db = Must(keyward::appdb::Database::Open(url));
    double best = 1e9;
    for (int round = 0; round < 5; ++round) {  // best of five: the machine is shared
      const auto start = Clock::now();
      auto all = Must(db->Query("SELECT id, tenant_id, email, card_number, ssn, notes FROM "
                                "customers ORDER BY id"));
      uint64_t bytes = 0;
      for (const auto& r : all) {
        FieldRow row = RowOf(r);
        if (decrypt) row = Must(enc->DecryptRow("customers", std::move(row))).row;
        bytes += std::get<std::string>(row["email"]).size();
      }
      benchmark::DoNotOptimize(bytes);
      best = std::min(best, Seconds(start));
    }
    return static_cast<double>(rows) / best;
  };
  const double plain = time_read(plain_url, false);
  const double decrypted = time_read(enc_url, true);
  std::printf("%s\n", nlohmann::json{{"figure", "read"},
                                     {"backend", backend},
                                     {"rows", rows},
                                     {"plaintext_rows_per_second", plain},
                                     {"field_encryptor_rows_per_second", decrypted},
                                     {"ratio", decrypted / plain}}
                          .dump()
                          .c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "micro" && argc >= 5) return Micro(argc, argv);
  if (mode == "table" && argc == 9) return Table(argv);
  if (mode == "read" && argc == 7) return Read(argv);
  std::fprintf(stderr,
               "usage: fields_bench micro CONFIG SCHEMA WORKDIR [benchmark flags]\n"
               "       fields_bench table CONFIG ADMIN_CONFIG SCHEMA KEYWARD_CLI sqlite|postgres "
               "ROWS WORKDIR\n"
               "       fields_bench read CONFIG SCHEMA ROWS WORKDIR sqlite|postgres\n");
  return 2;
}
