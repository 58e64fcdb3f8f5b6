"""``python -m benchmarks``: check every peer against the spec, time them in-process, report.

Each peer runs in its own fresh worker process (``benchmarks.inprocess --serve``). The runner
alternates short timed batches between the workers, rotating the order every repetition, so
drifts in machine load (the main noise on a shared box) hit every peer alike; only one worker
runs at a time. ``--sessions`` repeats the whole thing with new processes.
Writes ``benchmarks/results/latest.json`` and ``latest.md`` and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .machine import machine_info, package_versions
from .peers import PEERS
from .report import markdown
from .spec import CASES, SCENARIOS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
HARNESS = "harness"  # pseudo-peer: a null ASGI app, timed on the first scenario

DEFAULT = {"sessions": 2, "repeat": 20, "batch_seconds": 0.05, "warmup_seconds": 0.3}
QUICK = {"sessions": 1, "repeat": 5, "batch_seconds": 0.02, "warmup_seconds": 0.1}


class BenchmarkError(SystemExit):
    """Stop the run with a message (exit status 1)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"\nBENCHMARK ABORTED: {message}")


def log(message: str, end: str = "\n") -> None:
    print(message, file=sys.stderr, end=end, flush=True)


class Worker:
    """A ``benchmarks.inprocess --serve`` process for one peer, driven one JSON line at a time."""

    def __init__(self, peer: str, cpu: int | None) -> None:
        self.peer = peer
        self.info: dict[str, Any] = {}
        args = ["--harness"] if peer == HARNESS else ["--peer", peer]
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


def start_workers(peers: list[str], cpu: int | None) -> dict[str, Worker]:
    """Start every worker (their imports overlap, untimed) and wait until each is ready."""
    workers = {peer: Worker(peer, cpu) for peer in peers}
    try:
        for worker in workers.values():
            worker.info = worker.read()  # the "peer" line: imported, lifespan started
    except BaseException:
        for worker in workers.values():
            worker.process.kill()
        raise
    return workers


# --- checks ------------------------------------------------------------------------------------


def check_peers(workers: dict[str, Worker]) -> list[str]:
    """Every peer must answer every case as the spec says; return toolkit-vs-FastAPI notes."""
    responses = {peer: {r["case"]: r for r in w.ask("check")["responses"]} for peer, w in workers.items()}
    failures = []
    for peer, answers in responses.items():
        for case in CASES:
            got = answers[case.name]
            headers = [(name, value) for name, value in got["headers"]]
            for problem in case.problems(got["status"], got["content_type"], got["body"].encode(), headers):
                failures.append(f"{peer} / {case.name} ({case.method} {case.target}): {problem}")
    if failures:
        raise BenchmarkError("peers do not answer as benchmarks/spec.py says:\n  " + "\n  ".join(failures))
    for name in SCENARIOS:
        bodies = {peer: answers[name]["body"] for peer, answers in responses.items()}
        if len(set(bodies.values())) > 1:  # equal once parsed (checked above), not byte for byte
            log(f"note: {name}: the bodies differ byte-wise: {bodies}")
    if "toolkit" not in responses or "fastapi" not in responses:
        return []
    notes = []
    for case in CASES:
        ours, theirs = responses["toolkit"][case.name], responses["fastapi"][case.name]
        if _comparable(ours) != _comparable(theirs):
            notes.append(
                f"`{case.name}` ({case.method} {case.target}): toolkit `{ours['body']}`"
                f" vs FastAPI `{theirs['body']}`"
            )
    return notes


def _comparable(response: dict[str, Any]) -> tuple[Any, ...]:
    body = response["body"]
    if response["content_type"] == "application/json":
        body = json.loads(body)
    return response["status"], response["content_type"], body


# --- timing ------------------------------------------------------------------------------------


def run_session(
    workers: dict[str, Worker],
    scenarios: list[str],
    settings: dict[str, Any],
    samples: dict[tuple[str, str], list[float]],
    label: str,
) -> None:
    """Warm every (peer, scenario) up, then time ``repeat`` rounds of one batch each."""
    peers = list(workers)
    for scenario in scenarios:
        for peer in peers:
            if peer != HARNESS or scenario == scenarios[0]:
                workers[peer].ask(
                    "warmup",
                    scenario=scenario,
                    seconds=settings["warmup_seconds"],
                    batch_seconds=settings["batch_seconds"],
                )
    repeat = settings["repeat"]
    for index in range(repeat):
        shift = index % len(peers)
        order = peers[shift:] + peers[:shift]
        for scenario in scenarios:
            for peer in order:
                if peer != HARNESS or scenario == scenarios[0]:
                    reply = workers[peer].ask("time", scenario=scenario)
                    samples.setdefault((peer, scenario), []).append(reply["us_per_request"])
        if sys.stderr.isatty():
            log(f"\r{label}: repetition {index + 1}/{repeat}", end="")
    medians = ", ".join(
        f"{peer} {statistics.median(samples[(peer, s)]):.1f}"
        for s in scenarios[:1]
        for peer in peers
        if peer != HARNESS
    )
    log(f"\r{label}: {repeat} repetitions done; {scenarios[0]} µs/request so far: {medians}")


