"""The project's targets, judged on the intervals of a results file, never on a point estimate.

Each target is judged per cell (a scenario, or a peer and a scenario): **met** when the 95%
interval lies wholly on the target's side, **missed** when it lies wholly on the other side,
**inconclusive** when it straddles the target (the run shows neither). A target over several
cells is met when every cell is, missed when any cell is, and inconclusive otherwise. A cell of
a single pair (``n`` 1) has no interval and is inconclusive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from .report_tables import BASELINE, TIMES, by_cell, with_interval
from .spec import SCENARIOS
from .stats import Verdict, verdict

# Over HTTP: the toolkit ahead of every peer (req/s ratio > 1) on every scenario, and at least
# 3x FastAPI (tuned), the project's original target (once against FastAPI as deployed).
HEADLINE = "fastapi_tuned"
HTTP_AHEAD = 1.0
HTTP_TARGETS = {HEADLINE: 3.0}
# In-process: the toolkit's µs per request above the null app's on the fixed-cost scenarios.
OVERHEAD_TARGET_US = 3.0
OVERHEAD_SCENARIOS = ("plaintext", "json")
# Latency: the toolkit's p99 at most this multiple of its p50, on every HTTP scenario.
LATENCY_TARGET = 2.0
ROUTING_TARGET = 1.2  # the toolkit at 1,000 routes: at most this multiple of its cost at 10

# Fewer paired values than this and a cell is inconclusive whatever its interval says: with n HTTP
# runs the interval is their range, which holds the true median with probability 1 - 2/2^n
# (75% at 3, 94% at 5); in-process, one or two sessions leave out the spread between processes.
HTTP_MIN_RUNS = 5
INPROCESS_MIN_SESSIONS = 3

Cell = tuple[str, dict[str, Any]]  # (name, {"median", "low", "high", "n"})


def judge(
    cells: list[Cell],
    target: float,
    show: Callable[[dict[str, Any]], str],
    *,
    better: Literal["higher", "lower"] = "higher",
    strict: bool = False,
    min_n: int = 2,
) -> str:
    """``**met**``, ``**missed**`` or ``**inconclusive**`` over ``cells``, with the cells that are
    not met (and their intervals) named. A cell with fewer than ``min_n`` paired values, or none
    at all (a peer whose runs all failed), is inconclusive."""
    states: dict[Verdict, list[str]] = {"met": [], "inconclusive": [], "missed": []}
    for name, cell in cells:
        state: Verdict
        if cell.get("median") is None:
            state, shown = "inconclusive", "(no data)"
        elif cell.get("n", 2) < max(2, min_n):  # too few pairs for the interval to show anything
            state, shown = "inconclusive", f"{show(cell)} (n={cell.get('n', 1)} < {max(2, min_n)})"
        else:
            state = verdict(cell["low"], cell["high"], target, better=better, strict=strict)
            shown = show(cell)
        states[state].append(f"{name} {shown}")
    overall = "missed" if states["missed"] else "inconclusive" if states["inconclusive"] else "met"
    if len(cells) == 1:
        return f"**{overall}**: {next(iter(n for names in states.values() for n in names))}"
    if overall == "met":  # name the cell closest to the target (every cell has data here)
        name, closest = (
            min(cells, key=lambda c: c[1]["low"])
            if better == "higher"
            else max(cells, key=lambda c: c[1]["high"])
        )
        every = "both" if len(cells) == 2 else f"all {len(cells)}"
        return f"**met** on {every} (closest: {name} {show(closest)})"
    parts = [f"met on {len(states['met'])} of {len(cells)}"]
    parts += [f"{state} on {', '.join(names)}" for state, names in states.items() if state != "met" and names]
    return f"**{overall}**: " + "; ".join(parts)


def _ratio(cell: dict[str, Any]) -> str:
    return with_interval(cell)


def _us(cell: dict[str, Any]) -> str:
    return with_interval(cell, unit=" µs")


def _valid(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("median") is not None]


def _every(results: dict[str, Any]) -> str:
    """ "every scenario", or how many of them this run measured (a ``--scenario`` filter)."""
    run, known = len(results["scenarios"]), len(SCENARIOS)
    return "every scenario" if run >= known else f"every scenario run ({run} of {known})"


def _with_errors(http: dict[str, Any], ratios: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``ratios`` with the cells whose runs (the toolkit's or the peer's) had errors emptied: a
    run answering 5xx, 429 or timeouts counts requests that are not the work being compared."""
    failed = {(r["peer"], r["scenario"]) for r in http.get("results", []) if r.get("errors")}
    return [
        {**r, "median": None}
        if (r["peer"], r["scenario"]) in failed or (BASELINE, r["scenario"]) in failed
        else r
        for r in ratios
    ]


