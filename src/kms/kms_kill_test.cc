// kill -9 at random points of rotations, version changes and data key
// batches, many times over, with SQLite on disk and a SoftHSM token: the
// store must open cleanly afterwards and every data key the child logged
// must still decrypt.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <string>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hsm/pkcs11_root_of_trust.h"
#include "keystore/sqlite_key_store.h"
#include "kms/data_key_blob.h"
#include "kms/key_service.h"
#include "testing/softhsm.h"
#include "testing/status_matchers.h"
#include "testing/subprocess.h"

namespace keyward::kms {
namespace {

using keystore::VersionState;

TEST(KmsKillTest, KillNineAnywhereLosesNothing) {
  auto token = ::keyward::testing::SoftHsmToken::Create("keyward-kill");
  ASSERT_TRUE(token.ok()) << token.status();
  std::unique_ptr<::keyward::testing::SoftHsmToken> cleanup(*token);
  ::keyward::testing::TempDir dir;
  constexpr int kRounds = 12;
  for (int round = 0; round < kRounds; ++round) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::execl(KEYWARD_CRASH_CHILD, KEYWARD_CRASH_CHILD, dir.path().c_str(),
              cleanup->label().c_str(), cleanup->pin_file().c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    auto r = crypto::RandomBytes(1);
    ASSERT_TRUE(r.ok());
    // Let it work for 100-355 ms, then kill it wherever it is.
    std::this_thread::sleep_for(
        std::chrono::milliseconds(100 + static_cast<uint8_t>((*r)[0])));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status))
        << "the child exited on its own (status " << WEXITSTATUS(status)
        << ") instead of being killed";
  }

  hsm::Pkcs11Options p;
  p.module_path = ::keyward::testing::kSoftHsmModule;
  p.token_label = cleanup->label();
  p.pin_file = cleanup->pin_file();
  p.root_key_label = "keyward-root/dev";
  p.create_root_key = false;
  KW_ASSERT_OK_AND_ASSIGN(auto store,
                          keystore::SqliteKeyStore::Open(dir.File("keys.db"), "dev"));
  KW_ASSERT_OK_AND_ASSIGN(auto root, hsm::OpenPkcs11(p));
  KeyServiceOptions o;
  o.environment = "dev";
  o.usage_flush_interval = absl::ZeroDuration();
  KW_ASSERT_OK_AND_ASSIGN(auto svc, KeyService::Create(o, std::move(store), std::move(root)));
  for (const char* name : {"k", "r"}) {
    KW_ASSERT_OK_AND_ASSIGN(keystore::Key key, svc->GetKey(name));
    KW_ASSERT_OK(keystore::ValidateKey(key));
    for (const auto& v : key.versions) {
      ASSERT_NE(v.state, VersionState::kDestroyed);
      if (v.state == VersionState::kPendingDestruction) {
        KW_ASSERT_OK(svc->CancelVersionDestruction(name, v.version).status());
      }
    }
    KW_ASSERT_OK_AND_ASSIGN(key, svc->GetKey(name));
    for (const auto& v : key.versions) {
      if (v.state == VersionState::kDisabled) {
        KW_ASSERT_OK(svc->EnableVersion(name, v.version).status());
      }
    }
  }
  std::ifstream log(dir.File("issued.log"));
  std::string line;
  int checked = 0;
  std::map<std::pair<std::string, uint32_t>, uint64_t> logged;
  while (std::getline(log, line)) {
    std::vector<std::string> parts = absl::StrSplit(line, ' ');
    if (parts.size() != 2 || parts[1].size() != 64) continue;  // torn last line
    const std::string wrapped = absl::HexStringToBytes(parts[0]);
    KW_ASSERT_OK_AND_ASSIGN(DataKeyBlob blob, DecodeBlob(wrapped));
    ++logged[{blob.key_name, blob.key_version}];
    auto dek = svc->DecryptDataKey(wrapped, {{"tenant", "t"}});
    ASSERT_TRUE(dek.ok()) << "logged data key " << checked << ": " << dek.status();
    auto digest = crypto::Sha256(dek->AsStringView());
    EXPECT_EQ(absl::BytesToHexString(absl::string_view(
                  reinterpret_cast<const char*>(digest.data()), 32)),
              parts[1]);
    ++checked;
  }
  EXPECT_GT(checked, 100) << "the children issued too few keys to mean much";
  // Counts are reserved durably before keys are issued: after any number of
  // kill -9, every version counts at least the keys it was seen to issue
  // (the child logs a key after issuing it, so the log is a lower bound).
  uint64_t logged_total = 0, counted_total = 0;
  for (const auto& [id, n] : logged) {
    KW_ASSERT_OK_AND_ASSIGN(keystore::Key key, svc->GetKey(id.first));
    const keystore::KeyVersion* v = key.FindVersion(id.second);
    ASSERT_NE(v, nullptr);
    EXPECT_GE(v->usage.data_keys_issued, n) << id.first << " v" << id.second;
    logged_total += n;
    counted_total += v->usage.data_keys_issued;
  }
  std::printf("kill -9 test: %d rounds, %d issued data keys all decrypt; versions count "
              "%llu encryptions for %llu logged keys (never fewer)\n",
              kRounds, checked, static_cast<unsigned long long>(counted_total),
              static_cast<unsigned long long>(logged_total));
}

}  // namespace
}  // namespace keyward::kms
