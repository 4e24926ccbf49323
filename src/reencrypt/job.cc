#include "reencrypt/job.h"

#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "format/header.h"
#include "keyward/encryptor.h"
#include "keyward/message.h"
#include "reencrypt/unwrapped_keyring.h"

namespace keyward::reencrypt {
namespace {

// Batches being processed while one commits: three keep keywardd busy while
// this process parses, checks and commits.  With --rate, one: a throttled
// job should not run ahead of its rate.
constexpr size_t kInFlight = 3;

struct Parsed {
  format::Header header;
  size_t header_len = 0;  // through the header tag
};

absl::StatusOr<Parsed> Parse(absl::string_view value) {
  Parsed p;
  std::string authenticated;
  KW_ASSIGN_OR_RETURN(p.header, format::ParseHeader(value, &authenticated, &p.header_len));
  return p;
}

const EncryptedDataKey* KmsEntry(const format::Header& h) {
  for (const EncryptedDataKey& edk : h.data_keys) {
    if (edk.provider_id == kKmsProviderId && edk.provider_info == h.key.key_name) return &edk;
  }
  return nullptr;
}

using VersionCounts = std::map<std::string, std::map<uint32_t, uint64_t>>;

// One processed batch: its updates, its rows' counts for the report (added
// in batch order, so the first failure is the first row's), and, for the
// running tally, the versions its message rows are on now and where each
// update moves one.
struct Batch {
  std::vector<Update> updates;
  Report counts;  // scanned, changed (dry run), already_current, ... only
  void Fail(const Row& row, const absl::Status& s) {
    ++counts.failed;
    if (counts.first_failure.empty()) {
      counts.first_failure = absl::StrCat("row ", RowIdString(row.id), ": ", s.message());
    }
  }
  VersionCounts before;
  struct Move {
    std::string key;
    uint32_t from = 0;
    uint32_t to = 0;
  };
  std::vector<Move> moves;  // parallel to updates
};

class Job {
 public:
  Job(std::shared_ptr<DataClient> data, AdminClient& admin, MessageTable& table,
      const JobOptions& options)
      : data_(std::move(data)), admin_(admin), table_(table), options_(options) {}

  absl::StatusOr<Report> Run();

 private:
  absl::StatusOr<uint32_t> Primary(const std::string& key);
  // Whether the message is under a key this keywardd has: its environment,
  // and a key GetKey finds.  Errors: keywardd's, other than "no such key".
  absl::StatusOr<bool> Known(const format::Header& header);
  absl::StatusOr<Encryptor*> EncryptorFor(const std::string& key);
  // Decides and (unless dry run) rewrites one batch.  Up to kInFlight run
  // at once: it touches no member but through Primary and EncryptorFor.
  absl::StatusOr<Batch> Process(const std::vector<Row>& rows);
  void RewrapBatch(const std::vector<const Row*>& rows, const std::vector<Parsed>& parsed,
                   Batch* batch);
  void FullBatch(const std::vector<const Row*>& rows, const std::vector<Parsed>& parsed,
                 Batch* batch);
  // Adds a committed batch's counts to the report.
  void Count(const Report& counts);
  absl::Status Tally();

  const std::shared_ptr<DataClient> data_;
  AdminClient& admin_;
  MessageTable& table_;
  const JobOptions& options_;
  Report report_;
  std::mutex mu_;  // guards primaries_ and encryptors_
  std::map<std::string, absl::StatusOr<uint32_t>> primaries_;
  std::map<std::string, std::shared_ptr<Encryptor>> encryptors_;
};

absl::StatusOr<uint32_t> Job::Primary(const std::string& key) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = primaries_.find(key);
    if (it != primaries_.end()) return it->second;
  }
  // Asked outside the lock; two batches asking at once both keep the first
  // answer stored.  Only lasting answers are kept (the key, or no such
  // key): a transient error (keywardd unreachable, overloaded) fails this
  // batch's rows of the key and is asked again for the next batch.
  auto info = admin_.GetKey(key);
  if (!info.ok() && !absl::IsNotFound(info.status()) &&
      !absl::IsInvalidArgument(info.status())) {
    return info.status();
  }
  std::lock_guard<std::mutex> lock(mu_);
  return primaries_
      .emplace(key, info.ok() ? absl::StatusOr<uint32_t>(info->primary_version)
                              : absl::StatusOr<uint32_t>(info.status()))
      .first->second;
}

absl::StatusOr<bool> Job::Known(const format::Header& header) {
  if (header.key.environment != data_->options().environment) return false;
  auto primary = Primary(header.key.key_name);
  if (primary.ok()) return true;
  // A name keywardd has no key for, or would not accept as a key name: the
  // message is someone else's, and one row of it must not stop the job.
  if (absl::IsNotFound(primary.status()) || absl::IsInvalidArgument(primary.status())) {
    return false;
  }
  return primary.status();
}

