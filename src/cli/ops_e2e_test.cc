// End to end with a real keywardd: `keyward key compromise`, `keyward
// doctor` (each check provoked) and `keyward inventory` (validated against
// the official CycloneDX 1.6 schema), and a canary test: no secret in any of
// their outputs.
#include <sys/stat.h>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keyward/errors.h"
#include "nlohmann/json.hpp"
#include "testing/dev_server.h"
#include "testing/status_matchers.h"
#include "testing/test_client.h"

namespace keyward {
namespace {

using ::keyward::testing::ProcessResult;
using ::keyward::testing::ReadFileOrDie;
using ::keyward::testing::RunProcess;
using ::keyward::testing::WriteFileOrDie;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

void ReplaceInFile(const std::string& path, const std::string& from, const std::string& to) {
  const std::string text = ReadFileOrDie(path);
  ASSERT_THAT(text, HasSubstr(from)) << path;
  WriteFileOrDie(path, absl::StrReplaceAll(text, {{from, to}}));
}

// Runs a shell command (openssl, cp); asserts it worked.
void Sh(const std::string& command) {
  ProcessResult r = RunProcess({"/bin/sh", "-c", command});
  ASSERT_EQ(r.exit_code, 0) << command << "\n" << r.err;
}

class OpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = testing::DevServer::Init(KEYWARD_CLI, KEYWARDD);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    // The rotation scheduler checks hourly here, so that a key overdue for
    // rotation stays overdue while the test looks at it.
    ReplaceInFile(server_->File("keywardd.yaml"), "check_interval: 30s", "check_interval: 1h");
    KW_ASSERT_OK(server_->Start());
    admin_ = Connect(server_->admin_config());
    app_ = Connect(server_->app_config());
    ASSERT_NE(admin_, nullptr);
    ASSERT_NE(app_, nullptr);
  }
  std::shared_ptr<testing::Client> Connect(const std::string& config) {
    auto options = LoadClientConfig(config);
    EXPECT_TRUE(options.ok()) << options.status();
    if (!options.ok()) return nullptr;
    auto client = testing::Client::Connect(*options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }
  ProcessResult Cli(std::vector<std::string> args, const std::string& config = "") {
    return server_->Cli(std::move(args), config);
  }
  Json CliJson(std::vector<std::string> args, const std::string& config = "") {
    ProcessResult r = Cli(std::move(args), config);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Json::parse(r.out, nullptr, false);
  }
  // `keyward doctor --json`, with its exit status.
  Json Doctor(std::vector<std::string> extra, int* exit_code) {
    std::vector<std::string> args = {"doctor", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    ProcessResult r = Cli(args);
    *exit_code = r.exit_code;
    Json j = Json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.out << r.err;
    if (j.is_object()) {
      EXPECT_EQ(j["exit_code"], r.exit_code);
    }
    return j;
  }
  // The findings of one check at one status.
  static std::vector<std::string> Findings(const Json& doctor, const std::string& check,
                                           const std::string& status) {
    std::vector<std::string> out;
    if (!doctor.is_object()) return out;
    for (const Json& c : doctor["checks"]) {
      if (c["check"] == check && c["status"] == status) {
        out.push_back(c["finding"].get<std::string>());
      }
    }
    return out;
  }
  // Audit records of `operation`, as JSON.
  std::vector<Json> Records(const std::string& operation) {
    AuditQuery q;
    q.operation = operation;
    auto page = admin_->ReadAuditRecords(q);
    EXPECT_TRUE(page.ok()) << page.status();
    std::vector<Json> out;
    if (page.ok()) {
      for (const std::string& line : page->records) out.push_back(Json::parse(line));
    }
    return out;
  }
  std::unique_ptr<testing::DevServer> server_;
  std::shared_ptr<testing::Client> admin_, app_;
};

// --- Key compromise ---------------------------------------------------------

TEST_F(OpsTest, CompromiseStopsWrappingKeepsDecryptingFlagsAndSurvivesARestart) {
  KW_ASSERT_OK(admin_->CreateKey("orders").status());
  const EncryptionContext ctx = {{"tenant", "acme"}};
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey old_key, app_->GenerateDataKey("orders", ctx));
  ASSERT_EQ(old_key.key.key_version, 1u);
  WriteFileOrDie(server_->File("card.txt"), "4111 1111 1111 1111");
  ProcessResult enc = Cli({"encrypt", "--key", "orders", "--context", "tenant=acme", "-o",
                           server_->File("card.kw"), server_->File("card.txt")},
                          server_->app_config());
  ASSERT_EQ(enc.exit_code, 0) << enc.err;
  // A re-encryption job found 5 rows on version 1 in one table.
  KW_ASSERT_OK(admin_->ReportDataSet({"sqlite:/srv/app.db#orders.card", "orders", {{1, 5}}, 5}));

  // The application may not declare a compromise.
  ProcessResult refused =
      Cli({"key", "compromise", "orders", "--version", "1", "--reason", "INC-1"},
          server_->app_config());
  EXPECT_EQ(refused.exit_code, 5) << refused.err;
  // Nor may anyone without a reason.
  EXPECT_EQ(Cli({"key", "compromise", "orders", "--version", "1"}).exit_code, 2);

  Json r = CliJson({"key", "compromise", "orders", "--version", "1", "--reason",
                    "INC-1: backup tape lost", "--json"});
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["already_compromised"], false);
  EXPECT_EQ(r["new_primary_version"], 2);
  ASSERT_EQ(r["data_sets"].size(), 1u);
  EXPECT_EQ(r["data_sets"][0]["data_set"], "sqlite:/srv/app.db#orders.card");
  EXPECT_EQ(r["data_sets"][0]["rows_on_version"], 5);
  EXPECT_EQ(r["data_sets"][0]["reencrypt"],
            "keyward reencrypt --db sqlite:/srv/app.db --table orders --column card --key "
            "orders --mode full");

