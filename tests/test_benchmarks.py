"""The benchmark suite: every peer answers the spec identically; the statistics do what the
README says; the harness runs end to end.

No timing is asserted: the runs here are tiny and only prove the harness works.
"""

from __future__ import annotations

import functools
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # ``benchmarks`` is not installed; ``pytest`` alone may not add the root
    sys.path.insert(0, str(ROOT))

from benchmarks import http_runner, inprocess_runner, stats  # noqa: E402
from benchmarks.__main__ import durations_table, estimate_minutes  # noqa: E402
from benchmarks.peers import PEERS  # noqa: E402
from benchmarks.report import (  # noqa: E402
    FORMAT,
    PUBLISHED,
    README_CHART,
    README_END,
    README_START,
    markdown,
    publish,
)
from benchmarks.report_tables import inprocess_ratio_table, inprocess_table  # noqa: E402
from benchmarks.report_targets import judge  # noqa: E402
from benchmarks.spec import CASES, ID, JSON, JWT, SCENARIOS, TIMESTAMP, Case  # noqa: E402

TINY_INPROCESS = ["--quick", "--repeat", "2", "--batch-seconds", "0.005", "--warmup-seconds", "0.02"]
# What the FastAPI peer imports besides FastAPI (the bench extra has them all).
FASTAPI_PEER_NEEDS = ("fastapi", "fastapi_cache", "slowapi")


@functools.cache
def _answers(peer: str) -> dict[str, tuple[int, Any]]:
    """Every spec case the peer has an app for, sent once, in order, by a fresh worker process
    (``benchmarks.inprocess --check``, as the runner does): fresh caches, rate-limit counters and
    databases, whatever ran before in this process. Fails on any difference from the spec."""
    if peer == "fastapi":
        for module in FASTAPI_PEER_NEEDS:
            pytest.importorskip(module, reason="the bench extra has it: pip install -e '.[bench]'")
    command = [sys.executable, "-m", "benchmarks.inprocess", "--peer", peer, "--check"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    responses = {line["case"]: line for line in lines if line.get("kind") == "response"}
    answers: dict[str, tuple[int, Any]] = {}
    failures = []
    for case in CASES:
        if not case.serves(peer):
            assert case.name not in responses, f"{peer} answered {case.name}, which it has no app for"
            continue
        got = responses[case.name]
        headers = [(name, value) for name, value in got["headers"]]
        body = got["body"].encode()
        failures += [
            f"{case.name}: {problem}"
            for problem in case.problems(got["status"], got["content_type"], body, headers)
        ]
        parsed = case.normalised(json.loads(body)) if got["content_type"] == JSON else got["body"]
        answers[case.name] = (got["status"], parsed)
    assert not failures, f"{peer} does not answer as benchmarks/spec.py says:\n" + "\n".join(failures)
    return answers


@pytest.mark.parametrize("peer", list(PEERS))
def test_peer_answers_every_spec_case(peer: str) -> None:
    _answers(peer)


def test_peers_answer_the_timed_scenarios_identically() -> None:
    answers = {peer: _answers(peer) for peer in PEERS}
    for name, case in SCENARIOS.items():
        served = [a[name] for peer, a in answers.items() if case.serves(peer)]
        assert len(served) >= 2, name  # every scenario compares at least the toolkit and FastAPI
        assert len({json.dumps(answer, sort_keys=True) for answer in served}) == 1, name


def test_store_and_shop_scenarios_have_their_peers() -> None:
    """The cache and rate-limit scenarios run on all three peers; the shop on the toolkit and
    FastAPI only (there is no bare-Starlette shop)."""
    for name in ("cached", "ratelimited"):
        assert all(SCENARIOS[name].serves(peer) for peer in PEERS), name
    for name in ("shop_login", "shop_list", "shop_create"):
        assert [peer for peer in PEERS if SCENARIOS[name].serves(peer)] == ["toolkit", "fastapi"], name
    assert SCENARIOS["shop_create"].bearer_from == "shop_token"


def test_like_values_accept_what_may_differ_and_nothing_else() -> None:
    case = Case("x", "GET", "/x", json={"id": ID, "at": TIMESTAMP, "token": JWT, "name": "a"})
    good = b'{"id": 3, "at": "2026-01-02T03:04:05.123456Z", "token": "a.b-c.d_e", "name": "a"}'
    assert case.problems(200, JSON, good) == []
    assert case.variable
    assert not SCENARIOS["json"].variable
    for bad in (
        b'{"id": "3", "at": "2026-01-02T03:04:05Z", "token": "a.b.c", "name": "a"}',
        b'{"id": true, "at": "2026-01-02T03:04:05Z", "token": "a.b.c", "name": "a"}',
        b'{"id": 3, "at": "yesterday", "token": "a.b.c", "name": "a"}',
        b'{"id": 3, "at": "2026-01-02T03:04:05Z", "token": "not a jwt", "name": "a"}',
        b'{"id": 3, "at": "2026-01-02T03:04:05Z", "token": "a.b.c", "name": "b"}',
        b'{"id": 3, "at": "2026-01-02T03:04:05Z", "token": "a.b.c"}',
    ):
        assert case.problems(200, JSON, bad), bad
    assert case.normalised(json.loads(good)) == {
        "id": "<id>",
        "at": "<timestamp>",
        "token": "<jwt>",
        "name": "a",
    }


def _run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "benchmarks", *args]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, result.stderr
    return result


