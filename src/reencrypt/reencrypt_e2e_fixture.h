// The fixture of the re-encryption tests: a real keywardd (E2eTest), a
// SQLite table of messages to re-encrypt, and a small SQLite handle (Db)
// for the tests' own reads and writes.
#ifndef KEYWARD_REENCRYPT_REENCRYPT_E2E_FIXTURE_H_
#define KEYWARD_REENCRYPT_REENCRYPT_E2E_FIXTURE_H_

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "keyward/encryptor.h"
#include "keyward/message.h"
#include "reencrypt/unwrapped_keyring.h"
#include "testing/e2e_fixture.h"

namespace keyward {

// A small SQLite handle for the test's own reads and writes.
class Db {
 public:
  explicit Db(const std::string& path) {
    sqlite3_open(path.c_str(), &db_);
    sqlite3_busy_timeout(db_, 10000);  // the job may hold the write lock
  }
  ~Db() { sqlite3_close(db_); }
  void Exec(const std::string& sql) {
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << err;
  }
  void Insert(int64_t id, const std::string& blob) {
    sqlite3_stmt* s;
    sqlite3_prepare_v2(db_, "INSERT INTO items (id, secret) VALUES (?1, ?2)", -1, &s, nullptr);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_blob(s, 2, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
  }
  void Update(int64_t id, const std::string& blob) {
    sqlite3_stmt* s;
    ASSERT_EQ(sqlite3_prepare_v2(db_, "UPDATE items SET secret = ?2 WHERE id = ?1", -1, &s, nullptr),
              SQLITE_OK);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_blob(s, 2, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
  }
  // The re-encryption checkpoint's rows_done; -1 when there is none.
  int64_t CheckpointRowsDone() {
    sqlite3_stmt* s = nullptr;
    int64_t done = -1;
    if (sqlite3_prepare_v2(db_, "SELECT rows_done FROM keyward_reencrypt_checkpoints", -1, &s,
                           nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
      done = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    return done;
  }
  std::map<int64_t, std::string> All() {
    std::map<int64_t, std::string> out;
    sqlite3_stmt* s;
    sqlite3_prepare_v2(db_, "SELECT id, secret FROM items WHERE secret IS NOT NULL", -1, &s,
                       nullptr);
    while (sqlite3_step(s) == SQLITE_ROW) {
      out[sqlite3_column_int64(s, 0)] =
          std::string(static_cast<const char*>(sqlite3_column_blob(s, 1)),
                      static_cast<size_t>(sqlite3_column_bytes(s, 1)));
    }
    sqlite3_finalize(s);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

class ReencryptTest : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    admin_ = Connect(server_->admin_config());
    app_ = Connect(server_->app_config());
    db_path_ = server_->File("app.db");
    Db db(db_path_);
    db.Exec("CREATE TABLE items (id INTEGER PRIMARY KEY, secret BLOB, note TEXT)");
  }
  std::string Plain(int64_t id) { return absl::StrCat("card number of customer ", id); }
  // Rows [from, to) under `key`, each with its own encryption context (and
  // so its own data key).
  void Fill(const std::string& key, int64_t from, int64_t to) {
    EncryptorOptions o;
    o.key_name = key;
    KW_ASSERT_OK_AND_ASSIGN(std::shared_ptr<Encryptor> e_owner,
                            Encryptor::Create(app_, o));
    Encryptor& e = *e_owner;
    Db db(db_path_);
    db.Exec("BEGIN");
    for (int64_t id = from; id < to; ++id) {
      auto m = e.Encrypt(Plain(id), {{"row", std::to_string(id)}});
      ASSERT_TRUE(m.ok()) << m.status();
      db.Insert(id, *m);
    }
    db.Exec("COMMIT");
  }
  // Every message row decrypts to its original (data keys unwrapped by
  // keywardd in batches, messages opened here); returns rows per version.
  std::map<std::string, std::map<uint32_t, int>> CheckAll() {
    std::map<std::string, std::map<uint32_t, int>> versions;
    const auto rows = Db(db_path_).All();
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
    std::vector<std::string> args = {"reencrypt", "--db", "sqlite:" + db_path_, "--table",
                                     "items", "--column", "secret"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  std::shared_ptr<testing::Client> admin_, app_;
  std::string db_path_;
};

}  // namespace keyward

#endif  // KEYWARD_REENCRYPT_REENCRYPT_E2E_FIXTURE_H_
