"""Render a results file as Markdown: ``python -m benchmarks.report benchmarks/results/latest.json``.

The README's benchmark section is generated from one file only, the committed
``benchmarks/published/benchmarks.json``, so every number in it can be checked against a file
with the machine, the versions and the command that produced it:

    python -m benchmarks.report --publish   # results/latest.json -> published/, README rewritten
    python -m benchmarks.report --readme    # README rewritten from published/ (nothing else)

``--publish`` also copies the run's chart to ``docs/benchmarks.png``. A test regenerates the
section from the published file and fails if the README differs. Numbers are never typed by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

BASELINE = "toolkit"
# Targets: HTTP requests/s against each peer, routing growth from 10 to 1,000 routes.
HTTP_TARGETS = {"fastapi": 3.0, "starlette": 1.0}
ROUTING_TARGET = 1.2


def _us(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _header(cells: list[str]) -> list[str]:
    return [_row(cells), "|---" + "|---:" * (len(cells) - 1) + "|"]


def _others(results: dict[str, Any]) -> list[str]:
    peers: list[str] = results["peers"]
    return [p for p in peers if p != BASELINE] if BASELINE in peers else []


def inprocess_table(results: dict[str, Any]) -> str:
    """µs/request, one row per scenario, with ratios against the toolkit."""
    section, peers, labels = results["inprocess"], results["peers"], results["labels"]
    others = _others(results)
    medians = {(r["peer"], r["scenario"]): r["median_us"] for r in section["results"]}
    ratios = {(r["peer"], r["scenario"]): r["median"] for r in section.get("ratios", [])}
    lines = _header(["scenario", *(f"{labels[p]} µs" for p in peers), *(f"x {labels[p]}" for p in others)])
    for scenario in results["scenarios"]:
        row = [scenario, *(_us(medians.get((p, scenario))) for p in peers)]
        row += [_ratio(ratios.get((peer, scenario))) for peer in others]
        lines.append(_row(row))
    return "\n".join(lines)


def http_table(results: dict[str, Any]) -> str:
    """Requests/s, ratios, latency percentiles and errors, one row per scenario."""
    section, peers, labels = results["http"], results["peers"], results["labels"]
    others = _others(results)
    rows = {(r["peer"], r["scenario"]): r for r in section["results"]}
    ratios = {(r["peer"], r["scenario"]): r["median"] for r in section.get("ratios", [])}
    lines = _header(
        [
            "scenario",
            *(f"{labels[p]} req/s" for p in peers),
            *(f"x {labels[p]}" for p in others),
            *(f"{labels[p]} p50 / p99 ms" for p in peers),
            "errors",
        ]
    )
    for scenario in results["scenarios"]:
        found = [rows.get((p, scenario)) for p in peers]
        row = [scenario, *("—" if r is None else f"{r['rps_median']:,.0f}" for r in found)]
        row += [_ratio(ratios.get((peer, scenario))) for peer in others]
        row += ["—" if r is None else f"{r['p50_ms_median']:.2f} / {r['p99_ms_median']:.2f}" for r in found]
        row.append(str(sum(r["errors"] for r in found if r is not None)))
        lines.append(_row(row))
    return "\n".join(lines)


def http_cpu_table(results: dict[str, Any]) -> str | None:
    """The server's CPU µs per request, with ratios; None when it was not measured."""
    section, peers, labels = results["http"], results["peers"], results["labels"]
    rows = {(r["peer"], r["scenario"]): r.get("server_cpu_us_median") for r in section["results"]}
    if not any(rows.values()):
        return None
    others = _others(results)
    ratios = {(r["peer"], r["scenario"]): r.get("cpu_median") for r in section.get("ratios", [])}
    lines = _header(["scenario", *(f"{labels[p]} µs" for p in peers), *(f"x {labels[p]}" for p in others)])
    for scenario in results["scenarios"]:
        row = [scenario, *(_us(rows.get((p, scenario))) for p in peers)]
        row += [_ratio(ratios.get((peer, scenario))) for peer in others]
        lines.append(_row(row))
    return "\n".join(lines)


def _connection_exceptions(settings: dict[str, Any]) -> str:
    own = settings.get("scenario_connections") or {}
    if not own:
        return ""
    cells = ", ".join(f"`{name}`: {count}" for name, count in own.items())
    return f" ({cells}; SQLite takes one writer at a time, see `benchmarks/README.md`)"


