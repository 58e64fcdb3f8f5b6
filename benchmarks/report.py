"""Render a results file as Markdown: ``python -m benchmarks.report benchmarks/results/latest.json``.

Numbers in docs come from here, never typed by hand.
"""

from __future__ import annotations

import json
import sys
from typing import Any

BASELINE = "toolkit"


def _us(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def table(results: dict[str, Any]) -> str:
    """The µs/request table, one row per scenario, with ratios against the toolkit."""
    peers: list[str] = results["peers"]
    labels: dict[str, str] = results.get("labels", {})
    others = [p for p in peers if p != BASELINE] if BASELINE in peers else []
    medians = {(r["peer"], r["scenario"]): r["median_us"] for r in results["results"]}
    ratios = {(r["peer"], r["scenario"]): r["median"] for r in results.get("ratios", [])}
    header = [
        "scenario",
        *(f"{labels.get(p, p)} µs" for p in peers),
        *(f"x {labels.get(p, p)}" for p in others),
    ]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    for scenario in results["scenarios"]:
        row = [scenario, *(_us(medians.get((p, scenario))) for p in peers)]
        row += [_ratio(ratios.get((peer, scenario))) for peer in others]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    settings = results["settings"]
    machine = results["machine"]
    versions = ", ".join(f"{name} {version}" for name, version in results["versions"].items())
    parts = [
        "# In-process benchmark",
        "",
        "Median µs per request (lower is better). `x Peer` = that peer's time / the toolkit's time"
        " (above 1: the toolkit is faster), as the median of the ratios of batches run side by side.",
        "",
        table(results),
        "",
        f"- Machine: {machine['cpu']}, {machine['cpus']} CPUs, {machine['os']}",
        f"- Load average at start: {machine.get('load_average', 'unknown')}",
        f"- Python: {machine['python']}",
        f"- Versions: {versions}",
        f"- Method: {settings['sessions']} session(s) of fresh worker processes, one per peer;"
        f" per session, {settings['repeat']} repetitions of one ~{settings['batch_seconds'] * 1000:.0f} ms"
        " batch per peer and scenario, peers alternating; median of all batches. Harness cost"
        f" {_us(results.get('harness_us'))} µs/request (a null ASGI app), included in every number.",
        f"- Command: `{results['command']}` ({results['created']}, {results['elapsed_seconds']:.0f} s)",
    ]
    notes = results.get("parity_notes") or []
    if notes:
        parts += ["", "## Parity notes (toolkit vs FastAPI; not failures)", ""]
        parts += [f"- {note}" for note in notes]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> None:
    paths = sys.argv[1:] if argv is None else argv
    with open(paths[0] if paths else "benchmarks/results/latest.json", encoding="utf-8") as file:
        print(markdown(json.load(file)), end="")


if __name__ == "__main__":
    main()
