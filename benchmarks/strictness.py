"""What lax JSON bodies (the default, as in FastAPI) cost next to ``strict=True``.

The ``body`` scenario's request (a nested JSON body validated into a model and echoed with 201)
is sent to the toolkit peer's app, whose routes are lax, and to the same handler on a route with
``strict=True``, in alternating batches in one process; the ratio of each pair of batches is
kept, and the median and a bootstrap 95% interval of those ratios are reported::

    python -m benchmarks.strictness                  # prints the figures
    python -m benchmarks.strictness --publish        # also writes published/strictness.json

The README's sentence on the cost of lax bodies quotes ``published/strictness.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from toolkit import App

from .inprocess import StatusSink, build_scope, make_receive, run_batch
from .machine import machine_info, package_versions
from .peers import toolkit_app
from .spec import CASES
from .stats import bootstrap_interval

PUBLISHED = Path(__file__).parent / "published" / "strictness.json"


def strict_app() -> App:
    """The peer's ``POST /items`` (same handler, model and status) on a strict route."""
    app = App()
    app.post("/items", status_code=201, strict=True)(toolkit_app.create_item)
    return app


async def measure(pairs: int, calls: int) -> dict[str, Any]:
    case = next(c for c in CASES if c.name == "body")
    apps = {"lax": toolkit_app.app, "strict": strict_app()}
    scope, receive, sink = build_scope(case), make_receive(case), StatusSink()
    for app in apps.values():  # warm up, and check both answer as the scenario expects
        await run_batch(app, scope, receive, sink, calls)
        if sink.status != case.status:
            raise RuntimeError(f"POST /items answered {sink.status}, expected {case.status}")
    per_request: dict[str, list[float]] = {"lax": [], "strict": []}
    ratios = []
    gc.disable()
    try:
        for index in range(pairs):
            order = ["lax", "strict"] if index % 2 == 0 else ["strict", "lax"]  # ABBA
            timed = {}
            for name in order:
                timed[name] = await run_batch(apps[name], scope, receive, sink, calls) / calls / 1000
                per_request[name].append(timed[name])
            ratios.append(timed["lax"] / timed["strict"])
            gc.collect()
    finally:
        gc.enable()
    low, high = bootstrap_interval(ratios)  # the suite's shared bootstrap (benchmarks/stats.py)
    return {
        "scenario": "body",
        "pairs": pairs,
        "calls_per_batch": calls,
        "lax_us": statistics.median(per_request["lax"]),
        "strict_us": statistics.median(per_request["strict"]),
        "lax_over_strict": statistics.median(ratios),
        "interval_95": [low, high],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=40, help="pairs of batches (default 40)")
    parser.add_argument("--calls", type=int, default=2000, help="requests per batch (default 2000)")
    parser.add_argument("--publish", action="store_true", help=f"write {PUBLISHED.name}")
    args = parser.parse_args(argv)
    figures = asyncio.run(measure(args.pairs, args.calls))
    record = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(
            ["python -m benchmarks.strictness", *(argv if argv is not None else sys.argv[1:])]
        ),
        "machine": machine_info(),
        "versions": package_versions(),
        **figures,
    }
    low, high = figures["interval_95"]
    print(
        f"body: lax {figures['lax_us']:.2f} µs, strict {figures['strict_us']:.2f} µs per request; "
        f"lax/strict {figures['lax_over_strict']:.3f} (95% interval {low:.3f}-{high:.3f})"
    )
    if args.publish:
        PUBLISHED.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {PUBLISHED}")


if __name__ == "__main__":
    main()