def http_targets(results: dict[str, Any]) -> list[str]:
    http, labels = results.get("http", {}), results["labels"]
    ratios = _with_errors(http, http.get("ratios", []))
    if not ratios:
        return []
    every = _every(results)
    lines = []
    for peer, target in HTTP_TARGETS.items():
        mine = [(r["scenario"], r) for r in ratios if r["peer"] == peer]
        if mine:
            verdict_text = judge(mine, target, _ratio, min_n=HTTP_MIN_RUNS)
            label = labels[peer]
            lines.append(f"- HTTP, toolkit ≥ {target:g}{TIMES} {label} req/s on {every}: {verdict_text}")
        else:
            lines.append(
                f"- HTTP, toolkit ≥ {target:g}{TIMES} FastAPI (tuned) req/s: not measured in this run"
            )
    for peer in results["peers"]:
        mine = [(r["scenario"], r) for r in ratios if r["peer"] == peer]
        if mine:
            verdict_text = judge(mine, HTTP_AHEAD, _ratio, strict=True, min_n=HTTP_MIN_RUNS)
            lines.append(f"- HTTP, toolkit ahead of {labels[peer]} (ratio > 1) on {every}: {verdict_text}")
    spread = [(r["scenario"], r) for r in http.get("latency", []) if r["peer"] == BASELINE]
    if spread:
        settings = http["settings"]
        own = settings.get("scenario_connections") or {}
        exceptions = "".join(f"; `{name}` at {count}" for name, count in own.items())
        verdict_text = judge(spread, LATENCY_TARGET, _ratio, better="lower", min_n=HTTP_MIN_RUNS)
        lines.append(
            f"- Latency, toolkit p99 ≤ {LATENCY_TARGET:g}{TIMES} its p50 on {every}"
            f" ({settings['connections']} connections{exceptions}): {verdict_text}"
        )
    return lines


def inprocess_targets(results: dict[str, Any]) -> list[str]:
    section = results.get("inprocess", {})
    rows = by_cell(section.get("overheads", []))
    mine = [(s, rows[(BASELINE, s)]) for s in OVERHEAD_SCENARIOS if (BASELINE, s) in rows]
    if not mine:
        return []
    if section.get("settings", {}).get("sessions", INPROCESS_MIN_SESSIONS) < INPROCESS_MIN_SESSIONS:
        sessions = section["settings"]["sessions"]
        return [
            f"- In-process, toolkit ≤ {OVERHEAD_TARGET_US:g} µs per request above the null app: "
            f"**inconclusive**: {sessions} session(s) of worker processes, fewer than"
            f" {INPROCESS_MIN_SESSIONS} (the intervals leave out the spread between processes)"
        ]
    verdict_text = judge(mine, OVERHEAD_TARGET_US, _us, better="lower")
    scenarios = " and ".join(OVERHEAD_SCENARIOS)
    return [
        f"- In-process, toolkit ≤ {OVERHEAD_TARGET_US:g} µs per request above the null app"
        f" on {scenarios}: {verdict_text}"
    ]


def routing_targets(results: dict[str, Any]) -> list[str]:
    routing = [r for r in results.get("growth", {}).get("routing", []) if r["peer"] == BASELINE]
    if not routing:
        return []
    largest = max(routing, key=lambda r: r["routes"])
    smallest = min(r["routes"] for r in routing)
    cell = largest.get("vs_smallest_interval")
    if cell is None:  # no interval (a single batch): the point estimate cannot show it
        cell = {"median": largest["vs_smallest"], "low": 0.0, "high": float("inf"), "n": 1}
    verdict_text = judge([(f"{largest['routes']:,} routes", cell)], ROUTING_TARGET, _ratio, better="lower")
    return [
        f"- Routing, toolkit at {largest['routes']:,} routes ≤ {ROUTING_TARGET}{TIMES} its cost"
        f" at {smallest}: {verdict_text}"
    ]


def targets(results: dict[str, Any]) -> list[str]:
    """Every target this run measured, with its verdict."""
    return [*inprocess_targets(results), *http_targets(results), *routing_targets(results)]


def headline(results: dict[str, Any]) -> list[str]:
    """The range over scenarios of the toolkit's paired ratios against each FastAPI peer."""
    lines = []
    for peer in (HEADLINE, "fastapi"):
        if peer not in results["peers"] or BASELINE not in results["peers"]:
            continue
        for mode, what in (("inprocess", "µs per request"), ("http", "req/s")):
            ratios = results.get(mode, {}).get("ratios", [])
            if mode == "http":
                ratios = _with_errors(results.get("http", {}), ratios)
            cells = [r for r in _valid(ratios) if r["peer"] == peer]
            if not cells:
                continue
            low, high = min(cells, key=lambda r: r["median"]), max(cells, key=lambda r: r["median"])
            name = "in-process" if mode == "inprocess" else "over HTTP"
            lines.append(
                f"- {results['labels'][peer]}, {name} ({what}): the toolkit is {low['median']:.2f}{TIMES}"
                f" ({low['scenario']}) to {high['median']:.2f}{TIMES} ({high['scenario']}) as fast,"
                f" over {len(cells)} scenario{'s' if len(cells) != 1 else ''}"
            )
    return lines
