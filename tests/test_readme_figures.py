"""Every figure in the README traces to a committed results file with its machine, versions and
command: the generated sections are regenerated here and compared byte for byte.

The benchmark section is compared against ``benchmarks/published/benchmarks.json`` once that file
is of the current format (``report.FORMAT``); a small file of that format, built here from the
runners' own statistics, exercises the same rendering path in any case."""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "adversarial"))

import summary  # noqa: E402

from benchmarks import http_runner, inprocess_runner, report  # noqa: E402
from benchmarks.spec import SCENARIOS  # noqa: E402

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_benchmark_section_is_generated_from_the_published_results() -> None:
    published = ROOT / report.PUBLISHED
    assert published.exists(), f"{report.PUBLISHED} is missing: python -m benchmarks.report --publish"
    results = json.loads(published.read_text())
    assert {"created", "command", "machine", "versions", "inprocess", "http"} <= set(results)
    if results.get("format", 1) < report.FORMAT:  # written before intervals: cannot be rendered
        pytest.skip(
            f"{report.PUBLISHED} predates format {report.FORMAT} (intervals, the null app):"
            " publish a new run (python -m benchmarks, then python -m benchmarks.report --publish)"
        )
    assert report.current_section(README) == report.readme_section(published), (
        f"README.md's benchmark section is not what {report.PUBLISHED} gives:"
        " run python -m benchmarks.report --readme (never edit the section by hand)"
    )


def test_the_benchmark_section_renders_a_new_format_file(tmp_path: Path) -> None:
    """The same path as above, on a small results file of the current format built from the
    runners' own statistics (a published file of the current format replaces this as proof)."""
    results = synthetic_results()
    published = tmp_path / report.PUBLISHED
    published.parent.mkdir(parents=True)
    published.write_text(json.dumps(results, indent=2) + "\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nold\n{report.README_END}\nrest\n")
    report.update_readme(readme, root=tmp_path)
    section = report.current_section(readme.read_text())
    assert section == report.readme_section(published)
    # What the section must show: where the numbers come from, every peer, intervals, verdicts.
    machine = results["machine"]
    n = len(SCENARIOS)  # the verdicts count the scenarios a run covered out of the spec's
    for text in (
        f"(sha256 `{hashlib.sha256(published.read_bytes()).hexdigest()[:16]}`",
        f"- Machine: {machine['cpu']}, {machine['cpus']} CPUs",
        "fastapi 0.165.0",
        f"- Command: `{results['command']}` ({results['created']},",
        "#### In-process",
        "#### HTTP",
        "#### Growth",
        "| scenario | null app | toolkit | FastAPI (tuned) | FastAPI (as deployed) | Starlette |",
        "| scenario | FastAPI (tuned) | FastAPI (as deployed) | Starlette |",
        f"- HTTP, toolkit ≥ 3\N{MULTIPLICATION SIGN} FastAPI (tuned) req/s on every scenario run (3 of {n}):"
        " **missed**",
        f"- HTTP, toolkit ahead of FastAPI (as deployed) (ratio > 1) on every scenario run (3 of {n}):"
        " **met** on all 3",
        f"- HTTP, toolkit ahead of Starlette (ratio > 1) on every scenario run (3 of {n}): **inconclusive**",
        "- In-process, toolkit ≤ 3 µs per request above the null app on plaintext and json: **met**",
        f"- Latency, toolkit p99 ≤ 2\N{MULTIPLICATION SIGN} its p50 on every scenario run (3 of {n})"
        " (64 connections): **met**",
        "- FastAPI (tuned), over HTTP (req/s): the toolkit is",
    ):
        assert text in section, text
    http = results["http"]
    tuned = next(r for r in http["ratios"] if (r["peer"], r["scenario"]) == ("fastapi_tuned", "json"))
    cell = f"{tuned['median']:.2f}\N{MULTIPLICATION SIGN} ({tuned['low']:.2f}\N{EN DASH}{tuned['high']:.2f})"
    assert f"| json | {cell} |" in section
    assert "noise" not in section  # the intervals say it, per cell