absl::StatusOr<Encryptor*> Job::EncryptorFor(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& encryptor = encryptors_[key];
  if (!encryptor) {
    EncryptorOptions eo;
    eo.key_name = key;
    KW_ASSIGN_OR_RETURN(encryptor, Encryptor::Create(data_, eo));
  }
  return encryptor.get();
}

void Job::Count(const Report& counts) {
  report_.scanned += counts.scanned;
  report_.changed += counts.changed;
  report_.already_current += counts.already_current;
  report_.other_keys += counts.other_keys;
  report_.unknown_keys += counts.unknown_keys;
  report_.not_messages += counts.not_messages;
  report_.failed += counts.failed;
  if (report_.first_failure.empty()) report_.first_failure = counts.first_failure;
}

absl::StatusOr<Batch> Job::Process(const std::vector<Row>& rows) {
  Batch batch;
  std::vector<const Row*> todo;
  std::vector<Parsed> parsed;
  for (const Row& row : rows) {
    ++batch.counts.scanned;
    auto p = Parse(row.value);
    if (!p.ok()) {
      ++batch.counts.not_messages;
      continue;
    }
    const std::string& key = p->header.key.key_name;
    if (!options_.key.empty() && key != options_.key) {
      ++batch.counts.other_keys;
      continue;
    }
    auto known = Known(p->header);
    if (!known.ok()) {
      batch.Fail(row, known.status());
      continue;
    }
    if (!*known) {
      ++batch.counts.unknown_keys;
      continue;
    }
    ++batch.before[key][p->header.key.key_version];
    if (options_.mode == Mode::kRewrap) {
      auto primary = Primary(key);
      if (!primary.ok()) {
        batch.Fail(row, primary.status());
        continue;
      }
      if (p->header.key.key_version == *primary) {
        ++batch.counts.already_current;
        continue;
      }
    }
    todo.push_back(&row);
    parsed.push_back(std::move(*p));
  }
  if (todo.empty()) return batch;
  if (options_.dry_run) {
    batch.counts.changed += todo.size();
    return batch;
  }
  if (options_.mode == Mode::kRewrap) {
    RewrapBatch(todo, parsed, &batch);
  } else {
    FullBatch(todo, parsed, &batch);
  }
  return batch;
}

void Job::RewrapBatch(const std::vector<const Row*>& rows, const std::vector<Parsed>& parsed,
                      Batch* batch) {
  std::vector<std::string> headers;
  headers.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    headers.push_back(rows[i]->value.substr(0, parsed[i].header_len));
  }
  auto results = data_->RewrapMessageHeaders(headers);
  if (!results.ok()) {
    for (const Row* row : rows) batch->Fail(*row, results.status());
    return;
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    auto& r = (*results)[i];
    if (!r.ok()) {
      batch->Fail(*rows[i], r.status());
      continue;
    }
    // keywardd verified the new header cryptographically; check here that
    // it parses and is the same message's, before it meets the body.
    auto fresh = Parse(r->header);
    if (!fresh.ok() || fresh->header_len != r->header.size() ||
        fresh->header.message_id != parsed[i].header.message_id ||
        fresh->header.key.key_version == parsed[i].header.key.key_version) {
      batch->Fail(*rows[i], fresh.ok()
                                ? absl::InternalError("the rewrapped header does not match")
                                : fresh.status());
      continue;
    }
    std::string value = std::move(r->header);
    value.append(rows[i]->value, parsed[i].header_len, std::string::npos);
    batch->updates.push_back({rows[i]->id, rows[i]->value, std::move(value)});
    batch->moves.push_back({parsed[i].header.key.key_name, parsed[i].header.key.key_version,
                            fresh->header.key.key_version});
  }
}