def _missing(results: dict[str, Any], section: str) -> list[str]:
    """A note for the cells left empty because a peer has no app for a scenario, if any."""
    rows = results[section].get("results", [])
    present = {(r["peer"], r["scenario"]) for r in rows}
    absent = [
        f"{results['labels'][p]} / {s}"
        for s in results["scenarios"]
        for p in results["peers"]
        if (p, s) not in present
    ]
    if not rows or not absent:
        return []
    return [
        "",
        f"`—`: that peer has no app for the scenario ({', '.join(absent)}; there is no bare-Starlette"
        " version of the example service, see `benchmarks/README.md`).",
    ]


def routing_table(results: dict[str, Any]) -> str:
    routing, peers, labels = results["growth"]["routing"], results["peers"], results["labels"]
    cells = {(r["peer"], r["routes"]): r for r in routing}
    sizes = sorted({r["routes"] for r in routing})
    lines = _header(["routes", *(f"{labels[p]} µs" for p in peers)])
    for size in sizes:
        lines.append(_row([f"{size:,}", *(_us(cells[(p, size)]["median_us"]) for p in peers)]))
    largest, smallest = sizes[-1], sizes[0]
    growth = [f"{cells[(p, largest)]['vs_smallest']:.2f}x" for p in peers]
    lines.append(_row([f"**{largest:,} vs {smallest:,}**", *growth]))
    return "\n".join(lines)


def startup_table(results: dict[str, Any]) -> str:
    section, labels = results["growth"], results["labels"]
    settings = section["settings"]
    memory = {m["peer"]: m for m in section["memory"]}
    lines = _header(
        [
            "peer",
            f"start-up ms ({settings['startup_routes']} routes)",
            "process ms",
            "RSS started MB",
            f"peak RSS MB ({settings['memory_requests']:,} requests)",
        ]
    )
    for entry in section["startup"]:
        peer = entry["peer"]
        mem = memory[peer]
        lines.append(
            _row(
                [
                    labels[peer],
                    f"{entry['median_ms']:.0f}",
                    f"{entry['process_median_ms']:.0f}",
                    f"{mem['rss_started_mb']:.1f}",
                    f"{mem['rss_peak_mb']:.1f}",
                ]
            )
        )
    if "harness" in memory:
        base = memory["harness"]
        lines.append(
            _row(
                [
                    "(Python + harness, null app)",
                    "—",
                    "—",
                    f"{base['rss_started_mb']:.1f}",
                    f"{base['rss_peak_mb']:.1f}",
                ]
            )
        )
    return "\n".join(lines)


def _verdict(ratios: list[dict[str, Any]], key: str, target: float) -> str:
    missed = [f"{r['scenario']} {r[key]:.2f}x" for r in ratios if r.get(key) is not None and r[key] < target]
    return "met on every scenario" if not missed else "missed on " + ", ".join(missed)


def targets(results: dict[str, Any]) -> list[str]:
    """Issue 4's targets, met or missed, from these numbers."""
    lines = []
    ratios = results.get("http", {}).get("ratios", [])
    for peer, target in HTTP_TARGETS.items():
        mine = [r for r in ratios if r["peer"] == peer and r["median"] is not None]
        if mine:
            verdict = _verdict(mine, "median", target)
            if any(r.get("cpu_median") for r in mine):
                verdict += f" (by server CPU per request: {_verdict(mine, 'cpu_median', target)})"
            lines.append(f"- HTTP, toolkit >= {target:g}x {results['labels'][peer]} req/s: {verdict}")
    routing = [r for r in results.get("growth", {}).get("routing", []) if r["peer"] == BASELINE]
    if routing:
        largest = max(routing, key=lambda r: r["routes"])
        verdict = "met" if largest["vs_smallest"] <= ROUTING_TARGET else "missed"
        lines.append(
            f"- Routing, toolkit at {largest['routes']:,} routes <= {ROUTING_TARGET}x its cost at"
            f" {min(r['routes'] for r in routing)}: {largest['vs_smallest']:.2f}x, {verdict}"
        )
    return lines


def _rates(cell: dict[str, Any]) -> list[float]:
    return [run["rps"] for run in cell["runs"]]


def _spread(cell: dict[str, Any]) -> float:
    """The fastest repetition's req/s over the slowest's (infinite if one answered nothing)."""
    rates = _rates(cell)
    return max(rates) / min(rates) if min(rates) else float("inf")


