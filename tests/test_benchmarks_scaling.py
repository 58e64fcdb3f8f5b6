"""The scaling mode (``benchmarks/scaling.py``): its servers' command lines, its figures and
tables from a small synthetic run, its published file and README subsection, and one short real
run (which needs wrk, like the HTTP mode's test; CI installs it).

No timing is asserted: the real run is tiny and only proves the harness works.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import http_runner, report, scaling, stats  # noqa: E402
from benchmarks.report_scaling import INCONCLUSIVE, scaling_section  # noqa: E402

LABELS = {"toolkit": "toolkit", "fastapi_tuned": "FastAPI (tuned)"}
TIMES, DASH = "\N{MULTIPLICATION SIGN}", "\N{EN DASH}"


def test_fastapi_runs_under_uvicorn_with_workers_httptools_uvloop_and_no_access_log() -> None:
    command = scaling.server_command("fastapi_tuned", "benchmarks.peers.fastapi_tuned_app:app", 8123, 2)
    assert command[:4] == [sys.executable, "-m", "uvicorn", "benchmarks.peers.fastapi_tuned_app:app"]
    text = " ".join(command)
    for option in ("--workers 2", "--http httptools", "--loop uvloop", "--no-access-log", "--port 8123"):
        assert option in text, option
    assert "taskset" not in text  # nothing is pinned in this mode


def test_the_toolkit_runs_the_same_server_until_its_cli_is_switched_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = "benchmarks.peers.toolkit_app:stack_app"
    monkeypatch.setattr(scaling, "TOOLKIT_CLI", False)
    plain = scaling.server_command("toolkit", target, 8123, 1)
    assert plain[1:] == scaling.server_command("fastapi_tuned", target, 8123, 1)[1:]
    monkeypatch.setattr(scaling, "TOOLKIT_CLI", True)
    command = scaling.server_command("toolkit", target, 8123, 2)
    assert command[:5] == [sys.executable, "-m", "toolkit", "run", target]
    text = " ".join(command)
    for option in ("--workers 2", "--port 8123", "--no-access-log"):
        assert option in text, option
    # FastAPI is never served by the toolkit's command.
    assert scaling.server_command("fastapi_tuned", target, 8123, 2)[2] == "uvicorn"


def test_http_mode_still_runs_one_uvicorn_process_per_peer() -> None:
    server = object.__new__(http_runner.Server)  # the command only, no process
    server.port = 8123
    command = server.server_command("benchmarks.peers.toolkit_app:app")
    assert command == [
        *(sys.executable, "-m", "uvicorn", "benchmarks.peers.toolkit_app:app"),
        *("--host", "127.0.0.1", "--port", "8123"),
        *("--loop", "uvloop", "--http", "httptools", "--no-access-log", "--lifespan", "on"),
        *("--log-level", "warning"),
    ]


# --- a synthetic run, through the runner's own statistics ---------------------------------------

RPS = {
    ("toolkit", 1): 30_000,
    ("toolkit", 2): 45_000,
    ("fastapi_tuned", 1): 10_000,
    ("fastapi_tuned", 2): 16_000,
}


def _runs(peer: str, workers: int, rng: random.Random, errors: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "requests": 5000,
            "rps": RPS[(peer, workers)] * rng.uniform(0.95, 1.05),
            "latency_us": {"p50": 2000.0, "p99": 4000.0 * rng.uniform(0.9, 1.1)},
            "errors": {"status": errors},
            "error_count": errors,
            "server_cpu_us": 30.0,
            "worker_cpu_share": [0.6, 0.4] if workers == 2 else [1.0],
        }
        for _ in range(5)
    ]


def synthetic_section(
    errors_in: tuple[str, int] | None = None, failed: tuple[str, int] | None = None
) -> dict[str, Any]:
    """A scaling section of 5 runs per cell; ``errors_in`` gives one cell's runs an error each,
    ``failed`` makes one server fail to start (its cells have no runs)."""
    rng = random.Random(5)
    workers = [1, 2]
    rows = []
    for scenario in ("json", "stack"):
        for n in workers:
            for peer in ("toolkit", "fastapi_tuned"):
                if failed == (peer, n):
                    rows.append(scaling.summarize(peer, n, scenario, [], "the toolkit x2 server exited"))
                    continue
                errors = 1 if errors_in == (peer, n) else 0
                rows.append(scaling.summarize(peer, n, scenario, _runs(peer, n, rng, errors), None))
    return {
        "settings": {**scaling.FULL, "wrk_threads": 1, "pinned": False, "cpus": 2},
        "elapsed_seconds": 300.0,
        "wrk": "wrk 4.1.0",
        "peers": ["toolkit", "fastapi_tuned"],
        "scenarios": ["json", "stack"],
        "servers": scaling._commands(["toolkit", "fastapi_tuned"], workers),
        "toolkit_cli": False,
        "results": rows,
        "factors": scaling.factors(rows, workers),
        "ratios": scaling.ratios(rows, workers),
    }


def _cell(value: dict[str, Any]) -> str:
    return f"{value['median']:.2f}{TIMES} ({value['low']:.2f}{DASH}{value['high']:.2f})"


def test_the_figures_are_paired_by_repetition_with_their_intervals() -> None:
    section = synthetic_section()
    cells = {(r["peer"], r["workers"], r["scenario"]): r for r in section["results"]}
    for factor in section["factors"]:
        mine = cells[(factor["peer"], 2, factor["scenario"])]["runs"]
        one = cells[(factor["peer"], 1, factor["scenario"])]["runs"]
        values = stats.ratios([r["rps"] for r in mine], [r["rps"] for r in one])
        assert stats.interval(values) == {k: factor[k] for k in ("median", "low", "high", "n")}
        assert factor["n"] == 5
        assert factor["inconclusive"] is None
    assert [(r["scenario"], r["workers"]) for r in section["ratios"]] == [
        ("json", 1),
        ("json", 2),
        ("stack", 1),
        ("stack", 2),
    ]
    for ratio in section["ratios"]:
        ours = cells[("toolkit", ratio["workers"], ratio["scenario"])]["runs"]
        theirs = cells[("fastapi_tuned", ratio["workers"], ratio["scenario"])]["runs"]
        values = stats.ratios([r["rps"] for r in ours], [r["rps"] for r in theirs])
        assert stats.interval(values) == {k: ratio[k] for k in ("median", "low", "high", "n")}
    row = cells[("toolkit", 2, "json")]
    assert row["rps"] == stats.interval([r["rps"] for r in row["runs"]])
    assert row["p99_ms"] == stats.interval([r["latency_us"]["p99"] / 1000 for r in row["runs"]])


def test_the_section_shows_req_s_p99_factors_and_ratios() -> None:
    section = synthetic_section()
    text = "\n".join(scaling_section(section, LABELS))
    assert (
        "| scenario | workers | toolkit req/s | toolkit p99 ms | FastAPI (tuned) req/s |"
        " FastAPI (tuned) p99 ms | toolkit / FastAPI (tuned) |"
    ) in text
    cells = {(r["peer"], r["workers"], r["scenario"]): r for r in section["results"]}
    ratio = next(r for r in section["ratios"] if (r["workers"], r["scenario"]) == (2, "json"))
    toolkit = cells[("toolkit", 2, "json")]
    rps = f"{toolkit['rps']['median']:,.0f} ({toolkit['rps']['low']:,.0f}{DASH}{toolkit['rps']['high']:,.0f})"
    assert f"| json | 2 | {rps} |" in text
    assert f"| {_cell(ratio)} |" in text
    assert "| scenario | toolkit, 2 / 1 workers | FastAPI (tuned), 2 / 1 workers |" in text
    factors = [f for f in section["factors"] if f["scenario"] == "stack"]
    assert f"| stack | {_cell(factors[0])} | {_cell(factors[1])} |" in text
    # What the reader must be told: not pinned, wrk shares the CPUs; the commands; the balance.
    assert "Nothing is pinned to a CPU here" in text
    assert "`python -m uvicorn benchmarks.peers.fastapi_tuned_app:APP" in text
    assert "--workers N" in text
    assert "toolkit `json` 60%" in text
    assert f"| {INCONCLUSIVE} |" not in text


def test_a_cell_with_errors_is_inconclusive_never_a_figure() -> None:
    section = synthetic_section(errors_in=("fastapi_tuned", 2))
    text = "\n".join(scaling_section(section, LABELS))
    (json_1,) = [line for line in text.splitlines() if line.startswith("| json | 1 |")]
    (json_2,) = [line for line in text.splitlines() if line.startswith("| json | 2 |")]
    assert json_2.count(INCONCLUSIVE) == 2  # FastAPI's req/s, and the ratio drawn from it
    assert json_2.endswith(f"| {INCONCLUSIVE} |")
    assert INCONCLUSIVE not in json_1
    (factor,) = [line for line in text.splitlines() if line.startswith("| json |") and line.count("|") == 4]
    assert factor.endswith(f"| {INCONCLUSIVE} |")  # FastAPI's factor; the toolkit's stands
    assert TIMES in factor.split(" | ")[1]
    assert "FastAPI (tuned) with 2 workers on `json`: 5 error(s) in its runs" in text
    for entry in (*section["factors"], *section["ratios"]):
        if entry["inconclusive"]:
            assert entry["median"] is None


def test_a_server_that_failed_to_start_leaves_its_cells_inconclusive() -> None:
    section = synthetic_section(failed=("toolkit", 2))
    text = "\n".join(scaling_section(section, LABELS))
    assert "toolkit with 2 workers on `json`: the toolkit x2 server exited" in text
    toolkit_factors = [f for f in section["factors"] if f["peer"] == "toolkit"]
    assert [f["inconclusive"] for f in toolkit_factors] == ["the toolkit x2 server exited"] * 2
    assert all(f["median"] is None for f in toolkit_factors)
    at_two = [r for r in section["ratios"] if r["workers"] == 2]
    assert all(r["median"] is None and r["inconclusive"] for r in at_two)
    assert all(r["inconclusive"] is None for r in section["ratios"] if r["workers"] == 1)


# --- publishing -------------------------------------------------------------------------------


def _results_file(tmp_path: Path, results: dict[str, Any]) -> Path:
    path = tmp_path / "run" / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def test_publishing_puts_the_scaling_run_in_its_own_file_and_the_readme(tmp_path: Path) -> None:
    from test_readme_figures import synthetic_results

    root = tmp_path / "repo"
    readme = root / "README.md"
    readme.parent.mkdir()
    readme.write_text(f"intro\n{report.README_START}\nold\n{report.README_END}\nrest\n")
    results = synthetic_results()
    results["modes"].append("scaling")
    results["scaling"] = synthetic_section()
    report.publish(_results_file(tmp_path, results), readme, root)

    main = json.loads((root / report.PUBLISHED).read_text())
    assert "scaling" not in main
    assert main["modes"] == ["inprocess", "http", "growth"]
    published = json.loads((root / report.PUBLISHED_SCALING).read_text())
    assert published["scaling"] == results["scaling"]
    assert published["modes"] == ["scaling"]
    assert published["peers"] == ["toolkit", "fastapi_tuned"]
    for key in ("format", "created", "command", "machine", "versions"):
        assert published[key] == results[key], key
    section = report.current_section(readme.read_text())
    assert section == report.readme_section(root / report.PUBLISHED)
    assert section.index("#### Growth") < section.index("#### Scaling")
    scaling_part = section.split("#### Scaling\n\n", 1)[1]
    assert scaling_part.startswith(f"- Source: [`{report.PUBLISHED_SCALING.as_posix()}`]")
    assert f"- Command: `{results['command']}`" in scaling_part
    assert "| scenario | toolkit, 2 / 1 workers | FastAPI (tuned), 2 / 1 workers |" in scaling_part

    # A run of the scaling mode alone replaces scaling.json only; one that skipped it, nothing.
    before = (root / report.PUBLISHED).read_bytes()
    alone = {k: v for k, v in results.items() if k not in report.SECTIONS}
    alone.update(modes=["scaling"], command="python -m benchmarks --mode scaling --full")
    written = report.publish_files(_results_file(tmp_path, alone), root)
    assert written == [root / report.PUBLISHED_SCALING]
    assert (root / report.PUBLISHED).read_bytes() == before
    assert json.loads(written[0].read_text())["command"] == "python -m benchmarks --mode scaling --full"
    skipped = {**alone, "scaling": {"skipped": "wrk is not installed", "settings": {}}}
    with pytest.raises(SystemExit, match="no mode's results"):
        report.publish_files(_results_file(tmp_path, skipped), root)


def test_the_readme_has_no_scaling_subsection_without_its_file(tmp_path: Path) -> None:
    from test_readme_figures import synthetic_results

    published = tmp_path / report.PUBLISHED
    published.parent.mkdir(parents=True)
    published.write_text(json.dumps(synthetic_results(), indent=2) + "\n")
    assert "Scaling" not in report.readme_section(published)


# --- a real run ---------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install -y wrk)")
def test_tiny_scaling_run(tmp_path: Path) -> None:
    """Both peers with 1 and 2 workers on ``json``: 2 runs of 1 s each, servers in rotation."""
    command = [sys.executable, "-m", "benchmarks", "--mode", "scaling", "--quick", "--scenario", "json"]
    command += ["--output-dir", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    results = json.loads((tmp_path / "latest.json").read_text())
    assert results["modes"] == ["scaling"]
    section = results["scaling"]
    cells = {(r["peer"], r["workers"], r["scenario"]): r for r in section["results"]}
    assert sorted(cells) == sorted((p, n, "json") for p in ("toolkit", "fastapi_tuned") for n in (1, 2))
    for key, row in cells.items():
        assert (row["inconclusive"], row["errors"], len(row["runs"])) == (None, 0, 2), (
            key,
            row["inconclusive"],
        )
        assert row["requests"] > 0, key
        shares = [run["worker_cpu_share"] for run in row["runs"]]
        assert all(share is not None and len(share) == key[1] for share in shares), key  # N workers served
    assert [(f["peer"], f["n"]) for f in section["factors"]] == [("toolkit", 2), ("fastapi_tuned", 2)]
    assert [(r["workers"], r["n"]) for r in section["ratios"]] == [(1, 2), (2, 2)]
    assert "## Scaling" in result.stdout
