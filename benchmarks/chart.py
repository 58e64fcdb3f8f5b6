"""The results as one PNG (matplotlib, Agg backend), every peer in every panel.

Panels: in-process µs per request and HTTP requests/s (with the null app's per scenario, a grey
tick), the toolkit's paired ratios against each peer with their 95% intervals (error bars, a
line at 1x and at the 3x target), and routing growth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .console import log

COLORS = {
    "toolkit": "#2a7ab9",
    "fastapi_tuned": "#047857",
    "fastapi": "#6ee7b7",
    "litestar": "#b45309",
    "blacksheep": "#4b5563",
    "starlette": "#f59e0b",
}
FALLBACK = ["#7c3aed", "#db2777", "#0891b2", "#65a30d"]
NULL_COLOR = "#9ca3af"


def _color(results: dict[str, Any], peer: str) -> str:
    if peer in COLORS:
        return COLORS[peer]
    unknown = [p for p in results["peers"] if p not in COLORS]
    return FALLBACK[unknown.index(peer) % len(FALLBACK)]


def _axis(axis: Any, scenarios: list[str], title: str) -> None:
    axis.set_xticks(range(len(scenarios)), scenarios, fontsize=7, rotation=30, ha="right")
    axis.set_title(title, fontsize=10)
    axis.grid(axis="y", alpha=0.3)


def _bars(
    axis: Any,
    results: dict[str, Any],
    rows: list[dict[str, Any]],
    key: str,
    peers: list[str],
    intervals: bool = False,
) -> None:
    """One bar per peer and scenario (``key`` of its row); with ``intervals``, 95% error bars."""
    scenarios, labels = results["scenarios"], results["labels"]
    values = {(r["peer"], r["scenario"]): r for r in rows if r.get(key) is not None}
    width = 0.8 / max(1, len(peers))
    for index, peer in enumerate(peers):
        offset = (index - (len(peers) - 1) / 2) * width
        cells = [(i + offset, values[(peer, s)]) for i, s in enumerate(scenarios) if (peer, s) in values]
        if not cells:  # a peer without an app for a scenario has no bar there
            continue
        xs = [x for x, _ in cells]
        ys = [row[key] for _, row in cells]
        errors = None
        if intervals:
            errors = [[y - row["low"] for y, (_, row) in zip(ys, cells, strict=True)]]
            errors.append([row["high"] - y for y, (_, row) in zip(ys, cells, strict=True)])
        axis.bar(
            xs,
            ys,
            width,
            label=labels.get(peer, peer),
            color=_color(results, peer),
            yerr=errors,
            error_kw={"elinewidth": 0.8, "capsize": 1.5},
        )


def _floor(axis: Any, results: dict[str, Any], rows: list[dict[str, Any]], key: str) -> None:
    """The null app's value per scenario: a grey tick across the scenario's bars."""
    values = {r["scenario"]: r[key] for r in rows if r.get(key) is not None}
    first = True
    for index, scenario in enumerate(results["scenarios"]):
        if scenario in values:
            axis.hlines(
                values[scenario],
                index - 0.45,
                index + 0.45,
                colors=NULL_COLOR,
                linestyles="--",
                linewidth=1,
                label="null app" if first else None,
            )
            first = False


def _panels(results: dict[str, Any]) -> list[str]:
    panels = []
    inprocess, http = results.get("inprocess", {}), results.get("http", {})
    if inprocess.get("results"):
        panels.append("inprocess")
    if inprocess.get("ratios"):
        panels.append("inprocess_ratios")
    if http.get("results"):
        panels.append("http")
    if http.get("ratios"):
        panels.append("http_ratios")
    if results.get("growth", {}).get("routing"):
        panels.append("routing")
    return panels


def _draw(axis: Any, panel: str, results: dict[str, Any]) -> None:
    from matplotlib import ticker

    peers, scenarios = results["peers"], results["scenarios"]
    others = [p for p in peers if p != "toolkit"]
    if panel in ("inprocess", "http"):
        section = results[panel]
        key = "median_us" if panel == "inprocess" else "rps_median"
        _bars(axis, results, section["results"], key, peers)
        _floor(axis, results, section.get("null_app", []), key)
        axis.set_yscale("log")
        if panel == "inprocess":
            title = "In-process: µs per request (lower is better, log scale; dashed: the null app)"
        else:
            title = "HTTP (uvicorn + wrk): requests/s (higher is better, log scale; dashed: the null app)"
            thousands = ticker.FuncFormatter(
                lambda value, _: f"{value / 1000:g}k" if value >= 1000 else f"{value:g}"
            )
            axis.yaxis.set_major_locator(
                ticker.FixedLocator([v * 10**k for k in range(2, 6) for v in (1, 2, 3, 5)])
            )
            axis.yaxis.set_major_formatter(thousands)
            axis.yaxis.set_minor_formatter(ticker.NullFormatter())
        _axis(axis, scenarios, title)
    elif panel in ("inprocess_ratios", "http_ratios"):
        mode = panel.removesuffix("_ratios")
        _bars(axis, results, results[mode]["ratios"], "median", others, intervals=True)
        axis.set_yscale("log")
        axis.yaxis.set_major_locator(ticker.FixedLocator([0.5, 0.8, 1, 1.5, 2, 3, 5, 10, 20, 50, 100]))
        axis.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}x"))
        axis.yaxis.set_minor_formatter(ticker.FuncFormatter(lambda value, _: ""))
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.axhline(3.0, color=NULL_COLOR, linestyle=":", linewidth=1)
        what = "in-process, time" if mode == "inprocess" else "HTTP, req/s"
        _axis(axis, scenarios, f"How many times faster the toolkit is ({what}; median, 95% interval)")
    else:
        routing = results["growth"]["routing"]
        for peer in peers:
            points = sorted((r["routes"], r["median_us"]) for r in routing if r["peer"] == peer)
            if points:
                label = results["labels"].get(peer, peer)
                axis.plot(*zip(*points, strict=True), marker="o", label=label, color=_color(results, peer))
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("routes in the app", fontsize=8)
        axis.set_title("Routing: µs to reach the last-registered route (lower is better)", fontsize=10)
        axis.grid(alpha=0.3)


def render_chart(results: dict[str, Any], path: Path) -> bool:
    """Write the chart; False (and a note) when matplotlib is missing or nothing was timed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("note: matplotlib is not installed (pip install -e '.[bench]'): no chart")
        return False
    panels = _panels(results)
    if not panels:
        return False
    height = 3.4 * len(panels) + 0.6
    figure, axes = plt.subplots(len(panels), 1, figsize=(11, height), squeeze=False)
    legend: dict[str, Any] = {}  # one legend for the figure: a peer has one color everywhere
    for axis, panel in zip(axes[:, 0], panels, strict=True):
        _draw(axis, panel, results)
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    figure.suptitle(f"toolkit benchmarks, {results['created'][:10]}", fontsize=11, y=1 - 0.1 / height)
    order = [results["labels"].get(p, p) for p in results["peers"]] + ["null app"]
    labels = sorted(legend, key=lambda label: order.index(label) if label in order else len(order))
    figure.legend(
        [legend[label] for label in labels],
        labels,
        loc="upper center",
        ncol=len(labels),
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(0.5, 1 - 0.4 / height),
    )
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.75 / height))
    figure.savefig(path, dpi=80, pil_kwargs={"optimize": True})
    plt.close(figure)
    return True
