// End to end: `keyward reencrypt` against a real keywardd and a real SQLite
// table, including kill -9 at random moments.
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "format/encrypt_materials.h"
#include "format/header.h"
#include "keyward/encryptor.h"
#include "keyward/errors.h"
#include "keyward/message.h"
#include "keyward/raw_aes_keyring.h"
#include "nlohmann/json.hpp"
#include "reencrypt/sqlite_table.h"
#include "reencrypt/unwrapped_keyring.h"
#include "testing/e2e_fixture.h"

namespace keyward {
namespace {

using ::keyward::testing::ProcessResult;
using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;
using Json = nlohmann::json;

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

TEST_F(ReencryptTest, RewrapMovesRowsReportsThemAndOpensTheRetirementGate) {
  KW_ASSERT_OK(admin_->CreateKey("k").status());
  KW_ASSERT_OK(admin_->CreateKey("j").status());
  Fill("k", 0, 300);
  Fill("j", 300, 350);
  {
    Db db(db_path_);
    db.Insert(1000, "not a keyward message");
    db.Exec("INSERT INTO items (id, secret) VALUES (1001, NULL)");
  }
  const auto before = Db(db_path_).All();
  KW_ASSERT_OK(admin_->RotateKey("k").status());

  // A dry run changes nothing and reports nothing.
  Json dry = CliJson(Args({"--key", "k", "--dry-run", "--json"}));
  EXPECT_EQ(dry["changed"], 300);
  EXPECT_EQ(Db(db_path_).All(), before);
  EXPECT_TRUE(admin_->ListDataSets("k")->empty());

  // Evidence that version 1 is still in use keeps it.
  DataSetReportInfo stale;
  stale.data_set = "sqlite:" + db_path_ + "#items.secret";
  stale.key_name = "k";
  stale.rows_per_version = {{1, 300}};
  stale.rows_total = 300;
  KW_ASSERT_OK(admin_->ReportDataSet(stale));
  EXPECT_THAT(admin_->DisableVersion("k", 1),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("300 row(s)")));

  Json r = CliJson(Args({"--key", "k", "--batch", "64", "--json"}));
  EXPECT_EQ(r["rows"], 351);
  EXPECT_EQ(r["changed"], 300);
  EXPECT_EQ(r["other_keys"], 50);
  EXPECT_EQ(r["not_messages"], 1);
  EXPECT_EQ(r["failed"], 0);
  EXPECT_EQ(r["rows_per_version"]["k"]["2"], 300);
  EXPECT_FALSE(r["rows_per_version"]["k"].contains("1"));
  // Bodies untouched, headers moved, everything decrypts.
  const auto after = Db(db_path_).All();
  for (int64_t id = 0; id < 300; ++id) {
    auto b = InspectMessage(before.at(id));
    auto a = InspectMessage(after.at(id));
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->key.key_version, 2u);
    EXPECT_EQ(after.at(id).substr(a->header_bytes), before.at(id).substr(b->header_bytes));
  }
  EXPECT_EQ(after.at(300), before.at(300));  // other key: left alone
  auto versions = CheckAll();
  EXPECT_EQ(versions["k"][2], 300);
  EXPECT_EQ(versions["j"][1], 50);

  // Neither does rewrapping a file (an old copy of row 5) nor a rotation
  // drill opening every version's sample.
  {
    const std::string file = server_->File("row5.kw");
    std::ofstream(file, std::ios::binary) << before.at(5);
    EXPECT_EQ(server_->Cli({"rewrap", file}).exit_code, 0);
    Json drill = CliJson({"rotation", "drill", "k", "--json"});
    EXPECT_EQ(drill["checked"], 2);
    EXPECT_EQ(drill["failed"], 0);
  }
  // The report replaced the stale one, and re-encryption did not count as
  // reading version 1: the gate now lets it go.
  Json v = CliJson({"key", "versions", "k", "--json"});
  EXPECT_EQ(v["versions"][0]["rows"][stale.data_set], 0);
  EXPECT_EQ(v["versions"][1]["rows"][stale.data_set], 300);
  EXPECT_TRUE(v["versions"][0]["last_decrypt"].is_null());
  KW_EXPECT_OK(admin_->DisableVersion("k", 1).status());

