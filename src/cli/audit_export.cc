#include "cli/audit_export.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "audit/merkle.h"
#include "audit/record.h"
#include "base/status_macros.h"
#include "cli/files.h"
#include "cli/line_append_file.h"
#include "keyward/connection.h"
#include "nlohmann/json.hpp"

namespace keyward::cli {
namespace {

using Json = nlohmann::ordered_json;

constexpr char kHeaderKey[] = "keyward_export";
constexpr int kPageLimit = 10000;  // records per ReadAuditRecords, keywardd's maximum
constexpr absl::Duration kPoll = absl::Milliseconds(500);
constexpr absl::Duration kMaxIdlePoll = absl::Seconds(5);
constexpr absl::Duration kFirstRetry = absl::Seconds(1);
constexpr absl::Duration kMaxRetry = absl::Seconds(10);

// The signal that asked a streaming export to stop after its batch.
std::atomic<int> stop_signal{0};

void OnStopSignal(int sig) {
  if (stop_signal.exchange(sig) != 0) {
    // A second signal: the user means now, even mid-batch.
    const char msg[] = "\nkeyward: interrupted again; stopping now\n";
    [[maybe_unused]] ssize_t ignored = ::write(2, msg, sizeof(msg) - 1);
    ::_exit(128 + sig);
  }
}

// A streaming export finishes the batch it is writing, then stops; the
// default handlers (files.h) would exit mid-write.
void InstallStopHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
}

bool Stopped() { return stop_signal.load() != 0; }

// False when a stop signal came first.
bool SleepUnlessStopped(absl::Duration d) {
  const absl::Time end = absl::Now() + d;
  while (!Stopped()) {
    const absl::Duration left = end - absl::Now();
    if (left <= absl::ZeroDuration()) return true;
    absl::SleepFor(std::min(left, absl::Milliseconds(50)));
  }
  return false;
}

// What a keywardd that is restarting, failing over or overloaded answers
// (a server shutting down cancels the calls in flight).
bool Retryable(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s) || absl::IsCancelled(s);
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

// The filters as the header names them, from the query itself so none can
// be left out.  Context values are never written: the log holds them only
// as keyed hashes, and the export must not hold them in clear either.
Json DescribeFilters(const AuditQuery& q) {
  Json f = Json::object();
  if (!q.principal.empty()) f["principal"] = q.principal;
  if (!q.key.empty()) f["key"] = q.key;
  if (!q.operation.empty()) f["operation"] = q.operation;
  if (!q.decision.empty()) f["decision"] = q.decision;
  if (q.since) f["since"] = Rfc3339(*q.since);
  if (q.until) f["until"] = Rfc3339(*q.until);
  if (!q.context.empty()) {
    Json keys = Json::array();
    for (const auto& [k, v] : q.context) keys.push_back(k);
    f["context_keys"] = keys;
  }
  return f;
}

std::string HeaderLine(const Json& filters, uint64_t from_index, uint64_t log_size) {
  return Json{{kHeaderKey,
               {{"filtered", true},
                {"filters", filters},
                {"from_index", from_index},
                {"log_size_at_start", log_size},
                {"note", "records not matching the filters are omitted; seq numbers have gaps"}}}}
      .dump();
}

// What an export file being continued (--append) already holds.
struct Continued {
  bool empty = true;
  std::optional<Json> header;  // a filtered export's first line
  std::optional<audit::ChainFields> last;
  std::vector<audit::Hash> last_leaf;  // of the last record (its possible leaf hashes), for the chain check
};

absl::StatusOr<Continued> ReadContinued(const LineAppendFile& file) {
  Continued c;
  if (file.first_line().empty()) return c;
  c.empty = false;
  const auto not_an_export = [&] {
    return absl::FailedPreconditionError(absl::StrCat(
        file.path(), " is not an audit export (its ", "lines are neither records nor an export "
        "header); --append continues a file written by `keyward audit export`"));
  };
  Json first = Json::parse(file.first_line(), nullptr, false);
  if (first.is_object() && first.contains(kHeaderKey) && first[kHeaderKey].is_object()) {
    c.header = first[kHeaderKey];
    if (!c.header->contains("filters") || !(*c.header)["filters"].is_object()) {
      return not_an_export();
    }
  } else if (!audit::ReadChainFields(file.first_line()).ok()) {
    return not_an_export();
  }
  if (c.header && file.last_line() == file.first_line()) return c;  // the header alone
  auto last = audit::ReadChainFields(file.last_line());
  if (!last.ok()) return not_an_export();
  c.last = *last;
  c.last_leaf = audit::PossibleLeaves(file.last_line());
  return c;
}

class Export {
 public:
  Export(const AuditExportOptions& options, AdminClient* client)
      : options_(options),
        client_(client),
        filters_(DescribeFilters(options.query)),
        filtered_(!filters_.empty()) {}

