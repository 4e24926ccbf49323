#include "metrics/metrics.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace keyward::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsTest, RendersCountersGaugesAndHistograms) {
  Registry r;
  auto& requests = r.CounterFamily("t_requests_total", "Requests.", {"method", "code"});
  requests.With({"Decrypt", "OK"}).Inc();
  requests.With({"Decrypt", "OK"}).Inc(2);
  requests.With({"Encrypt", "PERMISSION_DENIED"}).Inc();
  r.GaugeFamily("t_depth", "Depth.").With({}).Set(7);
  auto& h = r.HistogramFamily("t_seconds", "Latency.", {"method"}, {0.001, 0.01});
  h.With({"Decrypt"}).Observe(0.0005);
  h.With({"Decrypt"}).Observe(0.005);
  h.With({"Decrypt"}).Observe(5);
  const std::string out = r.Render();
  EXPECT_THAT(out, HasSubstr("# TYPE t_requests_total counter\n"));
  EXPECT_THAT(out, HasSubstr("t_requests_total{method=\"Decrypt\",code=\"OK\"} 3\n"));
  EXPECT_THAT(out, HasSubstr("t_requests_total{method=\"Encrypt\",code=\"PERMISSION_DENIED\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("t_depth 7\n"));
  EXPECT_THAT(out, HasSubstr("t_seconds_bucket{method=\"Decrypt\",le=\"0.001\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("t_seconds_bucket{method=\"Decrypt\",le=\"0.01\"} 2\n"));
  EXPECT_THAT(out, HasSubstr("t_seconds_bucket{method=\"Decrypt\",le=\"+Inf\"} 3\n"));
  EXPECT_THAT(out, HasSubstr("t_seconds_count{method=\"Decrypt\"} 3\n"));
  EXPECT_THAT(out, HasSubstr("t_seconds_sum{method=\"Decrypt\"} 5.0055"));
}

TEST(MetricsTest, EscapesLabelValuesAndHelp) {
  Registry r;
  r.CounterFamily("t_total", "A \\ help\nline.", {"k"}).With({"a\"b\\c\nd"}).Inc();
  const std::string out = r.Render();
  EXPECT_THAT(out, HasSubstr("# HELP t_total A \\\\ help\\nline.\n"));
  EXPECT_THAT(out, HasSubstr("t_total{k=\"a\\\"b\\\\c\\nd\"} 1\n"));
}

TEST(MetricsTest, CollectorsRunAtScrapeTime) {
  Registry r;
  int calls = 0;
  r.SetCollector("t_age_seconds", "Age.", {"key"}, [&] {
    ++calls;
    return std::vector<Sample>{{{"payments/cards"}, 42.5}};
  });
  EXPECT_EQ(calls, 0);
  EXPECT_THAT(r.Render(), HasSubstr("t_age_seconds{key=\"payments/cards\"} 42.5\n"));
  EXPECT_EQ(calls, 1);
  r.RemoveCollector("t_age_seconds");
  EXPECT_THAT(r.Render(), Not(HasSubstr("t_age_seconds")));
}

TEST(MetricsTest, KeyNamesAreLabelsOnlyWhenConfigured) {
  SetKeyLabelGlobs({});
  EXPECT_EQ(KeyLabel("payments/cards"), "other");
  SetKeyLabelGlobs({"payments/*", "hr"});
  EXPECT_EQ(KeyLabel("payments/cards"), "payments/cards");
  EXPECT_EQ(KeyLabel("payments/eu/iban"), "payments/eu/iban");
  EXPECT_EQ(KeyLabel("hr"), "hr");
  EXPECT_EQ(KeyLabel("hr/salaries"), "other");
  SetKeyLabelGlobs({});
}

TEST(MetricsTest, ProcessCollectorsReadProc) {
  Registry r;
  RegisterProcessCollectors(r);
  const std::string out = r.Render();
  EXPECT_THAT(out, HasSubstr("# TYPE process_resident_memory_bytes gauge\n"));
  EXPECT_THAT(out, Not(HasSubstr("process_resident_memory_bytes 0\n")));
  EXPECT_THAT(out, Not(HasSubstr("process_open_fds 0\n")));
  EXPECT_THAT(out, Not(HasSubstr("process_threads 0\n")));
}

// The exposition passes Prometheus's own checker.
TEST(MetricsTest, PromtoolAcceptsTheExposition) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool not installed (Debian package prometheus; make test installs it)";
  }
  Registry r;
  r.CounterFamily("keyward_t_requests_total", "Requests.", {"method", "code"})
      .With({"Decrypt", "OK"})
      .Inc();
  r.HistogramFamily("keyward_t_duration_seconds", "Latency.", {"method"})
      .With({"Decrypt"})
      .Observe(0.002);
  r.GaugeFamily("keyward_t_depth", "Depth.").With({}).Set(1);
  RegisterProcessCollectors(r);
  const std::string path = ::testing::TempDir() + "/metrics.txt";
  std::ofstream(path) << r.Render();
  const std::string cmd = "promtool check metrics < " + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[256];
  while (fgets(buf, sizeof(buf), p) != nullptr) output += buf;
  EXPECT_EQ(pclose(p), 0) << output;
  EXPECT_EQ(output, "") << "promtool lint findings";
}

}  // namespace
}  // namespace keyward::metrics
