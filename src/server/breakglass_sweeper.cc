#include "server/breakglass_sweeper.h"

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "metrics/metrics.h"

namespace keyward::server {

absl::Status BreakGlassSweeper::SweepOnce() {
  return access_->SweepBreakGlass([this](const policy::BreakGlassGrant& g) {
    const auto state = g.StateAt(absl::Now());
    audit::AuditRecord r;
    r.time = absl::Now();
    r.request_id = "breakglass-sweep";
    r.principal = "keywardd:breakglass";
    r.operation = "breakglass-end";
    r.key = g.key;
    r.decision = "none";
    r.rule = absl::StrCat("breakglass:", g.id);
    r.result = "OK";
    r.detail = absl::StrCat(
        "break-glass ", g.id, " ", policy::BreakGlassStateName(state), " (",
        g.max_decrypts == 0 ? absl::StrCat(g.decrypts, " decrypts, no count limit")
                            : absl::StrCat(g.decrypts, " of ", g.max_decrypts, " decrypts"),
        ")");
    return audit_->Append(std::move(r));
  });
}

namespace {
constexpr char kActiveGauge[] = "keyward_breakglass_grants_active";
}  // namespace

void BreakGlassSweeper::Start() {
  metrics::Global().SetCollector(
      kActiveGauge, "Break-glass grants approved and in force now (docs/incident-response.md).",
      {}, [access = access_] {
        return std::vector<metrics::Sample>{
            {{}, static_cast<double>(access->ActiveBreakGlassGrants())}};
      });
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      lock.unlock();
      if (absl::Status s = SweepOnce(); !s.ok()) {
        Log(LogLevel::kError, "breakglass",
            "could not record the end of a break-glass grant; trying again",
            {{"error", std::string(s.message())}});
      }
      lock.lock();
      cv_.wait_for(lock, absl::ToChronoMilliseconds(interval_), [this] { return stop_; });
    }
  });
}

void BreakGlassSweeper::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
    metrics::Global().RemoveCollector(kActiveGauge);
  }
}

}  // namespace keyward::server
