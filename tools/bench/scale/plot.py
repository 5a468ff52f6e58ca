#!/usr/bin/env python3
"""Plots the scale benchmark's samples (wisp-bench-scale --samples FILE) into a PNG:
replicas over time and request latency over time during the load step, autoscale
ON next to OFF, and a zoom on the first 150 ms after the step.

    plot.py SAMPLES.json OUT.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"ON": "tab:blue", "OFF": "tab:orange"}


def steps(ax, points, column, label, color, style="-", scale=1.0, always=True):
    xs = [p[0] * scale for p in points]
    ys = [p[column] for p in points]
    if xs and (always or any(ys)):
        ax.step(xs, ys, where="post", linestyle=style, color=color, label=label)


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))] if v else None


def main():
    samples = json.load(open(sys.argv[1]))
    opts = samples["options"]
    runs = samples["runs"]
    fig, axes = plt.subplots(3, 1, figsize=(13, 12), gridspec_kw={"height_ratios": [1, 1.4, 1]})

    # 1. replicas over time (data plane, sampled every ms), seconds after the step
    ax = axes[0]
    for run in runs:
        c = COLORS.get(run["label"], "gray")
        steps(ax, run["maps"], 1, f'{run["label"]}: READY in the data plane', c, "-", 1e-3)
        steps(ax, run["api"], 2, f'{run["label"]}: restoring (wispd)', c, ":", 1e-3, False)
        steps(ax, run["api"], 3, f'{run["label"]}: draining/stopping (wispd)', c, "--", 1e-3, False)
    end = max([r["heavy_end_ms"] for r in runs] or [0]) / 1e3
    for run in runs:
        if run["markers"].get("scale_in") is not None:
            ax.axvline(run["markers"]["scale_in"] / 1e3, color=COLORS.get(run["label"], "gray"), linestyle="-.",
                       linewidth=1, label=f'{run["label"]}: back to 1 replica')
    for a in axes[:2]:
        a.axvspan(0, end, color="gray", alpha=0.08)
        a.axvline(0, color="black", linewidth=0.8)
    ax.set_ylabel("replicas")
    ax.set_title("replicas over time (shaded: the step, %d connections, a new connection per request)"
                 % opts["connections"])
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="center right", ncol=2)

    # 2. request latency over time: every request, and p99 per 100 ms
    ax = axes[1]
    for run in runs:
        c = COLORS.get(run["label"], "gray")
        reqs = [r for r in run["requests"] if r[2]]
        ax.scatter([r[0] / 1e3 for r in reqs], [r[1] for r in reqs], s=1, color=c, alpha=0.15,
                   rasterized=True)
        bins = {}
        for r in reqs:
            bins.setdefault(int(r[0] // 100), []).append(r[1])
        keys = sorted(bins)
        ax.plot([k / 10 + 0.05 for k in keys], [percentile(bins[k], 0.99) for k in keys], color=c,
                linewidth=1.5, label=f'{run["label"]}: p99 per 100 ms')
        ax.plot([k / 10 + 0.05 for k in keys], [percentile(bins[k], 0.5) for k in keys], color=c,
                linewidth=1, linestyle="--", label=f'{run["label"]}: p50 per 100 ms')
        bad = [r for r in run["requests"] if not r[2]]
        if bad:
            ax.scatter([r[0] / 1e3 for r in bad], [max(r[1], 0.01) for r in bad], marker="x", color="red",
                       label=f'{run["label"]}: failed ({len(bad)})')
    last = max([r["maps"][-1][0] for r in runs if r["maps"]] or [0]) / 1e3
    first = min([r["light_start_ms"] for r in runs] or [0]) / 1e3
    ax.set_xlim(first - 0.1, last + 0.2)
    ax.set_yscale("log")
    ax.set_ylabel("request latency, connect() -> full response (ms)")
    ax.set_xlabel("seconds after the step")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right", ncol=2)
    axes[0].sharex(ax)

    # 3. zoom on the step: replicas every ms, the markers of the ON run
    ax = axes[2]
    for run in runs:
        c = COLORS.get(run["label"], "gray")
        steps(ax, run["maps"], 1, f'{run["label"]}: READY', c)
        steps(ax, run["api"], 2, f'{run["label"]}: restoring (wispd, 10 ms polls)', c, ":", 1.0, False)
        m = run["markers"]
        for key, name, style in (("decision", "decision", "-."), ("new_ready", "new replica READY", "--"),
                                 ("new_first_flow", "its first flow", ":")):
            if m.get(key) is not None:
                ax.axvline(m[key], color=c, linestyle=style, linewidth=1,
                           label=f'{run["label"]}: {name} at {m[key]:.1f} ms')
    flows = ax.twinx()
    for run in runs:
        z = run.get("zoom", [])
        # new flows per second over the last 10 ms (what the panic window sees)
        xs, ys = [], []
        for i, p in enumerate(z):
            j = i
            while j > 0 and p[0] - z[j - 1][0] <= 10.0:
                j -= 1
            if j < i and p[0] - z[j][0] > 0:
                xs.append(p[0])
                ys.append((p[2] - z[j][2]) / (p[0] - z[j][0]) * 1e3)
        if xs:
            flows.plot(xs, ys, color=COLORS.get(run["label"], "gray"), alpha=0.35, linewidth=1,
                       label=f'{run["label"]}: new flows/s over 10 ms')
    flows.set_ylabel("new flows/s (10 ms window)")
    flows.legend(fontsize=8, loc="lower right")
    ax.set_xlim(-20, 150)
    ax.set_xlabel("ms after the step")
    ax.set_ylabel("replicas (data plane)")
    ax.set_title("the first 150 ms of the step")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")

    fig.suptitle("wisp: load step on hello, autoscale ON (--max %d --target %d) vs OFF (1 replica) "
                 "(tools/bench/scale)" % (opts["max"], opts["target"]))
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=100)


if __name__ == "__main__":
    main()
