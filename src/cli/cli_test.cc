// End-to-end tests of the `keyward` binary's offline commands: real
// processes, real files, exit codes and atomic outputs.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "appdb/database.h"
#include "audit/audit_log.h"
#include "audit/postgres_storage.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/postgres_server.h"
#include "testing/software_root_of_trust.h"
#include "testing/subprocess.h"

namespace keyward {
namespace {

using ::keyward::testing::ListDir;
using ::keyward::testing::ProcessResult;
using ::keyward::testing::ReadFileOrDie;
using ::keyward::testing::RunProcess;
using ::keyward::testing::TempDir;
using ::keyward::testing::WriteFileOrDie;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

ProcessResult Keyward(std::vector<std::string> args,
                      const std::string& stdin_data = "") {
  args.insert(args.begin(), KEYWARD_CLI_PATH);
  ProcessResult r = RunProcess(args, stdin_data);
  EXPECT_FALSE(r.signaled) << "keyward died by signal " << r.signal;
  return r;
}

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7919) >> 3);
  return s;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::mkdir(keys_dir().c_str(), 0700);
    ::mkdir(data_dir().c_str(), 0700);
    ProcessResult r = Keyward({"raw-key", "generate", key()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::string keys_dir() const { return dir_.File("keys"); }
  std::string data_dir() const { return dir_.File("data"); }
  std::string key() const { return keys_dir() + "/main.key"; }
  std::string data(const std::string& name) const {
    return data_dir() + "/" + name;
  }
  TempDir dir_;
};

TEST_F(CliTest, RawKeyGenerateCreatesA0600FileAndNeverOverwrites) {
  struct stat st;
  ASSERT_EQ(::stat(key().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string before = ReadFileOrDie(key());
  ProcessResult again = Keyward({"raw-key", "generate", key()});
  EXPECT_EQ(again.exit_code, 6);
  EXPECT_THAT(again.err, HasSubstr("already exists"));
  EXPECT_EQ(ReadFileOrDie(key()), before);
}

TEST_F(CliTest, FileRoundTripWithContext) {
  const std::string plaintext = Pattern(300'000);
  WriteFileOrDie(data("in.bin"), plaintext);
  ProcessResult enc = Keyward({"encrypt", "--raw-key", key(), "--context",
                               "tenant=acme", "--frame-size", "4K", "-o",
                               data("in.kw"), data("in.bin")});
  ASSERT_EQ(enc.exit_code, 0) << enc.err;
  ProcessResult dec = Keyward({"decrypt", "--raw-key", key(), "--context",
                               "tenant=acme", "-o", data("out.bin"),
                               data("in.kw")});
  ASSERT_EQ(dec.exit_code, 0) << dec.err;
  EXPECT_EQ(ReadFileOrDie(data("out.bin")), plaintext);
  struct stat st;
  ASSERT_EQ(::stat(data("out.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "plaintext files are private";

  ProcessResult wrong = Keyward({"decrypt", "--raw-key", key(), "--context",
                                 "tenant=globex", data("in.kw")});
  EXPECT_EQ(wrong.exit_code, 5);
  EXPECT_THAT(wrong.err, HasSubstr("encryption context mismatch"));
  EXPECT_THAT(wrong.out, IsEmpty());
}

TEST_F(CliTest, StdinAndStdoutWithDash) {
  ProcessResult enc =
      Keyward({"encrypt", "--raw-key", key(), "-"}, "piped secret");
  ASSERT_EQ(enc.exit_code, 0) << enc.err;
  ProcessResult dec =
      Keyward({"decrypt", "--raw-key", key(), "-o", "-", "-"}, enc.out);
  ASSERT_EQ(dec.exit_code, 0) << dec.err;
  EXPECT_EQ(dec.out, "piped secret");
}

TEST_F(CliTest, FailedDecryptLeavesNoOutputAndNoPartialPlaintext) {
  WriteFileOrDie(data("in.bin"), Pattern(50'000));
  ASSERT_EQ(Keyward({"encrypt", "--raw-key", key(), "--frame-size", "1K", "-o",
                     data("in.kw"), data("in.bin")})
                .exit_code,
            0);
  std::string message = ReadFileOrDie(data("in.kw"));
  std::string tampered = message;
  tampered[message.size() - 100] ^= 1;  // inside the last frames
  WriteFileOrDie(data("bad.kw"), tampered);
  WriteFileOrDie(data("short.kw"), message.substr(0, message.size() - 10));

  for (const char* bad : {"bad.kw", "short.kw"}) {
    ProcessResult to_file =
        Keyward({"decrypt", "--raw-key", key(), "-o", data("out.bin"), data(bad)});
    EXPECT_EQ(to_file.exit_code, 4) << bad << ": " << to_file.err;
    ProcessResult to_stdout = Keyward({"decrypt", "--raw-key", key(), data(bad)});
    EXPECT_EQ(to_stdout.exit_code, 4);
    EXPECT_THAT(to_stdout.out, IsEmpty()) << "plaintext released for " << bad;
  }
  // Neither the output nor a temporary file was left behind.
  std::vector<std::string> names = ListDir(data_dir());
  std::sort(names.begin(), names.end());
  EXPECT_THAT(names, ::testing::ElementsAre("bad.kw", "in.bin", "in.kw",
                                            "short.kw"));
  // --stream releases verified frames, then still fails.
  ProcessResult streamed = Keyward(
      {"decrypt", "--raw-key", key(), "--stream", data("bad.kw")});
  EXPECT_EQ(streamed.exit_code, 4);
  EXPECT_EQ(streamed.out, Pattern(50'000).substr(0, streamed.out.size()));
}

TEST_F(CliTest, ExitCodesForEachKindOfFailure) {
  WriteFileOrDie(data("junk"), "definitely not a message");
  ProcessResult junk = Keyward({"decrypt", "--raw-key", key(), data("junk")});
  EXPECT_EQ(junk.exit_code, 3);
  EXPECT_THAT(junk.err, HasSubstr("not a Keyward message"));
  EXPECT_EQ(junk.err.find('\n'), junk.err.size() - 1) << "one line";

  ProcessResult missing =
      Keyward({"decrypt", "--raw-key", key(), data("nope")});
  EXPECT_EQ(missing.exit_code, 6);

  ASSERT_EQ(Keyward({"raw-key", "generate", keys_dir() + "/other.key"}).exit_code,
            0);
  ProcessResult enc = Keyward({"encrypt", "--raw-key", key(), "-"}, "x");
  ASSERT_EQ(enc.exit_code, 0);
  WriteFileOrDie(data("m.kw"), enc.out);
  ProcessResult other = Keyward(
      {"decrypt", "--raw-key", keys_dir() + "/other.key", data("m.kw")});
  EXPECT_EQ(other.exit_code, 5);
  EXPECT_THAT(other.err, HasSubstr("could unwrap"));

  EXPECT_EQ(Keyward({"decrypt"}).exit_code, 2);
  EXPECT_EQ(Keyward({"encrypt", "--raw-key", key(), "--context", "novalue",
                     "-"}, "x").exit_code,
            2);
  EXPECT_EQ(Keyward({"no-such-command"}).exit_code, 2);
}

TEST_F(CliTest, RefusesToWriteCiphertextBesideTheKey) {
  WriteFileOrDie(data("in.bin"), "x");
  ProcessResult r = Keyward({"encrypt", "--raw-key", key(), "-o",
                             keys_dir() + "/in.kw", data("in.bin")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("keys never sit beside the data"));
  EXPECT_THAT(ListDir(keys_dir()), ::testing::ElementsAre("main.key"));
}

TEST_F(CliTest, InspectReportsWithoutKeys) {
  ProcessResult enc = Keyward({"encrypt", "--raw-key", key(), "--context",
                               "tenant=acme", "--suite", "chacha20-poly1305",
                               "-"},
                              Pattern(1000));
  ASSERT_EQ(enc.exit_code, 0);
  ProcessResult r = Keyward({"inspect", "--json", "-"}, enc.out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["suite"], "CHACHA20-POLY1305-HKDF-SHA256-COMMIT");
  EXPECT_EQ(j["environment"], "offline");
  EXPECT_EQ(j["context"]["tenant"], "acme");
  EXPECT_EQ(j["plaintext_bytes"], 1000);
  EXPECT_EQ(j["total_bytes"], enc.out.size());
  ProcessResult text = Keyward({"inspect", "-"}, enc.out);
  EXPECT_THAT(text.out, HasSubstr("tenant=acme"));
}

TEST_F(CliTest, HelpOnEveryCommand) {
  for (std::vector<std::string> cmd :
       {std::vector<std::string>{"--help"}, {"version", "--help"},
        {"raw-key", "--help"}, {"raw-key", "generate", "--help"},
        {"encrypt", "--help"}, {"decrypt", "--help"}, {"inspect", "--help"}}) {
    ProcessResult r = Keyward(cmd);
    EXPECT_EQ(r.exit_code, 0) << cmd[0];
    EXPECT_THAT(r.out, HasSubstr("Usage")) << cmd[0];
  }
  EXPECT_THAT(Keyward({"raw-key", "generate", "--help"}).out,
              HasSubstr("tests and offline use"));
}

// SIGTERM while decrypting from a pipe: keyward exits with a code (not by
// the signal) and removes its temporary output.
TEST_F(CliTest, InterruptedDecryptLeavesNoFile) {
  WriteFileOrDie(data("in.bin"), Pattern(200'000));
  ASSERT_EQ(Keyward({"encrypt", "--raw-key", key(), "--frame-size", "1K", "-o",
                     data("in.kw"), data("in.bin")})
                .exit_code,
            0);
  const std::string message = ReadFileOrDie(data("in.kw"));
  const std::string fifo = dir_.File("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl(KEYWARD_CLI_PATH, KEYWARD_CLI_PATH, "decrypt", "--raw-key",
            key().c_str(), "-o", data("out.bin").c_str(), fifo.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int fd = ::open(fifo.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, message.data(), message.size() / 2),
            static_cast<ssize_t>(message.size() / 2));
  // Let it read and decrypt what it was given, then interrupt.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(pid, SIGTERM);
  ::close(fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status)) << "keyward died by a signal";
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM);
  for (const auto& n : ListDir(data_dir())) {
    EXPECT_EQ(n.find(".keyward-tmp-"), std::string::npos) << n;
    EXPECT_NE(n, "out.bin");
  }
}

// kill -9 cannot be caught: the output must be invisible while written.
TEST_F(CliTest, KillNineDuringDecryptLeavesNothingBehind) {
  WriteFileOrDie(data("in.bin"), Pattern(200'000));
  ASSERT_EQ(Keyward({"encrypt", "--raw-key", key(), "--frame-size", "1K", "-o",
                     data("in.kw"), data("in.bin")})
                .exit_code,
            0);
  const std::string message = ReadFileOrDie(data("in.kw"));
  const std::string fifo = dir_.File("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl(KEYWARD_CLI_PATH, KEYWARD_CLI_PATH, "decrypt", "--raw-key", key().c_str(), "-o",
            data("out.bin").c_str(), fifo.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int fd = ::open(fifo.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, message.data(), message.size() / 2),
            static_cast<ssize_t>(message.size() / 2));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(pid, SIGKILL);
  ::close(fd);
  ::waitpid(pid, nullptr, 0);
  EXPECT_THAT(ListDir(data_dir()), ::testing::UnorderedElementsAre("in.bin", "in.kw"));
}

// An output path holding anything but a regular file is refused and left
// as it was; so is the input file itself.
TEST_F(CliTest, OutputsNeverReplaceDevicesFifosLinksOrTheInput) {
  WriteFileOrDie(data("in.bin"), "secret");
  ASSERT_EQ(Keyward({"encrypt", "--raw-key", key(), "-o", data("in.kw"), data("in.bin")})
                .exit_code,
            0);
  // /dev/null: as root, replacing it would leave a file of plaintext there.
  ProcessResult null_out =
      Keyward({"decrypt", "--raw-key", key(), "-o", "/dev/null", data("in.kw")});
  EXPECT_EQ(null_out.exit_code, 2) << null_out.err;
  EXPECT_THAT(null_out.err, HasSubstr("character device"));
  struct stat st;
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  // A FIFO.
  ASSERT_EQ(::mkfifo(data("pipe").c_str(), 0600), 0);
  EXPECT_EQ(Keyward({"decrypt", "--raw-key", key(), "-o", data("pipe"), data("in.kw")}).exit_code,
            2);
  ASSERT_EQ(::lstat(data("pipe").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  // A symbolic link (to a file elsewhere that must not change).
  WriteFileOrDie(dir_.File("elsewhere"), "untouched");
  ASSERT_EQ(::symlink(dir_.File("elsewhere").c_str(), data("link").c_str()), 0);
  ProcessResult link_out =
      Keyward({"decrypt", "--raw-key", key(), "-o", data("link"), data("in.kw")});
  EXPECT_EQ(link_out.exit_code, 2);
  EXPECT_THAT(link_out.err, HasSubstr("symbolic link"));
  EXPECT_EQ(ReadFileOrDie(dir_.File("elsewhere")), "untouched");
  // A directory.
  EXPECT_EQ(Keyward({"decrypt", "--raw-key", key(), "-o", data_dir(), data("in.kw")}).exit_code,
            2);
  // The input itself.
  ProcessResult same = Keyward({"decrypt", "--raw-key", key(), "-o", data("in.kw"), data("in.kw")});
  EXPECT_EQ(same.exit_code, 2);
  EXPECT_THAT(same.err, HasSubstr("is the input file"));
  EXPECT_EQ(Keyward({"encrypt", "--raw-key", key(), "-o", data("in.bin"), data("in.bin")})
                .exit_code,
            2);
  EXPECT_EQ(ReadFileOrDie(data("in.bin")), "secret");
  // A regular file is replaced as before, and decrypted output is 0600.
  WriteFileOrDie(data("out.bin"), "old");
  ASSERT_EQ(Keyward({"decrypt", "--raw-key", key(), "-o", data("out.bin"), data("in.kw")})
                .exit_code,
            0);
  EXPECT_EQ(ReadFileOrDie(data("out.bin")), "secret");
  ASSERT_EQ(::stat(data("out.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// `audit verify --db`: every replica's log in PostgreSQL, one report each,
// exit 4 when one was tampered with.
TEST(AuditVerifyDbTest, ChecksEveryReplicasLogAndNamesTheTamperedOne) {
  auto server = testing::SharedPostgresServer();
  ASSERT_TRUE(server.ok()) << server.status();
  auto url = (*server)->CreateDatabase("cli_audit_verify");
  ASSERT_TRUE(url.ok()) << url.status();
  hsm::testing::SoftwareRootOfTrust signer;
  for (const char* id : {"kw-1", "kw-2"}) {
    auto storage = audit::OpenPostgresAuditStorage({*url, id, "dev"});
    ASSERT_TRUE(storage.ok()) << storage.status();
    audit::AuditLogOptions o;
    o.storage = *storage;
    o.environment = "dev";
    o.signer = &signer;
    o.signing_key_label = "keyward-audit/dev";
    o.checkpoint_interval = absl::ZeroDuration();
    auto log = audit::AuditLog::Open(std::move(o));
    ASSERT_TRUE(log.ok()) << log.status();
    for (int i = 0; i < 5; ++i) {
      audit::AuditRecord r;
      r.time = absl::FromUnixSeconds(1'800'000'000 + i);
      r.operation = "decrypt";
      r.decision = "allow";
      r.result = "OK";
      ASSERT_TRUE((*log)->Append(r).ok());
    }
  }  // closing signs a checkpoint of each
  TempDir dir;
  WriteFileOrDie(dir.File("key.pem"), *signer.GetOrCreateSigningKey("keyward-audit/dev"));
  const std::vector<std::string> verify = {"audit", "verify", "--db", *url, "--checkpoint-key",
                                           dir.File("key.pem"), "--json"};
  ProcessResult ok = Keyward(verify);
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto j = nlohmann::json::parse(ok.out);
  EXPECT_TRUE(j["ok"].get<bool>());
  ASSERT_EQ(j["logs"].size(), 2u);
  EXPECT_EQ(j["logs"][0]["log_id"], "kw-1");
  EXPECT_EQ(j["logs"][1]["records"], 5);

  auto db = appdb::Database::Open(*url);
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_TRUE((*db)->Execute("UPDATE keyward_audit_records SET line = replace(line, 'decrypt', "
                             "'encrypt') WHERE log_id = 'kw-2' AND idx = 2",
                             {})
                  .ok());
  ProcessResult bad = Keyward(verify);
  EXPECT_EQ(bad.exit_code, 4) << bad.err;
  j = nlohmann::json::parse(bad.out);
  EXPECT_FALSE(j["ok"].get<bool>());
  EXPECT_TRUE(j["logs"][0]["ok"].get<bool>());
  EXPECT_FALSE(j["logs"][1]["ok"].get<bool>());
  EXPECT_EQ(j["logs"][1]["first_bad_record"], 2);
  EXPECT_THAT(bad.err, HasSubstr("log kw-2"));
  // Only the intact one.
  std::vector<std::string> one = verify;
  one.insert(one.end(), {"--log-id", "kw-1"});
  EXPECT_EQ(Keyward(one).exit_code, 0);
  // People's output names each log.
  ProcessResult text = Keyward({"audit", "verify", "--db", *url, "--checkpoint-key",
                                dir.File("key.pem")});
  EXPECT_EQ(text.exit_code, 4);
  EXPECT_THAT(text.out, HasSubstr("audit log kw-1: OK"));
  EXPECT_THAT(text.out, HasSubstr("audit log kw-2: FAILED"));
  // Usage errors: no key to trust; a directory and a database at once.
  EXPECT_EQ(Keyward({"audit", "verify", "--db", *url}).exit_code, 2);
  EXPECT_EQ(Keyward({"audit", "verify", "--db", *url, "--log", dir.path(), "--checkpoint-key",
                     dir.File("key.pem")})
                .exit_code,
            2);
}

}  // namespace
}  // namespace keyward
