"""In-process mode: call one peer's ASGI app directly and time it, in this (fresh) process.

Two ways to run it. Alone, it times the scenarios one after the other and prints JSON lines::

    python -m benchmarks.inprocess --peer toolkit --scenario json --scenario body
    python -m benchmarks.inprocess --peer fastapi --check

With ``--serve`` it is a worker driven by ``python -m benchmarks``: one JSON command per stdin
line, one JSON reply per stdout line. The runner keeps one worker per peer and alternates
batches between them, so a change in machine load hits every peer alike. With ``--routes N``
the worker serves an app of ``N`` routes instead (``peers/many_routes.py``, the routing growth
benchmark), with one scenario, ``route``.

Every peer runs on a plain asyncio event loop (no uvloop): nothing here waits on I/O, so the
loop only matters through its per-task costs, and one loop for all peers keeps those equal.
There is no server: each call gets a shallow copy of one prebuilt ``scope``, ``receive``
returns one prebuilt message and ``send`` only records the status, so the harness costs about
as much as a null ASGI app (``--harness`` times one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

from .machine import package_versions
from .peers import PEERS
from .peers.many_routes import BUILDERS, last_route_case
from .spec import CASES, Case, captured

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def build_scope(case: Case) -> dict[str, Any]:
    """The HTTP scope a server would build for ``case`` (as uvicorn does, minus ``state``)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": case.method,
        "root_path": "",
        "path": case.path,
        "raw_path": case.path.encode(),
        "query_string": case.query.encode(),
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in case.headers],
    }


def make_receive(case: Case) -> Callable[[], Awaitable[dict[str, Any]]]:
    message = {"type": "http.request", "body": case.body, "more_body": False}

    async def receive() -> dict[str, Any]:
        return message

    return receive


class StatusSink:
    """An ASGI ``send`` that only remembers the last status, so a batch can be checked cheaply."""

    __slots__ = ("status",)

    def __init__(self) -> None:
        self.status = 0

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]


class Capture:
    """An ASGI ``send`` that keeps the whole response (for the checks, never while timing)."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    def header(self, name: bytes) -> str | None:
        return next((v.decode("latin-1") for k, v in self.headers if k.lower() == name), None)


@contextlib.asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[dict[str, Any]]:
    """Run the app's lifespan around the block, as a server would; yield the lifespan state."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    message = await outbox.get()
    if message["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"lifespan startup failed: {message}")
    try:
        yield scope["state"]
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        message = await outbox.get()
        await task
        if message["type"] != "lifespan.shutdown.complete":
            raise RuntimeError(f"lifespan shutdown failed: {message}")


async def null_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The cheapest possible ASGI app: timing it gives the harness's own cost."""
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"Hello, World!"})


async def null_server_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The null app with a lifespan, as uvicorn ``--lifespan on`` wants (the HTTP ceiling)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"Hello, World!"})


async def run_batch(app: ASGIApp, scope: dict[str, Any], receive: Any, send: Any, calls: int) -> int:
    """Nanoseconds for ``calls`` requests, each with its own shallow copy of ``scope``."""
    copy = scope.copy
    start = time.perf_counter_ns()
    for _ in range(calls):
        await app(copy(), receive, send)
    return time.perf_counter_ns() - start


class Bench:
    """A peer's apps, their lifespan states, and per scenario a prebuilt request and a batch size.

    A case runs on the app its ``app`` field names. A case with ``cookie_from`` (``bearer_from``)
    carries the cookie (the access token) that an earlier case's response gave, that case being
    sent once (untimed) when not yet known. ``strict=False`` (the null app) skips status checks.
    """

    def __init__(
        self,
        apps: Mapping[str, ASGIApp],
        states: Mapping[str, dict[str, Any]],
        cases: Sequence[Case] = CASES,
        *,
        strict: bool = True,
    ) -> None:
        self.apps = apps
        self.states = states
        self.cases = {case.name: case for case in cases}
        self.strict = strict
        self.batches: dict[str, int] = {}
        self.kept: dict[str, dict[str, str]] = {}  # case name -> the cookie/token its response gave

    def _scope(self, case: Case) -> dict[str, Any]:
        scope = build_scope(case)
        state = self.states.get(case.app)
        if state:  # lifespan state, as uvicorn passes it (shared: the peers never mutate it)
            scope["state"] = state
        return scope

    async def request(self, case: Case) -> tuple[Case, dict[str, Any], Any]:
        """``case`` with its cookie and token (none from the null app), its scope and ``receive``."""
        for source in case.sources:
            if source not in self.kept:
                await self._send(self.cases[source])
        case = case.authenticated(self.kept)
        return case, self._scope(case), make_receive(case)

    async def _send(self, case: Case) -> Capture:
        """Send ``case`` once; keep the cookie and token it gives for the cases that need them."""
        case, scope, receive = await self.request(case)
        capture = Capture()
        await self.apps[case.app](scope, receive, capture)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in capture.headers]
        self.kept[case.name] = captured(headers, bytes(capture.body))
        return capture

    async def check(self) -> list[dict[str, Any]]:
        """Every case, sent once in order, with the full response."""
        responses = []
        for case in self.cases.values():
            capture = await self._send(case)
            responses.append(
                {
                    "case": case.name,
                    "status": capture.status,
                    "content_type": capture.header(b"content-type"),
                    "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in capture.headers],
                    "body": capture.body.decode("utf-8", "backslashreplace"),
                }
            )
        return responses

    async def warmup(self, name: str, seconds: float, batch_seconds: float) -> dict[str, Any]:
        """Run ``name`` for ``seconds`` in growing batches; size its timed batch from the last one."""
        case, scope, receive = await self.request(self.cases[name])
        app, sink = self.apps[case.app], StatusSink()
        gc.collect()
        calls, total, spent = 8, 0, 0
        deadline = time.perf_counter() + seconds
        while True:
            spent = await run_batch(app, scope, receive, sink, calls)
            total += calls
            if time.perf_counter() >= deadline:
                break
            calls = min(calls * 2, 1 << 20)
        self._expect(case, sink)
        self.batches[name] = max(1, round(batch_seconds * 1e9 * calls / spent))
        return {"batch": self.batches[name], "warmup_calls": total}

    async def time(self, name: str) -> float:
        """µs per request over one batch of ``name``, after a full collection."""
        case, scope, receive = await self.request(self.cases[name])
        app, sink = self.apps[case.app], StatusSink()
        calls = self.batches[name]
        gc.collect()
        elapsed = await run_batch(app, scope, receive, sink, calls)
        self._expect(case, sink)
        return elapsed / calls / 1000

    def _expect(self, case: Case, sink: StatusSink) -> None:
        if self.strict and sink.status != case.status:
            raise RuntimeError(f"{case.name}: answered {sink.status} while timing, expected {case.status}")


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


