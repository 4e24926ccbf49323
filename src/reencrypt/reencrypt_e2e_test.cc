// End to end: `keyward reencrypt` against a real keywardd and a real SQLite
// table — what a job changes, reports and leaves alone.  The fixture is in
// reencrypt_e2e_fixture.h.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "format/encrypt_materials.h"
#include "gmock/gmock.h"
#include "keyward/raw_aes_keyring.h"
#include "nlohmann/json.hpp"
#include "reencrypt/reencrypt_e2e_fixture.h"

namespace keyward {
namespace {

using ::keyward::testing::ProcessResult;
using ::keyward::testing::StatusIs;
using ::testing::HasSubstr;
using Json = nlohmann::json;

TEST_P(ReencryptOnBothTest, RewrapMovesRowsReportsThemAndOpensTheRetirementGate) {
  KW_ASSERT_OK(admin_->CreateKey("k").status());
  KW_ASSERT_OK(admin_->CreateKey("j").status());
  Fill("k", 0, 300);
  Fill("j", 300, 350);
  {
    Db db(db_url_);
    db.Insert(1000, "not a keyward message");
    db.Exec("INSERT INTO items (id, secret) VALUES (1001, NULL)");
  }
  const auto before = Db(db_url_).All();
  KW_ASSERT_OK(admin_->RotateKey("k").status());

  // A dry run changes nothing and reports nothing.
  Json dry = CliJson(Args({"--key", "k", "--dry-run", "--json"}));
  EXPECT_EQ(dry["changed"], 300);
  EXPECT_EQ(Db(db_url_).All(), before);
  EXPECT_TRUE(admin_->ListDataSets("k")->empty());

  // Evidence that version 1 is still in use keeps it.
  DataSetReportInfo stale;
  stale.data_set = DataSet();
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
  const auto after = Db(db_url_).All();
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
TEST_P(ReencryptOnBothTest, ReportCountsWritesMadeDuringTheJob) {
  KW_ASSERT_OK(admin_->CreateKey("k").status());
  Fill("k", 0, 2000);
  const std::string old_row0 = Db(db_url_).All().at(0);
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
    const auto rows = Db(db_url_).All();
    ASSERT_EQ(rows.count(0), 1u);
    auto info = InspectMessage(rows.at(0));
    moved = info.ok() && info->key.key_version == 2;
    if (!moved) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(moved);
  Db(db_url_).Update(0, old_row0);
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
  EXPECT_EQ(v["versions"][0]["rows"][DataSet()], 1);
}

TEST_P(ReencryptOnBothTest, FullModeReplacesDataKeysAndVerifies) {
  KW_ASSERT_OK(admin_->CreateKey("k").status());
  Fill("k", 0, 120);
  const auto before = Db(db_url_).All();
  KW_ASSERT_OK(admin_->RotateKey("k").status());
  Json r = CliJson(Args({"--mode", "full", "--batch", "50", "--json"}));
  EXPECT_EQ(r["changed"], 120);
  EXPECT_EQ(r["failed"], 0);
  const auto after = Db(db_url_).All();
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
  EXPECT_EQ(server_->Cli({"reencrypt", "--db", "mysql://x", "--table", "items", "--column",
                          "secret"})
                .exit_code,
            2);
  EXPECT_EQ(server_->Cli(Args({"--mode", "sideways"})).exit_code, 2);
  ProcessResult injection = server_->Cli({"reencrypt", "--db", db_url_, "--table",
                                          "items; DROP TABLE items", "--column", "secret"});
  EXPECT_EQ(injection.exit_code, 3);
  EXPECT_THAT(injection.err, HasSubstr("not a plain SQL identifier"));
  ProcessResult missing = server_->Cli({"reencrypt", "--db", db_url_, "--table",
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
  Db db(db_url_);
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

INSTANTIATE_TEST_SUITE_P(Backends, ReencryptOnBothTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& param_info) { return std::string(param_info.param); });

}  // namespace
}  // namespace keyward
