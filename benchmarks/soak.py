"""Soak: hold 256 connections against the example service for 60 s and report what broke.

    python -m benchmarks.soak [--duration 60] [--connections 256]

Serves ``apps.shop`` with uvicorn (one worker, embedded SQLite in a temp dir, in-memory
sessions) pinned to CPU 0, and loads it with ``wrk`` pinned to CPU 1 over a mix of reads (the
item list, one item, health) after seeding users and items. Reports 5xx responses, socket errors
(connect/read/write/timeout) and the server's resident memory from the end of warm-up to the end
of the run. It passes with 0 5xx, 0 socket errors and RSS growth under 10%. Writes
``benchmarks/results/soak.json``; ``tests/adversarial/summary.py --readme`` puts the figures in the
README's Reliability section.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
MARKER = "SOAK_RESULT "

LUA = r"""
local paths = {"/items?limit=20", "/items/1", "/items?limit=5&q=item", "/health", "/items/2"}
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'MARKER{"requests": %.0f, "duration_us": %.0f, "errors": {"connect": %.0f, "read": %.0f,'
    .. ' "write": %.0f, "timeout": %.0f, "status": %.0f}, "p50_us": %.1f, "p99_us": %.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
""".replace("MARKER", MARKER)
# Every path of the mix answers 200 (checked at warm-up), so wrk's `status` errors (responses
# outside 2xx/3xx) count every 5xx, and any 4xx too, which would be as wrong here.


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _pinned(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def _seed(base: str) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        client.post(
            "/users", json={"username": "soaker", "email": "s@example.com", "password": "soak-pass-1"}
        )
        token = client.post("/auth/token", data={"username": "soaker", "password": "soak-pass-1"}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        for i in range(50):
            client.post(
                "/items", json={"name": f"item {i}", "price": i + 1, "tags": ["soak"]}, headers=headers
            )
        for path in ("/items?limit=20", "/items/1", "/items?limit=5&q=item", "/health", "/items/2"):
            response = client.get(path)
            if response.status_code != 200:
                raise RuntimeError(f"warm-up: GET {path} answered {response.status_code}")


def run(duration: int, connections: int) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk); the soak needs it")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp}/soak.db",
            "SECRET_KEY": "soak-secret-key-0123456789abcdef0123",
        }
        env.pop("REDIS_URL", None)
        command = [
            *_pinned(0),
            sys.executable,
            "-m",
            "uvicorn",
            "apps.shop.main:app",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--backlog",
            "2048",
        ]
        server = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the service did not start")
                time.sleep(0.2)
            _seed(base)
            # Warm-up under the same load, so caches and pools reach their steady size first.
            _wrk(wrk, base, min(10, duration), connections)
            rss_start = _rss_kib(server.pid)
            stats = _wrk(wrk, base, duration, connections)
            rss_end = _rss_kib(server.pid)
        finally:
            server.terminate()
            try:
                output, _ = server.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                output, _ = server.communicate()
    errors = stats["errors"]
    result = {
        "duration_s": duration,
        "connections": connections,
        "requests": stats["requests"],
        "requests_per_s": round(stats["requests"] / (stats["duration_us"] / 1e6)),
        "responses_not_2xx": errors["status"],
        "socket_errors": errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        "errors": errors,
        "latency_p50_ms": round(stats["p50_us"] / 1000, 2),
        "latency_p99_ms": round(stats["p99_us"] / 1000, 2),
        "rss_start_mb": round(rss_start / 1024, 1),
        "rss_end_mb": round(rss_end / 1024, 1),
        "rss_growth_pct": round((rss_end - rss_start) / rss_start * 100, 2),
        "server_log_tail": output.decode(errors="replace")[-2000:],
    }
    result["passed"] = (
        result["responses_not_2xx"] == 0 and result["socket_errors"] == 0 and result["rss_growth_pct"] < 10
    )
    return result


def _wrk(wrk: str, base: str, duration: int, connections: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA)
    try:
        command = [
            *_pinned(1),
            wrk,
            "-t",
            "2",
            "-c",
            str(connections),
            "-d",
            f"{duration}s",
            "--timeout",
            "10s",
            "-s",
            script.name,
            base,
        ]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    for line in out.splitlines():
        if line.startswith(MARKER):
            parsed: dict[str, Any] = json.loads(line[len(MARKER) :])
            return parsed
    raise RuntimeError(f"wrk printed no result:\n{out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--output", type=Path, default=RESULTS / "soak.json")
    args = parser.parse_args(argv)
    result = run(args.duration, args.connections)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    shown = {k: v for k, v in result.items() if k != "server_log_tail"}
    print(json.dumps(shown, indent=2))
    print(f"wrote {args.output}; {'PASSED' if result['passed'] else 'FAILED'}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