  // Idempotent: a second run finds nothing to do.
  Json again = CliJson(Args({"--key", "k", "--json"}));
  EXPECT_EQ(again["changed"], 0);
  EXPECT_EQ(again["already_current"], 300);
  EXPECT_FALSE(again["resumed"]);
}

// The report's rows per version are tallied as batches commit; when another
// connection writes to the database during the job (here: an old-version
// value put back behind the job's cursor), the job recounts by scanning.
TEST_F(ReencryptTest, ReportCountsWritesMadeDuringTheJob) {
  KW_ASSERT_OK(admin_->CreateKey("k").status());
  Fill("k", 0, 2000);
  const std::string old_row0 = Db(db_path_).All().at(0);
  KW_ASSERT_OK(admin_->RotateKey("k").status());
  const std::string out = server_->File("job.json");
  std::vector<std::string> args = {KEYWARD_CLI, "--config", server_->admin_config()};
  for (const std::string& a : Args({"--batch", "20", "--rate", "1000", "--json"})) {
    args.push_back(a);
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::freopen(out.c_str(), "w", stdout);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  struct Reaper {  // an early test failure must not leave the job running
    pid_t pid;
    ~Reaper() {
      if (pid > 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
  } reaper{pid};
  // Once the job has moved row 0, put its version-1 value back.
  bool moved = false;
  for (int i = 0; i < 500 && !moved; ++i) {
    const auto rows = Db(db_path_).All();
    ASSERT_EQ(rows.count(0), 1u);
    auto info = InspectMessage(rows.at(0));
    moved = info.ok() && info->key.key_version == 2;
    if (!moved) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(moved);
  Db(db_path_).Update(0, old_row0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  reaper.pid = 0;
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::ifstream f(out);
  Json r = Json::parse(f);
  ASSERT_LT(r["seconds"].get<double>(), 60.0);
  EXPECT_EQ(r["rows_per_version"]["k"]["1"], 1) << r.dump();
  EXPECT_EQ(r["rows_per_version"]["k"]["2"], 1999) << r.dump();
  Json v = CliJson({"key", "versions", "k", "--json"});
  EXPECT_EQ(v["versions"][0]["rows"]["sqlite:" + db_path_ + "#items.secret"], 1);
}

// A header that names key "open" but whose kms entry belongs to key
// "secret": keywardd refuses it before authorizing or unwrapping anything
// (nothing is unwrapped under "secret"), and rewraps the honest header of
// the same batch.
TEST_F(ReencryptTest, BatchRewrapRefusesAKmsEntryOfAnotherKey) {
  KW_ASSERT_OK(admin_->CreateKey("open").status());
  KW_ASSERT_OK(admin_->CreateKey("secret").status());
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey secret_dk, admin_->GenerateDataKey("secret", {}));
  KW_ASSERT_OK_AND_ASSIGN(KeyInfo open, admin_->GetKey("open"));
  format::EncryptionMaterials m;
  m.key = secret_dk.key;
  m.key.key_name = "open";
  m.key.key_version = open.primary_version;
  m.data_keys = {secret_dk.encrypted};
  m.data_key = &secret_dk.plaintext;
  KW_ASSERT_OK_AND_ASSIGN(std::string crafted, format::EncryptBytesWithMaterials(m, "x"));
  KW_ASSERT_OK(admin_->RotateKey("open").status());
  KW_ASSERT_OK(admin_->RotateKey("secret").status());
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(crafted));
  KW_ASSERT_OK_AND_ASSIGN(std::string honest, admin_->Encrypt("open", "y", {}));
  KW_ASSERT_OK_AND_ASSIGN(MessageInfo honest_info, InspectMessage(honest));
  KW_ASSERT_OK_AND_ASSIGN(KeyInfo secret_before, admin_->GetKey("secret"));
  KW_ASSERT_OK_AND_ASSIGN(
      auto results, admin_->RewrapMessageHeaders({crafted.substr(0, info.header_bytes),
                                                  honest.substr(0, honest_info.header_bytes)}));
  ASSERT_EQ(results.size(), 2u);
  EXPECT_THAT(results[0], StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("not wrapped by key 'open'")));
  KW_EXPECT_OK(results[1].status());
  KW_ASSERT_OK_AND_ASSIGN(KeyInfo secret_after, admin_->GetKey("secret"));
  EXPECT_EQ(secret_after.versions[0].decrypts, secret_before.versions[0].decrypts);
}

// Two messages sharing one wrapped data key, the second claiming a context
// that was never bound to it but that a careless cache key would confuse
// with the first's: keywardd must unwrap it for real and refuse it, not
// answer from the first message's cached unwrap (or verification).
TEST_F(ReencryptTest, BatchRewrapRefusesAContextTheDataKeyWasNotWrappedWith) {
  KW_ASSERT_OK(admin_->CreateKey("k").status());
  const EncryptionContext bound = {{"a", "x\n1:by"}};
  const EncryptionContext lookalike = {{"a", "x"}, {"b", "y"}};
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey dk, admin_->GenerateDataKey("k", bound));
  std::vector<std::string> headers;
  for (const EncryptionContext* context : {&bound, &lookalike}) {
    format::EncryptionMaterials m;
    m.key = dk.key;
    m.context = *context;
    m.data_keys = {dk.encrypted};
    m.data_key = &dk.plaintext;
    KW_ASSERT_OK_AND_ASSIGN(std::string message, format::EncryptBytesWithMaterials(m, "x"));
    KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(message));
    headers.push_back(message.substr(0, info.header_bytes));
  }
  KW_ASSERT_OK(admin_->RotateKey("k").status());
  KW_ASSERT_OK_AND_ASSIGN(auto results, admin_->RewrapMessageHeaders(headers));
  ASSERT_EQ(results.size(), 2u);
  KW_EXPECT_OK(results[0].status());
  EXPECT_THAT(results[1], StatusIs(absl::StatusCode::kFailedPrecondition,
                                   HasSubstr("encryption context mismatch")));
}

