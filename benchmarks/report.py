"""Render a results file as Markdown: ``python -m benchmarks.report benchmarks/results/latest.json``.

The README's benchmark section is generated from one file only, the committed
``benchmarks/published/benchmarks.json``, so every number in it can be checked against a file
with the machine, the versions and the command that produced it:

    python -m benchmarks.report --publish   # results/latest.json -> published/, README rewritten
    python -m benchmarks.report --readme    # README rewritten from published/ (nothing else)

``--publish`` also copies the run's chart to ``docs/benchmarks.png``, and the run's scaling
section, if it has one, to ``benchmarks/published/scaling.json`` (a run of ``--mode scaling``
alone publishes only that file); the README's "Scaling" subsection is generated from it, with its
own source, machine and command. A test regenerates the section from the published files and
fails if the README differs. Numbers are never typed by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from .report_scaling import scaling_section
from .report_tables import (
    NULL,
    http_above_null_table,
    http_cpu_table,
    http_ratio_table,
    http_table,
    inprocess_overhead_table,
    inprocess_ratio_table,
    inprocess_table,
    latency_table,
    missing,
    routing_table,
    small_n,
    startup_table,
)
from .report_targets import headline, targets

# The results file's format: 2 added the null app to every mode, intervals to every paired
# figure (``low``, ``high``, ``n``) and the µs above the null app. Older files are not rendered.
FORMAT = 2


def inprocess_section(results: dict[str, Any]) -> list[str]:
    section = results["inprocess"]
    s = section["settings"]
    return [
        "Median µs per request (lower is better); the ASGI app is called directly, no server."
        f" `{NULL}`: a null ASGI app timed in the same rotation, the harness's own cost (the floor),"
        " included in every number.",
        "",
        inprocess_table(results),
        *missing(results, "inprocess"),
        "",
        "How many times faster the toolkit is (a peer's time / the toolkit's; above 1, the toolkit"
        " wins): the median of the paired ratios of batches run side by side (same session and"
        " repetition), and its 95% bootstrap interval (sessions resampled, then batches).",
        "",
        inprocess_ratio_table(results),
        "",
        "µs per request above the null app (what the framework adds; lower is better): the median"
        " of the paired differences, batch by batch, and its 95% bootstrap interval.",
        "",
        inprocess_overhead_table(results),
        "",
        f"{s['sessions']} session(s) of fresh worker processes, one per peer and one for the null"
        f" app; per session, {s['repeat']} repetitions of one ~{s['batch_seconds'] * 1000:.0f} ms"
        f" batch per worker and scenario, the order rotating: up to {s['sessions'] * s['repeat']}"
        " paired batches per cell.",
    ]


def http_section(results: dict[str, Any]) -> list[str]:
    section = results["http"]
    if "skipped" in section:
        return [f"Skipped: {section['skipped']}."]
    s = section["settings"]
    parts = [
        f"Median requests/s over real HTTP (higher is better). `{NULL}`: the same server serving a null"
        " ASGI app the same request: what the server alone costs (on a shared machine a peer can come out"
        " above it in a cell, and its µs above the null app below zero; the intervals show it)."
        " A cell whose runs had errors, or no answers at all, counts in no verdict or headline.",
        "",
        http_table(results),
        *missing(results, "http"),
        "",
        f"One `{section['server']}` per peer, pinned to CPU {s['server_cpu']}; `{section['wrk']}`"
        f" pinned to CPU {s['load_cpu']}, {s['wrk_threads']} thread, {s['connections']} connections"
        f"{_connection_exceptions(s)},"
        f" {s['repeat']} run(s) of {s['seconds']} s per server and scenario, the order rotating;"
        f" {s['warmup_requests']} warm-up requests per scenario. Errors: connect, read, write,"
        " timeouts and responses outside 2xx/3xx, over all runs.",
        "",
        "How many times faster the toolkit is (its req/s / a peer's): the median of the paired"
        " ratios of runs in the same repetition, and its 95% bootstrap interval." + small_n(s["repeat"]),
        "",
        http_ratio_table(results),
        "",
        "µs per request above the null app (1e6 / req/s - the null app's, run by run: what the"
        " framework adds to the server's own cost; lower is better), median and 95% interval.",
        "",
        http_above_null_table(results),
        "",
        "Latency: median p50 / p99 (ms) over the runs, and the toolkit's p99 / p50 (per run;"
        " median and 95% interval).",
        "",
        latency_table(results),
    ]
    cpu_table = http_cpu_table(results)
    if cpu_table:
        parts += [
            "",
            "Server CPU time per request (µs, lower is better; user + system time of the uvicorn"
            " process over a run / its requests; medians). It leaves out time spent waiting for a"
            " CPU, but not the slowdown of sharing one. The paired ratios to the toolkit's, with"
            " intervals, are in the results file (`http.ratios[].cpu`).",
            "",
            cpu_table,
        ]
    return parts


def _connection_exceptions(settings: dict[str, Any]) -> str:
    own = settings.get("scenario_connections") or {}
    if not own:
        return ""
    cells = ", ".join(f"`{name}`: {count}" for name, count in own.items())
    return f" ({cells}; SQLite takes one writer at a time, see `benchmarks/README.md`)"


def growth_section(results: dict[str, Any]) -> list[str]:
    settings = results["growth"]["settings"]
    return [
        "Routing: in-process µs per request to the *last*-registered of N routes `/r{i}/{id}`"
        " (an `int` parameter, a tiny text handler), one fresh process per peer and size;"
        f" median of {settings['repeat']} batches. The last row: the median of the paired ratios"
        " to the smallest app, and its 95% bootstrap interval.",
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


def provenance(results: dict[str, Any]) -> list[str]:
    """Where a results file's numbers come from: machine, Python, versions, command."""
    machine = results["machine"]
    versions = ", ".join(f"{name} {version}" for name, version in results["versions"].items())
    return [
        f"- Machine: {machine['cpu']}, {machine['cpus']} CPUs, {machine['os']};"
        f" load average at start {machine.get('load_average', 'unknown')}",
        f"- Python: {machine['python']}",
        f"- Versions: {versions}",
        f"- Command: `{results['command']}` ({results['created']}, {results['elapsed_seconds']:.0f} s)",
    ]