void Job::FullBatch(const std::vector<const Row*>& rows, const std::vector<Parsed>& parsed,
                    Batch* batch) {
  // Unwrap the data keys in one call, marked as re-encryption.
  std::vector<std::pair<std::string, EncryptionContext>> requests;
  std::vector<int> request_of(rows.size(), -1);
  for (size_t i = 0; i < rows.size(); ++i) {
    const EncryptedDataKey* edk = KmsEntry(parsed[i].header);
    if (edk == nullptr) {
      batch->Fail(*rows[i], absl::FailedPreconditionError("the message has no kms entry"));
      continue;
    }
    request_of[i] = static_cast<int>(requests.size());
    requests.push_back({edk->ciphertext, parsed[i].header.context});
  }
  if (requests.empty()) return;
  auto deks = data_->DecryptDataKeys(requests, /*for_reencryption=*/true);
  if (!deks.ok()) {
    for (size_t i = 0; i < rows.size(); ++i) {
      if (request_of[i] >= 0) batch->Fail(*rows[i], deks.status());
    }
    return;
  }
  UnwrappedKeyring unwrapped;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (request_of[i] < 0) continue;
    auto& dek = (*deks)[static_cast<size_t>(request_of[i])];
    if (!dek.ok()) {
      batch->Fail(*rows[i], dek.status());
      continue;
    }
    unwrapped.Add(requests[static_cast<size_t>(request_of[i])].first, std::move(*dek));
  }
  const KeyUnwrapper* keyrings[] = {&unwrapped};
  for (size_t i = 0; i < rows.size(); ++i) {
    if (request_of[i] < 0) continue;
    const format::Header& h = parsed[i].header;
    if (!unwrapped.Owns(*KmsEntry(h))) continue;  // failed above
    absl::Status s = [&]() -> absl::Status {
      DecryptOptions options;
      options.expected_environment = data_->options().environment;
      KW_ASSIGN_OR_RETURN(SecretData plaintext, DecryptMessage(rows[i]->value, keyrings, options));
      KW_ASSIGN_OR_RETURN(Encryptor * encryptor, EncryptorFor(h.key.key_name));
      KW_ASSIGN_OR_RETURN(std::string fresh,
                          encryptor->Encrypt(plaintext.AsStringView(), h.context));
      // Verify before storing: the new message decrypts to the same bytes
      // under the same context, exactly.
      KW_ASSIGN_OR_RETURN(Decrypted back, encryptor->Decrypt(fresh, h.context));
      if (!ConstantTimeEquals(back.plaintext, plaintext)) {
        return absl::InternalError("the re-encrypted message did not decrypt to the original");
      }
      KW_ASSIGN_OR_RETURN(Parsed now, Parse(fresh));
      batch->updates.push_back({rows[i]->id, rows[i]->value, std::move(fresh)});
      batch->moves.push_back({h.key.key_name, h.key.key_version, now.header.key.key_version});
      return absl::OkStatus();
    }();
    if (!s.ok()) batch->Fail(*rows[i], s);
  }
}

absl::Status Job::Tally() {
  report_.rows_per_version.clear();
  std::optional<RowId> after;
  for (;;) {
    KW_ASSIGN_OR_RETURN(std::vector<Row> rows, table_.ReadBatch(after, 5000));
    if (rows.empty()) break;
    for (const Row& row : rows) {
      auto p = Parse(row.value);
      if (!p.ok()) continue;
      if (!options_.key.empty() && p->header.key.key_name != options_.key) continue;
      auto known = Known(p->header);
      if (known.ok() && *known) {
        ++report_.rows_per_version[p->header.key.key_name][p->header.key.key_version];
      }
    }
    after = rows.back().id;
  }
  return absl::OkStatus();
}

