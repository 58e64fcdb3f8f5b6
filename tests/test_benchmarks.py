"""The benchmark suite: every peer answers the spec identically; the harness runs end to end.

No timing is asserted: the runs here are tiny and only prove the harness works.
"""

from __future__ import annotations

import importlib
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
from benchmarks.peers._fakes import POOL  # noqa: E402
from benchmarks.report import README_END, README_START, update_readme  # noqa: E402
from benchmarks.spec import CASES, SCENARIOS, cookie_pair  # noqa: E402
from toolkit.testing import TestClient  # noqa: E402

TINY_INPROCESS = ["--quick", "--repeat", "2", "--batch-seconds", "0.005", "--warmup-seconds", "0.02"]


def _peer_module(peer: str) -> Any:
    if peer == "fastapi":
        pytest.importorskip("fastapi", reason="FastAPI is in the bench extra: pip install -e '.[bench]'")
    return importlib.import_module(PEERS[peer])


def _answers(peer: str) -> dict[str, tuple[int, Any]]:
    """Every spec case sent once, in order, through the peer's apps; fails on any difference."""
    module = _peer_module(peer)
    POOL.opened = POOL.closed = 0  # the pool is shared by the peers imported in this process
    clients: dict[str, TestClient] = {}
    cookies: dict[str, str] = {}
    answers: dict[str, tuple[int, Any]] = {}
    failures = []
    try:
        for case in CASES:
            if case.app not in clients:
                clients[case.app] = TestClient(getattr(module, case.app)).__enter__()  # runs the lifespan
            client = clients[case.app]
            client.cookies.clear()  # only the cookie a case names is sent
            if case.cookie_from is not None:
                case = case.with_cookie(cookies[case.cookie_from])
            headers = [(k, v) for k, v in case.headers if k not in ("host", "content-length")]
            response = client.request(case.method, case.target, headers=headers, content=case.body or None)
            found = list(response.headers.multi_items())
            if (cookie := cookie_pair(found)) is not None:
                cookies[case.name] = cookie
            content_type = response.headers.get("content-type")
            failures += [
                f"{case.name}: {problem}"
                for problem in case.problems(response.status_code, content_type, response.content, found)
            ]
            body = response.json() if content_type == "application/json" else response.text
            answers[case.name] = (response.status_code, body)
    finally:
        for client in clients.values():
            client.__exit__(None, None, None)
    assert not failures, f"{peer} does not answer as benchmarks/spec.py says:\n" + "\n".join(failures)
    return answers


@pytest.mark.parametrize("peer", list(PEERS))
def test_peer_answers_every_spec_case(peer: str) -> None:
    _answers(peer)


def test_peers_answer_the_timed_scenarios_identically() -> None:
    answers = {peer: _answers(peer) for peer in PEERS}
    for name in SCENARIOS:
        assert len({json.dumps(a[name], sort_keys=True) for a in answers.values()}) == 1, name


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

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\nold\n{README_END}\nrest\n")
    update_readme(results, readme, tmp_path)
    text = readme.read_text()
    assert "old" not in text
    assert text.startswith("intro\n")
    assert text.endswith("rest\n")
    assert "### Latest results" in text
    assert "#### In-process" in text


def test_tiny_growth_run(tmp_path: Path) -> None:
    _run(["--mode", "growth", "--quick", "--peer", "toolkit", "--output-dir", str(tmp_path)])
    growth = json.loads((tmp_path / "latest.json").read_text())["growth"]
    assert sorted(r["routes"] for r in growth["routing"]) == [10, 100, 1000]
    assert [s["peer"] for s in growth["startup"]] == ["toolkit"]
    assert [m["peer"] for m in growth["memory"]] == ["toolkit", "harness"]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install -y wrk)")
def test_tiny_http_run(tmp_path: Path) -> None:
    args = ["--mode", "http", "--quick", "--peer", "toolkit", "--scenario", "session"]
    _run([*args, "--connections", "4", "--output-dir", str(tmp_path)])
    http = json.loads((tmp_path / "latest.json").read_text())["http"]
    (row,) = http["results"]
    assert (row["peer"], row["scenario"], row["errors"]) == ("toolkit", "session", 0)
    assert row["requests"] > 0
