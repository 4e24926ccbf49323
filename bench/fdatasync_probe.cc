// The floor under one audited call: how long one durable append takes on
// the disk that holds the audit log.  Appends a record-sized line to a new
// file in DIR and fdatasyncs it, as the audit writer does for a batch of
// one, COUNT times, and prints the latency percentiles as one JSON object.
//   fdatasync_probe DIR [COUNT] [RECORD_BYTES]
// The file grows as the log does, so each fdatasync also writes the size
// change (the metadata an append needs), never more.  The file is removed.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) {
    std::fprintf(stderr, "usage: fdatasync_probe DIR [COUNT] [RECORD_BYTES]\n");
    return 2;
  }
  const std::string path = std::string(argv[1]) + "/fdatasync-probe.tmp";
  const int count = argc > 2 ? std::atoi(argv[2]) : 2000;
  const int bytes = argc > 3 ? std::atoi(argv[3]) : 100;
  if (count < 10 || bytes < 1) {
    std::fprintf(stderr, "fdatasync_probe: COUNT must be >= 10 and RECORD_BYTES >= 1\n");
    return 2;
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror(path.c_str());
    return 1;
  }
  const std::string record(static_cast<size_t>(bytes - 1), 'r');
  const std::string line = record + "\n";
  std::vector<double> us;
  us.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
        ::fdatasync(fd) != 0) {
      std::perror("write/fdatasync");
      ::close(fd);
      ::unlink(path.c_str());
      return 1;
    }
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                     .count());
  }
  ::close(fd);
  ::unlink(path.c_str());
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double v : us) sum += v;
  auto pct = [&](int p) { return us[std::min(us.size() - 1, us.size() * p / 100)]; };
  std::printf(
      "{\"dir\": \"%s\", \"count\": %d, \"record_bytes\": %d, \"mean_us\": %.1f, "
      "\"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f}\n",
      argv[1], count, bytes, sum / us.size(), pct(50), pct(90), pct(99));
  return 0;
}