def summarize(peer: str, scenario: str, values: list[float]) -> dict[str, Any]:
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
    }


def paired_ratios(
    samples: dict[tuple[str, str], list[float]], peers: list[str], scenarios: list[str]
) -> list[dict[str, Any]]:
    """Each peer's time over the toolkit's, batch by batch, for batches run side by side.

    The median of these paired ratios is what the report shows: load on a shared machine comes
    and goes in spells longer than a batch, and a paired ratio cancels it where a ratio of two
    medians does not (they can fall in different spells).
    """
    if "toolkit" not in peers:
        return []
    ratios = []
    for scenario in scenarios:
        base = samples[("toolkit", scenario)]
        for peer in peers:
            if peer == "toolkit":
                continue
            other = samples[(peer, scenario)]
            paired = [theirs / ours for ours, theirs in zip(base, other, strict=True)]
            quartiles = statistics.quantiles(paired, n=4) if len(paired) > 1 else [paired[0]] * 3
            ratios.append(
                {
                    "scenario": scenario,
                    "peer": peer,
                    "median": statistics.median(paired),
                    "p25": quartiles[0],
                    "p75": quartiles[2],
                    "of_medians": statistics.median(other) / statistics.median(base),
                }
            )
    return ratios


# --- command line ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--peer", action="append", choices=list(PEERS), help="repeatable; default: all")
    parser.add_argument(
        "--scenario", action="append", choices=list(SCENARIOS), help="repeatable; default: all"
    )
    parser.add_argument("--quick", action="store_true", help="one short session (a smoke run)")
    parser.add_argument("--sessions", type=int, help="how many times to start fresh worker processes")
    parser.add_argument("--repeat", type=int, help="timed batches per peer and scenario, per session")
    parser.add_argument("--batch-seconds", type=float, help="target duration of one timed batch")
    parser.add_argument("--warmup-seconds", type=float, help="warm-up per peer and scenario, per session")
    parser.add_argument("--cpu", type=int, help="pin the workers to this CPU (Linux)")
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    settings: dict[str, Any] = dict(QUICK if args.quick else DEFAULT)
    for key in settings:
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    settings["cpu"] = args.cpu
    peers = [p for p in PEERS if p in (args.peer or PEERS)]
    scenarios = [s for s in SCENARIOS if s in (args.scenario or SCENARIOS)]
    machine = machine_info()
    samples: dict[tuple[str, str], list[float]] = {}
    notes: list[str] = []
    labels: dict[str, str] = {}

    for session in range(settings["sessions"]):
        label = f"session {session + 1}/{settings['sessions']}"
        log(f"{label}: starting workers for {', '.join(peers)}...")
        workers = start_workers([*peers, HARNESS], settings["cpu"])
        labels.update({peer: workers[peer].info["label"] for peer in peers})
        try:
            if session == 0:
                notes = check_peers({p: w for p, w in workers.items() if p != HARNESS})
                log(f"{label}: every peer answers the {len(CASES)} cases of benchmarks/spec.py as expected")
            run_session(workers, scenarios, settings, samples, label)
        finally:
            for worker in workers.values():
                worker.close()

    results = {
        "mode": "inprocess",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)]),
        "elapsed_seconds": round(time.perf_counter() - started, 1),
        "settings": settings,
        "machine": machine,
        "versions": package_versions(),
        "peers": peers,
        "labels": labels,
        "scenarios": scenarios,
        "harness_us": statistics.median(samples[(HARNESS, scenarios[0])]),
        "results": [summarize(p, s, samples[(p, s)]) for s in scenarios for p in peers],
        "ratios": paired_ratios(samples, peers, scenarios),
        "parity_notes": notes,
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "latest.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    report = markdown(results)
    (args.output_dir / "latest.md").write_text(report, encoding="utf-8")
    log(f"wrote {os.path.relpath(args.output_dir)}/latest.json and latest.md\n")
    print(report, end="")


if __name__ == "__main__":
    main()
