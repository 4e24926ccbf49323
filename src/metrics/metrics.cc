#include "metrics/metrics.h"

#include <dirent.h>
#include <fnmatch.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <shared_mutex>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace keyward::metrics {
namespace {

void AtomicAdd(std::atomic<double>& a, double d) {
  double old = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(old, old + d, std::memory_order_relaxed)) {
  }
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(v));
  }
  // The shortest form that reads back as the same double.
  char buf[64];
  for (int precision = 15; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

// {a="x",b="y"} (plus one extra pair, for histogram buckets); empty when
// there are no labels.
std::string LabelSet(const std::vector<std::string>& names, const LabelValues& values,
                     absl::string_view extra_name = "", absl::string_view extra_value = "") {
  std::string out;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    absl::StrAppend(&out, out.empty() ? "" : ",", names[i], "=\"",
                    EscapeLabelValue(values[i]), "\"");
  }
  if (!extra_name.empty()) {
    absl::StrAppend(&out, out.empty() ? "" : ",", extra_name, "=\"", extra_value, "\"");
  }
  return out.empty() ? "" : absl::StrCat("{", out, "}");
}

std::string EscapeHelp(absl::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::shared_mutex key_globs_mu;
std::vector<std::string>* key_globs = new std::vector<std::string>();

}  // namespace

void Gauge::Add(double d) { AtomicAdd(value_, d); }

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(sum_, v);
  count_.fetch_add(1, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.bounds = bounds_;
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  // The count is the +Inf bucket, so that a scrape racing an Observe is
  // still self-consistent.
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

const std::vector<double>& LatencyBuckets() {
  static const auto* b = new std::vector<double>{
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
      0.01,    0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5, 5, 10};
  return *b;
}

Registry::Entry& Registry::Find(const std::string& name, const std::string& help,
                                const char* type, std::vector<std::string> labels) {
  auto it = entries_.find(name);
  if (it != entries_.end()) return it->second;
  Entry& e = entries_[name];
  e.help = help;
  e.type = type;
  e.labels = std::move(labels);
  return e;
}

Family<Counter>& Registry::CounterFamily(const std::string& name, const std::string& help,
                                         std::vector<std::string> labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = Find(name, help, "counter", labels);
  if (!e.counter) {
    e.counter = std::make_unique<Family<Counter>>(
        std::move(labels), [] { return std::make_unique<Counter>(); });
  }
  return *e.counter;
}

Family<Gauge>& Registry::GaugeFamily(const std::string& name, const std::string& help,
                                     std::vector<std::string> labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = Find(name, help, "gauge", labels);
  if (!e.gauge) {
    e.gauge = std::make_unique<Family<Gauge>>(std::move(labels),
                                              [] { return std::make_unique<Gauge>(); });
  }
  return *e.gauge;
}

Family<Histogram>& Registry::HistogramFamily(const std::string& name, const std::string& help,
                                             std::vector<std::string> labels,
                                             const std::vector<double>& bounds) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = Find(name, help, "histogram", labels);
  if (!e.histogram) {
    e.histogram = std::make_unique<Family<Histogram>>(
        std::move(labels), [bounds] { return std::make_unique<Histogram>(bounds); });
  }
  return *e.histogram;
}

void Registry::SetCollector(const std::string& name, const std::string& help,
                            std::vector<std::string> labels, Collector collect) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = Find(name, help, "gauge", labels);
  e.labels = std::move(labels);
  e.collect = std::move(collect);
}

void Registry::RemoveCollector(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(name);
  if (it != entries_.end() && it->second.collect) entries_.erase(it);
}