def _scaling(results: dict[str, Any], scaling: dict[str, Any] | None) -> list[str]:
    """The scaling section: from this run, or from ``scaling``, a file of its own (with its
    provenance, since it may come from another run than the rest)."""
    if scaling is not None:
        section = scaling_section(scaling["scaling"], scaling["labels"])
        return ["", "## Scaling", "", *provenance(scaling), "", *section]
    if "scaling" in results:
        return ["", "## Scaling", "", *scaling_section(results["scaling"], results["labels"])]
    return []


def markdown(results: dict[str, Any], chart: str | None = None, scaling: dict[str, Any] | None = None) -> str:
    """The whole report; ``chart`` overrides where the chart image is linked from; ``scaling``,
    a published scaling file, replaces the run's own scaling section."""
    if results.get("format", 1) < FORMAT:
        raise SystemExit(
            f"this results file has format {results.get('format', 1)}; the report reads format"
            f" {FORMAT} (intervals, the null app): re-run python -m benchmarks"
        )
    parts = [
        "# Benchmarks",
        "",
        *provenance(results),
        "- Reproduce: `make bench` (installs the locked versions of `uv.lock`, then runs"
        " `python -m benchmarks`; HTTP mode needs `wrk`: `apt-get install -y wrk`); method, fairness"
        " choices, statistics and caveats in `benchmarks/README.md`",
    ]
    lines = headline(results)
    if lines:
        parts += ["", "Headline (medians of paired ratios; intervals in the tables):", "", *lines]
    goals = targets(results)
    if goals:
        parts += [
            "",
            "Targets, judged on 95% intervals: **met** when the whole interval clears the target,"
            " **missed** when the whole interval falls short of it, **inconclusive** when it"
            " straddles the target (this run shows neither):",
            "",
            *goals,
        ]
    if "inprocess" in results:
        parts += ["", "## In-process", "", *inprocess_section(results)]
    if "http" in results:
        parts += ["", "## HTTP", "", *http_section(results)]
    if "growth" in results:
        parts += ["", "## Growth", "", *growth_section(results)]
    link = chart if chart is not None else results.get("chart")
    if link:
        parts += ["", f"![benchmark chart]({link})"]
    notes = results.get("inprocess", {}).get("parity_notes") or []
    if notes:
        parts += ["", "## Parity notes (toolkit vs FastAPI; not failures)", ""]
        parts += [f"- {note}" for note in notes]
    parts += _scaling(results, scaling)
    return "\n".join(parts) + "\n"


