#include "server/access_control.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "server/call.h"

namespace keyward::server {
namespace {

constexpr absl::Duration kGrantRefresh = absl::Seconds(10);

absl::Status WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError(std::strerror(errno));
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// Temporary file beside `path`, fsync, rename over it, fsync the directory:
// readers see the old policy or the new one, never a mix.
absl::Status ReplaceFile(const std::string& path, absl::string_view content) {
  const std::string temp = absl::StrCat(path, ".tmp.", ::getpid());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot write beside the policy file ", path, ": ", std::strerror(errno),
        " (keywardd needs write access to its directory to replace it)"));
  }
  absl::Status s = WriteAll(fd, content);
  if (s.ok() && ::fsync(fd) != 0) s = absl::UnavailableError(std::strerror(errno));
  ::close(fd);
  if (s.ok() && ::rename(temp.c_str(), path.c_str()) != 0) {
    s = absl::UnavailableError(std::strerror(errno));
  }
  if (!s.ok()) {
    ::unlink(temp.c_str());
    return absl::UnavailableError(
        absl::StrCat("cannot replace the policy file ", path, ": ", s.message()));
  }
  const std::string dir = path.substr(0, path.find_last_of('/') + 1);
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return absl::OkStatus();
}

std::string Digest(absl::string_view text) {
  const auto d = crypto::Sha256(text);
  return absl::StrCat("sha256:", absl::BytesToHexString(absl::string_view(
                                     reinterpret_cast<const char*>(d.data()), d.size())));
}

