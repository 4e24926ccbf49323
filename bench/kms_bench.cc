// The in-process KMS core (no network), each figure beside its reference in
// the same run:
//   - GenerateDataKey / DecryptDataKey, KEK wrapped by the root key (in
//     memory) vs HSM-resident (every wrap is a SoftHSM call);
//   - key creation and rotation per second on SQLite with SoftHSM;
//   - GenerateDataKey with 100 keys vs 100,000 keys in the store.
// Needs SoftHSMv2.  Run: build/release/bench/kms_bench
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "hsm/pkcs11_root_of_trust.h"
#include "testing/software_root_of_trust.h"
#include "keystore/memory_key_store.h"
#include "keystore/sqlite_key_store.h"
#include "kms/key_service.h"
#include "testing/softhsm.h"
#include "testing/subprocess.h"

namespace keyward::kms {
namespace {

struct Env {
  std::unique_ptr<::keyward::testing::SoftHsmToken> token;
  std::unique_ptr<::keyward::testing::TempDir> dir;
  std::unique_ptr<KeyService> svc;
};

Env& Shared() {
  static Env* env = [] {
    auto* e = new Env();
    auto token = ::keyward::testing::SoftHsmToken::Create("keyward-bench");
    if (!token.ok()) {
      std::fprintf(stderr, "%s\n", token.status().ToString().c_str());
      std::exit(1);
    }
    e->token.reset(*token);
    e->dir = std::make_unique<::keyward::testing::TempDir>();
    hsm::Pkcs11Options p;
    p.module_path = ::keyward::testing::kSoftHsmModule;
    p.token_label = e->token->label();
    p.pin_file = e->token->pin_file();
    p.root_key_label = "keyward-root/dev";
    KeyServiceOptions o;
    o.environment = "dev";
    auto svc = KeyService::Create(
        o, std::move(*keystore::SqliteKeyStore::Open(e->dir->File("keys.db"), "dev")),
        std::move(*hsm::OpenPkcs11(p)));
    if (!svc.ok()) std::exit(1);
    e->svc = std::move(*svc);
    (void)e->svc->CreateKey({.name = "wrapped"});
    (void)e->svc->CreateKey({.name = "resident",
                             .protection = keystore::KekProtection::kHsmResident});
    return e;
  }();
  return *env;
}

void BM_GenerateDataKey(benchmark::State& state, const char* key) {
  KeyService& svc = *Shared().svc;
  const EncryptionContext ctx{{"tenant", "acme"}};
  for (auto _ : state) {
    auto dk = svc.GenerateDataKey(key, ctx);
    if (!dk.ok()) {
      state.SkipWithError(std::string(dk.status().message()).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_GenerateDataKey, wrapped_by_root, "wrapped");
BENCHMARK_CAPTURE(BM_GenerateDataKey, hsm_resident, "resident");

void BM_DecryptDataKey(benchmark::State& state, const char* key) {
  KeyService& svc = *Shared().svc;
  const EncryptionContext ctx{{"tenant", "acme"}};
  auto dk = svc.GenerateDataKey(key, ctx);
  for (auto _ : state) {
    auto back = svc.DecryptDataKey(dk->wrapped, ctx);
    if (!back.ok()) {
      state.SkipWithError(std::string(back.status().message()).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_DecryptDataKey, wrapped_by_root, "wrapped");
BENCHMARK_CAPTURE(BM_DecryptDataKey, hsm_resident, "resident");

void BM_CreateKey(benchmark::State& state) {
  KeyService& svc = *Shared().svc;
  static int n = 0;
  for (auto _ : state) {
    auto k = svc.CreateKey({.name = absl::StrCat("create/", n++)});
    if (!k.ok()) {
      state.SkipWithError(std::string(k.status().message()).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CreateKey)->Iterations(200);

void BM_RotateKey(benchmark::State& state) {
  KeyService& svc = *Shared().svc;
  (void)svc.CreateKey({.name = "rotate"});
  for (auto _ : state) {
    auto k = svc.RotateKey("rotate");
    if (!k.ok()) {
      state.SkipWithError(std::string(k.status().message()).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RotateKey)->Iterations(200);

// GetKey with N keys in the store (an indexed read of the key and its
// versions).  The keys are bulk-loaded copies of one key, so setting up
// 100,000 takes seconds, not one HSM call each.
void BM_LookupWithKeysInStore(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  ::keyward::testing::TempDir dir;
  auto store = std::move(*keystore::SqliteKeyStore::Open(dir.File("keys.db"), "dev"));
  hsm::Pkcs11Options p;
  p.module_path = ::keyward::testing::kSoftHsmModule;
  p.token_label = Shared().token->label();
  p.pin_file = Shared().token->pin_file();
  p.root_key_label = "keyward-root/dev";
  auto root = std::move(*hsm::OpenPkcs11(p));
  // One real key (sealed by the HSM) copied under n names.
  KeyServiceOptions o;
  o.environment = "dev";
  std::shared_ptr<keystore::KeyStore> seed_store =
      std::make_shared<keystore::MemoryKeyStore>("dev");
  auto seed = KeyService::Create(o, seed_store, std::move(root));
  (void)(*seed)->CreateKey({.name = "seed"});
  keystore::Key key = *seed_store->GetKey("seed");
  std::vector<keystore::Key> keys;
  for (int i = 0; i < n; ++i) {
    key.name = absl::StrCat("tenant/", i, "/key");
    keys.push_back(key);
  }
  if (auto s = store->CreateKeys(keys); !s.ok()) {
    state.SkipWithError(std::string(s.message()).c_str());
    return;
  }
  auto svc = std::move(*KeyService::Create(
      o, std::move(store), std::move(*hsm::OpenPkcs11(p))));
  int i = 0;
  for (auto _ : state) {
    auto k = svc->GetKey(absl::StrCat("tenant/", (i++ * 7919) % n, "/key"));
    if (!k.ok()) {
      state.SkipWithError(std::string(k.status().message()).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["keys_in_store"] = n;
}
BENCHMARK(BM_LookupWithKeysInStore)->Arg(100)->Arg(100000)->Unit(benchmark::kMicrosecond);

// The data path with N keys in use: GenerateDataKey on keys picked across N,
// all already loaded (a service that has served every tenant once).  A
// software root of trust seals the N KEKs quickly; the path measured (key
// cache, primary version, KEK in memory, wrap) is the same as with an HSM.
void BM_DataKeyWithKeysInUse(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  ::keyward::testing::TempDir dir;
  auto store = std::move(*keystore::SqliteKeyStore::Open(dir.File("keys.db"), "dev"));
  auto root = std::make_unique<hsm::testing::SoftwareRootOfTrust>();
  SecretData kek = SecretData::CopyFrom(std::string(32, 'k'));
  std::vector<keystore::Key> keys;
  for (int i = 0; i < n; ++i) {
    keystore::Key key;
    key.name = absl::StrCat("tenant/", i, "/key");
    key.environment = "dev";
    key.primary_version = 1;
    key.created = key.updated = absl::Now();
    keystore::KeyVersion v;
    v.version = 1;
    v.created = key.created;
    v.sealed_kek = *root->Seal(kek, KekAad("dev", key.name, 1));
    key.versions.push_back(std::move(v));
    keys.push_back(std::move(key));
  }
  if (auto s = store->CreateKeys(keys); !s.ok()) {
    state.SkipWithError(std::string(s.message()).c_str());
    return;
  }
  KeyServiceOptions o;
  o.environment = "dev";
  auto svc = std::move(*KeyService::Create(o, std::move(store), std::move(root)));
  for (int i = 0; i < n; ++i) {
    auto warm = svc->GenerateDataKey(keys[i].name, {});
    if (!warm.ok()) {
      state.SkipWithError(std::string(warm.status().message()).c_str());
      return;
    }
  }
  int i = 0;
  for (auto _ : state) {
    auto dk = svc->GenerateDataKey(keys[(i++ * 7919) % n].name, {});
    if (!dk.ok()) {
      state.SkipWithError(std::string(dk.status().message()).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["keys_in_use"] = n;
}
BENCHMARK(BM_DataKeyWithKeysInUse)->Arg(100)->Arg(100000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace keyward::kms

BENCHMARK_MAIN();