README_START = "<!-- benchmark:start (generated by python -m benchmarks.report --readme) -->"
README_END = "<!-- benchmark:end -->"
ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = Path("benchmarks/published/benchmarks.json")  # relative to ROOT; committed
# The scaling mode's run, published on its own (it takes minutes, the rest most of an hour); the
# README's "Scaling" subsection is generated from it, when it exists, next to PUBLISHED.
PUBLISHED_SCALING = Path("benchmarks/published/scaling.json")
README_CHART = Path("docs/benchmarks.png")
LATEST = Path("benchmarks/results/latest.json")
SECTIONS = ("inprocess", "http", "growth")  # the modes published to PUBLISHED (scaling has its own file)


def readme_section(published: Path) -> str:
    """The README's generated section (between the markers) for a published results file."""
    raw = published.read_bytes()
    results = json.loads(raw)
    chart = README_CHART.as_posix() if results.get("chart") else ""
    scaling_file = published.parent / PUBLISHED_SCALING.name
    scaling_raw = scaling_file.read_bytes() if scaling_file.exists() else None
    scaling = json.loads(scaling_raw) if scaling_raw is not None else None
    body = markdown(results, chart=chart, scaling=scaling)
    body = body.replace("\n## ", "\n#### ").replace("# Benchmarks\n", "### Latest results\n", 1)
    head, rest = body.split("\n\n", 1)  # after the "### Latest results" heading
    body = f"{head}\n\n{_source(PUBLISHED, raw)}{rest}"
    if scaling_raw is not None:
        body = body.replace(
            "\n#### Scaling\n\n", f"\n#### Scaling\n\n{_source(PUBLISHED_SCALING, scaling_raw)}", 1
        )
    return body


def _source(path: Path, raw: bytes) -> str:
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return f"- Source: [`{path.as_posix()}`]({path.as_posix()}) (sha256 `{digest}`…)\n"


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


def publish_files(results_file: Path, root: Path = ROOT) -> list[Path]:
    """Copy a run's results (and chart) to the committed locations: its scaling section, if any,
    to ``PUBLISHED_SCALING`` (with the run's machine, versions and command), the other modes, if
    any, to ``PUBLISHED``. A run of the scaling mode alone leaves ``PUBLISHED`` as it is."""
    results = json.loads(results_file.read_text(encoding="utf-8"))
    for key in ("created", "command", "machine", "versions"):
        if key not in results:
            raise SystemExit(f"{results_file}: not a results file of python -m benchmarks (no {key!r})")
    if results.get("format", 1) < FORMAT:
        raise SystemExit(f"{results_file}: format {results.get('format', 1)}, older than {FORMAT}: re-run it")
    written = []
    scaling = results.pop("scaling", None)
    results["modes"] = [mode for mode in results.get("modes", []) if mode != "scaling"]
    if scaling is not None and "skipped" not in scaling:  # a skipped mode keeps the published run
        record = {**{k: v for k, v in results.items() if k not in SECTIONS}, "modes": ["scaling"]}
        record.update(peers=scaling["peers"], scenarios=scaling["scenarios"], chart=None, scaling=scaling)
        record.update(labels={p: results["labels"][p] for p in scaling["peers"]})
        record["elapsed_seconds"] = scaling["elapsed_seconds"]
        written.append(_write(root / PUBLISHED_SCALING, record))
    if any(mode in results for mode in SECTIONS):
        chart = results_file.parent / results["chart"] if results.get("chart") else None
        if chart is not None and chart.exists():
            (root / README_CHART).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(chart, root / README_CHART)
        else:
            results["chart"] = None
        written.insert(0, _write(root / PUBLISHED, results))
    if not written:
        raise SystemExit(f"{results_file}: no mode's results to publish")
    return written


def _write(target: Path, results: dict[str, Any]) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return target


def publish(results_file: Path, readme: Path, root: Path = ROOT) -> Path:
    """``publish_files``, then rewrite the README; the first file written."""
    written = publish_files(results_file, root)
    update_readme(readme, root)
    return written[0]


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
        written = publish_files(args.results or ROOT / LATEST)
        update_readme(ROOT / "README.md")
        names = ", ".join(str(path.relative_to(ROOT)) for path in written)
        print(f"published {names}; updated README.md (commit them, and {README_CHART})")
    else:
        results = json.loads((args.results or LATEST).read_text(encoding="utf-8"))
        print(markdown(results), end="")


if __name__ == "__main__":
    main()