def test_tiny_inprocess_run_writes_results(tmp_path: Path) -> None:
    args = ["--mode", "inprocess", "--scenario", "json", "--peer", "toolkit", "--output-dir", str(tmp_path)]
    result = _run([*args, *TINY_INPROCESS])
    results = json.loads((tmp_path / "latest.json").read_text())
    assert {"created", "command", "machine", "versions", "peers", "scenarios", "inprocess"} <= set(results)
    assert results["format"] == FORMAT
    assert results["peers"] == ["toolkit"]
    assert results["scenarios"] == ["json"]
    section = results["inprocess"]
    assert {"settings", "statistics", "null_app", "results", "ratios", "overheads", "parity_notes"} <= set(
        section
    )
    (row,) = section["results"]
    assert row["peer"] == "toolkit"
    assert len(row["us_per_request"]) == 2
    (floor,) = section["null_app"]  # the null app, timed in the same repetitions
    assert (floor["peer"], floor["scenario"], len(floor["us_per_request"])) == ("harness", "json", 2)
    (above,) = section["overheads"]
    assert (above["peer"], above["scenario"], above["n"]) == ("toolkit", "json", 2)
    assert above["low"] <= above["median"] <= above["high"]
    assert "| json |" in (tmp_path / "latest.md").read_text()
    assert "| json |" in result.stdout

    root = tmp_path / "repo"
    root.mkdir()
    readme = root / "README.md"
    readme.write_text(f"intro\n{README_START}\nold\n{README_END}\nrest\n")
    published = publish(tmp_path / "latest.json", readme, root)
    assert published == root / PUBLISHED
    assert json.loads(published.read_text()) == results
    text = readme.read_text()
    assert "old" not in text
    assert text.startswith("intro\n")
    assert text.endswith("rest\n")
    assert "### Latest results" in text
    assert "#### In-process" in text
    assert f"- Source: [`{PUBLISHED.as_posix()}`]" in text
    assert (root / README_CHART).exists() == bool(results["chart"])


def test_the_readme_is_never_generated_from_another_results_file(tmp_path: Path) -> None:
    other = tmp_path / "latest.json"
    other.write_text("{}")
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.report", str(other), "--readme", str(tmp_path / "README.md")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "--readme takes no results file" in result.stderr


def test_tiny_run_leaves_a_peer_without_the_scenario_empty(tmp_path: Path) -> None:
    """The shop has no Starlette version: no samples, no ratio, a dash in the table."""
    args = ["--mode", "inprocess", "--scenario", "shop_list", "--scenario", "cached", "--peer", "toolkit"]
    _run([*args, "--peer", "starlette", "--output-dir", str(tmp_path), *TINY_INPROCESS])
    results = json.loads((tmp_path / "latest.json").read_text())
    section = results["inprocess"]
    cells = {(r["peer"], r["scenario"]) for r in section["results"]}
    assert cells == {("toolkit", "shop_list"), ("toolkit", "cached"), ("starlette", "cached")}
    assert [(r["peer"], r["scenario"]) for r in section["ratios"]] == [("starlette", "cached")]
    (shop_row,) = [line for line in inprocess_table(results).splitlines() if line.startswith("| shop_list |")]
    assert shop_row.endswith("| — |")  # Starlette µs
    ratios = inprocess_ratio_table(results).splitlines()
    assert "| shop_list | — |" in ratios
    (cached_row,) = [line for line in ratios if line.startswith("| cached |")]
    assert "\N{MULTIPLICATION SIGN} (" in cached_row  # a ratio with its interval
    assert "no app for the scenario (Starlette on shop_list;" in (tmp_path / "latest.md").read_text()
    assert {(r["peer"], r["scenario"]) for r in section["overheads"]} == cells
    _assert_intervals_recompute(section)


