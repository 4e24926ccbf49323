// A KeyStore wrapper that fails a chosen write, the way a crash would: either
// before the write commits (nothing stored) or after it commits (stored, but
// the caller never hears so).  Tests use it to prove that every operation of
// the KMS core leaves the store consistent wherever it is interrupted.
#ifndef KEYWARD_KEYSTORE_FAULT_INJECTING_KEY_STORE_H_
#define KEYWARD_KEYSTORE_FAULT_INJECTING_KEY_STORE_H_

#include <atomic>
#include <memory>

#include "keystore/key_store.h"

namespace keyward::keystore {

class FaultInjectingKeyStore final : public KeyStore {
 public:
  enum class Mode { kBeforeCommit, kAfterCommit };

  explicit FaultInjectingKeyStore(std::shared_ptr<KeyStore> inner)
      : inner_(std::move(inner)) {}

  // Fails the `n`-th write from now (1 = the next one), then every write
  // after it too (the process is "dead") until Disarm().
  void FailWrite(int n, Mode mode) {
    fail_at_ = writes_ + n;
    mode_ = mode;
  }
  void Disarm() { fail_at_ = 0; }
  int writes() const { return writes_; }
  bool fired() const { return fail_at_ != 0 && writes_ >= fail_at_; }

  absl::StatusOr<StoreInfo> GetInfo() override { return inner_->GetInfo(); }
  absl::Status CreateKey(const Key& key) override {
    return Write([&] { return inner_->CreateKey(key); });
  }
  absl::StatusOr<Key> GetKey(absl::string_view name) override {
    return inner_->GetKey(name);
  }
  absl::StatusOr<KeyPage> ListKeys(absl::string_view prefix, int page_size,
                                   absl::string_view token) override {
    return inner_->ListKeys(prefix, page_size, token);
  }
  absl::Status UpdateKey(const Key& key) override {
    return Write([&] { return inner_->UpdateKey(key); });
  }
  absl::Status AddUsage(const std::vector<UsageDelta>& deltas) override {
    return Write([&] { return inner_->AddUsage(deltas); });
  }
  absl::StatusOr<std::vector<VersionRef>> ListDueDestructions(
      absl::Time now) override {
    return inner_->ListDueDestructions(now);
  }
  absl::StatusOr<int64_t> CountKeys() override { return inner_->CountKeys(); }
  absl::Status CreateGrant(const policy::Grant& g) override {
    return Write([&] { return inner_->CreateGrant(g); });
  }
  absl::StatusOr<std::vector<policy::Grant>> ListGrants(absl::Time now,
                                                        bool all) override {
    return inner_->ListGrants(now, all);
  }
  absl::Status RevokeGrant(absl::string_view id, absl::Time when) override {
    return Write([&] { return inner_->RevokeGrant(id, when); });
  }
  absl::Status CreateBreakGlass(const policy::BreakGlassGrant& g) override {
    return Write([&] { return inner_->CreateBreakGlass(g); });
  }
  absl::StatusOr<std::vector<policy::BreakGlassGrant>> ListBreakGlass(bool all) override {
    return inner_->ListBreakGlass(all);
  }
  absl::StatusOr<policy::BreakGlassGrant> UpdateBreakGlass(
      absl::string_view id,
      const std::function<absl::Status(policy::BreakGlassGrant&)>& update) override {
    absl::StatusOr<policy::BreakGlassGrant> out;
    absl::Status s = Write([&] {
      out = inner_->UpdateBreakGlass(id, update);
      return out.status();
    });
    if (!s.ok()) return s;
    return out;
  }
  absl::StatusOr<std::optional<std::string>> GetSealedSecret(
      absl::string_view name) override {
    return inner_->GetSealedSecret(name);
  }
  absl::Status PutDataSetReport(const DataSetReport& r) override {
    return Write([&] { return inner_->PutDataSetReport(r); });
  }
  absl::StatusOr<std::vector<DataSetReport>> ListDataSetReports(
      absl::string_view key_name) override {
    return inner_->ListDataSetReports(key_name);
  }
  absl::StatusOr<std::optional<TenantKeyRecord>> GetTenantKey(
      absl::string_view key_name, absl::string_view tenant) override {
    return inner_->GetTenantKey(key_name, tenant);
  }
  absl::Status PutTenantKey(const TenantKeyRecord& record) override {
    return Write([&] { return inner_->PutTenantKey(record); });
  }
  absl::StatusOr<std::optional<TenantKeyRecord>> EraseTenantKey(
      absl::string_view key_name, absl::string_view tenant, absl::Time when,
      absl::string_view by) override {
    std::optional<TenantKeyRecord> before;
    absl::Status s = Write([&]() -> absl::Status {
      auto r = inner_->EraseTenantKey(key_name, tenant, when, by);
      if (r.ok()) before = std::move(*r);
      return r.status();
    });
    if (!s.ok()) return s;
    return before;
  }
  absl::Status PutSealedSecret(absl::string_view name, absl::string_view sealed) override {
    return Write([&] { return inner_->PutSealedSecret(name, sealed); });
  }
  absl::Status SetSealedSecret(absl::string_view name, absl::string_view sealed) override {
    return Write([&] { return inner_->SetSealedSecret(name, sealed); });
  }
  absl::StatusOr<uint64_t> AddDataKeysIssued(absl::string_view key_name, uint32_t version,
                                             int64_t delta, uint64_t limit) override {
    uint64_t count = 0;
    absl::Status s = Write([&]() -> absl::Status {
      auto r = inner_->AddDataKeysIssued(key_name, version, delta, limit);
      if (r.ok()) count = *r;
      return r.status();
    });
    if (!s.ok()) return s;
    return count;
  }
  absl::Status Scrub() override { return inner_->Scrub(); }

 private:
  template <typename Op>
  absl::Status Write(Op op) {
    const int n = ++writes_;
    if (fail_at_ == 0 || n < fail_at_) return op();
    if (mode_ == Mode::kAfterCommit && n == fail_at_) (void)op();
    return absl::UnavailableError("injected fault: the store is unreachable");
  }

  std::shared_ptr<KeyStore> inner_;
  std::atomic<int> writes_{0};
  std::atomic<int> fail_at_{0};
  Mode mode_ = Mode::kBeforeCommit;
};

}  // namespace keyward::keystore

#endif  // KEYWARD_KEYSTORE_FAULT_INJECTING_KEY_STORE_H_
