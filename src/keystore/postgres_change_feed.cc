#include "keystore/postgres_change_feed.h"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "keystore/postgres_connection_pool.h"

namespace keyward::keystore::internal {
namespace {

// PostgreSQL refuses payloads of 8000 bytes or more.
constexpr size_t kMaxPayload = 7999;
constexpr absl::Duration kFirstBackoff = absl::Milliseconds(100);
constexpr absl::Duration kMaxBackoff = absl::Seconds(5);

char KindLetter(StoreChange::Kind kind) {
  switch (kind) {
    case StoreChange::Kind::kKey:
      return 'k';
    case StoreChange::Kind::kGrants:
      return 'g';
    case StoreChange::Kind::kTenantKey:
      return 't';
    case StoreChange::Kind::kSecret:
      return 's';
    case StoreChange::Kind::kEverything:
      break;
  }
  return 'e';
}

std::optional<std::string> FromHex(absl::string_view hex) {
  if (hex.size() % 2 != 0 ||
      !std::all_of(hex.begin(), hex.end(),
                   [](char c) { return absl::ascii_isxdigit(static_cast<unsigned char>(c)); })) {
    return std::nullopt;
  }
  return absl::HexStringToBytes(hex);
}

}  // namespace

std::string EncodeChange(const StoreChange& change) {
  const char kind = KindLetter(change.kind);
  if (kind == 'e') return "e||";
  std::string payload = absl::StrCat(std::string(1, kind), "|",
                                     absl::BytesToHexString(change.key_name), "|",
                                     absl::BytesToHexString(change.tenant));
  return payload.size() <= kMaxPayload ? payload : "e||";
}

std::optional<StoreChange> DecodeChange(absl::string_view payload) {
  std::vector<absl::string_view> parts = absl::StrSplit(payload, '|');
  if (parts.size() != 3 || parts[0].size() != 1) return std::nullopt;
  StoreChange change;
  switch (parts[0][0]) {
    case 'k':
      change.kind = StoreChange::Kind::kKey;
      break;
    case 'g':
      change.kind = StoreChange::Kind::kGrants;
      break;
    case 't':
      change.kind = StoreChange::Kind::kTenantKey;
      break;
    case 's':
      change.kind = StoreChange::Kind::kSecret;
      break;
    case 'e':
      change.kind = StoreChange::Kind::kEverything;
      return change;
    default:
      return std::nullopt;
  }
  auto key = FromHex(parts[1]);
  auto tenant = FromHex(parts[2]);
  if (!key || !tenant) return std::nullopt;
  change.key_name = std::move(*key);
  change.tenant = std::move(*tenant);
  return change;
}

absl::Status NotifyChange(appdb::Database& db, const StoreChange& change) {
  return Query(db, "SELECT pg_notify('keyward_changes', $1)",
               SqlParams().Text(EncodeChange(change)))
      .status();
}

ChangeListener::ChangeListener(std::string url) : url_(std::move(url)) {}

ChangeListener::~ChangeListener() {
  stop_ = true;
  if (wake_fd_ >= 0) {
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof(one));
  }
  if (thread_.joinable()) thread_.join();
  Disconnect();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

absl::Status ChangeListener::Add(std::function<void(const StoreChange&)> on_change) {
  std::lock_guard<std::mutex> lock(mu_);
  callbacks_.push_back(std::move(on_change));
  if (thread_.joinable()) return absl::OkStatus();
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    callbacks_.pop_back();
    return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  // Unreachable now: Loop reconnects and sends kEverything.
  Connect();
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

bool ChangeListener::Connect() {
  PGconn* conn = PQconnectdb(url_.c_str());
  if (conn == nullptr) return false;
  if (PQstatus(conn) != CONNECTION_OK) {
    PQfinish(conn);
    return false;
  }
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  PGresult* listen = PQexec(conn, "LISTEN keyward_changes");
  const bool ok = listen != nullptr && PQresultStatus(listen) == PGRES_COMMAND_OK;
  PQclear(listen);
  if (!ok || PQsetnonblocking(conn, 1) != 0) {
    PQfinish(conn);
    return false;
  }
  conn_ = conn;
  return true;
}

void ChangeListener::Disconnect() {
  if (conn_ != nullptr) PQfinish(conn_);
  conn_ = nullptr;
}

bool ChangeListener::Wait(absl::Duration d) {
  pollfd wake{wake_fd_, POLLIN, 0};
  ::poll(&wake, 1, static_cast<int>(absl::ToInt64Milliseconds(d)));
  return !stop_;
}

void ChangeListener::Deliver(const StoreChange& change) {
  std::vector<std::function<void(const StoreChange&)>> callbacks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    callbacks = callbacks_;
  }
  for (const auto& callback : callbacks) callback(change);
}

void ChangeListener::Loop() {
  absl::Duration backoff = kFirstBackoff;
  while (!stop_) {
    if (conn_ == nullptr) {
      if (!Wait(backoff)) return;
      if (!Connect()) {
        backoff = std::min(backoff * 2, kMaxBackoff);
        continue;
      }
      backoff = kFirstBackoff;
      // Whatever was committed while we were away was not heard.
      Deliver(StoreChange{StoreChange::Kind::kEverything, "", ""});
    }
    pollfd fds[2] = {{PQsocket(conn_), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    // The timeout only bounds how long a dead connection that the kernel
    // has not reported yet goes unnoticed (TCP keepalives report it).
    const int ready = ::poll(fds, 2, 1000);
    if (stop_) return;
    if (ready < 0 && errno != EINTR) {
      Disconnect();
      continue;
    }
    if (fds[0].revents != 0 && PQconsumeInput(conn_) == 0) {
      Disconnect();
      continue;
    }
    while (PGnotify* n = PQnotifies(conn_)) {
      std::optional<StoreChange> change = DecodeChange(n->extra == nullptr ? "" : n->extra);
      PQfreemem(n);
      Deliver(change.value_or(StoreChange{StoreChange::Kind::kEverything, "", ""}));
    }
    if (PQstatus(conn_) == CONNECTION_BAD) Disconnect();
  }
}

}  // namespace keyward::keystore::internal
