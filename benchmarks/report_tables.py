"""The report's Markdown tables, one function per table, every cell read from a results file.

Cells with an interval read ``median (low-high)`` (an en dash): the median of the paired values and its 95%
bootstrap interval (``benchmarks.stats``); ``—`` marks a peer without an app for the scenario.
"""

from __future__ import annotations

from typing import Any

BASELINE = "toolkit"
NULL = "null app"
TIMES, DASH = (
    "\N{MULTIPLICATION SIGN}",
    "\N{EN DASH}",
)  # the column of the null ASGI app (the in-process floor, the HTTP ceiling)


# --- cells -------------------------------------------------------------------------------------


def us(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def times(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}{TIMES}"


def with_interval(cell: dict[str, Any] | None, unit: str = TIMES) -> str:
    """``1.84x (1.79-1.90)`` for a ratio, ``3.95 (3.90-4.01)`` for µs (``unit=""``), with a
    multiplication sign and an en dash."""
    if cell is None or cell.get("median") is None:
        return "—"
    show = us if unit != TIMES else (lambda v: f"{v:.2f}")
    return f"{show(cell['median'])}{unit} ({show(cell['low'])}{DASH}{show(cell['high'])})"


def small_n(n: int) -> str:
    """What an interval over ``n`` paired runs is, when ``n`` is small."""
    if n > 5:
        return ""
    return (
        f" With {n} pairs the bootstrap interval is simply the range of the {n} paired values, which"
        f" holds the true median with probability 1 - 2/2^{n} = {1 - 2 / 2**n:.0%} if the runs are"
        " independent."
    )


def row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def header(cells: list[str]) -> list[str]:
    return [row(cells), "|---" + "|---:" * (len(cells) - 1) + "|"]


def others(results: dict[str, Any]) -> list[str]:
    """The peers compared with the toolkit (none when the toolkit was not run)."""
    peers: list[str] = results["peers"]
    return [p for p in peers if p != BASELINE] if BASELINE in peers else []


def by_cell(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["peer"], r["scenario"]): r for r in rows}


def _interval_table(results: dict[str, Any], rows: list[dict[str, Any]], peers: list[str], unit: str) -> str:
    labels, cells = results["labels"], by_cell(rows)
    lines = header(["scenario", *(labels[p] for p in peers)])
    for scenario in results["scenarios"]:
        lines.append(row([scenario, *(with_interval(cells.get((p, scenario)), unit) for p in peers)]))
    return "\n".join(lines)


# --- in-process --------------------------------------------------------------------------------


def inprocess_table(results: dict[str, Any]) -> str:
    """Median µs per request, the null app first, one row per scenario."""
    section, peers, labels = results["inprocess"], results["peers"], results["labels"]
    medians = {(r["peer"], r["scenario"]): r["median_us"] for r in section["results"]}
    floor = {r["scenario"]: r["median_us"] for r in section["null_app"]}
    lines = header(["scenario", NULL, *(labels[p] for p in peers)])
    for scenario in results["scenarios"]:
        lines.append(
            row([scenario, us(floor.get(scenario)), *(us(medians.get((p, scenario))) for p in peers)])
        )
    return "\n".join(lines)


def inprocess_ratio_table(results: dict[str, Any]) -> str:
    """Each peer's time / the toolkit's, paired by batch, with its interval."""
    return _interval_table(results, results["inprocess"]["ratios"], others(results), TIMES)


def inprocess_overhead_table(results: dict[str, Any]) -> str:
    """Each peer's µs per request above the null app, paired by batch, with its interval."""
    return _interval_table(results, results["inprocess"]["overheads"], results["peers"], "")


# --- HTTP --------------------------------------------------------------------------------------


def http_table(results: dict[str, Any]) -> str:
    """Median requests/s, the null app (the ceiling) first, and the errors of all runs."""
    section, peers, labels = results["http"], results["peers"], results["labels"]
    rows = by_cell(section["results"])
    ceiling = {r["scenario"]: r for r in section["null_app"]}
    lines = header(["scenario", NULL, *(labels[p] for p in peers), "errors"])
    for scenario in results["scenarios"]:
        found = [rows.get((p, scenario)) for p in peers]
        cells = [f"{r['rps_median']:,.0f}" if r else "—" for r in [ceiling.get(scenario), *found]]
        errors = sum(r["errors"] for r in [ceiling.get(scenario), *found] if r is not None)
        lines.append(row([scenario, *cells, str(errors)]))
    return "\n".join(lines)


def http_ratio_table(results: dict[str, Any]) -> str:
    """The toolkit's req/s / each peer's, paired by repetition, with its interval."""
    return _interval_table(results, results["http"]["ratios"], others(results), TIMES)


