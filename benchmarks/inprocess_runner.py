"""In-process mode, the runner's side: check every peer, then time them in interleaved batches.

Each peer runs in its own fresh worker process (``benchmarks.inprocess --serve``). The runner
alternates short timed batches between the workers, rotating the order every repetition, so
drifts in machine load (the main noise on a shared box) hit every peer alike; only one worker
runs at a time. ``sessions`` repeats the whole thing with new processes. A null ASGI app (the
floor: what the harness itself costs) is timed in the same rotation, as one more worker.

Every figure is paired: a peer's batch against the toolkit's (a ratio) or the null app's (µs
above the floor) of the same session and repetition; ``benchmarks.stats`` gives the median of
the paired values and its bootstrap interval, resampling the sessions, then the batches.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import stats
from .console import BenchmarkError, Progress, log
from .spec import CASES, SCENARIOS, Case

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "toolkit"
HARNESS = "harness"  # pseudo-peer: the null ASGI app (the floor), timed on every scenario

# Sessions are the unit the bootstrap resamples first: more sessions, steadier intervals.
DEFAULT = {"sessions": 3, "repeat": 6, "batch_seconds": 0.04, "warmup_seconds": 0.1}
QUICK = {"sessions": 1, "repeat": 5, "batch_seconds": 0.02, "warmup_seconds": 0.05}
FULL = {"sessions": 6, "repeat": 10, "batch_seconds": 0.05, "warmup_seconds": 0.2}
# What the run costs beyond the timed batches, for ``estimate_seconds`` (measured, 2 vCPUs).
BATCH_OVERHEAD_S = 0.01  # a gc.collect() before each batch, the command and its reply
WARMUP_OVERSHOOT = 1.5  # warm-up batches double until the deadline: the last one overshoots it
SESSION_START_S = 3.0  # starting the workers: imports, apps, lifespans
CHECK_S = 3.0  # the first session's check of every spec case


class Worker:
    """A ``benchmarks.inprocess --serve`` process for one peer, driven one JSON line at a time."""

    def __init__(self, peer: str, cpu: int | None = None, routes: int | None = None) -> None:
        self.peer = peer
        self.info: dict[str, Any] = {}
        args = ["--harness"] if peer == HARNESS else ["--peer", peer]
        if routes is not None:
            args += ["--routes", str(routes)]
        if cpu is not None:
            args += ["--cpu", str(cpu)]
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by close()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.inprocess", "--serve", *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            self.stderr.seek(0)
            raise BenchmarkError(f"the {self.peer} worker died:\n{self.stderr.read().strip()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def send(self, op: str, **fields: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.process.stdin.flush()

    def ask(self, op: str, **fields: Any) -> dict[str, Any]:
        self.send(op, **fields)
        return self.read()

    def close(self) -> None:
        with contextlib.suppress(OSError):  # already gone: nothing to tell it
            if self.process.poll() is None:
                self.send("quit")
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.stderr):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def running(workers: dict[str, Worker]) -> Any:
    """Wait until every worker is ready (their imports overlap, untimed); close them all after."""
    try:
        for worker in workers.values():
            worker.info = worker.read()  # the "peer" line: imported, lifespan started
        yield workers
    finally:
        for worker in workers.values():
            worker.close()


# --- checks ------------------------------------------------------------------------------------


def check_peers(workers: dict[str, Worker]) -> list[str]:
    """Every peer must answer every case it has an app for as the spec says; return
    toolkit-vs-FastAPI notes (where both conform but answer differently)."""
    responses = {peer: {r["case"]: r for r in w.ask("check")["responses"]} for peer, w in workers.items()}
    failures = []
    for peer, answers in responses.items():
        for case in CASES:
            if not case.serves(peer):
                continue
            got = answers.get(case.name)
            if got is None:
                failures.append(f"{peer} / {case.name}: no answer")
                continue
            headers = [(name, value) for name, value in got["headers"]]
            for problem in case.problems(got["status"], got["content_type"], got["body"].encode(), headers):
                failures.append(f"{peer} / {case.name} ({case.method} {case.target}): {problem}")
    if failures:
        raise BenchmarkError("peers do not answer as benchmarks/spec.py says:\n  " + "\n  ".join(failures))
    for name, case in SCENARIOS.items():
        if case.variable:  # tokens and timestamps: equal once normalised (checked above), never byte-wise
            continue
        bodies = {peer: answers[name]["body"] for peer, answers in responses.items() if name in answers}
        if len(set(bodies.values())) > 1:  # equal once parsed (checked above), not byte for byte
            log(f"note: {name}: the bodies differ byte-wise: {bodies}")
    if "toolkit" not in responses or "fastapi" not in responses:
        return []
    notes = []
    for case in CASES:
        if not (case.serves("toolkit") and case.serves("fastapi")):
            continue
        ours, theirs = responses["toolkit"][case.name], responses["fastapi"][case.name]
        if _comparable(case, ours) != _comparable(case, theirs):
            notes.append(
                f"`{case.name}` ({case.method} {case.target}): toolkit `{ours['body']}`"
                f" vs FastAPI `{theirs['body']}`"
            )
    return notes


def _comparable(case: Case, response: dict[str, Any]) -> tuple[Any, ...]:
    body = response["body"]
    if response["content_type"] == "application/json":
        body = case.normalised(json.loads(body))
    return response["status"], response["content_type"], body


# --- timing ------------------------------------------------------------------------------------


def interleave(
    workers: dict[str, Worker],
    scenarios: list[str],
    settings: dict[str, Any],
    samples: dict[tuple[str, str], list[float]],
    progress: Progress,
    label: str,
) -> None:
    """Warm every (worker, scenario) up, then time ``repeat`` rounds of one batch each.

    Every worker times every scenario it has an app for (``Case.peers``; the null app answers
    anything), in every repetition, so the samples of one (worker, scenario) line up by index
    with every other's: the n-th of each comes from the same repetition.
    """
    names = list(workers)

    def runs(name: str, scenario: str) -> bool:
        case = SCENARIOS.get(scenario)
        return case is None or case.serves(workers[name].peer)

    for scenario in scenarios:
        for name in names:
            if runs(name, scenario):
                progress.update(f"{label}: warming up {name} / {scenario}")
                workers[name].ask(
                    "warmup",
                    scenario=scenario,
                    seconds=settings["warmup_seconds"],
                    batch_seconds=settings["batch_seconds"],
                )
    repeat = settings["repeat"]
    for index in range(repeat):
        progress.update(f"{label}: repetition {index + 1}/{repeat}")
        shift = index % len(names)
        order = names[shift:] + names[:shift]
        for scenario in scenarios:
            for name in order:
                if runs(name, scenario):
                    reply = workers[name].ask("time", scenario=scenario)
                    samples.setdefault((name, scenario), []).append(reply["us_per_request"])


def summarize(peer: str, scenario: str, values: list[float], sessions: list[int]) -> dict[str, Any]:
    quartiles = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return {
        "peer": peer,
        "scenario": scenario,
        "median_us": statistics.median(values),
        "min_us": min(values),
        "p25_us": quartiles[0],
        "p75_us": quartiles[2],
        "samples": len(values),
        "us_per_request": values,
        "session": sessions,
    }


def paired_ratios(
    samples: dict[tuple[str, str], list[float]],
    sessions: dict[tuple[str, str], list[int]],
    peers: list[str],
    scenarios: list[str],
) -> list[dict[str, Any]]:
    """Each peer's time over the toolkit's, batch by batch (same session and repetition), with
    the median of these paired ratios and its bootstrap interval (sessions resampled first).

    A peer without the scenario has none.
    """
    if BASELINE not in peers:
        return []
    found = []
    for scenario in scenarios:
        base = samples.get((BASELINE, scenario))
        for peer in peers:
            other = samples.get((peer, scenario))
            if peer == BASELINE or base is None or other is None:
                continue
            paired = stats.ratios(other, base)
            quartiles = statistics.quantiles(paired, n=4) if len(paired) > 1 else [paired[0]] * 3
            found.append(
                {
                    "scenario": scenario,
                    "peer": peer,
                    **(stats.interval(paired, sessions[(peer, scenario)]) or {}),
                    "p25": quartiles[0],
                    "p75": quartiles[2],
                    "of_medians": statistics.median(other) / statistics.median(base),
                }
            )
    return found


def overheads(
    samples: dict[tuple[str, str], list[float]],
    sessions: dict[tuple[str, str], list[int]],
    peers: list[str],
    scenarios: list[str],
) -> list[dict[str, Any]]:
    """Each peer's µs per request above the null app's (the floor: the harness's own cost),
    batch by batch (same session and repetition), with the median and its interval."""
    found = []
    for scenario in scenarios:
        floor = samples.get((HARNESS, scenario))
        for peer in peers:
            mine = samples.get((peer, scenario))
            if floor is None or mine is None:
                continue
            above = stats.interval(stats.differences(mine, floor), sessions[(peer, scenario)])
            found.append({"scenario": scenario, "peer": peer, **(above or {})})
    return found


def estimate_seconds(settings: dict[str, Any], peers: int, scenarios: int) -> float:
    """About how long in-process mode takes for ``peers`` x ``scenarios`` (every peer serving
    every scenario: an upper bound), from the settings and the costs below (2-vCPU VM)."""
    cells = (peers + 1) * scenarios  # the null app times every scenario too
    warmup = cells * settings["warmup_seconds"] * WARMUP_OVERSHOOT
    timed = settings["repeat"] * cells * (settings["batch_seconds"] + BATCH_OVERHEAD_S)
    return CHECK_S + settings["sessions"] * (SESSION_START_S + warmup + timed)


def run(
    peers: list[str], scenarios: list[str], settings: dict[str, Any], progress: Progress
) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``inprocess`` section of the results, and each peer's label."""
    started = time.perf_counter()
    samples: dict[tuple[str, str], list[float]] = {}
    sessions: dict[tuple[str, str], list[int]] = {}
    notes: list[str] = []
    labels: dict[str, str] = {}
    for session in range(settings["sessions"]):
        label = f"in-process, session {session + 1}/{settings['sessions']}"
        progress.update(f"{label}: starting workers for {', '.join(peers)} and the null app")
        workers = {peer: Worker(peer, settings.get("cpu")) for peer in [*peers, HARNESS]}
        with running(workers):
            labels.update({peer: workers[peer].info["label"] for peer in peers})
            if session == 0:
                progress.update(f"{label}: checking every peer against benchmarks/spec.py")
                notes = check_peers({p: w for p, w in workers.items() if p != HARNESS})
                progress.done(
                    f"in-process: every peer answers its cases of the {len(CASES)} in benchmarks/spec.py"
                )
            interleave(workers, scenarios, settings, samples, progress, label)
        for key, values in samples.items():  # label the samples this session added
            labelled = sessions.setdefault(key, [])
            labelled += [session] * (len(values) - len(labelled))
    progress.update("in-process: bootstrap intervals")
    medians = ", ".join(
        f"{p} {statistics.median(samples[(p, scenarios[0])]):.1f}"
        for p in [*peers, HARNESS]
        if (p, scenarios[0]) in samples
    )
    progress.done(f"in-process done; {scenarios[0]} µs/request: {medians}")
    cells = [(p, s) for s in scenarios for p in peers if (p, s) in samples]
    section = {
        "settings": settings,
        "elapsed_seconds": round(time.perf_counter() - started, 1),
        "statistics": {
            "paired": "batches of the same session and repetition",
            "interval": f"{stats.LEVEL:.0%} percentile bootstrap of the median of the paired values,"
            " sessions resampled, then batches within each",
            "rounds": stats.ROUNDS,
            "seed": stats.SEED,
        },
        "null_app": [
            summarize(HARNESS, s, samples[(HARNESS, s)], sessions[(HARNESS, s)])
            for s in scenarios
            if (HARNESS, s) in samples
        ],
        "results": [summarize(p, s, samples[(p, s)], sessions[(p, s)]) for p, s in cells],
        "ratios": paired_ratios(samples, sessions, peers, scenarios),
        "overheads": overheads(samples, sessions, peers, scenarios),
        "parity_notes": notes,
    }
    return section, labels