  // Marked in `key describe`.
  Json k = CliJson({"key", "describe", "orders", "--json"});
  EXPECT_EQ(k["primary_version"], 2);
  EXPECT_EQ(k["versions"][0]["state"], "decrypt-only");
  EXPECT_EQ(k["versions"][0]["compromise_reason"], "INC-1: backup tape lost");
  EXPECT_EQ(k["versions"][0]["compromised_by"], "spiffe://keyward.dev/admin");
  ProcessResult text = Cli({"key", "describe", "orders"});
  EXPECT_THAT(text.out, HasSubstr("COMPROMISED"));

  // New data keys come from version 2; the old data still decrypts.
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey fresh, app_->GenerateDataKey("orders", ctx));
  EXPECT_EQ(fresh.key.key_version, 2u);
  KW_ASSERT_OK_AND_ASSIGN(SecretData dk, app_->DecryptDataKey(old_key.encrypted.ciphertext, ctx));
  EXPECT_EQ(dk.AsStringView(), old_key.plaintext.AsStringView());
  ProcessResult dec = Cli({"decrypt", "--context", "tenant=acme", server_->File("card.kw")},
                          server_->app_config());
  ASSERT_EQ(dec.exit_code, 0) << dec.err;
  EXPECT_EQ(dec.out, "4111 1111 1111 1111");

  // Every decrypt under it is flagged: audit record and metric.
  int flagged = 0;
  for (const Json& rec : Records("decrypt")) {
    if (rec.value("detail", "").find("COMPROMISED: version 1") != std::string::npos) ++flagged;
  }
  EXPECT_GE(flagged, 2);  // the data key, and the file's
  const std::string metrics = server_->HttpGet("/metrics");
  EXPECT_THAT(metrics, HasSubstr("keyward_compromised_versions{key=\"orders\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("keyward_compromised_version_decrypts_total{key=\"orders\"}"));
  // The declaration itself is audited, ahead of the change and after it
  // (and the application's attempt as refused).
  std::vector<Json> declared;
  for (const Json& rec : Records("compromise-key")) {
    if (rec["principal"] == "spiffe://keyward.dev/app") {
      EXPECT_EQ(rec["decision"], "deny");
    } else {
      declared.push_back(rec);
    }
  }
  ASSERT_EQ(declared.size(), 2u);
  EXPECT_EQ(declared[0]["result"], "PENDING");
  EXPECT_THAT(declared[0]["detail"].get<std::string>(), HasSubstr("INC-1: backup tape lost"));
  EXPECT_EQ(declared[1]["result"], "OK");
  EXPECT_THAT(server_->log(), HasSubstr("key-compromised"));

  // Durable: after a restart it is still compromised and can never be
  // primary again; declaring it again changes nothing.
  EXPECT_EQ(server_->Stop(), 0);
  KW_ASSERT_OK(server_->Start());
  k = CliJson({"key", "describe", "orders", "--json"});
  EXPECT_EQ(k["versions"][0]["compromise_reason"], "INC-1: backup tape lost");
  ProcessResult promote = Cli({"key", "set-primary", "orders", "1"});
  EXPECT_EQ(promote.exit_code, 5);
  EXPECT_THAT(promote.err, HasSubstr("compromised"));
  Json again = CliJson({"key", "compromise", "orders", "--version", "1", "--reason", "again",
                        "--json"});
  EXPECT_EQ(again["already_compromised"], true);
  EXPECT_EQ(again["key_info"]["versions"].size(), 2u);

  // Doctor reports the data still under it.
  int code = 0;
  Json d = Doctor({}, &code);
  EXPECT_EQ(Findings(d, "compromise", "WARNING").size(), 1u) << d.dump(1);
}

