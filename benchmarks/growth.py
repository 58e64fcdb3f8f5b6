"""Growth: how the cost changes with the size of the app, and what starting one costs.

- **Routing**: apps of 10, 100 and 1,000 routes ``/r{i}/{id}`` (``peers/many_routes.py``),
  timed in-process on a request for the *last*-registered route, the worst case for a router
  that scans its routes in order. One fresh worker process per peer and size; the sizes of one
  peer run side by side, batches alternating, so their ratio is paired like the in-process one.
- **Start-up**: import the framework, build an app of 50 routes, run its lifespan start-up and
  answer one request, in a fresh process each time; the median of several runs, peers taking
  turns. A first run per peer is discarded (it writes bytecode caches and warms the OS cache).
- **Memory**: peak RSS of a fresh process that imported the benchmark peer and started it,
  then after it answered N requests across the timed scenarios of its plain app.

The start-up and memory processes run ``benchmarks.growth_child``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from . import stats
from .console import BenchmarkError, Progress
from .inprocess_runner import ROOT, Worker, interleave, running
from .peers.many_routes import last_route_case

DEFAULT = {
    "routes": [10, 100, 1000],
    "repeat": 10,
    "batch_seconds": 0.05,
    "warmup_seconds": 0.25,
    "startup_runs": 5,
    "startup_routes": 50,
    "memory_requests": 20_000,
}
QUICK = {**DEFAULT, "repeat": 3, "batch_seconds": 0.02, "warmup_seconds": 0.1, "startup_runs": 1}
QUICK["memory_requests"] = 2_000
FULL = {**DEFAULT, "repeat": 30, "startup_runs": 15, "memory_requests": 100_000}
# What growth mode costs beyond its timed batches, for ``estimate_seconds`` (measured, 2 vCPUs).
WORKERS_START_S = 1.0  # a peer's routing workers (one per size): imports, building the apps
STARTUP_RUN_S = 0.3  # one start-up process
MEMORY_BASE_S, MEMORY_REQUEST_S = 0.5, 20e-6  # one memory process, and each of its requests


def estimate_seconds(settings: dict[str, Any], peers: int) -> float:
    """About how long growth mode takes for ``peers``, from the settings and the costs above."""
    sizes = len(settings["routes"])
    routing = WORKERS_START_S + sizes * (
        settings["warmup_seconds"] * 1.5 + settings["repeat"] * (settings["batch_seconds"] + 0.01)
    )
    startup = (settings["startup_runs"] + 1) * STARTUP_RUN_S
    memory = MEMORY_BASE_S + settings["memory_requests"] * MEMORY_REQUEST_S
    return peers * (routing + startup + memory) + memory


# --- the runner's side -------------------------------------------------------------------------


def _child(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.growth_child", *args]
    started_at = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started_at
    if result.returncode != 0:
        raise BenchmarkError(f"{' '.join(args)} failed:\n{result.stderr.strip()}")
    reply: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    reply["process_wall_s"] = wall
    return reply


def run_routing(peers: list[str], settings: dict[str, Any], progress: Progress) -> list[dict[str, Any]]:
    results = []
    for peer in peers:
        label = f"growth, routing ({peer})"
        progress.update(f"{label}: starting a worker per size")
        workers = {str(n): Worker(peer, settings.get("cpu"), routes=n) for n in settings["routes"]}
        samples: dict[tuple[str, str], list[float]] = {}
        with running(workers):
            for size, worker in workers.items():
                for response in worker.ask("check")["responses"]:
                    case = last_route_case(int(size))
                    headers = [(k, v) for k, v in response["headers"]]
                    body = response["body"].encode()
                    problems = case.problems(response["status"], response["content_type"], body, headers)
                    if problems:
                        raise BenchmarkError(f"{peer} with {size} routes: {'; '.join(problems)}")
            interleave(workers, ["route"], settings, samples, progress, label)
        for size in workers:
            values = samples[(size, "route")]
            results.append(
                {
                    "peer": peer,
                    "routes": int(size),
                    "median_us": statistics.median(values),
                    "min_us": min(values),
                    "us_per_request": values,
                }
            )
        smallest = str(settings["routes"][0])
        for size in workers:  # paired: batches of two sizes run back to back
            paired = stats.ratios(samples[(size, "route")], samples[(smallest, "route")])
            row = next(r for r in results if r["peer"] == peer and r["routes"] == int(size))
            row["vs_smallest"] = statistics.median(paired)
            row["vs_smallest_interval"] = stats.interval(paired)
    return results


def run(peers: list[str], settings: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """The ``growth`` section of the results."""
    begun = time.perf_counter()
    routing = run_routing(peers, settings, progress)
    # Bytecode caches on, so every framework imports from .pyc files (the first run writes them).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    startup: dict[str, list[dict[str, Any]]] = {peer: [] for peer in peers}
    runs = settings["startup_runs"]
    for index in range(runs + 1):
        shift = index % len(peers)
        for peer in peers[shift:] + peers[:shift]:
            progress.update(
                f"growth, start-up: {peer}, run {index}/{runs}" + (" (discarded)" if not index else "")
            )
            reply = _child(["--startup", peer, "--routes", str(settings["startup_routes"])], env)
            if reply["status"] != 200:
                raise BenchmarkError(f"start-up of {peer}: the first request answered {reply['status']}")
            if index:
                startup[peer].append(reply)
    memory = []
    for peer in [*peers, None]:
        progress.update(f"growth, memory: {peer or 'baseline (null app)'}")
        memory.append(_child(["--memory", peer or "", "--requests", str(settings["memory_requests"])], env))
    progress.done("growth done: routing, start-up, memory")
    return {
        "settings": settings,
        "elapsed_seconds": round(time.perf_counter() - begun, 1),
        "routing": routing,
        "startup": [
            {
                "peer": peer,
                "median_ms": statistics.median(r["total_s"] for r in startup[peer]) * 1000,
                "build_median_ms": statistics.median(r["build_s"] for r in startup[peer]) * 1000,
                "process_median_ms": statistics.median(r["process_wall_s"] for r in startup[peer]) * 1000,
                "runs": startup[peer],
            }
            for peer in peers
        ],
        "memory": memory,
    }
