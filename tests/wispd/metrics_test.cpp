// The Prometheus registry and its text exposition format.
#include "wispd/metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <vector>

namespace {

using namespace wisp::wispd;

bool has_line(const std::string &text, const std::string &line) {
    return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

TEST(Metrics, CounterRendersWithHelpTypeAndLabels) {
    MetricsRegistry m;
    m.counters("wisp_wakes_total", "Wakes").with({{"service", "hello"}}).inc(3);
    m.counter("wisp_plain_total", "Plain").inc();
    auto text = m.render();
    EXPECT_TRUE(has_line(text, "# HELP wisp_wakes_total Wakes"));
    EXPECT_TRUE(has_line(text, "# TYPE wisp_wakes_total counter"));
    EXPECT_TRUE(has_line(text, "wisp_wakes_total{service=\"hello\"} 3"));
    EXPECT_TRUE(has_line(text, "wisp_plain_total 1"));
}

TEST(Metrics, LabelValuesAreEscaped) {
    MetricsRegistry m;
    m.gauges("g", "G").with({{"v", "a\"b\\c\nd"}}).set(1.5);
    EXPECT_TRUE(has_line(m.render(), "g{v=\"a\\\"b\\\\c\\nd\"} 1.5"));
}

TEST(Metrics, HistogramBucketsAreCumulativeWithInfSumAndCount) {
    MetricsRegistry m;
    auto &h = m.histograms("lat_seconds", "Latency", {0.001, 0.01, 0.1}).with();
    h.observe(0.0005);
    h.observe(0.001);  // on the bound: counts in le="0.001"
    h.observe(0.05);
    h.observe(3);
    auto text = m.render();
    EXPECT_TRUE(has_line(text, "# TYPE lat_seconds histogram"));
    EXPECT_TRUE(has_line(text, "lat_seconds_bucket{le=\"0.001\"} 2"));
    EXPECT_TRUE(has_line(text, "lat_seconds_bucket{le=\"0.01\"} 2"));
    EXPECT_TRUE(has_line(text, "lat_seconds_bucket{le=\"0.1\"} 3"));
    EXPECT_TRUE(has_line(text, "lat_seconds_bucket{le=\"+Inf\"} 4"));
    EXPECT_TRUE(has_line(text, "lat_seconds_count 4"));
    EXPECT_TRUE(has_line(text, "lat_seconds_sum 3.0515"));
}

TEST(Metrics, HistogramWithLabelsAddsLeToThem) {
    MetricsRegistry m;
    m.histograms("h", "H", {1}).with({{"service", "a"}}).observe(0.5);
    EXPECT_TRUE(has_line(m.render(), "h_bucket{service=\"a\",le=\"1\"} 1"));
}

TEST(Metrics, CollectorsRefreshDerivedGaugesAtEachRender) {
    MetricsRegistry m;
    int calls = 0;
    m.on_collect([&](MetricsRegistry &r) {
        auto &g = r.gauges("wisp_replicas", "Replicas");
        g.clear();
        g.with({{"state", "ready"}}).set(++calls);
    });
    EXPECT_TRUE(has_line(m.render(), "wisp_replicas{state=\"ready\"} 1"));
    EXPECT_TRUE(has_line(m.render(), "wisp_replicas{state=\"ready\"} 2"));
}

TEST(Metrics, SameNameReturnsTheSameSeries) {
    MetricsRegistry m;
    m.counter("c_total", "C").inc();
    m.counter("c_total", "C").inc();
    EXPECT_EQ(m.counter("c_total", "C").value(), 2u);
}

TEST(MetricsDeathTest, InvalidMetricNameIsAProgrammingError) {
    MetricsRegistry m;
    EXPECT_DEATH(m.counter("bad-name", "x"), "invalid metric or label name 'bad-name'");
}

}  // namespace

TEST(ProcessPss, ALiveProcessHasAPssInBytesAndAGoneOneHasNone) {
    // Touch 8 MiB of private memory: PSS counts private pages whole, so it is at
    // least that, whatever the shared pages' share is (other processes mapping the
    // same libraries change it). The barrier keeps the optimizer from eliding an
    // allocation whose contents are never read.
    std::vector<char> touched(8 << 20, 1);
    asm volatile("" : : "r"(touched.data()) : "memory");
    auto mine = wisp::wispd::process_pss_bytes(getpid());
    ASSERT_TRUE(mine.has_value());
    EXPECT_GE(*mine, touched.size()) << "PSS in bytes, not kB";
    EXPECT_FALSE(wisp::wispd::process_pss_bytes(0).has_value());
    EXPECT_FALSE(wisp::wispd::process_pss_bytes(0x3ffffff0).has_value()) << "no such pid";
}
