#include "rotation/scheduler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/duration.h"

namespace keyward::rotation {

std::string RotationDue(const keystore::Key& key, absl::Time now, uint64_t usage_limit,
                        double usage_fraction) {
  const keystore::KeyVersion* primary = key.FindVersion(key.primary_version);
  if (primary == nullptr || primary->state != keystore::VersionState::kEnabled) return "";
  if (key.rotation_period > absl::ZeroDuration() &&
      now - primary->created >= key.rotation_period) {
    return absl::StrCat("rotation period ", FormatHumanDuration(key.rotation_period),
                        " elapsed (version ", primary->version, " created ",
                        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", primary->created,
                                         absl::UTCTimeZone()),
                        ")");
  }
  const auto threshold = static_cast<uint64_t>(static_cast<double>(usage_limit) * usage_fraction);
  if (usage_limit > 0 && primary->usage.data_keys_issued >= threshold) {
    return absl::StrCat("version ", primary->version, " issued ",
                        primary->usage.data_keys_issued, " of its ", usage_limit,
                        " data keys");
  }
  return "";
}

bool Scheduler::RenewLease() {
  if (options_.lease_store == nullptr) return true;
  const absl::Time asked = absl::Now();
  absl::StatusOr<keystore::Lease> lease = options_.lease_store->AcquireLease(
      kSchedulerLease, options_.holder, options_.lease_ttl);
  std::lock_guard<std::mutex> lock(lease_mu_);
  if (!lease.ok()) {
    // Held by another (kFailedPrecondition) or the store is unreachable: in
    // both cases this replica must not act.  A lease we held stays ours in
    // the store until it expires, but we stop before then.
    token_ = 0;
    return false;
  }
  token_ = lease->fencing_token;
  // Counted from before the request: the store's expiry is at least this
  // late.  A third of the lease is kept as margin for clock drift and for
  // an action already under way.
  act_until_ = asked + options_.lease_ttl * 2 / 3;
  return true;
}

uint64_t Scheduler::fencing_token() const {
  if (options_.lease_store == nullptr) return 0;
  std::lock_guard<std::mutex> lock(lease_mu_);
  return token_;
}

bool Scheduler::MayAct() const {
  if (options_.lease_store == nullptr) return true;
  std::lock_guard<std::mutex> lock(lease_mu_);
  return token_ != 0 && absl::Now() < act_until_;
}

std::vector<Action> Scheduler::RunOnce() {
  std::vector<Action> actions;
  if (!MayAct()) return actions;
  const uint64_t token = fencing_token();
  auto report = [&](Action a) {
    a.fencing_token = token;
    if (on_action_) on_action_(a);
    actions.push_back(std::move(a));
  };
  std::string page_token;
  do {
    auto page = service_->ListKeys("", 1000, page_token);
    if (!page.ok()) {
      Action a;
      a.reason = "listing keys";
      a.status = page.status();
      report(std::move(a));
      break;
    }
    for (const keystore::Key& key : page->keys) {
      const absl::Time now = clock_->Now();
      std::string why = RotationDue(key, now, usage_limit_, options_.usage_fraction);
      if (why.empty()) continue;
      if (!MayAct()) return actions;  // the lease ran out mid-pass
      Action a;
      a.key = key.name;
      a.from_version = key.primary_version;
      a.reason = why;
      auto rotated = service_->RotateKeyIf(key.name, [&](const keystore::Key& current) {
        return !RotationDue(current, now, usage_limit_, options_.usage_fraction).empty();
      });
      if (!rotated.ok()) {
        a.status = rotated.status();
      } else if (!rotated->has_value()) {
        continue;  // someone else rotated it meanwhile
      } else {
        a.to_version = (*rotated)->primary_version;
      }
      report(std::move(a));
    }
    page_token = page->next_page_token;
  } while (!page_token.empty());

  if (!MayAct()) return actions;
  // One action (and one audit record) per destroyed version, naming it.
  kms::KeyService::DestructionRun run = service_->ProcessDueDestructions();
  for (const keystore::VersionRef& v : run.destroyed) {
    Action a;
    a.kind = Action::Kind::kDestroy;
    a.key = v.key_name;
    a.from_version = v.version;
    a.to_version = v.version;
    a.reason = absl::StrCat("version ", v.version, " destroyed: its waiting period ended");
    report(std::move(a));
  }
  if (!run.status.ok()) {
    // Retried on the next pass.
    Action a;
    a.kind = Action::Kind::kDestroy;
    a.reason = "destroying versions past their waiting period (HSM objects, store scrub)";
    a.status = run.status;
    report(std::move(a));
  }
  return actions;
}

void Scheduler::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] {
    // With a lease the loop wakes every lease_ttl / 3 to renew it; a pass
    // runs every interval while held, and at once when newly taken.
    const absl::Duration tick = options_.lease_store == nullptr
                                    ? options_.interval
                                    : std::min(options_.interval, options_.lease_ttl / 3);
    absl::Time next_pass = absl::InfinitePast();
    bool held = false;
    std::unique_lock<std::mutex> loop_lock(mu_);
    while (!stop_) {
      loop_lock.unlock();
      const bool was_held = held;
      held = RenewLease();
      if (held && (!was_held || absl::Now() >= next_pass)) {
        next_pass = absl::Now() + options_.interval;
        RunOnce();
      }
      loop_lock.lock();
      cv_.wait_for(loop_lock, absl::ToChronoMilliseconds(tick), [&] { return stop_; });
    }
  });
}

void Scheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (options_.lease_store != nullptr && fencing_token() != 0) {
    // Another replica takes over at once rather than after the lease runs out.
    (void)options_.lease_store->ReleaseLease(kSchedulerLease, options_.holder);
    std::lock_guard<std::mutex> lock(lease_mu_);
    token_ = 0;
  }
}

}  // namespace keyward::rotation