// --- keyward doctor -----------------------------------------------------------

TEST_F(OpsTest, DoctorOnAFreshDevSetupFindsNothingToFix) {
  int code = -1;
  Json d = Doctor({}, &code);
  EXPECT_EQ(code, 0) << d.dump(1);
  EXPECT_EQ(d["status"], "ok");
  for (const char* check : {"server", "environment", "hsm", "certificates", "audit", "rotation",
                            "destruction", "policy", "clock", "dev-material"}) {
    EXPECT_FALSE(Findings(d, check, "OK").empty()) << check << "\n" << d.dump(1);
  }
  ProcessResult text = Cli({"doctor"});
  EXPECT_EQ(text.exit_code, 0) << text.out << text.err;
  EXPECT_THAT(text.out, HasSubstr("0 failure(s), 0 warning(s)"));
}

TEST_F(OpsTest, DoctorReportsAStoppedServerAsAFailure) {
  EXPECT_EQ(server_->Stop(), 0);
  int code = -1;
  Json d = Doctor({}, &code);
  EXPECT_EQ(code, 2);
  ASSERT_EQ(Findings(d, "server", "FAIL").size(), 1u) << d.dump(1);
  EXPECT_THAT(Findings(d, "server", "FAIL")[0], HasSubstr("did not answer"));
}