// More headers than one request may hold (10,000) and more bytes than
// keywardd accepts in one (4 MiB): the SDK splits the call, and every
// header comes back rewrapped, in order.
TEST_F(ReencryptTest, RewrapMessageHeadersSplitsLargeCallsIntoRequests) {
  KW_ASSERT_OK(admin_->CreateKey("k").status());
  EncryptorOptions o;
  o.key_name = "k";
  KW_ASSERT_OK_AND_ASSIGN(std::shared_ptr<Encryptor> e_owner,
                          Encryptor::Create(app_, o));
  Encryptor& e = *e_owner;
  const EncryptionContext context = {{"padding", std::string(500, 'p')}};
  std::vector<std::string> headers;
  std::vector<std::string> ids;
  size_t bytes = 0;
  for (int i = 0; i < 10001; ++i) {
    KW_ASSERT_OK_AND_ASSIGN(std::string m, e.Encrypt(absl::StrCat("row ", i), context));
    KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(m));
    headers.push_back(m.substr(0, info.header_bytes));
    ids.push_back(info.message_id);
    bytes += info.header_bytes;
  }
  ASSERT_GT(bytes, 4u << 20);
  KW_ASSERT_OK(admin_->RotateKey("k").status());
  KW_ASSERT_OK_AND_ASSIGN(auto results, admin_->RewrapMessageHeaders(headers));
  ASSERT_EQ(results.size(), headers.size());
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status();
    EXPECT_EQ(results[i]->key.key_version, 2u);
    std::string authenticated;
    KW_ASSERT_OK_AND_ASSIGN(format::Header h,
                            format::ParseHeader(results[i]->header, &authenticated));
    ASSERT_EQ(h.message_id, ids[i]) << i;
  }
}