def http_section(results: dict[str, Any]) -> list[str]:
    section = results["http"]
    if "skipped" in section:
        return [f"Skipped: {section['skipped']}."]
    s = section["settings"]
    parts = [
        "Median requests/s over real HTTP (higher is better). `x Peer` = the toolkit's"
        " req/s / that peer's, as the median of the ratios of runs made in the same repetition.",
        "",
        http_table(results),
        *_missing(results, "http"),
        "",
        f"One `{section['server']}` per peer, pinned to CPU {s['server_cpu']}; `{section['wrk']}`"
        f" pinned to CPU {s['load_cpu']}, {s['wrk_threads']} thread, {s['connections']} connections"
        f"{_connection_exceptions(s)},"
        f" {s['repeat']} run(s) of {s['seconds']} s per peer and scenario, peers rotating;"
        f" {s['warmup_requests']} warm-up requests per scenario. Errors: connect, read, write,"
        " timeouts and responses outside 2xx/3xx, over all runs.",
    ]
    ceiling = section.get("ceiling")
    if ceiling:
        cpu = ceiling.get("server_cpu_us_median")
        parts += [
            "",
            f"Ceiling: the same uvicorn serving a null ASGI app answers {ceiling['rps_median']:,.0f}"
            f" req/s (p50 / p99 {ceiling['p50_ms_median']:.2f} / {ceiling['p99_ms_median']:.2f} ms"
            + (f", {_us(cpu)} µs of server CPU per request" if cpu else "")
            + f") to the `{ceiling['scenario']}` request: no framework can go faster here, and the"
            " server's own cost bounds every ratio above.",
        ]
    cells = [*section["results"], *([ceiling] if ceiling else [])]
    noisy = [c for c in cells if len(c["runs"]) > 1 and _spread(c) > 1.25]
    if noisy:
        worst = max(noisy, key=_spread)
        parts += [
            "",
            f"**Noisy run**: in {len(noisy)} of {len(cells)} cells the req/s of the fastest repetition"
            f" was over 1.25x the slowest's (worst: {worst['peer']} / {worst['scenario']},"
            f" {min(_rates(worst)):,.0f} to {max(_rates(worst)):,.0f}): other work was competing for"
            " the CPUs. Treat differences under ~25% in this section as noise; `--full` runs longer.",
        ]
    cpu_table = http_cpu_table(results)
    if cpu_table:
        parts += [
            "",
            "Server CPU time per request (µs, lower is better; user + system time of the uvicorn"
            " process over a run / its requests). It leaves out time spent waiting for a CPU, but"
            " not the slowdown of sharing one. `x Peer` = that peer's CPU per request / the"
            " toolkit's, paired by run.",
            "",
            cpu_table,
        ]
    return parts


def markdown(results: dict[str, Any], chart: str | None = None) -> str:
    """The whole report; ``chart`` overrides where the chart image is linked from."""
    machine = results["machine"]
    versions = ", ".join(f"{name} {version}" for name, version in results["versions"].items())
    parts = [
        "# Benchmarks",
        "",
        f"- Machine: {machine['cpu']}, {machine['cpus']} CPUs, {machine['os']};"
        f" load average at start {machine.get('load_average', 'unknown')}",
        f"- Python: {machine['python']}",
        f"- Versions: {versions}",
        f"- Command: `{results['command']}` ({results['created']}, {results['elapsed_seconds']:.0f} s)",
        "- Reproduce: `make bench` (installs the locked versions of `uv.lock`, then runs"
        " `python -m benchmarks`; HTTP mode needs `wrk`: `apt-get install -y wrk`); method, fairness"
        " choices and caveats in `benchmarks/README.md`",
    ]
    goals = targets(results)
    if goals:
        parts += ["", "Targets:", "", *goals]
    if "inprocess" in results:
        section = results["inprocess"]
        settings = section["settings"]
        parts += [
            "",
            "## In-process",
            "",
            "Median µs per request (lower is better); the ASGI app is called directly, no server."
            " `x Peer` = that peer's time / the toolkit's (above 1: the toolkit is faster), as the"
            " median of the ratios of batches run side by side.",
            "",
            inprocess_table(results),
            *_missing(results, "inprocess"),
            "",
            f"{settings['sessions']} session(s) of fresh worker processes, one per peer; per session,"
            f" {settings['repeat']} repetitions of one ~{settings['batch_seconds'] * 1000:.0f} ms batch"
            " per peer and scenario, peers alternating. Harness cost"
            f" {_us(section.get('harness_us'))} µs/request (a null ASGI app), included in every number.",
        ]
    if "http" in results:
        parts += ["", "## HTTP", "", *http_section(results)]
    if "growth" in results:
        settings = results["growth"]["settings"]
        parts += [
            "",
            "## Growth",
            "",
            "Routing: in-process µs per request to the *last*-registered of N routes `/r{i}/{id}`"
            " (an `int` parameter, a tiny text handler), one fresh process per peer and size;"
            f" median of {settings['repeat']} batches. The last row is the paired ratio to the smallest app.",
            "",
            routing_table(results),
            "",
            f"Start-up: import + build an app of {settings['startup_routes']} routes + lifespan start +"
            f" first response, timed inside a fresh process; median of {settings['startup_runs']} runs"
            ' ("process ms": the whole process, interpreter start to exit). Memory: peak RSS of a'
            " fresh process serving the benchmark app, after start-up and after the requests.",
            "",
            startup_table(results),
        ]
    link = chart if chart is not None else results.get("chart")
    if link:
        parts += ["", f"![benchmark chart]({link})"]
    notes = results.get("inprocess", {}).get("parity_notes") or []
    if notes:
        parts += ["", "## Parity notes (toolkit vs FastAPI; not failures)", ""]
        parts += [f"- {note}" for note in notes]
    return "\n".join(parts) + "\n"


