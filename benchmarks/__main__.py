"""``python -m benchmarks``: check every peer against the spec, time them in-process, report.

Each (peer, round) runs in a fresh ``python -m benchmarks.inprocess`` subprocess; rounds rotate
the peer order so slow drifts of the machine (thermal, other load) hit every peer alike.
Writes ``benchmarks/results/latest.json`` and ``latest.md`` and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .machine import machine_info, package_versions
from .peers import PEERS
from .report import markdown
from .spec import CASES, SCENARIOS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"

DEFAULT = {"rounds": 3, "repeat": 10, "batch_seconds": 0.05, "warmup_seconds": 0.2}
QUICK = {"rounds": 1, "repeat": 5, "batch_seconds": 0.02, "warmup_seconds": 0.1}


class BenchmarkError(SystemExit):
    """Stop the run with a message (exit status 1)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"\nBENCHMARK ABORTED: {message}")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_inprocess(*args: str) -> list[dict[str, Any]]:
    """Run ``benchmarks.inprocess`` in a fresh interpreter; return its JSON lines."""
    command = [sys.executable, "-m", "benchmarks.inprocess", *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchmarkError(f"`{shlex.join(command[1:])}` failed:\n{done.stderr.strip()}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


# --- checks ------------------------------------------------------------------------------------


def check_peers(peers: list[str]) -> list[str]:
    """Every peer must answer every case as the spec says; return toolkit-vs-FastAPI notes."""
    responses: dict[str, dict[str, dict[str, Any]]] = {}
    failures = []
    for peer in peers:
        records = run_inprocess("--peer", peer, "--check")
        responses[peer] = {r["case"]: r for r in records if r["kind"] == "response"}
        for case in CASES:
            got = responses[peer].get(case.name)
            if got is None:
                failures.append(f"{peer} / {case.name}: no response")
                continue
            body = got["body"].encode()
            for problem in case.problems(got["status"], got["content_type"], body):
                failures.append(f"{peer} / {case.name} ({case.method} {case.target}): {problem}")
    if failures:
        raise BenchmarkError("peers do not answer as benchmarks/spec.py says:\n  " + "\n  ".join(failures))
    for case in CASES:
        if not case.timed:
            continue
        bodies = {peer: responses[peer][case.name]["body"] for peer in peers}
        if len(set(bodies.values())) > 1:  # equal once parsed (checked above), yet not byte-identical
            log(f"note: {case.name}: bodies differ byte-wise: {bodies}")
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


def timing_args(settings: dict[str, Any]) -> list[str]:
    args = [
        "--repeat",
        str(settings["repeat"]),
        "--batch-seconds",
        str(settings["batch_seconds"]),
        "--warmup-seconds",
        str(settings["warmup_seconds"]),
    ]
    if settings.get("cpu") is not None:
        args += ["--cpu", str(settings["cpu"])]
    return args


def measure(
    peers: list[str], scenarios: list[str], settings: dict[str, Any]
) -> dict[tuple[str, str], list[float]]:
    samples: dict[tuple[str, str], list[float]] = {(p, s): [] for p in peers for s in scenarios}
    rounds = settings["rounds"]
    total, done = rounds * len(peers), 0
    chosen = [arg for name in scenarios for arg in ("--scenario", name)]
    for round_index in range(rounds):
        shift = round_index % len(peers)
        for peer in peers[shift:] + peers[:shift]:
            records = run_inprocess("--peer", peer, *chosen, *timing_args(settings))
            summary = []
            for record in records:
                if record["kind"] == "timing":
                    samples[(peer, record["scenario"])] += record["us_per_request"]
                    summary.append(f"{record['scenario']} {statistics.median(record['us_per_request']):.1f}")
            done += 1
            log(
                f"[{done}/{total}] round {round_index + 1}/{rounds} {peer:<9} µs/request: "
                + ", ".join(summary)
            )
    return samples


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


# --- command line ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--peer", action="append", choices=list(PEERS), help="repeatable; default all")
    parser.add_argument(
        "--scenario", action="append", choices=list(SCENARIOS), help="repeatable; default all"
    )
    parser.add_argument("--quick", action="store_true", help="one round of short batches (a smoke run)")
    parser.add_argument("--rounds", type=int, help="fresh processes per peer")
    parser.add_argument("--repeat", type=int, help="timed batches per scenario per round")
    parser.add_argument("--batch-seconds", type=float)
    parser.add_argument("--warmup-seconds", type=float)
    parser.add_argument("--cpu", type=int, help="pin the measured processes to this CPU (Linux)")
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

    log(f"checking {', '.join(peers)} against benchmarks/spec.py ({len(CASES)} cases)...")
    notes = check_peers(peers)
    harness = run_inprocess("--harness", *timing_args(settings))[0]["us_per_request"]
    log(f"all peers conform; harness cost {statistics.median(harness):.2f} µs/request; timing...")
    samples = measure(peers, scenarios, settings)

    results = {
        "mode": "inprocess",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)]),
        "elapsed_seconds": round(time.perf_counter() - started, 1),
        "settings": settings,
        "machine": machine,
        "versions": package_versions(),
        "peers": peers,
        "scenarios": scenarios,
        "harness_us": statistics.median(harness),
        "results": [summarize(p, s, samples[(p, s)]) for s in scenarios for p in peers],
        "parity_notes": notes,
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "latest.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    report = markdown(results)
    (args.output_dir / "latest.md").write_text(report, encoding="utf-8")
    log(f"wrote {os.path.relpath(args.output_dir / 'latest.json')} and latest.md\n")
    print(report, end="")


if __name__ == "__main__":
    main()
