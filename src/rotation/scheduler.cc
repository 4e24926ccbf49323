#include "rotation/scheduler.h"

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

std::vector<Action> Scheduler::RunOnce() {
  std::vector<Action> actions;
  auto report = [&](Action a) {
    if (on_action_) on_action_(a);
    actions.push_back(std::move(a));
  };
  std::string token;
  do {
    auto page = service_->ListKeys("", 1000, token);
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
    token = page->next_page_token;
  } while (!token.empty());

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
    std::unique_lock<std::mutex> loop_lock(mu_);
    while (!stop_) {
      loop_lock.unlock();
      RunOnce();
      loop_lock.lock();
      cv_.wait_for(loop_lock, absl::ToChronoMilliseconds(options_.interval),
                   [&] { return stop_; });
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
}

}  // namespace keyward::rotation