def synthetic_results() -> dict[str, Any]:
    """A results file of the current format: fixed made-up samples, put through the runners'
    own statistics (``paired_ratios``, ``overheads``, ``paired``, ``above_null``, ``latency``)."""
    rng = random.Random(11)
    peers = ["toolkit", "fastapi_tuned", "fastapi", "starlette"]
    scenarios = ["plaintext", "json", "shop_list"]
    labels = {"toolkit": "toolkit", "fastapi_tuned": "FastAPI (tuned)", "fastapi": "FastAPI (as deployed)"}
    labels["starlette"] = "Starlette"
    cost = {"harness": 0.8, "toolkit": 3.0, "fastapi_tuned": 8.0, "fastapi": 40.0, "starlette": 3.1}
    rps = {
        "ceiling": 40_000,
        "toolkit": 30_000,
        "fastapi_tuned": 12_000,
        "fastapi": 5_000,
        "starlette": 29_500,
    }

    def serves(peer: str, scenario: str) -> bool:
        return not (scenario == "shop_list" and peer == "starlette")

    samples: dict[tuple[str, str], list[float]] = {}
    sessions: dict[tuple[str, str], list[int]] = {}
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for scenario in scenarios:
        scale = 150 if scenario == "shop_list" else 1
        for peer in [*peers, "harness"]:
            if serves(peer, scenario):
                floor = cost[peer] if peer == "harness" else cost[peer] * scale
                samples[(peer, scenario)] = [floor * rng.uniform(0.97, 1.03) for _ in range(8)]
                sessions[(peer, scenario)] = [0] * 3 + [1] * 3 + [2] * 2
        for peer in [*peers, "ceiling"]:
            if serves(peer, scenario):
                runs[(peer, scenario)] = [
                    {
                        "requests": 1000,
                        "rps": rps[peer] / scale * rng.uniform(0.97, 1.03),
                        "server_cpu_us": 1e6 / rps[peer] * scale,
                        "latency_us": {"p50": 2000.0, "p99": 2000.0 * rng.uniform(1.2, 1.6)},
                        "error_count": 0,
                    }
                    for _ in range(5)
                ]
    inprocess_rows = [
        inprocess_runner.summarize(p, s, samples[(p, s)], sessions[(p, s)])
        for s in scenarios
        for p in peers
        if (p, s) in samples
    ]
    http_rows = [http_runner._summary(p, s, runs[(p, s)]) for s in scenarios for p in peers if (p, s) in runs]
    routing = [
        {"peer": p, "routes": n, "median_us": cost[p] * 2, "vs_smallest": 1.0, "vs_smallest_interval": None}
        for p in peers
        for n in (10, 1000)
    ]
    for row in routing:
        if row["routes"] == 1000:
            row["vs_smallest_interval"] = {"median": 1.01, "low": 0.99, "high": 1.04, "n": 10}
    versions = {"toolkit": "0.1.0", "fastapi": "0.165.0", "starlette": "1.10.0"}
    return {
        "format": report.FORMAT,
        "created": "2026-12-05T12:00:00+00:00",
        "command": "python -m benchmarks --full",
        "modes": ["inprocess", "http", "growth"],
        "preset": "full",
        "machine": {"cpu": "Test CPU", "cpus": 2, "os": "Linux", "python": "CPython 3.11.7"},
        "versions": versions,
        "peers": peers,
        "labels": labels,
        "scenarios": scenarios,
        "inprocess": {
            "settings": {"sessions": 3, "repeat": 3, "batch_seconds": 0.05, "warmup_seconds": 0.2},
            "null_app": [
                inprocess_runner.summarize("harness", s, samples[("harness", s)], sessions[("harness", s)])
                for s in scenarios
            ],
            "results": inprocess_rows,
            "ratios": inprocess_runner.paired_ratios(samples, sessions, peers, scenarios),
            "overheads": inprocess_runner.overheads(samples, sessions, peers, scenarios),
            "parity_notes": [],
        },
        "http": {
            "settings": {
                **http_runner.FULL,
                "server_cpu": 0,
                "load_cpu": 1,
                "wrk_threads": 1,
                "scenario_connections": {},
            },
            "wrk": "wrk 4.1.0",
            "server": "uvicorn (1 worker)",
            "results": http_rows,
            "null_app": [http_runner._summary("ceiling", s, runs[("ceiling", s)]) for s in scenarios],
            "ratios": http_runner.paired(runs, peers, scenarios),
            "above_null": http_runner.above_null(runs, peers, scenarios),
            "latency": http_runner.latency(runs, peers, scenarios),
        },
        "growth": {
            "settings": {"repeat": 10, "startup_routes": 50, "startup_runs": 5, "memory_requests": 20_000},
            "routing": routing,
            "startup": [{"peer": p, "median_ms": 100.0, "process_median_ms": 150.0} for p in peers],
            "memory": [{"peer": p, "rss_started_mb": 30.0, "rss_peak_mb": 31.0} for p in [*peers, "harness"]],
        },
        "elapsed_seconds": 2400.0,
        "chart": None,
    }


def test_the_reliability_section_is_generated_from_the_published_results() -> None:
    published = ROOT / summary.PUBLISHED
    assert published.exists(), f"{summary.PUBLISHED} is missing: make reliability"
    data = json.loads(published.read_text())
    assert {"created", "machine", "versions", "adversarial", "soak"} <= set(data)
    assert all(row.get("failed", 0) == 0 for row in data["adversarial"].values())
    assert summary.current_section(README) == summary.readme_section(published), (
        f"README.md's Reliability section is not what {summary.PUBLISHED} gives:"
        " run python tests/adversarial/summary.py --readme (never edit the section by hand)"
    )


def test_the_cost_of_lax_bodies_is_quoted_from_the_published_results() -> None:
    published = json.loads((ROOT / "benchmarks" / "published" / "strictness.json").read_text())
    ratio, (low, high) = published["lax_over_strict"], published["interval_95"]
    quoted = (
        f"lax bodies cost {(ratio - 1) * 100:+.1f}% on the `body` scenario "
        f"(95% interval {(low - 1) * 100:+.1f}% to {(high - 1) * 100:+.1f}%)"
    )
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert quoted in readme
