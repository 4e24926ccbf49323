// Prometheus metrics for keywardd: counters, gauges and histograms with
// labels, and their text exposition (format 0.0.4) for /metrics.
//
// One process-wide registry (Global()) so that every layer — the KMS core,
// the HSM, the audit log, the server — can record without plumbing.  Metric
// families are created once (at first use) and live for the process; a
// child per label set is created on first use and then updated lock-free.
//
// Cardinality is the caller's responsibility: label values must come from
// bounded sets (RPC names, result codes, key names allowed by
// KeyLabel()).  Never pass an encryption context value, a principal or
// anything secret as a label.
#ifndef KEYWARD_METRICS_METRICS_H_
#define KEYWARD_METRICS_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace keyward::metrics {

using LabelValues = std::vector<std::string>;

class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double d);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  // `bounds`: ascending upper bounds, without +Inf.
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  void ObserveDuration(absl::Duration d) { Observe(absl::ToDoubleSeconds(d)); }

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // per bound, then +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Read() const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

// Latency buckets from 50 µs to 10 s.
const std::vector<double>& LatencyBuckets();

// A metric family: one child per label set.
template <typename T>
class Family {
 public:
  Family(std::vector<std::string> label_names, std::function<std::unique_ptr<T>()> make)
      : label_names_(std::move(label_names)), make_(std::move(make)) {}
  // The child for `values` (one per label name), created on first use.
  T& With(const LabelValues& values) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = children_.find(values);
    if (it == children_.end()) it = children_.emplace(values, make_()).first;
    return *it->second;
  }
  const std::vector<std::string>& label_names() const { return label_names_; }
  template <typename F>
  void ForEach(F f) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [values, child] : children_) f(values, *child);
  }

 private:
  const std::vector<std::string> label_names_;
  const std::function<std::unique_ptr<T>()> make_;
  mutable std::mutex mu_;
  std::map<LabelValues, std::unique_ptr<T>> children_;
};

// Values computed at scrape time (process RSS, queue depth, key ages).
struct Sample {
  LabelValues labels;
  double value = 0;
};
using Collector = std::function<std::vector<Sample>()>;

class Registry {
 public:
  // Each returns the family registered under `name`, creating it on the
  // first call (later calls must agree on the kind and labels).
  Family<Counter>& CounterFamily(const std::string& name, const std::string& help,
                                 std::vector<std::string> labels = {});
  Family<Gauge>& GaugeFamily(const std::string& name, const std::string& help,
                             std::vector<std::string> labels = {});
  Family<Histogram>& HistogramFamily(const std::string& name, const std::string& help,
                                     std::vector<std::string> labels = {},
                                     const std::vector<double>& bounds = LatencyBuckets());
  // A gauge whose samples `collect` returns at each scrape.  Replaces an
  // earlier collector of the same name.
  void SetCollector(const std::string& name, const std::string& help,
                    std::vector<std::string> labels, Collector collect);
  void RemoveCollector(const std::string& name);

  // The text exposition format, families sorted by name.
  std::string Render() const;

 private:
  struct Entry {
    std::string help;
    std::string type;  // counter, gauge, histogram
    std::vector<std::string> labels;
    std::unique_ptr<Family<Counter>> counter;
    std::unique_ptr<Family<Gauge>> gauge;
    std::unique_ptr<Family<Histogram>> histogram;
    Collector collect;
  };
  Entry& Find(const std::string& name, const std::string& help, const char* type,
              std::vector<std::string> labels);
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

// The process-wide registry.
Registry& Global();

// Key names that may appear as label values (globs, `*` matching any run of
// characters including `/`); set once at startup from `metrics.key_labels`.
void SetKeyLabelGlobs(std::vector<std::string> globs);
// `name` when it matches a configured glob, else "other".
std::string KeyLabel(absl::string_view name);

// Escapes a label value for the exposition format.
std::string EscapeLabelValue(absl::string_view v);

// process_resident_memory_bytes, process_open_fds, process_threads (from
// /proc/self), registered as collectors.
void RegisterProcessCollectors(Registry& registry);

// Measures a duration into a histogram at the end of a scope.
class ScopedTimer {
 public:
  explicit ScopedTimer(Histogram& h) : h_(h), start_(absl::Now()) {}
  ~ScopedTimer() { h_.ObserveDuration(absl::Now() - start_); }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  Histogram& h_;
  const absl::Time start_;
};

}  // namespace keyward::metrics

#endif  // KEYWARD_METRICS_METRICS_H_