def http_above_null_table(results: dict[str, Any]) -> str:
    """Each peer's µs per request above the null app under the same server, with its interval."""
    return _interval_table(results, results["http"]["above_null"], results["peers"], "")


def latency_table(results: dict[str, Any]) -> str:
    """Median p50 / p99 latency per peer, and the toolkit's p99 / p50 with its interval."""
    section, peers, labels = results["http"], results["peers"], results["labels"]
    rows = by_cell(section["results"])
    spread = by_cell(section["latency"])
    toolkit = [BASELINE] if BASELINE in peers else []
    columns = [*(f"{labels[p]} p50 / p99 ms" for p in peers), *(f"{labels[p]} p99 / p50" for p in toolkit)]
    lines = header(["scenario", *columns])
    for scenario in results["scenarios"]:
        found = [rows.get((p, scenario)) for p in peers]
        cells = ["—" if r is None else f"{r['p50_ms_median']:.2f} / {r['p99_ms_median']:.2f}" for r in found]
        cells += [with_interval(spread.get((p, scenario))) for p in toolkit]
        lines.append(row([scenario, *cells]))
    return "\n".join(lines)


def http_cpu_table(results: dict[str, Any]) -> str | None:
    """The server's median CPU µs per request; None when it was not measured."""
    section, peers, labels = results["http"], results["peers"], results["labels"]
    rows = {(r["peer"], r["scenario"]): r.get("server_cpu_us_median") for r in section["results"]}
    if not any(rows.values()):
        return None
    floor = {r["scenario"]: r.get("server_cpu_us_median") for r in section["null_app"]}
    lines = header(["scenario", NULL, *(labels[p] for p in peers)])
    for scenario in results["scenarios"]:
        lines.append(row([scenario, us(floor.get(scenario)), *(us(rows.get((p, scenario))) for p in peers)]))
    return "\n".join(lines)


def missing(results: dict[str, Any], section: str) -> list[str]:
    """A note for the cells left empty because a peer has no app for a scenario, if any."""
    rows = results[section].get("results", [])
    present = {(r["peer"], r["scenario"]) for r in rows}
    absent: dict[tuple[str, ...], list[str]] = {}  # the peers missing -> the scenarios they miss
    for scenario in results["scenarios"]:
        peers = tuple(results["labels"][p] for p in results["peers"] if (p, scenario) not in present)
        if peers:
            absent.setdefault(peers, []).append(scenario)
    if not rows or not absent:
        return []
    cells = "; ".join(f"{', '.join(peers)} on {', '.join(names)}" for peers, names in absent.items())
    return [
        "",
        f"`—`: that peer has no app for the scenario ({cells}; not every peer has a version of the"
        " example service, see `benchmarks/README.md`), or (ratio tables) its runs gave no figure.",
    ]


# --- growth ------------------------------------------------------------------------------------


def routing_table(results: dict[str, Any]) -> str:
    routing, peers, labels = results["growth"]["routing"], results["peers"], results["labels"]
    cells = {(r["peer"], r["routes"]): r for r in routing}
    sizes = sorted({r["routes"] for r in routing})
    lines = header(["routes", *(labels[p] for p in peers)])
    for size in sizes:
        lines.append(row([f"{size:,}", *(us(cells[(p, size)]["median_us"]) for p in peers)]))
    largest, smallest = sizes[-1], sizes[0]
    growth = [_growth(cells[(p, largest)]) for p in peers]
    lines.append(row([f"**{largest:,} vs {smallest:,}**", *growth]))
    return "\n".join(lines)


def _growth(cell: dict[str, Any]) -> str:
    found = cell.get("vs_smallest_interval")
    return with_interval(found) if found else times(cell["vs_smallest"])


def startup_table(results: dict[str, Any]) -> str:
    section, labels = results["growth"], results["labels"]
    settings = section["settings"]
    memory = {m["peer"]: m for m in section["memory"]}
    lines = header(
        [
            "peer",
            f"start-up ms ({settings['startup_routes']} routes)",
            "process ms",
            "RSS started MB",
            f"peak RSS MB ({settings['memory_requests']:,} requests)",
        ]
    )
    for entry in section["startup"]:
        mem = memory[entry["peer"]]
        cells = [f"{entry['median_ms']:.0f}", f"{entry['process_median_ms']:.0f}"]
        cells += [f"{mem['rss_started_mb']:.1f}", f"{mem['rss_peak_mb']:.1f}"]
        lines.append(row([labels[entry["peer"]], *cells]))
    if "harness" in memory:
        base = memory["harness"]
        cells = ["—", "—", f"{base['rss_started_mb']:.1f}", f"{base['rss_peak_mb']:.1f}"]
        lines.append(row(["(Python + harness, null app)", *cells]))
    return "\n".join(lines)
