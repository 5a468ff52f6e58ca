#!/usr/bin/env python3
"""Plots the wake benchmark's samples (bench_wake --samples FILE) into a PNG:
the distributions of client SYN -> HTTP response for hello and slowstart (wake
from zero next to the baselines), and where a wake's time goes.

    plot.py SAMPLES.json OUT.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SERIES = [
    ("wake", "wake from zero (wisp)", "tab:blue"),
    ("warm", "(a) warm replica", "tab:green"),
    ("boot", "(b) cold boot, no snapshot", "tab:orange"),
    ("socket_activate", "(c) systemd-socket-activate, native", "tab:red"),
]
STEPS = [
    ("consumed", "SYN read by wispd"),
    ("restore_sent", "restore sent"),
    ("monitor_command", "monitor read it"),
    ("guest_entry", "guest entered"),
    ("ready", "READY in the maps"),
    ("replayed", "SYN replayed"),
    ("first_hypercall", "guest's 1st hypercall"),
    ("client_syn_ack", "client has SYN-ACK"),
    ("client_response", "client has response"),
]


def cdf(ax, values, label, color):
    xs = sorted(values)
    ys = [(i + 1) / len(xs) for i in range(len(xs))]
    ax.step(xs, ys, where="post", label=f"{label} (n={len(xs)})", color=color)


def median(values):
    v = sorted(values)
    return v[len(v) // 2] if v else 0.0


def main():
    samples = json.load(open(sys.argv[1]))
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.5))
    for ax, app, title in ((axes[0], "hello", "hello"), (axes[1], "slowstart", "slowstart (1 s init)")):
        for key, label, color in SERIES:
            if samples[app].get(key):
                cdf(ax, samples[app][key], label, color)
        ax.set_xscale("log")
        ax.set_xlabel("client SYN -> full HTTP response (ms, log scale)")
        ax.set_ylabel("fraction of requests")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)

    ax = axes[2]
    for row, app in enumerate(("hello", "slowstart")):
        steps = samples["steps_us"][app]
        start = 0.0
        for i, (key, label) in enumerate(STEPS):
            end = median(steps.get(key, [0.0]))
            ax.barh(row, max(end - start, 0), left=start, color=plt.cm.tab10(i % 10),
                    edgecolor="white", label=label if row == 0 else None)
            start = max(start, end)
    ax.set_yticks([0, 1], ["hello", "slowstart"])
    ax.set_xlabel("µs after XDP captured the SYN (medians)")
    ax.set_title("where a wake's time goes")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3)
    fig.suptitle("wisp: a request to a service at zero (tools/bench/wake)")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
