"""The report's scaling section (``benchmarks/scaling.py``): req/s and p99 with 1 and 2 workers,
the scaling factors and the toolkit / FastAPI (tuned) ratios, every figure with its interval.

A cell whose server failed to start or to answer, or whose runs had errors or no answers, reads
``inconclusive``, and so does every ratio drawn from it: never a figure.
"""

from __future__ import annotations

import statistics
from typing import Any

from .report_tables import DASH, header, row, small_n, with_interval

INCONCLUSIVE = "inconclusive"


def _interval(cell: dict[str, Any] | None, show: str) -> str:
    if cell is None or cell.get("median") is None:
        return "—"
    return f"{cell['median']:{show}} ({cell['low']:{show}}{DASH}{cell['high']:{show}})"


def _ratio(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return "—"
    return INCONCLUSIVE if cell.get("inconclusive") else with_interval(cell)


def _workers(n: int) -> str:
    return f"{n} worker{'s' if n != 1 else ''}"


def scaling_table(section: dict[str, Any], labels: dict[str, str]) -> str:
    """Per scenario and worker count: each peer's req/s and p99 (median and interval), and the
    toolkit's req/s over FastAPI (tuned)'s, paired by repetition."""
    peers, workers = section["peers"], section["settings"]["workers"]
    cells = {(r["peer"], r["workers"], r["scenario"]): r for r in section["results"]}
    ratios = {(r["workers"], r["scenario"]): r for r in section["ratios"]}
    columns = ["scenario", "workers"]
    for peer in peers:
        columns += [f"{labels[peer]} req/s", f"{labels[peer]} p99 ms"]
    pair = [r for r in section["ratios"] if r["peer"] != peers[0]]
    if pair:
        columns.append(f"{labels[peers[0]]} / {labels[pair[0]['peer']]}")
    lines = header(columns)
    for scenario in section["scenarios"]:
        for n in workers:
            shown = [scenario, str(n)]
            for peer in peers:
                cell = cells.get((peer, n, scenario))
                if cell is None or cell["inconclusive"]:
                    shown += [INCONCLUSIVE, "—"]
                else:
                    shown += [_interval(cell["rps"], ",.0f"), _interval(cell["p99_ms"], ".2f")]
            if pair:
                shown.append(_ratio(ratios.get((n, scenario))))
            lines.append(row(shown))
    return "\n".join(lines)


def factor_table(section: dict[str, Any], labels: dict[str, str]) -> str:
    """Per scenario: each peer's req/s with more workers over its req/s with the fewest."""
    peers, workers = section["peers"], section["settings"]["workers"]
    cells = {(r["peer"], r["workers"], r["scenario"]): r for r in section["factors"]}
    more = workers[1:]
    lines = header(["scenario", *(f"{labels[p]}, {n} / {workers[0]} workers" for p in peers for n in more)])
    for scenario in section["scenarios"]:
        lines.append(row([scenario, *(_ratio(cells.get((p, n, scenario))) for p in peers for n in more)]))
    return "\n".join(lines)


def inconclusive_notes(section: dict[str, Any], labels: dict[str, str]) -> list[str]:
    """Why each inconclusive cell is one."""
    notes = [
        f"{labels[r['peer']]} with {_workers(r['workers'])} on `{r['scenario']}`: {r['inconclusive']}"
        for r in section["results"]
        if r["inconclusive"]
    ]
    return ["", "Inconclusive: " + "; ".join(notes) + "."] if notes else []


def balance_note(section: dict[str, Any], labels: dict[str, str]) -> list[str]:
    """How evenly the workers shared the work: the busiest worker's share of the workers' CPU time
    over a run (median over the runs), per peer, scenario and worker count above one."""
    cells = []
    for r in section["results"]:
        shares = [run["worker_cpu_share"][0] for run in r["runs"] if run.get("worker_cpu_share")]
        if r["workers"] > 1 and shares and not r["inconclusive"]:
            cells.append(f"{labels[r['peer']]} `{r['scenario']}` {statistics.median(shares):.0%}")
    if not cells:
        return []
    return [
        "",
        "Balance: the busiest worker's share of the workers' CPU time over a run (median; an even"
        f" split of 2 is 50%): {', '.join(cells)}.",
    ]


def scaling_section(section: dict[str, Any], labels: dict[str, str]) -> list[str]:
    """The section's paragraphs and tables."""
    if "skipped" in section:
        return [f"Skipped: {section['skipped']}."]
    s = section["settings"]
    workers = " and ".join(str(n) for n in s["workers"])
    servers = "; ".join(f"{labels[p]}: `{command}`" for p, command in section["servers"].items())
    cpus = s.get("cpus") or "the"
    if section.get("toolkit_cli"):
        servers += (
            " (`toolkit run` is uvicorn with uvloop and the toolkit's own httptools protocol, with its"
            " production defaults: see `toolkit/serve/`)"
        )
    return [
        f"The same apps with {workers} worker processes (`json` on the plain app, `stack` on the"
        " middleware-stack app): median requests/s (higher is better) and median p99 latency (ms) over"
        " the runs, each with its 95% bootstrap interval, and the toolkit's req/s over FastAPI"
        f" (tuned)'s at the same worker count (the median of the ratios of paired runs, same repetition).",
        "",
        scaling_table(section, labels),
        *inconclusive_notes(section, labels),
        "",
        "Scaling factor: a peer's req/s with more workers over its own with one, paired run by run;"
        " median and 95% bootstrap interval." + small_n(s["repeat"]),
        "",
        factor_table(section, labels),
        *balance_note(section, labels),
        "",
        f"Servers (`N`: the worker count, `APP`: the scenario's app): {servers}. Nothing is pinned to"
        f" a CPU here: the workers and `{section['wrk']}` (1 thread, {s['connections']} connections)"
        f" share {cpus} CPUs, so with 2 workers on a 2-CPU machine the load generator competes with the"
        " servers, and the kernel decides which worker takes each of wrk's connections: the factor is"
        " what a second worker gives on this machine with its load on it, not the framework's limit."
        f" {s['repeat']} run(s) of {s['seconds']} s per server and scenario, the servers and worker"
        f" counts taking turns in a rotating order; {s['warmup_requests']} warm-up requests and one"
        " untimed 1 s wrk run per server first. A cell whose server failed to start or to answer, or"
        f" whose runs had errors or no answers, reads `{INCONCLUSIVE}`, as does every ratio drawn"
        " from it.",
    ]
