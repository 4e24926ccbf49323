// Test helper for kms_kill_test: runs KMS operations against a SQLite store
// and a SoftHSM token as fast as it can until it is killed with SIGKILL.
// Every data key it receives is logged (wrapped key, SHA-256 of the data
// key), flushed to disk, before it counts as issued.
//   kms_crash_child DIR TOKEN_LABEL PIN_FILE
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "hsm/pkcs11_root_of_trust.h"
#include "keystore/sqlite_key_store.h"
#include "kms/key_service.h"

namespace keyward::kms {
namespace {

int Die(const absl::Status& s) {
  std::fprintf(stderr, "crash child: %s\n", s.ToString().c_str());
  return 1;
}

uint8_t Roll() {
  auto b = crypto::RandomBytes(1);
  return b.ok() ? static_cast<uint8_t>((*b)[0]) : 0;
}

int Main(int argc, char** argv) {
  if (argc != 4) return 2;
  const std::string dir = argv[1];
  hsm::Pkcs11Options p;
  p.module_path = "/usr/lib/softhsm/libsofthsm2.so";
  p.token_label = argv[2];
  p.pin_file = argv[3];
  p.root_key_label = "keyward-root/dev";
  auto store = keystore::SqliteKeyStore::Open(dir + "/keys.db", "dev");
  if (!store.ok()) return Die(store.status());
  auto root = hsm::OpenPkcs11(p);
  if (!root.ok()) return Die(root.status());
  KeyServiceOptions o;
  o.environment = "dev";
  o.min_destruction_wait = absl::Milliseconds(1);
  o.usage_flush_interval = absl::Milliseconds(20);
  auto svc = KeyService::Create(o, std::move(*store), std::move(*root));
  if (!svc.ok()) return Die(svc.status());
  KeyService& s = **svc;
  if (!s.GetKey("k").ok()) {
    if (auto k = s.CreateKey({.name = "k"}); !k.ok()) return Die(k.status());
  }
  if (!s.GetKey("r").ok()) {
    auto k = s.CreateKey({.name = "r", .protection = keystore::KekProtection::kHsmResident});
    if (!k.ok()) return Die(k.status());
  }
  int log = ::open((dir + "/issued.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (log < 0) return 1;
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;) {
    const std::string name = Roll() % 2 ? "k" : "r";
    switch (Roll() % 6) {
      case 0:
        (void)s.RotateKey(name);
        break;
      case 1: {
        auto key = s.GetKey(name);
        if (key.ok() && key->versions.size() > 1) {
          const uint32_t v = key->versions[Roll() % (key->versions.size() - 1)].version;
          (void)s.DisableVersion(name, v);
          (void)s.EnableVersion(name, v);
        }
        break;
      }
      case 2: {
        auto key = s.GetKey(name);
        if (key.ok() && key->versions.size() > 1) {
          const uint32_t v = key->versions[0].version;
          (void)s.ScheduleVersionDestruction(name, v, absl::Hours(1), false);
          (void)s.CancelVersionDestruction(name, v);
        }
        break;
      }
      default: {
        auto batch = s.GenerateDataKeys(name, {{"tenant", "t"}}, 10);
        if (!batch.ok()) break;
        std::string lines;
        for (const DataKey& dk : *batch) {
          auto digest = crypto::Sha256(dk.plaintext.AsStringView());
          absl::StrAppend(&lines, absl::BytesToHexString(dk.wrapped), " ",
                          absl::BytesToHexString(absl::string_view(
                              reinterpret_cast<const char*>(digest.data()), 32)),
                          "\n");
        }
        if (::write(log, lines.data(), lines.size()) !=
                static_cast<ssize_t>(lines.size()) ||
            ::fsync(log) != 0) {
          return 1;
        }
      }
    }
  }
}

}  // namespace
}  // namespace keyward::kms

int main(int argc, char** argv) { return keyward::kms::Main(argc, argv); }