absl::StatusOr<std::shared_ptr<const policy::Policy>> Checked(
    absl::StatusOr<std::shared_ptr<const policy::Policy>> parsed) {
  if (!parsed.ok()) return parsed;
  KW_RETURN_IF_ERROR((*parsed)->CheckManageable());
  return parsed;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AccessControl>> AccessControl::Open(
    std::string policy_path, keystore::KeyStore* store, std::optional<SharedPolicy> shared) {
  std::unique_ptr<AccessControl> ac(
      new AccessControl(std::move(policy_path), store, std::move(shared)));
  std::optional<std::string> in_store;
  if (ac->shared_) {
    KW_ASSIGN_OR_RETURN(in_store, ac->shared_->load());
  }
  if (in_store) {
    KW_ASSIGN_OR_RETURN(ac->policy_, Checked(policy::Policy::Parse(*in_store)));
  } else {
    KW_ASSIGN_OR_RETURN(ac->policy_, Checked(policy::Policy::Load(ac->path_)));
    if (ac->shared_) KW_RETURN_IF_ERROR(ac->shared_->publish(ac->policy_->source()));
  }
  KW_RETURN_IF_ERROR(ac->RefreshGrants());
  return ac;
}

absl::StatusOr<PolicyChange> AccessControl::OnSharedPolicyChange() {
  if (!shared_) return absl::FailedPreconditionError("this keywardd has no shared policy");
  std::lock_guard<std::mutex> write(write_mu_);
  return TakeSharedPolicy();
}

absl::StatusOr<PolicyChange> AccessControl::TakeSharedPolicy() {
  KW_ASSIGN_OR_RETURN(std::optional<std::string> yaml, shared_->load());
  PolicyChange change{Digest(PolicyText()), ""};
  if (!yaml) {
    change.new_digest = change.old_digest;
    return change;
  }
  change.new_digest = Digest(*yaml);
  if (change.new_digest == change.old_digest) return change;
  KW_ASSIGN_OR_RETURN(auto parsed, Checked(policy::Policy::Parse(*yaml)));
  {
    std::lock_guard<std::mutex> lock(mu_);
    policy_ = std::move(parsed);
  }
  // The local file follows the shared policy, so that a later SIGHUP here
  // reloads (and publishes) the policy in force, never an older one.
  if (absl::Status s = ReplaceFile(path_, *yaml); !s.ok()) {
    Log(LogLevel::kWarning, "policy",
        "could not write the shared policy to the local policy file; do not reload it "
        "with SIGHUP until it is fixed",
        {{"path", path_}, {"error", std::string(s.message())}});
  }
  return change;
}

absl::Status AccessControl::OnGrantsChange() {
  std::lock_guard<std::mutex> write(write_mu_);
  return RefreshGrants();
}

absl::Status AccessControl::RefreshGrants() {
  const absl::Time now = absl::Now();
  KW_ASSIGN_OR_RETURN(std::vector<policy::Grant> active,
                      store_->ListGrants(now, /*include_inactive=*/false));
  KW_ASSIGN_OR_RETURN(std::vector<policy::BreakGlassGrant> open,
                      store_->ListBreakGlass(/*include_closed=*/false));
  auto shared = std::make_shared<const std::vector<policy::Grant>>(std::move(active));
  auto shared_bg = std::make_shared<const std::vector<policy::BreakGlassGrant>>(std::move(open));
  std::lock_guard<std::mutex> lock(mu_);
  grants_ = std::move(shared);
  breakglass_ = std::move(shared_bg);
  grants_loaded_ = now;
  return absl::OkStatus();
}

policy::Decision AccessControl::Decide(const policy::Request& request, bool count_breakglass) {
  std::shared_ptr<const policy::Policy> policy;
  std::shared_ptr<const std::vector<policy::Grant>> grants;
  std::shared_ptr<const std::vector<policy::BreakGlassGrant>> breakglass;
  bool stale = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    policy = policy_;
    grants = grants_;
    breakglass = breakglass_;
    stale = request.now - grants_loaded_ > kGrantRefresh;
  }
  // One caller refreshes; the others go on with the cached grants (expiry is
  // checked at evaluation, so a stale cache can only miss a new grant or a
  // revocation made by another keywardd, for at most kGrantRefresh).
  if (stale && write_mu_.try_lock()) {
    (void)RefreshGrants();
    // A notification of a policy change that could not be taken up (the
    // store was unreachable just then) is made good here.
    if (shared_) (void)TakeSharedPolicy();
    write_mu_.unlock();
  }
  policy::Decision d = policy->Evaluate(request, *grants);
  if (d.allowed || request.operation != "decrypt" || breakglass->empty()) return d;
  return DecideBreakGlass(*policy, *breakglass, request, std::move(d), count_breakglass);
}

policy::Decision AccessControl::DecideScope(const std::string& principal,
                                            const std::string& operation,
                                            const std::string& pattern) {
  std::shared_ptr<const policy::Policy> policy;
  std::shared_ptr<const std::vector<policy::Grant>> grants;
  {
    std::lock_guard<std::mutex> lock(mu_);
    policy = policy_;
    grants = grants_;
  }
  return policy->EvaluateScope(principal, operation, pattern, *grants, absl::Now());
}

absl::StatusOr<PolicyChange> AccessControl::ReloadPolicy(
    const std::function<absl::Status(const PolicyChange&)>& record) {
  // The file is read under the writers' lock: a SetPolicy cannot slip in
  // between reading the file and putting its policy in force.
  std::lock_guard<std::mutex> write(write_mu_);
  KW_ASSIGN_OR_RETURN(auto loaded, Checked(policy::Policy::Load(path_)));
  PolicyChange change{Digest(PolicyText()), Digest(loaded->source())};
  if (record) KW_RETURN_IF_ERROR(record(change));
  if (shared_) KW_RETURN_IF_ERROR(shared_->publish(loaded->source()));
  std::lock_guard<std::mutex> lock(mu_);
  policy_ = std::move(loaded);
  return change;
}

