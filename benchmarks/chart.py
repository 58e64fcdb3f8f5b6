"""The results as one PNG (matplotlib, Agg backend): in-process, HTTP and routing growth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .console import log

COLORS = {"toolkit": "#2a7ab9", "fastapi": "#059669", "starlette": "#d97706"}


def _bars(axis: Any, results: dict[str, Any], rows: list[dict[str, Any]], key: str, title: str) -> None:
    peers, scenarios, labels = results["peers"], results["scenarios"], results["labels"]
    values = {(r["peer"], r["scenario"]): r[key] for r in rows}
    width = 0.8 / len(peers)
    for index, peer in enumerate(peers):
        offset = (index - (len(peers) - 1) / 2) * width
        cells = [(i + offset, values[(peer, s)]) for i, s in enumerate(scenarios) if (peer, s) in values]
        if cells:  # a peer without an app for a scenario has no bar there
            xs, ys = zip(*cells, strict=True)
            axis.bar(xs, ys, width, label=labels.get(peer, peer), color=COLORS.get(peer))
    axis.set_xticks(range(len(scenarios)), scenarios, fontsize=7, rotation=30, ha="right")
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=8)
    axis.grid(axis="y", alpha=0.3)


def render_chart(results: dict[str, Any], path: Path) -> bool:
    """Write the chart; False (and a note) when matplotlib is missing or nothing was timed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("note: matplotlib is not installed (pip install -e '.[bench]'): no chart")
        return False
    panels = []
    if "inprocess" in results:
        panels.append("inprocess")
    if results.get("http", {}).get("results"):
        panels.append("http")
    if results.get("growth", {}).get("routing"):
        panels.append("routing")
    if not panels:
        return False
    figure, axes = plt.subplots(len(panels), 1, figsize=(8, 3.2 * len(panels)), squeeze=False)
    for axis, panel in zip(axes[:, 0], panels, strict=True):
        if panel == "inprocess":
            rows = results["inprocess"]["results"]
            _bars(axis, results, rows, "median_us", "In-process: µs per request (lower is better, log scale)")
            axis.set_yscale("log")
        elif panel == "http":
            rows = results["http"]["results"]
            _bars(axis, results, rows, "rps_median", "HTTP (uvicorn + wrk): requests/s (higher is better)")
            ceiling = results["http"].get("ceiling")
            if ceiling:
                axis.axhline(ceiling["rps_median"], color="grey", linestyle="--", linewidth=1)
                axis.annotate(
                    "uvicorn + null app", (0, ceiling["rps_median"]), fontsize=7, color="grey", va="bottom"
                )
        else:
            routing = results["growth"]["routing"]
            for peer in results["peers"]:
                points = sorted((r["routes"], r["median_us"]) for r in routing if r["peer"] == peer)
                label = results["labels"].get(peer, peer)
                axis.plot(*zip(*points, strict=True), marker="o", label=label, color=COLORS.get(peer))
            axis.set_xscale("log")
            axis.set_yscale("log")
            axis.set_xlabel("routes in the app", fontsize=8)
            axis.set_title("Routing: µs to reach the last-registered route (lower is better)", fontsize=10)
            axis.legend(fontsize=8)
            axis.grid(alpha=0.3)
    figure.suptitle(f"toolkit benchmarks, {results['created'][:10]}", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=80, pil_kwargs={"optimize": True})
    plt.close(figure)
    return True
