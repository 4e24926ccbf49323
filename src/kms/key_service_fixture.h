// The fixture of KeyService's tests: a service over an in-memory store and
// a software root of trust, with a fake clock, for each KEK protection.
#ifndef KEYWARD_KMS_KEY_SERVICE_FIXTURE_H_
#define KEYWARD_KMS_KEY_SERVICE_FIXTURE_H_

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keystore/memory_key_store.h"
#include "keyward/errors.h"
#include "kms/clock.h"
#include "kms/key_service.h"
#include "testing/software_root_of_trust.h"
#include "testing/status_matchers.h"

namespace keyward::kms {

MATCHER_P(HasErrorCode, code, "") {
  return GetErrorCode(::keyward::testing::GetStatus(arg)) == code;
}

// Parameterized by the protection of new versions' KEKs; instantiated
// once, in key_service_test.cc.
class KeyServiceTest : public ::testing::TestWithParam<keystore::KekProtection> {
 protected:
  void SetUp() override {
    shared_root_ = std::make_shared<hsm::testing::SoftwareRootOfTrust>();
    root_ = shared_root_.get();
    options_.environment = "dev";
    options_.default_protection = GetParam();
    options_.min_destruction_wait = absl::Minutes(1);
    options_.usage_flush_interval = absl::ZeroDuration();
    options_.clock = &clock_;
    store_ = std::make_shared<keystore::MemoryKeyStore>("dev");
    auto svc = KeyService::Create(options_, store_, shared_root_);
    ASSERT_TRUE(svc.ok()) << svc.status();
    svc_ = std::move(*svc);
  }
  // A new KeyService over the same store and HSM: nothing cached.
  void Restart() {
    svc_.reset();
    auto svc = KeyService::Create(options_, store_, shared_root_);
    ASSERT_TRUE(svc.ok()) << svc.status();
    svc_ = std::move(*svc);
  }
  keystore::Key MustCreate(const std::string& name) {
    auto k = svc_->CreateKey({.name = name});
    EXPECT_TRUE(k.ok()) << k.status();
    return *k;
  }
  FakeClock clock_;
  KeyServiceOptions options_;
  std::shared_ptr<hsm::testing::SoftwareRootOfTrust> shared_root_;
  hsm::testing::SoftwareRootOfTrust* root_ = nullptr;
  std::shared_ptr<keystore::KeyStore> store_;  // what the core stored, read directly
  std::unique_ptr<KeyService> svc_;
};

}  // namespace keyward::kms

#endif  // KEYWARD_KMS_KEY_SERVICE_FIXTURE_H_
