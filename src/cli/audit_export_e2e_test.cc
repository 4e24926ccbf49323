// End to end: `keyward audit export` for SIEMs against a real keywardd —
// following the log, stopping on SIGINT with the index to resume from,
// resuming without gaps or duplicates, filtered exports labelled as such.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "audit/testing/log_files.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/e2e_fixture.h"

namespace keyward {
namespace {

using ::keyward::testing::ProcessResult;
using ::keyward::testing::ReadFileOrDie;
using ::keyward::testing::WriteFileOrDie;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

// Generous: these wait for output, they do not measure time.
constexpr absl::Duration kDeadline = absl::Seconds(90);

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  for (absl::string_view l : absl::StrSplit(text, '\n', absl::SkipEmpty())) out.emplace_back(l);
  return out;
}

std::string ReadOrEmpty(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return "";
  std::string s;
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  std::fclose(f);
  return s;
}

uint64_t Seq(const std::string& line) {
  Json j = Json::parse(line, nullptr, false);
  EXPECT_TRUE(j.is_object() && j.contains("seq")) << "not a record: " << line;
  return j.is_object() && j.contains("seq") ? j["seq"].get<uint64_t>() : ~0ull;
}

// Records for key `key` and operation `op` among `lines`.
size_t Count(const std::vector<std::string>& lines, const std::string& key,
             const std::string& op) {
  size_t n = 0;
  for (const auto& l : lines) {
    Json j = Json::parse(l, nullptr, false);
    if (j.is_object() && j.value("key", "") == key && j.value("operation", "") == op) ++n;
  }
  return n;
}

bool WaitFor(const std::function<bool()>& done) {
  const absl::Time end = absl::Now() + kDeadline;
  while (absl::Now() < end) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return done();
}

// A running `keyward` with its stdout and stderr in files.
class Child {
 public:
  Child(const std::vector<std::string>& argv, std::string out, std::string err)
      : out_(std::move(out)), err_(std::move(err)) {
    std::fflush(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      const int o = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      const int e = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (o < 0 || e < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0) ::_exit(126);
      std::vector<std::string> copy = argv;
      std::vector<char*> args;
      for (auto& a : copy) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  std::string err() const { return ReadOrEmpty(err_); }
  std::string out() const { return ReadOrEmpty(out_); }
  // Sends `sig` and waits for the exit; -1 when it died by a signal or
  // did not exit in time.
  int Stop(int sig) {
    ::kill(pid_, sig);
    int status = 0;
    const bool exited = WaitFor([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; });
    if (!exited) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  std::string out_, err_;
  pid_t pid_ = -1;
};

// The index a stopped export says to resume from.
std::optional<uint64_t> ResumeIndex(const std::string& err) {
  const std::string marker = "resume from index ";
  const size_t at = err.rfind(marker);
  if (at == std::string::npos) return std::nullopt;
  uint64_t n = 0;
  const std::string digits = err.substr(at + marker.size(), err.find(':', at) - at - marker.size());
  if (!absl::SimpleAtoi(digits, &n)) return std::nullopt;
  return n;
}

class AuditExportTest : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    if (HasFatalFailure()) return;
    admin_ = Connect(server_->admin_config());
    app_ = Connect(server_->app_config());
    ASSERT_NE(admin_, nullptr);
    ASSERT_NE(app_, nullptr);
    KW_ASSERT_OK(admin_->CreateKey("k").status());
    KW_ASSERT_OK(admin_->CreateKey("other").status());
  }
  void DataKeys(const std::string& key, int n, const std::string& tenant = "acme") {
    for (int i = 0; i < n; ++i) {
      KW_ASSERT_OK(app_->GenerateDataKey(key, {{"tenant", tenant}}).status());
    }
  }
  std::vector<std::string> Base() const { return {KEYWARD_CLI, "--config", server_->admin_config()}; }
  std::vector<std::string> Args(std::vector<std::string> more) const {
    std::vector<std::string> a = Base();
    a.insert(a.end(), more.begin(), more.end());
    return a;
  }
  std::string Path(const std::string& name) const { return server_->File(name); }
  std::shared_ptr<testing::Client> admin_, app_;
};

TEST_F(AuditExportTest, FollowPicksUpNewRecordsStopsOnSigintAndResumesWithoutGapsOrDuplicates) {
  DataKeys("k", 3);
  const std::string first = Path("first.jsonl");
  Child follow(Args({"audit", "export", "-o", first, "--follow"}), Path("follow.out"),
               Path("follow.err"));
  ASSERT_TRUE(WaitFor([&] { return Count(Lines(ReadOrEmpty(first)), "k", "generate-data-key") == 3; }))
      << follow.err();
  // Written after the export started and caught up.
  DataKeys("k", 5);
  ASSERT_TRUE(WaitFor([&] { return Count(Lines(ReadOrEmpty(first)), "k", "generate-data-key") == 8; }))
      << follow.err();

  ASSERT_EQ(follow.Stop(SIGINT), 0) << follow.err();
  const std::string err = follow.err();
  EXPECT_THAT(err, HasSubstr("stopped"));
  const std::optional<uint64_t> resume = ResumeIndex(err);
  ASSERT_TRUE(resume.has_value()) << err;
  // Records only (unfiltered: no header), in order from 0, whole lines.
  const std::string text = ReadFileOrDie(first);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  const std::vector<std::string> got = Lines(text);
  ASSERT_EQ(got.size(), *resume);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(Seq(got[i]), i);

  // More records (and the export's own reads) after it stopped.
  DataKeys("k", 2);
  const std::string second = Path("second.jsonl");
  ProcessResult resumed = server_->Cli(
      {"audit", "export", "-o", second, "--from-index", std::to_string(*resume), "--json"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_THAT(resumed.err, HasSubstr(absl::StrCat("starting at record index ", *resume)));
  Json summary = Json::parse(resumed.out, nullptr, false);
  ASSERT_TRUE(summary.is_object()) << resumed.out;
  EXPECT_EQ(summary["from_index"], *resume);
  EXPECT_EQ(summary["filtered"], false);
  const std::vector<std::string> rest = Lines(ReadFileOrDie(second));
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(summary["records"], rest.size());
  EXPECT_EQ(Seq(rest.front()), *resume);
  EXPECT_EQ(Count(rest, "k", "generate-data-key"), 2u);

  // Both parts together are the log as stored, byte for byte: no record
  // twice, none missing.
  const std::vector<std::string> stored = Lines(audit::testing::ReadLogText(server_->File("audit")));
  std::vector<std::string> joined = got;
  joined.insert(joined.end(), rest.begin(), rest.end());
  ASSERT_LE(joined.size(), stored.size());
  EXPECT_EQ(joined, std::vector<std::string>(stored.begin(), stored.begin() + joined.size()));

  // --append continues the first file after its last record, by itself.
  ProcessResult appended = server_->Cli({"audit", "export", "-o", first, "--append"});
  ASSERT_EQ(appended.exit_code, 0) << appended.err;
  EXPECT_THAT(appended.err,
              HasSubstr(absl::StrCat("after its record ", *resume - 1, ": from index ", *resume)));
  const std::vector<std::string> whole = Lines(ReadFileOrDie(first));
  const std::vector<std::string> now = Lines(audit::testing::ReadLogText(server_->File("audit")));
  ASSERT_GT(whole.size(), got.size());
  ASSERT_LE(whole.size(), now.size());
  EXPECT_EQ(whole, std::vector<std::string>(now.begin(), now.begin() + whole.size()));
  // Asking it to repeat records is refused, and the file is left alone.
  ProcessResult again = server_->Cli({"audit", "export", "-o", first, "--append", "--from-index", "2"});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_THAT(again.err, HasSubstr("would repeat them"));
  EXPECT_EQ(Lines(ReadFileOrDie(first)), whole);
}

TEST_F(AuditExportTest, FilteredExportStartsWithAHeaderNamingItsFiltersAndHoldsOnlyMatches) {
  DataKeys("k", 3);
  DataKeys("other", 2);
  DataKeys("k", 1, "globex");
  const std::string out = Path("filtered.jsonl");
  ProcessResult r = server_->Cli({"audit", "export", "-o", out, "--key", "k", "--op",
                                  "generate-data-key", "--context", "tenant=acme", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = Lines(ReadFileOrDie(out));
  ASSERT_EQ(lines.size(), 4u) << ReadFileOrDie(out);
  Json header = Json::parse(lines[0], nullptr, false);
  ASSERT_TRUE(header.is_object() && header.contains("keyward_export")) << lines[0];
  EXPECT_FALSE(header.contains("seq")) << "the header must not look like a record";
  const Json& h = header["keyward_export"];
  EXPECT_EQ(h["filtered"], true);
  EXPECT_EQ(h["filters"], (Json{{"key", "k"},
                                {"operation", "generate-data-key"},
                                {"context_keys", Json::array({"tenant"})}}));
  EXPECT_EQ(h["from_index"], 0);
  EXPECT_GT(h["log_size_at_start"].get<uint64_t>(), 6u);
  EXPECT_THAT(h["note"].get<std::string>(), HasSubstr("omitted"));
  EXPECT_THAT(lines[0], Not(HasSubstr("acme"))) << "context values never in clear";
  for (size_t i = 1; i < lines.size(); ++i) {
    Json rec = Json::parse(lines[i]);
    EXPECT_EQ(rec["key"], "k");
    EXPECT_EQ(rec["operation"], "generate-data-key");
  }
  Json summary = Json::parse(r.out, nullptr, false);
  EXPECT_EQ(summary["records"], 3);
  EXPECT_EQ(summary["filtered"], true);

  // To stdout as well; and a filter that matches nothing still says what
  // was filtered.
  ProcessResult none = server_->Cli({"audit", "export", "-o", "-", "--principal", "nobody"});
  ASSERT_EQ(none.exit_code, 0) << none.err;
  const std::vector<std::string> only = Lines(none.out);
  ASSERT_EQ(only.size(), 1u) << none.out;
  EXPECT_EQ(Json::parse(only[0])["keyward_export"]["filters"], (Json{{"principal", "nobody"}}));

  // The header cannot show which context values were asked for: no
  // --append for such a file.
  ProcessResult context = server_->Cli({"audit", "export", "-o", out, "--append", "--key", "k",
                                        "--op", "generate-data-key", "--context", "tenant=acme"});
  EXPECT_EQ(context.exit_code, 2);
  EXPECT_THAT(context.err, HasSubstr("cannot be continued"));

  // Appending with other filters would mislabel the file: refused.
  ASSERT_EQ(server_->Cli({"audit", "export", "-o", out, "--key", "k", "--op", "generate-data-key"})
                .exit_code,
            0);
  const std::vector<std::string> by_key = Lines(ReadFileOrDie(out));
  ASSERT_EQ(by_key.size(), 5u);
  ProcessResult other = server_->Cli({"audit", "export", "-o", out, "--append", "--key", "other"});
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_THAT(other.err, HasSubstr("mislabel"));
  ProcessResult whole = server_->Cli({"audit", "export", "-o", out, "--append"});
  EXPECT_EQ(whole.exit_code, 2);
  // With the same filters it continues, under the one header.
  DataKeys("k", 2);
  ProcessResult more = server_->Cli(
      {"audit", "export", "-o", out, "--append", "--key", "k", "--op", "generate-data-key"});
  ASSERT_EQ(more.exit_code, 0) << more.err;
  const std::vector<std::string> after = Lines(ReadFileOrDie(out));
  ASSERT_EQ(after.size(), 7u);
  EXPECT_EQ(after[0], by_key[0]);
  EXPECT_EQ(Count(after, "k", "generate-data-key"), 6u);
  for (size_t i = 2; i < after.size(); ++i) EXPECT_GT(Seq(after[i]), Seq(after[i - 1]));
}

TEST_F(AuditExportTest, UnfilteredExportIsTheStoredRecordsOnly) {
  DataKeys("k", 2);
  ProcessResult r = server_->Cli({"audit", "export", "-o", "-"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_FALSE(lines.empty());
  EXPECT_THAT(r.out, Not(HasSubstr("keyward_export")));
  const std::vector<std::string> stored = Lines(audit::testing::ReadLogText(server_->File("audit")));
  ASSERT_LE(lines.size(), stored.size());
  EXPECT_EQ(lines, std::vector<std::string>(stored.begin(), stored.begin() + lines.size()));
}

TEST_F(AuditExportTest, AppendCutsAnUnfinishedLineAndRefusesALogThatDoesNotContinueTheFile) {
  DataKeys("k", 2);
  const std::string out = Path("cut.jsonl");
  ASSERT_EQ(server_->Cli({"audit", "export", "-o", out}).exit_code, 0);
  const std::string good = ReadFileOrDie(out);
  const size_t n = Lines(good).size();
  // A write cut short by kill -9.
  WriteFileOrDie(out, good + "{\"seq\":" + std::to_string(n) + ",\"prev\":\"ab");
  ProcessResult r = server_->Cli({"audit", "export", "-o", out, "--append"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("unfinished line"));
  const std::vector<std::string> lines = Lines(ReadFileOrDie(out));
  ASSERT_GT(lines.size(), n);
  for (size_t i = 0; i < lines.size(); ++i) ASSERT_EQ(Seq(lines[i]), i);

  // A file whose last record is not the log's (edited, or another
  // replica's): its chain does not continue, and nothing is added.
  std::vector<std::string> edited = Lines(good);
  nlohmann::ordered_json last = nlohmann::ordered_json::parse(edited.back());
  last["latency_us"] = last["latency_us"].get<int64_t>() + 1;
  edited.back() = last.dump();
  std::string text;
  for (const auto& l : edited) absl::StrAppend(&text, l, "\n");
  WriteFileOrDie(out, text);
  ProcessResult bad = server_->Cli({"audit", "export", "-o", out, "--append"});
  EXPECT_EQ(bad.exit_code, 4) << bad.err;
  EXPECT_THAT(bad.err, HasSubstr("does not continue"));
  EXPECT_EQ(ReadFileOrDie(out), text);

  // --follow never overwrites an earlier export.
  ProcessResult exists = server_->Cli({"audit", "export", "-o", out, "--follow"});
  EXPECT_EQ(exists.exit_code, 2);
  EXPECT_THAT(exists.err, HasSubstr("--append"));
  EXPECT_EQ(ReadFileOrDie(out), text);
}

TEST_F(AuditExportTest, FollowRetriesWhileKeywarddIsDownAndNeedsOneServerOfSeveral) {
  const std::string out = Path("outage.jsonl");
  Child follow(Args({"audit", "export", "-o", out, "--follow", "--op", "generate-data-key"}),
               Path("outage.out"), Path("outage.err"));
  ASSERT_TRUE(WaitFor([&] { return !Lines(ReadOrEmpty(out)).empty(); })) << follow.err();
  EXPECT_EQ(server_->Stop(), 0);
  ASSERT_TRUE(WaitFor([&] {
    return follow.err().find("cannot read the audit log") != std::string::npos;
  })) << follow.err();
  KW_ASSERT_OK(server_->Start());
  // The SDK connections opened before the restart reconnect by themselves.
  DataKeys("k", 2);
  ASSERT_TRUE(WaitFor([&] { return Count(Lines(ReadOrEmpty(out)), "k", "generate-data-key") == 2; }))
      << follow.err();
  EXPECT_THAT(follow.err(), HasSubstr("reading the audit log again"));
  EXPECT_EQ(follow.Stop(SIGTERM), 0) << follow.err();
  const std::vector<std::string> lines = Lines(ReadFileOrDie(out));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_TRUE(Json::parse(lines[0]).contains("keyward_export"));

  // Each replica keeps its own log: with several servers, name one.
  KW_ASSERT_OK_AND_ASSIGN(std::string two, server_->WriteClientConfig(
                                               "two", "admin", {server_.get(), server_.get()}));
  ProcessResult r = server_->Cli({"audit", "export", "-o", "-"}, two);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--server"));
  ProcessResult one = server_->Cli(
      {"audit", "export", "-o", "-", "--server", absl::StrCat("127.0.0.1:", server_->port())}, two);
  EXPECT_EQ(one.exit_code, 0) << one.err;
  EXPECT_FALSE(one.out.empty());
}

}  // namespace
}  // namespace keyward