def test_tiny_growth_run(tmp_path: Path) -> None:
    _run(["--mode", "growth", "--quick", "--peer", "toolkit", "--output-dir", str(tmp_path)])
    growth = json.loads((tmp_path / "latest.json").read_text())["growth"]
    assert sorted(r["routes"] for r in growth["routing"]) == [10, 100, 1000]
    assert [s["peer"] for s in growth["startup"]] == ["toolkit"]
    assert [m["peer"] for m in growth["memory"]] == ["toolkit", "harness"]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install -y wrk)")
def test_tiny_http_run(tmp_path: Path) -> None:
    """Over HTTP, with a cookie (session) and a bearer token (shop_create) in wrk's scripts."""
    args = ["--mode", "http", "--quick", "--peer", "toolkit", "--scenario", "session"]
    _run([*args, "--scenario", "shop_create", "--connections", "4", "--output-dir", str(tmp_path)])
    http = json.loads((tmp_path / "latest.json").read_text())["http"]
    rows = {row["scenario"]: row for row in http["results"]}
    assert sorted(rows) == ["session", "shop_create"]
    for name, row in rows.items():
        assert (row["peer"], row["errors"]) == ("toolkit", 0), name
        assert row["requests"] > 0, name
    # The null app is loaded with every scenario's request, in every repetition, like a peer.
    assert sorted((r["scenario"], len(r["runs"])) for r in http["null_app"]) == [
        ("session", 2),
        ("shop_create", 2),
    ]
    for cell in (*http["above_null"], *http["latency"]):
        assert cell["peer"] == "toolkit"
        assert (cell["n"], cell["low"] <= cell["median"] <= cell["high"]) == (2, True)
    assert "## HTTP" in (tmp_path / "latest.md").read_text()


def test_the_strictness_comparison_runs_and_reports_an_interval() -> None:
    import asyncio

    from benchmarks import strictness

    figures = asyncio.run(strictness.measure(pairs=4, calls=20))
    low, high = figures["interval_95"]
    assert figures["lax_us"] > 0
    assert figures["strict_us"] > 0
    assert low <= figures["lax_over_strict"] <= high


# --- the statistics ------------------------------------------------------------------------------


def test_the_bootstrap_interval_of_a_few_values_is_their_range() -> None:
    """With up to five values, the 95% percentile bootstrap interval of the median is their
    range, as the report says for HTTP cells; from six on it is narrower."""
    rng = random.Random(5)
    for n in range(1, 6):
        values = [rng.uniform(1, 2) for _ in range(n)]
        assert stats.bootstrap_interval(values) == (min(values), max(values)), n
    values = [rng.uniform(1, 2) for _ in range(9)]
    low, high = stats.bootstrap_interval(values)
    assert min(values) < low < high < max(values)


def test_the_bootstrap_interval_on_known_data() -> None:
    assert stats.bootstrap_interval([2.5] * 7) == (2.5, 2.5)
    values = [float(v) for v in range(1, 102)]  # median 51
    cell = stats.interval(values)
    assert cell is not None
    assert cell["median"] == 51
    assert cell["n"] == 101
    assert 40 < cell["low"] < 51 < cell["high"] < 62
    assert 0.7 < (51 - cell["low"]) / (cell["high"] - 51) < 1.4  # about symmetric
    # Fixed seed: the same values always give the same interval.
    assert stats.interval(values) == cell
    assert stats.interval([]) is None