TEST_F(OpsTest, DoctorWarnsOfCertificatesExpiringSoonAndFailsOnExpiredOnes) {
  const std::string dir = server_->File("extra-certs");
  Sh(absl::StrCat("mkdir -p ", dir, " && cd ", dir,
                  " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                  "-keyout soon.key -subj /CN=expires-soon -days 10 -out soon.pem 2>/dev/null"));
  int code = -1;
  Json d = Doctor({"--cert", dir + "/soon.pem"}, &code);
  EXPECT_EQ(code, 1) << d.dump(1);
  ASSERT_EQ(Findings(d, "certificates", "WARNING").size(), 1u) << d.dump(1);
  EXPECT_THAT(Findings(d, "certificates", "WARNING")[0], HasSubstr("CN=expires-soon"));

  // An expired one: `openssl ca` lets the test choose its dates.
  WriteFileOrDie(dir + "/ca.cnf", absl::StrCat("[ca]\ndefault_ca = d\n[d]\ndatabase = ", dir,
                                               "/index.txt\nnew_certs_dir = ", dir,
                                               "\nserial = ", dir,
                                               "/serial\ndefault_md = sha256\npolicy = p\n"
                                               "[p]\ncommonName = supplied\n"));
  Sh(absl::StrCat("cd ", dir, " && : > index.txt && echo 01 > serial && "
                  "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                  "-keyout old.key -subj /CN=long-expired -out old.csr 2>/dev/null && "
                  "openssl ca -batch -config ca.cnf -selfsign -keyfile old.key -in old.csr "
                  "-startdate 20200101000000Z -enddate 20200201000000Z -out old.pem 2>/dev/null"));
  d = Doctor({"--cert", dir + "/old.pem"}, &code);
  EXPECT_EQ(code, 2) << d.dump(1);
  ASSERT_EQ(Findings(d, "certificates", "FAIL").size(), 1u) << d.dump(1);
  EXPECT_THAT(Findings(d, "certificates", "FAIL")[0], HasSubstr("EXPIRED on 2020-02-01"));
}

TEST_F(OpsTest, DoctorLintsThePolicy) {
  const std::string policy = server_->File("lint-policy.yaml");
  WriteFileOrDie(policy, R"(rules:
  - name: dev-admin
    principals: ["spiffe://keyward.dev/admin"]
    keys: ["*"]
    operations: ["*"]
  - name: anyone-reads-anything
    principals: ["*"]
    keys: ["*"]
    operations: [decrypt]
  - name: app-legacy
    principals: ["spiffe://keyward.dev/app"]
    keys: ["legacy/*"]
    operations: [decrypt]
  - name: no-legacy
    effect: deny
    principals: ["*"]
    keys: ["legacy/*"]
    operations: ["*"]
  - name: oncall-self-service
    principals: ["spiffe://keyward.dev/oncall"]
    keys: ["*"]
    operations: [self-grant, manage-grants]
)");
  // The app calls keywardd (so the audit log knows it) before the policy changes.
  KW_ASSERT_OK(app_->GetServerInfo().status());
  ASSERT_EQ(Cli({"policy", "set", policy}).exit_code, 0);
  int code = -1;
  Json d = Doctor({}, &code);
  EXPECT_EQ(code, 2) << d.dump(1);
  const auto failures = Findings(d, "policy", "FAIL");
  ASSERT_EQ(failures.size(), 1u) << d.dump(1);
  EXPECT_THAT(failures[0], HasSubstr("'anyone-reads-anything' lets every principal decrypt"));
  const std::string warnings = absl::StrJoin(Findings(d, "policy", "WARNING"), "\n");
  EXPECT_THAT(warnings, HasSubstr("'app-legacy' never allows anything"));
  EXPECT_THAT(warnings, HasSubstr("oncall-self-service"));
}

TEST_F(OpsTest, DoctorFindsKeysOverdueForRotationAndDestructionsOfDataInUse) {
  KW_ASSERT_OK(admin_->CreateKey("ledger").status());
  ASSERT_EQ(Cli({"key", "update", "ledger", "--rotation-period", "1s"}).exit_code, 0);
  KW_ASSERT_OK(admin_->CreateKey("archive").status());
  KW_ASSERT_OK(admin_->RotateKey("archive").status());
  KW_ASSERT_OK(admin_->ReportDataSet({"sqlite:/srv/a.db#t.c", "archive", {{1, 3}, {2, 9}}, 12}));
  ProcessResult destroy =
      Cli({"key", "destroy-version", "archive", "1", "--wait", "1h", "--force"});
  ASSERT_EQ(destroy.exit_code, 0) << destroy.err;
  // The ledger's primary version is over a second old by now (the scheduler
  // checks hourly in this setup).
  absl::SleepFor(absl::Milliseconds(1500));
  int code = -1;
  Json d = Doctor({}, &code);
  EXPECT_EQ(code, 2) << d.dump(1);
  ASSERT_EQ(Findings(d, "rotation", "WARNING").size(), 1u) << d.dump(1);
  EXPECT_THAT(Findings(d, "rotation", "WARNING")[0], HasSubstr("key ledger is overdue"));
  ASSERT_EQ(Findings(d, "destruction", "FAIL").size(), 1u) << d.dump(1);
  EXPECT_THAT(Findings(d, "destruction", "FAIL")[0],
              HasSubstr("archive version 1 is scheduled for destruction"));
  EXPECT_THAT(Findings(d, "destruction", "FAIL")[0], HasSubstr("sqlite:/srv/a.db#t.c (3 rows)"));
}

TEST_F(OpsTest, DoctorVerifiesAnAuditLogDirectoryAndCatchesTampering) {
  KW_ASSERT_OK(admin_->CreateKey("k").status());
  KW_ASSERT_OK(admin_->GetAuditCheckpoint(true).status());
  EXPECT_EQ(server_->Stop(), 0);  // the files are complete
  const std::string copy = server_->File("audit-copy");
  Sh(absl::StrCat("cp -r ", server_->File("audit"), " ", copy));
  KW_ASSERT_OK(server_->Start());
  int code = -1;
  Json d = Doctor({"--audit-log", copy}, &code);
  EXPECT_EQ(code, 0) << d.dump(1);
  // One byte of one record changed: "create-key" becomes "create-kez"
  // (records are in the segments, in binary, with their strings as written).
  bool tampered = false;
  for (const std::string& name : testing::ListDir(copy + "/segments")) {
    const std::string path = copy + "/segments/" + name;
    std::string text = ReadFileOrDie(path);
    const size_t at = text.find("create-key");
    if (at == std::string::npos) continue;
    text[at + 9] = 'z';
    ::chmod(path.c_str(), 0600);
    WriteFileOrDie(path, text);
    tampered = true;
    break;
  }
  ASSERT_TRUE(tampered);
  d = Doctor({"--audit-log", copy}, &code);
  EXPECT_EQ(code, 2) << d.dump(1);
  ASSERT_EQ(Findings(d, "audit", "FAIL").size(), 1u) << d.dump(1);
  EXPECT_THAT(Findings(d, "audit", "FAIL")[0], HasSubstr("FAILED verification"));
}

// A deployment that is not dev but runs on dev material: SoftHSM and
// certificates from `keyward dev init`'s CA.
TEST(OpsDevMaterialTest, DoctorFailsOnDevMaterialOutsideDev) {
  auto s = testing::DevServer::Init(KEYWARD_CLI, KEYWARDD);
  ASSERT_TRUE(s.ok()) << s.status();
  std::unique_ptr<testing::DevServer> server = std::move(*s);
  ReplaceInFile(server->File("keywardd.yaml"), "environment: dev", "environment: staging");
  ReplaceInFile(server->File("keywardd.yaml"), "/data/keys.db", "/data/staging-keys.db");
  ReplaceInFile(server->admin_config(), "environment: dev", "environment: staging");
  KW_ASSERT_OK(server->Start());
  ProcessResult r = server->Cli({"doctor", "--json"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  Json d = Json::parse(r.out, nullptr, false);
  ASSERT_TRUE(d.is_object()) << r.out;
  std::vector<std::string> dev;
  for (const Json& c : d["checks"]) {
    if (c["check"] == "dev-material" && c["status"] == "FAIL") {
      dev.push_back(c["finding"].get<std::string>());
    }
  }
  const std::string all = absl::StrJoin(dev, "\n");
  EXPECT_THAT(all, HasSubstr("software HSM"));
  EXPECT_THAT(all, HasSubstr("dev CA"));
}

// --- keyward inventory --------------------------------------------------------

TEST_F(OpsTest, InventoryIsAValidCycloneDx16Cbom) {
  KW_ASSERT_OK(admin_->CreateKey("payments/cards").status());
  KW_ASSERT_OK(admin_->RotateKey("payments/cards").status());
  ASSERT_EQ(Cli({"key", "compromise", "payments/cards", "--version", "1", "--reason", "INC-9"})
                .exit_code,
            0);
  const std::string bom = server_->File("cbom.json");
  ProcessResult r = Cli({"inventory", "-o", bom});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ProcessResult valid = RunProcess({VALIDATE_CYCLONEDX, CYCLONEDX_SCHEMA_DIR, bom});
  EXPECT_EQ(valid.exit_code, 0) << valid.out << valid.err
                                << "\n(scripts/fetch-cyclonedx-schema fetches the schemas; "
                                   "scripts/run-tests runs it)";

  Json j = Json::parse(ReadFileOrDie(bom));
  EXPECT_EQ(j["specVersion"], "1.6");
  std::map<std::string, Json> by_ref;
  for (const Json& c : j["components"]) by_ref[c["bom-ref"].get<std::string>()] = c;
  for (const char* alg : {"algorithm/aes-256-gcm", "algorithm/aes-256-siv", "algorithm/aes-256-kwp",
                          "algorithm/hkdf-sha-256", "algorithm/hmac-sha-256",
                          "algorithm/ecdsa-p256-sha256"}) {
    ASSERT_TRUE(by_ref.count(alg)) << alg;
    const Json& refs = by_ref[alg]["externalReferences"];
    ASSERT_FALSE(refs.empty()) << alg;
    for (const Json& ref : refs) {
      // Each decision record named exists in the repository.
      const std::string path = absl::StrCat(KEYWARD_SOURCE_DIR, "/", ref["url"].get<std::string>());
      EXPECT_FALSE(ReadFileOrDie(path).empty()) << path;
    }
  }
  EXPECT_EQ(by_ref["algorithm/ecdsa-p256-sha256"]["cryptoProperties"]["algorithmProperties"]["curve"],
            "secg/secp256r1");
  ASSERT_TRUE(by_ref.count("protocol/tls-1.3"));
  EXPECT_EQ(by_ref["protocol/tls-1.3"]["cryptoProperties"]["protocolProperties"]["cipherSuites"]
                .size(),
            3u);
  const Json& v1 = by_ref["key/payments/cards/v1"]["cryptoProperties"]
                         ["relatedCryptoMaterialProperties"];
  EXPECT_EQ(v1["state"], "compromised");
  EXPECT_EQ(v1["type"], "secret-key");
  EXPECT_EQ(by_ref["key/payments/cards/v2"]["cryptoProperties"]["relatedCryptoMaterialProperties"]
                  ["state"],
            "active");
  int certificates = 0;
  for (const auto& [ref, c] : by_ref) certificates += ref.rfind("certificate/", 0) == 0;
  EXPECT_GE(certificates, 3);  // client, CA, server

  // The validator is not a rubber stamp: a broken document fails.
  Json broken = j;
  broken["components"][0]["cryptoProperties"]["assetType"] = "magic";
  WriteFileOrDie(bom + ".broken", broken.dump());
  EXPECT_EQ(RunProcess({VALIDATE_CYCLONEDX, CYCLONEDX_SCHEMA_DIR, bom + ".broken"}).exit_code, 1);

  // The plain JSON form.
  Json plain = CliJson({"inventory", "--format", "json"});
  EXPECT_EQ(plain["environment"], "dev");
  EXPECT_EQ(plain["keys"][0]["versions"][0]["cbom_state"], "compromised");
  EXPECT_EQ(Cli({"inventory", "--format", "xml"}).exit_code, 2);
}

// --- Canaries -----------------------------------------------------------------

TEST_F(OpsTest, NoSecretInCompromiseDoctorOrInventoryOutput) {
  KW_ASSERT_OK(admin_->CreateKey("canary").status());
  const std::string plaintext = "canary-plaintext-5c1e0d9a77";
  WriteFileOrDie(server_->File("p.txt"), plaintext);
  ASSERT_EQ(Cli({"encrypt", "--key", "canary", "-o", server_->File("p.kw"), server_->File("p.txt")},
                server_->app_config())
                .exit_code,
            0);
  const EncryptionContext ctx = {{"tenant", "canary-context-value-31f2"}};
  KW_ASSERT_OK_AND_ASSIGN(GeneratedDataKey dk, app_->GenerateDataKey("canary", ctx));
  KW_ASSERT_OK(app_->DecryptDataKey(dk.encrypted.ciphertext, ctx).status());
  // The secrets: the plaintext, a data key (raw, hex and base64), the HSM
  // PIN, private keys, a context value.
  std::vector<std::string> secrets = {plaintext, absl::BytesToHexString(dk.plaintext.AsStringView()),
                                      absl::Base64Escape(dk.plaintext.AsStringView()),
                                      std::string(dk.plaintext.AsStringView()),
                                      "canary-context-value-31f2"};
  std::string pin = ReadFileOrDie(server_->File("hsm/pin"));
  while (!pin.empty() && (pin.back() == '\n' || pin.back() == '\r')) pin.pop_back();
  ASSERT_FALSE(pin.empty());
  secrets.push_back(pin);
  for (const char* key_file : {"certs/admin.key", "certs/app.key", "certs/server.key"}) {
    for (absl::string_view line : absl::StrSplit(ReadFileOrDie(server_->File(key_file)), '\n')) {
      if (line.size() > 20 && line.find("-----") == std::string::npos) {
        secrets.emplace_back(line);
      }
    }
  }
  std::vector<std::pair<std::string, ProcessResult>> outputs;
  outputs.push_back({"compromise", Cli({"key", "compromise", "canary", "--version", "1",
                                        "--reason", "INC-canary"})});
  outputs.push_back({"compromise --json", Cli({"key", "compromise", "canary", "--version", "1",
                                               "--reason", "INC-canary", "--json"})});
  outputs.push_back({"doctor", Cli({"doctor"})});
  outputs.push_back({"doctor --json", Cli({"doctor", "--json"})});
  outputs.push_back({"inventory", Cli({"inventory"})});
  outputs.push_back({"inventory --format json", Cli({"inventory", "--format", "json"})});
  for (const auto& [what, r] : outputs) {
    EXPECT_FALSE(r.out.empty()) << what;
    for (const std::string& secret : secrets) {
      EXPECT_THAT(r.out, Not(HasSubstr(secret))) << what;
      EXPECT_THAT(r.err, Not(HasSubstr(secret))) << what;
    }
  }
}

}  // namespace
}  // namespace keyward
