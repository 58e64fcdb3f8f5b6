"""Scaling mode: the same apps with 1 and 2 worker processes, the toolkit next to FastAPI (tuned).

The toolkit is served the way its users serve it (``python -m toolkit run ... --workers N``,
see ``TOOLKIT_CLI``), FastAPI (tuned) under ``uvicorn ... --workers N`` (what ``fastapi run``
runs); both with httptools and uvloop, no access log. Per app (the plain app for ``json``, the
middleware-stack app for ``stack``) one server per peer and worker count runs for the whole
mode; each answers its timed scenario's case over HTTP, gets warm-up requests and one untimed
wrk run; then repetitions of one wrk run (1 thread, 64 connections) per server, the order of
the servers rotating between repetitions, so that drift hits every peer and worker count alike.

**Nothing is pinned**: two workers need both CPUs, and wrk shares them. Around each run the
runner reads every process of the server (``/proc``): its CPU time, and its workers, which must
be as many as asked and the same processes after the run as before.

Every figure is paired by repetition: a peer's req/s with 2 workers over its req/s with 1 (the
scaling factor), the toolkit's req/s over FastAPI's at the same worker count; ``benchmarks.stats``
gives the median of the paired values and its bootstrap interval. A server that failed to start
or to answer, or a run with errors or no answers, leaves its cells inconclusive: never a figure.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import http_runner, stats
from .console import BenchmarkError, Progress
from .peers import PEERS
from .spec import SCENARIOS
from .wrk import wrk_version

# THE SWITCH: True, the toolkit is served by its own CLI, ``python -m toolkit run`` (toolkit/serve/:
# uvicorn with uvloop and the toolkit's httptools protocol); False, by the same uvicorn command
# line as FastAPI (what this mode ran before that CLI existed). Nothing else changes.
TOOLKIT_CLI = True
BASELINE, PEER = "toolkit", "fastapi_tuned"
SCALING_PEERS = (BASELINE, PEER)
SCALING_SCENARIOS = ("json", "stack")
WORKERS = (1, 2)
# Same durations and repetitions as HTTP mode (its --http-repeat, --http-seconds, --connections too).
QUICK = {**http_runner.QUICK, "workers": list(WORKERS)}
DEFAULT = {**http_runner.DEFAULT, "workers": list(WORKERS)}
FULL = {**http_runner.FULL, "workers": list(WORKERS)}
SERVER_S = 2.5  # per server: start its workers, the check, one untimed 1 s wrk run (measured)
START_TIMEOUT_S = 60.0
_TRACKER = b"multiprocessing.resource_tracker"  # a helper process of uvicorn's supervisor, no worker


def server_command(peer: str, target: str, port: int, workers: int) -> list[str]:
    """How ``peer`` serves ``target`` with ``workers`` processes."""
    if peer == BASELINE and TOOLKIT_CLI:
        options = ["--workers", str(workers), "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
        return [sys.executable, "-m", "toolkit", "run", target, *options]
    address = ["--host", "127.0.0.1", "--port", str(port)]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        *address,
        "--workers",
        str(workers),
        *http_runner.UVICORN_OPTIONS,
    ]


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as children:
                found += [int(child) for child in children.read().split()]
    except OSError:
        pass
    return found


def _is_tracker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return _TRACKER in cmdline.read()
    except OSError:
        return False


class WorkerServer(http_runner.Server):
    """One peer's app served by ``workers`` processes, on no particular CPU."""

    def __init__(self, peer: str, app: str, workers: int, tmpdir: str | None = None) -> None:
        self.workers = workers
        super().__init__(peer, app, cpu=None, tmpdir=tmpdir)

    @property
    def name(self) -> str:
        return f"{self.peer} x{self.workers}"

    def server_command(self, target: str) -> list[str]:
        return server_command(self.peer, target, self.port, self.workers)

    def processes(self) -> list[int]:
        """The server's process and all its descendants."""
        tree, index = [self.process.pid], 0
        while index < len(tree):
            tree += _children(tree[index])
            index += 1
        return tree

    def worker_pids(self) -> list[int]:
        """The processes serving requests: those of the tree with no children (a supervisor has
        its workers; a single process serves itself), uvicorn's resource tracker left out."""
        tree = [pid for pid in self.processes() if not _is_tracker(pid)]
        return sorted(pid for pid in tree if not [c for c in _children(pid) if not _is_tracker(c)])

    def cpu_seconds(self) -> float | None:
        found = [http_runner.process_cpu_seconds(pid) for pid in self.processes()]
        return sum(value for value in found if value is not None) if found[0] is not None else None

    def wait_workers(self, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while len(self.worker_pids()) != self.workers:
            if self.process.poll() is not None or time.monotonic() > deadline:
                found = len(self.worker_pids())
                raise BenchmarkError(f"{self.name}: {found} worker process(es), expected {self.workers}")
            time.sleep(0.1)


def _reason(exc: BaseException) -> str:
    text = str(exc.code if isinstance(exc, SystemExit) else exc).replace("BENCHMARK ABORTED:", "").strip()
    return " ".join(text.split())[:300]


def _start(
    peer: str,
    app: str,
    workers: int,
    scripts: str,
    group: list[str],
    settings: dict[str, Any],
    load: http_runner.Load,
) -> tuple[WorkerServer | None, dict[str, Path], str | None]:
    """Start one server, check its timed cases, warm it up; or say why it could not."""
    server = None
    try:
        server = WorkerServer(peer, app, workers, scripts)
        server.wait_ready(START_TIMEOUT_S)
        server.wait_workers()
        # Only the timed cases: some untimed ones count per process (``/deps/pool``), and the HTTP
        # mode checks every case on one process.
        cases = [SCENARIOS[name] for name in group]
        paths = http_runner.prepare(server, group, Path(scripts), settings["warmup_requests"], cases)
        for name, script in paths.items():
            load.warm(server, name, script)
        return server, paths, None
    except BenchmarkError as exc:
        if server is not None:
            server.stop()
        return None, {}, _reason(exc)


def _failed_run(reason: str) -> dict[str, Any]:
    latency = {"p50": 0.0, "p90": 0.0, "p99": 0.0, "mean": 0.0, "max": 0.0}
    return {"requests": 0, "rps": 0.0, "latency_us": latency, "errors": {"run": reason}, "error_count": 1}


def _measure(
    load: http_runner.Load, server: WorkerServer, name: str, script: Path, index: int
) -> dict[str, Any]:
    """One timed wrk run; its workers' share of the CPU; an error if they changed meanwhile."""
    before = {pid: http_runner.process_cpu_seconds(pid) or 0.0 for pid in server.worker_pids()}
    try:
        result: dict[str, Any] = load(server, name, script, index)
    except BenchmarkError as exc:
        return _failed_run(_reason(exc))
    after = {pid: http_runner.process_cpu_seconds(pid) or 0.0 for pid in server.worker_pids()}
    used = sorted((after[pid] - before[pid] for pid in before if pid in after), reverse=True)
    result["worker_cpu_share"] = [round(u / sum(used), 3) for u in used] if sum(used) > 0 else None
    if sorted(after) != sorted(before) or len(after) != server.workers:
        result["errors"]["workers_changed"] = 1
        result["error_count"] += 1
    return result


def summarize(
    peer: str, workers: int, scenario: str, runs: list[dict[str, Any]], failed: str | None
) -> dict[str, Any]:
    """One cell: median req/s and p99 with their intervals, the errors, and whether it counts."""
    errors = sum(r["error_count"] for r in runs)
    answered = [r for r in runs if r["requests"]]
    row: dict[str, Any] = {"peer": peer, "workers": workers, "scenario": scenario, "failed": failed}
    row["inconclusive"] = failed or (f"{errors} error(s) in its runs" if errors else None)
    if not runs and not failed:
        row["inconclusive"] = "no runs"
    row["rps_median"] = statistics.median(r["rps"] for r in runs) if runs else None
    row["rps"] = stats.interval([r["rps"] for r in runs])
    row["p99_ms"] = stats.interval([r["latency_us"]["p99"] / 1000 for r in answered])
    row["p50_ms_median"] = (
        statistics.median(r["latency_us"]["p50"] / 1000 for r in answered) if answered else None
    )
    cpu = [r["server_cpu_us"] for r in runs if r.get("server_cpu_us")]
    row["server_cpu_us_median"] = statistics.median(cpu) if cpu else None
    row.update({"errors": errors, "requests": sum(r["requests"] for r in runs), "runs": runs})
    return row


def _pair(mine: dict[str, Any] | None, theirs: dict[str, Any] | None) -> dict[str, Any]:
    """The paired ratio of two cells' req/s (``mine`` over ``theirs``), or why there is none."""
    if mine is None or theirs is None:
        return {"median": None, "low": None, "high": None, "n": 0, "inconclusive": "not run"}
    reason = mine["inconclusive"] or theirs["inconclusive"]
    if reason:
        return {"median": None, "low": None, "high": None, "n": 0, "inconclusive": reason}
    values = stats.ratios([r["rps"] for r in mine["runs"]], [r["rps"] for r in theirs["runs"]])
    found = stats.interval(values) or {"median": None, "low": None, "high": None, "n": 0}
    return {**found, "inconclusive": None if values else "no paired runs"}


def factors(rows: list[dict[str, Any]], workers: list[int]) -> list[dict[str, Any]]:
    """Each peer's req/s with N workers over its req/s with the fewest, paired by repetition."""
    cells = {(r["peer"], r["workers"], r["scenario"]): r for r in rows}
    peers = list(dict.fromkeys(r["peer"] for r in rows))
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    fewest = workers[0]
    return [
        {
            "peer": peer,
            "scenario": scenario,
            "workers": n,
            "of": fewest,
            **_pair(cells.get((peer, n, scenario)), cells.get((peer, fewest, scenario))),
        }
        for scenario in scenarios
        for peer in peers
        for n in workers[1:]
    ]


def ratios(rows: list[dict[str, Any]], workers: list[int]) -> list[dict[str, Any]]:
    """The toolkit's req/s over FastAPI (tuned)'s at each worker count, paired by repetition."""
    cells = {(r["peer"], r["workers"], r["scenario"]): r for r in rows}
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    return [
        {
            "peer": PEER,
            "scenario": scenario,
            "workers": n,
            **_pair(cells.get((BASELINE, n, scenario)), cells.get((PEER, n, scenario))),
        }
        for scenario in scenarios
        for n in workers
        if (BASELINE, n, scenario) in cells and (PEER, n, scenario) in cells
    ]


def estimate_seconds(settings: dict[str, Any], peers: int, apps: int, scenarios: int) -> float:
    """About how long scaling mode takes for ``peers`` x worker counts x ``scenarios``."""
    servers = peers * len(settings["workers"])
    timed = settings["repeat"] * servers * scenarios * (settings["seconds"] + http_runner.RUN_OVERHEAD_S)
    warm = servers * scenarios * settings["warmup_requests"] * http_runner.WARMUP_REQUEST_S
    return float(timed + warm + servers * apps * SERVER_S)


def _commands(peers: list[str], workers: list[int]) -> dict[str, str]:
    """Each peer's command line, as a template (``PORT``; ``N`` workers; ``APP`` the app)."""
    shown = {}
    for peer in peers:
        command = server_command(peer, f"{PEERS[peer]}:APP", 0, 0)
        command[0] = "python"
        text = " ".join(command).replace("--port 0", "--port PORT").replace("--workers 0", "--workers N")
        shown[peer] = text
    return shown


def run(
    peers: list[str], scenarios: list[str], settings: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    """The ``scaling`` section of the results (``skipped`` says why when it cannot run)."""
    peers = [p for p in SCALING_PEERS if p in peers]
    scenarios = [s for s in SCALING_SCENARIOS if s in scenarios]
    reason = http_runner.unavailable() or (
        None
        if peers and scenarios
        else f"it runs {', '.join(SCALING_PEERS)} on {', '.join(SCALING_SCENARIOS)}"
    )
    if reason is not None:
        progress.done(f"scaling mode skipped: {reason}")
        return {"skipped": reason, "settings": settings}
    started = time.perf_counter()
    workers: list[int] = list(settings["workers"])
    slots = [(n, peer) for n in workers for peer in peers]  # peers alternate, then worker counts
    load = http_runner.Load(
        settings, len(slots) * len(scenarios) * settings["repeat"], None, progress, "scaling"
    )
    runs: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    failed: dict[tuple[str, int, str], str] = {}
    with tempfile.TemporaryDirectory(prefix="benchmarks-scaling-") as scripts:
        for app in dict.fromkeys(SCENARIOS[s].app for s in scenarios):
            group = [s for s in scenarios if SCENARIOS[s].app == app]
            servers: dict[tuple[int, str], tuple[WorkerServer, dict[str, Path]]] = {}
            try:
                for n, peer in slots:
                    progress.update(
                        f"scaling: starting {peer} with {n} worker(s) ({app}), checking, warming up"
                    )
                    server, paths, why = _start(peer, app, n, scripts, group, settings, load)
                    if server is None:
                        progress.done(
                            f"scaling: {peer} x{n} ({app}) failed, its cells are inconclusive: {why}"
                        )
                        failed.update({(peer, n, s): str(why) for s in group})
                    else:
                        servers[(n, peer)] = (server, paths)
                for index in range(settings["repeat"]):
                    shift = index % len(slots)
                    for name in group:
                        for n, peer in slots[shift:] + slots[:shift]:
                            if (n, peer) in servers:
                                server, paths = servers[(n, peer)]
                                measured = _measure(load, server, name, paths[name], index)
                                runs.setdefault((peer, n, name), []).append(measured)
            finally:
                for server, _ in servers.values():
                    server.stop()
    rows = [
        summarize(peer, n, s, runs.get((peer, n, s), []), failed.get((peer, n, s)))
        for s in scenarios
        for n in workers
        for peer in peers
    ]
    bad = sum(1 for row in rows if row["inconclusive"])
    progress.done(f"scaling done: {len(rows) - bad} of {len(rows)} cells measured, {bad} inconclusive")
    return {
        "settings": {**settings, "wrk_threads": 1, "pinned": False, "cpus": os.cpu_count()},
        "elapsed_seconds": round(time.perf_counter() - started, 1),
        "wrk": wrk_version(load.wrk),
        "peers": peers,
        "scenarios": scenarios,
        "servers": _commands(peers, workers),
        "toolkit_cli": TOOLKIT_CLI,
        "statistics": {
            "paired": "wrk runs of the same repetition",
            "interval": f"{stats.LEVEL:.0%} percentile bootstrap of the median",
            "rounds": stats.ROUNDS,
            "seed": stats.SEED,
        },
        "results": rows,
        "factors": factors(rows, workers),
        "ratios": ratios(rows, workers),
    }