def test_the_bootstrap_resamples_sessions_first() -> None:
    """Two sessions agree, a third is 30% slower as a whole: resampling batches alone hides it
    (two thirds of the batches agree); resampling the sessions first shows it."""
    rng = random.Random(3)
    values = [1 + rng.uniform(-0.01, 0.01) for _ in range(20)] + [
        1.3 + rng.uniform(-0.01, 0.01) for _ in range(10)
    ]
    sessions = [0] * 10 + [1] * 10 + [2] * 10
    _, high = stats.bootstrap_interval(values)
    low, grouped_high = stats.bootstrap_interval(values, sessions)
    assert high < 1.2
    assert grouped_high > 1.29
    assert low < 1.0
    # One session: the same as no groups.
    assert stats.bootstrap_interval(values, [0] * 30) == stats.bootstrap_interval(values)


@pytest.mark.parametrize(
    ("low", "high", "target", "options", "expected"),
    [
        (3.1, 3.5, 3.0, {}, "met"),
        (3.0, 3.5, 3.0, {}, "met"),  # the lower bound reaches it: value >= target shown
        (2.5, 2.9, 3.0, {}, "missed"),
        (2.9, 3.1, 3.0, {}, "inconclusive"),
        (1.0, 1.2, 1.0, {"strict": True}, "inconclusive"),  # "ahead" needs the bound above 1
        (1.01, 1.2, 1.0, {"strict": True}, "met"),
        (0.9, 1.0, 1.0, {"strict": True}, "missed"),
        (2.0, 2.9, 3.0, {"better": "lower"}, "met"),
        (2.0, 3.0, 3.0, {"better": "lower"}, "met"),
        (3.1, 3.4, 3.0, {"better": "lower"}, "missed"),
        (2.9, 3.1, 3.0, {"better": "lower"}, "inconclusive"),
    ],
)
def test_verdicts_are_judged_on_the_interval(
    low: float, high: float, target: float, options: dict[str, Any], expected: str
) -> None:
    assert stats.verdict(low, high, target, **options) == expected


def test_a_verdict_needs_an_interval() -> None:
    with pytest.raises(ValueError, match="not an interval"):
        stats.verdict(2.0, 1.0, 1.5)


def test_a_target_is_met_only_when_every_cell_is() -> None:
    def cell(median: float, low: float, high: float) -> dict[str, Any]:
        return {"median": median, "low": low, "high": high, "n": 5}

    def show(c: dict[str, Any]) -> str:
        return f"{c['median']}"

    met = [("a", cell(3.5, 3.2, 3.8)), ("b", cell(3.3, 3.1, 3.4))]
    assert judge(met, 3.0, show) == "**met** on both (closest: b 3.3)"
    straddles = [*met, ("c", cell(3.0, 2.8, 3.2))]
    assert judge(straddles, 3.0, show) == "**inconclusive**: met on 2 of 3; inconclusive on c 3.0"
    missed = [*straddles, ("d", cell(2.5, 2.4, 2.6))]
    assert judge(missed, 3.0, show) == "**missed**: met on 2 of 4; inconclusive on c 3.0; missed on d 2.5"
    assert judge([("x", cell(1.1, 1.0, 1.15))], 1.2, show, better="lower") == "**met**: x 1.1"


