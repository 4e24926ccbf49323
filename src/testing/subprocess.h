// Runs a program for end-to-end tests and collects its exit status and
// output.
#ifndef KEYWARD_TESTING_SUBPROCESS_H_
#define KEYWARD_TESTING_SUBPROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace keyward::testing {

struct ProcessResult {
  int exit_code = -1;       // valid when !signaled
  bool signaled = false;    // died by a signal
  int signal = 0;
  std::string out, err;
};

// Runs `argv` with `stdin_data` on its standard input and waits for it.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const std::string& stdin_data = "",
                         const std::vector<std::string>& extra_env = {});

// Starts `argv` (argv[0] a path) in the background with its output to
// `stdout_path` (stderr to /dev/null); returns its pid, for crash tests that
// kill it mid-run.  Flushes this process's stdio first, so the child does
// not repeat what was buffered.
pid_t SpawnQuietly(const std::vector<std::string>& argv,
                   const std::string& stdout_path = "/dev/null");
// SIGKILLs `pid` if it is still running, and reaps it either way.  True
// when it was still running (killed mid-run).
bool KillIfRunning(pid_t pid);

// A fresh directory under /tmp, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string ReadFileOrDie(const std::string& path);
void WriteFileOrDie(const std::string& path, const std::string& data);
// Names in a directory (no "." and "..").
std::vector<std::string> ListDir(const std::string& path);

}  // namespace keyward::testing

#endif  // KEYWARD_TESTING_SUBPROCESS_H_
