// A small Prometheus registry: counters, gauges and fixed-bucket histograms, with
// labels, rendered in the text exposition format (version 0.0.4) for GET /metrics.
//
// Values are updated and rendered on the loop thread; counters and gauges are
// atomics anyway so a future worker thread can bump one without a lock.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace wisp::wispd {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
public:
    void inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
    // For counters mirrored from elsewhere (the data plane's own totals).
    void set(uint64_t v) { v_.store(v, std::memory_order_relaxed); }
    uint64_t value() const { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> v_{0};
};

class Gauge {
public:
    void set(double v) { v_.store(v, std::memory_order_relaxed); }
    double value() const { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<double> v_{0};
};

// Cumulative histogram over fixed upper bounds (ascending); +Inf is implicit.
class Histogram {
public:
    explicit Histogram(std::vector<double> bounds);
    void observe(double v);
    const std::vector<double> &bounds() const { return bounds_; }
    // Per-bucket counts (not cumulative), the last one for +Inf.
    std::vector<uint64_t> bucket_counts() const { return counts_; }
    uint64_t count() const { return count_; }
    double sum() const { return sum_; }

private:
    std::vector<double> bounds_;
    std::vector<uint64_t> counts_;
    uint64_t count_ = 0;
    double sum_ = 0;
};

template <class Series>
class Family {
public:
    Family(std::string name, std::string help, std::function<std::unique_ptr<Series>()> make)
        : name_(std::move(name)), help_(std::move(help)), make_(std::move(make)) {}
    // The series with these labels (created at zero on first use). References stay
    // valid until clear().
    Series &with(const Labels &labels = {});
    // Drops every series (for gauges recomputed at each scrape).
    void clear() { series_.clear(); }
    const std::string &name() const { return name_; }
    const std::string &help() const { return help_; }
    const std::map<std::string, std::unique_ptr<Series>> &series() const { return series_; }

private:
    std::string name_, help_;
    std::function<std::unique_ptr<Series>()> make_;
    std::map<std::string, std::unique_ptr<Series>> series_;  // rendered labels -> series
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// `{a="x",b="y"}` with Prometheus escaping; "" for no labels.
std::string render_labels(const Labels &labels);

class MetricsRegistry {
public:
    // Families are created on first use; the same name returns the same family.
    // Names must match [a-zA-Z_:][a-zA-Z0-9_:]* (checked: a bad name is a bug).
    CounterFamily &counters(const std::string &name, const std::string &help);
    GaugeFamily &gauges(const std::string &name, const std::string &help);
    HistogramFamily &histograms(const std::string &name, const std::string &help,
                                std::vector<double> bounds);
    Counter &counter(const std::string &name, const std::string &help) {
        return counters(name, help).with();
    }
    Gauge &gauge(const std::string &name, const std::string &help) {
        return gauges(name, help).with();
    }

    // Runs before every render: lets owners refresh derived gauges.
    void on_collect(std::function<void(MetricsRegistry &)> collector);

    // The whole registry in the text exposition format.
    std::string render();

private:
    std::map<std::string, std::unique_ptr<CounterFamily>> counters_;
    std::map<std::string, std::unique_ptr<GaugeFamily>> gauges_;
    std::map<std::string, std::unique_ptr<HistogramFamily>> histograms_;
    std::vector<std::function<void(MetricsRegistry &)>> collectors_;
};

// The proportional set size of a process in bytes, from /proc/PID/smaps_rollup
// (one small read; the kernel walks the process's page tables, tens of µs for a
// guest of tens of MiB). nullopt if the process is gone or unreadable.
std::optional<uint64_t> process_pss_bytes(int pid);

}  // namespace wisp::wispd