async def serve(bench: Bench) -> None:
    """Answer the runner's commands until ``quit`` (or end of input)."""
    for line in sys.stdin:  # PERF: blocking reads are fine: nothing else runs on this loop
        command = json.loads(line)
        op = command["op"]
        if op == "check":
            emit({"responses": await bench.check()})
        elif op == "warmup":
            emit(await bench.warmup(command["scenario"], command["seconds"], command["batch_seconds"]))
        elif op == "time":
            emit({"us_per_request": await bench.time(command["scenario"])})
        elif op == "quit":
            return
        else:
            raise ValueError(f"unknown command {command!r}")


def load_peer(
    peer: str | None, routes: int | None, only: Collection[str] | None = None
) -> tuple[dict[str, ASGIApp], list[Case], dict[str, Any]]:
    """The apps to serve (``only`` these, if given), their cases, and the ``peer`` line."""
    cases = [case for case in CASES if only is None or case.app in only]
    if peer is None:  # the harness: a null app answering every request
        info = {"kind": "peer", "peer": "harness", "label": "null ASGI app", "versions": {}}
        return dict.fromkeys((case.app for case in cases), null_app), cases, info
    if routes is not None:
        app = BUILDERS[peer](routes)
        info = {"kind": "peer", "peer": peer, "label": peer, "routes": routes, "versions": {}}
        return {"app": app}, [last_route_case(routes)], info
    module = importlib.import_module(PEERS[peer])
    cases = [case for case in cases if case.serves(peer)]  # its apps are built here, on first access
    apps = {case.app: getattr(module, case.app) for case in cases}
    info = {
        "kind": "peer",
        "peer": peer,
        "label": module.LABEL,
        "versions": package_versions(module.PACKAGES),
    }
    return apps, cases, info


@contextlib.asynccontextmanager
async def started(apps: Mapping[str, ASGIApp]) -> AsyncIterator[dict[str, dict[str, Any]]]:
    """Every app's lifespan running (the null app has none); yield their states by name."""
    async with contextlib.AsyncExitStack() as stack:
        states = {}
        for name, app in apps.items():
            states[name] = {} if app is null_app else await stack.enter_async_context(lifespan(app))
        yield states


async def main_async(args: argparse.Namespace) -> None:
    apps, cases, info = load_peer(args.peer, args.routes)
    emit(info)
    async with started(apps) as states:
        bench = Bench(apps, states, cases, strict=args.peer is not None)
        if args.serve:
            await serve(bench)
        elif args.check:
            for response in await bench.check():
                emit({"kind": "response", "peer": info["peer"], **response})
        else:
            timed = [case.name for case in cases if case.timed]
            for name in [name for name in args.scenario or timed if name in bench.cases]:
                warm = await bench.warmup(name, args.warmup_seconds, args.batch_seconds)
                samples = [await bench.time(name) for _ in range(args.repeat)]
                emit(
                    {
                        "kind": "timing",
                        "peer": info["peer"],
                        "scenario": name,
                        **warm,
                        "us_per_request": samples,
                    }
                )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.inprocess", description=__doc__.split("\n")[0]
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--peer", choices=list(PEERS))
    target.add_argument("--harness", action="store_true", help="time a null ASGI app (the harness cost)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="print every case's response instead of timing")
    mode.add_argument("--serve", action="store_true", help="take commands on stdin (used by the runner)")
    parser.add_argument("--routes", type=int, help="serve an app of this many routes (the routing benchmark)")
    parser.add_argument("--scenario", action="append", help="default: every timed case served")
    parser.add_argument("--repeat", type=int, default=10, help="timed batches per scenario")
    parser.add_argument("--batch-seconds", type=float, default=0.05, help="target duration of one batch")
    parser.add_argument("--warmup-seconds", type=float, default=0.2)
    parser.add_argument("--cpu", type=int, help="pin this process to one CPU (Linux)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