absl::StatusOr<PolicyChange> AccessControl::SetPolicy(
    absl::string_view yaml, const std::function<absl::Status(const PolicyChange&)>& record) {
  KW_ASSIGN_OR_RETURN(auto parsed, Checked(policy::Policy::Parse(yaml)));
  std::lock_guard<std::mutex> write(write_mu_);
  PolicyChange change{Digest(PolicyText()), Digest(yaml)};
  if (record) KW_RETURN_IF_ERROR(record(change));
  if (shared_) KW_RETURN_IF_ERROR(shared_->publish(std::string(yaml)));
  KW_RETURN_IF_ERROR(ReplaceFile(path_, yaml));
  std::lock_guard<std::mutex> lock(mu_);
  policy_ = std::move(parsed);
  return change;
}

std::string AccessControl::PolicyDigest() const { return Digest(PolicyText()); }

std::string AccessControl::PolicyText() const {
  std::lock_guard<std::mutex> lock(mu_);
  return policy_->source();
}

absl::StatusOr<policy::Grant> AccessControl::CreateGrant(const GrantRequest& r,
                                                         const std::string& created_by) {
  if (r.principal.empty()) {
    return absl::InvalidArgumentError("a grant needs the principal it is for");
  }
  if (r.key.empty()) return absl::InvalidArgumentError("a grant needs a key name or glob");
  for (char c : r.key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '/' || c == '*' || c == '?';
    if (!ok) {
      return absl::InvalidArgumentError(
          "a grant's key is a key name or a glob of letters, digits, '-', '_', '.', '/', "
          "'*' and '?'");
    }
  }
  if (r.operations.empty()) {
    return absl::InvalidArgumentError("a grant needs at least one operation");
  }
  for (const std::string& op : r.operations) {
    if (op != "*" && !policy::IsKnownOperation(op)) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown operation '", Bounded(op), "' (see docs/policy.md)"));
    }
  }
  if (r.ttl < absl::Seconds(1) || r.ttl > kMaxGrantTtl) {
    return absl::InvalidArgumentError(
        "a grant must last between 1 second and 90 days; grants are meant to "
        "be temporary, standing access belongs in the policy");
  }
  KW_ASSIGN_OR_RETURN(std::string id_bytes, crypto::RandomBytes(8));
  policy::Grant g;
  g.id = absl::StrCat("g-", absl::BytesToHexString(id_bytes));
  g.principal = r.principal;
  g.key = r.key;
  g.operations = r.operations;
  g.context = r.context;
  g.created = absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
  g.expires = g.created + r.ttl;
  g.created_by = created_by;
  g.reason = r.reason;
  std::lock_guard<std::mutex> write(write_mu_);
  KW_RETURN_IF_ERROR(store_->CreateGrant(g));
  KW_RETURN_IF_ERROR(RefreshGrants());
  return g;
}

absl::StatusOr<std::vector<policy::Grant>> AccessControl::ListGrants(bool include_inactive) {
  return store_->ListGrants(absl::Now(), include_inactive);
}

absl::StatusOr<policy::Grant> AccessControl::FindGrant(const std::string& id) {
  KW_ASSIGN_OR_RETURN(auto all, store_->ListGrants(absl::Now(), true));
  for (policy::Grant& g : all) {
    if (g.id == id) return std::move(g);
  }
  return absl::NotFoundError(absl::StrCat("no grant '", Bounded(id), "' (list them with "
                                          "`keyward grant list --all`)"));
}

absl::StatusOr<policy::Grant> AccessControl::RevokeGrant(const std::string& id) {
  std::lock_guard<std::mutex> write(write_mu_);
  const absl::Time now = absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
  KW_RETURN_IF_ERROR(store_->RevokeGrant(id, now));
  KW_RETURN_IF_ERROR(RefreshGrants());
  KW_ASSIGN_OR_RETURN(auto all, store_->ListGrants(now, true));
  for (policy::Grant& g : all) {
    if (g.id == id) return std::move(g);
  }
  return absl::InternalError("the revoked grant vanished from the store");
}

}  // namespace keyward::server
