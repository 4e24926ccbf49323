#include "cli/doctor_checks.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/duration.h"

namespace keyward::cli::doctor {
namespace {

std::string Day(absl::Time t) { return absl::FormatTime("%Y-%m-%d", t, absl::UTCTimeZone()); }

std::string Ago(absl::Duration d) {
  if (d >= absl::Hours(48)) return absl::StrCat(absl::ToInt64Hours(d) / 24, " days");
  return FormatHumanDuration(absl::Trunc(d, absl::Seconds(1)));
}

}  // namespace

absl::string_view LevelName(Level level) {
  switch (level) {
    case Level::kOk:
      return "OK";
    case Level::kSkipped:
      return "SKIPPED";
    case Level::kWarning:
      return "WARNING";
    case Level::kFailure:
      return "FAIL";
  }
  return "?";
}

int ExitCode(const std::vector<Finding>& findings) {
  int code = 0;
  for (const Finding& f : findings) {
    if (f.level == Level::kFailure) return 2;
    if (f.level == Level::kWarning) code = 1;
  }
  return code;
}

Finding CertificateExpiry(const CertificateInfo& c, absl::Time now, absl::Duration warn) {
  const std::string what = absl::StrCat("the ", c.source, " certificate ", c.subject, " (", c.path, ")");
  const std::string renew = c.is_ca
                                ? "make a new CA, issue new certificates from it and trust both "
                                  "while they are rolled out (docs/operations.md)"
                                : "issue a new certificate and key; keywardd reloads its own "
                                  "tls.cert and tls.key by itself, clients at their next connect";
  if (now < c.not_before) {
    return {"certificates", Level::kFailure,
            absl::StrCat(what, " is not valid before ", Day(c.not_before),
                         ": is this machine's clock right?"),
            renew};
  }
  if (now >= c.not_after) {
    return {"certificates", Level::kFailure,
            absl::StrCat(what, " EXPIRED on ", Day(c.not_after)), renew};
  }
  if (c.not_after - now < warn) {
    return {"certificates", Level::kWarning,
            absl::StrCat(what, " expires in ", Ago(c.not_after - now), " (", Day(c.not_after),
                         ")"),
            renew};
  }
  return {"certificates", Level::kOk,
          absl::StrCat(what, " valid until ", Day(c.not_after)), ""};
}

Finding ClockSkew(absl::Time server_time, absl::Time sent, absl::Time received) {
  const absl::Time middle = sent + (received - sent) / 2;
  const absl::Duration uncertainty = (received - sent) / 2;
  absl::Duration skew = absl::AbsDuration(server_time - middle) - uncertainty;
  if (skew < absl::ZeroDuration()) skew = absl::ZeroDuration();
  const std::string text =
      absl::StrFormat("%s's clock is %.3f s %s this machine's (± %.3f s)", "keywardd",
                      absl::ToDoubleSeconds(absl::AbsDuration(server_time - middle)),
                      server_time >= middle ? "ahead of" : "behind",
                      absl::ToDoubleSeconds(uncertainty));
  const std::string fix =
      "synchronize both clocks (chrony or systemd-timesyncd); audit record times, grant "
      "expiry and certificate validity all depend on them";
  if (skew > absl::Seconds(60)) return {"clock", Level::kFailure, text, fix};
  if (skew > absl::Seconds(2)) return {"clock", Level::kWarning, text, fix};
  return {"clock", Level::kOk, text, ""};
}

Finding CheckpointAge(absl::Duration age) {
  const std::string text = absl::StrCat("the last audit checkpoint was signed ", Ago(age), " ago");
  const std::string fix =
      "keywardd signs a checkpoint every audit.checkpoint_interval while records arrive: see "
      "its log for checkpoint errors (HSM signing) and /readyz";
  if (age > absl::Hours(24)) return {"audit", Level::kFailure, text, fix};
  if (age > absl::Hours(1)) return {"audit", Level::kWarning, text, fix};
  return {"audit", Level::kOk, text, ""};
}

std::optional<Finding> RotationOverdue(const KeyInfo& key, absl::Time now) {
  if (key.rotation_period <= absl::ZeroDuration()) return std::nullopt;
  const KeyVersionInfo* primary = nullptr;
  for (const KeyVersionInfo& v : key.versions) {
    if (v.version == key.primary_version) primary = &v;
  }
  if (primary == nullptr) return std::nullopt;
  const absl::Duration grace = std::min(key.rotation_period / 10, absl::Hours(1));
  const absl::Duration age = now - primary->created;
  if (age <= key.rotation_period + grace) return std::nullopt;
  return Finding{
      "rotation", Level::kWarning,
      absl::StrCat("key ", key.name, " is overdue for rotation: its primary version ",
                   primary->version, " is ", Ago(age), " old, its rotation period ",
                   FormatHumanDuration(key.rotation_period)),
      absl::StrCat("is keywardd's rotation scheduler running (keyward_scheduler_lease_held, "
                   "its log)? Rotate now: keyward key rotate ",
                   key.name)};
}

std::vector<Finding> VersionsStillUsed(const KeyInfo& key,
                                       const std::vector<DataSetReportInfo>& reports,
                                       absl::Time now) {
  std::vector<Finding> out;
  for (const KeyVersionInfo& v : key.versions) {
    const bool pending = v.state == KeyVersionState::kPendingDestruction;
    if (!pending && !v.compromised) continue;
    std::vector<std::string> uses;
    for (const DataSetReportInfo& r : reports) {
      auto it = r.rows_per_version.find(v.version);
      if (it != r.rows_per_version.end() && it->second > 0) {
        uses.push_back(absl::StrCat(r.data_set, " (", it->second, " rows)"));
      }
    }
    if (pending && v.last_decrypt && now - *v.last_decrypt < absl::Hours(24 * 7)) {
      uses.push_back(absl::StrCat("a decrypt ", Ago(now - *v.last_decrypt), " ago"));
    }
    if (uses.empty()) continue;
    const std::string where = absl::StrJoin(uses, ", ");
    if (pending) {
      out.push_back(
          {"destruction", Level::kFailure,
           absl::StrCat("key ", key.name, " version ", v.version,
                        " is scheduled for destruction",
                        v.destroy_after ? absl::StrCat(" on ", Day(*v.destroy_after)) : "",
                        " but data still uses it: ", where),
           absl::StrCat("cancel it (keyward key cancel-destroy ", key.name, " ", v.version,
                        ") and re-encrypt that data first (keyward reencrypt)")});
    } else {
      out.push_back({"compromise", Level::kWarning,
                     absl::StrCat("key ", key.name, " version ", v.version,
                                  " is compromised and data is still under it: ", where),
                     "re-encrypt it with new data keys (keyward reencrypt ... --mode full); "
                     "docs/operations.md, \"Suspected key compromise\""});
    }
  }
  return out;
}

}  // namespace keyward::cli::doctor