std::string Registry::Render() const {
  // Copied under the lock: collectors may take their own locks (the key
  // store) and are called without ours, and a collector's entry may be
  // removed meanwhile.  The families themselves are never removed.
  struct View {
    std::string name, help, type;
    std::vector<std::string> labels;
    const Family<Counter>* counter = nullptr;
    const Family<Gauge>* gauge = nullptr;
    const Family<Histogram>* histogram = nullptr;
    Collector collect;
  };
  std::vector<View> views;
  {
    std::lock_guard<std::mutex> lock(mu_);
    views.reserve(entries_.size());
    for (const auto& [name, e] : entries_) {
      views.push_back({name, e.help, e.type, e.labels, e.counter.get(), e.gauge.get(),
                       e.histogram.get(), e.collect});
    }
  }
  std::string out;
  for (const View& e : views) {
    const std::string& name = e.name;
    std::string body;
    if (e.counter != nullptr) {
      e.counter->ForEach([&](const LabelValues& v, const Counter& c) {
        absl::StrAppend(&body, name, LabelSet(e.labels, v), " ", c.value(), "\n");
      });
    } else if (e.gauge != nullptr) {
      e.gauge->ForEach([&](const LabelValues& v, const Gauge& g) {
        absl::StrAppend(&body, name, LabelSet(e.labels, v), " ", FormatValue(g.value()), "\n");
      });
    } else if (e.histogram != nullptr) {
      e.histogram->ForEach([&](const LabelValues& v, const Histogram& h) {
        const Histogram::Snapshot s = h.Read();
        for (size_t i = 0; i < s.cumulative.size(); ++i) {
          const std::string le = i < s.bounds.size() ? FormatValue(s.bounds[i]) : "+Inf";
          absl::StrAppend(&body, name, "_bucket", LabelSet(e.labels, v, "le", le), " ",
                          s.cumulative[i], "\n");
        }
        absl::StrAppend(&body, name, "_sum", LabelSet(e.labels, v), " ", FormatValue(s.sum),
                        "\n");
        absl::StrAppend(&body, name, "_count", LabelSet(e.labels, v), " ", s.count, "\n");
      });
    } else if (e.collect) {
      for (const Sample& sample : e.collect()) {
        absl::StrAppend(&body, name, LabelSet(e.labels, sample.labels), " ",
                        FormatValue(sample.value), "\n");
      }
    }
    absl::StrAppend(&out, "# HELP ", name, " ", EscapeHelp(e.help), "\n# TYPE ", name, " ",
                    e.type, "\n", body);
  }
  return out;
}

Registry& Global() {
  static auto* r = new Registry();
  return *r;
}

void SetKeyLabelGlobs(std::vector<std::string> globs) {
  std::unique_lock<std::shared_mutex> lock(key_globs_mu);
  *key_globs = std::move(globs);
}

std::string KeyLabel(absl::string_view name) {
  const std::string n(name);
  std::shared_lock<std::shared_mutex> lock(key_globs_mu);
  for (const std::string& g : *key_globs) {
    if (fnmatch(g.c_str(), n.c_str(), 0) == 0) return n;
  }
  return "other";
}

std::string EscapeLabelValue(absl::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void RegisterProcessCollectors(Registry& registry) {
  registry.SetCollector("process_resident_memory_bytes", "Resident memory size in bytes.", {},
                        [] {
                          std::ifstream statm("/proc/self/statm");
                          long pages = 0, resident = 0;
                          statm >> pages >> resident;
                          return std::vector<Sample>{
                              {{}, static_cast<double>(resident) * sysconf(_SC_PAGESIZE)}};
                        });
  registry.SetCollector("process_open_fds", "Number of open file descriptors.", {}, [] {
    double n = 0;
    if (DIR* d = opendir("/proc/self/fd")) {
      while (dirent* e = readdir(d)) {
        if (e->d_name[0] != '.') ++n;
      }
      closedir(d);
      --n;  // the directory stream's own descriptor
    }
    return std::vector<Sample>{{{}, n}};
  });
  registry.SetCollector("process_threads", "Number of OS threads in the process.", {}, [] {
    std::ifstream status("/proc/self/status");
    std::string line;
    double n = 0;
    while (std::getline(status, line)) {
      if (line.rfind("Threads:", 0) == 0) n = std::stod(line.substr(8));
    }
    return std::vector<Sample>{{{}, n}};
  });
}

}  // namespace keyward::metrics