// keywardd configured to accept only small requests: the SDK sends the
// headers again in smaller requests, and a header that alone is too large
// fails on its own, the others are rewrapped.
TEST_F(ReencryptTest, RewrapMessageHeadersFitsAServerWithASmallRequestLimit) {
  KW_ASSERT_OK(admin_->CreateKey("k").status());
  EncryptorOptions o;
  o.key_name = "k";
  KW_ASSERT_OK_AND_ASSIGN(std::shared_ptr<Encryptor> e_owner,
                          Encryptor::Create(app_, o));
  Encryptor& e = *e_owner;
  std::vector<std::string> headers;
  for (int i = 0; i < 31; ++i) {
    // Row 13's context is larger than a whole request may be.
    const EncryptionContext context =
        i == 13 ? EncryptionContext{{"a", std::string(4096, 'a')}, {"b", std::string(4096, 'b')}}
                : EncryptionContext{{"padding", std::string(500, 'p')}};
    KW_ASSERT_OK_AND_ASSIGN(std::string m, e.Encrypt(absl::StrCat("row ", i), context));
    KW_ASSERT_OK_AND_ASSIGN(MessageInfo info, InspectMessage(m));
    headers.push_back(m.substr(0, info.header_bytes));
  }
  ASSERT_EQ(server_->Stop(), 0);
  std::string config = testing::ReadFileOrDie(server_->File("keywardd.yaml"));
  const std::string limit = "max_request_bytes: 4194304";
  const size_t at = config.find(limit);
  ASSERT_NE(at, std::string::npos);
  config.replace(at, limit.size(), "max_request_bytes: 8192");
  std::ofstream(server_->File("keywardd.yaml")) << config;
  KW_ASSERT_OK(server_->Start());
  KW_ASSERT_OK(admin_->RotateKey("k").status());
  KW_ASSERT_OK_AND_ASSIGN(auto results, admin_->RewrapMessageHeaders(headers));
  ASSERT_EQ(results.size(), headers.size());
  for (size_t i = 0; i < results.size(); ++i) {
    if (i == 13) {
      EXPECT_EQ(GetErrorCode(results[i].status()), ErrorCode::kLimitExceeded)
          << results[i].status();
      continue;
    }
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status();
    EXPECT_EQ(results[i]->key.key_version, 2u);
  }
}

TEST_F(ReencryptTest, FullModeReplacesDataKeysAndVerifies) {
  KW_ASSERT_OK(admin_->CreateKey("k").status());
  Fill("k", 0, 120);
  const auto before = Db(db_path_).All();
  KW_ASSERT_OK(admin_->RotateKey("k").status());
  Json r = CliJson(Args({"--mode", "full", "--batch", "50", "--json"}));
  EXPECT_EQ(r["changed"], 120);
  EXPECT_EQ(r["failed"], 0);
  const auto after = Db(db_path_).All();
  for (const auto& [id, blob] : after) {
    auto a = InspectMessage(blob);
    auto b = InspectMessage(before.at(id));
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->key.key_version, 2u);
    EXPECT_NE(a->message_id, b->message_id);  // a new message, new data key
    EXPECT_NE(a->data_keys[0].ciphertext, b->data_keys[0].ciphertext);
  }
  EXPECT_EQ(CheckAll()["k"][2], 120);
}