README_START = "<!-- benchmark:start (generated by python -m benchmarks.report --readme) -->"
README_END = "<!-- benchmark:end -->"
ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = Path("benchmarks/published/benchmarks.json")  # relative to ROOT; committed
README_CHART = Path("docs/benchmarks.png")
LATEST = Path("benchmarks/results/latest.json")


def readme_section(published: Path) -> str:
    """The README's generated section (between the markers) for a published results file."""
    raw = published.read_bytes()
    results = json.loads(raw)
    chart = README_CHART.as_posix() if results.get("chart") else ""
    body = markdown(results, chart=chart)
    body = body.replace("\n## ", "\n#### ").replace("# Benchmarks\n", "### Latest results\n", 1)
    digest = hashlib.sha256(raw).hexdigest()[:16]
    source = f"- Source: [`{PUBLISHED.as_posix()}`]({PUBLISHED.as_posix()}) (sha256 `{digest}`…)\n"
    head, rest = body.split("\n\n", 1)  # after the "### Latest results" heading
    return f"{head}\n\n{source}{rest}"


def replace_section(text: str, section: str, where: str = "README.md") -> str:
    if README_START not in text or README_END not in text:
        raise SystemExit(f"{where}: the benchmark markers are missing")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    return f"{head}{README_START}\n{section}{README_END}{tail}"


def current_section(text: str) -> str:
    """What the README holds between the markers now."""
    return text.split(README_START, 1)[1].split(README_END, 1)[0].removeprefix("\n")


def update_readme(readme: Path, root: Path = ROOT) -> None:
    """Rewrite the README's section from ``root / PUBLISHED``: the only source it accepts."""
    published = root / PUBLISHED
    if not published.exists():
        raise SystemExit(f"{published} does not exist: publish a run first (--publish)")
    text = readme.read_text(encoding="utf-8")
    readme.write_text(replace_section(text, readme_section(published), str(readme)), encoding="utf-8")


def publish(results_file: Path, readme: Path, root: Path = ROOT) -> Path:
    """Copy a run's results (and chart) to the committed locations, then rewrite the README."""
    results = json.loads(results_file.read_text(encoding="utf-8"))
    for key in ("created", "command", "machine", "versions"):
        if key not in results:
            raise SystemExit(f"{results_file}: not a results file of python -m benchmarks (no {key!r})")
    chart = results_file.parent / results["chart"] if results.get("chart") else None
    if chart is not None and chart.exists():
        (root / README_CHART).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(chart, root / README_CHART)
    else:
        results["chart"] = None
    target = root / PUBLISHED
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    update_readme(readme, root)
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="?", type=Path, help=f"default: {LATEST}")
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--readme", type=Path, nargs="?", const=Path("README.md"), help=f"rewrite it from {PUBLISHED}"
    )
    action.add_argument(
        "--publish", action="store_true", help=f"copy the results to {PUBLISHED}, then rewrite README.md"
    )
    args = parser.parse_args(argv)
    if args.readme is not None:
        if args.results is not None:
            parser.error(f"--readme takes no results file: the README is generated from {PUBLISHED} only")
        update_readme(args.readme)
        print(f"updated {args.readme} from {PUBLISHED}")
    elif args.publish:
        target = publish(args.results or ROOT / LATEST, ROOT / "README.md")
        print(f"published {target.relative_to(ROOT)}; updated README.md (commit both, and {README_CHART})")
    else:
        results = json.loads((args.results or LATEST).read_text(encoding="utf-8"))
        print(markdown(results), end="")


if __name__ == "__main__":
    main()
