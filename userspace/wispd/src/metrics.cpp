#include "wispd/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

namespace wisp::wispd {

namespace {

void require_valid_name(const std::string &name) {
    auto ok_char = [](char c, bool first) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
               (!first && c >= '0' && c <= '9');
    };
    bool ok = !name.empty();
    for (size_t i = 0; ok && i < name.size(); ++i) ok = ok_char(name[i], i == 0);
    // A bad metric name is a programming error (a death test pins this).
    if (!ok) {
        std::fprintf(stderr, "wispd: invalid metric or label name '%s'\n", name.c_str());
        std::abort();
    }
}

std::string escape_label_value(const std::string &v) {
    std::string out;
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<int64_t>(v));
    return fmt::format("{}", v);
}

// Labels plus one more (the histogram's `le`), rendered.
std::string with_label(const std::string &rendered, const std::string &key,
                       const std::string &value) {
    std::string extra = key + "=\"" + value + "\"";
    if (rendered.empty()) return "{" + extra + "}";
    return rendered.substr(0, rendered.size() - 1) + "," + extra + "}";
}

void header(std::string &out, const std::string &name, const std::string &help,
            const char *type) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

std::string render_labels(const Labels &labels) {
    if (labels.empty()) return "";
    std::string out = "{";
    for (size_t i = 0; i < labels.size(); ++i) {
        require_valid_name(labels[i].first);
        if (i) out += ",";
        out += labels[i].first + "=\"" + escape_label_value(labels[i].second) + "\"";
    }
    return out + "}";
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {
    std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::observe(double v) {
    size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                   bounds_.begin());
    ++counts_[i];
    ++count_;
    sum_ += v;
}

template <class Series>
Series &Family<Series>::with(const Labels &labels) {
    auto key = render_labels(labels);
    auto it = series_.find(key);
    if (it == series_.end()) it = series_.emplace(key, make_()).first;
    return *it->second;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

CounterFamily &MetricsRegistry::counters(const std::string &name, const std::string &help) {
    require_valid_name(name);
    auto &slot = counters_[name];
    if (!slot)
        slot = std::make_unique<CounterFamily>(name, help, [] { return std::make_unique<Counter>(); });
    return *slot;
}

GaugeFamily &MetricsRegistry::gauges(const std::string &name, const std::string &help) {
    require_valid_name(name);
    auto &slot = gauges_[name];
    if (!slot) slot = std::make_unique<GaugeFamily>(name, help, [] { return std::make_unique<Gauge>(); });
    return *slot;
}

HistogramFamily &MetricsRegistry::histograms(const std::string &name, const std::string &help,
                                             std::vector<double> bounds) {
    require_valid_name(name);
    auto &slot = histograms_[name];
    if (!slot)
        slot = std::make_unique<HistogramFamily>(
            name, help, [bounds] { return std::make_unique<Histogram>(bounds); });
    return *slot;
}

void MetricsRegistry::on_collect(std::function<void(MetricsRegistry &)> collector) {
    collectors_.push_back(std::move(collector));
}

std::string MetricsRegistry::render() {
    for (auto &c : collectors_) c(*this);
    std::string out;
    for (auto &[name, fam] : counters_) {
        header(out, name, fam->help(), "counter");
        for (auto &[labels, c] : fam->series())
            out += name + labels + " " + std::to_string(c->value()) + "\n";
    }
    for (auto &[name, fam] : gauges_) {
        header(out, name, fam->help(), "gauge");
        for (auto &[labels, g] : fam->series())
            out += name + labels + " " + format_value(g->value()) + "\n";
    }
    for (auto &[name, fam] : histograms_) {
        header(out, name, fam->help(), "histogram");
        for (auto &[labels, h] : fam->series()) {
            auto counts = h->bucket_counts();
            uint64_t cumulative = 0;
            for (size_t i = 0; i < h->bounds().size(); ++i) {
                cumulative += counts[i];
                out += name + "_bucket" + with_label(labels, "le", format_value(h->bounds()[i])) +
                       " " + std::to_string(cumulative) + "\n";
            }
            out += name + "_bucket" + with_label(labels, "le", "+Inf") + " " +
                   std::to_string(h->count()) + "\n";
            out += name + "_sum" + labels + " " + format_value(h->sum()) + "\n";
            out += name + "_count" + labels + " " + std::to_string(h->count()) + "\n";
        }
    }
    return out;
}

std::optional<uint64_t> process_pss_bytes(int pid) {
    if (pid <= 0) return std::nullopt;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    char buf[2048];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) return std::nullopt;
    buf[n] = 0;
    const char *pss = std::strstr(buf, "\nPss:");
    if (!pss) return std::nullopt;
    unsigned long long kib = 0;
    if (std::sscanf(pss + 5, " %llu kB", &kib) != 1) return std::nullopt;
    return static_cast<uint64_t>(kib) * 1024;
}

}  // namespace wisp::wispd
