// The fixture of the re-encryption tests: a real keywardd (E2eTest), a
// table of messages to re-encrypt in SQLite (ReencryptTest) or in SQLite
// and PostgreSQL (ReencryptOnBothTest), and a small handle (Db) for the
// tests' own reads and writes.
#ifndef KEYWARD_REENCRYPT_REENCRYPT_E2E_FIXTURE_H_
#define KEYWARD_REENCRYPT_REENCRYPT_E2E_FIXTURE_H_

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "appdb/database.h"
#include "gtest/gtest.h"
#include "keyward/encryptor.h"
#include "keyward/message.h"
#include "reencrypt/unwrapped_keyring.h"
#include "testing/e2e_fixture.h"
#include "testing/postgres_server.h"

namespace keyward {

// A small handle on the test's database (SQLite or PostgreSQL) for the
// test's own reads and writes.
class Db {
 public:
  explicit Db(const std::string& url) {
    auto db = appdb::Database::Open(url);
    EXPECT_TRUE(db.ok()) << db.status();
    if (db.ok()) db_ = std::move(*db);
  }
  appdb::Database& db() { return *db_; }
  void Exec(const std::string& sql) { KW_ASSERT_OK(db_->Execute(sql).status()); }
  void Begin() { KW_ASSERT_OK(db_->Begin()); }
  void Commit() { KW_ASSERT_OK(db_->Commit()); }
  void Insert(int64_t id, const std::string& blob) {
    KW_EXPECT_OK(db_->Execute("INSERT INTO items (id, secret) VALUES ($1, $2)",
                              {id, appdb::Blob{blob}})
                     .status());
  }
  void Update(int64_t id, const std::string& blob) {
    KW_EXPECT_OK(
        db_->Execute("UPDATE items SET secret = $2 WHERE id = $1", {id, appdb::Blob{blob}})
            .status());
  }
  // The re-encryption checkpoint's rows_done; -1 when there is none.
  int64_t CheckpointRowsDone() {
    auto rows = db_->Query("SELECT rows_done FROM keyward_reencrypt_checkpoints");
    if (!rows.ok() || rows->empty()) return -1;
    const int64_t* done = std::get_if<int64_t>(&(*rows)[0][0]);
    return done != nullptr ? *done : -1;
  }
  std::map<int64_t, std::string> All() {
    std::map<int64_t, std::string> out;
    auto rows = db_->Query("SELECT id, secret FROM items WHERE secret IS NOT NULL");
    EXPECT_TRUE(rows.ok()) << rows.status();
    if (!rows.ok()) return out;
    for (const appdb::ResultRow& r : *rows) {
      out[std::get<int64_t>(r[0])] = std::get<appdb::Blob>(r[1]).bytes;
    }
    return out;
  }