def test_the_overhead_above_the_floor_is_paired_by_repetition() -> None:
    # HTTP: µs per request above the null app = 1e6 / rps - 1e6 / rps of the null app.
    assert stats.us_above(10_000, 40_000) == pytest.approx(75.0)
    # In-process: the floor moves with the load; subtracting it batch by batch cancels the move.
    floor = [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]
    toolkit = [f + 3.0 for f in floor]
    fastapi = [f + 40.0 for f in floor]
    samples = {("harness", "json"): floor, ("toolkit", "json"): toolkit, ("fastapi", "json"): fastapi}
    sessions = {key: [0, 0, 0, 1, 1, 1] for key in samples}
    found = inprocess_runner.overheads(samples, sessions, ["toolkit", "fastapi"], ["json"])
    assert [(r["peer"], r["median"], r["low"], r["high"], r["n"]) for r in found] == [
        ("toolkit", 3.0, 3.0, 3.0, 6),
        ("fastapi", 40.0, 40.0, 40.0, 6),
    ]
    (ratio,) = inprocess_runner.paired_ratios(samples, sessions, ["toolkit", "fastapi"], ["json"])
    assert ratio["peer"] == "fastapi"
    assert ratio["low"] <= ratio["median"] <= ratio["high"]
    assert ratio["n"] == 6

    # Over HTTP, the same pairing by repetition.
    def run(rps: float, p50: float = 1000.0, p99: float = 1500.0) -> dict[str, Any]:
        return {"rps": rps, "server_cpu_us": 1e6 / rps, "latency_us": {"p50": p50, "p99": p99}}

    runs = {
        ("ceiling", "json"): [run(40_000), run(20_000)],
        ("toolkit", "json"): [run(20_000), run(13_333.333)],
        ("fastapi", "json"): [run(5_000), run(4_000)],
    }
    (above_toolkit, above_fastapi) = http_runner.above_null(runs, ["toolkit", "fastapi"], ["json"])
    assert (above_toolkit["low"], above_toolkit["high"]) == pytest.approx((25.0, 25.0), abs=0.01)
    assert (above_fastapi["low"], above_fastapi["high"]) == pytest.approx((175.0, 200.0))
    (ratio,) = http_runner.paired(runs, ["toolkit", "fastapi"], ["json"])
    assert (ratio["low"], ratio["high"], ratio["n"]) == pytest.approx((3.333, 4.0, 2), abs=0.001)
    assert ratio["cpu"]["median"] == pytest.approx(ratio["median"])
    (spread, _) = http_runner.latency(runs, ["toolkit", "fastapi"], ["json"])
    assert (spread["median"], spread["n"]) == (1.5, 2)


def _assert_intervals_recompute(section: dict[str, Any]) -> None:
    """Every stored interval follows from the stored samples (fixed seed): the file is its own
    proof, and a report re-renders identically."""
    samples = {(r["peer"], r["scenario"]): r["us_per_request"] for r in section["results"]}
    samples.update({("harness", r["scenario"]): r["us_per_request"] for r in section["null_app"]})
    sessions = {(r["peer"], r["scenario"]): r["session"] for r in section["results"]}
    sessions.update({("harness", r["scenario"]): r["session"] for r in section["null_app"]})
    for ratio in section["ratios"]:
        key = (ratio["peer"], ratio["scenario"])
        values = stats.ratios(samples[key], samples[("toolkit", ratio["scenario"])])
        assert stats.interval(values, sessions[key]) == {k: ratio[k] for k in ("median", "low", "high", "n")}
    for above in section["overheads"]:
        key = (above["peer"], above["scenario"])
        values = stats.differences(samples[key], samples[("harness", above["scenario"])])
        assert stats.interval(values, sessions[key]) == {k: above[k] for k in ("median", "low", "high", "n")}


def test_a_report_renders_identically_twice(tmp_path: Path) -> None:
    args = ["--mode", "inprocess", "--scenario", "plaintext", "--peer", "toolkit", "--peer", "starlette"]
    _run([*args, "--output-dir", str(tmp_path), *TINY_INPROCESS, "--sessions", "2"])
    results = json.loads((tmp_path / "latest.json").read_text())
    section = results["inprocess"]
    assert [r["session"] for r in section["results"]] == [[0, 0, 1, 1]] * 2
    _assert_intervals_recompute(section)
    assert markdown(results) == markdown(json.loads((tmp_path / "latest.json").read_text()))
    assert markdown(results) == (tmp_path / "latest.md").read_text()


def test_an_old_results_file_is_refused_not_misread() -> None:
    with pytest.raises(SystemExit, match="format 1"):
        markdown({"created": "x", "machine": {}, "versions": {}})


def test_the_presets_meet_the_method_and_their_durations_are_in_the_readme() -> None:
    full = http_runner.FULL
    assert full["seconds"] >= 5
    assert full["repeat"] >= 5
    assert full["connections"] == 64
    for preset in ("QUICK", "DEFAULT", "FULL"):
        assert getattr(http_runner, preset)["repeat"] >= 2, preset  # an interval needs two pairs
    assert inprocess_runner.FULL["sessions"] * inprocess_runner.FULL["repeat"] >= 50
    total = {preset: sum(estimate_minutes(preset).values()) for preset in ("quick", "default", "full")}
    assert total["quick"] < total["default"] < 12 < total["full"]  # the default: a few minutes
    readme = (ROOT / "benchmarks" / "README.md").read_text(encoding="utf-8")
    assert durations_table() in readme, "benchmarks/README.md: paste durations_table() into it"