TEST_F(ReencryptTest, BadArgumentsAreUsageErrors) {
  EXPECT_EQ(server_->Cli({"reencrypt", "--db", "postgres://x", "--table", "items", "--column",
                          "secret"})
                .exit_code,
            2);
  EXPECT_EQ(server_->Cli(Args({"--mode", "sideways"})).exit_code, 2);
  ProcessResult injection = server_->Cli({"reencrypt", "--db", "sqlite:" + db_path_, "--table",
                                          "items; DROP TABLE items", "--column", "secret"});
  EXPECT_EQ(injection.exit_code, 3);
  EXPECT_THAT(injection.err, HasSubstr("not a plain SQL identifier"));
  ProcessResult missing = server_->Cli({"reencrypt", "--db", "sqlite:" + db_path_, "--table",
                                        "nope", "--column", "secret"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.err, HasSubstr("no such table"));
  // The id column is what orders the job: it cannot be the column being
  // rewritten (that job would never end).
  ProcessResult same = server_->Cli(Args({"--id-column", "secret"}));
  EXPECT_EQ(same.exit_code, 2) << same.err;
  EXPECT_THAT(same.err, HasSubstr("is the column being re-encrypted"));
}

// Anyone who can insert a row must not be able to stop rotation: rows
// under keys this keywardd does not have (a raw key, another environment's
// key, a name it has no key for) are counted and left alone, the job
// finishes, reports, clears its checkpoint, and runs again just as well.
TEST_F(ReencryptTest, RowsUnderKeysKeywarddDoesNotHaveAreCountedAndSkipped) {
  KW_ASSERT_OK(admin_->CreateKey("k").status());
  Fill("k", 1, 21);
  Db db(db_path_);
  // A raw-key message (environment "offline").
  KW_ASSERT_OK_AND_ASSIGN(auto raw, RawAesKeyring::Generate());
  const KeyWrapper* raw_list[] = {raw.get()};
  KW_ASSERT_OK_AND_ASSIGN(std::string offline, EncryptMessage("x", {}, raw_list));
  db.Insert(100, offline);
  // A message that names a key keywardd has no key for, and one of another
  // environment (crafted: the header is all the job reads).
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey dk, admin_->GenerateDataKey("k", {}));
  for (const auto& [id, env, name] : {std::tuple{101, "dev", "no/such/key"},
                                      std::tuple{102, "staging", "k"}}) {
    format::EncryptionMaterials m;
    m.key = dk.key;
    m.key.environment = env;
    m.key.key_name = name;
    m.data_keys = {dk.encrypted};
    m.data_key = &dk.plaintext;
    KW_ASSERT_OK_AND_ASSIGN(std::string crafted, format::EncryptBytesWithMaterials(m, "y"));
    db.Insert(id, crafted);
  }
  KW_ASSERT_OK(admin_->RotateKey("k").status());
  for (int run = 0; run < 2; ++run) {
    ProcessResult r = server_->Cli(Args({"--json"}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    Json report = Json::parse(r.out);
    EXPECT_EQ(report["unknown_keys"], 3) << report.dump();
    EXPECT_EQ(report["failed"], 0);
    EXPECT_EQ(report["changed"], run == 0 ? 20 : 0);
    EXPECT_EQ(report["rows_per_version"].size(), 1u) << report.dump();
    EXPECT_EQ(report["rows_per_version"]["k"]["2"], 20);
    EXPECT_EQ(db.CheckpointRowsDone(), -1) << "the checkpoint was left behind";
  }
}

// kill -9 at random moments, many times, with rotations in between: every
// row decrypts after every kill, and a final run finishes the job.
TEST_F(ReencryptTest, KillNineAtRandomMomentsLosesNothing) {
  KW_ASSERT_OK(admin_->CreateKey("k").status());
  Fill("k", 0, 1500);
  KW_ASSERT_OK(admin_->RotateKey("k").status());
  std::mt19937 rng(20261128);
  std::uniform_int_distribution<int> throttled_delay_ms(20, 600);
  std::uniform_int_distribution<int> unthrottled_delay_ms(30, 250);
  int killed_mid_run = 0;
  // Full-speed kills that landed after the round committed batches and
  // before the job finished (its checkpoint moved and is still there).
  int unthrottled_killed_mid_run = 0;
  for (int round = 0; round < 15; ++round) {
    if (round == 7) {
      KW_ASSERT_OK(admin_->RotateKey("k").status());  // a moving target
    }
    std::vector<std::string> args = {KEYWARD_CLI, "--config", server_->admin_config()};
    // Even rounds rate-limited (one batch in flight), so that every run,
    // even a rescan, lasts long enough to be killed mid-way; odd rounds at
    // full speed, with three batches in keywardd while one commits, and
    // small batches so that there are many commits to land between.
    const bool throttled = round % 2 == 0;
    const int64_t done_before = Db(db_path_).CheckpointRowsDone();
    for (const std::string& a : throttled ? Args({"--batch", "40", "--rate", "2500"})
                                          : Args({"--batch", "4"})) {
      args.push_back(a);
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::freopen("/dev/null", "w", stdout);
      ::freopen("/dev/null", "w", stderr);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(
        throttled ? throttled_delay_ms(rng) : unthrottled_delay_ms(rng)));
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      ++killed_mid_run;
      if (!throttled && Db(db_path_).CheckpointRowsDone() > std::max<int64_t>(done_before, 0)) {
        ++unthrottled_killed_mid_run;
      }
    }
    // The invariant, after every kill: every row decrypts to its original.
    auto versions = CheckAll();
    int total = 0;
    for (const auto& [v, n] : versions["k"]) total += n;
    ASSERT_EQ(total, 1500) << "round " << round;
  }
  std::printf("killed mid-run: %d of 15 rounds; at full speed after progress: %d of 7\n",
              killed_mid_run, unthrottled_killed_mid_run);
  EXPECT_GE(killed_mid_run, 5) << "the kills should land while the job runs";
  EXPECT_GE(unthrottled_killed_mid_run, 2) << "and some in a full-speed run that made progress";
  // The job resumes from its checkpoint and finishes.
  ProcessResult last = server_->Cli(Args({"--json"}));
  ASSERT_EQ(last.exit_code, 0) << last.err;
  Json r = Json::parse(last.out);
  EXPECT_EQ(r["failed"], 0);
  EXPECT_EQ(r["rows_per_version"]["k"]["3"], 1500);
  EXPECT_EQ(CheckAll()["k"][3], 1500);
}

TEST(SqliteTableTest, CommitsOnlyUnchangedRowsWithTheCheckpoint) {
  testing::TempDir dir;
  const std::string path = dir.File("t.db");
  {
    Db db(path);
    db.Exec("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)");
    db.Exec("INSERT INTO t VALUES ('a', x'01'), ('b', x'02'), ('c', NULL)");
  }
  auto table = reencrypt::SqliteTable::Open(path, "t", "v", "k");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(*(*table)->CountRows(), 2u);
  auto rows = (*table)->ReadBatch(std::nullopt, 10);
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ(std::get<std::string>((*rows)[0].id), "a");
  reencrypt::Checkpoint cp;
  cp.after = std::string("b");
  cp.rows_done = 2;
  auto replaced = (*table)->CommitBatch(
      {{std::string("a"), "\x01", "new-a"}, {std::string("b"), "stale", "new-b"}}, "job", cp);
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_EQ(*replaced, 1u);  // b changed under us: left alone
  auto saved = (*table)->LoadCheckpoint("job");
  ASSERT_TRUE(saved.ok() && saved->has_value());
  EXPECT_EQ(std::get<std::string>(*(*saved)->after), "b");
  EXPECT_EQ((*saved)->rows_changed, 1u);
  EXPECT_TRUE((*table)->ReadBatch(std::string("b"), 10)->empty());
  KW_EXPECT_OK((*table)->ClearCheckpoint("job"));
  EXPECT_FALSE((*table)->LoadCheckpoint("job")->has_value());
  EXPECT_THAT(reencrypt::SqliteTable::Open(path, "t", "v\"; --", "k"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(reencrypt::SqliteTable::Open(dir.File("missing.db"), "t", "v", "k"),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace keyward