  absl::Status Run(Globals& globals);

 private:
  absl::Status OpenOutput();
  absl::Status Plan();
  absl::Status Check(const std::string& record, uint64_t page_from);
  absl::Status Loop();
  bool OwnRead(const std::string& record) const;
  std::string ResumeHint() const;
  void Summary(bool json, bool stopped) const;

  const AuditExportOptions& options_;
  AdminClient* client_;
  const Json filters_;
  const bool filtered_;

  // Where records go: one of these.
  std::unique_ptr<AtomicOutput> atomic_;   // -o FILE, once
  std::unique_ptr<LineAppendFile> file_;   // -o FILE with --follow or --append
  std::unique_ptr<FdOutputStream> stdout_; // -o -
  std::function<absl::Status(absl::string_view)> write_;

  Continued continued_;
  bool header_pending_ = false;
  uint64_t start_ = 0, next_ = 0, written_ = 0, log_size_at_start_ = 0;
  std::optional<uint64_t> last_seq_;
  std::optional<std::vector<audit::Hash>> prev_leaf_;  // unfiltered: the chain continues from it
  std::string principal_;                 // follow: to tell our own reads apart
};

absl::Status Export::OpenOutput() {
  const bool to_stdout = options_.output.empty() || options_.output == "-";
  if (to_stdout) {
    stdout_ = std::make_unique<FdOutputStream>(1);
    write_ = [this](absl::string_view lines) { return stdout_->Write(lines); };
    return absl::OkStatus();
  }
  if (options_.append) {
    KW_ASSIGN_OR_RETURN(file_, LineAppendFile::Continue(options_.output));
    if (file_->cut_bytes() > 0) {
      std::fprintf(stderr,
                   "keyward: %s ended in an unfinished line (%llu bytes, from a write cut "
                   "short); removed it, the records before it are kept\n",
                   options_.output.c_str(), static_cast<unsigned long long>(file_->cut_bytes()));
    }
    KW_ASSIGN_OR_RETURN(continued_, ReadContinued(*file_));
  } else if (options_.follow) {
    auto created = LineAppendFile::Create(options_.output);
    if (absl::IsAlreadyExists(created.status())) {
      return UsageError(absl::StrCat(options_.output,
                                     " already exists: --append continues it after its last "
                                     "record; or write to a new path"));
    }
    KW_ASSIGN_OR_RETURN(file_, std::move(created));
  } else {
    KW_ASSIGN_OR_RETURN(atomic_, AtomicOutput::Create(options_.output, 0600));
    write_ = [this](absl::string_view lines) { return atomic_->stream().Write(lines); };
    return absl::OkStatus();
  }
  write_ = [this](absl::string_view lines) { return file_->Append(lines); };
  return absl::OkStatus();
}

// Where to start, and what the records must continue.
absl::Status Export::Plan() {
  start_ = options_.from_index.value_or(0);
  if (!continued_.empty) {
    const std::string& path = options_.output;
    if (!options_.query.context.empty()) {
      // The header names the context keys only, never the values, so it
      // cannot tell whether they are the same.
      return UsageError(absl::StrCat(
          "an export filtered by --context cannot be continued with --append: ", path,
          " does not hold the context values (they are never written in clear), so keyward "
          "cannot check that this run's are the same. Write to a new file with --from-index"));
    }
    const Json had = continued_.header ? (*continued_.header)["filters"] : Json::object();
    if (had != filters_) {
      return UsageError(absl::StrCat(
          path, " holds an export ", had.empty() ? "of every record" : "filtered by " + had.dump(),
          "; this one is ", filtered_ ? "filtered by " + filters_.dump() : "unfiltered",
          ". Appending would mislabel the records: give the same filters (--since/--until as "
          "the times the header names), or write to a new file"));
    }
    if (continued_.last) {
      const uint64_t after = continued_.last->seq + 1;
      if (options_.from_index && *options_.from_index < after) {
        return UsageError(absl::StrCat(path, " already holds records up to index ",
                                       continued_.last->seq, "; --from-index ",
                                       *options_.from_index,
                                       " would repeat them. Leave out --from-index to continue "
                                       "after its last record"));
      }
      if (options_.from_index && !filtered_ && *options_.from_index > after) {
        return UsageError(absl::StrCat(path, " ends with record ", continued_.last->seq,
                                       "; --from-index ", *options_.from_index,
                                       " would leave out the records in between. Leave out "
                                       "--from-index to continue after its last record"));
      }
      start_ = options_.from_index.value_or(after);
      last_seq_ = continued_.last->seq;
      if (!filtered_) prev_leaf_ = continued_.last_leaf;
    } else if (!options_.from_index && continued_.header &&
               (*continued_.header)["from_index"].is_number_unsigned()) {
      start_ = (*continued_.header)["from_index"].get<uint64_t>();
    }
  }
  header_pending_ = filtered_ && !continued_.header;
  next_ = start_;
  if (continued_.last) {
    std::fprintf(stderr, "keyward: continuing %s after its record %llu: from index %llu\n",
                 options_.output.c_str(), static_cast<unsigned long long>(continued_.last->seq),
                 static_cast<unsigned long long>(start_));
  } else if (start_ > 0) {
    std::fprintf(stderr,
                 "keyward: resumed export: starting at record index %llu; records before it "
                 "are not in this output\n",
                 static_cast<unsigned long long>(start_));
  }
  return absl::OkStatus();
}

// Every record must be one of those asked for, in order; an unfiltered
// export must also be a chain without a gap, continuing what it continues.
absl::Status Export::Check(const std::string& record, uint64_t page_from) {
  auto fields = audit::ReadChainFields(record);
  if (!fields.ok()) {
    return absl::DataLossError(absl::StrCat("keywardd sent a line that is not an audit record "
                                            "after index ",
                                            page_from, ": ", fields.status().message()));
  }
  if (fields->seq < page_from || (last_seq_ && fields->seq <= *last_seq_)) {
    return absl::DataLossError(absl::StrCat(
        "keywardd sent record ", fields->seq, " where a record from index ",
        last_seq_ ? std::max(page_from, *last_seq_ + 1) : page_from,
        " on was due; nothing of that batch was written"));
  }
  if (!filtered_) {
    if (last_seq_ && fields->seq != *last_seq_ + 1) {
      return absl::DataLossError(absl::StrCat("keywardd sent record ", fields->seq,
                                              " after record ", *last_seq_,
                                              ": the export would have a gap"));
    }
    if (prev_leaf_ && std::none_of(prev_leaf_->begin(), prev_leaf_->end(),
                                   [&](const audit::Hash& h) { return fields->Follows(h); })) {
      return absl::DataLossError(absl::StrCat(
          "record ", fields->seq, " does not continue the records exported before it (its "
          "prev hash differs): this keywardd's log is not the one exported so far — another "
          "replica's, or a log started anew. Export it to a new file (with --server naming "
          "the replica)"));
    }
    prev_leaf_ = audit::PossibleLeaves(record);
  }
  last_seq_ = fields->seq;
  return absl::OkStatus();
}

// Our own polls are audited too: a log where only they happen is idle.
bool Export::OwnRead(const std::string& record) const {
  auto j = nlohmann::json::parse(record, nullptr, false);
  return j.is_object() && j.value("operation", "") == "read-audit" &&
         j.value("principal", "") == principal_;
}

std::string Export::ResumeHint() const {
  std::string hint = absl::StrCat("resume from index ", next_, ": --from-index ", next_);
  if (file_ != nullptr) absl::StrAppend(&hint, " (or --append, which continues the file)");
  return hint;
}

absl::Status Export::Loop() {
  AuditQuery q = options_.query;
  q.from_end = false;
  q.limit = kPageLimit;
  bool first = true, failing = false;
  absl::Duration idle_wait = kPoll, retry_wait = kFirstRetry;
  const bool progress = ::isatty(STDERR_FILENO) && !options_.follow && stdout_ == nullptr;
  while (!Stopped()) {
    q.from_index = next_;
    auto page = client_->ReadAuditRecords(q);
    if (!page.ok()) {
      if (!options_.follow || !Retryable(page.status())) return page.status();
      std::fprintf(stderr, "keyward: cannot read the audit log (%s); trying again in %s\n",
                   std::string(page.status().message()).c_str(),
                   absl::FormatDuration(retry_wait).c_str());
      failing = true;
      if (!SleepUnlessStopped(retry_wait)) break;
      retry_wait = std::min(retry_wait * 2, kMaxRetry);
      continue;
    }
    if (failing) {
      std::fprintf(stderr, "keyward: reading the audit log again, from index %llu\n",
                   static_cast<unsigned long long>(next_));
      failing = false;
      retry_wait = kFirstRetry;
    }
    if (first) {
      first = false;
      log_size_at_start_ = page->size;
      if (start_ > page->size) {
        return absl::FailedPreconditionError(absl::StrCat(
            "this keywardd's log has ", page->size, " records, fewer than the index ", start_,
            " to start from: it is not the log exported so far (another replica's, or a log "
            "started anew). Check --server and the client config"));
      }
    }
    std::string lines;
    if (header_pending_) {
      lines = HeaderLine(filters_, start_, log_size_at_start_) + "\n";
    }
    bool news = false;
    for (const std::string& r : page->records) {
      KW_RETURN_IF_ERROR(Check(r, q.from_index));
      absl::StrAppend(&lines, r, "\n");
      if (options_.follow && !news && !OwnRead(r)) news = true;
    }
    if (!lines.empty()) {
      KW_RETURN_IF_ERROR(write_(lines));
      header_pending_ = false;
    }
    written_ += page->records.size();
    next_ = std::max(next_, page->next_index);
    if (progress && !page->records.empty()) {
      std::fprintf(stderr, "\rexported %llu records", static_cast<unsigned long long>(written_));
    }
    if (next_ < page->size) continue;  // more now
    if (!options_.follow) break;
    idle_wait = news ? kPoll : std::min(idle_wait * 2, kMaxIdlePoll);
    if (!SleepUnlessStopped(idle_wait)) break;
  }
  return absl::OkStatus();
}

void Export::Summary(bool json, bool stopped) const {
  const bool to_stdout = stdout_ != nullptr;
  if (json) {
    Json j = {{"file", to_stdout ? "-" : options_.output},
              {"records", written_},
              {"filtered", filtered_},
              {"from_index", start_},
              {"next_index", next_},
              {"log_size_at_start", log_size_at_start_},
              {"stopped_by_signal", stopped}};
    if (filtered_) j["filters"] = filters_;
    // Records own stdout when they go there.
    std::fprintf(to_stdout ? stderr : stdout, "%s\n", j.dump().c_str());
    return;
  }
  const bool progress = ::isatty(STDERR_FILENO) && !options_.follow && !to_stdout;
  std::fprintf(stderr, "%skeyward: %sexported %llu %srecords%s%s; %s\n", progress ? "\r" : "",
               stopped ? "stopped; " : "", static_cast<unsigned long long>(written_),
               filtered_ ? "matching " : "", to_stdout ? "" : " to ",
               to_stdout ? "" : options_.output.c_str(), ResumeHint().c_str());
}

absl::Status Export::Run(Globals& globals) {
  if (options_.follow) {
    KW_ASSIGN_OR_RETURN(ServerInfo info, client_->GetServerInfo());
    principal_ = info.principal;
  }
  KW_RETURN_IF_ERROR(OpenOutput());
  KW_RETURN_IF_ERROR(Plan());
  if (options_.follow || atomic_ == nullptr) {
    stop_signal.store(0);
    InstallStopHandlers();
  }
  absl::Status status = Loop();
  if (!status.ok()) {
    // Whatever was written is whole and stays: say where to go on from.
    if (written_ > 0) {
      std::fprintf(stderr, "keyward: exported %llu records before the error; %s\n",
                   static_cast<unsigned long long>(written_), ResumeHint().c_str());
    }
    return status;
  }
  if (atomic_ != nullptr) KW_RETURN_IF_ERROR(atomic_->Commit());
  const bool stopped = Stopped();
  Summary(globals.json, stopped);
  if (stopped && !options_.follow) {
    // Interrupted before the end of the log: the documented 128+N, after
    // the whole batches were written and the resume index printed.
    std::fflush(nullptr);
    std::_Exit(128 + stop_signal.load());
  }
  return absl::OkStatus();
}

// The client for one log: every keywardd replica keeps its own, so an
// export must not wander between them (the SDK spreads calls).
absl::StatusOr<AdminClient*> ConnectToOneLog(Globals& globals, const std::string& server) {
  if (!globals.connection) {
    KW_ASSIGN_OR_RETURN(ClientOptions options, globals.Options());
    if (!server.empty()) {
      options.servers = {server};
    } else if (options.servers.size() > 1) {
      std::string list;
      for (const auto& s : options.servers) absl::StrAppend(&list, list.empty() ? "" : ", ", s);
      return UsageError(absl::StrCat(
          "the client config lists ", options.servers.size(),
          " servers, and each keywardd replica keeps its own audit log: name the one to "
          "export with --server HOST:PORT (one of ",
          list, ")"));
    }
    KW_ASSIGN_OR_RETURN(globals.connection, Connection::Open(options));
  }
  return globals.Admin();
}

}  // namespace

absl::Status RunAuditExport(Globals& globals, const AuditExportOptions& options) {
  if (options.append && (options.output.empty() || options.output == "-")) {
    return UsageError("--append continues an export file: give it with -o FILE");
  }
  KW_ASSIGN_OR_RETURN(AdminClient * client, ConnectToOneLog(globals, options.server));
  Export run(options, client);
  return run.Run(globals);
}

}  // namespace keyward::cli
