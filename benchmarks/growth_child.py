"""The fresh processes of the growth benchmarks: one start-up, or one peer's memory.

``python -m benchmarks.growth_child --startup PEER --routes 50`` times, from before the
framework (and asyncio) is imported: building an app of 50 routes, running its lifespan
start-up and answering one request. ``--memory PEER --requests N`` reports the peak RSS after
start-up and after N requests. Both print one JSON line. Imports are kept to a minimum before
the clock starts, so the numbers are the framework's, not the harness's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from .peers.many_routes import BUILDERS, last_route_case


def peak_rss_mb() -> float:
    """This process's peak resident set size, in MiB.

    Linux: ``VmHWM``, the high-water mark of this process's own memory map. ``getrusage``'s
    ``ru_maxrss`` would do elsewhere, but on Linux it keeps the parent's peak across
    ``fork`` + ``exec``, so a small fresh child would report the runner's size.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def startup(peer: str, routes: int) -> dict[str, Any]:
    start = time.perf_counter()
    import asyncio  # every framework needs it: part of the start-up

    app = BUILDERS[peer](routes)  # imports the framework
    built = time.perf_counter()
    case = last_route_case(routes)
    status = 0

    async def first_response() -> None:
        nonlocal status
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        lifespan = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        task = asyncio.create_task(app(lifespan, inbox.get, outbox.put))
        await inbox.put({"type": "lifespan.startup"})
        assert (await outbox.get())["type"] == "lifespan.startup.complete"
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": case.path,
            "raw_path": case.path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"127.0.0.1:8000")],
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 50000),
            "state": dict(lifespan["state"]),
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task

    asyncio.run(first_response())
    end = time.perf_counter()
    return {"peer": peer, "status": status, "build_s": built - start, "total_s": end - start}


def memory(peer: str | None, requests: int) -> dict[str, Any]:
    import asyncio

    from .inprocess import Bench, StatusSink, load_peer, run_batch, started
    from .spec import SCENARIOS

    async def serve() -> dict[str, Any]:
        apps, cases, info = load_peer(peer, None, only=("app",))  # the plain scenarios' app only
        async with started(apps) as states:
            bench = Bench(apps, states, cases)
            after_start = peak_rss_mb()
            scenarios = [name for name, case in SCENARIOS.items() if case.app == "app"]
            for name in scenarios:
                case, scope, receive = await bench.request(bench.cases[name])
                sink = StatusSink()
                await run_batch(apps[case.app], scope, receive, sink, requests // len(scenarios))
                if peer is not None and sink.status != case.status:
                    raise RuntimeError(f"{peer} / {name}: answered {sink.status}, expected {case.status}")
        return {"peer": info["peer"], "rss_started_mb": after_start, "rss_peak_mb": peak_rss_mb()}

    return {**asyncio.run(serve()), "requests": requests}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.growth_child", description=__doc__.split("\n")[0]
    )
    child = parser.add_mutually_exclusive_group(required=True)
    child.add_argument("--startup", metavar="PEER", choices=list(BUILDERS), help="time one start-up")
    child.add_argument(
        "--memory", metavar="PEER", help="peak RSS of PEER's benchmark app ('' for a null app)"
    )
    parser.add_argument("--routes", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args(argv)
    reply = startup(args.startup, args.routes) if args.startup else memory(args.memory or None, args.requests)
    print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
