"""The benchmark suite: every peer answers the spec identically; the harness runs end to end.

No timing is asserted: the runs here are tiny and only prove the harness works.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # ``benchmarks`` is not installed; ``pytest`` alone may not add the root
    sys.path.insert(0, str(ROOT))

from benchmarks.peers import PEERS  # noqa: E402
from benchmarks.report import (  # noqa: E402
    PUBLISHED,
    README_CHART,
    README_END,
    README_START,
    inprocess_table,
    publish,
)
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
    assert results["peers"] == ["toolkit"]
    assert results["scenarios"] == ["json"]
    section = results["inprocess"]
    assert {"settings", "harness_us", "results", "ratios", "parity_notes"} <= set(section)
    (row,) = section["results"]
    assert row["peer"] == "toolkit"
    assert len(row["us_per_request"]) == 2
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
    table = inprocess_table(results).splitlines()
    (shop_row,) = [line for line in table if line.startswith("| shop_list |")]
    assert shop_row.endswith("| — | — |")  # Starlette µs, x Starlette
    assert "no app for the scenario (Starlette / shop_list;" in (tmp_path / "latest.md").read_text()


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


def test_the_strictness_comparison_runs_and_reports_an_interval() -> None:
    import asyncio

    from benchmarks import strictness

    figures = asyncio.run(strictness.measure(pairs=4, calls=20))
    low, high = figures["interval_95"]
    assert figures["lax_us"] > 0
    assert figures["strict_us"] > 0
    assert low <= figures["lax_over_strict"] <= high
