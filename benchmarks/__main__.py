"""``python -m benchmarks``: check every peer against the spec, time them, write the results.

Modes: ``inprocess`` (the ASGI app called directly, µs per request), ``http`` (uvicorn loaded
by wrk), ``growth`` (routing with 10 to 1,000 routes, start-up, memory), ``scaling`` (the toolkit
and FastAPI (tuned) with 1 and 2 workers, over HTTP); ``all`` (the default) runs the four
(``--help`` says how long each preset takes). The first three time a null ASGI app beside the
peers; every paired figure gets a 95% bootstrap interval (``benchmarks/stats.py``).
Writes ``latest.json``, ``latest.md`` and ``latest.png`` to ``benchmarks/results/`` (or
``--output-dir``) and prints the Markdown.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from . import growth, http_runner, inprocess_runner, scaling
from .chart import render_chart
from .console import Progress, log
from .machine import machine_info, package_versions
from .peers import LABELS, PEERS
from .report import FORMAT, markdown
from .spec import SCENARIOS

RESULTS = Path(__file__).resolve().parent / "results"
MODES = ("inprocess", "http", "growth", "scaling")
PRESETS = ("quick", "default", "full")


def estimate_minutes(preset: str) -> dict[str, float]:
    """Each mode's estimated minutes for ``preset`` with every peer of the registry on every
    scenario, as if each peer had every app (an upper bound), on a 2-vCPU machine."""
    peers, scenarios = len(PEERS), len(SCENARIOS)
    apps = len({case.app for case in SCENARIOS.values()})
    name = preset.upper()
    seconds = {
        "inprocess": inprocess_runner.estimate_seconds(getattr(inprocess_runner, name), peers, scenarios),
        "http": http_runner.estimate_seconds(getattr(http_runner, name), peers, apps, scenarios),
        "growth": growth.estimate_seconds(getattr(growth, name), peers),
        "scaling": scaling.estimate_seconds(
            getattr(scaling, name),
            len(scaling.SCALING_PEERS),
            len({SCENARIOS[s].app for s in scaling.SCALING_SCENARIOS}),
            len(scaling.SCALING_SCENARIOS),
        ),
    }
    return {mode: value / 60 for mode, value in seconds.items()}


def durations_table() -> str:
    """The presets, their settings and estimated minutes (quoted in ``benchmarks/README.md``)."""
    lines = [
        "| preset | in-process, per cell | HTTP, per cell |"
        f" all modes, {len(PEERS)} peers x {len(SCENARIOS)} scenarios |",
        "|---|---|---|---:|",
    ]
    for preset in PRESETS:
        inproc, http = getattr(inprocess_runner, preset.upper()), getattr(http_runner, preset.upper())
        minutes = estimate_minutes(preset)
        flag = "(default)" if preset == "default" else f"`--{preset}`"
        lines.append(
            f"| {flag} | {inproc['sessions']} session(s) x {inproc['repeat']} batches of"
            f" {inproc['batch_seconds'] * 1000:.0f} ms | {http['repeat']} runs x {http['seconds']} s,"
            f" {http['connections']} connections | ~{sum(minutes.values()):.0f} min"
            f" (HTTP ~{minutes['http']:.0f}, scaling ~{minutes['scaling']:.0f}) |"
        )
    return "\n".join(lines)


def _epilog() -> str:
    lines = [
        f"Estimated duration, {len(PEERS)} peers x {len(SCENARIOS)} scenarios (2 vCPUs, an upper bound):"
    ]
    for preset in PRESETS:
        minutes = estimate_minutes(preset)
        names = {"inprocess": "in-process", "http": "HTTP", "growth": "growth", "scaling": "scaling"}
        parts = ", ".join(f"{names[mode]} {value:.1f}" for mode, value in minutes.items())
        flag = "default" if preset == "default" else f"--{preset}"
        lines.append(f"  {flag:<8} ~{sum(minutes.values()):.0f} min ({parts})")
    return "\n".join(lines)


def _preset(args: argparse.Namespace) -> str:
    return "quick" if args.quick else "full" if args.full else "default"


def _settings(module: Any, preset: str, overrides: dict[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = dict(getattr(module, preset.upper()))
    settings.update({key: value for key, value in overrides.items() if value is not None})
    return settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.split("\n")[0],
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--mode", choices=[*MODES, "all"], default="all", help="default: all")
    parser.add_argument("--peer", action="append", choices=list(PEERS), help="repeatable; default: all")
    parser.add_argument(
        "--scenario", action="append", choices=list(SCENARIOS), help="repeatable; default: all"
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--quick", action="store_true", help="a smoke run: wide intervals, rough numbers")
    length.add_argument("--full", action="store_true", help="longer runs, narrower intervals: for claims")
    inproc = parser.add_argument_group("in-process mode")
    inproc.add_argument("--sessions", type=int, help="how many times to start fresh worker processes")
    inproc.add_argument("--repeat", type=int, help="timed batches per peer and scenario, per session")
    inproc.add_argument("--batch-seconds", type=float, help="target duration of one timed batch")
    inproc.add_argument("--warmup-seconds", type=float, help="warm-up per peer and scenario, per session")
    inproc.add_argument("--cpu", type=int, help="pin the in-process workers to this CPU (Linux)")
    http = parser.add_argument_group("HTTP and scaling modes")
    http.add_argument("--http-repeat", type=int, help="wrk runs per peer and scenario")
    http.add_argument("--http-seconds", type=int, help="duration of one wrk run (whole seconds)")
    http.add_argument("--connections", type=int, help="wrk's open connections")
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    progress = Progress()
    modes = MODES if args.mode == "all" else (args.mode,)
    preset = _preset(args)
    peers = [p for p in PEERS if p in (args.peer or PEERS)]
    scenarios = [s for s in SCENARIOS if s in (args.scenario or SCENARIOS)]
    machine = machine_info()
    if machine.get("load_average", [0])[0] > 0.5:
        log(f"note: the machine is busy (load average {machine['load_average']}): expect noisy numbers")
    results: dict[str, Any] = {
        "format": FORMAT,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)]),
        "modes": list(modes),
        "preset": preset,
        "machine": machine,
        "versions": package_versions(),
        "peers": peers,
        "labels": {peer: LABELS[peer] for peer in peers},
        "scenarios": scenarios,
    }
    started = time.perf_counter()
    if "inprocess" in modes:
        overrides = {
            "sessions": args.sessions,
            "repeat": args.repeat,
            "batch_seconds": args.batch_seconds,
            "warmup_seconds": args.warmup_seconds,
        }
        settings = {**_settings(inprocess_runner, preset, overrides), "cpu": args.cpu}
        results["inprocess"], labels = inprocess_runner.run(peers, scenarios, settings, progress)
        for peer, label in labels.items():  # the registry's labels name the peers in every mode
            if label != LABELS[peer]:
                log(f"note: {peer}: its module's LABEL {label!r} differs from peers.LABELS {LABELS[peer]!r}")
    if "http" in modes:
        overrides = {
            "repeat": args.http_repeat,
            "seconds": args.http_seconds,
            "connections": args.connections,
        }
        settings = _settings(http_runner, preset, overrides)
        results["http"] = http_runner.run(peers, scenarios, settings, progress)
    if "growth" in modes:
        settings = {**_settings(growth, preset, {}), "cpu": args.cpu}
        results["growth"] = growth.run(peers, settings, progress)
    if "scaling" in modes:
        overrides = {
            "repeat": args.http_repeat,
            "seconds": args.http_seconds,
            "connections": args.connections,
        }
        results["scaling"] = scaling.run(peers, scenarios, _settings(scaling, preset, overrides), progress)
    results["elapsed_seconds"] = round(time.perf_counter() - started, 1)

    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    chart = render_chart(results, out / "latest.png")
    results["chart"] = "latest.png" if chart else None
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    report = markdown(results)
    (out / "latest.md").write_text(report, encoding="utf-8")
    written = "latest.json, latest.md" + (", latest.png" if chart else "")
    progress.done(f"wrote {written} in {os.path.relpath(out)}/\n")
    print(report, end="")


if __name__ == "__main__":
    main()