absl::StatusOr<Report> Job::Run() {
  if (options_.batch < 1 || options_.batch > 10000) {
    return absl::InvalidArgumentError("--batch must be between 1 and 10000");
  }
  if (options_.rate < 0) return absl::InvalidArgumentError("--rate must not be negative");
  const absl::Time start = absl::Now();
  report_.data_set = table_.DataSetName();
  // Before anything is read: a write by someone else after this point, even
  // to a row already read, makes the running tally untrustworthy.
  KW_ASSIGN_OR_RETURN(std::optional<uint64_t> changes_at_start, table_.ExternalChanges());
  const std::string job = JobName(report_.data_set, options_);
  KW_ASSIGN_OR_RETURN(report_.rows, table_.CountRows());
  Checkpoint cp;
  cp.started = start;
  if (!options_.dry_run) {
    KW_ASSIGN_OR_RETURN(std::optional<Checkpoint> saved, table_.LoadCheckpoint(job));
    if (saved) {
      cp = *saved;
      report_.resumed = true;
    }
  }
  const uint64_t done_before = cp.rows_done;
  JobOptions::Progress progress;
  progress.total = report_.rows;
  // The report's rows per version is tallied as batches commit.  It is
  // exact only if nobody else wrote to the table meanwhile (and the run did
  // not resume from a crash); otherwise a final scan recounts.
  VersionCounts running;
  bool running_exact = !report_.resumed;
  if (!changes_at_start) running_exact = false;
  // Pipelined: keywardd works on the next `depth` batches while this
  // thread reads ahead and commits, in order, the batch that came back
  // (the table is used from this thread only; Process never touches it).
  struct InFlight {
    std::vector<Row> rows;
    std::future<absl::StatusOr<Batch>> batch;  // destroyed first: waits for Process
  };
  std::deque<std::unique_ptr<InFlight>> in_flight;
  const size_t depth = options_.rate > 0 ? 1 : kInFlight;
  auto read_after = cp.after;
  bool read_all = false;
  auto refill = [&]() -> absl::Status {
    while (!read_all && in_flight.size() < depth) {
      auto f = std::make_unique<InFlight>();
      KW_ASSIGN_OR_RETURN(f->rows, table_.ReadBatch(read_after, options_.batch));
      if (f->rows.empty()) {
        read_all = true;
        break;
      }
      read_after = f->rows.back().id;
      const std::vector<Row>* rows = &f->rows;
      f->batch = std::async(std::launch::async, [this, rows] { return Process(*rows); });
      in_flight.push_back(std::move(f));
    }
    return absl::OkStatus();
  };
  KW_RETURN_IF_ERROR(refill());
  while (!in_flight.empty()) {
    const std::unique_ptr<InFlight> done = std::move(in_flight.front());
    in_flight.pop_front();
    KW_ASSIGN_OR_RETURN(Batch batch, done->batch.get());
    KW_RETURN_IF_ERROR(refill());
    const std::vector<Update>& updates = batch.updates;
    cp.after = done->rows.back().id;
    cp.rows_done += done->rows.size();
    Count(batch.counts);
    if (!options_.dry_run) {
      KW_ASSIGN_OR_RETURN(uint64_t replaced, table_.CommitBatch(updates, job, cp));
      report_.changed += replaced;
      report_.conflicts += updates.size() - replaced;
      cp.rows_changed += replaced;
      if (replaced != updates.size()) running_exact = false;  // which rows moved is unknown
    }
    if (running_exact) {
      for (const auto& [key, versions] : batch.before) {
        for (const auto& [v, n] : versions) running[key][v] += n;
      }
      if (!options_.dry_run) {
        for (const Batch::Move& m : batch.moves) {
          --running[m.key][m.from];
          ++running[m.key][m.to];
        }
      }
    }
    const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
    const uint64_t this_run = cp.rows_done - done_before;
    if (options_.rate > 0) {
      const double ahead = this_run / options_.rate - elapsed;
      if (ahead > 0) std::this_thread::sleep_for(std::chrono::duration<double>(ahead));
    }
    if (options_.progress) {
      progress.done = cp.rows_done;
      progress.changed = cp.rows_changed;
      progress.rows_per_s = elapsed > 0 ? this_run / elapsed : 0;
      progress.eta_s = progress.rows_per_s > 0 && report_.rows > cp.rows_done
                           ? (report_.rows - cp.rows_done) / progress.rows_per_s
                           : (report_.rows > cp.rows_done ? -1 : 0);
      options_.progress(progress);
    }
  }
  KW_ASSIGN_OR_RETURN(std::optional<uint64_t> changes_at_end, table_.ExternalChanges());
  // A store that cannot tell (nullopt) gets the scan.
  if (running_exact && changes_at_start.has_value() && changes_at_end == changes_at_start) {
    for (auto& [key, versions] : running) {
      std::erase_if(versions, [](const auto& entry) { return entry.second == 0; });
    }
    std::erase_if(running, [](const auto& entry) { return entry.second.empty(); });
    report_.rows_per_version = std::move(running);
  } else {
    KW_RETURN_IF_ERROR(Tally());
  }
  if (!options_.dry_run) {
    // The evidence the retirement gate reads.  Reported before the
    // checkpoint is cleared: a crash here reruns a quick, idempotent pass.
    for (const auto& [key, versions] : report_.rows_per_version) {
      if (!options_.key.empty() && key != options_.key) continue;
      DataSetReportInfo r;
      r.data_set = report_.data_set;
      r.key_name = key;
      r.rows_per_version = versions;
      for (const auto& [v, n] : versions) r.rows_total += n;
      // One refused report (a key this principal may read but not report
      // on) must not hold the job, and its checkpoint, forever: the gate
      // of that key just gets no evidence from this run.
      if (absl::Status s = admin_.ReportDataSet(r); !s.ok()) {
        if (absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s)) return s;
        report_.report_failures.push_back(absl::StrCat(key, ": ", s.message()));
      }
    }
    KW_RETURN_IF_ERROR(table_.ClearCheckpoint(job));
  }
  report_.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return report_;
}

}  // namespace

std::string JobName(const std::string& data_set, const JobOptions& options) {
  return absl::StrCat(data_set, "|", options.mode == Mode::kRewrap ? "rewrap" : "full", "|",
                      options.key.empty() ? "*" : options.key);
}

absl::StatusOr<Report> RunJob(std::shared_ptr<DataClient> data, AdminClient& admin,
                              MessageTable& table, const JobOptions& options) {
  Job job(std::move(data), admin, table, options);
  return job.Run();
}

}  // namespace keyward::reencrypt