 private:
  std::unique_ptr<appdb::Database> db_;
};

class ReencryptTest : public E2eTest {
 protected:
  void SetUp() override { SetUpOn(/*postgres=*/false); }
  // keywardd, clients, and the table `items` in a new SQLite file or a new
  // PostgreSQL database.
  void SetUpOn(bool postgres) {
    E2eTest::SetUp();
    admin_ = Connect(server_->admin_config());
    app_ = Connect(server_->app_config());
    if (postgres) {
      auto pg = testing::SharedPostgresServer();
      ASSERT_TRUE(pg.ok()) << pg.status();
      static int databases = 0;
      auto url = (*pg)->CreateDatabase(absl::StrCat("reencrypt_", ::getpid(), "_", ++databases));
      ASSERT_TRUE(url.ok()) << url.status();
      db_url_ = *url;
    } else {
      db_url_ = "sqlite:" + server_->File("app.db");
      KW_ASSERT_OK(appdb::Database::Open(db_url_, /*create=*/true).status());
    }
    Db db(db_url_);
    db.Exec(postgres ? "CREATE TABLE items (id BIGINT PRIMARY KEY, secret BYTEA, note TEXT)"
                     : "CREATE TABLE items (id INTEGER PRIMARY KEY, secret BLOB, note TEXT)");
  }
  // The data set name the job reports.
  std::string DataSet() { return Db(db_url_).db().RedactedUrl() + "#items.secret"; }
  std::string Plain(int64_t id) { return absl::StrCat("card number of customer ", id); }
  // Rows [from, to) under `key`, each with its own encryption context (and
  // so its own data key).
  void Fill(const std::string& key, int64_t from, int64_t to) {
    EncryptorOptions o;
    o.key_name = key;
    KW_ASSERT_OK_AND_ASSIGN(std::shared_ptr<Encryptor> e_owner,
                            Encryptor::Create(app_, o));
    Encryptor& e = *e_owner;
    Db db(db_url_);
    db.Begin();
    for (int64_t id = from; id < to; ++id) {
      auto m = e.Encrypt(Plain(id), {{"row", std::to_string(id)}});
      ASSERT_TRUE(m.ok()) << m.status();
      db.Insert(id, *m);
    }
    db.Commit();
  }
  // Every message row decrypts to its original (data keys unwrapped by
  // keywardd in batches, messages opened here); returns rows per version.
  std::map<std::string, std::map<uint32_t, int>> CheckAll() {
    std::map<std::string, std::map<uint32_t, int>> versions;
    const auto rows = Db(db_url_).All();
    std::vector<std::pair<int64_t, MessageInfo>> messages;
    std::vector<std::pair<std::string, EncryptionContext>> requests;
    for (const auto& [id, blob] : rows) {
      auto info = InspectMessage(blob);
      if (!info.ok()) continue;  // the deliberate non-message row
      requests.push_back({info->data_keys[0].ciphertext, info->context});
      messages.push_back({id, std::move(*info)});
    }
    reencrypt::UnwrappedKeyring keyring;
    for (size_t i = 0; i < requests.size(); i += 1000) {
      std::vector<std::pair<std::string, EncryptionContext>> chunk(
          requests.begin() + i, requests.begin() + std::min(requests.size(), i + 1000));
      auto deks = admin_->DecryptDataKeys(chunk, /*for_reencryption=*/true);
      EXPECT_TRUE(deks.ok()) << deks.status();
      if (!deks.ok()) return versions;
      for (size_t j = 0; j < chunk.size(); ++j) {
        auto& dek = (*deks)[j];
        EXPECT_TRUE(dek.ok()) << "row " << messages[i + j].first << ": " << dek.status();
        if (dek.ok()) keyring.Add(chunk[j].first, std::move(*dek));
      }
    }
    const KeyUnwrapper* keyrings[] = {&keyring};
    for (const auto& [id, info] : messages) {
      auto pt = DecryptMessage(rows.at(id), keyrings,
                               {.expected_context = {{"row", std::to_string(id)}}});
      EXPECT_TRUE(pt.ok()) << "row " << id << ": " << pt.status();
      if (pt.ok()) {
        EXPECT_EQ(pt->AsStringView(), Plain(id)) << id;
      }
      ++versions[info.key.key_name][info.key.key_version];
    }
    return versions;
  }
  std::vector<std::string> Args(std::vector<std::string> extra) {
    std::vector<std::string> args = {"reencrypt", "--db", db_url_, "--table",
                                     "items", "--column", "secret"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  std::shared_ptr<testing::Client> admin_, app_;
  std::string db_url_;
};

// The tests that run on both backends: TEST_P(ReencryptOnBothTest, ...).
class ReencryptOnBothTest : public ReencryptTest,
                            public ::testing::WithParamInterface<const char*> {
 protected:
  void SetUp() override { SetUpOn(absl::string_view(GetParam()) == "postgresql"); }
};

}  // namespace keyward

#endif  // KEYWARD_REENCRYPT_REENCRYPT_E2E_FIXTURE_H_
